"""Usage metering end to end on one machine: ``wampfabric metering-service serve`` with the master's
key registered (``key add <master>/key.pub``), ``wampfabric master start`` with 5 s intervals and
CROSSBAR_METERING_URL, two ``wampfabric edge start`` nodes (heartbeats every second; edge1 runs a
router that an autobahn-python client calls through).

- records are aggregated, submitted and acknowledged (status 2, the service's metering_id), and
  their numbers are right (node-seconds = controller-seconds, the calls counted once);
- the service stopped for a while: records wait at status 1 with a status message, and every one
  arrives exactly once after it is started again;
- the master SIGKILLed while a submission is in flight (the service has stored the record, the
  master has not heard it): after its restart it submits the record again, the service recognises
  it (same metering_id) and counts nothing twice: the service's hourly sums equal the master's
  records.

Between the master and the service a forwarding proxy in this test process can hold back one
answer (so that the kill lands inside the submission) and drops connections while the service is
down (as an unreachable service does)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from fabricnodes import WfEdge
from masternode import Key, Master, cli, fabric_connect
from support.autobahn_client import connect, w
from support.nodes import FULL_PERMS, free_port

sys.path.append(str(Path(__file__).resolve().parent.parent / "metering"))
from meteringsvc import Service  # noqa: E402

pytestmark = pytest.mark.timeout(300)

PERIOD = 5  # s per usage record
COUNTERS = ("count", "nodes", "controllers", "routers", "containers", "guests", "proxies", "hostmonitors",
            "marketmakers", "sessions", "msgs_call", "msgs_yield", "msgs_invocation", "msgs_result", "msgs_error",
            "msgs_publish", "msgs_published", "msgs_event", "msgs_register", "msgs_registered", "msgs_subscribe",
            "msgs_subscribed")


class HoldingProxy:
    """Forwards POSTs to ``target``; ``hold_next()`` keeps the next 200 answer from the master
    (the service has stored the record by then); while the service is down it drops the connection."""

    def __init__(self, target: str):
        self.target = target
        self.port = free_port()
        self.held = threading.Event()
        self._armed = False
        self.forwarded = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/submit"

    def hold_next(self) -> None:
        self.held.clear()
        self._armed = True

    async def _start(self):
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/submit", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request):
        body = await request.read()
        try:
            async with self._http.post(self.target, data=body,
                                       headers={"Content-Type": request.headers.get("Content-Type", "")}) as r:
                data, status = await r.read(), r.status
        except aiohttp.ClientError:
            request.transport.close()  # the service is down: the master sees a dropped connection
            raise
        self.forwarded += 1
        if self._armed and status == 200:
            self._armed = False
            self.held.set()
            await asyncio.sleep(3600)  # the master is killed while it waits for this answer
        return web.Response(status=status, body=data, content_type="application/json")

    def close(self) -> None:
        async def stop():
            await self._runner.cleanup()
            await self._http.close()
        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def master_usage(master: Master) -> list[dict]:
    r = cli("master", "usage", "--cbdir", str(master.cbdir), "--output", "json", env=master.env)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def service_records(svc: Service, hourly: bool = False) -> list[dict]:
    args = [str(Path(sys.executable).with_name("wampfabric")), "metering-service", "records", "--dir", str(svc.dir),
            "--output", "json", "--limit", "10000"] + (["--hourly"] if hourly else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = r.stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_until(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _record_of(row: dict) -> dict:
    """A service record row's usage record (the row may nest it under 'record')."""
    return row.get("record", row) if isinstance(row.get("record"), dict) else row


