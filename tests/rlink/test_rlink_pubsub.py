"""Router-to-router links carrying PubSub: nodes started with the CLI, links from config.json,
clients on each router; every event reaches every matching subscriber exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter


from rlinknodes import link_info, links_connected, make_nodes, mesh, wait_for

TOPIC = "com.example.news"


async def _settled(nodes, links, uris, side_counts=True):
    """Until every link holds a subscription on ``uris`` on both routers."""
    for i, targets in links.items():
        m = await nodes[i].manage()
        try:
            for j in targets:
                async def ok(j=j):
                    info = await link_info(m, f"to{j}")
                    return info["connected"] and all(u in info["here"]["subscriptions"] and
                                                      u in info["there"]["subscriptions"] for u in uris)
                await wait_for(ok, 20, f"link n{i} -> n{j} mirrors {uris}")
        finally:
            await m.leave()


async def _exchange(nodes, links, per_node: int = 20):
    """A subscriber on every node, ``per_node`` events published on each: who got what."""
    await links_connected(nodes, links)
    clients = [await n.client() for n in nodes]
    got = [Counter() for _ in nodes]
    publishers = [Counter() for _ in nodes]
    for i, c in enumerate(clients):
        def handler(origin, seq, details, i=i):
            got[i][(origin, seq)] += 1
            publishers[i][details.get("publisher")] += 1
        await c.subscribe(TOPIC, handler, details=True)
    await _settled(nodes, links, [TOPIC])
    pubs = [await n.client() for n in nodes]
    for k, p in enumerate(pubs):
        for seq in range(per_node):
            await p.publish(TOPIC, f"n{k}", seq, options={"acknowledge": True})
    expected = {(f"n{k}", s) for k in range(len(nodes)) for s in range(per_node)}
    await wait_for(lambda: all(set(g) == expected for g in got), 20, "every event everywhere")
    await asyncio.sleep(0.5)  # duplicates would arrive now
    for i, g in enumerate(got):
        assert set(g) == expected, f"n{i} missed {sorted(expected - set(g))[:5]}"
        dups = {k: v for k, v in g.items() if v != 1}
        assert not dups, f"n{i} got duplicates: {list(dups.items())[:5]}"
    return clients, pubs, publishers


async def test_two_routers_both_ways_exactly_once(started):
    links = {0: [1]}
    nodes = started(make_nodes(2, links))
    clients, pubs, publishers = await _exchange(nodes, links)
    m = await nodes[0].manage()
    info = await link_info(m, "to1")
    assert info["forwarded_events"] == 40  # both ways: 20 each
    await m.leave()


async def test_patterns_and_disclosure_across_a_link(started):
    """A prefix and an exact subscription on B matching one event on A: each B subscriber gets it
    once (the link forwards the publication once although it matches two of its subscriptions).
    B's subscribers see who published on A in forward_for[0]."""
    links = {0: [1]}
    nodes = started(make_nodes(2, links))
    await links_connected(nodes, links)
    b1, b2 = await nodes[1].client(), await nodes[1].client()
    got = {"exact": [], "prefix": []}
    await b1.subscribe(TOPIC, lambda *a, details: got["exact"].append((a, details)), details=True)
    await b2.subscribe("com.example", lambda *a, details: got["prefix"].append((a, details)),
                       {"match": "prefix"}, details=True)
    m = await nodes[0].manage()

    async def mirrored():
        info = await link_info(m, "to1")
        return {TOPIC, "com.example (prefix)"} <= set(info["here"]["subscriptions"])
    await wait_for(mirrored, 20, "both subscriptions mirrored on A")
    pub = await nodes[0].client()
    await pub.publish(TOPIC, "hello", options={"acknowledge": True})
    await wait_for(lambda: got["exact"] and got["prefix"], 10, "the event on B")
    await asyncio.sleep(0.5)
    assert len(got["exact"]) == 1 and len(got["prefix"]) == 1
    for args, details in got["exact"] + got["prefix"]:
        assert args == ("hello",)
        ff = details["forward_for"]
        assert len(ff) == 1 and ff[0] == {"session": pub.session_id, "authid": pub.details["authid"],
                                          "authrole": "user"}
    assert got["prefix"][0][1]["topic"] == TOPIC
    await m.leave()


async def test_three_routers_ring_exactly_once(started):
    links = {0: [1], 1: [2], 2: [0]}  # a ring (with three routers also a full mesh)
    nodes = started(make_nodes(3, links))
    await _exchange(nodes, links)


async def test_five_routers_full_mesh_exactly_once(started):
    links = mesh(5)
    nodes = started(make_nodes(5, links))
    await _exchange(nodes, links, per_node=10)


async def test_switches_and_exclusion(started):
    """forward_remote_events off: A's events reach B, B's do not reach A; exclude_authid keeps
    forwarded events from the named principals on the receiving router."""
    from rlinknodes import link_config

    nodes = make_nodes(2)
    a, b = nodes
    started(nodes)
    m = await a.manage()
    cfg = link_config(b.port, forward_local_events=False, forward_remote_events=True,
                      forward_local_invocations=False, forward_remote_invocations=False)
    await m.call("crossbar.worker.router1.start_router_realm_link", "realm001", "l1", cfg)
    got_a, got_b = [], []
    sa, sb = await a.client(), await b.client()
    await sa.subscribe(TOPIC, got_a.append)
    await sb.subscribe(TOPIC, got_b.append)

    async def ready():
        info = await link_info(m, "l1")
        return info["connected"] and TOPIC in info["here"]["subscriptions"]
    await wait_for(ready, 20, "B's subscription mirrored on A")
    pa, pb = await a.client(), await b.client()
    await pa.publish(TOPIC, "from-a", options={"acknowledge": True})
    await pb.publish(TOPIC, "from-b", options={"acknowledge": True})
    await wait_for(lambda: "from-a" in got_b, 10, "A's event on B")
    await asyncio.sleep(0.5)
    assert got_b.count("from-a") == 1 and got_a == ["from-a"]
    assert (await link_info(m, "l1"))["there"]["subscriptions"] == []
    await m.call("crossbar.worker.router1.stop_router_realm_link", "realm001", "l1")

    # a link that keeps its events from anonymous users ('user' authrole here) on B
    cfg = link_config(b.port, exclude_authrole=["user"])
    await m.call("crossbar.worker.router1.start_router_realm_link", "realm001", "l2", cfg)

    async def ready2():
        info = await link_info(m, "l2")
        return info["connected"] and TOPIC in info["here"]["subscriptions"]
    await wait_for(ready2, 20, "mirrored again")
    got_b.clear()
    await pa.publish(TOPIC, "excluded", options={"acknowledge": True})
    await asyncio.sleep(1.0)
    assert got_b == []
    await m.leave()
