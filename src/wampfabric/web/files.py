"""What ``static`` and ``archive`` share: MIME types, validators (ETag/Last-Modified) and
conditional and range requests (RFC 9110 13, 14)."""

from __future__ import annotations

import mimetypes
import time
from email.utils import formatdate, parsedate_to_datetime

_TEXT = "text/plain; charset=utf-8"

# Crossbar.io's additions to the platform's table
EXTRA_MIME_TYPES = {".svg": "image/svg+xml", ".jgz": "text/javascript", ".mjs": "text/javascript",
                    ".wasm": "application/wasm", ".json": "application/json"}


class MimeTypes:
    """Extension -> MIME type: the platform's table, Crossbar.io's extras, then a service's
    ``mime_types`` option (keys with or without the leading dot)."""

    def __init__(self, extra: dict | None = None):
        self.table = dict(EXTRA_MIME_TYPES)
        for ext, mime in (extra or {}).items():
            self.table[ext.lower() if ext.startswith(".") else "." + ext.lower()] = mime

    def guess(self, name: str) -> str:
        dot = name.rfind(".")
        ext = name[dot:].lower() if dot > 0 else ""
        mime = self.table.get(ext) or mimetypes.guess_type("x" + ext)[0] or "application/octet-stream"
        if mime.startswith("text/") and "charset" not in mime:
            mime += "; charset=utf-8"
        return mime


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _parse_date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def not_modified(request, etag: str, mtime: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it (GET/HEAD)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        weak = etag[2:] if etag.startswith("W/") else etag
        return any((t.strip()[2:] if t.strip().startswith("W/") else t.strip()) == weak for t in inm.split(","))
    ims = request.headers.get("if-modified-since")
    if ims is not None:
        since = _parse_date(ims)
        return since is not None and int(mtime) <= since
    return False


def parse_range(request, size: int, etag: str, mtime: float):
    """The byte range asked for: None (the whole file), ``(start, end)`` inclusive, or
    ``"unsatisfiable"``.  One range only: a multi-range request gets the whole file (allowed
    by RFC 9110 14.2), and so does one whose If-Range does not match."""
    value = request.headers.get("range")
    if value is None or request.method not in ("GET", "HEAD"):
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None:
        if_range = if_range.strip()
        if if_range.startswith(('"', 'W/"')):
            if if_range != etag or etag.startswith("W/"):
                return None
        else:
            since = _parse_date(if_range)
            if since is None or int(mtime) > since:
                return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class CacheHeaders:
    """``Cache-Control`` and ``Expires`` for a ``cache_timeout`` (seconds; None: neither).
    ``Expires`` is now + the timeout, worked out per response (cached for the second it is in:
    formatting a date per response costs more than the rest of a cached file's answer)."""

    __slots__ = ("timeout", "_second", "_pairs", "_lines")

    def __init__(self, cache_timeout):
        self.timeout = None if cache_timeout is None else int(cache_timeout)
        self._second = None
        self._pairs: list = []
        self._lines = b""

    def _refresh(self) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            if self.timeout is None:
                return
            self._pairs = [("Cache-Control", f"max-age={self.timeout}, public"),
                           ("Expires", http_date(now + self.timeout))]
            self._lines = "".join(f"{k}: {v}\r\n" for k, v in self._pairs).encode("latin-1")

    def pairs(self) -> list:
        """The headers as ``(name, value)`` pairs (a fresh list: callers may extend it)."""
        self._refresh()
        return list(self._pairs)

    def lines(self) -> bytes:
        """The headers as encoded header lines (``b"Name: value\\r\\n"``...)."""
        self._refresh()
        return self._lines


def cache_headers(cache_timeout) -> list:
    """The cache headers of a response sent now."""
    return CacheHeaders(cache_timeout).pairs()


def serve_bytes(request, data: bytes, mime: str, etag: str, mtime: float, extra_headers: list) -> None:
    """Answer a GET/HEAD with ``data`` (conditional and range requests honoured)."""
    headers = [("ETag", etag), ("Last-Modified", http_date(mtime)), ("Accept-Ranges", "bytes")] + extra_headers
    if not_modified(request, etag, mtime):
        request.respond(304, b"", headers)
        return
    size = len(data)
    rng = parse_range(request, size, etag, mtime)
    if rng is None:
        request.respond(200, data, headers, mime)
    elif rng == "unsatisfiable":
        request.respond(416, b"range not satisfiable\n", headers + [("Content-Range", f"bytes */{size}")], _TEXT)
    else:
        start, end = rng
        request.respond(206, data[start:end + 1], headers + [("Content-Range", f"bytes {start}-{end}/{size}")], mime)


def method_not_allowed(request) -> None:
    request.respond(405, b"method not allowed\n", [("Allow", "GET, HEAD")], _TEXT)
