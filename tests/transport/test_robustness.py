"""Robustness: broken peers must not hurt the router.

Raw sockets / hand-made WebSocket frames (tests/support/wamp_raw.py) put broken bytes
on the wire: garbage, broken RawSocket handshakes, protocol violations,
undecodable and oversized messages, connections dropped mid-handshake.  After
each, the router process must still be alive and a fresh autobahn client must
join and complete a call.

Where Crossbar.io deviates from a MUST of the WAMP spec, the test asserts the
spec behaviour and carries a ``# spec MUST; Crossbar.io deviates: ...`` comment.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid

import pytest

from support import wamp_raw
from support.autobahn_client import connect
from support.wamp_raw import ABORT, CALL, HELLO, WELCOME, RawSocketPeer, WebSocketPeer

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
MAX_MESSAGE_SIZE = 2 * 1024 * 1024  # tests/conftest.py: web /ws and TCP rawsocket


# ---------------------------------------------------------------------------
# helpers


async def _roundtrip(node):
    proc = f"com.test.health.{uuid.uuid4().hex[:12]}"
    callee = await connect(node, "websocket", "json")
    caller = await connect(node, "rawsocket-tcp", "msgpack")
    try:
        await asyncio.wait_for(callee.register(lambda x: x * 2, proc), 5)
        assert await asyncio.wait_for(caller.call(proc, 21), 5) == 42
    finally:
        await caller.shutdown()
        await callee.shutdown()


def assert_healthy(node):
    """Router process alive, and a fresh autobahn client joins and does a call."""
    node.assert_alive()
    asyncio.run(asyncio.wait_for(_roundtrip(node), 15))
    node.assert_alive()


def raw_peer(node, transport: str, serializer: str, handshake: bool = True):
    if transport == "websocket":
        return WebSocketPeer(node.ws_url, serializer)
    if transport == "rawsocket-tcp":
        return RawSocketPeer(port=node.rawsocket_port, serializer=serializer, handshake=handshake)
    return RawSocketPeer(path=node.rawsocket_path, serializer=serializer, handshake=handshake)


def joined_peer(node, transport: str, serializer: str):
    p = raw_peer(node, transport, serializer)
    welcome = p.hello(node.realm)
    assert welcome and welcome[0] == WELCOME, welcome
    return p


def assert_aborted(msgs: list, what: str):
    """The router must have answered with ABORT wamp.error.protocol_violation."""
    assert msgs, f"{what}: no ABORT received (connection closed or idle without a message)"
    first = msgs[0]
    assert first[0] == ABORT and first[2] == PROTOCOL_VIOLATION, f"{what}: expected ABORT {PROTOCOL_VIOLATION}, got {msgs!r}"
    assert isinstance(first[1], dict)


def recv_all(peer, timeout: float = 2.0) -> tuple[list, bool]:
    """(messages received, closed?) within *timeout*."""
    deadline = time.monotonic() + timeout
    msgs = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return msgs, False
        try:
            m = peer.recv(left)
        except TimeoutError:
            return msgs, False
        except (ValueError, UnicodeDecodeError):
            continue
        if m is None:
            return msgs, True
        msgs.append(m)


TRANSPORT_SER = [
    pytest.param("websocket", "json", id="websocket-json"),
    pytest.param("websocket", "msgpack", id="websocket-msgpack"),
    pytest.param("rawsocket-tcp", "cbor", id="rawsocket-tcp-cbor"),
    pytest.param("rawsocket-unix", "json", id="rawsocket-unix-json"),
]


# ---------------------------------------------------------------------------
# garbage


GARBAGE = {
    "binary": bytes(range(256)) * 8,
    "crlf": b"\r\n\r\n\r\n",
    "not-http": b"HELLO ROUTER, ARE YOU THERE?\r\n\r\n",
    "bad-request-line": b"GET\x00/ws\x01HTTP/9.9\r\n\r\n",
    "rawsocket-magic": b"\x7f\xf1\x00\x00" + b"\x00\x00\x00\x02[]",
    "long-header": b"GET /ws HTTP/1.1\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_garbage_on_web_port(node, kind):
    s = wamp_raw.open_socket(node.ports["web"])
    try:
        try:
            s.sendall(GARBAGE[kind])
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # router already hung up: fine
        try:
            reply = wamp_raw.wait_closed(s, 3)
        except TimeoutError:
            reply = None  # router keeps the connection open: tolerated, we hang up
        if reply:
            # whatever comes back must be an HTTP error, never an upgrade
            assert reply.startswith(b"HTTP/1."), reply[:200]
            status = int(reply.split(b" ", 2)[1])
            assert 400 <= status < 600, reply[:200]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


def test_garbage_websocket_frames(node):
    """Valid WebSocket upgrade, then bytes that are not a valid WebSocket frame."""
    s = wamp_raw.ws_handshake_socket(node.ports["web"])
    try:
        s.sendall(b"\xff" * 64)  # FIN + RSV bits set + reserved opcode 0xF
        data = wamp_raw.wait_closed(s, 5)
        # if anything came back it is a WebSocket close frame
        if data:
            assert data[0] & 0x0F == 0x8, data[:50]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


def test_unmasked_client_frame(node):
    """RFC 6455: a server MUST close the connection on an unmasked client frame."""
    s = wamp_raw.ws_handshake_socket(node.ports["web"])
    try:
        s.sendall(wamp_raw.ws_frame(b'[1,"realm1",{"roles":{"caller":{}}}]', mask=b""))
        # either the TCP connection closes, or a WebSocket close frame starts the closing handshake
        data = b""
        try:
            while len(data) < 2:
                s.settimeout(5)
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, socket.timeout):
            pytest.fail("router neither closed the connection nor sent a close frame")
        except ConnectionError:
            pass
        assert data == b"" or data[0] == 0x88, data[:100]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


@pytest.mark.parametrize("kind", ["http", "binary", "zeros", "single-byte"])
@pytest.mark.parametrize("where", ["tcp", "unix"])
def test_garbage_on_rawsocket_port(node, kind, where):
    data = {
        "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "binary": bytes(range(255, -1, -1)) * 4,
        "zeros": b"\x00" * 1024,
        "single-byte": b"\x01",
    }[kind]
    s = wamp_raw.open_socket(node.rawsocket_port) if where == "tcp" else wamp_raw.open_socket(unix_path=node.rawsocket_path)
    try:
        s.sendall(data)
        if kind == "single-byte":
            s.shutdown(socket.SHUT_WR)  # incomplete handshake, then EOF
        reply = wamp_raw.wait_closed(s, 5)
        # spec: first octet != 0x7F -> the router MUST fail the connection (no handshake reply)
        assert not (len(reply) >= 4 and reply[0] == 0x7F and reply[1] & 0x0F), reply[:16]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


# ---------------------------------------------------------------------------
# RawSocket handshake


@pytest.mark.parametrize("magic", [0x7E, 0x00, 0xFF, 0x47])
def test_rawsocket_bad_magic(node, magic):
    s = wamp_raw.open_socket(node.rawsocket_port)
    try:
        s.sendall(wamp_raw.rawsocket_handshake_bytes(1, 15, magic=magic))
        reply = wamp_raw.wait_closed(s, 5)
        assert not (len(reply) >= 4 and reply[0] == 0x7F and reply[1] & 0x0F), reply[:16]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


@pytest.mark.parametrize("ser_id", [5, 6, 15], ids=["flatbuffers", "reserved-6", "reserved-15"])
@pytest.mark.parametrize("where", ["tcp", "unix"])
def test_rawsocket_unsupported_serializer(node, ser_id, where):
    # spec MUST; Crossbar.io deviates: closes the connection without sending the
    # error reply 0x7F 0x10 0x00 0x00 ("serializer unsupported")
    s = wamp_raw.open_socket(node.rawsocket_port) if where == "tcp" else wamp_raw.open_socket(unix_path=node.rawsocket_path)
    try:
        s.sendall(wamp_raw.rawsocket_handshake_bytes(ser_id, 15))
        reply = wamp_raw.wait_closed(s, 5)
        assert reply == bytes([0x7F, 0x10, 0x00, 0x00]), reply[:16]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


def test_rawsocket_illegal_serializer_zero(node):
    """Serializer value 0 is illegal: the router fails the connection (an error reply first is OK)."""
    s = wamp_raw.open_socket(node.rawsocket_port)
    try:
        s.sendall(wamp_raw.rawsocket_handshake_bytes(0, 15))
        reply = wamp_raw.wait_closed(s, 5)
        assert reply == b"" or (len(reply) == 4 and reply[0] == 0x7F and reply[1] & 0x0F == 0 and reply[1] >> 4 != 0), reply[:16]
    finally:
        wamp_raw.abort_socket(s)
    assert_healthy(node)


def test_rawsocket_handshake_reply(node):
    """Success reply: magic, echoed serializer, router's max length (2 MB configured), zero reserved octets."""
    for ser, ser_id in wamp_raw.RAWSOCKET_SERIALIZER_IDS.items():
        s = wamp_raw.open_socket(node.rawsocket_port)
        try:
            s.sendall(wamp_raw.rawsocket_handshake_bytes(ser_id, 0))  # we accept at most 512 octets
            reply = wamp_raw.recv_exactly(s, 4)
            assert len(reply) == 4 and reply[0] == 0x7F and reply[1] & 0x0F == ser_id and reply[2:] == b"\x00\x00", reply
            max_len = 2 ** ((reply[1] >> 4) + 9)
            assert max_len >= MAX_MESSAGE_SIZE // 2, max_len
        finally:
            wamp_raw.abort_socket(s)


