"""The bridge's service session follows its realm (503 while the realm is not running, joined
when it is, joined again after a restart), and the long-poll service's bound on open
transports: a router and a ``web`` transport in this process, requests over real sockets."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from support.nodes import FULL_PERMS, free_port
from wampfabric.personality import Personality
from wampfabric.router.realm import Router
from wampfabric.transport.listeners import WebRouterTransport
from wampfabric.transport.local import connect_local
from wampfabric.web import longpoll

REALM = {"name": "later", "roles": [{"name": "bridge", "permissions": [FULL_PERMS]}]}


@pytest.fixture
async def web(tmp_path):
    router = Router()
    port = free_port()
    cfg = {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
           "paths": {"pub": {"type": "publisher", "realm": "later", "role": "bridge"},
                     "call": {"type": "caller", "realm": "later", "role": "bridge"},
                     "lp": {"type": "longpoll"}}}
    t = WebRouterTransport(router, "t1", cfg, tmp_path, Personality)
    await t.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as h:
        yield router, f"http://127.0.0.1:{port}", h
    await t.stop()


async def post(h, url, payload) -> tuple[int, dict]:
    async with h.post(url, data=json.dumps(payload), headers={"Content-Type": "application/json"}) as r:
        return r.status, json.loads(await r.read())


async def test_service_session_follows_the_realm(web):
    router, base, h = web
    status, answer = await post(h, f"{base}/pub", {"topic": "com.example.t", "args": [1]})
    assert status == 503 and "realm 'later' is not running" in answer["error"]

    router.start_realm(REALM)
    events = []
    sub = await connect_local(router, "later", role="bridge")
    await sub.subscribe("com.example.t", lambda *a: events.append(a))
    await sub.register("com.example.add", lambda a, b: a + b)
    status, answer = await post(h, f"{base}/pub", {"topic": "com.example.t", "args": [1]})
    assert status == 200 and isinstance(answer["id"], int)
    status, answer = await post(h, f"{base}/call", {"procedure": "com.example.add", "args": [1, 2]})
    assert (status, answer) == (200, {"args": [3]})
    await asyncio.sleep(0.05)
    assert events == [(1,)]

    router.stop_realm("later")  # every session of the realm is told GOODBYE, the services' too
    await asyncio.sleep(0.05)
    status, answer = await post(h, f"{base}/pub", {"topic": "com.example.t", "args": [2]})
    assert status == 503, answer

    router.start_realm(REALM)
    sub = await connect_local(router, "later", role="bridge")
    await sub.subscribe("com.example.t", lambda *a: events.append(a))
    status, answer = await post(h, f"{base}/pub", {"topic": "com.example.t", "args": [3]})
    assert status == 200, answer
    await asyncio.sleep(0.05)
    assert events == [(1,), (3,)]


async def test_role_missing_on_the_realm_is_503(web):
    router, base, h = web
    router.start_realm({"name": "later", "roles": []})
    status, answer = await post(h, f"{base}/pub", {"topic": "com.example.t"})
    assert status == 503 and "role 'bridge'" in answer["error"], answer


async def test_longpoll_transports_are_bounded(web, monkeypatch):
    _, base, h = web
    monkeypatch.setattr(longpoll, "MAX_TRANSPORTS", 3)
    tids = []
    for _ in range(3):
        status, answer = await post(h, f"{base}/lp/open", {"protocols": ["wamp.2.json"]})
        assert status == 200
        tids.append(answer["transport"])
    async with h.post(f"{base}/lp/open", data=b'{"protocols": ["wamp.2.json"]}') as r:
        assert r.status == 503 and b"too many" in await r.read()
    async with h.post(f"{base}/lp/{tids[0]}/close") as r:
        assert r.status == 204
    status, _ = await post(h, f"{base}/lp/open", {"protocols": ["wamp.2.json"]})
    assert status == 200
