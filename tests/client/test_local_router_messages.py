"""In-process sessions receive the router's own EVENT lists on a trusted path
(``ClientSession.on_router_message``, used by ``transport.local``): the events reach their
handlers exactly as through the validating path (positional and keyword arguments, disclosed
publisher, coroutine handlers, several handlers, a failing handler), while everything that is
not an established session's plain EVENT still goes through the full validation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wampfabric.client.session import ClientSession
from wampfabric.protocol.codes import ABORT, EVENT
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

REALM = {"name": "realm1", "roles": [{"name": "node", "permissions": [
    {"uri": "com.", "match": "prefix", "allow": {"publish": True}, "disclose": {"publisher": True}}]}]}


@pytest.fixture
def router():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    return r


async def test_router_events_reach_local_handlers_with_payload_and_details(router):
    sub = await connect_local(router, "realm1", authid="sub")
    pub = await connect_local(router, "realm1", role="node", authid="node7")
    plain, detailed, done = [], [], asyncio.Event()

    async def coro_handler(*args, details=None, **kwargs):
        await asyncio.sleep(0)
        detailed.append((args, kwargs, details))
        if len(detailed) == 3:
            done.set()

    def failing(*args, **kwargs):
        raise RuntimeError("handler bug")

    await sub.subscribe("com.t", lambda *a, **kw: plain.append((a, kw)))
    await sub.subscribe("com.t", failing)
    await sub.subscribe("com.t", coro_handler, details=True)
    await sub.subscribe("com.", lambda *a, **kw: plain.append(("prefix", a, kw)), options={"match": "prefix"})

    ack = {"acknowledge": True}
    await pub.publish("com.t", 1, [2], options=ack)
    await pub.publish("com.t", k={"x": 1}, options=ack)
    await pub.publish("com.t", options=ack)
    await asyncio.wait_for(done.wait(), 2)

    assert [p for p in plain if p[0] != "prefix"] == [((1, [2]), {}), ((), {"k": {"x": 1}}), ((), {})]
    assert [p[1:] for p in plain if p[0] == "prefix"] == [((1, [2]), {}), ((), {"k": {"x": 1}}), ((), {})]
    assert [(a, kw) for a, kw, _ in detailed] == [((1, [2]), {}), ((), {"k": {"x": 1}}), ((), {})]
    for _, _, details in detailed:
        assert details["publisher_authid"] == "node7" and details["publisher_authrole"] == "node"
        assert details["publisher"] == pub.session_id


async def test_an_event_before_the_session_is_established_is_still_a_protocol_violation():
    sent = []

    class Transport:
        def send_message(self, msg):
            sent.append(msg)

        def close(self):
            pass

    s = ClientSession(Transport())
    s.on_router_message([EVENT, 1, 2, {}, [1]])
    assert s.close_reason[0] == "wamp.error.protocol_violation"
    assert sent and sent[0][0] == ABORT and "EVENT before the session was established" in sent[0][1]["message"]


async def test_the_validating_path_still_refuses_a_malformed_event(router, caplog):
    s = await connect_local(router, "realm1", authid="sub")
    with caplog.at_level(logging.WARNING, logger="wampfabric.client"):
        s.on_message([EVENT, "not an id", 2, {}])
    assert s.close_reason[0] == "wamp.error.protocol_violation"
