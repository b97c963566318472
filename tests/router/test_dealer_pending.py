"""Bounds on pending calls, and the realm's default call timeout.

A callee that falls behind must not let the router hold calls without limit: per caller session
at most ``max_pending_calls`` outstanding calls, per callee session at most
``max_pending_invocations`` outstanding invocations (realm options; defaults 10,000 and 100,000);
over a bound the CALL gets ERROR ``crossbar.error.max_concurrency_reached`` (Crossbar.io's URI for
a callee's concurrency limit).  ``default_call_timeout`` (milliseconds) applies to CALLs without a
timeout of their own, exactly like CALL.Options.timeout (advanced/rpc_call_timeout).

Real node, autobahn-python sessions and raw peers; the router worker's RSS is read with psutil.
"""

from __future__ import annotations

import asyncio
import copy
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions

from support import wamp_raw
from support.nodes import FULL_PERMS, node_config, router_worker, start_node, stop_node
from support.autobahn_client import closing_sessions, connect, uid, w
from wampfabric.protocol.codes import CALL, ERROR, INTERRUPT, INVOCATION, REGISTER, REGISTERED, WELCOME, YIELD

MAX_CONCURRENCY = "crossbar.error.max_concurrency_reached"
BOUNDED, DEADLINE = "bounded", "deadline"
MAX_CALLS, MAX_INVOCATIONS, DEFAULT_TIMEOUT_MS = 20, 30, 300


def pending_config(ports: dict, rs_path: str) -> dict:
    cfg = copy.deepcopy(node_config(ports, rs_path))
    roles = [{"name": "anonymous", "permissions": [FULL_PERMS]}]
    cfg["workers"][0]["realms"] += [
        {"name": BOUNDED, "roles": copy.deepcopy(roles),
         "options": {"max_pending_calls": MAX_CALLS, "max_pending_invocations": MAX_INVOCATIONS}},
        {"name": DEADLINE, "roles": copy.deepcopy(roles), "options": {"default_call_timeout": DEFAULT_TIMEOUT_MS}},
    ]
    return cfg


@pytest.fixture(scope="module")
def bnode():
    n = start_node(pending_config)
    yield n
    stop_node(n)


@pytest.fixture
async def sessions(bnode):
    async def _connect(realm, transport="rawsocket-tcp", serializer="msgpack"):
        return await connect(bnode, transport, serializer, realm=realm)

    async for connect_ in closing_sessions(bnode, _connect):
        yield connect_


async def stalled_callee(connect_, realm, proc):
    """An autobahn-python callee that never answers until ``gate`` is set."""
    callee = await connect_(realm)
    gate = asyncio.Event()
    seen = []

    async def slow(i):
        seen.append(i)
        await gate.wait()
        return i

    await w(callee.register(slow, proc))
    return callee, gate, seen


async def test_caller_bound(sessions):
    proc = f"com.pending.caller.{uid()}"
    _, gate, seen = await stalled_callee(sessions, BOUNDED, proc)
    caller = await sessions(BOUNDED, "websocket", "json")
    calls = [asyncio.ensure_future(caller.call(proc, i)) for i in range(MAX_CALLS + 5)]
    await asyncio.sleep(0.3)
    refused = [c for c in calls if c.done()]
    assert len(refused) == 5
    for c in refused:
        e = c.exception()
        assert isinstance(e, ApplicationError) and e.error == MAX_CONCURRENCY, e
        assert "max_pending_calls 20" in e.args[0]
    assert len(seen) == MAX_CALLS  # the callee never saw the refused calls
    gate.set()
    assert sorted(await w(asyncio.gather(*[c for c in calls if c not in refused]))) == list(range(MAX_CALLS))
    # the outstanding calls are done: the caller may call again
    assert await w(caller.call(proc, 99)) == 99


async def test_callee_bound(sessions):
    proc = f"com.pending.callee.{uid()}"
    _, gate, seen = await stalled_callee(sessions, BOUNDED, proc)
    callers = [await sessions(BOUNDED) for _ in range(3)]
    calls = [asyncio.ensure_future(c.call(proc, i)) for c in callers for i in range(15)]  # each under its bound
    await asyncio.sleep(0.3)
    refused = [c for c in calls if c.done()]
    assert len(refused) == 45 - MAX_INVOCATIONS and len(seen) == MAX_INVOCATIONS
    for c in refused:
        e = c.exception()
        assert e.error == MAX_CONCURRENCY and "max_pending_invocations 30" in e.args[0], e
    gate.set()
    await w(asyncio.gather(*[c for c in calls if c not in refused]))