def test_rawsocket_ping_pong(node):
    # spec MUST (reply to each PING with a PONG echoing the payload); Crossbar.io deviates:
    # its RawSocket framing ignores the message type bits and drops the connection on PING
    with joined_peer(node, "rawsocket-tcp", "json") as p:
        p.send_bytes(b"ping-payload-\x00\xff", msg_type=1)
        frame = p.recv_frame(5)
        assert frame == (2, b"ping-payload-\x00\xff"), frame
        # the session still works afterwards
        r = p.request([CALL, p.next_id(), {}, "com.test.nosuch.after.ping"])
        assert r[0] == wamp_raw.ERROR and r[4] == "wamp.error.no_such_procedure", r
    assert_healthy(node)


def test_rawsocket_handshake_and_hello_in_one_segment(node):
    """Handshake and HELLO in one TCP segment: must be processed in order."""
    s = wamp_raw.open_socket(node.rawsocket_port)
    try:
        hello = wamp_raw.encode("json", [HELLO, node.realm, {"roles": wamp_raw.CLIENT_ROLES}])
        s.sendall(wamp_raw.rawsocket_handshake_bytes(1, 15) + struct.pack(">I", len(hello)) + hello)
        assert wamp_raw.recv_exactly(s, 4)[0] == 0x7F
        (h,) = struct.unpack(">I", wamp_raw.recv_exactly(s, 4))
        welcome = wamp_raw.decode("json", wamp_raw.recv_exactly(s, h & 0xFFFFFF))
        assert welcome[0] == WELCOME, welcome
    finally:
        wamp_raw.abort_socket(s)


