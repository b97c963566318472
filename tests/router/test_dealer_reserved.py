"""The router's namespaces against pattern registrations.

``wamp.*`` is reserved for the router (its meta API) and ``crossbar.*`` for the node: an application
session cannot register ``wamp.*`` itself, and a pattern registration that covers those namespaces
from outside (prefix ``""``, prefix ``"wamp"``, wildcard ``".session.get"``) must not answer other
sessions' calls there either (else it poses as the router for every ``wamp.*`` procedure the router
does not implement).  Such calls get ``wamp.error.no_such_procedure``; the pattern registration keeps
serving every other URI.  A pattern inside the namespace (``crossbar.myapp.``, which Crossbar.io
lets applications register, as it lets them register exact ``crossbar.*`` URIs) is served.

Subscriptions: events on ``wamp.*`` topics are published by the router itself (application
sessions cannot publish there), so a pattern subscription covering them (``""``) receives them, as
on Crossbar.io: that is what existing applications see, and the role's permission for the pattern
already covers ``wamp.*`` (a permission must cover a pattern entirely).

autobahn-python sessions on the test node (realm1, anonymous may register/call/subscribe anything).
"""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.types import RegisterOptions, SubscribeOptions

from support.autobahn_client import expect_error, uid, w

NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"


async def register_spy(session, uri, match):
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs.get("details").procedure)
        return "poached"

    reg = await w(session.register(spy, uri, options=RegisterOptions(match=match, details_arg="details")))
    return reg, calls


@pytest.mark.parametrize("pattern", ["", "wamp", "wam", "crossbar"])
async def test_prefix_registration_does_not_answer_reserved_calls(client, pattern):
    attacker = await client("rawsocket-tcp", "msgpack")
    victim = await client("websocket", "json")
    reg, calls = await register_spy(attacker, pattern, "prefix")
    try:
        for proc in ("wamp.session.not_implemented", f"wamp.x{uid()}.get", "crossbar.get_status",
                     f"crossbar.worker.w{uid()}.get_status"):
            if not proc.startswith(pattern):
                continue
            await expect_error(victim.call(proc), NO_SUCH_PROCEDURE)
        # the router's own procedures are still the router's
        assert isinstance(await w(victim.call("wamp.session.count")), int)
        assert calls == []
        # every other URI still reaches the pattern registration
        if pattern == "":
            assert await w(victim.call(f"com.app.{uid()}")) == "poached"
            assert len(calls) == 1
    finally:
        await w(reg.unregister())


async def test_wildcard_registration_does_not_answer_reserved_calls(client):
    attacker = await client("websocket", "cbor")
    victim = await client("rawsocket-unix", "json")
    reg, calls = await register_spy(attacker, ".session.not_there", "wildcard")
    reg2, calls2 = await register_spy(attacker, f".worker.w{uid()[:4]}.stop", "wildcard")
    try:
        await expect_error(victim.call("wamp.session.not_there"), NO_SUCH_PROCEDURE)
        assert await w(victim.call("com.session.not_there")) == "poached"
        worker_proc = "crossbar" + reg2.procedure
        await expect_error(victim.call(worker_proc), NO_SUCH_PROCEDURE)
        assert calls == ["com.session.not_there"] and calls2 == []
    finally:
        await w(reg.unregister())
        await w(reg2.unregister())


async def test_pattern_inside_crossbar_namespace_is_served(client):
    app = await client("websocket", "msgpack")
    caller = await client("rawsocket-tcp", "cbor")
    base = f"crossbar.myapp{uid()}."
    reg, calls = await register_spy(app, base, "prefix")
    try:
        assert await w(caller.call(base + "status")) == "poached"
        assert calls == [base + "status"]
    finally:
        await w(reg.unregister())


async def test_registration_match_meta_agrees(client):
    """wamp.registration.match names the registration a call would reach: none for a reserved URI."""
    attacker = await client("websocket", "json")
    reg, _ = await register_spy(attacker, "", "prefix")
    try:
        assert await w(attacker.call("wamp.registration.match", "wamp.not.there")) is None
        assert await w(attacker.call("wamp.registration.match", f"com.app.{uid()}")) == reg.id
    finally:
        await w(reg.unregister())


async def test_prefix_subscription_receives_meta_events(client):
    """Decision (as Crossbar.io): router-published wamp.* events reach an application's "" subscription."""
    watcher = await client("websocket", "json")
    got = []
    sub = await w(watcher.subscribe(lambda *a, **kw: got.append(kw["details"].topic), "",
                                    options=SubscribeOptions(match="prefix", details_arg="details")))
    try:
        other = await client("rawsocket-tcp", "msgpack")
        for _ in range(100):
            if "wamp.session.on_join" in got:
                break
            await asyncio.sleep(0.02)
        assert "wamp.session.on_join" in got
        await other.shutdown()
    finally:
        await w(sub.unsubscribe())
