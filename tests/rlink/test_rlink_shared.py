"""Shared registrations across router links: callees of one shared registration (same invocation
policy) on several linked routers serve the calls of every router.  On each router the link's leg
is one more callee of the registration, standing for the other router's callees; a call that came
over a link goes to a callee of the router it reached (the dealer never hands it to a leg), so
calls go one hop and never loop.  Real nodes, autobahn-python callees and callers."""

from __future__ import annotations

import asyncio
from collections import Counter

from autobahn.wamp.types import CallDetails, RegisterOptions
from rlinknodes import WORKER, ab_client, link_config, link_info, links_connected, make_nodes, mesh, wait_for

from support.autobahn_client import w

PROC = "com.example.shared"


async def _callee(node, name, invoke, served):
    s = await ab_client(node)

    def endpoint(details: CallDetails = None):
        served[name] += 1
        return name
    await w(s.register(endpoint, PROC, options=RegisterOptions(invoke=invoke, details_arg="details")))
    return s


async def _held(node, link_id, side, n_present=True):
    m = await node.manage()
    try:
        async def ok():
            info = await link_info(m, link_id)
            return (PROC in info[side]["registrations"]) == n_present
        await wait_for(ok, 20, f"{PROC} {'held' if n_present else 'gone'} on {link_id} {side}")
    finally:
        await m.leave()


async def test_roundrobin_across_two_routers(started):
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    served = Counter()
    cs = {name: await _callee(node, name, "roundrobin", served)
          for node, name in ((a, "a1"), (a, "a2"), (b, "b1"))}
    await _held(a, "to1", "here")   # B's callee stands on A as the leg
    await _held(a, "to1", "there")  # A's callees stand on B as the leg
    caller_a, caller_b = await ab_client(a), await ab_client(b)
    # on A: a1, a2 and the leg for B: one third each
    got = Counter([await w(caller_a.call(PROC)) for _ in range(30)])
    assert got == {"a1": 10, "a2": 10, "b1": 10}, got
    # on B: b1 and the leg for A (A's callees by A's policy): b1 half, a1 and a2 a quarter each
    got = Counter([await w(caller_b.call(PROC)) for _ in range(20)])
    assert got == {"b1": 10, "a1": 5, "a2": 5}, got
    assert sum(served.values()) == 50  # each call served once
    m = await a.manage()
    assert (await link_info(m, "to1"))["forwarded_calls"] == 20  # the 10 + 10 that went over the link, once
    await m.leave()
    # B's callee leaves: A's registration loses the leg, A's callers stay on A
    cs["b1"].leave()
    await _held(a, "to1", "here", False)
    got = Counter([await w(caller_a.call(PROC)) for _ in range(10)])
    assert got == {"a1": 5, "a2": 5}, got
    got = Counter([await w(caller_b.call(PROC)) for _ in range(10)])  # B reaches A's callees only
    assert got == {"a1": 5, "a2": 5}, got


async def test_last_policy_across_routers(started):
    """``last``: on each router the last callee of its list, the leg standing where it joined."""
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    served = Counter()
    await _callee(a, "a1", "last", served)
    await _held(a, "to1", "there")  # A: [a1]; B: [leg for A]
    await _callee(b, "b1", "last", served)
    await _held(a, "to1", "here")  # A: [a1, leg for B]; B: [leg for A, b1]
    caller_a, caller_b = await ab_client(a), await ab_client(b)
    assert {await w(caller_a.call(PROC)) for _ in range(5)} == {"b1"}
    assert {await w(caller_b.call(PROC)) for _ in range(5)} == {"b1"}


async def test_different_policies_stay_local(started):
    """Shared registrations of different policies on two routers cannot be joined: each router
    serves its own callers."""
    a, b = started(make_nodes(2))
    served = Counter()
    await _callee(a, "a1", "roundrobin", served)
    await _callee(b, "b1", "random", served)
    m = await a.manage()
    await m.call(f"{WORKER}.start_router_realm_link", "realm001", "to1", link_config(b.port))
    await m.leave()
    await links_connected([a, b], {0: [1]})
    await asyncio.sleep(1)  # whatever the link would do, it has done
    caller_a, caller_b = await ab_client(a), await ab_client(b)
    assert {await w(caller_a.call(PROC)) for _ in range(10)} == {"a1"}
    assert {await w(caller_b.call(PROC)) for _ in range(10)} == {"b1"}
    m = await a.manage()
    info = await link_info(m, "to1")
    await m.leave()
    assert not info["here"]["refused"] and not info["there"]["refused"], info


