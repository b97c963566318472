"""Helpers of the web tests: a raw HTTP/1.1 connection that reads responses exactly as sent
(status, headers, body by Content-Length or chunks), and the node these tests run against."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
import zipfile
from pathlib import Path

from support.nodes import FULL_PERMS, free_port


class Raw:
    """One client connection speaking HTTP by hand."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buf = bytearray()
        self._pos = 0  # what is before it has been consumed

    @property
    def buf(self) -> bytes:
        """What has been received and not consumed yet."""
        return bytes(self._buf[self._pos:])

    @buf.setter
    def buf(self, value: bytes) -> None:
        self._buf = bytearray(value)
        self._pos = 0

    def send(self, data: bytes) -> "Raw":
        self.s.sendall(data)
        return self

    def _more(self) -> bool:
        chunk = self.s.recv(65536)
        if not chunk:
            return False
        if self._pos > 65536:  # compact now and then, not per response
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += chunk
        return True

    def _line(self) -> bytes:
        while (i := self._buf.find(b"\r\n", self._pos)) < 0:
            if not self._more():
                raise EOFError(f"connection closed; received {self.buf!r}")
        line = bytes(self._buf[self._pos:i])
        self._pos = i + 2
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._more():
                raise EOFError(f"connection closed after {len(self._buf) - self._pos} of {n} bytes")
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        return out

    def response(self, head: bool = False):
        """``(status, headers, body)`` of the next response; ``headers`` lower-case names."""
        status_line = self._line().decode("latin-1")
        status = int(status_line.split(" ", 2)[1])
        headers: dict = {}
        while line := self._line():
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if head or status < 200 or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    return status, headers, body
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n"
        if "content-length" in headers:
            return status, headers, self._exactly(int(headers["content-length"]))
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b"", version="1.1"):
        lines = [f"{method} {path} HTTP/{version}", "Host: x"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return self.response(head=method == "HEAD")

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the server closes (EOF or reset) within ``timeout``."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self._buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.s.close()


def get(port: int, path: str, headers: dict | None = None, method: str = "GET"):
    """One request on a new connection, ``Connection: close``."""
    c = Raw(port)
    try:
        return c.request(method, path, dict(headers or {}, Connection="close"))
    finally:
        c.close()


BIG_SIZE = 3 * 1024 * 1024 + 17

RESOURCE_MODULE = '''
"""A user's service for the ``resource`` web service (Crossbar.io's classname + extra)."""


class Echo:
    max_body_size = 4096

    def __init__(self, extra):
        self.prefix = extra.get("prefix", "").encode()

    def handle(self, request, subpath):
        if subpath == "boom":
            raise ValueError("the service failed")
        if subpath == "later":
            return self._later(request)
        body = self.prefix + request.method.encode() + b" " + subpath.encode() + b" " + request.body
        request.respond(200, body, [("X-Query", request.query)], "text/plain")

    async def _later(self, request):
        import asyncio
        await asyncio.sleep(0.05)
        request.start_response(200, [("Content-Type", "text/plain")])
        for i in range(3):
            request.write(b"part%d;" % i)
            await request.drain()
        request.finish()
'''


def make_site(root: Path) -> None:
    """The files the services serve: a static directory, archives, a package resource."""
    site = root / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<html><body>site index</body></html>")
    (site / "a.txt").write_text("file a")
    (site / "b.txt").write_text("file b")
    (site / "digits.txt").write_text("0123456789")
    (site / "x.wamp").write_text("custom type")
    (site / "sub" / "c.txt").write_text("file c")
    (site / "big.bin").write_bytes(bytes(range(256)) * (BIG_SIZE // 256) + b"x" * (BIG_SIZE % 256))
    (root / "outside.txt").write_text("top secret outside the root")
    (site / "escape.txt").symlink_to(root / "outside.txt")
    (site / "escape_dir").symlink_to(root)
    (site / "sub" / "to_outside").symlink_to(root / "outside.txt")
    with zipfile.ZipFile(root / "site.zip", "w") as z:
        z.writestr("pub/index.html", "<html>zip index</html>")
        z.writestr("pub/app.js", "console.log(1)")
        z.writestr("pub/docs/readme.txt", "zip readme")
        z.writestr("../evil.txt", "evil member")
        z.writestr("secret.txt", "outside the prefix")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in (("index.html", b"<html>tar index</html>"), ("css/site.css", b"body{}"),
                           ("../evil.txt", b"evil member")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        t.addfile(link)
    (root / "site.tar.gz").write_bytes(buf.getvalue())
    pkg = root / "webpkg"
    (pkg / "files").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "files" / "index.html").write_text("<html>package index</html>")
    (root / "webres.py").write_text(RESOURCE_MODULE)


WEB_OPTIONS = {"header_timeout": 1.5, "body_timeout": 1.5, "keepalive_timeout": 2.5, "write_timeout": 2,
               "max_header_size": 4096, "max_header_count": 40, "max_request_line": 2048}


def web_config(ports: dict, rs_path: str) -> dict:
    root = Path(rs_path).parent
    make_site(root)
    ports.clear()
    ports.update(web=free_port(), uni=free_port())
    paths = {
        "/": {"type": "static", "directory": "../site",
              "options": {"enable_directory_listing": True, "mime_types": {".wamp": "application/x-wamp"},
                          "cache_timeout": 60}},
        "ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]},
        "json": {"type": "json", "value": {"a": 1, "b": [1, 2], "s": "ü"}},
        "redir": {"type": "redirect", "url": "http://example.com/target"},
        "echo": {"type": "resource", "classname": "webres.Echo", "extra": {"prefix": "echo:"}},
        "arc": {"type": "archive", "archive": "../site.zip", "origin": "https://example.com/site.zip",
                "default_object": "index.html", "object_prefix": "pub", "cache": True},
        "tar": {"type": "archive", "archive": "../site.tar.gz", "default_object": "index.html"},
        "pkg": {"type": "static", "package": "webpkg", "resource": "files", "options": {"cache_timeout": None}},
        "info": {"type": "nodeinfo"},
        "nest": {"type": "path", "paths": {
            "/": {"type": "json", "value": "nested root"},
            "deep/er": {"type": "json", "value": "nested deeper"},
            "ws2": {"type": "websocket", "serializers": ["json"]},
        }},
    }
    return {"version": 2, "workers": [{
        "type": "router", "options": {"pythonpath": [".."]},
        "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
        "transports": [
            {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
             "options": WEB_OPTIONS, "paths": paths},
            {"type": "universal", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["uni"]},
             "rawsocket": {"serializers": ["json", "cbor"]},
             "websocket": {"ws": {"type": "websocket", "serializers": ["json", "cbor"]}},
             "web": {"options": WEB_OPTIONS, "paths": {"/": {"type": "static", "directory": "../site"},
                                                      "json": {"type": "json", "value": [1, 2, 3]}}}},
        ],
    }]}


def json_body(body: bytes):
    return json.loads(body.decode())


def wait_log(node, text: str, timeout: float = 5.0) -> bool:
    """Log lines reach the node log through the controller: wait for ``text``."""
    deadline = time.monotonic() + timeout
    while text not in node.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in node.log()
