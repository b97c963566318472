"""Deeply nested messages on a real node, through raw peers.

A message may nest containers at most ``MAX_DEPTH`` (1024) levels deep, the message list
counting as level 1 (``protocol/serializers.py``, "Nesting depth").  Deeper input is refused
with ABORT ``wamp.error.protocol_violation`` -- before HELLO and in a session, over WebSocket
and RawSocket, for JSON, MessagePack and CBOR -- and a peer's 1,000-deep list in a place
where a scalar belongs (the message type, an option) is a protocol violation whose text
quotes it shortened.  Before the fix, 1,000-1,023 levels raised RecursionError (repr() in
the error text): the WebSocket closed with 1011, the RawSocket was dropped and the node log
had a traceback.  Whatever the router accepts it can write to peers of every serializer
(orjson writes only 254 levels itself).
"""

from __future__ import annotations

import orjson
import pytest

from support import wamp_raw
from support.nodes import start_node, stop_node
from wampfabric.protocol.codes import CALL, HELLO, PUBLISH

DEPTHS = [100, 1000, 1023, 5000, 100_000]
MAX_DEPTH = 1024
SERIALIZERS = ["json", "msgpack", "cbor"]


@pytest.fixture(scope="module")
def dnode():
    n = start_node()
    yield n
    stop_node(n)


def deep(ser: str, depth: int) -> bytes:
    """``depth`` nested lists around the integer 1, written without recursion."""
    if ser == "json":
        return b"[" * depth + b"1" + b"]" * depth
    if ser == "msgpack":
        return b"\x91" * depth + b"\x01"
    return b"\x81" * depth + b"\x01"


def publish_bytes(ser: str, depth: int) -> bytes:
    """PUBLISH(acknowledge) with Arguments [X], X nested ``depth`` deep: depth + 2 levels."""
    head = wamp_raw.encode(ser, [PUBLISH, 7, {"acknowledge": True}, "com.deep.topic", ["@"]])
    at = wamp_raw.encode(ser, "@")
    assert head.count(at) == 1
    return head.replace(at, deep(ser, depth))


def peer(node, transport: str, ser: str):
    if transport == "websocket":
        return wamp_raw.WebSocketPeer(node.ws_url, serializer=ser)
    return wamp_raw.RawSocketPeer(node.rawsocket_port, serializer=ser)


def expect_abort(p, *texts: str) -> None:
    msgs = p.recv_until_closed(10)
    assert msgs, "connection closed without ABORT"
    abort = msgs[-1]
    assert abort[0] == wamp_raw.ABORT and abort[2] == "wamp.error.protocol_violation", abort
    message = abort[1]["message"]
    assert len(message) < 300
    for t in texts:
        assert t in message, message
    if isinstance(p, wamp_raw.WebSocketPeer):
        assert p.close_code in (1000, None), p.close_code  # a normal close after ABORT, never 1011


def assert_log_clean(node) -> None:
    node.assert_alive()
    log = node.log()
    for bad in ("Traceback", "RecursionError", "internal router error", "internal error"):
        assert bad not in log, log[log.index(bad) - 2000:][:4000]


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("ser", SERIALIZERS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_list_as_the_message_before_hello(dnode, transport, ser, depth):
    p = peer(dnode, transport, ser)
    try:
        p.send_bytes(deep(ser, depth))
        if depth <= MAX_DEPTH:
            expect_abort(p, "invalid message type [[[[", "...")
        else:
            expect_abort(p, f"nested deeper than {MAX_DEPTH} levels")
    finally:
        p.close()
    assert_log_clean(dnode)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("ser", SERIALIZERS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_hello_details(dnode, transport, ser, depth):
    # HELLO.Details.authid must be a string: a deep list there is quoted shortened
    hello = wamp_raw.encode(ser, [HELLO, "realm1", {"roles": {"caller": {}}, "authid": "@"}])
    at = wamp_raw.encode(ser, "@")
    p = peer(dnode, transport, ser)
    try:
        p.send_bytes(hello.replace(at, deep(ser, depth)))
        if depth + 2 <= MAX_DEPTH:
            expect_abort(p, "HELLO: Details.authid must be a string or null, got [[[[")
        else:
            expect_abort(p, f"nested deeper than {MAX_DEPTH} levels")
    finally:
        p.close()
    assert_log_clean(dnode)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("ser", SERIALIZERS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_publication_in_a_session(dnode, transport, ser, depth):
    # a JSON subscriber: the deep payload crosses serializers (orjson alone writes 254 levels)
    sub = wamp_raw.RawSocketPeer(dnode.rawsocket_port, serializer="json")
    p = peer(dnode, transport, ser)
    try:
        assert sub.hello()[0] == wamp_raw.WELCOME
        assert sub.request([wamp_raw.SUBSCRIBE, 1, {}, "com.deep.topic"])[0] == wamp_raw.SUBSCRIBED
        assert p.hello()[0] == wamp_raw.WELCOME
        p.send_bytes(publish_bytes(ser, depth))
        if depth + 2 > MAX_DEPTH:
            expect_abort(p, f"nested deeper than {MAX_DEPTH} levels")
            return
        reply = p.recv(10)
        assert reply[:2] == [wamp_raw.PUBLISHED, 7], reply
        event = orjson.loads(sub.recv_bytes(10))  # orjson: the stdlib json recurses
        assert event[0] == wamp_raw.EVENT
        x = event[4][0]
        for _ in range(depth):
            x = x[0]
        assert x == 1
        # the publisher's session goes on
        assert p.request([wamp_raw.SUBSCRIBE, 8, {}, "com.deep.other"])[0] == wamp_raw.SUBSCRIBED
    finally:
        p.close()
        sub.close()
    assert_log_clean(dnode)


@pytest.mark.parametrize("ser", SERIALIZERS)
def test_deep_list_as_an_option_in_a_session(dnode, ser):
    p = peer(dnode, "rawsocket", ser)
    try:
        assert p.hello()[0] == wamp_raw.WELCOME
        msg = wamp_raw.encode(ser, [CALL, 3, {"timeout": "@"}, "com.deep.proc", []])
        at = wamp_raw.encode(ser, "@")
        p.send_bytes(msg.replace(at, deep(ser, 1000)))
        expect_abort(p, "CALL: Options.timeout must be an integer in [0, 2**53], got [[[[")
    finally:
        p.close()
    assert_log_clean(dnode)
