"""The HTTP/1.1 front of ``web`` and ``universal`` transports, on httptools (llhttp).

One ``HttpProtocol`` per connection parses requests with callbacks and hands each complete
request (headers and body) to the web service its path maps to (``WebPaths``, transport/web.py).
Requests are answered strictly in order: a pipelined request is dispatched when the one before
it has finished, so no response is ever buffered behind another.  A synchronous service costs
no task; a service whose ``handle`` returns an awaitable gets one.

What it guards against (limits and timeouts: ``HttpLimits``, from the transport's ``options``):

- request line, header block and header count limits (414, 431), the body limit of the
  service a request goes to (413 before the body is read: from Content-Length, or while a
  chunked body arrives);
- request smuggling: Content-Length with Transfer-Encoding, repeated Content-Length,
  malformed chunking (llhttp refuses them: 400 and the connection closes), transfer codings
  other than ``chunked`` (501);
- slow clients: a request's headers must arrive within ``header_timeout`` of its first byte,
  its body within ``body_timeout`` of the headers, an idle keep-alive connection is closed
  after ``keepalive_timeout``, and a client that does not read what it asked for is dropped
  after ``write_timeout``;
- memory: reading pauses while the socket's write buffer is above its high-water mark or
  ``max_pipelined`` requests wait for their turn.

A WebSocket upgrade on a path whose service is ``websocket`` is handed to picows: its server
protocol is set on the transport and fed the request, so the WAMP hot path after the
handshake is picows' alone (docs/decisions.md, "Web services").  A WebSocket upgrade on a path
whose service has ``takeover(request, transport, tail)`` (the reverse proxy) is handed to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, unquote

import httptools

from .. import __version__
from ..common.logs import RateLimitedLog
from .coalesce import reset_connection
from .endpoints import peer_of

log = logging.getLogger("wampfabric.transport.http")
# refused requests are a client's doing, at will: one line a second at most
_refused = RateLimitedLog(log)

SERVER = f"wampfabric/{__version__}".encode()



def feed(proto: asyncio.BaseProtocol, data: bytes) -> None:
    """Hand ``data`` (bytes already read from a connection) to the protocol that now owns it,
    buffered or not (a handover: universal transport's sniffer, WebSocket upgrades)."""
    if isinstance(proto, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buf = proto.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]
    else:
        proto.data_received(data)

class HttpLimits:
    """The front's limits and timeouts (seconds), from a ``web`` transport's ``options``
    (``universal``: its ``web.options``); names and defaults are in docs/web.md."""

    DEFAULTS = {
        "max_request_line": 8192,       # bytes of method + target + version (414 above)
        "max_header_size": 16384,       # bytes of all header lines (431 above)
        "max_header_count": 100,        # header lines (431 above)
        "max_pipelined": 16,            # parsed requests waiting for their turn before reading pauses
        "header_timeout": 10.0,         # first byte of a request -> end of its headers
        "body_timeout": 60.0,           # end of the headers -> end of the body
        "keepalive_timeout": 15.0,      # idle between requests (and before the first one)
        "write_timeout": 60.0,          # the client does not read what it asked for
        "write_buffer_high": 256 * 1024,  # socket write buffer high-water mark (bytes)
    }

    __slots__ = tuple(DEFAULTS) + ("hsts",)

    def __init__(self, options: dict | None = None, ws_handshake_timeout: float | None = None):
        options = options or {}
        for name, default in self.DEFAULTS.items():
            setattr(self, name, options.get(name, default))
        if ws_handshake_timeout and "header_timeout" not in options:
            # a port with WebSocket paths: an upgrade request must be in within the (longest)
            # open_handshake_timeout of its WebSocket services, as on a plain websocket transport
            self.header_timeout = ws_handshake_timeout
        # Crossbar.io's web transport option: the idle timeout of a client connection
        if "client_timeout" in options and "keepalive_timeout" not in options:
            self.keepalive_timeout = options["client_timeout"]
        self.hsts = None
        if options.get("hsts"):
            self.hsts = f"max-age={int(options.get('hsts_max_age', 31536000))}"


_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_STATUS_LINES: dict = {}


def _status_line(version: bytes, status: int) -> bytes:
    key = (version, status)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = _STATUS_LINES[key] = b"HTTP/%s %d %s\r\n" % (version, status, _REASONS.get(status, b"Unknown"))
    return line


_date_cache = [0, b""]


def _date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode()
    return _date_cache[1]


def _no_body(status: int) -> bool:
    return status < 200 or status in (204, 304)


class HttpRequest:
    """One request, handed to a service's ``handle`` (contract: docs/web.md)."""

    # defaults as class attributes: a request sets only what it needs
    body = b""
    head = False
    _args = None
    _headers = None
    _url = b""
    _state = 0               # 0: not answered, 1: streaming, 2: finished
    _chunked = False
    _close_cbs = None
    _expect_continue = False
    _body_parts = None
    _body_size = 0
    _max_body = 1 << 20
    _upgrade = False
    _status = 0
    _subpath = ""

    def __init__(self, connection: "HttpProtocol"):
        self.connection = connection
        self._raw_headers: list = []

    @property
    def headers(self) -> dict:
        """Lower-case names; repeated headers joined with ", " (built on first use)."""
        h = self._headers
        if h is None:
            h = self._headers = {}
            for name, value in self._raw_headers:
                key = name.decode("latin-1").lower()
                val = value.decode("latin-1")
                h[key] = f"{h[key]}, {val}" if key in h else val
        return h

    # -- what a service reads -----------------------------------------------------------------

    @property
    def args(self) -> dict:
        if self._args is None:
            self._args = parse_qs(self.query, keep_blank_values=True)
        return self._args

    @property
    def peer(self) -> str:
        return self.connection.peer

    @property
    def subpath(self) -> str:
        """The rest of the path below the service's mount point (what ``handle`` is given)."""
        sub = self._subpath
        return sub if isinstance(sub, str) else ""

    @property
    def is_secure(self) -> bool:
        return self.connection.is_secure

    @property
    def responded(self) -> bool:
        return self._state != 0

    @property
    def closed(self) -> bool:
        return self.connection.closed

    def add_close_callback(self, cb) -> None:
        """``cb()`` when the connection closes before this request has finished."""
        if self._close_cbs is None:
            self._close_cbs = []
        self._close_cbs.append(cb)

    # -- answering ----------------------------------------------------------------------------

    def respond(self, status: int, body: bytes = b"", headers: list | None = None,
                content_type: str | None = None) -> None:
        """A whole response (Content-Length, Server and Date are added)."""
        if self._state != 0:
            raise RuntimeError("response already started")
        self._state = 2
        self._status = status
        conn = self.connection
        parts = [self._head_line(status)]
        if content_type is not None:
            parts.append(b"Content-Type: %s\r\n" % content_type.encode("latin-1"))
        if headers:
            parts.extend(b"%s: %s\r\n" % (k.encode("latin-1"), str(v).encode("latin-1")) for k, v in headers)
        if _no_body(status):
            body = b""
        else:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        if not self.head and body:
            parts.append(body)
        conn._write(b"".join(parts))
        conn._finished(self)

    def respond_prepared(self, status: int, lines: bytes, body: bytes = b"") -> None:
        """``respond`` with the header lines already encoded (``b"Name: value\\r\\n"``..., the
        Content-Type among them): for a service that sends the same headers many times (a static
        file's answer is built once, not per request)."""
        if self._state != 0:
            raise RuntimeError("response already started")
        self._state = 2
        self._status = status
        if _no_body(status):
            out = (self._head_line(status), lines, b"\r\n")
        else:
            out = (self._head_line(status), lines, b"Content-Length: %d\r\n\r\n" % len(body),
                   b"" if self.head else body)
        conn = self.connection
        conn._write(b"".join(out))
        conn._finished(self)

    def start_response(self, status: int, headers: list | None = None) -> None:
        """Start a streamed response: chunked unless ``headers`` carry Content-Length (HTTP/1.0
        clients: the body ends with the connection)."""
        if self._state != 0:
            raise RuntimeError("response already started")
        self._state = 1
        self._status = status
        parts = [None]
        has_length = False
        for k, v in headers or ():
            lk = k.lower()
            if lk == "content-length":
                has_length = True
            elif lk == "transfer-encoding":
                continue  # the front decides the framing
            parts.append(b"%s: %s\r\n" % (k.encode("latin-1"), str(v).encode("latin-1")))
        if not has_length and not _no_body(status):
            if self.version == "1.1":
                self._chunked = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self._keep_alive = False
        parts[0] = self._head_line(status)
        parts.append(b"\r\n")
        self.connection._write(b"".join(parts))

    def write(self, data: bytes) -> None:
        if self._state != 1:
            raise RuntimeError("write() needs start_response() first" if self._state == 0 else "response finished")
        if not data or self.head or _no_body(self._status):
            return
        if self._chunked:
            self.connection._write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.connection._write(data)

    def finish(self) -> None:
        if self._state == 2:
            return
        if self._state == 0:
            raise RuntimeError("finish() needs start_response() first")
        self._state = 2
        if self._chunked and not self.head:
            self.connection._write(b"0\r\n\r\n")
        self.connection._finished(self)

    async def drain(self) -> None:
        """Wait while this request is not the one being answered or the socket's write buffer is
        above its high-water mark."""
        conn = self.connection
        while not conn.closed and self._state != 2 and (conn._writing_paused or conn._current is not self):
            fut = conn._loop.create_future()
            if not conn._drain_waiters:
                conn._drain_waiters = []
            conn._drain_waiters.append(fut)
            await fut

    def _head_line(self, status: int) -> bytes:
        conn = self.connection
        if self._keep_alive and conn._closing and conn._error is None and not conn._queue:
            self._keep_alive = False  # the last answer on this connection
        parts = [_status_line(b"1.1", status), b"Server: ", SERVER, b"\r\nDate: ", _date(), b"\r\n"]
        if not self._keep_alive:
            parts.append(b"Connection: close\r\n")
        elif self.version == "1.0":
            parts.append(b"Connection: keep-alive\r\n")
        hsts = conn.server.limits.hsts
        if hsts is not None and conn.is_secure:
            parts.append(b"Strict-Transport-Security: %s\r\n" % hsts.encode())
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.path!r}>"


