"""What a session can make the router hold is bounded (in-process router)."""

from __future__ import annotations

import asyncio

import pytest

from wampfabric.client import ApplicationError
from wampfabric.router import store as store_mod
from wampfabric.router import dealer as dealer_mod
from wampfabric.router.realm import Router
from wampfabric.router.meta import MAX_TESTAMENTS
from wampfabric.transport.local import connect_local

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


@pytest.fixture
async def router():
    r = Router()
    r.start_realm({"name": "realm1", "roles": [{"name": "user", "permissions": [
        {"uri": "", "match": "prefix", "allow": ALL}]}]})
    return r


async def test_testaments_per_scope_are_bounded(router):
    s = await connect_local(router, "realm1", role="user")
    for i in range(MAX_TESTAMENTS):
        await s.call("wamp.session.add_testament", "com.t", [i], {})
    with pytest.raises(ApplicationError) as e:
        await s.call("wamp.session.add_testament", "com.t", [0], {})
    assert e.value.error == "wamp.error.invalid_argument"
    # the other scope has its own budget
    await s.call("wamp.session.add_testament", "com.t", [0], {}, scope="detached")


async def test_retained_topics_are_bounded(router, monkeypatch):
    monkeypatch.setattr(store_mod, "RETAINED_TOPICS_KEPT", 3)
    pub = await connect_local(router, "realm1", role="user")
    for i in range(5):
        await pub.publish(f"com.r{i}", i, options={"retain": True, "acknowledge": True})
    sub = await connect_local(router, "realm1", role="user")
    got = []
    for i in range(5):
        await sub.subscribe(f"com.r{i}", lambda n: got.append(n), options={"get_retained": True})
    await asyncio.sleep(0.05)
    assert sorted(got) == [2, 3, 4]  # the two oldest retentions were dropped


async def test_remembered_call_routes_are_bounded(router, monkeypatch):
    """The dealer remembers which registration a procedure's calls go to; calls to ever new
    procedures (one wildcard registration matches them all) must not grow that without bound,
    and every call is still routed right when the memory is emptied."""
    dealer = router.realms["realm1"].dealer
    assert dealer._route_cache.max_entries == dealer_mod.MAX_CACHED_ROUTES
    monkeypatch.setattr(dealer._route_cache, "max_entries", 8)
    callee = await connect_local(router, "realm1", role="user")
    caller = await connect_local(router, "realm1", role="user")
    await callee.register("com.route..echo", lambda n: n, options={"match": "wildcard"})
    for i in range(50):
        assert await caller.call(f"com.route.p{i}.echo", i) == i
    assert 0 < len(dealer._routes) <= 8
