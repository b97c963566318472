"""WAMP over WebSocket, on picows (see docs/decisions.md for why picows).

picows hands us frames in a callback (no coroutine per message); we
reassemble fragmented messages, enforce ``max_message_size`` and the
per-connection outgoing buffer bound, and feed whole messages to the
transport-agnostic ``RouterSession``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import socket
import struct
from http import HTTPStatus

from picows import WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener, WSCloseCode
from picows.picows import WSProtocol

from ..config import defaults
from ..protocol.serializers import SERIALIZERS_BY_NAME, SERIALIZERS_BY_SUBPROTOCOL
from ..router.session import RouterSession
from .coalesce import FLUSH_STEP, Coalescer, QueuedWriter, release_memory, reset_connection, watch_writes
from .cookies import create_cookie_store
from .endpoints import HelloTimer, PeerOfConnection, channel_id, peer_certificate

try:
    from uvloop.loop import TCPTransport as _UVTCPTransport
except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
    _UVTCPTransport = None

log = logging.getLogger("wampfabric.transport.websocket")


def _header_lines(headers: dict) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()


class Prebuilt101(WSUpgradeResponse):
    """A ``101 Switching Protocols`` whose fixed part is built once per subprotocol.

    picows' own ``create_101_response`` builds a header multidict for every connection and
    ``to_bytes`` formats it header by header, which shows in the router's CPU on a burst of
    joins (figures: docs/decisions.md).  picows only sets ``Sec-WebSocket-Accept`` in ``headers`` and calls
    ``to_bytes()`` (after checking ``status``), which is all this class provides."""

    def __init__(self, head: bytes):
        self.version = b"HTTP/1.1"
        self.status = HTTPStatus.SWITCHING_PROTOCOLS
        self.headers: dict = {}
        self.body = None
        self._head = head

    @staticmethod
    def head(extra: dict) -> bytes:
        return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n" + _header_lines(extra)

    def to_bytes(self) -> bytearray:
        headers = self.headers
        if len(headers) == 1:  # what picows adds to a 101: the accept key, joined in one step
            accept = headers.get("Sec-WebSocket-Accept")
            if accept is not None:
                return bytearray(b"".join((self._head, b"Sec-WebSocket-Accept: ", accept.encode(), b"\r\n\r\n")))
        return bytearray(self._head + _header_lines(headers) + b"\r\n")


class HandoverTransport:
    """What picows' ``WSProtocol.connection_made`` is given for an accepted TCP connection on
    uvloop, instead of uvloop's transport itself.

    picows 2.3 asks the transport for its socket there, sets TCP_NODELAY and TCP_QUICKACK on
    it and reads four socket options for an INFO log line.  On uvloop every one of those calls
    goes through a ``PseudoSocket`` that builds a ``socket.socket`` (a ``getsockname``
    syscall) before the actual ``setsockopt``/``getsockopt``: syscalls and socket objects
    that are a noticeable part of a join (figures: docs/decisions.md).  This object answers
    those calls from the socket uvloop already has:

    - ``TCP_NODELAY`` is already on: uvloop's TCP server sets it on every accepted socket.
    - ``TCP_QUICKACK`` is left alone: it only takes a socket out of delayed-ACK mode, which a
      freshly accepted socket is not in yet, and it is not permanent (tcp(7)); the kernel
      switches that mode from the traffic itself.
    - ``getsockopt`` feeds only that log line; the handover is used only while picows'
      logger is below INFO, so nothing reads the values.

    picows keeps this object as ``WSTransport.underlying_transport`` (read-only), so every
    other attribute is forwarded to the real transport, which the WAMP listener takes back
    (``real``) for its own writes."""

    __slots__ = ("real", "_sock")

    def __init__(self, transport):
        self.real = transport
        self._sock = transport.get_extra_info("socket")  # uvloop's PseudoSocket, cached by uvloop

    # the socket picows sees
    def fileno(self) -> int:
        return self._sock.fileno()

    def setsockopt(self, level, option, value) -> None:
        if level == socket.IPPROTO_TCP and option in _SKIPPED_OPTIONS:
            return
        self._sock.setsockopt(level, option, value)

    def getsockopt(self, level, option, *args):
        return 0

    # the transport picows sees
    def get_extra_info(self, name, default=None):
        if name == "socket":
            return self
        return self.real.get_extra_info(name, default)

    def write(self, data) -> None:
        self.real.write(data)

    def writelines(self, data) -> None:
        self.real.writelines(data)

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size()

    def close(self) -> None:
        self.real.close()

    def abort(self) -> None:
        self.real.abort()

    def __getattr__(self, name):
        return getattr(self.real, name)


_SKIPPED_OPTIONS = frozenset(o for o in (getattr(socket, "TCP_NODELAY", None), getattr(socket, "TCP_QUICKACK", None))
                             if o is not None)


class ServerWSProtocol(WSProtocol):
    """picows' server protocol, given a ``HandoverTransport`` for accepted TCP connections on
    uvloop while picows' logger would not print the socket details anyway."""

    __slots__ = ()

    def connection_made(self, transport):
        if type(transport) is _UVTCPTransport:
            if not _picows_logs_info():
                transport = HandoverTransport(transport)
        elif _is_unix(transport):
            transport = UnixHandoverTransport(transport)
        WSProtocol.connection_made(self, transport)