# ---------------------------------------------------------------------------
# WAMP protocol violations -> ABORT wamp.error.protocol_violation


@pytest.mark.parametrize("transport,serializer", TRANSPORT_SER)
def test_unknown_message_type_after_join(node, transport, serializer):
    # spec MUST; Crossbar.io deviates: drops the transport (WebSocket close 1002 /
    # RawSocket close) without sending ABORT
    with joined_peer(node, transport, serializer) as p:
        p.send([999, p.next_id(), {}])
        msgs, _closed = recv_all(p)
        assert_aborted(msgs, "unknown message type 999")
    assert_healthy(node)


@pytest.mark.parametrize("transport,serializer", TRANSPORT_SER)
def test_call_before_hello(node, transport, serializer):
    # spec MUST; Crossbar.io deviates: silently ignores messages before HELLO (no ABORT,
    # connection stays open)
    with raw_peer(node, transport, serializer) as p:
        p.send([CALL, 1, {}, "com.test.proc"])
        msgs, _closed = recv_all(p)
        assert_aborted(msgs, "CALL before HELLO")
    assert_healthy(node)


@pytest.mark.parametrize("transport,serializer", TRANSPORT_SER[:1] + TRANSPORT_SER[2:3])
def test_second_hello(node, transport, serializer):
    # spec MUST; Crossbar.io deviates: silently ignores the second HELLO
    with joined_peer(node, transport, serializer) as p:
        p.send([HELLO, node.realm, {"roles": wamp_raw.CLIENT_ROLES}])
        msgs, _closed = recv_all(p)
        assert_aborted(msgs, "HELLO after session was established")
    assert_healthy(node)


def test_session_gone_after_protocol_violation(node):
    """Protocol violation disposes the session's registrations (spec: MUST abort the session)."""
    proc = f"com.test.violator.{uuid.uuid4().hex[:12]}"
    with joined_peer(node, "websocket", "json") as p:
        r = p.request([wamp_raw.REGISTER, p.next_id(), {}, proc])
        assert r[0] == wamp_raw.REGISTERED, r
        p.send([999, p.next_id(), {}])
        recv_all(p, 2)

    async def check():
        s = await connect(node, "rawsocket-tcp", "json")
        try:
            await asyncio.wait_for(s.register(lambda: "mine", proc), 5)
            assert await asyncio.wait_for(s.call(proc), 5) == "mine"
        finally:
            await s.shutdown()

    asyncio.run(check())
    assert_healthy(node)


