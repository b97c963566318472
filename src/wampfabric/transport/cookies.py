"""WebSocket cookie tracking and the ``cookie`` authmethod's store (Crossbar.io
config: ``"cookie": {"name": "cbtid", "length": 24, "max_age": 864000,
"store": {"type": "memory"}}`` or ``"store": {"type": "file", "filename": "cookies.dat"}``).

A browser that authenticated once (with any method) on a connection carrying
cookie ``cbtid`` is authenticated again with authmethod ``cookie`` on later
connections with that cookie, until the cookie expires.  The file store
appends one JSON line per change (mode 0600) and is read back at start.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from ..config import defaults


class CookieStore:
    def __init__(self, config: dict):
        self.name = config.get("name", defaults.COOKIE_NAME)
        self.length = int(config.get("length", defaults.COOKIE_LENGTH))
        self.max_age = int(config.get("max_age", defaults.COOKIE_MAX_AGE))
        self._cookies: dict[str, dict] = {}

    def create(self) -> str:
        cbtid = secrets.token_urlsafe(self.length)[: self.length]
        self._put({"id": cbtid, "created": time.time(), "auth": None})
        return cbtid

    def get(self, cbtid: str | None) -> dict | None:
        rec = self._cookies.get(cbtid) if cbtid else None
        if rec is None:
            return None
        if time.time() - rec["created"] > self.max_age:
            self._drop(cbtid)
            return None
        return rec

    def identity(self, cbtid: str | None) -> dict | None:
        rec = self.get(cbtid)
        return rec["auth"] if rec else None

    def set_identity(self, cbtid: str, identity: dict | None) -> None:
        rec = self.get(cbtid)
        if rec is not None:
            self._put(dict(rec, auth=identity))

    def header(self, cbtid: str) -> str:
        return f"{self.name}={cbtid}; Max-Age={self.max_age}; Path=/; HttpOnly; SameSite=Lax"

    def cookie_from(self, header_value: str | None) -> str | None:
        if not header_value:
            return None
        for part in header_value.split(";"):
            k, _, v = part.strip().partition("=")
            if k == self.name:
                return v
        return None

    def _put(self, rec: dict) -> None:
        self._cookies[rec["id"]] = rec

    def _drop(self, cbtid: str) -> None:
        self._cookies.pop(cbtid, None)


class FileCookieStore(CookieStore):
    def __init__(self, config: dict, cbdir):
        super().__init__(config)
        self.path = Path(cbdir) / config.get("store", {}).get("filename", "cookies.dat")
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line after a crash
                if rec.get("deleted"):
                    self._cookies.pop(rec.get("id"), None)
                elif isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    self._cookies[rec["id"]] = rec
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.path, 0o600)
        self._file = os.fdopen(fd, "a")

    def _put(self, rec: dict) -> None:
        super()._put(rec)
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()

    def _drop(self, cbtid: str) -> None:
        super()._drop(cbtid)
        self._file.write(json.dumps({"id": cbtid, "deleted": True}) + "\n")
        self._file.flush()


def create_cookie_store(config: dict, cbdir) -> CookieStore:
    kind = config.get("store", {}).get("type", "memory")
    if kind == "file":
        return FileCookieStore(config, cbdir)
    return CookieStore(config)
