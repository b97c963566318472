"""Router links in topologies that are not full meshes: a ring of five, a chain whose middle
routers configure no link of their own.  Events reach every matching subscriber on every router
of the link graph exactly once, calls reach procedures several links away (progressive results,
errors), and when a router of the ring goes away the others route around it (docs/clustering.md
"Multi-hop").  Every node is a `wampfabric start` process on loopback."""

from __future__ import annotations

import asyncio
from collections import Counter

from rlinknodes import link_info, links_connected, make_nodes, wait_for

from wampfabric.client.session import ApplicationError

TOPIC = "com.example.news"


def _ring(n: int) -> dict:
    return {i: [(i + 1) % n] for i in range(n)}


async def _converged(nodes, links, subscribed: set[int] | None = None, registered: set[int] | None = None,
                     down: set[int] = frozenset()):
    """Until every link of a running node reaches every other running router, and knows that the
    routers in ``subscribed`` subscribe and those in ``registered`` register something."""
    up = [i for i in range(len(nodes)) if i not in down]
    ids: dict[int, str] = {}
    for i, targets in links.items():
        if i in down:
            continue
        m = await nodes[i].manage()
        try:
            for j in targets:
                if j in down:
                    continue

                async def ok(i=i, j=j):
                    info = await link_info(m, f"to{j}")
                    if not info["connected"] or info["router"] is None or info["peer"] is None:
                        return False
                    ids[i], ids[j] = info["router"], info["peer"]
                    routers = info["routers"]
                    if len(routers) != len(up) - 1:
                        return False
                    return all(k not in ids or (ids[k] in routers and
                               (k not in (subscribed or ()) or routers[ids[k]]["subscriptions"] > 0) and
                               (k not in (registered or ()) or routers[ids[k]]["registrations"] > 0))
                               for k in up if k != i)
                await wait_for(ok, 30, f"link n{i} -> n{j} reaches every router")
        finally:
            await m.leave()
    return ids


async def _subscribers(nodes, indexes):
    got = {i: Counter() for i in indexes}
    clients = {}
    for i in indexes:
        c = await nodes[i].client()

        def handler(origin, seq, details, i=i):
            got[i][(origin, seq)] += 1
        await c.subscribe(TOPIC, handler, details=True)
        clients[i] = c
    return got, clients


async def _publish_all(nodes, indexes, per_node):
    for k in indexes:
        p = await nodes[k].client()
        for seq in range(per_node):
            await p.publish(TOPIC, f"n{k}", seq, options={"acknowledge": True})
        await p.leave()


async def _check_exactly_once(got, expected):
    await wait_for(lambda: all(set(g) >= expected for g in got.values()), 20, "every event everywhere")
    await asyncio.sleep(0.5)  # duplicates would arrive now
    for i, g in got.items():
        assert set(g) == expected, f"n{i} missed {sorted(expected - set(g))[:5]}, extra {sorted(set(g) - expected)[:5]}"
        dups = {k: v for k, v in g.items() if v != 1}
        assert not dups, f"n{i} got duplicates: {list(dups.items())[:5]}"


async def test_ring_of_five_exactly_once_and_calls_across(started):
    n = 5
    links = _ring(n)
    nodes = started(make_nodes(n, links))
    await links_connected(nodes, links)
    got, _ = await _subscribers(nodes, range(n))
    # a procedure on n2 only: two links away from n0 and n4
    callee = await nodes[2].client()
    await callee.register("com.example.where", lambda *a, **kw: {"router": "n2", "args": list(a)})
    await _converged(nodes, links, subscribed=set(range(n)), registered={2})
    await _publish_all(nodes, range(n), 10)
    expected = {(f"n{k}", s) for k in range(n) for s in range(10)}
    await _check_exactly_once(got, expected)
    for i in range(n):
        c = await nodes[i].client()
        assert await c.call("com.example.where", i) == {"router": "n2", "args": [i]}
        await c.leave()
    # every link forwarded something and no event went round the ring (counted above: exactly once)
    m = await nodes[0].manage()
    info = await link_info(m, "to1")
    assert info["forwarded_events"] > 0
    await m.leave()


async def test_chain_through_routers_that_configure_no_link(started):
    """n0 -> n1 <- n2 <- n3 (arrows: who configures the link): n1 configures none, n2 one. Events
    both ways end to end, a call three links away with progressive results and an error, a
    subscription that goes away stops the events to its router."""
    links = {0: [1], 2: [1], 3: [2]}
    nodes = started(make_nodes(4, links))
    await links_connected(nodes, links)
    got, clients = await _subscribers(nodes, [0, 3])
    callee = await nodes[3].client()

    async def count(n, progress=None):
        for k in range(n):
            if progress is not None:
                progress(k)
            await asyncio.sleep(0)
        return "done"
    await callee.register("com.example.count", count, progress=True)

    def fail():
        raise ApplicationError("com.example.error.nope", "not today", code=7)
    await callee.register("com.example.fail", fail)
    await _converged(nodes, links, subscribed={0, 3}, registered={3})
    await _publish_all(nodes, range(4), 5)
    expected = {(f"n{k}", s) for k in range(4) for s in range(5)}
    await _check_exactly_once(got, expected)

    caller = await nodes[0].client()
    seen = []
    assert await caller.call("com.example.count", 4, on_progress=seen.append) == "done"
    assert seen == [0, 1, 2, 3]
    try:
        await caller.call("com.example.fail")
        raise AssertionError("the error did not come back")
    except ApplicationError as e:
        assert e.error == "com.example.error.nope"
        assert e.args_ == ["not today"] and e.kwargs == {"code": 7}

    # n3's subscriber leaves: n0's events no longer travel to it (nor anywhere else: nobody wants them)
    await clients[3].leave()
    m = await nodes[0].manage()

    async def withdrawn():
        info = await link_info(m, "to1")
        return TOPIC not in info["here"]["subscriptions"]
    await wait_for(withdrawn, 20, "n3's interest withdrawn along the chain")
    await m.leave()


async def test_ring_routes_around_a_router_that_went_away(started):
    n = 5
    links = _ring(n)
    nodes = started(make_nodes(n, links))
    await links_connected(nodes, links)
    got, _ = await _subscribers(nodes, [3])
    await _converged(nodes, links, subscribed={3})
    nodes[2].kill()  # n1 -> n2 -> n3 is gone: n1's events now go n1 -> n0 -> n4 -> n3
    await _converged(nodes, links, subscribed={3}, down={2})
    await _publish_all(nodes, [1], 10)
    await _check_exactly_once(got, {("n1", s) for s in range(10)})

    nodes[2].start()  # back (a new router ID): the short way again, still exactly once
    await links_connected(nodes, links)
    await _converged(nodes, links, subscribed={3})
    for g in got.values():
        g.clear()
    await _publish_all(nodes, [1, 2], 10)
    await _check_exactly_once(got, {(f"n{k}", s) for k in (1, 2) for s in range(10)})
