"""``static``: the files of a directory (``directory``, relative to the node directory) or of a
Python package (``package`` + ``resource``), as Crossbar.io's static service.

Never outside the root: the front routes no '..' segment nor NUL, and a file is served only
once its path has been resolved (symlinks included) to lie below the resolved root.

What a request costs: each subpath served is remembered (a bounded LRU table) with its
file's identity (device, inode, size, mtime), its validators and its prebuilt response
headers, and, for small files, its bytes (bounded in total).  A request for a remembered
subpath costs one ``os.stat`` of the path asked for (symlinks followed as the kernel does):
the same identity means the same file, the one found below the root (served as remembered);
anything else (changed, deleted, replaced, a symlink on the way changed or removed, a
directory now) drops the entry and the subpath is resolved again from scratch.
Large files are opened per request (checked against the remembered identity with
``fstat``) and streamed in pieces as the client reads them.
"""

from __future__ import annotations

import html
import importlib
import importlib.resources
import logging
import os
import stat
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

from ..transport.web import WebService
from .files import (CacheHeaders, MimeTypes, http_date, method_not_allowed, not_modified, parse_range,
                    serve_bytes)

log = logging.getLogger("wampfabric.web.static")

_TEXT = "text/plain; charset=utf-8"
DEFAULT_CACHE_TIMEOUT = 12 * 60 * 60  # Crossbar.io's default
CACHED_FILE_MAX = 256 * 1024        # files up to this size are kept in memory
CACHE_TOTAL_MAX = 16 * 1024 * 1024  # bytes of files kept in memory, per service
CACHE_ENTRIES_MAX = 4096            # subpaths remembered, per service
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


class _Entry:
    """A served file: where it is, what it was, and its answer's headers."""

    __slots__ = ("path", "dev", "ino", "size", "mtime_ns", "mtime", "etag", "mime", "lines", "data")

    def __init__(self, path: str, st, mime: str):
        self.path = path  # as asked for: root + subpath (+ index.html), symlinks not resolved
        self.dev, self.ino, self.size, self.mtime_ns = st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        self.mtime = st.st_mtime
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        self.mime = mime
        self.lines = (f"ETag: {self.etag}\r\nLast-Modified: {http_date(st.st_mtime)}\r\n"
                      f"Accept-Ranges: bytes\r\nContent-Type: {mime}\r\n").encode("latin-1")
        self.data = None

    def same(self, st) -> bool:
        return (st.st_ino == self.ino and st.st_mtime_ns == self.mtime_ns and st.st_size == self.size
                and st.st_dev == self.dev)