async def test_caller_leaving_frees_its_slots(sessions):
    proc = f"com.pending.leave.{uid()}"
    _, gate, seen = await stalled_callee(sessions, BOUNDED, proc)
    first = await sessions(BOUNDED)
    calls = [asyncio.ensure_future(first.call(proc, i)) for i in range(MAX_INVOCATIONS)]
    await asyncio.sleep(0.3)
    assert len(seen) == MAX_CALLS  # the caller bound came first
    first.transport.close()
    await asyncio.sleep(0.3)
    second = await sessions(BOUNDED)
    fut = asyncio.ensure_future(second.call(proc, "next"))
    await asyncio.sleep(0.3)
    assert seen[-1] == "next"
    gate.set()
    assert await w(fut) == "next"
    for c in calls:
        c.cancel()


def _raw(node, realm, features) -> wamp_raw.RawSocketPeer:
    roles = {r: {"features": {f: True for f in features.get(r, ())}} for r in ("caller", "callee")}
    p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer="msgpack")
    reply = p.hello(realm, {"roles": roles})
    assert reply[0] == WELCOME, reply
    return p


def _quiet(p, t=0.3):
    try:
        m = p.recv(t)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {m!r}")


def test_default_call_timeout(bnode):
    """A CALL without a timeout gets the realm's; the caller gets wamp.error.timeout, a callee with
    call_canceling an INTERRUPT; the callee's late YIELD goes nowhere."""
    callee = _raw(bnode, DEADLINE, {"callee": ["call_canceling"]})
    caller = _raw(bnode, DEADLINE, {"caller": ["call_canceling"]})
    try:
        proc = f"com.pending.timeout.{uid()}"
        assert callee.request([REGISTER, callee.next_id(), {}, proc])[0] == REGISTERED
        req = caller.next_id()
        t0 = time.monotonic()
        caller.send([CALL, req, {}, proc, [1]])
        inv = callee.recv()
        assert inv[0] == INVOCATION
        err = caller.recv(5)
        assert err[:5] == [ERROR, CALL, req, {}, "wamp.error.timeout"], err
        assert time.monotonic() - t0 >= DEFAULT_TIMEOUT_MS / 1000 * 0.9
        intr = callee.recv(5)
        assert intr[0] == INTERRUPT and intr[1] == inv[1] and intr[2].get("mode") == "killnowait", intr
        callee.send([YIELD, inv[1], {}, ["late"]])
        _quiet(caller)
    finally:
        callee.close()
        caller.close()


async def test_call_timeout_option_wins_over_realm_default(sessions):
    proc = f"com.pending.own.{uid()}"
    callee, gate, seen = await stalled_callee(sessions, DEADLINE, proc)
    caller = await sessions(DEADLINE, "websocket", "cbor")
    fut = asyncio.ensure_future(caller.call(proc, 7, options=CallOptions(timeout=10_000)))  # sent as is: ms on the wire
    await asyncio.sleep(DEFAULT_TIMEOUT_MS / 1000 * 2)
    assert not fut.done()
    gate.set()
    assert await w(fut) == 7
    # without an own timeout, the realm's applies
    gate.clear()
    with pytest.raises(ApplicationError) as ei:
        await w(caller.call(proc, 8))
    assert ei.value.error == "wamp.error.timeout"
    gate.set()


async def test_no_default_timeout_on_other_realms(sessions):
    proc = f"com.pending.none.{uid()}"
    _, gate, _ = await stalled_callee(sessions, BOUNDED, proc)
    caller = await sessions(BOUNDED)
    fut = asyncio.ensure_future(caller.call(proc, 1))
    await asyncio.sleep(DEFAULT_TIMEOUT_MS / 1000 * 2)
    assert not fut.done()
    gate.set()
    assert await w(fut) == 1


