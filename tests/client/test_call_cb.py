"""``ClientSession.call_cb`` / ``cancel_call``: a call answered through callbacks, without a
future or a task (the HTTP bridge's caller uses it), against a real in-process router: the
result shapes ``call`` returns, errors, cancelling (the callee is interrupted, no callback
runs), the session going away, a session that is not connected, and a failing callback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wampfabric.client.session import ApplicationError, ClientSession, Result
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

REALM = {"name": "realm1", "roles": []}


@pytest.fixture
def router():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    return r


class Answers:
    """Collects what the callbacks get; ``next()`` waits for the next one."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.count = 0

    def on_result(self, value):
        self.count += 1
        self.queue.put_nowait(("result", value))

    def on_error(self, exc):
        self.count += 1
        self.queue.put_nowait(("error", exc))

    async def next(self):
        return await asyncio.wait_for(self.queue.get(), 5)


async def test_results_arrive_through_the_callback_in_calls_shapes(router):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")
    await callee.register("com.echo", lambda *a, **kw: Result(*a, **kw) if (kw or len(a) != 1) else a[0])
    answers = Answers()
    for args, kwargs in (([7], {}), ([1, [2]], {}), ([], {"k": "v"}), ([], {})):
        req = caller.call_cb("com.echo", args, kwargs, None, answers.on_result, answers.on_error)
        assert isinstance(req, int)
        assert answers.count == 0  # never before call_cb returns
    got = [await answers.next() for _ in range(4)]
    assert got[0] == ("result", 7)
    assert got[1][0] == "result" and isinstance(got[1][1], Result) and got[1][1].args == [1, [2]]
    assert got[2][0] == "result" and got[2][1].args == [] and got[2][1].kwargs == {"k": "v"}
    assert got[3] == ("result", None)
    # the same values call() gives
    assert await caller.call("com.echo", 7) == 7
    assert caller._pending == {}


async def test_errors_arrive_through_the_error_callback(router):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")

    def refuse(x):
        raise ApplicationError("com.error.refused", "no", x, why="test")

    await callee.register("com.refuse", refuse)
    answers = Answers()
    caller.call_cb("com.refuse", [5], None, None, answers.on_result, answers.on_error)
    caller.call_cb("com.nobody", [], None, {}, answers.on_result, answers.on_error)
    got = [await answers.next() for _ in range(2)]
    assert {kind for kind, _ in got} == {"error"}
    errors = {exc.error: exc for _, exc in got}
    assert errors["com.error.refused"].args_ == ["no", 5] and errors["com.error.refused"].kwargs == {"why": "test"}
    assert "wamp.error.no_such_procedure" in errors
    # the router's call timeout (options are passed on)
    slow_started = asyncio.Event()

    async def slow():
        slow_started.set()
        await asyncio.sleep(30)

    await callee.register("com.slow", slow)
    caller.call_cb("com.slow", [], None, {"timeout": 100}, answers.on_result, answers.on_error)
    kind, exc = await answers.next()
    assert kind == "error" and exc.error == "wamp.error.timeout"


async def test_cancel_call_interrupts_the_callee_and_drops_the_callbacks(router):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")
    started, interrupted = asyncio.Event(), asyncio.Event()

    async def wait_long():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await callee.register("com.wait", wait_long)
    answers = Answers()
    req = caller.call_cb("com.wait", [], None, None, answers.on_result, answers.on_error)
    await asyncio.wait_for(started.wait(), 5)
    assert caller.cancel_call(req) is True
    await asyncio.wait_for(interrupted.wait(), 5)
    assert caller.cancel_call(req) is False  # no longer pending
    await asyncio.sleep(0.1)  # the router's ERROR canceled arrives and is dropped
    assert answers.count == 0
    # the session still works
    await callee.register("com.ok", lambda: "ok")
    assert await caller.call("com.ok") == "ok"


async def test_the_session_going_away_fails_pending_calls(router):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")
    started = asyncio.Event()

    async def wait_long():
        started.set()
        await asyncio.sleep(30)

    await callee.register("com.wait", wait_long)
    answers = Answers()
    req = caller.call_cb("com.wait", [], None, None, answers.on_result, answers.on_error)
    await asyncio.wait_for(started.wait(), 5)
    caller.transport.close()
    kind, exc = await answers.next()
    assert kind == "error" and exc.error == "wamp.error.canceled"
    assert caller.cancel_call(req) is False
    assert answers.count == 1


async def test_a_session_that_is_not_connected_raises_and_calls_nothing():
    s = ClientSession()
    answers = Answers()
    with pytest.raises(ApplicationError) as e:
        s.call_cb("com.x", [], None, None, answers.on_result, answers.on_error)
    assert e.value.error == "wamp.error.canceled"
    assert s._pending == {} and answers.count == 0


async def test_a_failing_callback_is_logged_and_the_session_goes_on(router, caplog):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")
    await callee.register("com.one", lambda: 1)

    def broken(value):
        raise RuntimeError("callback bug")

    answers = Answers()
    with caplog.at_level(logging.ERROR, logger="wampfabric.client"):
        caller.call_cb("com.one", [], None, None, broken, answers.on_error)
        caller.call_cb("com.one", [], None, None, answers.on_result, answers.on_error)
        assert await answers.next() == ("result", 1)
    assert "call result callback broken failed" in caplog.text
    assert await caller.call("com.one") == 1