async def test_roundrobin_in_a_mesh_of_three(started):
    links = mesh(3)
    nodes = started(make_nodes(3, links))
    await links_connected(nodes, links)
    served = Counter()
    for i, n in enumerate(nodes):
        await _callee(n, f"n{i}", "roundrobin", served)
    # every router holds the other two routers' legs
    m0, m1 = await nodes[0].manage(), await nodes[1].manage()

    async def all_held():
        i01, i02, i12 = (await link_info(m0, "to1"), await link_info(m0, "to2"), await link_info(m1, "to2"))
        return all(PROC in i[side]["registrations"] for i in (i01, i02, i12) for side in ("here", "there"))
    await wait_for(all_held, 20, "every link holding the procedure both ways")
    await m0.leave()
    await m1.leave()
    callers = [await ab_client(n) for n in nodes]
    for c in callers:
        got = Counter([await w(c.call(PROC)) for _ in range(30)])
        assert got == {"n0": 10, "n1": 10, "n2": 10}, got  # own callee and the two legs, a third each
    assert sum(served.values()) == 90
    # every call that left its router crossed one link once: 20 of each router's 30
    forwarded = 0
    for i, targets in links.items():
        m = await nodes[i].manage()
        for j in targets:
            forwarded += (await link_info(m, f"to{j}"))["forwarded_calls"]
        await m.leave()
    assert forwarded == 60


async def test_share_registrations_false_serves_own_callees(started):
    """``"share_registrations": false``: a router with callees of its own for a shared registration
    serves its callers with them alone; the leg registers there only while it has none."""
    links = {0: [1]}
    a, b = started(make_nodes(2, links, link_extra={"share_registrations": False}))
    await links_connected([a, b], links)
    served = Counter()
    a1 = await _callee(a, "a1", "roundrobin", served)
    a2 = await _callee(a, "a2", "roundrobin", served)
    await _held(a, "to1", "there")  # B has no callee of its own yet: the leg stands for A's there
    await _callee(b, "b1", "roundrobin", served)
    await _held(a, "to1", "there", False)  # B has b1 now: the leg leaves B's registration
    await _held(a, "to1", "here", False)  # and A, having a1 and a2, never took one for B
    m = await a.manage()
    info = await link_info(m, "to1")
    await m.leave()
    assert not info["here"]["refused"] and not info["there"]["refused"], info
    caller_a, caller_b = await ab_client(a), await ab_client(b)
    got = Counter([await w(caller_a.call(PROC)) for _ in range(20)])
    assert got == {"a1": 10, "a2": 10}, got  # A's calls: A's callees only, roundrobin
    got = Counter([await w(caller_b.call(PROC)) for _ in range(10)])
    assert got == {"b1": 10}, got  # B's calls: B's callee only
    m = await a.manage()
    assert (await link_info(m, "to1"))["forwarded_calls"] == 0  # nothing crossed the link
    await m.leave()

    # A's callees leave: the leg registers on A, A's calls reach B's callee
    a1.leave()
    a2.leave()
    await _held(a, "to1", "here")
    got = Counter([await w(caller_a.call(PROC)) for _ in range(10)])
    assert got == {"b1": 10}, got
    got = Counter([await w(caller_b.call(PROC)) for _ in range(5)])
    assert got == {"b1": 5}, got
    m = await a.manage()
    assert (await link_info(m, "to1"))["forwarded_calls"] == 10  # A's 10, over the link once each
    await m.leave()

    # one comes back: it joins A's registration, the leg leaves it, A serves itself again
    await _callee(a, "a3", "roundrobin", served)
    await _held(a, "to1", "here", False)
    got = Counter([await w(caller_a.call(PROC)) for _ in range(10)])
    assert got == {"a3": 10}, got
    got = Counter([await w(caller_b.call(PROC)) for _ in range(5)])
    assert got == {"b1": 5}, got
    m = await a.manage()
    assert (await link_info(m, "to1"))["forwarded_calls"] == 10  # no more crossed
    await m.leave()
    assert served == {"a1": 10, "a2": 10, "b1": 30, "a3": 10}, served  # each call served once


