"""In-process sessions over the function-call transport (no serialization)."""

from __future__ import annotations

import asyncio

import pytest

from wampfabric.client import ApplicationError, Result
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

REALM = {"name": "realm1", "roles": [{"name": "user", "permissions": [
    {"uri": "com.", "match": "prefix", "allow": {"call": True, "subscribe": True}}]}]}


@pytest.fixture
def router():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    return r


async def test_register_call_publish_subscribe(router):
    callee = await connect_local(router, "realm1", authid="callee")
    caller = await connect_local(router, "realm1", role="user")
    assert callee.details["authrole"] == "trusted" and callee.details["authid"] == "callee"

    async def slow_add(a, b):
        await asyncio.sleep(0.01)
        return a + b

    await callee.register("com.add", slow_add)
    await callee.register("com.multi", lambda: Result(1, 2, x=3))
    await callee.register("com.fail", lambda: (_ for _ in ()).throw(ApplicationError("com.err", 7, k="v")))
    assert await caller.call("com.add", 2, 3) == 5
    r = await caller.call("com.multi")
    assert r.args == [1, 2] and r.kwargs == {"x": 3}
    with pytest.raises(ApplicationError) as e:
        await caller.call("com.fail")
    assert e.value.error == "com.err" and e.value.args_ == [7] and e.value.kwargs == {"k": "v"}
    with pytest.raises(ApplicationError) as e:
        await caller.call("com.none")
    assert e.value.error == "wamp.error.no_such_procedure"

    got = asyncio.get_running_loop().create_future()
    await caller.subscribe("com.topic", lambda *a, **kw: got.set_result((a, kw)))
    pub_id = await callee.publish("com.topic", 1, b"\x00", k=[2], options={"acknowledge": True})
    assert isinstance(pub_id, int)
    assert await asyncio.wait_for(got, 2) == ((1, b"\x00"), {"k": [2]})


async def test_role_permissions_apply_to_local_sessions(router):
    user = await connect_local(router, "realm1", role="user")
    with pytest.raises(ApplicationError) as e:
        await user.register("com.x", lambda: None)
    assert e.value.error == "wamp.error.not_authorized"
    with pytest.raises(ApplicationError) as e:
        await user.publish("com.t", options={"acknowledge": True})
    assert e.value.error == "wamp.error.not_authorized"


async def test_leave_cancels_pending_calls(router):
    callee = await connect_local(router, "realm1")
    caller = await connect_local(router, "realm1")
    started = asyncio.Event()

    async def forever():
        started.set()
        await asyncio.sleep(60)

    await callee.register("com.forever", forever)
    call = asyncio.ensure_future(caller.call("com.forever"))
    await asyncio.wait_for(started.wait(), 2)
    await callee.leave()
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(call, 2)
    assert e.value.error == "wamp.error.canceled"
    # the registration went with the callee
    with pytest.raises(ApplicationError) as e:
        await caller.call("com.forever")
    assert e.value.error == "wamp.error.no_such_procedure"
