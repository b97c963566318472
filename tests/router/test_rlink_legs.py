"""What the broker and dealer do for router-to-router link legs (rlink/, docs/clustering.md),
in-process: a session becomes a leg by subscribing to the marker topic; only legs may send
``forward_for``; legs, and only legs, get a publication's authid/authrole lists and retain flag in
their EVENT details (none with an ``eligible`` session list, none when a session list excludes
the leg); a call from a leg never goes to another leg of a shared registration."""

from __future__ import annotations

import asyncio

import pytest

from wampfabric.client import ApplicationError
from wampfabric.router.broker import RLINK_MARKER
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

REALM = {"name": "realm1", "roles": []}
TOPIC = "com.example.t"


@pytest.fixture
def router():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    return r


async def _session(router, authid, leg=False):
    s = await connect_local(router, "realm1", authid=authid)
    if leg:
        await s.subscribe(RLINK_MARKER, lambda *a, **k: None)
    return s


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_leg_flag_lists_and_retain(router):
    leg = await _session(router, "leg", leg=True)
    plain = await _session(router, "plain")
    pub = await _session(router, "pub")
    assert leg.transport.router_session.rlink and not plain.transport.router_session.rlink
    got = {"leg": [], "plain": []}
    await leg.subscribe(TOPIC, lambda *a, details: got["leg"].append((a, details)), details=True)
    await plain.subscribe(TOPIC, lambda *a, details: got["plain"].append((a, details)), details=True)
    cases = [
        ({}, None),
        ({"exclude_authid": ["x"], "eligible_authrole": ["user"]}, {"exclude_authid": ["x"], "eligible_authrole": ["user"]}),
        ({"retain": True}, {"retain": True}),
        ({"eligible_authid": ["plain", "leg"], "retain": True}, {"eligible_authid": ["plain", "leg"], "retain": True}),
        ({"exclude": [plain.session_id]}, {}),  # session lists are not passed on
        ({"eligible": [plain.session_id]}, "none"),  # the event stays on this router
        ({"exclude": [leg.session_id]}, "none"),
    ]
    for n, (opts, want) in enumerate(cases):
        got["leg"].clear(), got["plain"].clear()
        await pub.publish(TOPIC, n, options={"acknowledge": True, **opts})
        await _settle()
        for _, details in got["plain"]:
            assert "rlink" not in details
        if want == "none":
            assert got["leg"] == [], opts
            continue
        assert len(got["leg"]) == 1, opts
        (args, details), = got["leg"]
        assert args == (n,)
        if want is None:
            assert "rlink" not in details
        else:
            assert {k: sorted(v) if isinstance(v, list) else v for k, v in details["rlink"].items()} == \
                {k: sorted(v) if isinstance(v, list) else v for k, v in want.items()}, opts


async def test_forward_for_only_from_legs(router):
    leg = await _session(router, "leg", leg=True)
    plain = await _session(router, "plain")
    sub = await _session(router, "sub")
    got = []
    await sub.subscribe(TOPIC, lambda *a, details: got.append(details), details=True)
    seen = []
    await sub.register("com.example.p", lambda details: seen.append(details), details=True)
    ff = [{"session": 1, "authid": "a", "authrole": "r"}]
    for s in (plain, leg):
        await s.publish(TOPIC, options={"acknowledge": True, "forward_for": ff})
        await s.call("com.example.p", options={"forward_for": ff})
    await _settle()
    assert "forward_for" not in got[0] and got[1]["forward_for"] == ff
    assert "forward_for" not in seen[0] and seen[1]["forward_for"] == ff


async def test_calls_from_legs_skip_legs(router):
    leg1 = await _session(router, "leg1", leg=True)
    leg2 = await _session(router, "leg2", leg=True)
    c1, c2 = await _session(router, "c1"), await _session(router, "c2")
    caller = await _session(router, "caller")
    await leg1.register("com.example.rr", lambda: "leg1", {"invoke": "roundrobin"})
    await c1.register("com.example.rr", lambda: "c1", {"invoke": "roundrobin"})
    await leg2.register("com.example.rr", lambda: "leg2", {"invoke": "roundrobin"})
    await c2.register("com.example.rr", lambda: "c2", {"invoke": "roundrobin"})
    # an ordinary caller: every callee in turn, legs included
    assert [await caller.call("com.example.rr") for _ in range(8)] == ["leg1", "c1", "leg2", "c2"] * 2
    # a leg's calls: the callees that are not legs, still in turn
    assert [await leg1.call("com.example.rr") for _ in range(6)] == ["c1", "c2"] * 3
    # a shared registration of legs only: nothing for a leg
    await leg1.register("com.example.legs", lambda: 1, {"invoke": "random"})
    await leg2.register("com.example.legs", lambda: 2, {"invoke": "random"})
    assert await caller.call("com.example.legs") in (1, 2)
    with pytest.raises(ApplicationError) as e:
        await leg2.call("com.example.legs")
    assert e.value.error == "wamp.error.no_such_procedure"


async def test_in_process_leg_learns_caller_only_when_disclosed(router):
    """A trusted in-process callee sees every caller; a leg (also trusted) only a disclosed one."""
    leg = await _session(router, "leg", leg=True)
    internal = await _session(router, "internal")
    seen = {"leg": [], "internal": []}
    await leg.register("com.example.l", lambda details: seen["leg"].append(details), details=True)
    await internal.register("com.example.i", lambda details: seen["internal"].append(details), details=True)
    caller = await _session(router, "caller")
    await caller.call("com.example.l")
    await caller.call("com.example.l", options={"disclose_me": True})
    await caller.call("com.example.i")
    assert "caller" not in seen["leg"][0] and seen["leg"][1]["caller"] == caller.session_id
    assert seen["internal"][0]["caller"] == caller.session_id
