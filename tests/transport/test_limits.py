"""Bounded memory and origin checks on a node with tight limits."""

from __future__ import annotations

import copy
import socket
import time

import msgpack
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from support.nodes import node_config, start_node, stop_node
from support.wamp_raw import OP_BINARY, ws_frame, ws_upgrade_request
from wampfabric.protocol.codes import CALL, ERROR, HELLO, PUBLISH, PUBLISHED, SUBSCRIBE, WELCOME

OUT_LIMIT = 512 * 1024
FRAME_LIMIT = 64 * 1024
MESSAGE_LIMIT = 1024 * 1024
HANDSHAKE_TIMEOUT_MS = 1000


def limited_config(ports, rs_path):
    cfg = copy.deepcopy(node_config(ports, rs_path))
    ws = cfg["workers"][0]["transports"][0]["paths"]["ws"]
    ws["options"].update({"max_outgoing_buffer": OUT_LIMIT, "allowed_origins": ["http://good.example", "https://*.good.example"],
                          "allow_null_origin": False, "max_frame_size": FRAME_LIMIT, "max_message_size": MESSAGE_LIMIT,
                          "open_handshake_timeout": HANDSHAKE_TIMEOUT_MS})
    return cfg


@pytest.fixture(scope="module")
def limited_node():
    n = start_node(limited_config)
    yield n
    stop_node(n)


def join(ws):
    ws.send(msgpack.packb([HELLO, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}]))
    msg = msgpack.unpackb(ws.recv(timeout=5))
    assert msg[0] == WELCOME, msg
    return msg[1]


def test_consumer_that_does_not_read_is_disconnected(limited_node):
    node = limited_node
    url = node.ws_url
    proc = psutil.Process(node.proc.pid)
    # the slow consumer: subscribes, then never reads; small kernel buffers so the
    # router's own buffer fills quickly
    slow = socket.create_connection(("127.0.0.1", node.ports["web"]))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(ws_upgrade_request("x", subprotocol="wamp.2.msgpack"))
    assert b"101" in slow.recv(4096).split(b"\r\n", 1)[0]

    def client_frame(payload: bytes) -> bytes:
        return ws_frame(payload, opcode=OP_BINARY)

    slow.sendall(client_frame(msgpack.packb([HELLO, "realm1", {"roles": {"subscriber": {}}}])))
    slow.sendall(client_frame(msgpack.packb([SUBSCRIBE, 1, {}, "com.flood"])))
    time.sleep(0.5)  # WELCOME and SUBSCRIBED arrive; we never read them

    rss_before = proc.memory_info().rss
    blob = b"x" * 16000
    with ws_connect(url, subprotocols=["wamp.2.msgpack"], max_size=None) as pub:
        join(pub)
        for i in range(1, 400):  # ~6.4 MB in total, 12x the limit
            pub.send(msgpack.packb([PUBLISH, i, {}, "com.flood", [blob]]))
        pub.send(msgpack.packb([PUBLISH, 400, {"acknowledge": True}, "com.flood", []]))
        msg = msgpack.unpackb(pub.recv(timeout=10))
        assert msg[0] == PUBLISHED  # the router kept serving the publisher
    deadline = time.monotonic() + 10
    while "peer does not read" not in node.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "peer does not read" in node.log()
    # the slow consumer's connection was reset by the router: what the kernel still held for it
    # is dropped, not fed to it at the pace of its receive window (that took minutes)
    slow.settimeout(5)
    got = 0
    reset = False
    t0 = time.monotonic()
    try:
        while chunk := slow.recv(1 << 20):
            got += len(chunk)
    except ConnectionResetError:
        reset = True
    except socket.timeout:
        pass
    slow.close()
    assert reset and time.monotonic() - t0 < 5, (reset, got, time.monotonic() - t0)
    assert got < 4 * 1024 * 1024  # far less than what was published: the rest was never buffered
    rss_growth = proc.memory_info().rss - rss_before
    assert rss_growth < 4 * 1024 * 1024, rss_growth
    node.assert_alive()