async def test_router_rss_bounded_with_a_stalled_callee(bnode, sessions):
    """One caller floods a callee that never answers: only MAX_CALLS calls are held by the router,
    the rest are refused at once, so the router worker's memory does not grow with the flood."""
    proc = f"com.pending.flood.{uid()}"
    _, gate, seen = await stalled_callee(sessions, BOUNDED, proc)
    # fill the bound with another caller first: every flood CALL beyond is refused
    filler = await sessions(BOUNDED)
    held = [asyncio.ensure_future(filler.call(proc, i)) for i in range(MAX_CALLS)]
    await asyncio.sleep(0.3)
    worker = router_worker(bnode)
    rss0 = worker.memory_info().rss
    # the callee has MAX_INVOCATIONS - MAX_CALLS free slots left for the flood, the rest is refused
    counts = await asyncio.to_thread(_flood_expecting, bnode, proc, 100_000)
    rss1 = worker.memory_info().rss
    assert counts[MAX_CONCURRENCY] == 100_000 - (MAX_INVOCATIONS - MAX_CALLS)
    assert len(seen) == MAX_INVOCATIONS
    growth = rss1 - rss0
    assert growth < 16 * 1024 * 1024, f"router worker RSS grew by {growth / 2**20:.1f} MiB"
    gate.set()
    await w(asyncio.gather(*held))
    bnode.assert_alive()


def _flood_expecting(node, proc, n, batch=2000) -> dict:
    """Send ``n`` CALLs from one raw caller in batches, reading every answer; the first
    answers may be INVOCATION-bound (held, answered later): they are not waited for."""
    caller = _raw(node, BOUNDED, {"caller": []})
    counts = {MAX_CONCURRENCY: 0}
    try:
        sent = 0
        while sent < n:
            k = min(batch, n - sent)
            for _ in range(k):
                caller.send([CALL, caller.next_id(), {}, proc, ["x" * 100]])
            sent += k
            expect = k if sent > batch else k - (MAX_INVOCATIONS - MAX_CALLS)
            for _ in range(expect):
                m = caller.recv(10)
                assert m[0] == ERROR and m[4] == MAX_CONCURRENCY, m
                counts[MAX_CONCURRENCY] += 1
    finally:
        caller.close()
    return counts


async def test_shared_registration_full_callee_is_passed_over(sessions):
    """roundrobin over two callees: when one has MAX_INVOCATIONS outstanding, calls go to the other."""
    proc = f"com.pending.shared.{uid()}"
    gates, seen = [], []
    for name in ("a", "b"):
        callee = await sessions(BOUNDED)
        gate = asyncio.Event()

        async def slow(i, _gate=gate, _name=name):
            seen.append(_name)
            await _gate.wait()
            return _name

        await w(callee.register(slow, proc, options=RegisterOptions(invoke="roundrobin")))
        gates.append(gate)
    callers = [await sessions(BOUNDED) for _ in range(3)]
    gates[1].set()  # b answers at once, a never (until the end)
    calls = [asyncio.ensure_future(c.call(proc, i)) for c in callers for i in range(MAX_CALLS)]  # 30 for each
    for _ in range(250):
        if sum(c.done() for c in calls) >= 3 * MAX_CALLS - MAX_INVOCATIONS:
            break
        await asyncio.sleep(0.02)
    assert seen.count("a") == MAX_INVOCATIONS  # a is full now
    more = [asyncio.ensure_future(callers[0].call(proc, i)) for i in range(10)]  # 5 would be a's turn
    assert await w(asyncio.gather(*more)) == ["b"] * 10
    assert seen.count("a") == MAX_INVOCATIONS
    gates[0].set()
    assert [await w(c) for c in calls].count("a") == MAX_INVOCATIONS


@pytest.mark.parametrize("key,value,message", [
    ("max_pending_calls", 0, "must be >= 1"),
    ("max_pending_invocations", -5, "must be >= 1"),
    ("default_call_timeout", -1, "must be >= 0"),
    ("max_pending_calls", "many", "int"),
    ("strict_progressive_call_results", "yes", "bool"),
])
def test_realm_options_checked(key, value, message):
    from wampfabric.config.base import ConfigError
    from wampfabric.config.realms import check_realm

    with pytest.raises(ConfigError) as ei:
        check_realm({"name": "realm1", "options": {key: value}}, "$.workers[0].realms[0]")
    text = str(ei.value)
    assert f"$.workers[0].realms[0].options.{key}" in text and message in text, text


def test_realm_options_accepted():
    from wampfabric.config.realms import check_realm

    check_realm({"name": "realm1", "options": {"max_pending_calls": 1, "max_pending_invocations": 5,
                                               "default_call_timeout": 0, "strict_progressive_call_results": True}},
                "$.workers[0].realms[0]")