async def test_metering_end_to_end(tmp_path):
    su = Key()
    svc = Service(tmp_path / "svc").start()
    proxy = HoldingProxy(f"http://127.0.0.1:{svc.port}/submit")
    master = Master(superuser=su, env={"CROSSBAR_METERING_URL": proxy.url})
    edges = []
    client = None
    try:
        master.init()
        cfg_path = master.cbdir / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["controller"].setdefault("fabric-center", {})["metering"] = {
            "period": PERIOD, "grace": 1, "submit": {"period": 2, "timeout": 5}}
        cfg_path.write_text(json.dumps(cfg, indent=2))
        r = subprocess.run([str(Path(sys.executable).with_name("wampfabric")), "metering-service", "key", "add",
                            str(master.cbdir / "key.pub"), "--customer", "acme", "--dir", str(svc.dir)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr + r.stdout
        master.start()

        g = await fabric_connect(master.url, su, realm=None)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        port = free_port()
        for name in ("edge1", "edge2"):
            e = WfEdge(tmp_path, name, master.url, period=1)
            if name == "edge1":
                ecfg = json.loads((e.cbdir / "config.json").read_text())
                ecfg["workers"] = [{"type": "router", "id": "rw1", "realms": [
                    {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
                    "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "port": port,
                                                                       "interface": "127.0.0.1"}}]}]
                (e.cbdir / "config.json").write_text(json.dumps(ecfg))
            await w(g.call("crossbarfabriccenter.mrealm.pair_node", e.pubkey, "m1", name, None))
            edges.append(e.start())
        g.leave()

        # ten calls through edge1's router
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = await connect(None, realm="realm1", url=f"ws://127.0.0.1:{port}/ws")
            except OSError:
                assert time.monotonic() < deadline, f"edge1's router did not listen:\n{edges[0].log()[-3000:]}"
                await asyncio.sleep(0.5)
        await w(client.register(lambda x: x + 1, "com.example.inc"))
        for i in range(10):
            assert await w(client.call("com.example.inc", i)) == i + 1

        # aggregated, submitted, acknowledged, with the numbers right
        def calls_counted():
            recs = master_usage(master)
            done = [r for r in recs if r["status"] == 2]
            return recs if sum(r["msgs_call"] for r in done) >= 10 and len(done) == len(recs) >= 3 else None
        recs = wait_until(calls_counted, 90, "the calls in submitted records")
        assert all(r["mrealm_id"] == mrealm["oid"] and r["mrealm"] == "m1" for r in recs)
        assert sum(r["msgs_call"] for r in recs) == 10 and sum(r["msgs_invocation"] for r in recs) == 10
        assert sum(r["msgs_result"] for r in recs) == 10 and sum(r["msgs_registered"] for r in recs) == 1
        assert sum(r["nodes"] for r in recs) == sum(r["controllers"] for r in recs) > 0
        assert all(r["timestamp"] - r["timestamp_from"] == PERIOD * 10**9 for r in recs)
        assert all(r["timestamp"] % (PERIOD * 10**9) == 0 for r in recs)
        assert all(r["pubkey"] == master_pubkey(master) for r in recs)
        assert max(r["nodes"] for r in recs) <= 2 * PERIOD + 2  # two nodes, heartbeats every second
        assert any(r["routers"] > 0 and r["sessions"] > 0 for r in recs)
        assert "Metering: metering record for" in master.log() and "processed with new status 2" in master.log()

        # the service stopped for a while: records wait at status 1 with the reason, then all arrive
        svc.stop()
        wait_until(lambda: [r for r in master_usage(master) if r["status"] == 1 and r["status_message"]], 30,
                   "a record waiting with a status message")
        time.sleep(PERIOD)
        svc.start()
        wait_until(lambda: all(r["status"] == 2 for r in master_usage(master)) or None, 60,
                   "every record submitted after the service came back")

        # the master killed while a submission is in flight, then started again
        proxy.hold_next()
        assert proxy.held.wait(30), "no submission to hold"
        master.kill()
        held = [r for r in master_usage(master) if r["status"] == 1]
        assert len(held) >= 1  # the service has it, the master does not know
        master.start()
        wait_until(lambda: all(r["status"] == 2 for r in master_usage(master)) or None, 60,
                   "every record submitted after the master restart")

        # stop the edges; when the last records are in, the service has each exactly once
        for e in edges:
            e.kill()
        time.sleep(PERIOD + 2)
        final = wait_until(lambda: (lambda rs: rs if rs and all(r["status"] == 2 for r in rs) else None)(
            master_usage(master)), 60, "the last records submitted")
        rows = service_records(svc)
        got = {}
        for row in rows:
            rec = _record_of(row)
            key = (rec["mrealm_id"], rec["timestamp"])
            assert key not in got, f"record {key} stored twice"
            got[key] = row
        assert set(got) == {(r["mrealm_id"], r["timestamp"]) for r in final}
        for r in final:
            row = got[(r["mrealm_id"], r["timestamp"])]
            assert str(row.get("metering_id")) == r["metering_id"]
            rec = _record_of(row)
            assert all(rec[c] == r[c] for c in COUNTERS)
        for r in held:
            assert [f["metering_id"] for f in final if f["timestamp"] == r["timestamp"]] == \
                [str(got[(r["mrealm_id"], r["timestamp"])]["metering_id"])]
        # the hourly sums: every record counted once
        hourly = service_records(svc, hourly=True)
        for c in COUNTERS:
            assert sum(h[c] for h in hourly) == sum(r[c] for r in final), c
        assert sum(h["records"] for h in hourly) == len(final)
    finally:
        # every process is stopped, whatever fails on the way
        for cleanup in ([client.shutdown] if client is not None else []):
            try:
                await cleanup()
            except Exception:
                pass
        for stop in [e.kill for e in edges] + [master.stop, svc.kill, proxy.close]:
            try:
                stop()
            except Exception:
                pass


def master_pubkey(master: Master) -> str:
    for line in (master.cbdir / "key.pub").read_text().splitlines():
        if line.startswith("public-key-ed25519:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no public key")