def _is_unix(transport) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.family == socket.AF_UNIX


class UnixHandoverTransport(HandoverTransport):
    """The same handover for a connection accepted on a Unix socket, where it is needed, not
    only cheaper: a Unix socket refuses TCP options (EOPNOTSUPP), and picows' TCP_NODELAY in
    ``connection_made`` would drop every connection.  TCP options are not set and read as 0;
    every other option goes to the socket."""

    __slots__ = ()

    def setsockopt(self, level, option, value) -> None:
        if level != socket.IPPROTO_TCP:
            self._sock.setsockopt(level, option, value)

    def getsockopt(self, level, option, *args):
        return 0 if level == socket.IPPROTO_TCP else self._sock.getsockopt(level, option, *args)


class FirstReadWSProtocol(ServerWSProtocol):
    """The server protocol until its first read, for HTTP ``HEAD`` (RFC 7231 4.3.2: like
    GET, without a body).  picows parses only GET: a request line ``HEAD /p HTTP/1.1`` is
    rewritten in picows' read buffer to ``GET //p HTTP/1.1`` (same length; the web paths
    ignore the extra slash) while ``HEAD_REQUEST`` tells the listener factory, which answers
    with ``head_only`` responses.  After the first read the protocol becomes a plain
    ``ServerWSProtocol`` and is set on its transport again, so uvloop calls picows' own
    ``get_buffer``/``buffer_updated`` for everything after (one ``set_protocol`` per
    connection, nothing per message; figures: docs/decisions.md)."""

    __slots__ = ()

    def get_buffer(self, size_hint):
        global _first_view
        _first_view = view = WSProtocol.get_buffer(self, size_hint)
        return view

    def buffer_updated(self, nbytes):
        global _first_view, HEAD_REQUEST
        view, _first_view = _first_view, None
        self.__class__ = ServerWSProtocol
        tcp = self.transport.underlying_transport
        (tcp.real if isinstance(tcp, HandoverTransport) else tcp).set_protocol(self)
        if view is not None and nbytes >= 5 and view[:5] == b"HEAD ":
            view[:5] = b"GET /"
            HEAD_REQUEST = True
            try:
                WSProtocol.buffer_updated(self, nbytes)
            finally:
                HEAD_REQUEST = False
        else:
            WSProtocol.buffer_updated(self, nbytes)


# the request being answered (synchronously, by a listener factory) came as HEAD
HEAD_REQUEST = False
_first_view = None


class HeadResponse(WSUpgradeResponse):
    """The answer to a HEAD: the headers ``response`` would have (Content-Length included),
    no body."""

    def __init__(self, response):
        self.version = response.version
        self.status = response.status
        self.headers = response.headers
        self.body = None
        self._response = response

    def to_bytes(self) -> bytearray:
        full = self._response.to_bytes()
        return full[:full.index(b"\r\n\r\n") + 4]