BROKEN_PAYLOADS = {
    # name: (transport, serializer, payload bytes or str (websocket text frame))
    "ws-json-object": ("websocket", "json", '{"not": "a list"}'),
    "ws-json-number": ("websocket", "json", "42"),
    "ws-json-undecodable": ("websocket", "json", "[1, \"realm1\", {"),
    "ws-json-empty-list": ("websocket", "json", "[]"),
    "ws-json-type-not-int": ("websocket", "json", '["HELLO", "realm1", {}]'),
    "ws-msgpack-undecodable": ("websocket", "msgpack", b"\xc1\xc1\xc1\xc1"),
    "ws-cbor-map": ("websocket", "cbor", b"\xa1\x61a\x01"),
    "ws-cbor-truncated": ("websocket", "cbor", b"\x83\x01\x02"),
    "rs-json-undecodable": ("rawsocket-tcp", "json", b"\xff\xfe not json"),
    "rs-json-object": ("rawsocket-tcp", "json", b'{"a": 1}'),
    "rs-msgpack-undecodable": ("rawsocket-tcp", "msgpack", b"\xc1"),
    "rs-cbor-string": ("rawsocket-unix", "cbor", b"\x63abc"),
    "rs-empty-frame": ("rawsocket-tcp", "json", b""),
}


def _send_raw_payload(p, payload):
    if isinstance(p, WebSocketPeer):
        p.send_frame(payload)
    else:
        p.send_bytes(payload)


@pytest.mark.parametrize("joined", [True, False], ids=["after-join", "before-hello"])
@pytest.mark.parametrize("name", list(BROKEN_PAYLOADS))
def test_undecodable_or_non_list_message(node, name, joined):
    """The connection gets closed (ABORT protocol_violation first is welcome, nothing else is)."""
    transport, serializer, payload = BROKEN_PAYLOADS[name]
    p = joined_peer(node, transport, serializer) if joined else raw_peer(node, transport, serializer)
    with p:
        _send_raw_payload(p, payload)
        msgs, closed = recv_all(p, 5)
        for m in msgs:
            assert m[0] == ABORT and m[2] == PROTOCOL_VIOLATION, msgs
        assert closed, f"connection still open after {name}; got {msgs!r}"
    assert_healthy(node)


# ---------------------------------------------------------------------------
# oversized messages (max_message_size: 2 MB)


def test_oversized_websocket_message(node):
    with joined_peer(node, "websocket", "json") as p:
        big = '[48,1,{},"com.test.big",["' + "a" * (MAX_MESSAGE_SIZE + 100_000) + '"]]'
        try:
            p.send_frame(big)
        except Exception:
            pass  # router may already have closed
        msgs, closed = recv_all(p, 10)
        assert closed, f"connection still open after oversized message; got {msgs!r}"
        for m in msgs:
            assert m[0] == ABORT, msgs
    assert_healthy(node)


def test_oversized_rawsocket_message(node):
    with joined_peer(node, "rawsocket-tcp", "json") as p:
        limit = p.router_max_len
        assert limit is not None and limit <= 2**24
        size = max(limit, MAX_MESSAGE_SIZE) + 100_000
        payload = b'[48,1,{},"com.test.big",["' + b"a" * (size - 30) + b'"]]'
        try:
            p.send_bytes(payload)
        except OSError:
            pass  # router closed while we were still sending: that is the point
        msgs, closed = recv_all(p, 10)
        assert closed, f"connection still open after oversized frame; got {msgs!r}"
    assert_healthy(node)


def test_oversized_rawsocket_header_only(node):
    """A frame header announcing more than the router's limit is enough to fail the connection."""
    with joined_peer(node, "rawsocket-tcp", "msgpack") as p:
        p.sock.sendall(struct.pack(">I", 0x00FFFFFF))  # 16 MB - 1, far above 2 MB
        msgs, closed = recv_all(p, 5)
        assert closed, f"router waits for a frame above its limit; got {msgs!r}"
    assert_healthy(node)


def test_large_message_below_limit_is_fine(node):
    with joined_peer(node, "websocket", "json") as p:
        req = p.next_id()
        p.send([CALL, req, {}, "com.test.nosuch.big", ["a" * (MAX_MESSAGE_SIZE - 200_000)]])
        r = p.recv(10)
        assert r[:3] == [wamp_raw.ERROR, CALL, req] and r[4] == "wamp.error.no_such_procedure", r
    with joined_peer(node, "rawsocket-tcp", "msgpack") as p:
        req = p.next_id()
        p.send([CALL, req, {}, "com.test.nosuch.big", [b"\x00" * (MAX_MESSAGE_SIZE - 200_000)]])
        r = p.recv(10)
        assert r[:3] == [wamp_raw.ERROR, CALL, req] and r[4] == "wamp.error.no_such_procedure", r


