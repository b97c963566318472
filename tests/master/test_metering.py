"""Usage aggregation (master/metering.py): the design document's two example records reproduced
from synthetic heartbeats, the interval rules (grid, grace, empty intervals, catch-up,
idempotency), the deleted realms' databases, retention that waits for metering, and the heartbeat
loop's log lines.

The heartbeats are written into real LMDB databases as the heartbeat storage writes them; the
Metering object runs its real aggregation and writes into a real global database.  Only the
master's process object around them is a plain namespace here (its router is not needed)."""

from __future__ import annotations

import asyncio
import logging
import types
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wampfabric.master.metering import Metering, check_settings, find_deleted_mrealm_dbs, pending_intervals
from wampfabric.master.schema import MasterNodeUsage, MNodeLog, MrealmSchema, MWorkerLog, open_mrealm_db
from wampfabric.master.store import MasterStore
from wampfabric.protocol.metering import MSG_TYPES

S = 10**9
P = 300 * S  # the default interval
# 2019-06-26T11:55:00Z, on the 5-minute grid (the design document's examples cover 11:56 .. 12:01:
# Crossbar.io started its intervals at the first heartbeat's minute, ours are on the grid)
T0 = 1_561_550_100 * S


class _Heartbeats:
    """What Metering needs of an mrealm's heartbeat storage: its database, read in a thread."""

    def __init__(self, db):
        self.db = db
        self._ex = ThreadPoolExecutor(1)

    async def read(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._ex, fn, self.db, *args)


def _write_heartbeats(db, mrealm_oid, nodes: list[dict], t_from: int, seconds: int = 300, period: int = 10):
    """Heartbeats as edges send them every ``period`` s for ``seconds`` from ``t_from`` (plus a
    small receive offset): per node a node heartbeat and a heartbeat per worker; ``nodes`` items
    are ``{"workers": [(worker_id, type, sessions, {msg type: per-interval messages list}), ...]}``."""
    schema = MrealmSchema.attach(db)
    n = seconds // period
    with db.begin(write=True) as txn:
        for i in range(n):
            for k, node in enumerate(nodes):
                node_oid = node["oid"]
                ts = t_from + i * period * S + 1_000_000 * (k + 1)
                schema.mnode_logs.insert(txn, (ts, node_oid), MNodeLog(
                    timestamp=ts, node_id=node_oid, mrealm_id=mrealm_oid, period=period, state=1, seq=i,
                    workers={"controller": 1}))
                schema.mworker_logs.insert(txn, (ts, node_oid, "controller"), MWorkerLog(
                    timestamp=ts, node_id=node_oid, worker_id="controller", mrealm_id=mrealm_oid, period=period,
                    type="controller", state=1, seq=i, process={"cpu_user": 0.1}))
                for wid, wtype, sessions, msgs in node.get("workers", []):
                    router = None
                    if wtype == "router":
                        router = {"sessions": sessions, "roles": 1,
                                  "messages": {m: (msgs.get(m) or [0] * n)[i] for m in MSG_TYPES}}
                    schema.mworker_logs.insert(txn, (ts, node_oid, wid), MWorkerLog(
                        timestamp=ts, node_id=node_oid, worker_id=wid, mrealm_id=mrealm_oid, period=period,
                        type=wtype, state=1, seq=i, process={"cpu_user": 0.1}, router=router))


