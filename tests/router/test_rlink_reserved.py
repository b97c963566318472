"""``wampfabric.rlink.*`` belongs to router links (docs/clustering.md "Multi-hop"), in-process:
only legs publish there and only legs get what legs publish there (an ordinary session subscribed
to everything sees no event in transit), only legs register there, a leg may call another leg's
transit procedure (and only that), and the link state is read and written by legs only, newest
record per key, newer ones announced to legs only."""

from __future__ import annotations

import asyncio
import time

import pytest

from wampfabric.client import ApplicationError
from wampfabric.router.broker import RLINK_MARKER
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
REALM = {"name": "realm1", "roles": [{"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]}]}
TRANSIT = "wampfabric.rlink.transit.r2"
FF = [{"session": 1, "authid": "x", "authrole": "user"}]


@pytest.fixture
def router():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    return r


async def _leg(router, authid):
    s = await connect_local(router, "realm1", authid=authid)  # trusted: names the marker
    await s.subscribe(RLINK_MARKER, lambda *a, **k: None)
    return s


async def _user(router, authid):
    return await connect_local(router, "realm1", role="user", authid=authid)


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def _refused(awaitable, error):
    with pytest.raises(ApplicationError) as e:
        await awaitable
    assert e.value.error == error


async def test_transit_events_are_for_legs_only(router):
    leg1, leg2 = await _leg(router, "leg1"), await _leg(router, "leg2")
    user = await _user(router, "alice")
    got = {"leg": [], "all": [], "exact": []}
    await leg2.subscribe(TRANSIT, lambda *a, **kw: got["leg"].append((a, kw)))
    await user.subscribe("", lambda *a, details: details["topic"].startswith("wamp.") or got["all"].append(a),
                         {"match": "prefix"}, details=True)
    other = await _user(router, "bob")
    await other.subscribe(TRANSIT, lambda *a, **kw: got["exact"].append(a))

    await _refused(user.publish(TRANSIT, "x", options={"acknowledge": True}), "wamp.error.not_authorized")
    await leg1.publish_payload(TRANSIT, ["com.example.t", [1], {}], {"dest": ["r2"], "path": ["r0", "r1"]},
                               {"forward_for": FF, "acknowledge": True})
    await _settle()
    assert len(got["leg"]) == 1
    args, kwargs = got["leg"][0]
    assert args == ("com.example.t", [1], {}) and kwargs == {"dest": ["r2"], "path": ["r0", "r1"]}
    assert got["all"] == [] and got["exact"] == []
    # an ordinary topic from a leg still reaches everybody
    await leg1.publish_payload("com.example.t", [2], None, {"forward_for": FF, "acknowledge": True})
    await _settle()
    assert got["all"] == [(2,)]


async def test_transit_procedures(router):
    leg1, leg2 = await _leg(router, "leg1"), await _leg(router, "leg2")
    user = await _user(router, "alice")
    await _refused(user.register("wampfabric.rlink.call.r2", lambda: None), "wamp.error.not_authorized")
    await leg2.register("wampfabric.rlink.call.r2", lambda *a, **kw: ["passed on", list(a)])
    await leg2.register("com.example.proc", lambda: "here")
    # a leg calls a leg's transit procedure (the dealer lets it), not its ordinary one (one hop)
    assert await leg1.call_payload("wampfabric.rlink.call.r2", ["p", "r2", [], {}], None, {"forward_for": FF}) == \
        ["passed on", ["p", "r2", [], {}]]
    await _refused(leg1.call_payload("com.example.proc", [], None, {"forward_for": FF}), "wamp.error.no_such_procedure")
    assert await user.call("com.example.proc") == "here"


async def test_link_state_for_legs_only(router):
    leg1, leg2 = await _leg(router, "leg1"), await _leg(router, "leg2")
    user = await _user(router, "alice")
    heard = {"leg": [], "user": []}
    await leg2.subscribe("wampfabric.rlink.state", lambda records: heard["leg"].append(records))
    await user.subscribe("wampfabric", lambda *a: heard["user"].append(a), {"match": "prefix"})
    await _refused(user.call("wampfabric.rlink.state.get"), "wamp.error.not_authorized")
    await _refused(user.call("wampfabric.rlink.state.put", []), "wamp.error.not_authorized")
    state = await leg1.call("wampfabric.rlink.state.get")
    assert state == {"router": router.realms["realm1"].linkstate.id, "records": []}
    assert (await user.call("wampfabric.rlink.id"))["router"] == state["router"]

    link = {"key": "link:a:b", "seq": 5, "a": "a", "b": "b", "up": True}
    assert await leg1.call("wampfabric.rlink.state.put", [link]) == 1
    assert await leg1.call("wampfabric.rlink.state.put", [dict(link, seq=4, up=False)]) == 0  # older: kept out
    rec = {"key": "router:a", "seq": 1, "router": "a", "subs": [["com.example.t", "exact"]], "regs": []}
    assert await leg1.call("wampfabric.rlink.state.put", [rec]) == 1
    await _settle()
    assert heard["leg"] == [[link], [rec]] and heard["user"] == []
    assert sorted((await leg1.call("wampfabric.rlink.state.get"))["records"], key=lambda r: r["key"]) == [link, rec]
    for bad in ([{"key": "link:b:a", "seq": 1, "a": "b", "b": "a", "up": True}], [{"key": "x", "seq": 1}],
                [{"key": "link:a:c", "seq": 1, "a": "a", "b": "c"}], [{"key": "router:c", "seq": "1", "router": "c"}],
                "nope"):
        await _refused(leg1.call("wampfabric.rlink.state.put", bad), "wamp.error.invalid_argument")


async def test_a_links_own_record_goes_down_with_its_leg(router):
    """A link puts its own link record through its leg here (``own``); when that leg's session
    goes, the realm says the link is down itself and tells the other legs; a record some other
    link passed on (flooding) is not tied to the leg that put it."""
    me = router.realms["realm1"].linkstate.id
    leg, other, watcher = await _leg(router, "leg"), await _leg(router, "other"), await _leg(router, "watcher")
    heard = []
    await watcher.subscribe("wampfabric.rlink.state", lambda records: heard.append(records))
    a, b = sorted((me, "peer1"))
    mine = {"key": f"link:{a}:{b}", "seq": 10, "a": a, "b": b, "up": True}
    passed = {"key": "link:x:y", "seq": 10, "a": "x", "b": "y", "up": True}
    assert await leg.call("wampfabric.rlink.state.put", [mine], True) == 1
    assert await leg.call("wampfabric.rlink.state.put", [passed], True) == 1  # not this router's link
    await other.call("wampfabric.rlink.state.put", [], True)
    await leg.leave()
    await _settle()
    records = {r["key"]: r for r in (await other.call("wampfabric.rlink.state.get"))["records"]}
    assert records[mine["key"]]["up"] is False and records[mine["key"]]["seq"] > 10
    assert records["link:x:y"]["up"] is True
    assert heard[-1] == [records[mine["key"]]]
    # a later "up" of the same link (the link back) is newer and wins again
    up = dict(mine, seq=time.time_ns())
    assert await other.call("wampfabric.rlink.state.put", [up], True) == 1


async def test_a_forwarded_publication_is_delivered_once(router):
    """While the link graph changes one publication may come over two paths: legs mark forwarded
    publications with ``rlink_origin`` and the router delivers each once; from any other session
    the option means nothing."""
    leg1, leg2 = await _leg(router, "leg1"), await _leg(router, "leg2")
    user, sub = await _user(router, "alice"), await _user(router, "bob")
    got = []
    await sub.subscribe("com.example.t", lambda *a: got.append(a))
    for leg, origin in ((leg1, "r0:1"), (leg2, "r0:1"), (leg1, "r0:2"), (leg2, "r9:1")):
        await leg.publish_payload("com.example.t", [origin], None,
                                  {"forward_for": FF, "rlink_origin": origin, "acknowledge": True})
    for _ in range(2):
        await user.publish("com.example.t", "plain", options={"acknowledge": True, "rlink_origin": "r0:1"})
    await _settle()
    assert got == [("r0:1",), ("r0:2",), ("r9:1",), ("plain",), ("plain",)]
