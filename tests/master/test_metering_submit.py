"""Submission of usage records (master/metering.py) against the real metering service
(``wampfabric metering-service serve``) and, for the failures a real service does not produce on
demand, against a small HTTP server that answers what the test tells it to.

- accepted: status 2, the service's metering_id, ``sent``; a record the service already holds
  (the master lost the answer) comes back with the first metering_id, counted once;
- a different record under a key the service holds (409 conflict): status 3, never retried;
- unknown key (403), service unreachable, HTTP 500, a 200 that is no receipt: status 1 with the
  reason in ``status_message``, and the next round submits it;
- ``submit.maxerrors`` failed records end a round; an unreachable service ends it at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
import uuid
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.nodes import free_port
from wampfabric.master.metering import Metering, check_settings
from wampfabric.master.schema import MasterNodeUsage
from wampfabric.master.store import MasterStore

sys.path.append(str(Path(__file__).resolve().parent.parent / "metering"))
from meteringsvc import Service  # noqa: E402

S = 10**9
P = 300 * S
T0 = (1_800_000_000 // 300) * 300 * S


def _wampfabric(*args):
    return subprocess.run([str(Path(sys.executable).with_name("wampfabric")), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def master(tmp_path):
    store = MasterStore.open(tmp_path / "m")
    key = Ed25519PrivateKey.generate()
    m = types.SimpleNamespace(store=store, mrealms={}, cbdir=tmp_path / "m", key=key,
                              pub=key.public_key().public_bytes_raw())
    yield m
    store.close()


def _records(master, n: int, mrealm=None, **counters):
    oid = mrealm or uuid.uuid4()
    recs = [MasterNodeUsage(timestamp=T0 + (k + 1) * P, timestamp_from=T0 + k * P, mrealm_id=oid, pubkey=master.pub,
                            seq=1, processed=T0 + (k + 1) * P + S, status=MasterNodeUsage.RECEIVED,
                            nodes=300 + k, controllers=300 + k, **counters)
            for k in range(n)]
    assert len(master.store.add_usage(recs)) == n
    return oid


def _metering(master, url, maxerrors=10):
    m = Metering(master, check_settings({"submit": {"url": url, "maxerrors": maxerrors, "timeout": 3}}),
                 signing_key=master.key)
    import time
    m.clock = time.time_ns  # the service checks 'sent' against its clock
    return m


def _by_status(master):
    out = {}
    for r in master.store.usage():
        out.setdefault(r.status, []).append(r)
    return out


@pytest.fixture
def service(tmp_path):
    svc = Service(tmp_path / "svc").start()
    yield svc
    svc.kill()


async def test_accepted_duplicate_and_conflict(master, service):
    r = _wampfabric("metering-service", "key", "add", master.pub.hex(), "--customer", "acme", "--dir", str(service.dir))
    assert r.returncode == 0, r.stderr
    _records(master, 3)
    metering = _metering(master, f"http://127.0.0.1:{service.port}/submit")
    try:
        assert await metering.submit_pending() is True
        done = _by_status(master)[MasterNodeUsage.SUBMITTED]
        assert len(done) == 3 and all(r.metering_id and r.sent and r.status_message is None for r in done)
        first = {r.timestamp: r.metering_id for r in done}
        # the master lost the answers (e.g. killed): the same records again -> the same ids, not counted twice
        for r in done:
            master.store.update_usage((r.timestamp, r.mrealm_id), status=MasterNodeUsage.RECEIVED, metering_id=None)
        assert await metering.submit_pending() is True
        again = _by_status(master)[MasterNodeUsage.SUBMITTED]
        assert {r.timestamp: r.metering_id for r in again} == first
        assert metering.counters["duplicates"] == 3
        hourly = json.loads(_wampfabric("metering-service", "records", "--hourly", "--output", "json", "--dir",
                                        str(service.dir)).stdout)
        assert sum(h["nodes"] for h in hourly) == 300 + 301 + 302 and sum(h["records"] for h in hourly) == 3
        # a different record under a key the service holds: refused for good
        r0 = again[0]
        master.store.update_usage((r0.timestamp, r0.mrealm_id), status=MasterNodeUsage.RECEIVED, nodes=1)
        assert await metering.submit_pending() is False
        refused = _by_status(master)[MasterNodeUsage.FAILED]
        assert len(refused) == 1 and refused[0].status_message.startswith("HTTP 409: conflict")
        assert metering.counters["conflicts"] == 1
        assert await metering.submit_pending() is True  # nothing left to submit: not retried
    finally:
        await metering.stop()


async def test_unknown_key_then_registered(master, service):
    _records(master, 2)
    metering = _metering(master, f"http://127.0.0.1:{service.port}/submit")
    try:
        assert await metering.submit_pending() is False
        waiting = _by_status(master)[MasterNodeUsage.RECEIVED]
        assert len(waiting) == 2 and all("HTTP 403" in r.status_message for r in waiting)
        assert _wampfabric("metering-service", "key", "add", master.pub.hex(), "--customer", "acme", "--dir",
                           str(service.dir)).returncode == 0
        assert await metering.submit_pending() is True
        assert len(_by_status(master)[MasterNodeUsage.SUBMITTED]) == 2
    finally:
        await metering.stop()


async def test_unreachable_service(master):
    _records(master, 3)
    metering = _metering(master, f"http://127.0.0.1:{free_port()}/submit")
    try:
        assert await metering.submit_pending() is False
        waiting = _by_status(master)[MasterNodeUsage.RECEIVED]
        # the first failure ends the round: one record tried, all still waiting
        assert len(waiting) == 3 and metering.counters["failed"] == 1
        assert "ClientConnectorError" in waiting[0].status_message or "Connect" in waiting[0].status_message
    finally:
        await metering.stop()


class FakeService:
    """Answers every POST with ``self.answer`` = (status, body); counts them."""

    def __init__(self):
        self.answer = (500, b'{"error": "internal", "message": "boom"}')
        self.posts = 0

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/submit", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()

    async def _handle(self, request):
        await request.read()
        self.posts += 1
        status, body = self.answer
        return web.Response(status=status, body=body, content_type="application/json")


async def test_server_errors_and_maxerrors(master):
    _records(master, 5)
    async with FakeService() as fake:
        metering = _metering(master, f"http://127.0.0.1:{fake.port}/submit", maxerrors=2)
        try:
            assert await metering.submit_pending() is False
            assert fake.posts == 2  # maxerrors ended the round
            waiting = _by_status(master)[MasterNodeUsage.RECEIVED]
            assert len(waiting) == 5
            assert sum(1 for r in waiting if r.status_message == f"http://127.0.0.1:{fake.port}/submit: HTTP 500: "
                                                                  f"internal: boom") == 2
            fake.answer = (200, b"not a receipt")
            assert await metering.submit_pending() is False
            assert any("HTTP 200 but not a metering receipt" in (r.status_message or "")
                       for r in _by_status(master)[MasterNodeUsage.RECEIVED])
            mid = uuid.uuid4()
            fake.answer = (200, json.dumps({"metering_id": str(mid), "duplicate": False}).encode())
            assert await metering.submit_pending() is True
            done = _by_status(master)[MasterNodeUsage.SUBMITTED]
            assert len(done) == 5 and all(r.metering_id == mid and r.status_message is None for r in done)
        finally:
            await metering.stop()


async def test_retry_loop_backs_off_and_submits_when_back(master, tmp_path):
    """The submitter's own loop: failed rounds are retried with backoff, and once the service
    answers every record is submitted without anyone calling it."""
    _records(master, 2)
    async with FakeService() as fake:
        metering = _metering(master, f"http://127.0.0.1:{fake.port}/submit")
        metering.submit_settings["period"] = 2  # backoff 2 s at most
        metering._submitter = asyncio.get_running_loop().create_task(metering._submit_loop())
        try:
            for _ in range(100):
                if fake.posts >= 2:
                    break
                await asyncio.sleep(0.05)
            assert fake.posts >= 1 and metering._failed_rounds >= 1
            fake.answer = (200, json.dumps({"metering_id": str(uuid.uuid4()), "duplicate": False}).encode())
            for _ in range(100):
                if len(_by_status(master).get(MasterNodeUsage.SUBMITTED, [])) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(_by_status(master)[MasterNodeUsage.SUBMITTED]) == 2
            assert metering._failed_rounds == 0
        finally:
            await metering.stop()
