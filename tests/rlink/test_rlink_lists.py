"""Publisher black/white listing across router links: a publication's ``exclude_authid``,
``exclude_authrole``, ``eligible_authid`` and ``eligible_authrole`` hold on every linked router;
its session-ID lists name sessions of the publisher's router (``eligible``: the event stays
there; ``exclude``: applies there only).  Both leg kinds are exercised: events published on A
leave through A's in-process leg, events published on B through the link's network session on B.

Real nodes (``wampfabric start``), autobahn-python clients, users with ticket authids."""

from __future__ import annotations

import asyncio

from autobahn.wamp.types import PublishOptions
from rlinknodes import ab_client, link_info, links_connected, make_nodes, wait_for

from support.autobahn_client import subscribe, w

TOPIC = "com.example.lists"
WHO = ("alice", "bob", "carol", "anon")  # alice, bob: role user; carol: role guest; anon: anonymous (user)


async def _mirrored(node, link_id, uris):
    m = await node.manage()
    try:
        async def ok():
            info = await link_info(m, link_id)
            return info["connected"] and all(u in info["here"]["subscriptions"] and u in info["there"]["subscriptions"]
                                             for u in uris)
        await wait_for(ok, 20, f"{link_id} mirrors {uris} both ways")
    finally:
        await m.leave()


async def _subscribers(node):
    """One subscriber per test user (and an anonymous one) on ``node``: name -> (session, events)."""
    out = {}
    for name in WHO:
        s = await ab_client(node, None if name == "anon" else name)
        ev, _ = await subscribe(s, TOPIC)
        out[name] = (s, ev)
    return out


def _got(subs, tag) -> set:
    return {name for name, (_, ev) in subs.items() if any(a and a[0] == tag for a in ev.args)}


async def _run_cases(pub, here, there, cases):
    """Publish each case from ``pub`` (on the router of ``here``), then a sentinel that everybody
    gets: the links forward in order, so once every subscriber has the sentinel, every earlier
    event that was going to arrive has arrived."""
    for tag, opts, _, _ in cases:
        await w(pub.publish(TOPIC, tag, options=PublishOptions(acknowledge=True, exclude_me=False, **opts)))
    await w(pub.publish(TOPIC, "sentinel", options=PublishOptions(acknowledge=True)))
    everyone = set(WHO)
    await wait_for(lambda: _got(here, "sentinel") == everyone and _got(there, "sentinel") == everyone, 10,
                   "the sentinel everywhere")
    await asyncio.sleep(0.2)
    for tag, _, want_here, want_there in cases:
        assert _got(here, tag) == want_here, f"{tag} on the publisher's router: {_got(here, tag)}"
        assert _got(there, tag) == want_there, f"{tag} on the linked router: {_got(there, tag)}"
    for subs in (here, there):
        for name, (_, ev) in subs.items():
            tags = [a[0] for a in ev.args]
            assert len(tags) == len(set(tags)), f"{name} got duplicates: {tags}"


def _cases(subs_here) -> list:
    """(tag, options, who gets it on the publisher's router, who on the linked one)."""
    everyone = set(WHO)
    alice_here = subs_here["alice"][0]._session_id
    bob_here = subs_here["bob"][0]._session_id
    return [
        ("plain", {}, everyone, everyone),
        ("x-authid", {"exclude_authid": ["alice"]}, everyone - {"alice"}, everyone - {"alice"}),
        ("x-authids", {"exclude_authid": ["alice", "bob"]}, {"carol", "anon"}, {"carol", "anon"}),
        ("x-authrole", {"exclude_authrole": ["guest"]}, everyone - {"carol"}, everyone - {"carol"}),
        ("e-authid", {"eligible_authid": ["alice", "carol"]}, {"alice", "carol"}, {"alice", "carol"}),
        ("e-authrole", {"eligible_authrole": ["guest"]}, {"carol"}, {"carol"}),
        ("mixed", {"eligible_authrole": ["user"], "exclude_authid": ["bob"]}, {"alice", "anon"}, {"alice", "anon"}),
        # session IDs name sessions of the publisher's router: eligible keeps the event there ...
        ("e-session", {"eligible": [bob_here]}, {"bob"}, set()),
        # ... exclude applies there only
        ("x-session", {"exclude": [alice_here]}, everyone - {"alice"}, everyone),
        ("x-session-authid", {"exclude": [alice_here], "exclude_authid": ["carol"]}, {"bob", "anon"},
         {"alice", "bob", "anon"}),
    ]


