"""Heartbeat storage of the master as an attacker and as Crossbar.io's edge would test it: node
sessions (autobahn-python, cryptosign with paired keys, role ``node``) publish heartbeats to a
master started with the CLI; what is stored is read from the mrealm database read-only beside
the running master, what is refused is counted in ``mrealm.get_status``."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from masternode import Key, Master, fabric_connect
from support.autobahn_client import w
from wampfabric.master.schema import MrealmSchema, open_mrealm_db

M = "crossbarfabriccenter.mrealm."
HB = "crossbarfabriccenter.node.on_heartbeat"
WHB = "crossbarfabriccenter.node.on_worker_heartbeat"
ACK = PublishOptions(acknowledge=True)

pytestmark = pytest.mark.timeout(120)


def stored(master, mrealm_oid):
    db = open_mrealm_db(master.cbdir, mrealm_oid, readonly=True)
    try:
        ms = MrealmSchema.attach(db)
        with db.begin() as txn:
            return (list(ms.mnode_logs.select(txn, return_keys=True)),
                    list(ms.mworker_logs.select(txn, return_keys=True)))
    finally:
        db.close()


async def settled(s, n_node, n_worker, timeout=5.0):
    """get_status's heartbeat counters once ``n_node`` + ``n_worker`` are accepted and stored."""
    deadline = time.monotonic() + timeout
    while True:
        hb = (await w(s.call(M + "get_status")))["heartbeats"]
        if (hb["node_accepted"] >= n_node and hb["worker_accepted"] >= n_worker and hb["pending"] == 0
                and hb["stored"] + hb["dropped"] >= n_node + n_worker):
            return hb
        assert time.monotonic() < deadline, hb
        await asyncio.sleep(0.05)


def node_hb(seq, **extra):
    return {"timestamp": time.time_ns(), "period": 10, "mrealm_id": "m1", "seq": seq, "state": 1,
            "workers": {"controller": 1}, **extra}


