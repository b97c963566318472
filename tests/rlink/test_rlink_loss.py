"""Link loss: the other router's process killed (SIGKILL), then started again.  What the link
had brought here from there is withdrawn at once (the kernel closes the dead process's
sockets; bounded here by 3 s), local routing goes on meanwhile, and when the other router is
back the link reconnects (backoff: at most 10 s between attempts) and mirrors everything again."""

from __future__ import annotations

import asyncio
import time

import pytest

from rlinknodes import link_info, links_connected, make_nodes, wait_for

from wampfabric.client.session import ApplicationError

TOPIC = "com.example.ticks"


async def _setup_b(b, got_b):
    callee = await b.client()
    await callee.register("com.example.on_b", lambda: "b")
    sub = await b.client()
    await sub.subscribe(TOPIC, lambda origin: got_b.append(origin))
    return callee, sub


async def test_kill_and_restart_the_other_router(started):
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    m = await a.manage()
    got_a, got_b = [], []
    sub_a = await a.client()
    await sub_a.subscribe(TOPIC, lambda origin: got_a.append(origin))
    local_callee = await a.client()
    await local_callee.register("com.example.on_a", lambda: "a")
    await _setup_b(b, got_b)
    caller = await a.client()

    async def mirrored():
        info = await link_info(m, "to1")
        return (info["connected"] and "com.example.on_b" in info["here"]["registrations"]
                and TOPIC in info["here"]["subscriptions"] and TOPIC in info["there"]["subscriptions"])
    await wait_for(mirrored, 20, "B's procedure and both subscriptions mirrored")
    assert await caller.call("com.example.on_b") == "b"

    b.kill()
    killed = time.monotonic()

    async def withdrawn():
        info = await link_info(m, "to1")
        return not info["connected"] and info["here"] == {"subscriptions": [], "registrations": [], "refused": []}
    await wait_for(withdrawn, 3, "A withdrew what came from B")
    took = time.monotonic() - killed
    with pytest.raises(ApplicationError) as e:
        await caller.call("com.example.on_b")
    assert e.value.error == "wamp.error.no_such_procedure"

    # local routing meanwhile: calls and events on A alone, while the link keeps retrying
    t0 = time.monotonic()
    for i in range(200):
        assert await caller.call("com.example.on_a") == "a"
    assert time.monotonic() - t0 < 5
    pub = await a.client()
    for i in range(50):
        pub.publish(TOPIC, "a-alone")
    await wait_for(lambda: got_a.count("a-alone") == 50, 5, "local events on A")

    # B is back (same directory and port): the link reconnects and mirrors again
    b.start()
    got_b.clear()
    await _setup_b(b, got_b)
    await wait_for(mirrored, 25, "the link back with everything mirrored")
    assert await caller.call("com.example.on_b") == "b"
    pb = await b.client()
    await pb.publish(TOPIC, "from-b", options={"acknowledge": True})
    await pub.publish(TOPIC, "from-a", options={"acknowledge": True})
    await wait_for(lambda: "from-b" in got_a and "from-a" in got_b, 10, "events both ways again")
    await asyncio.sleep(0.3)
    assert got_a.count("from-b") == 1 and got_b.count("from-a") == 1
    info = await link_info(m, "to1")
    assert info["connects"] == 2
    print(f"withdrawn {took:.3f} s after SIGKILL")
    await m.leave()