class HttpServer:
    """What the connections of one transport share: its paths, limits and the picows server
    protocol factory for WebSocket upgrades."""

    def __init__(self, paths, options: dict | None, ws_protocol_factory, is_secure: bool = False,
                 ws_handshake_timeout: float | None = None):
        self.paths = paths
        self.loop = asyncio.get_running_loop()
        self.limits = HttpLimits(options, ws_handshake_timeout)
        self.ws_protocol_factory = ws_protocol_factory
        self.is_secure = is_secure
        # connections that have not sent anything yet -> their deadline, swept by one timer per
        # server instead of a timer per connection (a WebSocket join then costs no timer at all)
        self.fresh: dict = {}
        self._sweeper = None
        self._tick = min(1.0, self.limits.header_timeout / 4)

    def __call__(self) -> "HttpProtocol":
        return HttpProtocol(self)

    def watch(self, proto: "HttpProtocol", deadline: float) -> None:
        self.fresh[proto] = deadline
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._tick, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        fresh = self.fresh
        expired = [p for p, deadline in fresh.items() if deadline <= now]
        for p in expired:
            del fresh[p]
            p._close()  # silent since it was accepted
        self._sweeper = self.loop.call_later(self._tick, self._sweep) if fresh else None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# One read buffer for every connection: uvloop reads into it and ``buffer_updated`` parses what
