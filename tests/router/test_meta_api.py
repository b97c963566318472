"""WAMP Advanced Profile: meta API, testaments, payload passthru mode and the
feature announcement in WELCOME, end to end.

Spec: ``shared/reference/wamp-spec/advanced/meta_api_*.md``,
``pubsub_testament.md``, ``payload_passthru_mode.md``, ``features.md``.
Clients: autobahn-python (asyncio) and the raw peers of ``wamp_raw``.

Runs on its own node (``anode``, ``support/advanced.py``), so session
counts and ``kill_all`` only see this module's sessions.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from autobahn.wamp.interfaces import IPayloadCodec
from autobahn.wamp.types import EncodedPayload, PublishOptions, RegisterOptions, SubscribeOptions

from support import wamp_raw
from support.advanced import anxt, nxt, raw_register
from support.autobahn_client import Events, expect_error, subscribe, uid, until, w
from wampfabric.protocol.codes import (
    ABORT, CALL, ERROR, EVENT, INVOCATION, PUBLISH, PUBLISHED, RESULT, SUBSCRIBE, SUBSCRIBED, YIELD,
)

# ===========================================================================
# Feature announcement (features.md and each feature's "Feature Announcement")

BROKER_FEATURES = {
    "publisher_identification", "publisher_exclusion", "subscriber_blackwhite_listing",
    "pattern_based_subscription", "payload_passthru_mode", "event_retention", "event_history",
    "subscription_revocation", "subscription_meta_api", "session_meta_api",
}
DEALER_FEATURES = {
    "caller_identification", "pattern_based_registration", "shared_registration", "progressive_call_results",
    "progressive_call_invocations", "call_timeout", "call_canceling", "payload_passthru_mode",
    "registration_revocation", "registration_meta_api", "session_meta_api", "testament_meta_api",
}


# The feature names the WAMP spec announces, as the spec writes them: each feature's section
# "Feature Announcement" in the Advanced Profile (the spec text's advanced/<file>.md, file named
# in the comment; https://wamp-proto.org/wamp_latest_ietf.html) spells
# ``roles.<role>.features.<name>|bool`` (some ``features.<name> = true``). Stated here rather than
# read from the spec text, so the test runs on a bare clone.
SPEC_FEATURE_NAMES = {
    "publisher_identification",       # pubsub_publisher_identification.md
    "publisher_exclusion",            # pubsub_publisher_exclusion.md
    "subscriber_blackwhite_listing",  # pubsub_subscriber_blackwhite_listing.md
    "pattern_based_subscription",     # pubsub_pattern_based_subscription.md
    "publication_trustlevels",        # pubsub_publication_trustlevels.md
    "event_retention",                # pubsub_event_retention.md
    "event_history",                  # pubsub_event_history.md
    "subscription_revocation",        # pubsub_subscription_revocation.md
    "testament_meta_api",             # pubsub_testament.md
    "caller_identification",          # rpc_caller_identification.md
    "pattern_based_registration",     # rpc_pattern_based_registration.md
    "shared_registration",            # rpc_shared_registration.md
    "sharded_registration",           # rpc_sharded_registration.md
    "progressive_call_results",       # rpc_progressive_call_results.md
    "progressive_call_invocations",   # rpc_progressive_call_invocations.md
    "call_timeout",                   # rpc_call_timeout.md
    "call_canceling",                 # rpc_call_canceling.md, rpc_call_timeout.md
    "call_trustlevels",               # rpc_call_trustlevels.md
    "call_reroute",                   # rpc_call_rerouting.md
    "registration_revocation",        # rpc_registration_revocation.md
    "payload_passthru_mode",          # payload_passthru_mode.md
    "session_meta_api",               # meta_api_sessions.md
    "subscription_meta_api",          # meta_api_subscriptions.md
    "registration_meta_api",          # meta_api_registrations.md
}


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack"),
                                                  ("websocket", "cbor")])
def test_welcome_announces_spec_feature_names(raw, transport, serializer):
    p = raw({}, transport=transport, serializer=serializer)
    roles = p.welcome[2]["roles"]
    assert set(roles) == {"broker", "dealer"}
    broker, dealer = roles["broker"]["features"], roles["dealer"]["features"]
    assert broker == dict.fromkeys(BROKER_FEATURES, True)
    assert dealer == dict.fromkeys(DEALER_FEATURES, True)
    assert BROKER_FEATURES | DEALER_FEATURES <= SPEC_FEATURE_NAMES, (
        (BROKER_FEATURES | DEALER_FEATURES) - SPEC_FEATURE_NAMES)


# ===========================================================================
# Session meta API (meta_api_sessions.md)


async def test_session_count_list_get(ac):
    admin = await ac("websocket", "json")
    alice = await ac("websocket", "msgpack", identity="alice")
    bob = await ac("rawsocket-tcp", "cbor")  # anonymous
    carol = await ac("websocket", "cbor", identity="carol")
    mine = {admin.session_id, alice.session_id, bob.session_id, carol.session_id}
    ids = await w(admin.call("wamp.session.list"))
    assert mine <= set(ids)
    assert await w(admin.call("wamp.session.count")) == len(ids)
    roles = {i: (await w(admin.call("wamp.session.get", i)))["authrole"] for i in ids}
    filtered = await w(admin.call("wamp.session.list", ["member", "guest"]))
    assert sorted(filtered) == sorted(i for i, r in roles.items() if r in ("member", "guest"))
    assert {alice.session_id, carol.session_id} <= set(filtered) and bob.session_id not in filtered
    guests = [i for i, r in roles.items() if r == "guest"]
    assert await w(admin.call("wamp.session.count", ["guest"])) == len(guests) >= 1
    assert await w(admin.call("wamp.session.count", ["no-such-role"])) == 0
    assert await w(admin.call("wamp.session.list", ["no-such-role"])) == []
    info = await w(admin.call("wamp.session.get", alice.session_id))
    assert info["session"] == alice.session_id and info["authid"] == "alice" and info["authrole"] == "member"
    assert info["authmethod"] == "anonymous" and isinstance(info["authprovider"], str)
    assert isinstance(info.get("transport", {}), dict)
    assert (await w(bob.call("wamp.session.get", bob.session_id)))["authrole"] == "anonymous"
    await expect_error(admin.call("wamp.session.get", 4242424242), "wamp.error.no_such_session")


async def test_session_on_join_on_leave(ac, raw):
    obs = await ac("websocket", "json")
    joins, _ = await subscribe(obs, "wamp.session.on_join")
    leaves, _ = await subscribe(obs, "wamp.session.on_leave")
    s = await ac("websocket", "msgpack", identity="alice")
    sid = s.session_id
    (args, _, _), = [e for e in await until(lambda: [e for e in joins.items if e[0][0]["session"] == sid])]
    d = args[0]
    assert d["authid"] == "alice" and d["authrole"] == "member" and d["authmethod"] == "anonymous"
    assert "authprovider" in d and isinstance(d.get("transport", {}), dict)
    await s.shutdown()  # GOODBYE
    ev = await until(lambda: [e for e in leaves.items if e[0][0] == sid], what="on_leave after GOODBYE")
    assert ev[0][0] == [sid, "alice", "member"]
    # connection dropped without GOODBYE
    p = raw({}, identity="carol")
    await until(lambda: [e for e in joins.items if e[0][0]["session"] == p.session_id])
    wamp_raw.abort_socket(p.ws.socket)
    ev = await until(lambda: [e for e in leaves.items if e[0][0] == p.session_id], what="on_leave after drop")
    assert ev[0][0] == [p.session_id, "carol", "guest"]


async def test_meta_events_reach_pattern_subscriptions_made_between_joins(ac):
    """The broker caches which subscriptions match each meta topic: a pattern subscription
    made after earlier joins (and after unrelated subscriptions) must still get the events,
    and none after it is gone."""
    first = await ac("websocket", "msgpack", identity="alice")
    await w(first.subscribe(lambda *a: None, f"com.adv.unrelated.{uid()}"))  # meta events with no listener
    obs = await ac("websocket", "json")

    def joined(events, sid):
        return [e for e in events.items if e[0][0]["session"] == sid]

    by_wildcard, _ = await subscribe(obs, "..on_join", match="wildcard")  # not under "wamp."
    s1 = await ac("rawsocket-tcp", "cbor", identity="alice")
    await until(lambda: joined(by_wildcard, s1.session_id), what="on_join via a wildcard subscription")
    by_prefix, psub = await subscribe(obs, "wamp.session.on_j", match="prefix")
    s2 = await ac("websocket", "cbor", identity="alice")
    await until(lambda: joined(by_prefix, s2.session_id), what="on_join via a prefix subscription")
    await w(psub.unsubscribe())
    s3 = await ac("websocket", "msgpack", identity="alice")
    await until(lambda: joined(by_wildcard, s3.session_id))
    await asyncio.sleep(0.1)
    assert not joined(by_prefix, s3.session_id)  # unsubscribed: nothing more arrives there


async def test_session_kill(ac):
    admin = await ac("websocket", "json")
    victim = await ac("rawsocket-tcp", "msgpack")
    other = await ac("websocket", "cbor")
    assert await w(admin.call("wamp.session.kill", victim.session_id, reason="com.adv.kicked",
                              message="go away")) is None
    closed = await w(victim.left)
    assert closed.reason == "com.adv.kicked" and closed.message == "go away"
    victim2 = await ac("websocket", "msgpack")
    await w(admin.call("wamp.session.kill", victim2.session_id))
    closed = await w(victim2.left)
    assert closed.reason == "wamp.close.killed" and not closed.message
    assert other.is_attached() and admin.is_attached()
    await expect_error(admin.call("wamp.session.kill", admin.session_id), "wamp.error.no_such_session")
    await expect_error(admin.call("wamp.session.kill", victim.session_id), "wamp.error.no_such_session")
    await expect_error(admin.call("wamp.session.kill", other.session_id, reason="not a uri!"),
                       "wamp.error.invalid_uri")
    assert other.is_attached()


async def test_session_kill_by_authid(ac):
    admin = await ac("websocket", "json", identity="alice")
    v1 = await ac("websocket", "msgpack", identity="alice2")  # authid alice too
    v2 = await ac("websocket", "cbor", identity="alice")
    bob = await ac("websocket", "json", identity="bob")
    expected = sorted([v1.session_id, v2.session_id])  # autobahn forgets its session id once killed
    killed = await w(admin.call("wamp.session.kill_by_authid", "alice", reason="com.adv.bye", message="m"))
    assert sorted(killed) == expected  # the caller is excluded
    for v in (v1, v2):
        closed = await w(v.left)
        assert closed.reason == "com.adv.bye" and closed.message == "m"
    assert admin.is_attached() and bob.is_attached()
    assert await w(admin.call("wamp.session.kill_by_authid", "nobody")) == []
    await expect_error(admin.call("wamp.session.kill_by_authid", "bob", reason="not a uri!"), "wamp.error.invalid_uri")
    assert bob.is_attached()


@pytest.mark.parametrize("proc", ["kill", "kill_by_authid", "kill_by_authrole", "kill_all"])
async def test_session_kill_empty_reason_is_invalid_uri(ac, proc):
    admin = await ac("websocket", "json", identity="alice")
    carol = await ac("websocket", "msgpack", identity="carol")
    arg = {"kill": [carol.session_id], "kill_by_authid": ["carol"], "kill_by_authrole": ["guest"], "kill_all": []}
    try:
        await expect_error(admin.call(f"wamp.session.{proc}", *arg[proc], reason=""), "wamp.error.invalid_uri")
    finally:
        await asyncio.sleep(0.05)
    assert carol.is_attached()


async def test_session_kill_by_authrole(ac):
    admin = await ac("websocket", "json", identity="alice")  # member
    bob = await ac("websocket", "msgpack", identity="bob")  # member
    alice2 = await ac("websocket", "cbor", identity="alice2")  # member
    carol = await ac("websocket", "json", identity="carol")  # guest
    n = await w(admin.call("wamp.session.kill_by_authrole", "member"))
    assert n == 2
    for v in (bob, alice2):
        closed = await w(v.left)
        assert closed.reason == "wamp.close.killed"
    assert admin.is_attached() and carol.is_attached()


async def test_session_kill_all(ac, raw):
    admin = await ac("websocket", "json")
    victims = [await ac("websocket", "msgpack", identity="carol"), await ac("rawsocket-tcp", "cbor")]
    rawv = raw({})
    before = await w(admin.call("wamp.session.count"))
    n = await w(admin.call("wamp.session.kill_all", reason="wamp.close.system_shutdown", message="maintenance"))
    assert n == before - 1 >= 3
    for v in victims:
        closed = await w(v.left)
        assert closed.reason == "wamp.close.system_shutdown" and closed.message == "maintenance"
    m = await anxt(rawv)
    assert m == [wamp_raw.GOODBYE, {"message": "maintenance"}, "wamp.close.system_shutdown"], m
    assert admin.is_attached()
    assert await w(admin.call("wamp.session.list")) == [admin.session_id]


# ===========================================================================
# Subscription meta API (meta_api_subscriptions.md)

SUB_EVENTS = ("on_create", "on_subscribe", "on_unsubscribe", "on_delete")
REG_EVENTS = ("on_create", "on_register", "on_unregister", "on_delete")


async def _meta_log(session, kind: str, names) -> list:
    log: list = []
    for name in names:
        await w(session.subscribe(lambda *a, name=name: log.append((name, list(a))), f"wamp.{kind}.{name}"))
    return log


async def test_subscription_meta_events(ac):
    obs = await ac("websocket", "json")
    log = await _meta_log(obs, "subscription", SUB_EVENTS)
    a = await ac("rawsocket-tcp", "msgpack")
    b = await ac("websocket", "cbor")
    topic = f"com.adv.submeta.{uid()}"
    a_id, b_id = a.session_id, b.session_id
    sa = await w(a.subscribe(lambda *x: None, topic))
    sb = await w(b.subscribe(lambda *x: None, topic))
    assert sa.id == sb.id
    await w(sa.unsubscribe())
    await b.shutdown()  # leaving removes b from the subscription
    mine = lambda: [e for e in log if (e[1][1]["id"] if e[0] == "on_create" else e[1][1]) == sa.id]  # noqa: E731
    events = await until(lambda: len(mine()) >= 5 and mine())
    await asyncio.sleep(0.05)
    events = mine()
    assert [name for name, _ in events] == ["on_create", "on_subscribe", "on_subscribe", "on_unsubscribe",
                                            "on_unsubscribe", "on_delete"][:len(events)] and len(events) == 6, events
    (_, (s0, details)), *rest = events
    assert s0 == a_id
    assert details["uri"] == topic and details["match"] == "exact" and details["id"] == sa.id
    assert isinstance(details["created"], str) and "T" in details["created"]
    assert [args for _, args in rest] == [[a_id, sa.id], [b_id, sa.id], [a_id, sa.id], [b_id, sa.id], [b_id, sa.id]]


async def test_subscription_meta_procedures(ac):
    s = await ac("websocket", "msgpack")
    t = await ac("rawsocket-tcp", "json")
    base = f"com.adv.subproc{uid()}"
    exact = await w(s.subscribe(lambda *a: None, f"{base}.a.b"))
    await w(t.subscribe(lambda *a: None, f"{base}.a.b"))
    prefix = await w(s.subscribe(lambda *a: None, f"{base}.a", options=SubscribeOptions(match="prefix")))
    wild = await w(t.subscribe(lambda *a: None, f"{base}..b", options=SubscribeOptions(match="wildcard")))
    lists = await w(s.call("wamp.subscription.list"))
    assert set(lists) == {"exact", "prefix", "wildcard"}
    assert exact.id in lists["exact"] and prefix.id in lists["prefix"] and wild.id in lists["wildcard"]
    assert await w(s.call("wamp.subscription.lookup", f"{base}.a.b")) == exact.id
    assert await w(s.call("wamp.subscription.lookup", f"{base}.a", {"match": "prefix"})) == prefix.id
    assert await w(s.call("wamp.subscription.lookup", f"{base}..b", {"match": "wildcard"})) == wild.id
    assert await w(s.call("wamp.subscription.lookup", f"{base}.a")) is None  # no exact subscription on it
    assert sorted(await w(s.call("wamp.subscription.match", f"{base}.a.b"))) == sorted([exact.id, prefix.id, wild.id])
    assert sorted(await w(s.call("wamp.subscription.match", f"{base}.x.b"))) == [wild.id]
    assert await w(s.call("wamp.subscription.match", f"{base}.nothing")) is None
    d = await w(s.call("wamp.subscription.get", prefix.id))
    assert {k: d[k] for k in ("id", "uri", "match")} == {"id": prefix.id, "uri": f"{base}.a", "match": "prefix"}
    assert isinstance(d["created"], str)
    subscribers = await w(s.call("wamp.subscription.list_subscribers", exact.id))
    assert sorted(subscribers) == sorted([s.session_id, t.session_id])
    assert await w(s.call("wamp.subscription.count_subscribers", exact.id)) == 2
    assert await w(s.call("wamp.subscription.count_subscribers", wild.id)) == 1
    for proc in ("get", "list_subscribers", "count_subscribers"):
        await expect_error(s.call(f"wamp.subscription.{proc}", 4242424242), "wamp.error.no_such_subscription")
    await w(prefix.unsubscribe())
    await expect_error(s.call("wamp.subscription.get", prefix.id), "wamp.error.no_such_subscription")


async def test_subscription_remove_subscriber_meta_events(ac, raw):
    obs = await ac("websocket", "json")
    log = await _meta_log(obs, "subscription", ("on_unsubscribe", "on_delete"))
    p = raw({})
    topic = f"com.adv.subrm.{uid()}"
    r = await asyncio.to_thread(p.request, [SUBSCRIBE, p.next_id(), {}, topic])
    sub_id = r[2]
    await w(obs.call("wamp.subscription.remove_subscriber", sub_id, p.session_id))
    await until(lambda: len([e for e in log if e[1][1] == sub_id]) == 2)
    assert [e for e in log if e[1][1] == sub_id] == [("on_unsubscribe", [p.session_id, sub_id]),
                                                     ("on_delete", [p.session_id, sub_id])]
    await expect_error(obs.call("wamp.subscription.remove_subscriber", sub_id, p.session_id),
                       "wamp.error.no_such_subscription")


async def test_subscription_meta_events_for_history_topic(ac):
    obs = await ac("websocket", "json")
    log = await _meta_log(obs, "subscription", SUB_EVENTS)
    s = await ac("rawsocket-tcp", "msgpack")
    sid = s.session_id
    sub = await w(s.subscribe(lambda *a: None, "com.example.hmeta"))
    await w(sub.unsubscribe())
    mine = lambda: [e for e in log if e[1][0] == sid]  # noqa: E731
    await until(lambda: len(mine()) >= 2)
    await asyncio.sleep(0.05)
    assert [n for n, _ in mine()] == ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"], mine()


# ===========================================================================
# Registration meta API (meta_api_registrations.md)


async def test_registration_meta_events(ac):
    obs = await ac("websocket", "json")
    log = await _meta_log(obs, "registration", REG_EVENTS)
    a = await ac("rawsocket-tcp", "msgpack")
    b = await ac("websocket", "cbor")
    proc = f"com.adv.regmeta.{uid()}"
    a_id, b_id = a.session_id, b.session_id
    ra = await w(a.register(lambda: "a", proc, options=RegisterOptions(invoke="roundrobin")))
    rb = await w(b.register(lambda: "b", proc, options=RegisterOptions(invoke="roundrobin")))
    assert ra.id == rb.id
    await w(ra.unregister())
    await b.shutdown()
    mine = lambda: [e for e in log if (e[1][1]["id"] if e[0] == "on_create" else e[1][1]) == ra.id]  # noqa: E731
    await until(lambda: len(mine()) >= 6)
    events = mine()
    assert [n for n, _ in events] == ["on_create", "on_register", "on_register", "on_unregister", "on_unregister",
                                      "on_delete"], events
    s0, details = events[0][1]
    assert s0 == a_id
    assert {k: details[k] for k in ("id", "uri", "match", "invoke")} == {
        "id": ra.id, "uri": proc, "match": "exact", "invoke": "roundrobin"}
    assert isinstance(details["created"], str)
    assert [args for _, args in events[1:]] == [[a_id, ra.id], [b_id, ra.id], [a_id, ra.id], [b_id, ra.id],
                                                [b_id, ra.id]]


async def test_registration_meta_procedures(ac, raw):
    c = await ac("websocket", "msgpack")
    c2 = await ac("rawsocket-tcp", "json")
    base = f"com.adv.regproc{uid()}"
    exact = await w(c.register(lambda: 1, f"{base}.a.b", options=RegisterOptions(invoke="first")))
    await w(c2.register(lambda: 2, f"{base}.a.b", options=RegisterOptions(invoke="first")))
    prefix = await w(c.register(lambda: 3, f"{base}.a", options=RegisterOptions(match="prefix")))
    wild = await w(c2.register(lambda: 4, f"{base}..b", options=RegisterOptions(match="wildcard")))
    lists = await w(c.call("wamp.registration.list"))
    assert set(lists) == {"exact", "prefix", "wildcard"}
    assert exact.id in lists["exact"] and prefix.id in lists["prefix"] and wild.id in lists["wildcard"]
    assert await w(c.call("wamp.registration.lookup", f"{base}.a.b")) == exact.id
    assert await w(c.call("wamp.registration.lookup", f"{base}.a", {"match": "prefix"})) == prefix.id
    assert await w(c.call("wamp.registration.lookup", f"{base}..b", {"match": "wildcard"})) == wild.id
    assert await w(c.call("wamp.registration.lookup", f"{base}.zz")) is None
    # match: the registration a call would be routed to (exact > longest prefix > wildcard)
    assert await w(c.call("wamp.registration.match", f"{base}.a.b")) == exact.id
    assert await w(c.call("wamp.registration.match", f"{base}.a.c")) == prefix.id
    assert await w(c.call("wamp.registration.match", f"{base}.x.b")) == wild.id
    assert await w(c.call("wamp.registration.match", f"{base}.x.c")) is None
    d = await w(c.call("wamp.registration.get", exact.id))
    assert {k: d[k] for k in ("id", "uri", "match", "invoke")} == {
        "id": exact.id, "uri": f"{base}.a.b", "match": "exact", "invoke": "first"}
    assert sorted(await w(c.call("wamp.registration.list_callees", exact.id))) == sorted([c.session_id, c2.session_id])
    assert await w(c.call("wamp.registration.count_callees", exact.id)) == 2
    assert await w(c.call("wamp.registration.count_callees", prefix.id)) == 1
    for proc in ("get", "list_callees", "count_callees"):
        await expect_error(c.call(f"wamp.registration.{proc}", 4242424242), "wamp.error.no_such_registration")
    # remove_callee: events, and the registration goes once its last callee is removed
    obs_log = await _meta_log(c2, "registration", ("on_unregister", "on_delete"))
    await w(c2.call("wamp.registration.remove_callee", prefix.id, c.session_id))
    await until(lambda: len([e for e in obs_log if e[1][1] == prefix.id]) == 2)
    assert [e for e in obs_log if e[1][1] == prefix.id] == [("on_unregister", [c.session_id, prefix.id]),
                                                            ("on_delete", [c.session_id, prefix.id])]
    await expect_error(c.call("wamp.registration.get", prefix.id), "wamp.error.no_such_registration")
    await expect_error(c2.call(f"{base}.a.zz"), "wamp.error.no_such_procedure")


# ===========================================================================
# Testaments (pubsub_testament.md)


async def _testament_observer(ac, topic):
    obs = await ac("websocket", "json")
    ev, _ = await subscribe(obs, topic)
    leaves, _ = await subscribe(obs, "wamp.session.on_leave")
    return obs, ev, leaves


async def _after_leave(obs, leaves, ev, topic, session_id):
    """Wait until ``session_id`` left, then until a sentinel published after that arrived."""
    await until(lambda: [e for e in leaves.items if e[0][0] == session_id], what="on_leave")
    # the observer publishes the sentinel to itself
    await w(obs.publish(topic, "sentinel", options=PublishOptions(acknowledge=True, exclude_me=False)))
    await until(lambda: ev.items and ev.items[-1][0] == ["sentinel"], what="sentinel")
    return [(a, kw) for a, kw, _ in ev.items[:-1]]


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket-tcp", "msgpack")])
async def test_testaments_published_on_goodbye(ac, transport, serializer):
    topic = f"com.adv.testament.{uid()}"
    obs, ev, leaves = await _testament_observer(ac, topic)
    s = await ac(transport, serializer)
    assert await w(s.call("wamp.session.add_testament", topic, ["destroyed-1"], {"k": 1})) is None
    await w(s.call("wamp.session.add_testament", topic, ["detached-1"], {}, scope="detached"))
    await w(s.call("wamp.session.add_testament", topic, ["destroyed-2"], scope="destroyed"))
    await w(s.call("wamp.session.add_testament", topic, ["detached-2"], scope="detached"))
    sid = s.session_id
    await s.shutdown()
    got = await _after_leave(obs, leaves, ev, topic, sid)
    # without session resumption: the detached scope first, each scope in the order added
    assert got == [(["detached-1"], {}), (["detached-2"], {}), (["destroyed-1"], {"k": 1}), (["destroyed-2"], {})]


async def test_testament_published_when_connection_drops(ac, raw):
    topic = f"com.adv.testament.drop.{uid()}"
    obs, ev, leaves = await _testament_observer(ac, topic)
    p = raw({}, transport="rawsocket", serializer="cbor")
    r = await asyncio.to_thread(p.request, [CALL, p.next_id(), {}, "wamp.session.add_testament",
                                            [topic, ["lost"], {"why": "tcp"}]])
    assert r[0] == RESULT, r
    wamp_raw.abort_socket(p.sock)  # TCP RST, no GOODBYE
    got = await _after_leave(obs, leaves, ev, topic, p.session_id)
    assert got == [(["lost"], {"why": "tcp"})]
    # autobahn: transport closed without GOODBYE
    s = await ac("websocket", "msgpack")
    await w(s.call("wamp.session.add_testament", topic, ["lost-ab"], {}, scope="detached"))
    sid = s.session_id
    ev.items.clear()
    s._transport.transport.abort()  # the TCP connection drops
    got = await _after_leave(obs, leaves, ev, topic, sid)
    assert got == [(["lost-ab"], {})]


async def test_flush_testaments(ac):
    topic = f"com.adv.testament.flush.{uid()}"
    obs, ev, leaves = await _testament_observer(ac, topic)
    s = await ac("websocket", "cbor")
    for scope in ("detached", "destroyed"):
        await w(s.call("wamp.session.add_testament", topic, [scope], scope=scope))
    await w(s.call("wamp.session.flush_testaments", scope="detached"))
    await w(s.call("wamp.session.add_testament", topic, ["destroyed-again"]))
    sid = s.session_id
    await s.shutdown()
    assert await _after_leave(obs, leaves, ev, topic, sid) == [(["destroyed"], {}), (["destroyed-again"], {})]
    # flush without a scope: the default scope is "destroyed"
    ev.items.clear()
    s = await ac("websocket", "json")
    await w(s.call("wamp.session.add_testament", topic, ["d"]))
    await w(s.call("wamp.session.add_testament", topic, ["det"], scope="detached"))
    await w(s.call("wamp.session.flush_testaments"))
    sid = s.session_id
    await s.shutdown()
    assert await _after_leave(obs, leaves, ev, topic, sid) == [(["det"], {})]


async def test_testament_publish_options_and_kill(ac):
    topic = f"com.adv.testament.opts.{uid()}"
    alice = await ac("websocket", "msgpack", identity="alice")
    carol = await ac("websocket", "msgpack", identity="carol")
    ev_alice, _ = await subscribe(alice, topic)
    ev_carol, _ = await subscribe(carol, topic)
    s = await ac("rawsocket-tcp", "cbor")
    await w(s.call("wamp.session.add_testament", topic, ["members only"], {},
                   publish_options={"eligible_authrole": ["member"]}))
    await w(s.call("wamp.session.add_testament", topic, ["all"]))
    await expect_error(s.call("wamp.session.add_testament", topic, [], scope="forever"), "wamp.error.invalid_argument")
    await w(alice.call("wamp.session.kill", s.session_id))  # killed sessions leave their testaments too
    await ev_alice.wait(2)
    await ev_carol.wait(1)
    await asyncio.sleep(0.05)
    assert ev_alice.args == [["members only"], ["all"]]
    assert ev_carol.args == [["all"]]


# ===========================================================================
# Payload passthru mode (payload_passthru_mode.md)

PPT_OPTS = {"ppt_scheme": "x_my_ppt", "ppt_serializer": "custom", "ppt_cipher": "custom", "ppt_keyid": "key-1"}
PPT_ALL = {r: ["payload_passthru_mode"] for r in ("caller", "callee", "publisher", "subscriber")}
BLOB = bytes(range(256)) + b"\x00\xff"


def _ppt_peers(raw, caller_ser="msgpack", callee_ser="msgpack"):
    caller = raw(PPT_ALL, transport="websocket" if caller_ser == "json" else "rawsocket", serializer=caller_ser)
    callee = raw(PPT_ALL, transport="websocket" if callee_ser == "json" else "rawsocket", serializer=callee_ser)
    return caller, callee


def _blob(serializer, b=BLOB):
    return "\x00" + base64.b64encode(b).decode() if serializer == "json" else b


def test_ppt_payload_forwarded_untouched_bare_bytes(raw):
    """Payload, ppt_* attributes and the binary reach the other side byte for byte (any layout)."""
    caller, callee = _ppt_peers(raw)
    proc = f"com.adv.ppt.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, PPT_OPTS, proc, [BLOB]])
    inv = nxt(callee)
    assert inv[0] == INVOCATION and {k: inv[3].get(k) for k in PPT_OPTS} == PPT_OPTS, inv
    payload = inv[4][0] if isinstance(inv[4], list) else inv[4]
    assert payload == BLOB and len(inv) == 5
    callee.send([YIELD, inv[1], PPT_OPTS, [BLOB[::-1]]])
    res = nxt(caller)
    assert res[:2] == [RESULT, req] and {k: res[2].get(k) for k in PPT_OPTS} == PPT_OPTS, res
    assert (res[3][0] if isinstance(res[3], list) else res[3]) == BLOB[::-1]


@pytest.mark.parametrize("caller_ser,callee_ser", [("msgpack", "msgpack"), ("json", "cbor")])
def test_ppt_spec_layout_rpc(raw, caller_ser, callee_ser):
    caller, callee = _ppt_peers(raw, caller_ser, callee_ser)
    proc = f"com.adv.ppt.layout.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, PPT_OPTS, proc, [_blob(caller_ser)]])
    inv = nxt(callee)
    assert {k: inv[3].get(k) for k in PPT_OPTS} == PPT_OPTS, inv
    assert inv[4] == [_blob(callee_ser)] and len(inv) == 5, inv
    callee.send([YIELD, inv[1], PPT_OPTS, [_blob(callee_ser, b"result")]])
    res = nxt(caller)
    assert res == [RESULT, req, PPT_OPTS, [_blob(caller_ser, b"result")]], res
    # an application error with a passthru payload
    req = caller.next_id()
    caller.send([CALL, req, PPT_OPTS, proc, [_blob(caller_ser)]])
    inv = nxt(callee)
    callee.send([ERROR, INVOCATION, inv[1], PPT_OPTS, "com.myapp.error", [_blob(callee_ser, b"err")]])
    err = nxt(caller)
    assert err == [ERROR, CALL, req, PPT_OPTS, "com.myapp.error", [_blob(caller_ser, b"err")]], err


def test_ppt_spec_layout_pubsub(raw):
    sub = raw(PPT_ALL, serializer="cbor")
    topic = f"com.adv.ppt.topic.{uid()}"
    r = sub.request([SUBSCRIBE, sub.next_id(), {}, topic])
    assert r[0] == SUBSCRIBED
    pub = raw(PPT_ALL, serializer="msgpack")
    r = pub.request([PUBLISH, pub.next_id(), {"acknowledge": True, **PPT_OPTS}, topic, [BLOB]])
    assert r[0] == PUBLISHED, r
    ev = nxt(sub)
    assert ev[0] == EVENT and ev[3] == PPT_OPTS and ev[4:] == [[BLOB]], ev


def test_ppt_event_payload_untouched(raw):
    sub = raw(PPT_ALL, serializer="cbor")
    topic = f"com.adv.ppt.topic2.{uid()}"
    sub.request([SUBSCRIBE, sub.next_id(), {}, topic])
    pub = raw(PPT_ALL, serializer="msgpack")
    r = pub.request([PUBLISH, pub.next_id(), {"acknowledge": True, **PPT_OPTS}, topic, [BLOB]])
    ev = nxt(sub)
    assert ev[0] == EVENT and ev[2] == r[2] and ev[3] == PPT_OPTS, ev
    assert (ev[4][0] if isinstance(ev[4], list) else ev[4]) == BLOB


def test_ppt_callee_without_feature_gets_feature_not_supported(raw):
    callee_no = raw({})
    proc = f"com.adv.ppt.nofeat.{uid()}"
    raw_register(callee_no, proc)
    caller = raw(PPT_ALL)
    caller.send([CALL, caller.next_id(), PPT_OPTS, proc, [BLOB]])
    try:
        m = nxt(caller, 1.0)
    except TimeoutError:
        m = ["nothing within 1 s; the callee got", callee_no.recv(1.0)]
    assert m[0] == ERROR and m[4] == "wamp.error.feature_not_supported", m


@pytest.mark.parametrize("kind", ["call", "publish"])
def test_ppt_from_peer_without_feature_is_protocol_violation(raw, kind):
    callee = raw(PPT_ALL)
    proc = f"com.adv.ppt.violation.{uid()}"
    raw_register(callee, proc)
    stranger = raw({})
    if kind == "call":
        stranger.send([CALL, stranger.next_id(), PPT_OPTS, proc, [BLOB]])
    else:
        stranger.send([PUBLISH, stranger.next_id(), {"acknowledge": True, **PPT_OPTS}, proc, [BLOB]])
    try:
        msgs = stranger.recv_until_closed(1.0)
    except TimeoutError as e:
        msgs = [str(e)]
    assert msgs and msgs[-1][0] == ABORT and msgs[-1][2] == "wamp.error.protocol_violation", msgs


class _JsonCodec(IPayloadCodec):
    """An autobahn payload codec (payload transparency, enc_algo x_json): args/kwargs as a JSON blob."""

    def encode(self, is_originating, uri, args=None, kwargs=None):
        blob = json.dumps({"uri": uri, "args": list(args or []), "kwargs": kwargs or {}}).encode()
        return EncodedPayload(blob, "x_json", "json")

    def decode(self, is_originating, uri, encoded_payload):
        d = json.loads(encoded_payload.payload)
        return uri, d["args"], d["kwargs"]


async def test_ppt_autobahn_payload_codec(ac):
    callee = await ac("rawsocket-tcp", "msgpack")
    caller = await ac("websocket", "cbor")
    for s in (callee, caller):
        s.set_payload_codec(_JsonCodec())
    proc = f"com.adv.ppt.ab.{uid()}"
    await w(callee.register(lambda *a, **kw: [a, kw], proc))
    assert await w(caller.call(proc, 1, "two", x=3), timeout=3) == [[1, "two"], {"x": 3}]
    topic = f"com.adv.ppt.ab.topic.{uid()}"
    ev = Events()
    await w(callee.subscribe(ev, topic))
    await w(caller.publish(topic, "e2e", options=PublishOptions(acknowledge=True)))
    await ev.wait(1, timeout=3)
    assert ev.args == [["e2e"]]