def head_only(result):
    """``result`` (a listener factory's answer to a GET) as the answer to a HEAD: no body,
    and never an upgrade."""
    if result.listener is not None:
        result = WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_error_response(400, b"a HEAD request cannot upgrade to WebSocket\n"), None)
    return WSUpgradeResponseWithListener(HeadResponse(result.response), None)


def _picows_logs_info() -> bool:
    return PICOWS_LOGGER.isEnabledFor(logging.INFO)


# picows logs through this.  A LoggerAdapter rather than a Logger: for a Logger, picows
# builds a child ``logging.Logger`` per accepted connection (CPU on every join and a few
# hundred bytes per idle session); for an adapter it uses it as is.
PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.wampfabric"), {})

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_PING = WSMsgType.PING
_CLOSE = WSMsgType.CLOSE

# Server-to-client data frames are unmasked (RFC 6455 section 5.1): FIN + opcode, then the
# payload length in 7, 7+16 or 7+64 bits.  We frame whole messages ourselves only to queue
# them for coalesced writes; picows still does everything else (handshake, parsing, control
# frames, close).
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_SMALL_HEADERS = {op: [bytes((0x80 | op, n)) for n in range(126)] for op in (1, 2)}


def _frame_header(op: int, n: int, small=_SMALL_HEADERS) -> bytes:
    if n < 126:
        return small[op][n]
    if n < 65536:
        return _H16.pack(0x80 | op, 126, n)
    return _H64.pack(0x80 | op, 127, n)


