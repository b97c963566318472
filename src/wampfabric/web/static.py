"""``static``: the files of a directory (``directory``, relative to the node directory) or of a
Python package (``package`` + ``resource``), as Crossbar.io's static service.

Never outside the root: the front routes no '..' segment nor NUL, and every file is resolved
(symlinks included) and must lie below the resolved root.  Small files are kept in a bounded
cache (checked against the file's mtime and size on every request); large ones are streamed
in pieces as the client reads them.
"""

from __future__ import annotations

import html
import importlib
import importlib.resources
import logging
import os
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

from ..transport.web import WebService
from .files import MimeTypes, cache_headers, http_date, method_not_allowed, not_modified, parse_range, serve_bytes

log = logging.getLogger("wampfabric.web.static")

_TEXT = "text/plain; charset=utf-8"
DEFAULT_CACHE_TIMEOUT = 12 * 60 * 60  # Crossbar.io's default
CACHED_FILE_MAX = 256 * 1024
CACHE_TOTAL_MAX = 16 * 1024 * 1024
STREAM_ABOVE = 1024 * 1024
STREAM_PIECE = 256 * 1024


class StaticError(Exception):
    """The service cannot start (a clear message for the transport's start error)."""


def static_root(config: dict, cbdir) -> Path:
    if "directory" in config:
        root = Path(cbdir) / config["directory"]
    else:
        package, resource = config["package"], config["resource"]
        try:
            importlib.import_module(package)
            root = Path(str(importlib.resources.files(package) / resource))
        except Exception as e:
            raise StaticError(f"static service: cannot find resource '{resource}' of package '{package}': "
                              f"{type(e).__name__}: {e}") from None
    root = root.resolve()
    if not root.is_dir():
        raise StaticError(f"static service: '{root}' is not a directory")
    return root


class StaticWebService(WebService):
    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.root = static_root(config, transport.cbdir)
        options = config.get("options", {})
        self.listing = bool(options.get("enable_directory_listing", False))
        self.mime = MimeTypes(options.get("mime_types"))
        self.extra_headers = cache_headers(options.get("cache_timeout", DEFAULT_CACHE_TIMEOUT))
        self.default_file = options.get("default_file")
        self._cache: OrderedDict = OrderedDict()  # path -> (mtime_ns, size, bytes)
        self._cache_size = 0

    def handle(self, request, subpath: str):
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
        target = self._inside(subpath)
        if target is not None and target.is_dir():
            if subpath and not request.path.endswith("/"):
                # relative links in the directory's index need the slash
                location = request.raw_path.decode("latin-1") + "/" + ("?" + request.query if request.query else "")
                return request.respond(301, b"moved\n", [("Location", location)], _TEXT)
            index = target / "index.html"
            if index.is_file():
                target = index
            elif self.listing:
                return self._listing(request, target)
            else:
                target = None
        if target is None or not target.is_file():
            if self.default_file:
                fallback = self._inside(self.default_file)
                if fallback is not None and fallback.is_file():
                    return self._serve(request, fallback)
            return request.respond(404, b"not found\n", None, _TEXT)
        return self._serve(request, target)

    def _inside(self, rel: str) -> Path | None:
        """The resolved path of ``rel`` below the root, or None if it is not below it."""
        try:
            target = (self.root / rel).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, an unusable name
            return None
        if target != self.root and not target.is_relative_to(self.root):
            return None
        return target

    def _serve(self, request, path: Path):
        try:
            st = os.stat(path)
        except OSError:
            return request.respond(404, b"not found\n", None, _TEXT)
        key = str(path)
        mime = self.mime.guess(path.name)
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        entry = self._cache.get(key)
        if entry is not None and entry[0] == st.st_mtime_ns and entry[1] == st.st_size:
            self._cache.move_to_end(key)
            return serve_bytes(request, entry[2], mime, etag, st.st_mtime, self.extra_headers)
        if st.st_size > STREAM_ABOVE:
            return self._stream(request, path, st, mime, etag)
        try:
            data = path.read_bytes()
        except OSError:
            return request.respond(404, b"not found\n", None, _TEXT)
        if len(data) <= CACHED_FILE_MAX:
            self._remember(key, st, data)
        return serve_bytes(request, data, mime, etag, st.st_mtime, self.extra_headers)

    def _remember(self, key: str, st, data: bytes) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_size -= len(old[2])
        self._cache[key] = (st.st_mtime_ns, st.st_size, data)
        self._cache_size += len(data)
        while self._cache_size > CACHE_TOTAL_MAX:
            _, (_, _, dropped) = self._cache.popitem(last=False)
            self._cache_size -= len(dropped)

    def _stream(self, request, path: Path, st, mime: str, etag: str):
        headers = [("ETag", etag), ("Last-Modified", http_date(st.st_mtime)), ("Accept-Ranges", "bytes")]
        headers += self.extra_headers
        if not_modified(request, etag, st.st_mtime):
            return request.respond(304, b"", headers)
        size = st.st_size
        rng = parse_range(request, size, etag, st.st_mtime)
        if rng == "unsatisfiable":
            return request.respond(416, b"range not satisfiable\n", headers + [("Content-Range", f"bytes */{size}")],
                                   _TEXT)
        if rng is None:
            status, start, end = 200, 0, size - 1
        else:
            (start, end), status = rng, 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        headers += [("Content-Type", mime), ("Content-Length", str(end - start + 1))]
        try:
            f = open(path, "rb")
        except OSError:
            return request.respond(404, b"not found\n", None, _TEXT)
        request.start_response(status, headers)
        if request.head:
            f.close()
            request.finish()
            return None
        return self._pump(request, f, start, end - start + 1)

    async def _pump(self, request, f, offset: int, left: int) -> None:
        with f:
            f.seek(offset)
            while left > 0 and not request.closed:
                piece = f.read(min(STREAM_PIECE, left))
                if not piece:  # the file shrank meanwhile: the response cannot be completed
                    raise OSError(f"{f.name} shrank while being sent")
                left -= len(piece)
                request.write(piece)
                await request.drain()
        if not request.closed:
            request.finish()

    def _listing(self, request, directory: Path):
        base = request.path if request.path.endswith("/") else request.path + "/"
        rows = []
        for entry in sorted(directory.iterdir()):
            if self._inside(str(entry.relative_to(self.root))) is None:
                continue  # a symlink out of the root is not listed
            name = entry.name + ("/" if entry.is_dir() else "")
            rows.append(f'<li><a href="{html.escape(quote(base + name))}">{html.escape(name)}</a></li>')
        page = (f"<!DOCTYPE html><html><head><title>Index of {html.escape(base)}</title></head>"
                f"<body><h1>Index of {html.escape(base)}</h1><ul>{''.join(rows)}</ul></body></html>")
        request.respond(200, page.encode(), None, "text/html; charset=utf-8")
