"""Heartbeat retention (master/retention.py) with the real heartbeat storage part and a real
LMDB mrealm database: records older than the retention go, newer ones stay, in bounded
transactions; a sustained run keeps the database file at a bound; when the records fill the
database faster than the retention frees it, the oldest go by space, never the ones younger than
two metering intervals; the settings and their errors. The controller around the parts is a
stand-in (as in test_heartbeats_dbfull.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from types import SimpleNamespace

import pytest

from wampfabric.master import retention as rmod
from wampfabric.master.heartbeats import HeartbeatStore, node_record, worker_record
from wampfabric.master.retention import MIN_RETENTION, HeartbeatRetention, check_settings, settings_of
from wampfabric.master.schema import MrealmSchema, open_mrealm_db

S = 10**9
NOW = 1_800_000_000 * S  # the virtual clock's start (ns)


class StandIn:
    def __init__(self, cbdir, fabric_center=None):
        self.master = SimpleNamespace(cbdir=cbdir, worker=SimpleNamespace(
            options={"fabric_center": fabric_center} if fabric_center is not None else {}))
        self.mrealm_oid = uuid.uuid4()
        self.name = "m1"
        self.nodes = SimpleNamespace(by_name={})
        self.local = SimpleNamespace(subscribe=self._subscribe)
        self.heartbeats = None

    async def _subscribe(self, topic, handler, details=False):
        return None


class Clock:
    def __init__(self, ns):
        self.ns = ns

    def __call__(self):
        return self.ns


NODE = uuid.uuid4()


def write(store, times, workers_per_node=4, pad=600):
    """Records as the heartbeat part writes them, with the given receive times (ns): per time one
    node record and ``workers_per_node`` worker records."""
    with store.db.begin(write=True) as txn:
        for ts in times:
            hb = {"seq": 1, "timestamp": ts, "period": 10, "state": 1, "system": {"cpu": {"user": 1.0}}}
            store.schema.mnode_logs.put(txn, (ts, NODE), node_record(hb, ts, NODE, store.mrealm_oid, 7))
            for w in range(workers_per_node):
                whb = {"type": "router", "seq": 1, "timestamp": ts, "period": 10, "state": 1,
                       "process": {"pid": 1, "pad": "x" * pad}}
                wid = f"w{w}"
                store.schema.mworker_logs.put(txn, (ts, NODE, wid),
                                              worker_record(whb, ts, NODE, store.mrealm_oid, wid))


def counts(store):
    with store.db.begin() as txn:
        return store.schema.mnode_logs.count(txn), store.schema.mworker_logs.count(txn)


def times_in(store):
    with store.db.begin() as txn:
        return sorted(k[0] for k in store.schema.mnode_logs.select(txn, return_keys=True, return_values=False))


async def started(tmp_path, fabric_center=None, maxsize=None, clock=None):
    c = StandIn(tmp_path, fabric_center)
    hs = HeartbeatStore()
    if maxsize:
        hs.maxsize = maxsize
    await hs.start(c)
    r = HeartbeatRetention()
    if clock is not None:
        r.clock = clock
    await r.start(c)
    for _ in range(200):  # the first pass runs at start
        if r.counters["passes"]:
            break
        await asyncio.sleep(0.01)
    return c, hs, r


async def stopped(hs, r):
    await r.stop()
    await hs.stop()


async def test_records_older_than_retention_are_deleted_newer_kept(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "wampfabric.master.retention")
    monkeypatch.setattr(rmod, "BATCH", 1000)  # several transactions per table
    clock = Clock(NOW)
    c = StandIn(tmp_path)
    hs = HeartbeatStore()
    await hs.start(c)
    old = [NOW - 7200 * S + i * 10**6 for i in range(1500)]  # 2 h old: 1,500 node + 6,000 worker records
    edge = [NOW - 3600 * S - 1, NOW - 3600 * S]  # just older than the hour, exactly an hour
    new = [NOW - 1800 * S + i for i in range(10)]
    write(hs, old + edge + new)
    r = HeartbeatRetention()
    r.clock = clock
    await r.start(SimpleNamespace(name=c.name, heartbeats=hs, master=SimpleNamespace(worker=SimpleNamespace(
        options={"fabric_center": {"heartbeats": {"retention": 3600, "prune_interval": 3600}}}))))
    try:
        for _ in range(500):
            if r.counters["passes"]:
                break
            await asyncio.sleep(0.01)
        assert r.retention == 3600
        assert times_in(hs) == [NOW - 3600 * S] + new
        assert counts(hs) == (11, 44)
        assert r.counters["pruned_node"] == 1501 and r.counters["pruned_worker"] == 6004
        assert "pruned 1501 node and 6004 worker heartbeats received before" in caplog.text
        # another pass an hour later: only what has aged since goes
        clock.ns += 1800 * S + 10
        out = await r.prune()
        assert out["node"] == 11 and out["worker"] == 44
        assert counts(hs) == (0, 0)
        # and a pass with nothing to do logs nothing
        caplog.clear()
        assert (await r.prune())["node"] == 0
        assert "pruned" not in caplog.text
    finally:
        await stopped(hs, r)
    # what is left is on disk: the master's reader sees the same
    db = open_mrealm_db(tmp_path, c.mrealm_oid, readonly=True)
    try:
        with db.begin() as txn:
            assert MrealmSchema.attach(db).mworker_logs.count(txn) == 0
    finally:
        db.close()


async def test_retention_never_below_two_metering_intervals(tmp_path):
    clock = Clock(NOW)
    c, hs, r = await started(tmp_path, clock=clock)
    try:
        r.retention = 1  # even if set lower by hand after start, a pass keeps MIN_RETENTION
        write(hs, [NOW - (MIN_RETENTION - 1) * S, NOW - (MIN_RETENTION + 1) * S])
        await r.prune()
        assert times_in(hs) == [NOW - (MIN_RETENTION - 1) * S]
    finally:
        await stopped(hs, r)


async def test_sustained_run_database_stops_growing(tmp_path):
    """An hour of virtual time at 50 records a second with a retention of 10 minutes: the records
    held and the data file stay at a bound (LMDB reuses the pages the pruning frees)."""
    clock = Clock(NOW)
    c, hs, r = await started(tmp_path, {"heartbeats": {"retention": 600, "prune_interval": 3600}}, clock=clock)
    data = os.path.join(tmp_path, f".db-mrealm-{c.mrealm_oid}", "data.mdb")
    sizes, held = [], []
    try:
        for step in range(60):  # one virtual minute each: 600 rounds of 1 node + 4 workers
            start = clock.ns
            write(hs, [start + i * (S // 10) for i in range(600)])
            clock.ns = start + 60 * S
            await r.prune()
            sizes.append(os.path.getsize(data))
            held.append(sum(counts(hs)))
    finally:
        await stopped(hs, r)
    assert max(held) <= 11 * 3000  # 10 minutes + the minute being written
    assert held[-1] == held[20]  # steady
    # the file grew while the first 10 minutes filled it, then not (a page or two of slack)
    assert sizes[-1] <= sizes[15] * 1.05, (sizes[15], sizes[-1])
    assert sizes[-1] < 3000 * 60 * 600  # far below the unpruned volume


async def test_space_pressure_prunes_oldest_but_not_the_last_two_metering_intervals(tmp_path, caplog):
    """Retention 24 h, but a database of 16 MiB that 5-minute steps of ~1.7 MB fill within the
    hour: the oldest records go by space (with a warning), the database never refuses a write, and
    nothing younger than MIN_RETENTION is deleted."""
    caplog.set_level(logging.INFO, "wampfabric.master.retention")
    clock = Clock(NOW)
    c, hs, r = await started(tmp_path, {"heartbeats": {"retention": 86400, "prune_interval": 3600}},
                             maxsize=16 * 2**20, clock=clock)
    try:
        written = []
        for step in range(40):
            start = clock.ns
            times = [start + i * (300 * S // 500) for i in range(500)]  # 500 rounds per 5 minutes
            write(hs, times)
            written += times
            clock.ns = start + 300 * S
            await r.prune()
            used = hs.db.used_bytes()
            assert used < rmod.HIGH_WATER * hs.db.maxsize, (step, used)
            # everything younger than two metering intervals is there
            floor = clock.ns - MIN_RETENTION * S
            kept = times_in(hs)
            assert [t for t in kept if t >= floor] == [t for t in written if t >= floor]
        assert len(kept) < len(written) / 4
        assert r.counters["pruned_by_space"] > 0
        assert "younger than the retention of 86400 s deleted" in caplog.text
        assert hs.counters["dropped"] == 0
    finally:
        await stopped(hs, r)


def test_settings():
    assert check_settings(None) == {"retention": 86400, "prune_interval": 60}
    assert check_settings({"retention": 3600}) == {"retention": 3600, "prune_interval": 60}
    for bad, why in (({"retention": 599}, "retention: must be an integer number of seconds from 600"),
                     ({"retention": "1h"}, "retention: must be an integer"),
                     ({"prune_interval": 0}, "prune_interval: must be an integer"),
                     ({"retention": 3600.5}, "retention: must be an integer"),
                     ({"keep": 1}, "unknown setting(s) keep"),
                     ([], "must be a dict")):
        with pytest.raises(ValueError) as e:
            check_settings(bad)
        assert why in str(e.value)
    master = SimpleNamespace(worker=SimpleNamespace(options={"fabric_center": {"heartbeats": {"retention": 7200}}}))
    assert settings_of(master)["retention"] == 7200
    assert settings_of(SimpleNamespace(worker=SimpleNamespace(options={})))["retention"] == 86400


async def test_needs_the_heartbeat_storage(tmp_path):
    r = HeartbeatRetention()
    with pytest.raises(RuntimeError, match="heartbeat storage part before it"):
        await r.start(SimpleNamespace(name="m1", heartbeats=None, master=SimpleNamespace()))


async def test_master_prunes_old_heartbeats_as_configured(connect):
    """End to end with the CLI: a master configured with ``controller.fabric-center.heartbeats``
    (retention 1 h, a pass every 2 s), whose mrealm database holds records older than the retention
    beside younger ones and a node's own heartbeats, prunes exactly the old ones when the mrealm
    starts, logs it, and keeps pruning as records age."""
    import json

    from autobahn.wamp.types import PublishOptions
    from masternode import Key, Master
    from support.autobahn_client import w

    su = Key()
    master = Master(superuser=su)
    master.init()
    config_path = master.cbdir / "config.json"
    cfg = json.loads(config_path.read_text())
    cfg["controller"]["fabric-center"] = {"heartbeats": {"retention": 3600, "prune_interval": 2}}
    config_path.write_text(json.dumps(cfg))
    master.start()
    try:
        g = await connect(master, su)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        key = Key()
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", key.pubkey, "m1", "n1", None))
        node = await connect(master, key, authrole="node")
        master.wait_log("heartbeats kept 3600 s (pruned every 2 s)")
        for seq in (1, 2, 3):
            await w(node.publish("crossbarfabriccenter.node.on_worker_heartbeat", "n1", "rw1",
                                 {"type": "router", "seq": seq, "process": {"pid": 1}},
                                 options=PublishOptions(acknowledge=True)))
        await node.close()
        await g.close()
        master.stop()

        oid = uuid.UUID(mrealm["oid"])
        db = open_mrealm_db(master.cbdir, oid)
        store = SimpleNamespace(db=db, schema=MrealmSchema.attach(db), mrealm_oid=oid)
        now = time.time_ns()
        old = [now - 2 * 3600 * S + i for i in range(3)]
        young = [now - 1800 * S + i for i in range(2)]
        # these age past the hour while the master runs: the periodic pass takes them
        ageing = [now - 3600 * S + 15 * S]
        write(store, old + ageing + young)
        assert counts(store) == (6, 27)
        db.close()

        master.start()
        master.wait_log("pruned 3 node and 12 worker heartbeats received before")
        master.wait_log("pruned 1 node and 4 worker heartbeats received before", timeout=45)
        master.stop()
        db = open_mrealm_db(master.cbdir, oid, readonly=True)
        try:
            ms = MrealmSchema.attach(db)
            with db.begin() as txn:  # one read transaction: see the report on read-only handles
                assert (ms.mnode_logs.count(txn), ms.mworker_logs.count(txn)) == (2, 11)
                assert [k[0] for k in ms.mnode_logs.select(txn, return_keys=True, return_values=False)] == young
        finally:
            db.close()
    finally:
        master.stop()


def test_check_refuses_a_retention_below_two_metering_intervals(tmp_path):
    """``wampfabric master check`` refuses what the part would refuse, with the path."""
    import json

    from masternode import Master, cli

    master = Master()
    master.init()
    config_path = master.cbdir / "config.json"
    cfg = json.loads(config_path.read_text())
    cfg["controller"]["fabric-center"] = {"heartbeats": {"retention": 599}}
    config_path.write_text(json.dumps(cfg))
    r = cli("master", "check", "--cbdir", str(master.cbdir), env=master.env)
    assert r.returncode != 0
    assert "controller.fabric-center.heartbeats.retention" in r.stdout + r.stderr


async def test_age_pruning_waits_for_metering(tmp_path):
    """Heartbeats that usage metering has not aggregated yet are not deleted by age (a master that
    was down catches up first); once aggregated, they go."""
    clock = Clock(NOW)
    c = StandIn(tmp_path, {"heartbeats": {"retention": 3600, "prune_interval": 3600}})
    aggregated = {"until": None}
    c.master.metering = SimpleNamespace(safe_prune_before=lambda oid: aggregated["until"])
    hs = HeartbeatStore()
    await hs.start(c)
    write(hs, [NOW - 7200 * S + i * S for i in range(10)])  # 2 h old, retention 1 h
    r = HeartbeatRetention()
    r.clock = clock
    await r.start(c)
    try:
        out = await r.prune()
        assert out["node"] == 0 and counts(hs)[0] == 10  # nothing aggregated: kept
        aggregated["until"] = NOW - 7200 * S + 5 * S  # the first five aggregated
        out = await r.prune()
        assert out["node"] == 5 and times_in(hs) == [NOW - 7200 * S + i * S for i in range(5, 10)]
        aggregated["until"] = NOW
        await r.prune()
        assert counts(hs) == (0, 0)
    finally:
        await stopped(hs, r)


async def test_reads_see_every_heartbeat_received_before_them(tmp_path, monkeypatch):
    """HeartbeatStore.read (metering's aggregation) runs after the batches holding what was received
    before the call are written, even when they wait for the flush timer or a write in progress."""
    import wampfabric.master.heartbeats as hmod

    monkeypatch.setattr(hmod, "FLUSH_INTERVAL", 30.0)  # nothing is flushed by the timer in this test
    monkeypatch.setattr(hmod, "BATCH_MAX", 100)
    c = StandIn(tmp_path)
    hs = HeartbeatStore()
    await hs.start(c)
    try:
        for i in range(250):  # two full batches written at once, 50 waiting for the timer
            ts = NOW + i
            hs._add(hs.schema.mnode_logs, (ts, NODE), node_record({"timestamp": ts, "period": 10, "seq": i}, ts,
                                                                   NODE, c.mrealm_oid, 1))

        def count(db):
            with db.begin() as txn:
                return hs.schema.mnode_logs.count(txn)
        assert await hs.read(count) == 250
    finally:
        await hs.stop()