class WebSocketServerFactory:
    """The config of one WAMP-WebSocket endpoint (a ``websocket`` transport or
    a ``websocket`` path of a ``web`` transport), and the factory of its
    connection listeners."""

    def __init__(self, router, config: dict, auth_config: dict | None = None, cbdir="."):
        self.router = router
        self.config = config
        self.cookie_store = create_cookie_store(config["cookie"], cbdir) if "cookie" in config else None
        options = config.get("options", {})
        names = config.get("serializers") or defaults.SERIALIZERS
        self.subprotocols = {}
        for name in names:
            for sub, ser in SERIALIZERS_BY_SUBPROTOCOL.items():
                if ser.NAME == name:
                    self.subprotocols[sub] = ser
        self.default_serializer = SERIALIZERS_BY_NAME.get("json") if "json" in names else None
        # the fixed part of the 101 answer per chosen subprotocol (None: legacy client without one)
        self._heads = {sub: Prebuilt101.head({"Sec-WebSocket-Protocol": sub}) for sub in self.subprotocols}
        self._heads[None] = Prebuilt101.head({})
        self.max_message_size = options.get("max_message_size") or defaults.MAX_MESSAGE_SIZE
        # a message may span several frames: frames are limited separately (Crossbar.io options)
        self.max_frame_size = min(options.get("max_frame_size") or self.max_message_size, self.max_message_size)
        handshake_ms = options.get("open_handshake_timeout") or defaults.OPEN_HANDSHAKE_TIMEOUT_MS
        self.open_handshake_timeout = handshake_ms / 1000.0
        self.max_outgoing_buffer = options.get("max_outgoing_buffer") or defaults.MAX_OUTGOING_BUFFER
        self.allowed_origins = options.get("allowed_origins")
        self.allow_null_origin = options.get("allow_null_origin", defaults.ALLOW_NULL_ORIGIN)
        self.auth_config = config.get("auth", auth_config)
        # auto-ping (Crossbar.io option names, milliseconds)
        self.auto_ping_interval = options.get("auto_ping_interval", defaults.AUTO_PING_INTERVAL_MS) / 1000.0
        self.auto_ping_timeout = options.get("auto_ping_timeout", defaults.AUTO_PING_TIMEOUT_MS) / 1000.0
        # a connection must send HELLO this soon after the WebSocket handshake (and after a
        # GOODBYE), or it is closed; 0: no limit
        self.hello_timeout = options.get("hello_timeout", defaults.HELLO_TIMEOUT_MS) / 1000.0
        self.coalescer = Coalescer(asyncio.get_running_loop())

    def origin_allowed(self, origin: str | None) -> bool:
        """Crossbar.io's semantics: no Origin header (non-browser client) passes; the
        opaque origin "null" (file://, sandboxed frames) passes unless
        ``allow_null_origin`` is false; others must match an ``allowed_origins`` pattern."""
        if origin is None:
            return True
        if origin == "null":
            return bool(self.allow_null_origin)
        if self.allowed_origins is None:
            return True
        return any(fnmatch.fnmatchcase(origin, pat) for pat in self.allowed_origins)

    def upgrade(self, request):
        """Answer a WebSocket upgrade request (picows listener factory protocol)."""
        if HEAD_REQUEST:  # a WebSocket endpoint: what a plain GET gets on a web path, without body
            return head_only(WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                426, b"This is a WAMP-over-WebSocket endpoint: connect with a WebSocket client.\n",
                {"Upgrade": "websocket"}), None))
        headers = request.headers
        version = headers.get("Sec-WebSocket-Version")
        if version is not None and version != "13":
            # RFC 6455 4.2.2/4.4: refuse other versions with 426 naming the one we speak
            log.info("refusing WebSocket upgrade: Sec-WebSocket-Version %r (only 13 is supported)", version)
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                426, b"only WebSocket version 13 is supported\n", {"Sec-WebSocket-Version": "13"}), None)
        if not self.origin_allowed(headers.get("Origin")):
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(403, b"origin not allowed\n"), None
            )
        proto_header = headers.get("Sec-WebSocket-Protocol")
        if proto_header is None:
            offered = ()
        elif "," in proto_header or len(headers.getall("Sec-WebSocket-Protocol")) > 1:
            offered = [p.strip() for h in headers.getall("Sec-WebSocket-Protocol") for p in h.split(",")]
        else:
            offered = (proto_header.strip(),)
        serializer = None
        chosen = None
        for p in offered:
            ser = self.subprotocols.get(p)
            if ser is not None:
                serializer, chosen = ser, p
                break
        if serializer is None:
            if offered or self.default_serializer is None:
                body = ("this WAMP endpoint speaks the WebSocket subprotocols: "
                        + ", ".join(self.subprotocols) + "\n").encode()
                return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(400, body), None)
            serializer = self.default_serializer  # legacy client without a subprotocol
        listener = WampWebSocketListener(self, serializer)
        # kept as one string (a fraction of a header multidict's size) for the session's transport details
        listener._http_in = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = self._heads[chosen]
        store = self.cookie_store
        if store is not None:
            cbtid = store.cookie_from(headers.get("Cookie"))
            if store.get(cbtid) is None:
                cbtid = store.create()
                listener._http_set_cookie = set_cookie = store.header(cbtid)
                head += _header_lines({"Set-Cookie": set_cookie})
            listener.cbtid = cbtid
        return WSUpgradeResponseWithListener(Prebuilt101(head), listener)


