"""The socket work picows does when a WebSocket connection is accepted, on uvloop.

picows' ``connection_made`` sets TCP_NODELAY and reads socket options for a log line; on
uvloop each of those calls costs a syscall plus a Python socket object, so the router hands
picows a ``HandoverTransport`` (transport/websocket.py).  These tests pin what that must keep:
TCP_NODELAY on every accepted connection, the real transport under the WAMP listener, the
log line's real values when picows logs at INFO, and working writes and closes."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import uvloop
from picows import WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener, ws_connect

from wampfabric.transport.listeners import picows_server_protocol_factory
from wampfabric.transport.websocket import PICOWS_LOGGER, HandoverTransport


class _Echo(WSListener):
    def __init__(self, seen: list):
        self.seen = seen

    def on_ws_connected(self, transport):
        under = transport.underlying_transport
        real = under.real if isinstance(under, HandoverTransport) else under
        sock = real.get_extra_info("socket")
        self.seen.append((type(under).__name__, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.BINARY:
            payload = frame.get_payload_as_bytes()
            if payload == b"bye":
                transport.send_close()
                transport.disconnect()
            else:
                transport.send(WSMsgType.BINARY, payload[::-1])


class _Client(WSListener):
    def __init__(self):
        self.frames: asyncio.Queue = asyncio.Queue()

    def on_ws_frame(self, transport, frame):
        self.frames.put_nowait((frame.msg_type, frame.get_payload_as_bytes()))


async def _round_trip(seen: list) -> None:
    def route(request):
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(), _Echo(seen))

    factory = picows_server_protocol_factory(route, {"logger_name": PICOWS_LOGGER})
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        transport, client = await ws_connect(_Client, f"ws://127.0.0.1:{port}/")
        big = bytes(range(256)) * 64  # 16 KB: picows writes frames above 8 KB with writelines
        for payload in (b"abc", big):
            transport.send(WSMsgType.BINARY, payload)
            assert await asyncio.wait_for(client.frames.get(), 5) == (WSMsgType.BINARY, payload[::-1])
        transport.send(WSMsgType.BINARY, b"bye")
        msg_type, _ = await asyncio.wait_for(client.frames.get(), 5)
        assert msg_type == WSMsgType.CLOSE
        await asyncio.wait_for(transport.wait_disconnected(), 5)
    finally:
        server.close()


def _run(coro_fn, *args):
    uvloop.run(coro_fn(*args))


def test_accepted_connection_uses_handover_and_keeps_nodelay():
    seen: list = []
    _run(_round_trip, seen)
    assert seen == [("HandoverTransport", 1)]


def test_picows_info_logging_gets_the_real_transport(caplog):
    seen: list = []
    logger = logging.getLogger("picows.wampfabric")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="picows.wampfabric"):
            _run(_round_trip, seen)
    finally:
        logger.setLevel(old)
    assert seen[0][0] == "TCPTransport" and seen[0][1] == 1
    # the log line picows writes from the socket options shows the real values
    accepted = [r.getMessage() for r in caplog.records if "New connection accepted" in r.getMessage()]
    assert accepted and "nodelay=1" in accepted[0] and "recvbuf=0" not in accepted[0]


def test_handover_forwards_other_socket_options():
    class _Sock:
        def __init__(self):
            self.calls = []

        def fileno(self):
            return 42

        def setsockopt(self, *args):
            self.calls.append(args)

    class _Transport:
        def __init__(self):
            self.sock = _Sock()

        def get_extra_info(self, name, default=None):
            return {"socket": self.sock, "peername": ("127.0.0.1", 1)}.get(name, default)

        def is_closing(self):
            return False

    real = _Transport()
    h = HandoverTransport(real)
    assert h.get_extra_info("socket") is h and h.fileno() == 42
    assert h.get_extra_info("peername") == ("127.0.0.1", 1)
    h.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    assert real.sock.calls == [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    assert h.is_closing() is False  # anything else goes to the real transport
