"""Dynamic authorizers, the per-session authorization cache and role changes at
runtime, on an in-process router (the management API drives the same
``Realm.add_role`` / ``remove_role``)."""

from __future__ import annotations

import asyncio

import pytest

from wampfabric.client import ApplicationError
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


async def until(cond, timeout: float = 5.0):
    """Let the loop run until ``cond()`` holds (no fixed sleeps: the order of events decides)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


class Asked(list):
    """What the authorizer was asked, and ``gate``: it answers about com.slow.* once that is set."""

    gate: asyncio.Event


@pytest.fixture
async def setup():
    router = Router()
    realm = router.start_realm({"name": "realm1", "roles": [
        {"name": "backend", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]},
        {"name": "dyn", "authorizer": "com.authz.authorize"},
    ]})
    backend = await connect_local(router, "realm1", role="backend")
    asked = Asked()
    gate = asked.gate = asyncio.Event()  # the authorizer answers about com.slow.* once the test sets it

    async def slow_answer():
        await gate.wait()
        return {"allow": True, "cache": True}

    def authorize(session, uri, action, options):
        asked.append((session["authrole"], uri, action))
        if uri.startswith("com.forbidden"):
            return False
        if uri.startswith("com.slow"):
            return slow_answer()
        return {"allow": True, "disclose": uri.startswith("com.disclose"), "cache": uri.startswith("com.cached")}

    await backend.register("com.authz.authorize", authorize)
    await backend.register("com.app.echo", lambda x: x)
    await backend.register("com.cached.echo", lambda x: x)
    await backend.register("com.forbidden.echo", lambda x: x)
    await backend.register("com.disclose.who", lambda details=None: details.get("caller_authrole"), details=True)
    user = await connect_local(router, "realm1", role="dyn")
    return router, realm, backend, user, asked


async def test_authorizer_allows_and_denies(setup):
    router, realm, backend, user, asked = setup
    assert await user.call("com.app.echo", 1) == 1
    with pytest.raises(ApplicationError) as e:
        await user.call("com.forbidden.echo", 1)
    assert e.value.error == "wamp.error.not_authorized"
    assert ("dyn", "com.app.echo", "call") in asked and ("dyn", "com.forbidden.echo", "call") in asked
    # the authorizer's disclose answer applies
    assert await user.call("com.disclose.who") == "dyn"


async def test_uncached_answers_ask_again_cached_ones_do_not(setup):
    router, realm, backend, user, asked = setup
    for _ in range(3):
        await user.call("com.app.echo", 1)
        await user.call("com.cached.echo", 1)
    assert asked.count(("dyn", "com.app.echo", "call")) == 3
    assert asked.count(("dyn", "com.cached.echo", "call")) == 1


async def test_message_order_is_kept_while_authorizer_is_asked(setup):
    router, realm, backend, user, asked = setup
    got = []
    await backend.subscribe("com.slow.topic", lambda n: got.append(n))
    await backend.subscribe("com.app.topic", lambda n: got.append(n))
    # the first publish waits for the held authorizer; the second must not overtake it
    user.publish("com.slow.topic", 1)
    user.publish("com.app.topic", 2)
    await until(lambda: ("dyn", "com.slow.topic", "publish") in asked)
    for _ in range(20):  # the loop runs on: nothing is delivered while the first one waits
        await asyncio.sleep(0)
    assert got == []
    asked.gate.set()
    await until(lambda: len(got) == 2)
    assert got == [1, 2]


async def test_role_change_invalidates_cache_and_applies_at_once(setup):
    router, realm, backend, user, asked = setup
    await user.call("com.cached.echo", 1)
    assert asked.count(("dyn", "com.cached.echo", "call")) == 1
    # replace the dynamic role by a static one that allows only com.app.
    realm.add_role({"name": "dyn", "permissions": [{"uri": "com.app.", "match": "prefix", "allow": {"call": True}}]})
    with pytest.raises(ApplicationError) as e:
        await user.call("com.cached.echo", 1)
    assert e.value.error == "wamp.error.not_authorized"
    assert await user.call("com.app.echo", 5) == 5
    # back to the authorizer: the old cached answer is gone, it is asked again
    realm.add_role({"name": "dyn", "authorizer": "com.authz.authorize"})
    await user.call("com.cached.echo", 1)
    assert asked.count(("dyn", "com.cached.echo", "call")) == 2
    # stopping the role denies everything to its sessions
    realm.remove_role("dyn")
    with pytest.raises(ApplicationError) as e:
        await user.call("com.app.echo", 1)
    assert e.value.error == "wamp.error.not_authorized"


async def test_failing_authorizer_denies(setup):
    router, realm, backend, user, asked = setup
    realm.add_role({"name": "dyn", "authorizer": "com.authz.missing"})
    with pytest.raises(ApplicationError) as e:
        await user.call("com.app.echo", 1)
    assert e.value.error == "wamp.error.not_authorized"


async def test_role_change_while_authorizer_is_asked_decides_under_the_new_role(setup):
    router, realm, backend, user, asked = setup
    await backend.register("com.slow.echo", lambda x: x)
    call = asyncio.ensure_future(user.call("com.slow.echo", 1))  # the authorizer is held
    await until(lambda: ("dyn", "com.slow.echo", "call") in asked)
    realm.add_role({"name": "dyn", "permissions": [{"uri": "com.app.", "match": "prefix", "allow": {"call": True}}]})
    asked.gate.set()  # the authorizer now allows, but it was asked under the old role
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(call, 2)  # answered (denied by the new role), not lost
    assert e.value.error == "wamp.error.not_authorized"
    assert await user.call("com.app.echo", 3) == 3
