"""The heartbeat part of an mrealm controller with a real, small LMDB database: batches of
records in one transaction, a full database counted and logged once per interval while the part
keeps accepting (and later storing, once there is room again), a clean stop writing what is
pending. The controller around it is a stand-in: its node view knows one node session."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from types import SimpleNamespace

from wampfabric.master import heartbeats as hbmod
from wampfabric.master.heartbeats import HeartbeatStore
from wampfabric.master.nodes import NodeState
from wampfabric.master.schema import MrealmSchema, Node, open_mrealm_db


class StandIn:
    """What the part uses of the controller: cbdir, mrealm, name, a node view, a local session."""

    def __init__(self, cbdir):
        record = Node(oid=uuid.uuid4(), authid="n1", pubkey="ab" * 32, mrealm_oid=uuid.uuid4())
        self.st = NodeState(record)
        self.st.session = 77
        self.master = SimpleNamespace(cbdir=cbdir)
        self.mrealm_oid = record.mrealm_oid
        self.name = "m1"
        self.nodes = SimpleNamespace(by_name={"n1": self.st}, heartbeat=lambda *a: None,
                                     worker_heartbeat=lambda *a: None)
        self.subscribed = []
        self.local = SimpleNamespace(subscribe=self._subscribe)

    async def _subscribe(self, topic, handler, details=False):
        self.subscribed.append(topic)


DETAILS = {"publisher": 77, "publisher_authid": "n1", "publisher_authrole": "node"}


def worker_hb(seq):
    return {"type": "router", "seq": seq, "timestamp": time.time_ns(), "period": 10, "state": 1,
            "process": {"pid": 1, "pad": "x" * 600}}


def count(cbdir, oid):
    db = open_mrealm_db(cbdir, oid, readonly=True)
    try:
        with db.begin() as txn:
            return MrealmSchema.attach(db).mworker_logs.count(txn)
    finally:
        db.close()


async def test_full_database_counts_drops_and_keeps_running(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(hbmod, "FULL_LOG_INTERVAL", 3600.0)
    c = StandIn(tmp_path)
    hs = HeartbeatStore()
    hs.maxsize = 2 * 2**20  # 1 MiB usable beside the 1 MiB reserve
    await hs.start(c)
    assert c.subscribed == [hbmod.NODE_HEARTBEAT, hbmod.WORKER_HEARTBEAT]
    caplog.set_level(logging.ERROR, logger="wampfabric.master.heartbeats")
    seq = 0
    for _ in range(6):  # batches of 500 records (~0.4 MB each) until the database is full
        for _ in range(500):
            seq += 1
            hs.on_worker_heartbeat("n1", "rw1", worker_hb(seq), details=DETAILS)
        await asyncio.sleep(hbmod.FLUSH_INTERVAL * 3)
    st = hs.status()
    assert st["worker_accepted"] == 3000 and st["pending"] == 0
    assert st["dropped"] > 0 and st["stored"] > 0 and st["stored"] + st["dropped"] == 3000
    full = [r for r in caplog.records if "heartbeats are not stored" in r.getMessage()]
    assert len(full) == 1  # once per interval, not per batch
    assert str(tmp_path) in full[0].getMessage()  # names the database
    await hs.stop()
    assert count(tmp_path, c.mrealm_oid) == st["stored"]


async def test_batches_and_stop_flushes(tmp_path):
    c = StandIn(tmp_path)
    hs = HeartbeatStore()
    await hs.start(c)
    commits = []
    real = hs._write
    hs._write = lambda batch: (commits.append(len(batch)), real(batch))[1]
    for seq in range(1, 301):
        hs.on_worker_heartbeat("n1", "rw1", worker_hb(seq), details=DETAILS)
    await asyncio.sleep(hbmod.FLUSH_INTERVAL * 3)
    assert commits == [300]  # one transaction for everything received meanwhile
    for seq in range(301, 351):
        hs.on_worker_heartbeat("n1", "rw1", worker_hb(seq), details=DETAILS)
    await hs.stop()  # before the flush interval: written by stop
    assert commits == [300, 50]
    assert count(tmp_path, c.mrealm_oid) == 350
