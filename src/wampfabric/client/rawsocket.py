"""WAMP-over-RawSocket for ``ClientSession`` (client side, TCP or Unix socket).

Used by ``wampfabric status`` on the node management socket and by tests::

    session = await connect_rawsocket("crossbar", path="/node/dir/node.sock")
    print(await session.call("crossbar.get_status"))
"""

from __future__ import annotations

import asyncio

from ..protocol import rawsocket as rs
from ..protocol.errors import ProtocolError
from ..protocol.serializers import create_serializer
from .session import ClientSession


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, serializer, client: ClientSession):
        self.serializer = serializer
        self.client = client
        self.transport = None
        self.handshake: asyncio.Future = asyncio.get_running_loop().create_future()
        self._buf = b""
        self._reader = None
        self._peer_max = 0
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(rs.build_client_handshake(15, self.serializer.RAWSOCKET_ID))

    def data_received(self, data):
        if self._reader is None:
            self._buf += data
            if len(self._buf) < 4:
                return
            reply, data = self._buf[:4], self._buf[4:]
            self._buf = b""
            try:
                exp = rs.parse_handshake_reply(reply, self.serializer.RAWSOCKET_ID)
            except rs.RawSocketHandshakeError as e:
                self.handshake.set_exception(ConnectionError(f"RawSocket handshake refused: {e}"))
                self.transport.close()
                return
            self._peer_max = rs.max_length(exp)
            self._reader = rs.FrameReader(rs.MAX_FRAME_LENGTH)
            self.handshake.set_result(None)
            if not data:
                return
        try:
            frames = self._reader.feed(data)
        except ProtocolError:
            self.transport.close()
            return
        for ftype, payload in frames:
            if ftype == rs.FRAME_WAMP:
                self.client.on_message(self.serializer.unserialize_one(payload))
            elif ftype == rs.FRAME_PING:
                self.transport.write(rs.encode_frame(payload, rs.FRAME_PONG))

    def connection_lost(self, exc):
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("connection closed during the RawSocket handshake"))
        self.client.on_close()

    # ClientSession transport contract
    def send_message(self, msg: list) -> None:
        if self.closed:
            return
        data = self.serializer.serialize(msg)
        self.transport.write(rs.frame_header(rs.FRAME_WAMP, len(data)) + data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


async def connect_rawsocket(realm: str | None, *, path: str | None = None, host: str = "127.0.0.1",
                            port: int | None = None, serializer: str = "cbor", timeout: float = 10.0,
                            **join_kwargs) -> ClientSession:
    """Connect (Unix socket ``path`` or TCP ``host``/``port``) and join ``realm``."""
    loop = asyncio.get_running_loop()
    client = ClientSession()
    proto = _ClientProtocol(create_serializer(serializer), client)
    if path is not None:
        await asyncio.wait_for(loop.create_unix_connection(lambda: proto, path), timeout)
    else:
        await asyncio.wait_for(loop.create_connection(lambda: proto, host, port), timeout)
    await asyncio.wait_for(proto.handshake, timeout)
    client.transport = proto
    await asyncio.wait_for(client.join(realm, **join_kwargs), timeout)
    return client