class WampWebSocketListener(PeerOfConnection, HelloTimer, QueuedWriter, WSListener):
    """One WAMP-over-WebSocket connection; it is the session's transport."""

    # idle connections are most of a router's memory: no per-instance __dict__
    __slots__ = ("factory", "serializer", "auth_config", "session", "_ws", "_tcp", "_msg_type", "_opcode",
                 "_fragments", "_fragments_size", "_closed", "_out", "_out_size", "_limit", "_backlog", "_timer",
                 "cbtid", "_peer", "_http_in", "_http_set_cookie")

    def __init__(self, factory: WebSocketServerFactory, serializer):
        self.factory = factory
        self.serializer = serializer
        self.auth_config = factory.auth_config
        self.session = None
        self.cbtid = None
        self._http_in = None
        self._http_set_cookie = None
        self._peer = None
        self._ws = None
        self._tcp = None
        self._msg_type = _BINARY if serializer.BINARY else _TEXT
        self._opcode = 2 if serializer.BINARY else 1
        self._out: list = []
        self._out_size = 0
        self._limit = FLUSH_STEP
        self._backlog = None
        self._timer = None
        self._fragments: list | None = None
        self._fragments_size = 0
        self._closed = False

    # -- picows callbacks --------------------------------------------------------

    def on_ws_connected(self, transport):
        self._ws = transport
        tcp = transport.underlying_transport
        self._tcp = tcp = tcp.real if isinstance(tcp, HandoverTransport) else tcp
        watch_writes(tcp)
        # picows keeps the upgrade request and response for the connection's lifetime;
        # their header multidicts are a good part of an idle connection's memory, and nothing
        # reads them after the handshake (figures: docs/decisions.md)
        transport.request.headers.clear()
        transport.response.headers.clear()
        self.session = RouterSession(self.factory.router, self)
        self.expect_hello()

    def on_ws_frame(self, transport, frame):
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            # RFC 6455 5.2: no extension is negotiated, so any reserved bit fails the connection
            log.info("closing connection %s: WebSocket frame with reserved bits set (no extension negotiated)",
                     self.peer)
            self._fail(WSCloseCode.PROTOCOL_ERROR, "reserved bits set")
            return
        opcode = frame.msg_type
        if opcode is _BINARY or opcode is _TEXT:
            if self._fragments is not None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message")
                return
            if frame.fin:
                if frame.payload_size > self.factory.max_message_size:
                    self._too_big(frame.payload_size)
                    return
                self.session.on_message(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
                self._fragments_size = frame.payload_size
                if self._fragments_size > self.factory.max_message_size:
                    self._too_big(self._fragments_size)
        elif opcode is _CONT:
            if self._fragments is None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "continuation frame without a started message")
                return
            self._fragments.append(frame.get_payload_as_bytes())
            self._fragments_size += frame.payload_size
            if self._fragments_size > self.factory.max_message_size:
                self._too_big(self._fragments_size)
                return
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self.session.on_message(data)
        elif opcode is _CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG needs nothing

    def on_ws_disconnected(self, transport):
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is not None:
            self.session.on_close()

    # -- transport interface for RouterSession -------------------------------------

    transport_type = "websocket"

    @property
    def cookie_store(self):
        return self.factory.cookie_store

    def channel_id(self, kind: str) -> bytes | None:
        return channel_id(self._tcp, kind)

    def peer_cert(self) -> dict | None:
        return peer_certificate(self._tcp)

    def http_headers_received(self) -> dict:
        """The upgrade request's headers, names in lower case (as Crossbar.io's transport details)."""
        out: dict = {}
        for line in (self._http_in or "").split("\r\n"):
            name, sep, value = line.partition(": ")
            if sep:
                name = name.lower()
                out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def http_headers_sent(self) -> dict:
        """The headers of our 101 answer beyond the handshake's own: the new cookie, if one was set."""
        return {"Set-Cookie": self._http_set_cookie} if self._http_set_cookie else {}

    def send(self, data: bytes) -> None:
        """Queue one message; it is written with everything else queued this turn."""
        if not self._closed:
            self._queue(_frame_header(self._opcode, len(data)), data)

    def _stream(self):
        return self._tcp

    def _close_idle(self) -> None:
        self._fail(WSCloseCode.POLICY_VIOLATION, "no HELLO received")

    def _overflow(self) -> None:
        log.warning(
            "closing connection %s (session %s): peer does not read, outgoing buffer above %d bytes",
            self.peer, self.session.session_id if self.session else None, self.factory.max_outgoing_buffer,
        )
        self._closed = True
        self._drop_output()
        reset_connection(self._tcp)
        release_memory()

    def close(self) -> None:
        if self._closed or self._ws is None:
            return
        self.flush_all()
        self._closed = True
        try:
            self._ws.send_close(WSCloseCode.OK)
        finally:
            self._ws.disconnect()

    # -- errors ---------------------------------------------------------------------

    def _too_big(self, size: int) -> None:
        log.info("closing connection %s: message of %d bytes exceeds max_message_size %d",
                 self.peer, size, self.factory.max_message_size)
        self._fail(WSCloseCode.MESSAGE_TOO_BIG, "message too big")

    def _fail(self, code, reason: str) -> None:
        self._fragments = None
        if self._closed:
            return
        self.flush_all()
        self._closed = True
        ws = self._ws
        try:
            ws.send_close(code, reason.encode())
        finally:
            ws.disconnect()