async def test_lists_hold_on_both_routers_both_ways(started):
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    subs_a, subs_b = await _subscribers(a), await _subscribers(b)
    await _mirrored(a, "to1", [TOPIC])
    # published on A: forwarded by A's in-process leg
    pub_a = await ab_client(a)
    await _run_cases(pub_a, subs_a, subs_b, _cases(subs_a))
    for subs in (subs_a, subs_b):
        for _, ev in subs.values():
            ev.items.clear()
    # published on B: forwarded by the link's network session on B
    pub_b = await ab_client(b)
    await _run_cases(pub_b, subs_b, subs_a, _cases(subs_b))


async def test_link_exclusions_add_to_the_publications_lists(started):
    """A link's own ``exclude_authid`` (config) and a publication's ``exclude_authrole`` both hold
    on the receiving router."""
    links = {0: [1]}
    a, b = started(make_nodes(2, links, link_extra={"exclude_authid": ["bob"]}))
    await links_connected([a, b], links)
    subs_a, subs_b = await _subscribers(a), await _subscribers(b)
    await _mirrored(a, "to1", [TOPIC])
    pub = await ab_client(a)
    everyone = set(WHO)
    cases = [("plain", {}, everyone, everyone - {"bob"}),
             ("x-authrole", {"exclude_authrole": ["guest"]}, everyone - {"carol"}, {"alice", "anon"}),
             ("x-authid", {"exclude_authid": ["alice"]}, everyone - {"alice"}, {"carol", "anon"})]
    for tag, opts, _, _ in cases:
        await w(pub.publish(TOPIC, tag, options=PublishOptions(acknowledge=True, **opts)))
    await w(pub.publish(TOPIC, "sentinel", options=PublishOptions(acknowledge=True, exclude_authid=["nobody"])))
    await wait_for(lambda: _got(subs_b, "sentinel") == everyone - {"bob"} and _got(subs_a, "sentinel") == everyone,
                   10, "the sentinel")
    await asyncio.sleep(0.2)
    for tag, _, want_a, want_b in cases:
        assert _got(subs_a, tag) == want_a, tag
        assert _got(subs_b, tag) == want_b, tag


async def test_publisher_lists_do_not_reach_ordinary_subscribers(started):
    """The lists a leg gets in its EVENT details (``rlink``) are for legs only: an ordinary
    subscriber sees none of them, on either router."""
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    sa, sb = await ab_client(a, "alice"), await ab_client(b, "alice")
    got_a, got_b = [], []
    # the wampfabric client hands the raw details dict over
    from wampfabric.client.connection import connect
    ca = await connect(a.url, "realm1")
    cb = await connect(b.url, "realm1")
    await ca.subscribe(TOPIC, lambda *x, details: got_a.append(details), details=True)
    await cb.subscribe(TOPIC, lambda *x, details: got_b.append(details), details=True)
    await _mirrored(a, "to1", [TOPIC])
    pub = await ab_client(a)
    await w(pub.publish(TOPIC, 1, options=PublishOptions(acknowledge=True, exclude_authid=["carol"], retain=True)))
    await wait_for(lambda: got_a and got_b, 10, "the event on both routers")
    await asyncio.sleep(0.2)
    assert len(got_a) == 1 and len(got_b) == 1
    for d in got_a + got_b:
        assert "rlink" not in d and "exclude_authid" not in d, d
    assert "forward_for" in got_b[0] and "forward_for" not in got_a[0]
    for s in (sa, sb):
        s.leave()