# came before the loop reads anything else (httptools copies what it hands to the callbacks).
_READ_BUF = bytearray(64 * 1024)
_READ_VIEW = memoryview(_READ_BUF)


class HttpProtocol(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection.

    A buffered protocol without ``data_received``: besides sparing a ``bytes`` object per read,
    this leaves nothing of it behind after a WebSocket handover (uvloop keeps a protocol's
    ``data_received`` after ``set_protocol``: the whole protocol, per joined session)."""

    # the state of a fresh connection, as class attributes: a connection sets only what changes
    # (a WebSocket join passes through here: every attribute is CPU per join)
    transport = None
    closed = False
    _peer = None
    _req: HttpRequest | None = None          # being parsed
    _queue = ()                              # parsed, waiting for their turn (a deque once used)
    _current: HttpRequest | None = None      # being answered
    _head_bytes = 0
    _phase = 0                               # 0: between requests, 1: headers, 2: body
    _phase_since = 0.0
    _deadline = None
    _timer = None
    _writing_paused = False
    _write_paused_since = 0.0
    _reading_paused = False
    _drain_waiters = ()
    _closing = False                         # close once the queue is answered
    _error = None                            # (status, message) to answer after the queue
    _upgrade_tail = None                     # bytes after an upgrade request
    _served = False                          # a request has been answered
    _pumping = False                         # _next is dispatching queued requests
    _shut = False                            # close() or abort() called
    _now = 0.0                               # loop time of the read being parsed
    _fresh = True                            # nothing read yet
    _parser = None                           # made at the first read a join does not take

    def __init__(self, server: HttpServer):
        self.server = server
        self.limits = server.limits
        self.is_secure = server.is_secure
        self._loop = server.loop

    # -- asyncio ------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self.limits.write_buffer_high)
        # the first request's headers are due within header_timeout of the accept; until the
        # first read the server's sweeper watches the connection (HttpServer.watch)
        self._phase_since = now = self._loop.time()
        self.server.watch(self, now + self.limits.header_timeout)

    def get_buffer(self, sizehint: int):
        return _READ_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        if self._fresh:
            self._fresh = False
            self.server.fresh.pop(self, None)
            if _READ_BUF.startswith(b"GET ") and self.server.ws_protocol_factory is not None \
                    and self._join(nbytes):
                return
        self._received(_READ_VIEW[:nbytes])

    def _join(self, nbytes: int) -> bool:
        """The usual WebSocket join: a connection's first read holds a whole GET with
        ``Upgrade: websocket`` to a ``websocket`` path.  It goes to picows as read (picows
        parses and checks the handshake itself, as on a plain ``websocket`` transport), without
        a parse here beyond the request line and the Upgrade header (True: handed over)."""
        buf = _READ_BUF
        end = buf.find(b"\r\n\r\n", 0, nbytes)
        if end < 0:
            return False
        head = buf[:end].lower()
        i = head.find(b"\r\nupgrade:")
        if i < 0:
            return False
        j = head.find(b"\r\n", i + 10)
        if head.find(b"websocket", i + 10, j if j >= 0 else end) < 0:
            return False
        line = head.find(b"\r\n")
        target, _, version = bytes(buf[4:line]).rpartition(b" ")
        if not version.startswith(b"HTTP/1.") or not target.startswith(b"/"):
            return False
        path_b = target.partition(b"?")[0].partition(b"#")[0]
        try:
            path = path_b.decode("ascii")
        except UnicodeDecodeError:
            return False
        if "%" in path:
            path = unquote(path, errors="replace")
        service, _ = self.server.paths.resolve(path)
        if service is None or getattr(service, "ws", None) is None:
            return False
        self._handover(_READ_VIEW[:nbytes], service)
        return True

    # not ``data_received``: uvloop keeps a protocol's ``data_received`` (and with it the protocol)
    # for the connection's lifetime once it has one, even after ``set_protocol``
    def _received(self, data) -> None:
        """``data``: a memoryview valid during this call only."""
        if self._closing or self.closed:
            return
        self._now = self._loop.time()
        entry_phase = self._phase
        entry_req = self._req
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            # the parser stops after an upgrade request: the rest is the new protocol's (or nobody's)
            queue = self._queue
            if (entry_phase == 0 and not self._served and self._current is None and len(queue) == 1
                    and data[:4] == b"GET "):
                # the usual WebSocket join: the upgrade is the connection's first request and came
                # in this read, so what was read is exactly what picows must see
                req = queue[0]
                service = req._service
                if req._upgrade and service is not None and getattr(service, "ws", None) is not None \
                        and self.server.ws_protocol_factory is not None:
                    self._queue = ()
                    self._handover(data, service)
                    return
            self._upgrade_tail = bytes(data[e.args[0]:])
            self._pause_reading()
            if self._current is None:
                self._next()
            return
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            if isinstance(cause, _BadRequest):
                self._fail(cause.status, cause.message)
            else:
                log.error("HTTP front error on connection %s: %s: %s", self.peer, type(cause).__name__, cause)
                self._fail(500, "internal error")
            return
        except httptools.HttpParserError as e:
            message = str(e) or type(e).__name__
            if "Data after `Connection: close`" in message:
                self._closing = True
            else:
                self._fail(400, f"bad request: {message}")
            return
        if self._phase == 1:
            # a request's head spread over reads: what is held for it stays bounded (llhttp keeps
            # nothing; httptools and we keep the header lines read so far)
            # a whole read belongs to the head only if the head began before it and is not done;
            # one that began in this read holds at most this read
            self._head_bytes = self._head_bytes + len(data) if self._req is entry_req else 0
            if self._head_bytes > self.limits.max_header_size + self.limits.max_request_line + 4096:
                self._fail(431, "request header fields too large")
                return
        self._arm()
        if len(self._queue) >= self.limits.max_pipelined:
            self._pause_reading()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._fresh:
            self.server.fresh.pop(self, None)
        self._cancel_timer()
        self._parser = None  # the parser holds this protocol's callbacks: no cycle left for the GC
        for req in ([self._current] if self._current is not None else []) + list(self._queue):
            cbs, req._close_cbs = req._close_cbs, None
            for cb in cbs or ():
                try:
                    cb()
                except Exception as e:  # a service's callback: a log line, the others still run
                    log.error("close callback of %r failed: %s: %s", req, type(e).__name__, e)
        self._queue = ()
        self._wake_drainers()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._write_paused_since = self._loop.time()
        self._pause_reading()
        self._arm()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if len(self._queue) < self.limits.max_pipelined and self._upgrade_tail is None:
            self._resume_reading()
        self._wake_drainers()
        self._arm()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._req = HttpRequest(self)
        self._phase = 1
        self._phase_since = self._now

    def on_url(self, url: bytes) -> None:
        req = self._req
        url = req._url + url if req._url else url  # llhttp may hand the target in pieces
        if len(url) > self.limits.max_request_line:
            raise _BadRequest(414, "request line too long")
        req._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        # as little as possible per header: the checks and the dict come at the end of the headers
        raw = self._req._raw_headers
        raw.append((name, value))
        if len(raw) > self.limits.max_header_count:
            raise _BadRequest(431, "too many header fields")

    def on_headers_complete(self) -> None:
        req = self._req
        parser = self._parser
        raw = req._raw_headers
        limits = self.limits
        # what the front itself needs; the headers dict is built when a service asks for it
        length = te = expect = upgrade = None
        size = 0
        for name, value in raw:
            n = len(name)
            size += n + len(value) + 4
            if n == 14 or n == 17 or n == 6 or n == 7:
                name = name.lower()
                if name == b"content-length":
                    length = value
                elif name == b"transfer-encoding":
                    te = value if te is None else te + b", " + value
                elif name == b"expect":
                    expect = value
                elif name == b"upgrade":
                    upgrade = value
        if size > limits.max_header_size:
            raise _BadRequest(431, "request header fields too large")
        url = req._url
        req.method = method = parser.get_method().decode("latin-1")
        req.version = parser.get_http_version()
        req.head = method == "HEAD"
        req._keep_alive = parser.should_keep_alive()
        self._phase = 2
        self._phase_since = self._now
        path_b, _, query = url.partition(b"?")
        path_b = path_b.partition(b"#")[0]
        if not path_b.startswith(b"/"):
            if method == "OPTIONS" and path_b == b"*":
                path_b = b"/"
            elif path_b.startswith((b"http://", b"https://")):  # absolute form (RFC 7230 5.3.2)
                path_b = b"/" + path_b.split(b"/", 3)[3] if path_b.count(b"/") >= 3 else b"/"
            else:
                raise _BadRequest(400, "bad request target")
        req.raw_path = path_b
        req.query = query.decode("latin-1")
        path = path_b.decode("latin-1") if path_b.isascii() else path_b.decode("utf-8", "replace")
        req.path = path = unquote(path, errors="replace") if "%" in path else path
        if te is not None and te.strip().lower() != b"chunked":
            raise _BadRequest(501, f"transfer coding not supported: {te.decode('latin-1')}")
        req._upgrade = upgrade is not None and b"websocket" in upgrade.lower()
        service, subpath = self.server.paths.resolve(path)
        req._service = service
        req._subpath = subpath  # for no service: (status, message)
        req._max_body = 1 << 20
        if service is None:
            return
        limit = getattr(service, "max_body_size", 1 << 20)
        req._max_body = limit
        if length is not None and length.isdigit() and int(length) > limit:
            raise _BadRequest(413, f"request body larger than {limit} bytes")
        if expect is not None and expect.lower() == b"100-continue" and (length is not None or te is not None):
            if req.version == "1.1":
                if self._current is None and not self._queue:
                    self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                else:
                    req._expect_continue = True

    def on_body(self, body: bytes) -> None:
        req = self._req
        req._body_size += len(body)
        if req._body_size > req._max_body:
            raise _BadRequest(413, f"request body larger than {req._max_body} bytes")
        if req._body_parts is None:
            req._body_parts = [body]
        else:
            req._body_parts.append(body)

    def on_message_complete(self) -> None:
        req = self._req
        self._req = None
        self._phase = 0
        self._phase_since = self._now
        parts = req._body_parts
        if parts is not None:
            req.body = parts[0] if len(parts) == 1 else b"".join(parts)
            req._body_parts = None
        if self._parser.should_upgrade():
            # answered once the parser has said where the request ends (HttpParserUpgrade)
            req._keep_alive = False
            self._enqueue(req)
        elif self._current is None and not self._queue:
            self._dispatch(req)
        else:
            self._enqueue(req)

    def _enqueue(self, req: HttpRequest) -> None:
        if not self._queue:
            if type(self._queue) is tuple:
                self._queue = deque()
        self._queue.append(req)

    # -- answering in order -------------------------------------------------------------------

    def _dispatch(self, req: HttpRequest) -> None:
        self._current = req
        if self._drain_waiters:
            self._wake_drainers()
        service, subpath = req._service, req._subpath
        if req._upgrade:
            if self._upgrade_request(req, service):
                return
        elif service is None:
            status, message = subpath
            req.respond(status, message.encode() + b"\n", content_type="text/plain; charset=utf-8")
            return
        try:
            result = service.handle(req, subpath)
        except Exception as e:
            self._service_error(req, service, e)
            return
        if result is not None and hasattr(result, "__await__"):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t, req=req, service=service: self._task_done(t, req, service))

    def _task_done(self, task, req, service) -> None:
        if task.cancelled():
            if not req.responded and not self.closed:
                req.respond(503, b"request cancelled\n", content_type="text/plain; charset=utf-8")
            return
        e = task.exception()
        if e is not None:
            self._service_error(req, service, e)

    def _service_error(self, req, service, e) -> None:
        # a bug or an unusable request: a log line, never a traceback
        log.error("error serving %s %r (%s service): %s: %s", req.method, req.path, type(service).__name__,
                  type(e).__name__, e)
        if self.closed:
            return
        if not req.responded:
            req.respond(500, b"internal error\n", content_type="text/plain; charset=utf-8")
        elif req._state == 1:  # a streamed response cut short: the client must see it end abnormally
            self._abort()

    def _finished(self, req: HttpRequest) -> None:
        """``req`` has been answered completely: on to the next request, or close."""
        if req is not self._current:
            return
        self._current = None
        self._served = True
        req._close_cbs = None
        if not req._keep_alive or req._upgrade:
            self._close()
            return
        if not self._pumping:  # else the loop in _next goes on
            self._next()

    def _next(self) -> None:
        """Dispatch queued requests while they are answered at once (a loop, not a recursion:
        thousands of pipelined requests may be queued behind a slow one), then, with nothing left
        to answer, send a deferred 100 Continue or error, or close, or wait for the next request."""
        self._pumping = True
        try:
            while self._current is None and self._queue and not self._shut:
                nxt = self._queue.popleft()
                if (self._reading_paused and not self._writing_paused and self._upgrade_tail is None
                        and len(self._queue) < self.limits.max_pipelined):
                    self._resume_reading()
                self._dispatch(nxt)
        finally:
            self._pumping = False
        if self._current is not None or self._queue or self._shut or self.closed:
            return
        if self._req is not None and self._req._expect_continue:
            self._req._expect_continue = False
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self._error is not None:
            status, message = self._error
            self._error = None
            self._send_error(status, message)
            return
        if self._closing:
            self._close()
            return
        self._wake_drainers()
        self._arm()

    # -- WebSocket upgrades -------------------------------------------------------------------

    def _upgrade_request(self, req: HttpRequest, service) -> bool:
        """Hand a WebSocket upgrade to picows if its service is a WebSocket service, or to the
        service's ``takeover``; else answer it here (True: handled)."""
        req._keep_alive = False
        if service is None:
            status, message = req._subpath
            req.respond(status, message.encode() + b"\n", content_type="text/plain; charset=utf-8")
            return True
        if getattr(service, "ws", None) is None:
            if getattr(service, "takeover", None) is not None and self._upgrade_tail is not None:
                self._take_over(req, service)
                return True
            req.respond(404, b"not a WebSocket endpoint\n", content_type="text/plain; charset=utf-8")
            return True
        if req.method != "GET":
            return False  # the service answers (426)
        if self._upgrade_tail is None or self.server.ws_protocol_factory is None:
            req.respond(400, b"bad WebSocket upgrade request (Connection: upgrade missing)\n",
                        content_type="text/plain; charset=utf-8")
            return True
        head = [b"GET %s HTTP/1.1\r\n" % req._url]
        head.extend(b"%s: %s\r\n" % nv for nv in req._raw_headers)
        head.append(b"\r\n")
        head.append(self._upgrade_tail)
        self._handover(b"".join(head), service)
        return True

    def _handover(self, data: bytes, service) -> None:
        transport = self.transport
        self.closed = True  # this protocol is done with the connection
        self._cancel_timer()
        self._current = None
        self._upgrade_tail = None
        # nothing of this protocol outlives the handover: the parser refers back to it (a cycle
        # the GC would have to find, per joined session)
        self._parser = None
        self.transport = None
        proto = self.server.ws_protocol_factory()
        self.server.paths.handover_service = service
        try:
            transport.set_protocol(proto)
            proto.connection_made(transport)
            feed(proto, data)
        finally:
            self.server.paths.handover_service = None
        if self._reading_paused:
            transport.resume_reading()

    def _take_over(self, req: HttpRequest, service) -> None:
        """A WebSocket upgrade to a service with ``takeover(request, transport, tail)`` (the
        reverse proxy): the connection is the service's from here on, with reading paused (the
        service sets its own protocol on ``transport`` and resumes reading when it is ready);
        ``tail`` holds the bytes the client sent after the upgrade request."""
        transport, tail = self.transport, self._upgrade_tail
        self.closed = True  # as for a handover: nothing of this protocol stays with the connection
        self._cancel_timer()
        self._current = None
        self._upgrade_tail = None
        self._parser = None
        self.transport = None
        try:
            service.takeover(req, transport, tail)
        except Exception as e:
            log.error("error taking over %s %r (%s service): %s: %s", req.method, req.path, type(service).__name__,
                      type(e).__name__, e)
            transport.abort()

    # -- errors, closing ----------------------------------------------------------------------

    def _fail(self, status: int, message: str) -> None:
        """A request that cannot be parsed or is refused before its body: answer once the
        requests before it are answered, then close."""
        _refused.warning("HTTP %d to %s: %s", status, self.peer, message)
        self._closing = True
        self._req = None
        self._phase = 0
        self._pause_reading()
        if self._current is None and not self._queue:
            self._send_error(status, message)
        else:
            self._error = (status, message)
            self._arm()

    def _send_error(self, status: int, message: str) -> None:
        body = message.encode("utf-8", "replace") + b"\n"
        self._write(b"".join((_status_line(b"1.1", status), b"Server: ", SERVER, b"\r\nDate: ", _date(),
                              b"\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(body), body)))
        self._close()

    def _close(self) -> None:
        self._closing = True
        self._shut = True
        self._cancel_timer()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _abort(self) -> None:
        """Drop the connection, and what the kernel still holds for the client."""
        self._closing = True
        self._shut = True
        self._cancel_timer()
        if self.transport is not None and not self.closed:
            reset_connection(self.transport)

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    # -- flow control -------------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and not self.closed and not self._closing:
            self._reading_paused = False
            self.transport.resume_reading()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, ()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # -- timeouts: one lazily re-armed timer per connection -------------------------------------

    def _arm(self) -> None:
        """Set the connection's deadline from its state."""
        if self.closed:
            return
        limits = self.limits
        if self._writing_paused:
            deadline = self._write_paused_since + limits.write_timeout
        elif self._phase == 1:
            deadline = self._phase_since + limits.header_timeout
        elif self._phase == 2:
            deadline = self._phase_since + limits.body_timeout
        elif self._current is not None or self._queue:
            deadline = None  # a service is answering: its own business how long it takes
        else:  # idle: before the first request, its headers' timeout applies from the accept
            deadline = self._phase_since + (limits.keepalive_timeout if self._served else limits.header_timeout)
        self._deadline = deadline
        if deadline is not None and (self._timer is None or self._timer.when() > deadline):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed:
            return
        loop = self._loop
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._on_timer)
            return
        if self._writing_paused:
            _refused.warning("closing HTTP connection %s: the client does not read (write timeout)", self.peer)
            self._abort()
        elif self._phase == 1:
            self._fail(408, "request headers not received in time")
        elif self._phase == 2:
            self._fail(408, "request body not received in time")
        else:
            self._close()  # idle keep-alive connection

    def _cancel_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- details ------------------------------------------------------------------------------

    @property
    def peer(self) -> str:
        if self._peer is None:
            self._peer = peer_of(self.transport) if self.transport is not None else "?"
        return self._peer
