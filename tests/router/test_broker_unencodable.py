"""Publications a subscriber's serializer cannot encode.

A MessagePack publisher may send what JSON cannot carry (an extension type), a CBOR publisher what
neither JSON nor MessagePack can (an integer beyond 64 bits).  (Deep nesting is no longer such a
case: every serializer writes the 1024 levels any of them accepts, see protocol/serializers.py.)  Decision: the router skips the subscribers whose serializer cannot encode
that event (one log line a second at most), every other subscriber gets it, and the publisher is
not at fault: it stays joined and an acknowledged publish gets PUBLISHED (the event was published;
the router does not try every serializer up front, which would cost every publication).

Real node; raw publishers (only a raw peer sends an arbitrary extension type or bignum), JSON
subscribers (autobahn-python and raw), MessagePack and CBOR raw subscribers.
"""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from support import wamp_raw
from support.advanced import silent
from support.autobahn_client import uid, w
from wampfabric.protocol.codes import EVENT, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, WELCOME

ROLES = {"publisher": {}, "subscriber": {}}


def raw(node, serializer):
    p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer=serializer)
    reply = p.hello(node.realm, {"roles": ROLES})
    assert reply[0] == WELCOME, reply
    return p


def subscribe(p, topic, options=None):
    r = p.request([SUBSCRIBE, p.next_id(), options or {}, topic])
    assert r[0] == SUBSCRIBED, r
    return r[2]


# (publisher's serializer, args, serializers that can carry them)
UNENCODABLE = [
    # a MessagePack extension type: JSON has none (CBOR writes the namedtuple as an array)
    pytest.param("msgpack", [msgpack.ExtType(5, b"abc")], {"msgpack", "cbor"}, id="msgpack-ext-type"),
    # a CBOR bignum: neither JSON nor MessagePack has integers beyond 64 bits
    pytest.param("cbor", [2**70], {"cbor"}, id="cbor-bignum"),
]


@pytest.mark.parametrize("pub_ser,args,carriers", UNENCODABLE)
async def test_unencodable_event_skips_only_those_subscribers(node, client, pub_ser, args, carriers):
    topic = f"com.unenc.{uid()}"
    js_events = []
    js = await client("websocket", "json")
    await w(js.subscribe(lambda *a, **kw: js_events.append(a), topic))
    pub = await asyncio.to_thread(raw, node, pub_ser)
    subs = {ser: await asyncio.to_thread(raw, node, ser) for ser in ("json", "msgpack", "cbor")}
    try:
        ids = {ser: subscribe(p, topic) for ser, p in subs.items()}
        # a pattern subscription too: its own EVENT, the same outcome
        pat = subscribe(subs[pub_ser], topic.rsplit(".", 1)[0] + ".", {"match": "prefix"})
        req = pub.next_id()
        pub.send([PUBLISH, req, {"acknowledge": True}, topic, args])
        ack = pub.recv()
        assert ack[:2] == [PUBLISHED, req], ack  # the publisher is not at fault
        got = [subs[pub_ser].recv(), subs[pub_ser].recv()]
        assert sorted(m[1] for m in got) == sorted([ids[pub_ser], pat])
        assert all(m[0] == EVENT and m[4] == args for m in got), got
        for ser, p in subs.items():
            if ser == pub_ser:
                continue
            if ser in carriers:
                m = p.recv()
                assert m[0] == EVENT and m[1] == ids[ser], m
            else:
                silent(p)
        await asyncio.sleep(0.2)
        assert js_events == []
        # everybody is still there: an ordinary event reaches all of them
        req = pub.next_id()
        pub.send([PUBLISH, req, {"acknowledge": True}, topic, ["fine"]])
        assert pub.recv()[:2] == [PUBLISHED, req]
        for ser, p in subs.items():
            for _ in range(2 if ser == pub_ser else 1):
                assert p.recv()[4] == ["fine"]
        for _ in range(100):
            if js_events:
                break
            await asyncio.sleep(0.02)
        assert js_events == [("fine",)]
        assert js.is_attached()
    finally:
        pub.close()
        for p in subs.values():
            p.close()
    node.assert_alive()
    assert "cannot be encoded in json" in node.log()


def test_unencodable_unacknowledged_publish_publisher_stays(node):
    topic = f"com.unenc.noack.{uid()}"
    pub = raw(node, "msgpack")
    sub = raw(node, "json")
    try:
        subscribe(sub, topic)
        for _ in range(50):  # many: the log stays short, nobody is thrown out
            pub.send([PUBLISH, pub.next_id(), {}, topic, [msgpack.ExtType(1, b"x")]])
        req = pub.next_id()
        pub.send([PUBLISH, req, {"acknowledge": True}, topic, ["after"]])
        assert pub.recv()[:2] == [PUBLISHED, req]
        m = sub.recv()
        assert m[0] == EVENT and m[4] == ["after"], m
    finally:
        pub.close()
        sub.close()
    node.assert_alive()


def test_unencodable_retained_event_subscriber_stays(node):
    """A retained event the new subscriber cannot take: not sent, the subscription still made."""
    topic = f"com.unenc.retained.{uid()}"
    pub = raw(node, "msgpack")
    sub = raw(node, "json")
    try:
        req = pub.next_id()
        pub.send([PUBLISH, req, {"acknowledge": True, "retain": True}, topic, [msgpack.ExtType(2, b"y")]])
        assert pub.recv()[:2] == [PUBLISHED, req]
        subscribe(sub, topic, {"get_retained": True})
        silent(sub)
        pub.send([PUBLISH, pub.next_id(), {}, topic, ["next"]])
        assert sub.recv()[4] == ["next"]
    finally:
        pub.close()
        sub.close()
    node.assert_alive()
