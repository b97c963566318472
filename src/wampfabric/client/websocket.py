"""WAMP-over-WebSocket for ``ClientSession`` (client side; TCP, TLS or Unix socket), on
picows, the WebSocket library the router's listeners use.

The serializers are offered as subprotocols (``wamp.2.cbor`` ...) in the caller's order
and the router's choice decides; text frames carry JSON, binary frames the others.
Fragmented messages are reassembled (bounded by ``max_message_size``); pings are answered
by picows.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from picows import WSAutoPingStrategy, WSCloseCode, WSListener, WSMsgType, ws_connect
from picows.common import WSHandshakeError
from picows.picows import WSProtocol  # picows is pinned to 2.3.x (pyproject.toml)
from picows.url import parse_url

from ..protocol.serializers import create_serializer
from .session import ClientSession, encode
from .tcp import bound_dead_peer_time
from .tls import tls_channel_id

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

# picows logs every connection and disconnection at INFO; an uplink's reconnects are logged
# by client.connection, so picows' own lines go to a logger of ours that shows warnings only
_picows_log = logging.getLogger("wampfabric.client.picows")
_picows_log.setLevel(logging.WARNING)

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class _UnixTransport:
    """The transport picows is given for a Unix socket connection: picows 2.3 sets TCP_NODELAY
    and TCP_QUICKACK in ``connection_made``, which a Unix socket refuses (EOPNOTSUPP, and the
    connection is lost; with asyncio's own transport the process crashed).  This one answers
    the TCP options itself and forwards everything else to the real transport."""

    def __init__(self, real):
        self._real = real
        self._sock = _NoTcpOptions(real.get_extra_info("socket"))

    def get_extra_info(self, name, default=None):
        return self._sock if name == "socket" else self._real.get_extra_info(name, default)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _NoTcpOptions:
    def __init__(self, sock):
        self._sock = sock

    def setsockopt(self, level, option, *value):
        if level != socket.IPPROTO_TCP:
            self._sock.setsockopt(level, option, *value)

    def getsockopt(self, level, option, *args):
        return 0 if level == socket.IPPROTO_TCP else self._sock.getsockopt(level, option, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


async def _ws_connect_unix(listener_factory, url: str, path: str, ssl, server_hostname, **options):
    """``picows.ws_connect`` over a Unix socket: the connection is made first and then handed
    to picows' client protocol through ``_UnixTransport`` (as picows does after a proxy)."""
    loop = asyncio.get_running_loop()
    parsed = parse_url(url)
    real, _ = await loop.create_unix_connection(asyncio.Protocol, path, ssl=ssl,
                                                server_hostname=(server_hostname or parsed.host) if ssl else None)
    try:
        proto = WSProtocol(parsed.netloc, parsed.resource_name, True, listener_factory, _picows_log, True,
                           options["websocket_handshake_timeout"], options["enable_auto_ping"],
                           options["auto_ping_idle_timeout"], options["auto_ping_reply_timeout"],
                           WSAutoPingStrategy.PING_WHEN_IDLE, True, options["max_frame_size"],
                           options["extra_headers"], 16 * 1024)
        real.set_protocol(proto)
        proto.connection_made(_UnixTransport(real))
        await proto.wait_until_handshake_complete()
    except BaseException:
        real.abort()
        raise
    return proto.transport, proto.listener


class WebSocketClientListener(WSListener):
    """One WebSocket connection carrying a ``ClientSession`` (the session's transport)."""

    transport_type = "websocket"

    def __init__(self, serializer, client: ClientSession, max_message_size: int):
        super().__init__()
        self.serializer = serializer
        self.client = client
        self.max_message_size = max_message_size
        self._msg_type = _BINARY if serializer.BINARY else _TEXT
        self._ws = None
        self._fragments: list | None = None
        self._fragments_size = 0
        self.closed = False

    def on_ws_connected(self, transport):
        self._ws = transport

    def _too_big(self, size: int) -> None:
        self.client.protocol_violation(f"message of {size} octets exceeds the limit of {self.max_message_size}")

    def on_ws_frame(self, transport, frame):
        opcode = frame.msg_type
        if opcode is _BINARY or opcode is _TEXT:
            if self._fragments is not None:
                self.client.protocol_violation("WebSocket: new data frame inside a fragmented message")
            elif frame.payload_size > self.max_message_size:
                self._too_big(frame.payload_size)
            elif frame.fin:
                self.client.on_payload(frame.get_payload_as_bytes(), self.serializer)
            else:
                self._fragments = [frame.get_payload_as_bytes()]
                self._fragments_size = frame.payload_size
        elif opcode is _CONT:
            if self._fragments is None:
                self.client.protocol_violation("WebSocket: continuation frame without a started message")
                return
            self._fragments.append(frame.get_payload_as_bytes())
            self._fragments_size += frame.payload_size
            if self._fragments_size > self.max_message_size:
                self._too_big(self._fragments_size)
            elif frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self.client.on_payload(data, self.serializer)
        elif opcode is _CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        self.closed = True
        self.client.on_close()

    # ClientSession transport contract
    def send_message(self, msg: list) -> None:
        if self.closed:
            return
        self._ws.send(self._msg_type, encode(self.serializer, msg, self.max_message_size))

    def channel_id(self, kind: str) -> bytes | None:
        return tls_channel_id(self._ws.underlying_transport, kind) if self._ws is not None else None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ws.send_close(WSCloseCode.OK)
            self._ws.disconnect()


async def open_websocket(client: ClientSession, url: str, *, serializers=("cbor", "msgpack", "json"),
                         path: str | None = None, ssl=None, server_hostname: str | None = None,
                         max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, timeout: float = 10.0,
                         auto_ping_interval: float | None = None, auto_ping_timeout: float = 10.0,
                         tcp_timeout: float | None = None,
                         headers: dict | None = None) -> WebSocketClientListener:
    """Connect to ``url`` (over the Unix socket ``path`` when given), negotiate a WAMP
    subprotocol and attach ``client`` (not yet joined)."""
    offered = {}
    for name in serializers:
        ser = create_serializer(name)
        offered[ser.SUBPROTOCOL] = ser
    chosen = {}

    def listener_factory(request, response):
        sub = response.headers.get("Sec-WebSocket-Protocol")
        ser = offered.get(sub)
        if ser is None:
            chosen["error"] = (f"the router answered with subprotocol {sub!r}, not one of {', '.join(offered)}"
                               if sub else "the router did not accept any WAMP subprotocol "
                                           f"({', '.join(offered)})")
            return None
        chosen["listener"] = WebSocketClientListener(ser, client, max_message_size)
        return chosen["listener"]

    options = dict(websocket_handshake_timeout=timeout, enable_auto_ping=auto_ping_interval is not None,
                   auto_ping_idle_timeout=auto_ping_interval or 10.0, auto_ping_reply_timeout=auto_ping_timeout,
                   max_frame_size=max_message_size,
                   extra_headers={**(headers or {}), "Sec-WebSocket-Protocol": ", ".join(offered)})
    if path is not None:
        connecting = _ws_connect_unix(listener_factory, url, path, ssl, server_hostname, **options)
    else:
        if ssl is not None and server_hostname:
            options["server_hostname"] = server_hostname
        connecting = ws_connect(listener_factory, url, ssl_context=ssl, max_redirects=0, logger_name=_picows_log,
                                **options)
    try:
        transport, listener = await asyncio.wait_for(connecting, timeout)
    except WSHandshakeError as e:
        status = getattr(getattr(e, "response", None), "status", None)
        raise ConnectionError(f"WebSocket handshake with {url} failed"
                              + (f" (HTTP {int(status)})" if status else f": {e}")) from None
    if listener is None or "error" in chosen:
        transport.disconnect()
        raise ConnectionError(chosen.get("error", f"the connection to {url} closed during the WebSocket handshake"))
    if tcp_timeout:
        bound_dead_peer_time(transport.underlying_transport.get_extra_info("socket"), tcp_timeout)
    client.transport = listener
    return listener