# ---------------------------------------------------------------------------
# abrupt disconnects


def _abrupt_connections(node, n: int = 100):
    """Open *n* connections in assorted half-done states, then drop them all (half with RST)."""
    web, rs, unix = node.ports["web"], node.rawsocket_port, node.rawsocket_path
    hello_json = wamp_raw.encode("json", [HELLO, node.realm, {"roles": wamp_raw.CLIENT_ROLES}])
    hello_cbor = wamp_raw.encode("cbor", [HELLO, node.realm, {"roles": wamp_raw.CLIENT_ROLES}])
    upgrade = wamp_raw.ws_upgrade_request("127.0.0.1", web)
    scenarios = [
        # (endpoint, bytes to send before dropping)
        ("web", b""),
        ("web", upgrade[: len(upgrade) // 2]),
        ("web", upgrade),
        ("web", upgrade + wamp_raw.ws_frame(hello_json)),
        ("web", upgrade + wamp_raw.ws_frame(hello_json)[:7]),
        ("web", upgrade + wamp_raw.ws_frame(hello_json) + wamp_raw.ws_frame(b'[48,1,{},"com.x"]')),
        ("rs", b""),
        ("rs", b"\x7f\xf1"),
        ("rs", wamp_raw.rawsocket_handshake_bytes(1)),
        ("rs", wamp_raw.rawsocket_handshake_bytes(1) + struct.pack(">I", len(hello_json)) + hello_json),
        ("rs", wamp_raw.rawsocket_handshake_bytes(3) + struct.pack(">I", len(hello_cbor)) + hello_cbor[:5]),
        ("rs", wamp_raw.rawsocket_handshake_bytes(1) + b"\x00\x00"),
        ("unix", wamp_raw.rawsocket_handshake_bytes(3) + struct.pack(">I", len(hello_cbor)) + hello_cbor),
        ("unix", b"\x7f"),
    ]
    socks = []
    try:
        for i in range(n):
            where, data = scenarios[i % len(scenarios)]
            if where == "web":
                s = wamp_raw.open_socket(web)
            elif where == "rs":
                s = wamp_raw.open_socket(rs)
            else:
                s = wamp_raw.open_socket(unix_path=unix)
            socks.append(s)
            if data:
                try:
                    s.sendall(data)
                except OSError:
                    pass
    finally:
        for i, s in enumerate(socks):
            if i % 2:
                wamp_raw.abort_socket(s)
            else:
                s.close()


def test_abrupt_disconnects_mid_handshake(node):
    _abrupt_connections(node, 100)
    assert_healthy(node)
    # and once more, connections dropped the moment they are accepted
    for _ in range(50):
        wamp_raw.abort_socket(wamp_raw.open_socket(node.rawsocket_port))
        wamp_raw.abort_socket(wamp_raw.open_socket(node.ports["web"]))
    assert_healthy(node)


def test_abrupt_disconnect_of_joined_sessions(node):
    """Joined sessions with subscriptions and registrations, dropped without GOODBYE."""
    prefix = f"com.test.abrupt.{uuid.uuid4().hex[:12]}"
    peers = []
    for i in range(20):
        transport, serializer = [("websocket", "json"), ("rawsocket-tcp", "msgpack"), ("rawsocket-unix", "cbor")][i % 3]
        p = joined_peer(node, transport, serializer)
        assert p.request([wamp_raw.SUBSCRIBE, p.next_id(), {}, f"{prefix}.topic"])[0] == wamp_raw.SUBSCRIBED
        assert p.request([wamp_raw.REGISTER, p.next_id(), {}, f"{prefix}.proc{i}"])[0] == wamp_raw.REGISTERED
        peers.append(p)
    for p in peers:
        if isinstance(p, RawSocketPeer):
            wamp_raw.abort_socket(p.sock)
        else:
            wamp_raw.abort_socket(p.ws.socket)
    assert_healthy(node)

    async def reregister():
        s = await connect(node, "websocket", "cbor")
        try:
            for i in range(20):
                await asyncio.wait_for(s.register(lambda: None, f"{prefix}.proc{i}"), 5)
        finally:
            await s.shutdown()

    # the dropped sessions' registrations are gone (give the router a moment to notice)
    for attempt in range(20):
        try:
            asyncio.run(reregister())
            break
        except Exception:
            if attempt == 19:
                raise
            time.sleep(0.1)


def test_router_alive_at_end(node):
    """Last robustness check: the node survived the whole module."""
    assert_healthy(node)
