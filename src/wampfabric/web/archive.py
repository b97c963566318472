"""``archive``: the files of a local ZIP or tar archive (``archive``, relative to the node
directory), as Crossbar.io's archive service, except that nothing is ever downloaded: a
missing archive fails the service's start whatever ``origin`` and ``download`` say.

Only regular-file members with clean relative names are served (no absolute names, no '..',
no links), looked up by exact name, so a request cannot reach anything else.  ZIP members
are read when asked for (kept in memory with ``cache: true``, bounded); a tar archive is read
once at start (compressed tar has no random access), up to ``MAX_TAR_BYTES``.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import tarfile
import zipfile
import zlib
from pathlib import Path

from ..transport.web import WebService
from .files import MimeTypes, method_not_allowed, serve_bytes
from .simple import ServiceStartError

log = logging.getLogger("wampfabric.web.archive")

_TEXT = "text/plain; charset=utf-8"
MAX_TAR_BYTES = 256 * 1024 * 1024
MAX_CACHE_BYTES = 64 * 1024 * 1024


def _clean(name: str) -> str | None:
    """A member name as served, or None if it must not be (absolute, '..', empty)."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if not name or name.startswith("/") or "\x00" in name:
        return None
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts or not parts:
        return None
    return "/".join(parts)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ArchiveWebService(WebService):
    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        path = (Path(transport.cbdir) / config["archive"]).resolve()
        self.path = path
        if not path.is_file():
            why = " (wampfabric never downloads it from 'origin')" if "origin" in config else ""
            raise ServiceStartError(f"archive service: archive file '{path}' does not exist{why}")
        if config.get("download"):
            log.warning("archive service: 'download' is ignored, '%s' is served as it is", path)
        hashes = config.get("hashes")
        if hashes:
            digest = _sha256(path)
            if digest not in [h.lower() for h in hashes]:
                raise ServiceStartError(f"archive service: '{path}' has SHA-256 {digest}, not one of 'hashes'")
        self.cache = bool(config.get("cache", False))
        self.default_object = config.get("default_object")
        self.prefix = (config.get("object_prefix") or "").strip("/")
        self.default_file = config.get("options", {}).get("default_file")
        self.mime = MimeTypes(config.get("mime_types"))
        self.members: dict = {}   # served name -> (mtime, size, zip info | bytes)
        self._cached: dict = {}
        self._cached_bytes = 0
        self.zip = None
        try:
            if zipfile.is_zipfile(path):
                self._load_zip(path)
            elif tarfile.is_tarfile(path):
                self._load_tar(path)
            else:
                raise ServiceStartError(f"archive service: '{path}' is neither a ZIP nor a tar archive")
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
            raise ServiceStartError(f"archive service: cannot read '{path}': {type(e).__name__}: {e}") from None
        log.info("archive service: %d files from %s", len(self.members), path)

    def _load_zip(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            # a symlink stored in a ZIP (Unix mode in the high bits) is not followed
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue
            name = _clean(info.filename)
            if name is not None:
                mtime = calendar.timegm(info.date_time + (0, 0, -1))
                self.members[name] = (mtime, info.file_size, info)

    def _load_tar(self, path: Path) -> None:
        total = 0
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isreg():
                    continue  # links, devices, directories
                name = _clean(member.name)
                if name is None:
                    continue
                total += member.size
                if total > MAX_TAR_BYTES:
                    raise ServiceStartError(f"archive service: '{path}' holds more than {MAX_TAR_BYTES} bytes "
                                            "(use a ZIP archive: its members are read when asked for)")
                f = tar.extractfile(member)
                self.members[name] = (member.mtime, member.size, f.read() if f is not None else b"")

    def handle(self, request, subpath: str):
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
        name = self._find(subpath)
        if name is None and self.default_file:
            name = self._find(self.default_file)
        if name is None:
            return request.respond(404, b"not found\n", None, _TEXT)
        mtime, size, ref = self.members[name]
        try:
            data = self._read(name, ref)
        except (OSError, zipfile.BadZipFile, RuntimeError, EOFError) as e:
            log.error("archive service: cannot read '%s' from %s: %s: %s", name, self.path, type(e).__name__, e)
            return request.respond(500, b"internal error\n", None, _TEXT)
        etag = f'"{mtime:x}-{size:x}-{zlib.crc32(name.encode()):x}"'
        serve_bytes(request, data, self.mime.guess(name), etag, mtime, [])

    def _find(self, subpath: str) -> str | None:
        search = subpath
        if (search == "" or search.endswith("/")) and self.default_object:
            search += self.default_object
        if self.prefix:
            search = f"{self.prefix}/{search}"
        name = _clean(search)
        return name if name is not None and name in self.members else None

    def _read(self, name: str, ref) -> bytes:
        if isinstance(ref, bytes):
            return ref
        data = self._cached.get(name)
        if data is not None:
            return data
        with self.zip.open(ref) as f:
            data = f.read()
        if self.cache and self._cached_bytes + len(data) <= MAX_CACHE_BYTES:
            self._cached[name] = data
            self._cached_bytes += len(data)
        return data

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()
            self.zip = None