class StaticWebService(WebService):
    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.root = static_root(config, transport.cbdir)
        options = config.get("options", {})
        self.listing = bool(options.get("enable_directory_listing", False))
        self.mime = MimeTypes(options.get("mime_types"))
        self.cache_headers = CacheHeaders(options.get("cache_timeout", DEFAULT_CACHE_TIMEOUT))
        self.default_file = options.get("default_file")
        self._entries: OrderedDict = OrderedDict()  # subpath -> _Entry
        self._cached_bytes = 0

    def handle(self, request, subpath: str):
        method = request.method
        if method != "GET" and method != "HEAD":
            return method_not_allowed(request)
        entry = self._entries.get(subpath)
        if entry is not None:
            try:
                st = os.stat(entry.path)
            except OSError:
                st = None
            if st is not None and entry.same(st):
                self._entries.move_to_end(subpath)
                if entry.data is not None:
                    return self._answer(request, entry, entry.data)
                return self._from_disk(request, subpath, entry)
            self._forget(subpath)
        return self._lookup(request, subpath)

    # -- a remembered file ------------------------------------------------------------------------

    def _answer(self, request, entry: _Entry, data: bytes):
        headers = request.headers
        if "if-none-match" in headers or "if-modified-since" in headers or "range" in headers:
            return serve_bytes(request, data, entry.mime, entry.etag, entry.mtime, self.cache_headers.pairs())
        return request.respond_prepared(200, entry.lines + self.cache_headers.lines(), data)

    def _from_disk(self, request, subpath: str, entry: _Entry):
        """A remembered file too large to keep in memory: opened, and served if it is still the
        same file (else the subpath is looked up again)."""
        try:
            f = open(entry.path, "rb")
        except OSError:
            f = None
        if f is not None:
            try:
                same = entry.same(os.fstat(f.fileno()))
            except OSError:
                same = False
            if same:
                return self._send_file(request, entry, f)
            f.close()
        self._forget(subpath)
        return self._lookup(request, subpath)

    def _send_file(self, request, entry: _Entry, f):
        if entry.size > STREAM_ABOVE:
            return self._stream(request, entry, f)
        with f:
            try:
                data = f.read()
            except OSError:
                return request.respond(404, b"not found\n", None, _TEXT)
        return self._answer(request, entry, data)

    def _remember(self, subpath: str, entry: _Entry) -> None:
        self._forget(subpath)
        self._entries[subpath] = entry
        if entry.data is not None:
            self._cached_bytes += len(entry.data)
        while len(self._entries) > CACHE_ENTRIES_MAX or self._cached_bytes > CACHE_TOTAL_MAX:
            _, dropped = self._entries.popitem(last=False)
            if dropped.data is not None:
                self._cached_bytes -= len(dropped.data)

    def _forget(self, subpath: str) -> None:
        old = self._entries.pop(subpath, None)
        if old is not None and old.data is not None:
            self._cached_bytes -= len(old.data)

    # -- a subpath looked up from scratch ---------------------------------------------------------

    def _lookup(self, request, subpath: str):
        target = self._inside(subpath)
        asked = self.root / subpath
        if target is not None and target.is_dir():
            if subpath and not request.path.endswith("/"):
                # relative links in the directory's index need the slash
                location = request.raw_path.decode("latin-1") + "/" + ("?" + request.query if request.query else "")
                return request.respond(301, b"moved\n", [("Location", location)], _TEXT)
            index = target / "index.html"
            if index.is_file():
                target = index
                asked = asked / "index.html"
            elif self.listing:
                return self._listing(request, target)
            else:
                target = None
        if target is None or not target.is_file():
            if self.default_file:
                fallback = self._inside(self.default_file)
                if fallback is not None and fallback.is_file():
                    return self._serve(request, None, fallback, fallback)
            return request.respond(404, b"not found\n", None, _TEXT)
        return self._serve(request, subpath, target, asked)

    def _inside(self, rel: str) -> Path | None:
        """The resolved path of ``rel`` below the root, or None if it is not below it."""
        try:
            target = (self.root / rel).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, an unusable name
            return None
        if target != self.root and not target.is_relative_to(self.root):
            return None
        return target

    def _serve(self, request, subpath: str | None, path: Path, asked: Path):
        """Serve the file at ``path`` (resolved, below the root), and remember it under
        ``subpath`` (None: not remembered, e.g. the ``default_file`` fallback) to be checked
        at ``asked`` (the unresolved path) next time."""
        try:
            f = open(path, "rb")
        except OSError:
            return request.respond(404, b"not found\n", None, _TEXT)
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(str(path))
            entry = _Entry(str(asked), st, self.mime.guess(path.name))
            if st.st_size <= CACHED_FILE_MAX:
                data = f.read(st.st_size + 1)
                f.close()
                if len(data) != st.st_size:  # changed while read: served as read, not remembered
                    return self._answer(request, entry, data)
                entry.data = data
        except OSError:
            f.close()
            return request.respond(404, b"not found\n", None, _TEXT)
        if subpath is not None:
            self._remember(subpath, entry)
        if entry.data is not None:
            return self._answer(request, entry, entry.data)
        return self._send_file(request, entry, f)

    def _stream(self, request, entry: _Entry, f):
        headers = [("ETag", entry.etag), ("Last-Modified", http_date(entry.mtime)), ("Accept-Ranges", "bytes")]
        headers += self.cache_headers.pairs()
        if not_modified(request, entry.etag, entry.mtime):
            f.close()
            return request.respond(304, b"", headers)
        size = entry.size
        rng = parse_range(request, size, entry.etag, entry.mtime)
        if rng == "unsatisfiable":
            f.close()
            return request.respond(416, b"range not satisfiable\n", headers + [("Content-Range", f"bytes */{size}")],
                                   _TEXT)
        if rng is None:
            status, start, end = 200, 0, size - 1
        else:
            (start, end), status = rng, 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        headers += [("Content-Type", entry.mime), ("Content-Length", str(end - start + 1))]
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

    def close(self) -> None:
        self._entries.clear()
        self._cached_bytes = 0
