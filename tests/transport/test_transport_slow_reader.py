"""A subscriber that never reads, on a real node.

Before: each queued 60-byte JSON EVENT cost the router ~4 KB (orjson's ``bytes`` keep a
4 KiB buffer; the queue kept one object per message), the bound counted payload bytes
only, so 100,000 queued events cost ~400 MB without reaching the 64 MiB bound, and
the memory stayed after the peer left.  Now queued frames are held as bytes (one joined
buffer per turn, a ``bytearray`` backlog while the transport is paused), the bound
counts them, and the memory is returned when the slow peer is cut off."""

from __future__ import annotations

import copy
import json
import socket
import struct
import time

import pytest

from support.nodes import node_config, router_worker, start_node, stop_node
from support.tls import client_ctx
from support.wamp_raw import (
    RawSocketPeer, _Peer, encode, rawsocket_frame, rawsocket_handshake_bytes, recv_exactly, ws_frame,
    ws_upgrade_request,
)
from wampfabric.protocol.codes import EVENT, HELLO, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, WELCOME

BOUND = 4 * 1024 * 1024


def bounded_config(ports, rs_path):
    cfg = copy.deepcopy(node_config(ports, rs_path))
    transports = cfg["workers"][0]["transports"]
    transports[0]["paths"]["ws"]["options"]["max_outgoing_buffer"] = BOUND
    transports[1]["options"]["max_outgoing_buffer"] = BOUND
    return cfg


@pytest.fixture(scope="module")
def bounded_node():
    n = start_node(bounded_config)
    yield n
    stop_node(n)


def rs_frame(msg) -> bytes:
    return rawsocket_frame(encode("json", msg))