@pytest.mark.parametrize("origin,ok", [
    ("http://good.example", True),
    ("https://app.good.example", True),
    ("http://evil.example", False),
    (None, True),  # non-browser clients send no Origin
    ("null", False),  # opaque origin, refused with allow_null_origin false
])
def test_allowed_origins(limited_node, origin, ok):
    headers = {"Origin": origin} if origin else {}
    if ok:
        with ws_connect(limited_node.ws_url, subprotocols=["wamp.2.msgpack"], additional_headers=headers,
                        origin=None) as ws:
            assert join(ws)
    else:
        with pytest.raises(Exception) as exc:
            ws_connect(limited_node.ws_url, subprotocols=["wamp.2.msgpack"], additional_headers=headers)
        assert "403" in str(exc.value)


def test_unknown_subprotocol_is_refused(limited_node):
    with pytest.raises(Exception) as exc:
        ws_connect(limited_node.ws_url, subprotocols=["mqtt"])
    assert "400" in str(exc.value)


def test_frames_are_limited_separately_from_messages(limited_node):
    """``max_frame_size`` bounds each frame (close 1009), ``max_message_size`` the reassembled
    message: a 192 KB message passes in 48 KB fragments and is refused as one frame."""
    blob = b"f" * (192 * 1024)
    publish = msgpack.packb([PUBLISH, 7, {"acknowledge": True}, "com.frames", [blob]])
    with ws_connect(limited_node.ws_url, subprotocols=["wamp.2.msgpack"], max_size=None) as ws:
        join(ws)
        ws.send([publish[i:i + 48 * 1024] for i in range(0, len(publish), 48 * 1024)])  # fragmented
        assert msgpack.unpackb(ws.recv(timeout=5))[:2] == [PUBLISHED, 7]
    with ws_connect(limited_node.ws_url, subprotocols=["wamp.2.msgpack"], max_size=None) as ws:
        join(ws)
        ws.send(publish)  # one frame above the frame limit
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009
    limited_node.assert_alive()


@pytest.mark.parametrize("sent", [b"", b"GET /ws HTTP/1.1\r\nHost: x\r\n"], ids=["silent", "partial-request"])
def test_open_handshake_timeout_drops_a_slow_client(limited_node, sent):
    s = socket.create_connection(("127.0.0.1", limited_node.ports["web"]), timeout=10)
    try:
        if sent:
            s.sendall(sent)
        t0 = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        waited = time.monotonic() - t0
    finally:
        s.close()
    # closed by the router after open_handshake_timeout (1 s), not by our 10 s socket timeout
    assert HANDSHAKE_TIMEOUT_MS / 1000 * 0.8 <= waited < 5, waited
    with ws_connect(limited_node.ws_url, subprotocols=["wamp.2.msgpack"]) as ws:
        assert join(ws)


def ping_config(ports, rs_path):
    cfg = copy.deepcopy(node_config(ports, rs_path))
    ws = cfg["workers"][0]["transports"][0]["paths"]["ws"]
    ws["options"].update({"auto_ping_interval": 300, "auto_ping_timeout": 300})
    return cfg


def test_auto_ping_drops_a_peer_that_does_not_answer():
    node = start_node(ping_config)
    try:
        # a peer that completes the upgrade and then never answers a PING
        s = socket.create_connection(("127.0.0.1", node.ports["web"]), timeout=5)
        s.sendall(ws_upgrade_request("x"))
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        deadline = time.monotonic() + 5
        got = b""
        closed = False
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        s.close()
        assert closed, "the router kept a peer that does not answer pings"
        assert got[:1] == b"\x89"  # it was pinged first (opcode 9)
        # a client that answers pings (websockets does) stays connected past the timeout
        with ws_connect(node.ws_url, subprotocols=["wamp.2.msgpack"]) as ws:
            join(ws)
            time.sleep(1.0)
            ws.send(msgpack.packb([CALL, 1, {}, "com.none"]))
            assert msgpack.unpackb(ws.recv(timeout=5))[0] == ERROR
        node.assert_alive()
    finally:
        stop_node(node)
