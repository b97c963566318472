"""WAMP-over-RawSocket for ``ClientSession`` (client side; TCP, TLS or Unix socket).

Used by ``wampfabric status`` on the node management socket, by ``client.connect``
and by tests::

    session = await connect_rawsocket("crossbar", path="/node/dir/node.sock")
    print(await session.call("crossbar.get_status"))
"""

from __future__ import annotations

import asyncio

from ..protocol import rawsocket as rs
from ..protocol.errors import ProtocolError
from ..protocol.serializers import create_serializer
from .session import ClientSession, encode
from .tcp import bound_dead_peer_time
from .tls import tls_channel_id


class RawSocketClientProtocol(asyncio.Protocol):
    """One RawSocket connection carrying a ``ClientSession`` (the session's transport)."""

    transport_type = "rawsocket"

    def __init__(self, serializer, client: ClientSession, max_message_size: int = rs.MAX_FRAME_LENGTH,
                 auto_ping_interval: float | None = None, auto_ping_timeout: float = 10.0):
        self.serializer = serializer
        self.client = client
        self.transport = None
        self._loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future = self._loop.create_future()
        # auto ping (RawSocket PING frames, spec basic/transport rawsocket): after auto_ping_interval
        # seconds without a byte from the router a PING goes out; without a byte back within
        # auto_ping_timeout the connection is dropped (a peer that is up but stuck, or gone)
        self._ping_interval = auto_ping_interval
        self._ping_timeout = auto_ping_timeout
        self._last_rx = 0.0
        self._ping_sent: float | None = None
        self._ping_timer = None
        # frames of one loop turn go out as one write (an rlink leg republishing a burst of events
        # made one send() each: a third of the link's CPU per forwarded event)
        self._out: list = []
        self.max_message_size = rs.max_length(rs.length_exponent(max_message_size))  # as announced
        self._buf = b""
        self._reader = None
        self._peer_max = 0
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(rs.build_client_handshake(rs.length_exponent(self.max_message_size),
                                                  self.serializer.RAWSOCKET_ID))

    def data_received(self, data):
        if self._ping_interval:
            self._last_rx = self._loop.time()
            self._ping_sent = None
        if self._reader is None:
            self._buf += data
            if len(self._buf) < 4:
                return
            reply, data = self._buf[:4], self._buf[4:]
            self._buf = b""
            try:
                exp = rs.parse_handshake_reply(reply, self.serializer.RAWSOCKET_ID)
            except rs.RawSocketHandshakeError as e:
                if not self.handshake.done():
                    self.handshake.set_exception(ConnectionError(f"RawSocket handshake refused: {e}"))
                self.close()
                return
            self._peer_max = rs.max_length(exp)
            self._reader = rs.FrameReader(self.max_message_size)
            self.handshake.set_result(None)
            if self._ping_interval:
                self._ping_timer = self._loop.call_later(self._ping_interval, self._ping_tick)
            if not data:
                return
        try:
            frames = self._reader.feed(data)
        except ProtocolError as e:
            self.client.protocol_violation(f"RawSocket: {e}")
            return
        for ftype, payload in frames:
            if self.closed:
                return
            if ftype == rs.FRAME_WAMP:
                self.client.on_payload(payload, self.serializer)
            elif ftype == rs.FRAME_PING:
                self.transport.write(rs.encode_frame(payload, rs.FRAME_PONG))

    def _ping_tick(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        now = self._loop.time()
        if self._ping_sent is not None:
            if now - self._ping_sent >= self._ping_timeout:
                self.closed = True
                self.transport.abort()  # connection_lost follows: the session ends, a client reconnects
                return
            delay = self._ping_sent + self._ping_timeout - now
        else:
            idle = now - self._last_rx
            if idle >= self._ping_interval:
                self._ping_sent = now
                self.transport.write(rs.encode_frame(b"wampfabric", rs.FRAME_PING))
                delay = self._ping_timeout
            else:
                delay = self._ping_interval - idle
        self._ping_timer = self._loop.call_later(delay, self._ping_tick)

    def connection_lost(self, exc):
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("connection closed during the RawSocket handshake"))
        self.client.on_close()

    # ClientSession transport contract
    def send_message(self, msg: list) -> None:
        if self.closed:
            return
        data = encode(self.serializer, msg, self._peer_max)
        out = self._out
        if not out:
            self._loop.call_soon(self._flush)
        out.append(rs.frame_header(rs.FRAME_WAMP, len(data)))
        out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def channel_id(self, kind: str) -> bytes | None:
        return tls_channel_id(self.transport, kind)

    def close(self) -> None:
        if not self.closed:
            self._flush()  # what was sent before close (a GOODBYE) goes out first
            self.closed = True
            self.transport.close()


async def open_rawsocket(client: ClientSession, *, path: str | None = None, host: str = "127.0.0.1",
                         port: int | None = None, serializer: str = "cbor", ssl=None,
                         server_hostname: str | None = None, max_message_size: int = rs.MAX_FRAME_LENGTH,
                         timeout: float = 10.0, auto_ping_interval: float | None = None,
                         auto_ping_timeout: float = 10.0, tcp_timeout: float | None = None) -> RawSocketClientProtocol:
    """Connect (Unix socket ``path`` or TCP ``host``/``port``, TLS with an ``ssl`` context),
    do the RawSocket handshake and attach ``client`` (not yet joined).  ``auto_ping_*``: seconds
    (see ``RawSocketClientProtocol``); ``tcp_timeout``: see ``client/tcp.py``."""
    loop = asyncio.get_running_loop()
    proto = RawSocketClientProtocol(create_serializer(serializer), client, max_message_size,
                                    auto_ping_interval, auto_ping_timeout)
    if path is not None:
        connect = loop.create_unix_connection(lambda: proto, path, ssl=ssl,
                                              server_hostname=server_hostname if ssl else None)
    else:
        connect = loop.create_connection(lambda: proto, host, port, ssl=ssl,
                                         server_hostname=(server_hostname or host) if ssl else None)
    try:
        await asyncio.wait_for(connect, timeout)
        if tcp_timeout:
            bound_dead_peer_time(proto.transport.get_extra_info("socket"), tcp_timeout)
        await asyncio.wait_for(proto.handshake, timeout)
    except BaseException:
        if proto.transport is not None:
            proto.transport.abort()
        raise
    client.transport = proto
    return proto


async def connect_rawsocket(realm: str | None, *, path: str | None = None, host: str = "127.0.0.1",
                            port: int | None = None, serializer: str = "cbor", timeout: float = 10.0,
                            ssl=None, **join_kwargs) -> ClientSession:
    """Connect (Unix socket ``path`` or TCP ``host``/``port``) and join ``realm``."""
    client = ClientSession()
    await open_rawsocket(client, path=path, host=host, port=port, serializer=serializer, ssl=ssl, timeout=timeout)
    await asyncio.wait_for(client.join(realm, **join_kwargs), timeout)
    return client
