"""Router-to-router links carrying RPC: a procedure registered on one router is callable on the
other (registered there by the link, withdrawn with it); results, errors, progressive results,
cancel, timeouts and caller disclosure across the link."""

from __future__ import annotations

import asyncio

import pytest

from rlinknodes import link_info, links_connected, make_nodes, mesh, wait_for

from wampfabric.client.session import ApplicationError, Result


async def _registered(m, link_id, side, uri, present=True):
    async def ok():
        info = await link_info(m, link_id)
        return (uri in info[side]["registrations"]) == present
    await wait_for(ok, 20, f"{uri} {'in' if present else 'gone from'} {link_id} {side}")


async def test_calls_both_ways_errors_progress_cancel_disclosure(started):
    links = {0: [1]}
    a, b = started(make_nodes(2, links))
    await links_connected([a, b], links)
    m = await a.manage()
    callee_a, callee_b = await a.client(), await b.client()
    seen = []

    def add(x, y, details):
        seen.append(details)
        return x + y

    await callee_a.register("com.example.add", add, details=True)
    await callee_b.register("com.example.mul", lambda x, y: Result(x * y, product=True))

    def fail():
        raise ApplicationError("com.example.error.nope", "no", code=7)
    await callee_b.register("com.example.fail", fail)

    async def slow(n, progress):
        for i in range(n):
            if progress:
                progress(i)
            await asyncio.sleep(0.02)
        return "done"
    await callee_a.register("com.example.slow", slow, progress=True)
    cancelled = asyncio.Event()

    async def forever():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
    await callee_a.register("com.example.forever", forever)

    await _registered(m, "to1", "there", "com.example.add")  # A's procedures registered on B
    await _registered(m, "to1", "there", "com.example.slow")
    await _registered(m, "to1", "there", "com.example.forever")
    await _registered(m, "to1", "here", "com.example.mul")  # B's procedures registered on A
    await _registered(m, "to1", "here", "com.example.fail")

    caller_b, caller_a = await b.client(), await a.client()
    assert await caller_b.call("com.example.add", 2, 3) == 5
    ff = seen[-1]["forward_for"]
    assert ff == [{"session": caller_b.session_id, "authid": caller_b.details["authid"], "authrole": "user"}]
    r = await caller_a.call("com.example.mul", 4, 5)
    assert r.args == [20] and r.kwargs == {"product": True}
    with pytest.raises(ApplicationError) as e:
        await caller_a.call("com.example.fail")
    assert e.value.error == "com.example.error.nope" and e.value.args_ == ["no"] and e.value.kwargs == {"code": 7}
    progress = []
    assert await caller_b.call("com.example.slow", 4, on_progress=lambda i: progress.append(i)) == "done"
    assert progress == [0, 1, 2, 3]
    task = asyncio.ensure_future(caller_b.call("com.example.forever"))
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)  # the cancel went over the link to the callee on A

    # a timeout: the caller on B gets the timeout error, and the callee on A is interrupted (B's
    # dealer interrupts the link's invocation, which cancels the call on A; the timeout also went along)
    cancelled.clear()
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(ApplicationError) as e:
        await caller_b.call("com.example.forever", options={"timeout": 300})
    assert e.value.error == "wamp.error.timeout", e.value.error
    assert asyncio.get_running_loop().time() - t0 < 3
    await asyncio.wait_for(cancelled.wait(), 5)

    # withdrawn with the registration
    await callee_a.leave()
    await _registered(m, "to1", "there", "com.example.add", present=False)
    with pytest.raises(ApplicationError) as e:
        await caller_b.call("com.example.add", 1, 1)
    assert e.value.error == "wamp.error.no_such_procedure"
    await m.leave()


async def test_calls_in_a_full_mesh_of_five(started):
    links = mesh(5)
    nodes = started(make_nodes(5, links))
    await links_connected(nodes, links)
    callee = await nodes[2].client()
    calls = []
    await callee.register("com.example.where", lambda details: calls.append(details) or "n2", details=True)
    callers = [await n.client() for n in nodes]

    async def everywhere():
        for c in callers:
            try:
                await c.call("com.example.where")
            except ApplicationError:
                return False
        return True
    await wait_for(everywhere, 20, "the procedure callable on every router")
    calls.clear()
    for c in callers:
        assert await c.call("com.example.where") == "n2"
    assert len(calls) == 5
    # one hop: a call from another router carries one forward_for entry, a local one none
    assert sorted(len(d.get("forward_for", [])) for d in calls) == [0, 1, 1, 1, 1]
