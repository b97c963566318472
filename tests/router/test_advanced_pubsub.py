"""WAMP Advanced Profile, PubSub features, end to end.

Spec: ``shared/reference/wamp-spec/advanced/pubsub_*.md``.  autobahn-python
(asyncio) over WebSocket and RawSocket, raw peers (``wamp_raw``) where
autobahn-python cannot send a message (``disclose_me``: autobahn-python 26 has
no such PublishOptions) or mishandles one (subscription revocation, see
``test_subscription_revocation``).

The node (``anode``, ``support/advanced.py``) has fixed
identities on extra WebSocket transports (``IDENTITIES``: alice and alice2 =
member/alice, bob = member/bob, carol = guest/carol, disclose =
discloser/dave) and an in-memory event store for the ``HISTORY`` topics.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from autobahn.wamp.types import PublishOptions

from support.advanced import anxt, asilent
from support.autobahn_client import DIAGONAL, expect_error, subscribe, uid, w
from wampfabric.protocol.codes import EVENT, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBED


# ===========================================================================
# Subscriber black- and whitelisting (pubsub_subscriber_blackwhite_listing.md)


async def test_blackwhite_listing(ac):
    topic = f"com.adv.bw.{uid()}"
    subs = {
        "anon": await ac("websocket", "json"),
        "alice": await ac("websocket", "msgpack", identity="alice"),
        "alice2": await ac("websocket", "cbor", identity="alice2"),
        "bob": await ac("websocket", "json", identity="bob"),
        "carol": await ac("websocket", "msgpack", identity="carol"),
    }
    assert subs["alice"].joined.result().authid == "alice" and subs["alice2"].joined.result().authrole == "member"
    assert subs["carol"].joined.result().authrole == "guest"
    events = {}
    for name, s in subs.items():
        events[name], _ = await subscribe(s, topic)
    pub = await ac("rawsocket-tcp", "msgpack")
    sid = {name: s.session_id for name, s in subs.items()}
    everyone = set(subs)
    cases = {
        "eligible": ({"eligible": [sid["alice"], sid["bob"]]}, {"alice", "bob"}),
        "eligible_empty": ({"eligible": []}, set()),
        "exclude": ({"exclude": [sid["alice"]]}, everyone - {"alice"}),
        "eligible_authid": ({"eligible_authid": ["alice"]}, {"alice", "alice2"}),
        "exclude_authid": ({"exclude_authid": ["alice"]}, {"anon", "bob", "carol"}),
        "eligible_authrole": ({"eligible_authrole": ["member"]}, {"alice", "alice2", "bob"}),
        "exclude_authrole": ({"exclude_authrole": ["member"]}, {"anon", "carol"}),
        "eligible_and_exclude": ({"eligible": [sid["alice"], sid["bob"], sid["carol"]], "exclude": [sid["alice"]]},
                                 {"bob", "carol"}),
        "role_minus_authid": ({"eligible_authrole": ["member"], "exclude_authid": ["bob"]}, {"alice", "alice2"}),
        "authid_and_session": ({"eligible_authid": ["alice", "carol"], "eligible": [sid["alice2"], sid["carol"]]},
                               {"alice2", "carol"}),
        "all_lists": ({"eligible_authrole": ["member", "guest"], "exclude_authrole": ["guest"],
                       "exclude": [sid["bob"]], "eligible_authid": ["alice", "bob", "carol"]}, {"alice", "alice2"}),
    }
    for case, (opts, _) in cases.items():
        await w(pub.publish(topic, case, options=PublishOptions(acknowledge=True, **opts)))
    await w(pub.publish(topic, "sentinel", options=PublishOptions(acknowledge=True)))
    for ev in events.values():
        await ev.wait(1)
    for name, ev in events.items():
        for _ in range(200):
            if ev.args and ev.args[-1] == ["sentinel"]:
                break
            await asyncio.sleep(0.005)
    got = {case: {name for name, ev in events.items() if [case] in ev.args} for case in cases}
    assert got == {case: expected for case, (_, expected) in cases.items()}


async def test_publisher_exclusion(ac):
    pub = await ac("websocket", "msgpack")
    other = await ac("rawsocket-tcp", "cbor")
    topic = f"com.adv.exclme.{uid()}"
    own, _ = await subscribe(pub, topic)
    seen, _ = await subscribe(other, topic)
    await w(pub.publish(topic, "default", options=PublishOptions(acknowledge=True)))
    await w(pub.publish(topic, "include-me", options=PublishOptions(acknowledge=True, exclude_me=False)))
    # an explicit blacklist wins over exclude_me=false
    await w(pub.publish(topic, "blacklisted", options=PublishOptions(acknowledge=True, exclude_me=False,
                                                                     exclude=[pub.session_id])))
    await w(pub.publish(topic, "sentinel", options=PublishOptions(acknowledge=True, exclude_me=False)))
    await own.wait(2)
    await seen.wait(4)
    assert own.args == [["include-me"], ["sentinel"]]
    assert seen.args == [["default"], ["include-me"], ["blacklisted"], ["sentinel"]]


# ===========================================================================
# Publisher identification (pubsub_publisher_identification.md)


def _who(details):
    return [details.publisher, details.publisher_authid, details.publisher_authrole]


async def test_publisher_disclose_me(ac, raw):
    sub = await ac("rawsocket-tcp", "msgpack")
    topic = f"com.adv.pubid.{uid()}"
    ev, _ = await subscribe(sub, topic)
    # autobahn-python 26 PublishOptions has no disclose_me: a raw publisher asks for disclosure
    pub = raw({"publisher": ["publisher_identification"]}, identity="bob", serializer="json")
    for opts in ({"disclose_me": True}, {}, {"publisher": 4242, "publisher_authid": "root"}):
        r = await asyncio.to_thread(pub.request, [PUBLISH, pub.next_id(), {"acknowledge": True, **opts}, topic, [1]])
        assert r[0] == PUBLISHED, r
    await ev.wait(3)
    assert [_who(d) for _, _, d in ev.items] == [
        [pub.session_id, "bob", "member"],
        [None, None, None],
        [None, None, None],  # forged identity in PUBLISH options is not passed on
    ]


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("websocket", "msgpack")])
async def test_publisher_disclosed_by_role(ac, transport, serializer):
    sub = await ac("rawsocket-unix", "cbor")
    topic = f"com.adv.pubid.role.{uid()}"
    ev, _ = await subscribe(sub, topic)
    pub = await ac(transport, serializer, identity="disclose")
    await w(pub.publish(topic, options=PublishOptions(acknowledge=True)))
    (_, _, d), = await ev.wait(1)
    assert _who(d) == [pub.session_id, "dave", "discloser"]


# ===========================================================================
# Pattern-based subscriptions (pubsub_pattern_based_subscription.md)


@pytest.mark.parametrize("transport,serializer", DIAGONAL)
async def test_pattern_subscriptions_details_topic(ac, transport, serializer):
    sub = await ac(transport, serializer)
    pub = await ac("websocket", "json")
    base = f"com.adv.psub{uid()}"
    prefix, s_prefix = await subscribe(sub, f"{base}.topic.emergency", match="prefix")
    wild, s_wild = await subscribe(sub, f"{base}..userevent", match="wildcard")
    exact, s_exact = await subscribe(sub, f"{base}.foo.userevent")
    assert len({s_prefix.id, s_wild.id, s_exact.id}) == 3
    topics = {
        # spec examples: prefix
        "topic.emergency.11": "p", "topic.emergency_low": "p", "topic.emergency.category.severe": "p",
        "topic.emergency": "p", "topic.emerge": "",
        # spec examples: wildcard (foo.userevent also matches the exact subscription)
        "foo.userevent": "we", "bar.userevent": "w", "a12.userevent": "w",
        "foo.userevent.bar": "", "foo.user": "",
    }
    pubs = {}
    for tail in topics:
        pubs[tail] = (await w(pub.publish(f"{base}.{tail}", tail, options=PublishOptions(acknowledge=True)))).id
    await w(pub.publish(f"{base}.topic.emergency.end", "end", options=PublishOptions(acknowledge=True)))
    await prefix.wait(5)
    got = {tail: "".join(tag for tag, ev in (("p", prefix), ("w", wild), ("e", exact)) if [tail] in ev.args)
           for tail in topics}
    assert got == topics
    for tag, ev, sub_id in (("p", prefix, s_prefix.id), ("w", wild, s_wild.id)):
        for (args, _, d) in ev.items:
            if args == ["end"]:
                continue
            assert d.topic == f"{base}.{args[0]}", d  # MUST: the concrete topic published to
            assert d.subscription.id == sub_id and d.publication == pubs[args[0]]
    # the same event on two subscriptions: identical publication id, different subscription ids
    (_, _, dw), = [x for x in wild.items if x[0] == ["foo.userevent"]]
    (_, _, de), = [x for x in exact.items if x[0] == ["foo.userevent"]]
    assert dw.publication == de.publication and dw.subscription.id != de.subscription.id


# ===========================================================================
# Event retention (pubsub_event_retention.md)


async def test_retained_event(ac):
    pub = await ac("rawsocket-tcp", "msgpack")
    topic = f"com.adv.retain.{uid()}"
    r1 = await w(pub.publish(topic, 1, options=PublishOptions(acknowledge=True, retain=True)))
    r2 = await w(pub.publish(topic, 2, k="v", options=PublishOptions(acknowledge=True, retain=True)))
    await w(pub.publish(topic, 3, options=PublishOptions(acknowledge=True)))  # not retained: keeps event 2
    assert r1.id != r2.id
    for transport, serializer in (("websocket", "json"), ("rawsocket-unix", "cbor")):
        sub = await ac(transport, serializer)
        ev, s = await subscribe(sub, topic, get_retained=True)
        plain, _ = await subscribe(await ac("websocket", "msgpack"), topic)  # no get_retained
        await w(pub.publish(topic, "live", options=PublishOptions(acknowledge=True)))
        await ev.wait(2)
        await plain.wait(1)
        (a1, kw1, d1), (a2, _, d2) = ev.items
        assert (a1, kw1) == ([2], {"k": "v"}) and d1.retained is True and d1.publication == r2.id
        assert d1.subscription.id == s.id
        assert a2 == ["live"] and not d2.retained
        assert plain.args == [["live"]]


async def test_retained_event_respects_black_white_lists(ac):
    pub = await ac("websocket", "json")
    topic = f"com.adv.retain.bw.{uid()}"
    await w(pub.publish(topic, "members", options=PublishOptions(acknowledge=True, retain=True,
                                                                 eligible_authrole=["member"],
                                                                 exclude_authid=["bob"])))
    results = {}
    for identity in ("alice", "bob", "carol", None):
        s = await ac("websocket", "msgpack", identity=identity)
        ev, _ = await subscribe(s, topic, get_retained=True)
        await w(pub.publish(topic, "sentinel", options=PublishOptions(acknowledge=True, eligible=[s.session_id])))
        await ev.wait(1)
        results[identity] = ev.args
    assert results == {
        "alice": [["members"], ["sentinel"]],
        "bob": [["sentinel"]],  # excluded by authid
        "carol": [["sentinel"]],  # guest: not eligible
        None: [["sentinel"]],  # anonymous: not eligible
    }
    # the publisher itself would not have received it (exclude_me): no retained event either
    topic2 = f"com.adv.retain.self.{uid()}"
    await w(pub.publish(topic2, "mine", options=PublishOptions(acknowledge=True, retain=True)))
    ev, _ = await subscribe(pub, topic2, get_retained=True)
    other = await ac("rawsocket-tcp", "cbor")
    await w(other.publish(topic2, "sentinel", options=PublishOptions(acknowledge=True)))
    await ev.wait(1)
    assert ev.args == [["sentinel"]]
    # ... but one published with exclude_me=false is
    await w(pub.publish(topic2, "mine-too", options=PublishOptions(acknowledge=True, retain=True, exclude_me=False)))
    await ev.wait(2)
    ev2, _ = await subscribe(await ac("websocket", "json"), topic2, get_retained=True)
    await ev2.wait(1)
    assert ev2.args == [["mine-too"]]


async def test_retained_events_for_pattern_subscriptions(ac):
    pub = await ac("websocket", "json")
    base = f"com.adv.retain.pat{uid()}"
    for tail in ("a.temp", "b.temp", "c.humidity"):
        await w(pub.publish(f"{base}.{tail}", tail, options=PublishOptions(acknowledge=True, retain=True)))
    sub = await ac("rawsocket-tcp", "msgpack")
    pre, _ = await subscribe(sub, f"{base}.", match="prefix", get_retained=True)
    wild, _ = await subscribe(sub, f"{base}..temp", match="wildcard", get_retained=True)
    await w(pub.publish(f"{base}.z.temp", "sentinel", options=PublishOptions(acknowledge=True)))
    await pre.wait(4)
    await wild.wait(3)
    assert sorted(a[0] for a in pre.args[:3]) == ["a.temp", "b.temp", "c.humidity"] and pre.args[3] == ["sentinel"]
    assert sorted(a[0] for a in wild.args[:2]) == ["a.temp", "b.temp"] and wild.args[2] == ["sentinel"]
    for ev in (pre, wild):
        for args, _, d in ev.items[:-1]:
            assert d.retained is True and d.topic == f"{base}.{args[0]}", d


async def test_filtered_retained_event_does_not_hide_the_general_one(ac):
    pub = await ac("websocket", "json")
    topic = f"com.adv.retain.displace.{uid()}"
    await w(pub.publish(topic, "for everyone", options=PublishOptions(acknowledge=True, retain=True)))
    await w(pub.publish(topic, "members only", options=PublishOptions(acknowledge=True, retain=True,
                                                                      eligible_authrole=["member"])))
    s = await ac("websocket", "msgpack", identity="carol")
    ev, _ = await subscribe(s, topic, get_retained=True)
    await w(pub.publish(topic, "sentinel", options=PublishOptions(acknowledge=True, eligible=[s.session_id])))
    await ev.wait(1)
    assert ev.args[0] == ["for everyone"], ev.args


# ===========================================================================
# Event history (pubsub_event_history.md; realm "store" config in support/advanced.py, HISTORY)


def _rfc3339(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def test_event_history_kept_before_anyone_subscribed(ac):
    topic = "com.example.history"
    admin = await ac("websocket", "json")
    # the history topic has a subscription before anyone subscribed (spec: "dummy" subscriptions)
    pre_id = await w(admin.call("wamp.subscription.lookup", topic))
    assert isinstance(pre_id, int)
    pub = await ac("rawsocket-tcp", "msgpack")
    published = []
    for i in range(6):
        p = await w(pub.publish(topic, i, f"e{i}", n=i, options=PublishOptions(acknowledge=True)))
        published.append(p.id)
    sub = await ac("websocket", "cbor")
    ev, s = await subscribe(sub, topic)
    assert s.id == pre_id
    events = await w(admin.call("wamp.subscription.get_events", s.id))
    assert [e["publication"] for e in events] == published  # in order of occurrence
    t_prev = None
    for i, e in enumerate(events):
        assert e["subscription"] == s.id
        assert e["args"] == [i, f"e{i}"] and e["kwargs"] == {"n": i}
        assert isinstance(e["details"], dict)
        t = _rfc3339(e["timestamp"])
        assert t.tzinfo is not None
        assert t_prev is None or t >= t_prev
        t_prev = t
    limited = await w(admin.call("wamp.subscription.get_events", s.id, limit=3))
    assert len(limited) == 3
    ids = [e["publication"] for e in limited]
    k = published.index(ids[0])
    assert ids == published[k:k + 3]  # a contiguous run, in order of occurrence
    rev = await w(admin.call("wamp.subscription.get_events", s.id, reverse=True))
    assert [e["publication"] for e in rev] == published[::-1]
    rev2 = await w(admin.call("wamp.subscription.get_events", s.id, reverse=True, limit=2))
    assert [e["publication"] for e in rev2] == published[::-1][:2]  # reverse: the newest first
    # events published while subscribed are kept too
    p = await w(pub.publish(topic, "live", options=PublishOptions(acknowledge=True)))
    await ev.wait(1)
    events = await w(admin.call("wamp.subscription.get_events", s.id))
    assert events[-1]["publication"] == p.id and events[-1]["args"] == ["live"]
    await expect_error(admin.call("wamp.subscription.get_events", 4242424242), "wamp.error.no_such_subscription")


async def test_event_history_store_limit(ac):
    topic = "com.example.history5"  # store limit: 5
    pub = await ac("websocket", "msgpack")
    ids = [(await w(pub.publish(topic, i, options=PublishOptions(acknowledge=True)))).id for i in range(8)]
    sub_id = await w(pub.call("wamp.subscription.lookup", topic))
    events = await w(pub.call("wamp.subscription.get_events", sub_id))
    assert [e["publication"] for e in events] == ids[-5:]  # the oldest are dropped
    assert [e["args"] for e in events] == [[i] for i in range(3, 8)]


async def test_event_history_prefix_subscription(ac):
    """The spec's example: a prefix subscription's history has every publication under the prefix."""
    pub = await ac("rawsocket-tcp", "cbor")
    base = "com.example.hlog."
    order = ["auth", "basket", "basket", "basket", "checkout"]
    ids = [(await w(pub.publish(base + t, t, options=PublishOptions(acknowledge=True)))).id for t in order]
    sub = await ac("websocket", "json")
    ev, s = await subscribe(sub, base, match="prefix")
    assert s.id == await w(sub.call("wamp.subscription.lookup", base, {"match": "prefix"}))
    events = await w(sub.call("wamp.subscription.get_events", s.id))
    assert [e["publication"] for e in events] == ids
    assert [e["details"].get("topic") for e in events] == [base + t for t in order]
    basket = await w(sub.call("wamp.subscription.get_events", s.id, topic=base + "basket"))
    assert [e["publication"] for e in basket] == ids[1:4]


async def test_event_history_respects_authrole_authid_lists(ac):
    topic = "com.example.hsec"
    pub = await ac("websocket", "json")
    await w(pub.publish(topic, "public", options=PublishOptions(acknowledge=True)))
    await w(pub.publish(topic, "members", options=PublishOptions(acknowledge=True, eligible_authrole=["member"])))
    await w(pub.publish(topic, "not-carol", options=PublishOptions(acknowledge=True, exclude_authid=["carol"])))
    alice = await ac("websocket", "msgpack", identity="alice")
    carol = await ac("websocket", "msgpack", identity="carol")
    sub_id = await w(alice.call("wamp.subscription.lookup", topic))
    got_alice = [e["args"] for e in await w(alice.call("wamp.subscription.get_events", sub_id))]
    got_carol = [e["args"] for e in await w(carol.call("wamp.subscription.get_events", sub_id))]
    assert got_alice == [["public"], ["members"], ["not-carol"]]
    assert got_carol == [["public"]]


async def test_event_history_does_not_store_session_filtered_events(ac):
    topic = "com.example.hbw"
    pub = await ac("websocket", "json")
    victim = await ac("websocket", "json")
    await w(pub.publish(topic, "excl", options=PublishOptions(acknowledge=True, exclude=[victim.session_id])))
    await w(pub.publish(topic, "elig", options=PublishOptions(acknowledge=True, eligible=[pub.session_id])))
    await w(pub.publish(topic, "plain", options=PublishOptions(acknowledge=True)))
    sub_id = await w(victim.call("wamp.subscription.lookup", topic))
    got = [e["args"] for e in await w(victim.call("wamp.subscription.get_events", sub_id))]
    assert got == [["plain"]]


async def test_event_history_pagination(ac):
    topic = "com.example.hpage"
    pub = await ac("websocket", "msgpack")
    ids = [(await w(pub.publish(topic, i, options=PublishOptions(acknowledge=True)))).id for i in range(7)]
    sub_id = await w(pub.call("wamp.subscription.lookup", topic))
    pages, after = [], None
    for _ in range(4):
        kw = {"limit": 3} if after is None else {"limit": 3, "after_publication": after}
        page = await w(pub.call("wamp.subscription.get_events", sub_id, **kw))
        if not page:
            break
        pages.append([e["publication"] for e in page])
        after = page[-1]["publication"]
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    back = await w(pub.call("wamp.subscription.get_events", sub_id, reverse=True, limit=2,
                            before_publication=ids[4]))
    assert [e["publication"] for e in back] == [ids[3], ids[2]]
    rng = await w(pub.call("wamp.subscription.get_events", sub_id, from_publication=ids[1],
                           until_publication=ids[3]))
    assert [e["publication"] for e in rng] == ids[1:4]


# ===========================================================================
# Subscription revocation (pubsub_subscription_revocation.md)


async def test_subscription_revocation(ac, raw):
    admin = await ac("websocket", "json")
    topic = f"com.adv.subrevoke.{uid()}"
    sub = raw({"subscriber": ["subscription_revocation"]})
    silent_sub = raw({})  # did not announce subscription_revocation
    ids = {}
    for p in (sub, silent_sub):
        r = await asyncio.to_thread(p.request, [SUBSCRIBE, p.next_id(), {}, topic])
        assert r[0] == SUBSCRIBED, r
        ids[p] = r[2]
    assert ids[sub] == ids[silent_sub]
    sub_id = ids[sub]
    await w(admin.call("wamp.subscription.remove_subscriber", sub_id, sub.session_id, reason="no longer authorized"))
    m = await anxt(sub)
    assert m == [UNSUBSCRIBED, 0, {"subscription": sub_id, "reason": "no longer authorized"}], m
    await w(admin.call("wamp.subscription.remove_subscriber", sub_id, silent_sub.session_id))
    await asilent(silent_sub)  # spec: MUST NOT send UNSUBSCRIBED to a subscriber without the feature
    await w(admin.publish(topic, "after", options=PublishOptions(acknowledge=True)))
    await asilent(sub)
    await asilent(silent_sub)
    await expect_error(admin.call("wamp.subscription.get", sub_id), "wamp.error.no_such_subscription")
    # the revoked subscriber may subscribe again
    r = await asyncio.to_thread(sub.request, [SUBSCRIBE, sub.next_id(), {}, topic])
    assert r[0] == SUBSCRIBED
    await w(admin.publish(topic, "again", options=PublishOptions(acknowledge=True)))
    m = await anxt(sub)
    assert m[0] == EVENT and m[1] == r[2] and m[4] == ["again"], m
