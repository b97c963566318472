"""WAMP over a pair of pipes: the node controller <-> native worker channel.

The controller creates two pipes per native worker and hands the worker its
ends (``pass_fds``; the fd numbers are given on the worker's command line as
``--wamp-fds R,W``).  The worker's stdout and stderr stay free for log lines,
so a component that prints cannot corrupt the WAMP stream.

Framing: each message is a RawSocket frame (4-octet header from
``protocol.rawsocket.frame_header``, type 0, 24 bit length) carrying one
msgpack-serialized WAMP message.  There is no handshake: both ends are ours
and fixed to msgpack.  End of file on the read pipe means the peer is gone:
the controller treats it as the worker's session closing, the worker as the
controller having died (it exits).

Both sides are here:

- ``StdioRouterTransport``: the controller side, a transport in the sense of
  the router's transport contract (``send(bytes)``, ``close()``, ``peer``,
  ``auth_config``, ``serializer``) carrying one ``RouterSession``;
- ``StdioClientTransport``: the worker side, for a ``client.ClientSession``
  (``send_message(list)``, ``close()``).
"""

from __future__ import annotations

import asyncio
import logging
import os

from ..protocol import rawsocket as rs
from ..protocol.errors import ProtocolError
from ..protocol.serializers import create_serializer

log = logging.getLogger("wampfabric.transport.stdio")

MAX_MESSAGE_SIZE = rs.MAX_FRAME_LENGTH


class _ReadProtocol(asyncio.Protocol):
    """Cuts frames out of the read pipe and hands their payloads on."""

    def __init__(self, owner):
        self.owner = owner
        self.reader = rs.FrameReader(MAX_MESSAGE_SIZE)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except ProtocolError as e:
            log.error("stdio transport %s: %s", self.owner.peer, e)
            self.owner.close()
            return
        for ftype, payload in frames:
            if ftype == rs.FRAME_WAMP:
                self.owner._on_payload(payload)
                if self.owner.closed:
                    return

    def eof_received(self):
        return False  # close the read side

    def connection_lost(self, exc) -> None:
        self.owner._on_lost()


class _StdioBase:
    """Framing and pipe handling shared by both ends."""

    def __init__(self, peer: str):
        self.peer = peer
        self.serializer = create_serializer("msgpack")
        self.closed = False
        self._rtransport = None
        self._wtransport = None
        self._out: list = []
        self._loop = None

    async def open(self, read_fd: int, write_fd: int) -> None:
        loop = self._loop = asyncio.get_running_loop()
        rfile = os.fdopen(read_fd, "rb", buffering=0)
        wfile = os.fdopen(write_fd, "wb", buffering=0)
        self._wtransport, _ = await loop.connect_write_pipe(asyncio.Protocol, wfile)
        self._rtransport, _ = await loop.connect_read_pipe(lambda: _ReadProtocol(self), rfile)

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        n = len(data)
        if n > MAX_MESSAGE_SIZE:
            log.error("stdio transport %s: message of %d bytes exceeds %d, dropped", self.peer, n,
                      MAX_MESSAGE_SIZE)
            return
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(rs.frame_header(rs.FRAME_WAMP, n))
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and not self.closed and self._wtransport is not None:
            self._wtransport.writelines(out)

    def close(self) -> None:
        if self.closed:
            return
        self._flush()
        self.closed = True
        for t in (self._wtransport, self._rtransport):
            if t is not None:
                t.close()
        # the read side's connection_lost runs _on_lost (once)

    def _on_lost(self) -> None:
        self.closed = True
        if self._wtransport is not None:
            self._wtransport.close()
        self._closed_callback()

    def _on_payload(self, payload: bytes) -> None:
        raise NotImplementedError

    def _closed_callback(self) -> None:
        raise NotImplementedError


class StdioRouterTransport(_StdioBase):
    """Controller side: the management router's end of a worker's pipes."""

    def __init__(self, router, auth_config: dict, peer: str):
        super().__init__(peer)
        self.auth_config = auth_config
        from ..router.session import RouterSession

        self.session = RouterSession(router, self)
        self._lost_called = False

    def send(self, data: bytes) -> None:
        self._write(data)

    def _on_payload(self, payload: bytes) -> None:
        self.session.on_message(payload)

    def _closed_callback(self) -> None:
        if not self._lost_called:
            self._lost_called = True
            self.session.on_close()


class StdioClientTransport(_StdioBase):
    """Worker side: carries a ``ClientSession`` to the controller."""

    def __init__(self, client, peer: str = "controller"):
        super().__init__(peer)
        self.client = client
        self._lost_called = False

    def send_message(self, msg: list) -> None:
        self._write(self.serializer.serialize(msg))

    def _on_payload(self, payload: bytes) -> None:
        try:
            msg = self.serializer.unserialize_one(payload)
        except Exception as e:
            log.error("stdio transport: undecodable message from %s: %s", self.peer, e)
            self.close()
            return
        self.client.on_message(msg)

    def _closed_callback(self) -> None:
        if not self._lost_called:
            self._lost_called = True
            self.client.on_close()


async def connect_stdio_client(read_fd: int, write_fd: int, client=None):
    """Worker side: open the pipes and attach a ``ClientSession`` (not yet joined)."""
    from ..client.session import ClientSession

    client = client or ClientSession()
    transport = StdioClientTransport(client)
    client.transport = transport
    await transport.open(read_fd, write_fd)
    return client