def slow_subscriber(node, kind: str, topic: str) -> socket.socket:
    """Joins, subscribes to ``topic`` and never reads (small receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hello = [HELLO, "realm1", {"roles": {"subscriber": {}}}]
    subscribe = [SUBSCRIBE, 1, {}, topic]
    if kind == "rawsocket":
        s.connect(("127.0.0.1", node.rawsocket_port))
        s.sendall(rawsocket_handshake_bytes(1, 15))
        assert recv_exactly(s, 4)[0] == 0x7F
        s.sendall(rs_frame(hello) + rs_frame(subscribe))
    else:
        s.connect(("127.0.0.1", node.ports["web"]))
        s.sendall(ws_upgrade_request("x"))
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.sendall(ws_frame(encode("json", hello)) + ws_frame(encode("json", subscribe)))
    time.sleep(0.5)  # WELCOME and SUBSCRIBED are sent; we never read them
    return s


def flood(pub: RawSocketPeer, topic: str, first: int, count: int, numbered: bool = False) -> None:
    """``count`` 10-byte events (or events numbered ``first``...), then an acknowledged
    publish: when its PUBLISHED arrives, the router has handled all of them."""
    frames = [rs_frame([PUBLISH, i, {}, topic, [i if numbered else "x" * 10]]) for i in range(first, first + count)]
    for i in range(0, count, 1000):
        pub.sock.sendall(b"".join(frames[i:i + 1000]))
    ack = pub.request([PUBLISH, first + count, {"acknowledge": True}, "com.elsewhere", []], timeout=60)
    assert ack[0] == PUBLISHED, ack


def read_numbered_events(sock: socket.socket, count: int, timeout: float = 20.0) -> None:
    """Read RawSocket frames in bulk until ``count`` EVENTs numbered 1, 2, ... arrived, in order."""
    sock.settimeout(timeout)
    buf = b""
    expected = 1
    while expected <= count:
        chunk = sock.recv(1 << 20)
        assert chunk, f"connection closed after {expected - 1} events"
        buf += chunk
        pos = 0
        while len(buf) - pos >= 4:
            (word,) = struct.unpack_from(">I", buf, pos)
            n = word & 0xFFFFFF
            if len(buf) - pos - 4 < n:
                break
            msg = json.loads(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            if word >> 24 == 0 and msg[0] == EVENT:
                assert msg[4] == [expected], (expected, msg)
                expected += 1
        buf = buf[pos:]


def is_closed(s: socket.socket, timeout: float = 10.0) -> bool:
    """Drain ``s`` until the router closes it (True) or ``timeout`` passes (False)."""
    s.settimeout(timeout)
    try:
        while s.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
def test_slow_subscriber_memory_is_bounded_and_returned(bounded_node, kind):
    node = bounded_node
    worker = router_worker(node)
    topic = f"com.flood.{kind}"
    cut_offs = node.log().count("peer does not read")
    slow = slow_subscriber(node, kind, topic)
    pub = RawSocketPeer(port=node.rawsocket_port)
    try:
        pub.hello()
        flood(pub, "com.warmup", 1, 2000)  # warm up the publisher's path (no subscriber)
        baseline = worker.memory_info().rss

        # 60,000 events queued for the slow subscriber: ~3.5 MB of frames, below the bound
        # (before the fix: ~240 MB, one 4 KB object per event)
        flood(pub, topic, 10_000, 60_000)
        below_bound = worker.memory_info().rss - baseline
        assert below_bound < 2 * BOUND, f"{below_bound / 1e6:.1f} MB for ~3.5 MB of queued events"
        assert node.log().count("peer does not read") == cut_offs

        # 120,000 more (the kernel's socket buffers take up to ~4 MB): the bound is reached,
        # the slow subscriber is cut off
        flood(pub, topic, 100_000, 120_000)
        deadline = time.monotonic() + 10
        while node.log().count("peer does not read") == cut_offs and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.log().count("peer does not read") == cut_offs + 1
        assert is_closed(slow)
    finally:
        slow.close()
        pub.close()
    time.sleep(2.0)  # the router trims freed memory after a cut-off peer (at most once per second)
    after = worker.memory_info().rss - baseline
    assert after < 3 * 1024 * 1024, f"{after / 1e6:.1f} MB still held after the slow subscriber left"
    node.assert_alive()


def test_a_reading_subscriber_gets_every_event_in_order(bounded_node):
    """The backlog path (transport paused) keeps order and loses nothing: a subscriber that
    reads only after the flood receives all ~8 MB of events, far more than the kernel's
    buffers of its Unix socket hold (that transport has the default 64 MiB bound)."""
    node = bounded_node
    topic = "com.flood.reader"
    sub = RawSocketPeer(path=node.rawsocket_path)
    pub = RawSocketPeer(port=node.rawsocket_port)
    try:
        sub.hello()
        assert sub.request([SUBSCRIBE, 1, {}, topic])[0] == SUBSCRIBED
        pub.hello()
        # ~8 MB while the subscriber does not read: more than the kernel's socket buffers
        flood(pub, topic, 1, 120_000, numbered=True)
        read_numbered_events(sub.sock, 120_000)
    finally:
        sub.close()
        pub.close()
    node.assert_alive()


def tls_rawsocket_peer(node, pki, rcvbuf: int | None = None) -> RawSocketPeer:
    """A RawSocketPeer (JSON) over TLS to the TLS RawSocket port of the TLS node (support/tls.py)."""
    raw = socket.create_connection(("127.0.0.1", node.ports["rs"]), timeout=10)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    peer = RawSocketPeer.__new__(RawSocketPeer)
    _Peer.__init__(peer)
    peer.serializer, peer.router_max_len = "json", None
    peer.sock = client_ctx(pki).wrap_socket(raw, server_hostname="localhost")
    peer.sock.sendall(rawsocket_handshake_bytes(1, 15))
    assert recv_exactly(peer.sock, 4)[0] == 0x7F
    return peer


def test_tls_subscriber_that_reads_late_gets_every_event(tls_node, pki):
    """TLS transports keep uvloop's default write marks and their pauses are ignored (the
    joined buffers stay in the TLS transport): nothing stalls and nothing is lost."""
    sub = tls_rawsocket_peer(tls_node, pki, rcvbuf=65536)  # (4 KiB: TLS records trickle, ~1k events/s)
    pub = tls_rawsocket_peer(tls_node, pki)
    try:
        assert sub.hello()[0] == WELCOME and pub.hello()[0] == WELCOME
        assert sub.request([SUBSCRIBE, 1, {}, "com.tls.flood"])[0] == SUBSCRIBED
        flood(pub, "com.tls.flood", 1, 120_000, numbered=True)  # ~8 MB, read only afterwards
        read_numbered_events(sub.sock, 120_000)
    finally:
        sub.close()
        pub.close()
    tls_node.assert_alive()