async def test_heartbeats_accepted_refused_and_stored(connect):
    su = Key()
    master = Master(superuser=su)
    master.init()
    master.start()
    try:
        g = await connect(master, su)
        mrealm = await w(g.call(M + "create_mrealm", {"name": "m1"}))
        k1, k2 = Key(), Key()
        n1 = await w(g.call(M + "pair_node", k1.pubkey, "m1", "n1", None))
        await w(g.call(M + "pair_node", k2.pubkey, "m1", "n2", None))
        s = await connect(master, su, realm="m1")
        node1 = await connect(master, k1, authrole="node")
        node2 = await connect(master, k2, authrole="node")

        # accepted: ours (pubkey, nested process), Crossbar.io 26.10's (no pubkey, flat controller)
        sent = time.time_ns()
        await w(node1.publish(HB, "n1", node_hb(1, pubkey=k1.pubkey, timestamp=sent, system={
            "cpu": {"user": 1.5, "iowait": 0.1}, "memory": {"total": 1}, "network": {"bytes_sent": 2},
            "disk": {"read_count": 3}, "uptime": 9}), options=ACK))
        await w(node1.publish(HB, "n1", node_hb(2), options=ACK))
        await w(node1.publish(WHB, "n1", "rw1", {"type": "router", "process": {"pid": 7, "cpu_user": 0.5},
                                                 "router": {"sessions": 1, "roles": 1, "messages": {"call": 3}},
                                                 "timestamp": sent, "period": 10, "seq": 1, "state": 1},
                              options=ACK))
        await w(node2.publish(WHB, "n2", "controller", {"type": "controller", "pid": 8, "status": "sleeping",
                                                        "num_fds": 12, "cpu_user": 2.5, "timestamp": sent,
                                                        "period": 10, "mrealm_id": "m1", "seq": 1, "state": 1},
                              options=ACK))
        await w(node2.publish(HB, "n2", node_hb(5), options=ACK))

        # refused: another node's name, a replayed seq (node and worker), a wrong key, malformed ones
        await w(node2.publish(HB, "n1", node_hb(100, pubkey=k1.pubkey), options=ACK))
        await w(node2.publish(WHB, "n1", "rw1", {"type": "router", "seq": 100}, options=ACK))
        await w(node1.publish(HB, "n1", node_hb(2), options=ACK))
        await w(node1.publish(HB, "n1", node_hb(1), options=ACK))
        await w(node1.publish(WHB, "n1", "rw1", {"type": "router", "seq": 1}, options=ACK))
        await w(node1.publish(HB, "n1", node_hb(3, pubkey=k2.pubkey), options=ACK))
        await w(node1.publish(HB, "n1", "not a map", options=ACK))
        await w(node1.publish(HB, "n1", node_hb("4"), options=ACK))
        await w(node1.publish(HB, "n1", node_hb(4, timestamp="yesterday"), options=ACK))
        await w(node1.publish(WHB, "n1", 17, {"seq": 2}, options=ACK))
        await w(node1.publish(HB, options=ACK))
        # a user cannot publish heartbeats at all
        with pytest.raises(ApplicationError) as err:
            await w(s.publish(HB, "n1", node_hb(50, pubkey=k1.pubkey), options=ACK))
        assert err.value.error == "wamp.error.not_authorized"

        hb = await settled(s, 3, 2)
        assert hb["node_accepted"] == 3 and hb["worker_accepted"] == 2 and hb["stored"] == 5 and hb["dropped"] == 0
        assert hb["refused_foreign"] == 2 and hb["refused_replayed"] == 3 and hb["refused_pubkey"] == 1
        assert hb["refused_malformed"] == 5 and hb["refused_unpaired"] == 0
        assert "heartbeat refused (foreign)" in master.log()  # logged (rate-limited)

        # the node view shows the last accepted heartbeat
        n = await w(s.call(M + "get_node_by_authid", "n1"))
        assert n["heartbeat"] == 2 and n["last_heartbeat"]["count"] == 2 and n["status"] == "online"

        node_logs, worker_logs = stored(master, mrealm["oid"])
        oid1 = uuid.UUID(n1["oid"])
        recs1 = [r for (_, nid), r in node_logs if nid == oid1]
        assert [r.seq for r in recs1] == [1, 2]
        r = recs1[0]
        assert r.sent == sent and r.mrealm_id == uuid.UUID(mrealm["oid"]) and r.period == 10 and r.state == 1
        assert r.session == node1._session_id and r.workers == {"controller": 1}
        assert r.cpu == {"user": 1.5, "iowait": 0.1} and r.memory == {"total": 1} and r.disk == {"read_count": 3}
        assert recs1[1].cpu is None and recs1[1].timestamp > r.timestamp
        workers = {(nid, wid): rec for (_, nid, wid), rec in worker_logs}
        rw1 = workers[(oid1, "rw1")]
        assert rw1.type == "router" and rw1.process == {"pid": 7, "cpu_user": 0.5} and rw1.sent == sent
        assert rw1.router == {"sessions": 1, "roles": 1, "messages": {"call": 3}}
        ctl = [rec for (nid, wid), rec in workers.items() if wid == "controller"][0]
        assert ctl.type == "controller" and ctl.process == {"pid": 8, "status": "sleeping", "num_fds": 12,
                                                            "cpu_user": 2.5}

        # a new session of a node starts its seq again; the old one's numbers do not count
        await node1.close()
        node1 = await connect(master, k1, authrole="node")
        await w(node1.publish(HB, "n1", node_hb(1), options=ACK))
        await settled(s, 4, 2)

        # a clean stop (SIGTERM, at once) writes what is pending: nothing accepted is lost
        for i in range(2, 52):
            node1.publish(HB, "n1", node_hb(i))
        await w(node1.publish(HB, "n1", node_hb(52), options=ACK))
        os.killpg(master.proc.pid, signal.SIGTERM)
        assert master.proc.wait(30) == 0
        node_logs, _ = stored(master, mrealm["oid"])
        assert len([1 for (_, nid), _ in node_logs if nid == oid1]) == 2 + 52
    finally:
        master.stop()
