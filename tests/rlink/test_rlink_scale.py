"""A link mirroring many subscriptions and registrations (functional, not timed: the mirrors and
the routers' snapshots are pipelined, see docs/clustering.md for the figures): 5,000 distinct
subscriptions on one router and 1,000 registrations on the other, all mirrored when the link
starts and again when it is started anew; events and calls reach across for any of them."""

from __future__ import annotations

import asyncio
import random

from rlinknodes import WORKER, link_config, link_info, make_nodes, wait_for

NS, NR = 5000, 1000


async def _gather(aws, width=500):
    aws = list(aws)
    for i in range(0, len(aws), width):
        await asyncio.gather(*aws[i:i + width])


async def _all_mirrored(m):
    async def ok():
        info = await link_info(m, "to1")
        return (info["connected"] and len(info["here"]["subscriptions"]) == NS
                and len(info["there"]["registrations"]) == NR)
    await wait_for(ok, 120, f"{NS} subscriptions and {NR} registrations mirrored", interval=0.1)


async def test_many_subscriptions_and_registrations(started):
    a, b = started(make_nodes(2))
    got = []
    sub_b = await b.client()
    await _gather(sub_b.subscribe(f"com.example.t{i}", lambda i, got=got: got.append(i)) for i in range(NS))
    callee_a = await a.client()
    await _gather(callee_a.register(f"com.example.p{i}", lambda i=i: i) for i in range(NR))
    m = await a.manage()
    try:
        for attempt in range(2):  # started, then stopped and started anew: everything mirrored again
            await m.call(f"{WORKER}.start_router_realm_link", "realm001", "to1", link_config(b.port))
            await _all_mirrored(m)
            info = await link_info(m, "to1")
            assert not info["here"]["refused"] and not info["there"]["refused"]
            pub, caller = await a.client(), await b.client()
            picks = random.sample(range(NS), 20)
            got.clear()
            for i in picks:
                await pub.publish(f"com.example.t{i}", i, options={"acknowledge": True})
            await wait_for(lambda: sorted(got) == sorted(picks), 10, "the events on B")
            for i in random.sample(range(NR), 20):
                assert await caller.call(f"com.example.p{i}") == i
            await pub.leave()
            await caller.leave()
            await m.call(f"{WORKER}.stop_router_realm_link", "realm001", "to1")
    finally:
        await m.leave()
