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

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect
from picows.common import WSHandshakeError

from ..protocol.serializers import create_serializer
from .session import ClientSession, encode
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


class _UnixSocket(socket.socket):
    """A Unix socket that lets picows set its TCP options: picows 2.3 sets TCP_NODELAY and
    TCP_QUICKACK on every connection, which a Unix socket refuses (EOPNOTSUPP), and the
    connection is then unusable (with asyncio's transport, the process crashed)."""

    def setsockopt(self, level, option, *value):
        if level != socket.IPPROTO_TCP:
            super().setsockopt(level, option, *value)

    def getsockopt(self, level, option, *args):
        return 0 if level == socket.IPPROTO_TCP else super().getsockopt(level, option, *args)


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

    socket_factory = None
    if path is not None:
        async def socket_factory(_parsed_url):
            sock = _UnixSocket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
            return sock

    kwargs = {}
    if path is not None:
        kwargs["use_aiofastnet"] = False  # asyncio's transport, which asks _UnixSocket for options
    if ssl is not None and server_hostname:
        kwargs["server_hostname"] = server_hostname
    try:
        transport, listener = await asyncio.wait_for(ws_connect(
            listener_factory, url, ssl_context=ssl, websocket_handshake_timeout=timeout,
            enable_auto_ping=auto_ping_interval is not None, auto_ping_idle_timeout=auto_ping_interval or 10.0,
            auto_ping_reply_timeout=auto_ping_timeout, max_frame_size=max_message_size,
            extra_headers={**(headers or {}), "Sec-WebSocket-Protocol": ", ".join(offered)},
            socket_factory=socket_factory, max_redirects=0, logger_name=_picows_log,
            **kwargs), timeout)
    except WSHandshakeError as e:
        status = getattr(getattr(e, "response", None), "status", None)
        raise ConnectionError(f"WebSocket handshake with {url} failed"
                              + (f" (HTTP {int(status)})" if status else f": {e}")) from None
    if listener is None or "error" in chosen:
        transport.disconnect()
        raise ConnectionError(chosen.get("error", f"the connection to {url} closed during the WebSocket handshake"))
    client.transport = listener
    return listener