def _spread(total: int, n: int = 30) -> list[int]:
    """``total`` messages over ``n`` heartbeats, unevenly (what a real interval looks like)."""
    out = [total // n] * n
    out[0] += total - sum(out)
    return out


@pytest.fixture
def master(tmp_path):
    store = MasterStore.open(tmp_path)
    key = Ed25519PrivateKey.generate()
    m = types.SimpleNamespace(store=store, mrealms={}, cbdir=tmp_path, metering=None, key=key)
    yield m
    for c in m.mrealms.values():
        c.heartbeats.db.close()
    store.close()


def _add_mrealm(master, name: str):
    user = master.store.ensure_user("superuser")
    mrealm = master.store.create_mrealm(name, user)
    db = open_mrealm_db(master.cbdir, mrealm.oid)
    master.mrealms[name] = types.SimpleNamespace(heartbeats=_Heartbeats(db))
    return mrealm, db


def _metering(master, period=300, grace=5, now=None, url=None):
    settings = check_settings({"period": period, "grace": grace, "submit": {"url": url}})
    m = Metering(master, settings, signing_key=master.key)
    if now is not None:
        m.clock = lambda: now
    return m


# the design document's two records ("Metering Service", "Logs"), without what depends on when and
# where they were made (timestamps, mrealm_id, pubkey, seq, processed) and Crossbar.io's ``total``
EXAMPLE_1 = {"containers": 0, "controllers": 300, "count": 60, "guests": 0, "hostmonitors": 0, "marketmakers": 0,
             "metering_id": None, "msgs_call": 290, "msgs_error": 0, "msgs_event": 580, "msgs_invocation": 290,
             "msgs_publish": 290, "msgs_published": 290, "msgs_register": 0, "msgs_registered": 0,
             "msgs_result": 290, "msgs_subscribe": 0, "msgs_subscribed": 0, "msgs_yield": 290, "nodes": 300,
             "proxies": 0, "routers": 300, "sent": None, "sessions": 900, "status": 1, "status_message": None}
EXAMPLE_2 = {"containers": 0, "controllers": 900, "count": 210, "guests": 0, "hostmonitors": 300, "marketmakers": 0,
             "metering_id": None, "msgs_call": 576, "msgs_error": 0, "msgs_event": 1152, "msgs_invocation": 576,
             "msgs_publish": 576, "msgs_published": 576, "msgs_register": 0, "msgs_registered": 0,
             "msgs_result": 576, "msgs_subscribe": 0, "msgs_subscribed": 0, "msgs_yield": 576, "nodes": 900,
             "proxies": 0, "routers": 900, "sent": None, "sessions": 2100, "status": 1, "status_message": None}


def _rpc_pubsub(calls: int) -> dict:
    """Per-heartbeat message counts of ``calls`` calls and ``calls`` publications with two
    subscribers each, over 30 heartbeats."""
    return {"call": _spread(calls), "invocation": _spread(calls), "yield": _spread(calls), "result": _spread(calls),
            "publish": _spread(calls), "published": _spread(calls), "event": _spread(2 * calls)}


async def test_design_document_examples(master):
    """1 node with 1 router and 3 sessions; 3 nodes with 3 routers, 1 host monitor and 7 sessions;
    5 minutes each: the records are the design document's, field for field."""
    m1, db1 = _add_mrealm(master, "mrealm1")
    m2, db2 = _add_mrealm(master, "mrealm2")
    _write_heartbeats(db1, m1.oid, [{"oid": uuid.uuid4(), "workers": [("rw1", "router", 3, _rpc_pubsub(290))]}], T0)
    calls = _spread(576, 3)
    _write_heartbeats(db2, m2.oid, [
        {"oid": uuid.uuid4(), "workers": [("rw1", "router", 3, _rpc_pubsub(calls[0])), ("hm", "hostmonitor", 0, {})]},
        {"oid": uuid.uuid4(), "workers": [("rw1", "router", 2, _rpc_pubsub(calls[1]))]},
        {"oid": uuid.uuid4(), "workers": [("rw1", "router", 2, _rpc_pubsub(calls[2]))]},
    ], T0)
    metering = _metering(master, now=T0 + P + 6 * S)
    assert await metering.iterate() is False
    records = master.store.usage()
    assert len(records) == 2
    by_realm = {r.mrealm_id: r for r in records}
    for oid, example in ((m1.oid, EXAMPLE_1), (m2.oid, EXAMPLE_2)):
        rec = by_realm[oid].marshal()
        assert {k: rec[k] for k in example} == example
        assert (rec["timestamp_from"], rec["timestamp"]) == (T0, T0 + P)
        assert rec["pubkey"] == master.key.public_key().public_bytes_raw()
        assert rec["seq"] == 1 and rec["processed"] == T0 + P + 6 * S


async def test_intervals_grid_grace_gaps_and_idempotency(master):
    mrealm, db = _add_mrealm(master, "m")
    node = {"oid": uuid.uuid4(), "workers": [("rw1", "router", 1, {})]}
    # heartbeats in intervals 0, 1 and 3 (2 is empty: the node was away), 4 is still running
    for k in (0, 1, 3, 4):
        _write_heartbeats(db, mrealm.oid, [node], T0 + k * P, seconds=300)
    now = T0 + 4 * P + 100 * S
    metering = _metering(master, now=now)
    await metering.iterate()
    recs = master.store.usage(mrealm.oid)
    assert [(r.timestamp_from - T0) // P for r in recs] == [0, 1, 3]
    assert all(r.nodes == 300 and r.routers == 300 and r.sessions == 300 for r in recs)
    # again, nothing new: nothing written twice
    await metering.iterate()
    assert len(master.store.usage(mrealm.oid)) == 3
    # interval 4 ends, but within the grace nothing is aggregated; after it, it is
    metering.clock = lambda: T0 + 5 * P + 2 * S
    await metering.iterate()
    assert len(master.store.usage(mrealm.oid)) == 3
    metering.clock = lambda: T0 + 5 * P + 6 * S
    await metering.iterate()
    assert [(r.timestamp_from - T0) // P for r in master.store.usage(mrealm.oid)] == [0, 1, 3, 4]
    # a new Metering (the master restarted) finds the same state: nothing twice
    again = _metering(master, now=T0 + 9 * P)
    await again.iterate()
    assert len(master.store.usage()) == 4


async def test_catch_up_after_downtime_and_shorter_period(master):
    """A master that was down a day aggregates every interval it missed, in passes of at most a
    week of intervals; a 10 s period (for tests) gives 10 s records."""
    mrealm, db = _add_mrealm(master, "m")
    node = {"oid": uuid.uuid4()}
    _write_heartbeats(db, mrealm.oid, [node], T0, seconds=86_400, period=60)
    metering = _metering(master, now=T0 + 86_400 * S + P)
    assert await metering.iterate() is False
    recs = master.store.usage(mrealm.oid)
    assert len(recs) == 288 and all(r.nodes == 300 and r.controllers == 300 and r.count == 5 for r in recs)

    m2, db2 = _add_mrealm(master, "fast")
    _write_heartbeats(db2, m2.oid, [{"oid": uuid.uuid4()}], T0, seconds=60, period=2)
    fast = _metering(master, period=10, grace=1, now=T0 + 61 * S)
    await fast.iterate()
    recs = master.store.usage(m2.oid)
    assert [(r.timestamp - r.timestamp_from) // S for r in recs] == [10] * 6
    assert all(r.nodes == 10 for r in recs)


def test_pending_intervals_limit(tmp_path):
    oid = uuid.uuid4()
    db = open_mrealm_db(tmp_path, oid)
    try:
        _write_heartbeats(db, oid, [{"oid": uuid.uuid4()}], T0, seconds=3600, period=60)
        found, more = pending_intervals(db, None, T0 + 2 * 3600 * S, 300, 5, limit=5)
        assert len(found) == 5 and more
        found, more = pending_intervals(db, found[-1][1], T0 + 2 * 3600 * S, 300, 5, limit=100)
        assert len(found) == 7 and not more
    finally:
        db.close()


async def test_deleted_mrealm_database_aggregated_then_removed(master):
    mrealm, db = _add_mrealm(master, "gone")
    _write_heartbeats(db, mrealm.oid, [{"oid": uuid.uuid4()}], T0, seconds=600)
    db.close()
    del master.mrealms["gone"]
    path = master.cbdir / f".db-mrealm-{mrealm.oid}"
    path.rename(path.with_name(path.name + ".deleted-20190626T120000Z"))
    master.store.delete_mrealm(master.store.mrealm(mrealm.oid))
    # the last interval has not ended yet: kept
    metering = _metering(master, now=T0 + P + 10 * S)
    await metering.iterate()
    assert len(master.store.usage(mrealm.oid)) == 1
    assert find_deleted_mrealm_dbs(master.cbdir)
    metering.clock = lambda: T0 + 2 * P + 10 * S
    await metering.iterate()
    assert len(master.store.usage(mrealm.oid)) == 2
    assert find_deleted_mrealm_dbs(master.cbdir) == []
    assert metering.counters["retired_dbs"] == 1


async def test_heartbeat_loop_log_lines(master, caplog):
    mrealm, db = _add_mrealm(master, "m")
    _write_heartbeats(db, mrealm.oid, [{"oid": uuid.uuid4()}], T0)
    metering = _metering(master, now=T0 + P + 6 * S)
    caplog.set_level(logging.INFO, logger="wampfabric.master.metering")
    await metering.iterate()
    await metering.iterate()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("Master heartbeat loop iteration 1 started .. (global database: ")
    assert lines[0].endswith("% free)") and " used, " in lines[0]
    assert "  Metering: no metering record stored yet" in lines
    assert "  Metering: finished aggregating [1 intervals]" in lines
    assert any(line.startswith("Master heartbeat loop iteration 1 finished: in ") and line.endswith(" ms")
               for line in lines)
    assert '  Metering: last metering timestamp stored is "2019-06-26T12:00:00.000000000"' in lines
    assert "  Metering: no new intervals to aggregate." in lines
    assert "  Metering: finished aggregating [0 intervals]" in lines


def test_settings():
    assert check_settings(None)["period"] == 300
    for bad, where in (({"period": 0}, "metering.period"), ({"grace": "5"}, "metering.grace"),
                       ({"submit": {"url": "ftp://x"}}, "submit.url"), ({"submit": {"timeout": 0}}, "submit.timeout"),
                       ({"submit": {"retries": 1}}, "submit.retries"), ({"perod": 1}, "metering.perod")):
        with pytest.raises(ValueError, match=where):
            check_settings(bad)


def test_settings_url_from_environment(monkeypatch):
    monkeypatch.setenv("CROSSBAR_METERING_URL", "http://127.0.0.1:1/submit")
    assert check_settings(None)["submit"]["url"] == "http://127.0.0.1:1/submit"
    assert check_settings({"submit": {"url": "https://m.example/submit"}})["submit"]["url"] == "https://m.example/submit"
    monkeypatch.setenv("CROSSBAR_METERING_URL", "not a url")
    with pytest.raises(ValueError, match="CROSSBAR_METERING_URL"):
        check_settings(None)


def test_usage_record_status_index(master):
    """Submitted records leave the pending index; the by-mrealm index finds an mrealm's newest."""
    oid = uuid.uuid4()
    recs = [MasterNodeUsage(timestamp=T0 + k * P, timestamp_from=T0 + (k - 1) * P, mrealm_id=oid, status=1)
            for k in (1, 2, 3)]
    assert len(master.store.add_usage(recs)) == 3
    assert master.store.add_usage(recs) == []  # taken keys are never overwritten
    assert master.store.last_usage_timestamp(oid) == T0 + 3 * P
    assert master.store.last_usage_timestamp(uuid.uuid4()) is None
    master.store.update_usage((T0 + P, oid), status=MasterNodeUsage.SUBMITTED, metering_id=uuid.uuid4())
    assert [r.timestamp for r in master.store.pending_usage(10)] == [T0 + 2 * P, T0 + 3 * P]


@pytest.mark.parametrize("metering, heartbeats, path", [
    ({"period": 0}, None, "controller.fabric-center.metering.period"),
    ({"submit": {"url": "ftp://example.com"}}, None, "controller.fabric-center.metering.submit.url"),
    ({"submit": {"maxerrors": 0}}, None, "controller.fabric-center.metering.submit.maxerrors"),
    ({"submitt": {}}, None, "controller.fabric-center.metering.submitt"),
    ({"period": 600}, {"retention": 900}, "controller.fabric-center.heartbeats.retention"),
])
def test_master_check_refuses_bad_metering_settings(metering, heartbeats, path):
    """``wampfabric master check`` names the JSON path of a wrong metering setting, no traceback."""
    import json

    from masternode import Master, cli

    master = Master()
    master.init()
    config_path = master.cbdir / "config.json"
    cfg = json.loads(config_path.read_text())
    cfg["controller"]["fabric-center"]["metering"] = metering
    if heartbeats:
        cfg["controller"]["fabric-center"]["heartbeats"] = heartbeats
    config_path.write_text(json.dumps(cfg))
    r = cli("master", "check", "--cbdir", str(master.cbdir), env=master.env)
    assert r.returncode != 0
    assert path in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
    # and a good one passes
    cfg["controller"]["fabric-center"]["metering"] = {"period": 60, "grace": 2, "submit": {
        "url": "https://metering.example.com/submit", "timeout": 10, "period": 120, "maxerrors": 3}}
    cfg["controller"]["fabric-center"].pop("heartbeats", None)
    config_path.write_text(json.dumps(cfg))
    r = cli("master", "check", "--cbdir", str(master.cbdir), env=master.env)
    assert r.returncode == 0, r.stdout + r.stderr