async def test_replicas_serve_their_own_callees(started):
    """The links between a node's replicas have ``"share_registrations": false``: with a callee of
    a shared registration on every replica, each replica's calls go to its own callee, none over a
    link; a replica without one reaches the other's."""
    from test_cores import close_all, cores_config, make_node, mesh_up, spread

    from support.nodes import free_port

    port = free_port()
    node, = started([make_node(cores_config(port, 2), port)])
    mgmt = await node.manage()
    by_worker = {}
    try:
        await mesh_up(mgmt, 2)
        link = "crossbar.worker.router1-1.get_router_realm_link"
        assert (await mgmt.call(link, "realm001", "replica-router1-2"))["config"]["share_registrations"] is False

        async def held(side, present):
            async def ok():
                info = await mgmt.call(link, "realm001", "replica-router1-2")
                return (PROC in info[side]["registrations"]) == present
            await wait_for(ok, 20, f"{PROC} {'held' if present else 'gone'} {side}")

        by_worker = await spread(node, 2)
        one, two = by_worker["router1-1"], by_worker["router1-2"]
        opts = RegisterOptions(invoke="roundrobin")
        await w(one[0].register(lambda: "router1-1", PROC, options=opts))
        await held("there", True)  # router1-2 has no callee: the leg stands for router1-1's there
        got = Counter([await w(two[1].call(PROC)) for _ in range(5)])
        assert got == {"router1-1": 5}, got
        reg = await w(two[0].register(lambda: "router1-2", PROC, options=opts))
        await held("there", False)
        await held("here", False)
        for wid, sessions in by_worker.items():
            got = Counter([await w(sessions[1].call(PROC)) for _ in range(20)])
            assert got == {wid: 20}, (wid, got)
        info = await mgmt.call(link, "realm001", "replica-router1-2")
        assert info["forwarded_calls"] == 5, info  # only the 5 made before router1-2 had a callee
        # router1-2's callee goes: its calls reach router1-1's again
        await w(reg.unregister())
        await held("there", True)
        got = Counter([await w(two[1].call(PROC)) for _ in range(5)])
        assert got == {"router1-1": 5}, got
    finally:
        await close_all(by_worker)
        await mgmt.leave()


async def test_share_registrations_false_in_a_mesh_of_three(started):
    """Callees on routers 0 and 2, none on 1, links with ``"share_registrations": false``: 0 and 2
    serve their own callers; 1 has both legs in its registration and its calls alternate."""
    links = mesh(3)
    nodes = started(make_nodes(3, links, link_extra={"share_registrations": False}))
    await links_connected(nodes, links)
    served = Counter()
    await _callee(nodes[0], "n0", "roundrobin", served)
    await _callee(nodes[2], "n2", "roundrobin", served)
    m0, m1 = await nodes[0].manage(), await nodes[1].manage()

    async def settled():
        i01, i02, i12 = (await link_info(m0, "to1"), await link_info(m0, "to2"), await link_info(m1, "to2"))
        return (PROC in i01["there"]["registrations"] and PROC in i12["here"]["registrations"]  # on 1
                and PROC not in i02["here"]["registrations"] and PROC not in i02["there"]["registrations"]
                and PROC not in i01["here"]["registrations"] and PROC not in i12["there"]["registrations"])
    await wait_for(settled, 20, "both legs on router 1, none on 0 and 2")
    await m0.leave()
    await m1.leave()
    callers = [await ab_client(n) for n in nodes]
    assert Counter([await w(callers[0].call(PROC)) for _ in range(10)]) == {"n0": 10}
    assert Counter([await w(callers[2].call(PROC)) for _ in range(10)]) == {"n2": 10}
    got = Counter([await w(callers[1].call(PROC)) for _ in range(20)])
    assert got == {"n0": 10, "n2": 10}, got
