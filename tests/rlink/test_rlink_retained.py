"""Retained events across router links: an event published with ``retain`` on one router is
retained on the linked router too, whether the linked router had subscribers then (the leg
republishes it with ``retain``) or gets its first subscriber later (the link's mirror subscription
asks ``get_retained`` and the leg republishes what it gets, marked ``retained``).  Neither loops:
a retained event that came over a link carries ``forward_for`` and is never forwarded again."""

from __future__ import annotations

import asyncio

from rlinknodes import link_info, links_connected, make_nodes, wait_for

from wampfabric.client.connection import connect


async def _sub(node, topic, got: list, get_retained=True):
    c = await connect(node.url, "realm1")
    await c.subscribe(topic, lambda *a, details: got.append((a, details)), {"get_retained": get_retained},
                      details=True)
    return c


async def _mirrored(node, topic):
    m = await node.manage()
    try:
        async def ok():
            info = await link_info(m, "to1")
            return topic in info["here"]["subscriptions"] or topic in info["there"]["subscriptions"]
        await wait_for(ok, 20, f"{topic} mirrored")
    finally:
        await m.leave()


async def _forwarded(nodes):
    m = await nodes[0].manage()
    try:
        return (await link_info(m, "to1"))["forwarded_events"]
    finally:
        await m.leave()


async def test_retained_live_and_before_interest(started):
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    pub = await connect(a.url, "realm1")

    # 1. B has a subscriber: the retained publication on A is forwarded and retained on B too
    live = []
    await _sub(b, "com.example.r1", live)
    await _mirrored(a, "com.example.r1")
    await pub.publish("com.example.r1", "v1", options={"acknowledge": True, "retain": True})
    await wait_for(lambda: live, 10, "the live event on B")
    late_b = []
    await _sub(b, "com.example.r1", late_b)  # a second subscriber: B's own retained event
    await wait_for(lambda: late_b, 10, "the retained event from B's store")
    assert late_b[0][0] == ("v1",) and late_b[0][1].get("retained") is True
    assert late_b[0][1]["forward_for"][0]["session"] == pub.session_id

    # 2. nobody anywhere subscribes when it is published: B's first subscriber gets it once the
    # link mirrors the subscription on A (get_retained), and B keeps it
    await pub.publish("com.example.r2", "v2", options={"acknowledge": True, "retain": True})
    first = []
    await _sub(b, "com.example.r2", first)
    await wait_for(lambda: first, 10, "A's retained event at B's first subscriber")
    assert first[0][0] == ("v2",) and first[0][1].get("retained") is True
    second = []
    await _sub(b, "com.example.r2", second)
    await wait_for(lambda: second, 10, "the retained event kept on B")
    assert second[0][0] == ("v2",) and second[0][1].get("retained") is True

    # 3. a newer retained event replaces it on both routers
    await pub.publish("com.example.r2", "v3", options={"acknowledge": True, "retain": True})
    await wait_for(lambda: len(first) == 2 and len(second) == 2, 10, "v3 live on B")
    third = []
    await _sub(b, "com.example.r2", third)
    await wait_for(lambda: third, 10, "v3 from B's store")
    assert [x[0] for x in third] == [("v3",)]

    # no loops, no repeats: every subscriber got each event once; the counter stands still
    await asyncio.sleep(0.5)
    assert [x[0] for x in live] == [("v1",)]
    assert [x[0] for x in first] == [("v2",), ("v3",)] and [x[0] for x in second] == [("v2",), ("v3",)]
    n = await _forwarded([a, b])
    await asyncio.sleep(0.5)
    assert await _forwarded([a, b]) == n


async def test_retained_the_other_way_and_on_the_publishers_router(started):
    """Published with retain on B (forwarded by the network leg), kept on A; a subscriber on A's
    side with get_retained and B's own subscribers each get it exactly once."""
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    on_a, on_b = [], []
    await _sub(a, "com.example.r", on_a)
    await _sub(b, "com.example.r", on_b)
    await _mirrored(a, "com.example.r")
    pub = await connect(b.url, "realm1")
    await pub.publish("com.example.r", "x", options={"acknowledge": True, "retain": True})
    await wait_for(lambda: on_a and on_b, 10, "the event on both")
    late = []
    await _sub(a, "com.example.r", late)
    await wait_for(lambda: late, 10, "kept on A")
    assert late[0][0] == ("x",) and late[0][1]["forward_for"][0]["session"] == pub.session_id
    await asyncio.sleep(0.5)
    assert len(on_a) == 1 and len(on_b) == 1 and len(late) == 1
