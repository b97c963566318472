"""Connections that never send HELLO are closed after ``hello_timeout``.

Before: a client could complete the WebSocket or RawSocket handshake, answer pings and
never send HELLO, and the router kept the connection (and its memory) forever."""

from __future__ import annotations

import asyncio
import copy
import socket
import struct
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from support.nodes import node_config, start_node, stop_node
from support.autobahn_client import connect as autobahn_connect
from support.wamp_raw import RawSocketPeer, WebSocketPeer, rawsocket_handshake_bytes, recv_exactly
from wampfabric.protocol.codes import GOODBYE, SUBSCRIBE, SUBSCRIBED, WELCOME

HELLO_TIMEOUT_MS = 700


def hello_timeout_config(ports, rs_path):
    cfg = copy.deepcopy(node_config(ports, rs_path))
    transports = cfg["workers"][0]["transports"]
    transports[0]["paths"]["ws"]["options"]["hello_timeout"] = HELLO_TIMEOUT_MS
    transports[1]["options"]["hello_timeout"] = HELLO_TIMEOUT_MS
    return cfg


@pytest.fixture(scope="module")
def node():
    n = start_node(hello_timeout_config)
    yield n
    stop_node(n)


def closed_after(wait_closed) -> float:
    t0 = time.monotonic()
    wait_closed()
    return time.monotonic() - t0


def assert_timely(waited: float) -> None:
    # closed by the router's hello_timeout (0.7 s), not by our own 10 s limits
    assert HELLO_TIMEOUT_MS / 1000 * 0.8 <= waited < 5, waited


def test_websocket_client_that_never_sends_hello_is_closed(node):
    # the websockets client answers the router's pings and sends its own: traffic, but no HELLO
    with ws_connect(node.ws_url, subprotocols=["wamp.2.json"], ping_interval=0.2, open_timeout=5) as ws:
        def wait():
            with pytest.raises(ConnectionClosed) as exc:
                ws.recv(timeout=10)
            assert exc.value.rcvd is not None and exc.value.rcvd.code == 1008  # policy violation
        assert_timely(closed_after(wait))
    assert "no HELLO within" in node.log()
    node.assert_alive()


def test_rawsocket_client_that_never_sends_hello_is_closed(node):
    s = socket.create_connection(("127.0.0.1", node.rawsocket_port), timeout=10)
    try:
        s.sendall(rawsocket_handshake_bytes(1, 15))
        assert recv_exactly(s, 4)[0] == 0x7F

        def wait():
            # RawSocket PINGs are answered (PONG), but they are no HELLO
            got = b""
            try:
                while True:
                    s.sendall(struct.pack(">I", (1 << 24) | 4) + b"ping")
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                    time.sleep(0.1)
            except (ConnectionResetError, BrokenPipeError):
                pass
            assert got[:1] == b"\x02"  # a PONG
        assert_timely(closed_after(wait))
    finally:
        s.close()
    node.assert_alive()


def test_sessions_stay_past_the_timeout(node):
    with WebSocketPeer(node.ws_url) as ws, RawSocketPeer(port=node.rawsocket_port) as rs:
        assert ws.hello()[0] == WELCOME and rs.hello()[0] == WELCOME
        time.sleep(HELLO_TIMEOUT_MS / 1000 * 2)
        assert ws.request([SUBSCRIBE, 1, {}, "com.hello.later"])[0] == SUBSCRIBED
        assert rs.request([SUBSCRIBE, 1, {}, "com.hello.later"])[0] == SUBSCRIBED


async def test_autobahn_session_stays_past_the_timeout(node):
    session = await autobahn_connect(node, "websocket", "json")
    try:
        await asyncio.sleep(HELLO_TIMEOUT_MS / 1000 * 2)
        assert session.is_attached()
        await asyncio.wait_for(session.subscribe(lambda *a: None, "com.hello.autobahn"), 5)
    finally:
        await session.shutdown()


@pytest.mark.parametrize("kind", ["websocket", "rawsocket"])
def test_after_goodbye_the_timeout_applies_again(node, kind):
    """After a GOODBYE the transport carries no session: a new HELLO may come (within
    the timeout), else the connection is closed as a fresh one would be."""
    peer = WebSocketPeer(node.ws_url) if kind == "websocket" else RawSocketPeer(port=node.rawsocket_port)
    with peer:
        assert peer.hello()[0] == WELCOME
        time.sleep(HELLO_TIMEOUT_MS / 1000 * 1.5)
        assert peer.goodbye()[0] == GOODBYE
        assert peer.hello()[0] == WELCOME  # a second session on the same transport
        assert peer.goodbye()[0] == GOODBYE
        assert_timely(closed_after(lambda: peer.recv_until_closed(timeout=10)))


def test_hello_timeout_is_checked_in_config():
    from wampfabric.config.base import ConfigError
    from wampfabric.config.check import check_config
    from wampfabric.personality import Personality

    cfg = node_config({"web": 8080, "rawsocket": 8081, "restricted": 8082}, "rs.sock")
    cfg["workers"][0]["transports"][1]["options"]["hello_timeout"] = -1
    with pytest.raises(ConfigError) as exc:
        check_config(cfg, Personality)
    assert "hello_timeout" in str(exc.value)
    cfg["workers"][0]["transports"][1]["options"]["hello_timeout"] = 0  # 0: no limit
    cfg["workers"][0]["transports"][0]["paths"]["ws"]["options"]["hello_timeout"] = 5000
    check_config(cfg, Personality)
