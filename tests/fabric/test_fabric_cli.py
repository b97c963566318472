"""End to end with the CLI: ``wampfabric master init/start``, two ``wampfabric edge start`` nodes
paired by the superuser (an autobahn-python session calling ``pair_node``), the mrealm's node view
(get_nodes, get_node_by_authid, on_node_ready / on_node_shutdown), the remote API (a router worker
with a realm and a transport started on an edge, used by an autobahn-python client, stopped), a
silent node (SIGSTOP: its TCP connection stays) and a killed one (SIGKILL) going offline, coming
back, a master restart the edges survive by themselves, and the heartbeats stored in the mrealm
database read read-only beside the running master."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from autobahn.wamp.exception import ApplicationError

from fabricnodes import M, R, WfEdge, node_status, wait_for
from masternode import Key, Master, fabric_connect
from support.autobahn_client import Events, connect, w
from support.nodes import FULL_PERMS, free_port
from wampfabric.master.schema import MrealmSchema, open_mrealm_db

pytestmark = pytest.mark.timeout(300)

PERIOD = 1  # the edges' heartbeat_period (s)


async def test_master_and_two_edges(tmp_path):
    su = Key()
    master = Master(superuser=su)
    master.init()
    master.start()
    edges = [WfEdge(tmp_path, name, master.url, period=PERIOD, system_stats=(name == "edge1"))
             for name in ("edge1", "edge2")]
    sessions = []
    try:
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        nodes = {}
        for e in edges:
            nodes[e.name] = await w(g.call("crossbarfabriccenter.mrealm.pair_node", e.pubkey, "m1", e.name, None))
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)
        ready, shutdown, worker_started, realm_started = Events(), Events(), Events(), Events()
        await w(s.subscribe(ready, M + "on_node_ready"))
        await w(s.subscribe(shutdown, M + "on_node_shutdown"))
        await w(s.subscribe(worker_started, M + "on_worker_started"))
        await w(s.subscribe(realm_started, M + "on_realm_started"))
        assert await w(s.call(M + "get_nodes", "online")) == []
        assert sorted(await w(s.call(M + "get_nodes", return_names=True))) == ["edge1", "edge2"]

        for e in edges:
            e.start()
        online = await wait_for(lambda: _online(s, 2), 60, "both edges online")
        assert sorted(online) == sorted(str(n["oid"]) for n in nodes.values())
        assert sorted(await w(s.call(M + "get_nodes", "online", return_names=True))) == ["edge1", "edge2"]
        await ready.wait(2, 30)
        assert sorted(a[0] for a in ready.args) == sorted(str(n["oid"]) for n in nodes.values())

        # heartbeats arrive: the node shows their seq and time
        n1 = await wait_for(lambda: _with_heartbeat(s, "edge1", 2), 20, "edge1 heartbeats")
        assert n1["oid"] == nodes["edge1"]["oid"] and n1["status"] == "online" and n1["workers"] == {}
        assert n1["last_heartbeat"]["period"] == PERIOD and n1["timestamp"].endswith("Z")
        assert (await w(s.call(M + "get_node", n1["oid"])))["authid"] == "edge1"

        # a router worker, a realm, a transport on edge1 through the remote API; keyword arguments
        # as Crossbar.io's shell sends 'start worker' (D5), the node named by its name
        started = await w(s.call(R + "node.start_worker", node_id="edge1", worker_id="rw1", worker_type="router",
                                 worker_options={}), 60)
        assert started["status"] == "started" and started["id"] == "rw1"
        oid1 = n1["oid"]
        realm_cfg = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
        await w(s.call(R + "router.start_router_realm", oid1, "rw1", "realm1", realm_cfg), 30)
        port = free_port()
        t = await w(s.call(R + "router.start_router_transport", oid1, "rw1", "t1",
                           {"type": "websocket", "endpoint": {"type": "tcp", "port": port,
                                                             "interface": "127.0.0.1"}}), 30)
        assert t["id"] == "t1"
        assert await w(s.call(R + "node.get_workers", "edge1")) == ["rw1"]
        assert await w(s.call(R + "router.get_router_realms", oid1, "rw1")) == ["realm1"]

        client = await connect(None, url=f"ws://127.0.0.1:{port}/", realm="realm1")
        try:
            await w(client.register(lambda x: x * 2, "com.example.double"))
            assert await w(client.call("com.example.double", 21)) == 42
        finally:
            await client.shutdown()

        # the view follows the node's events (the names the edge publishes, D8)
        async def view_has_rw1():
            n = await w(s.call(M + "get_node_by_authid", "edge1"))
            rw1 = n["workers"].get("rw1")
            return rw1 if rw1 and "realm1" in rw1["realms"] and "t1" in rw1["transports"] else None
        rw1 = await wait_for(view_has_rw1, 10, "rw1 with realm1 and t1 in the node view")
        assert rw1["type"] == "router" and rw1["status"] == "started"

        async def rw1_heartbeat_after(seq):
            n = await w(s.call(M + "get_node_by_authid", "edge1"))
            hb = n["workers"]["rw1"].get("heartbeat")
            return hb if hb and hb["seq"] > seq else None
        first = await wait_for(lambda: rw1_heartbeat_after(0), 10, "a heartbeat of rw1")
        await wait_for(lambda: rw1_heartbeat_after(first["seq"]), 10, "a second heartbeat of rw1")
        await worker_started.wait(1, 10)
        assert worker_started.args[0][0] == oid1 and worker_started.args[0][1]["id"] == "rw1"
        await realm_started.wait(1, 10)
        assert realm_started.args[0][:2] == [oid1, "rw1"]

        # errors: an unknown node, the node's own error passed through
        with pytest.raises(ApplicationError) as err:
            await w(s.call(R + "node.get_workers", "nosuchnode"))
        assert err.value.error == "crossbar.error.no_such_object"
        with pytest.raises(ApplicationError) as err:
            await w(s.call(R + "node.get_worker", "edge1", "nosuchworker"))
        assert err.value.error == "crossbar.error.no_such_worker"

        # stop the transport and the worker
        await w(s.call(R + "router.stop_router_transport", oid1, "rw1", "t1"), 30)
        await w(s.call(R + "node.stop_worker", node_id="edge1", worker_id="rw1"), 30)

        async def rw1_gone():
            return "rw1" not in (await w(s.call(M + "get_node_by_authid", "edge1")))["workers"]
        await wait_for(rw1_gone, 10, "rw1 gone from the view")
        assert await w(s.call(R + "node.get_workers", oid1)) == []

        # a silent node whose connection stays (SIGSTOP): offline within two heartbeat periods
        e2 = edges[1]
        await wait_for(lambda: _with_heartbeat(s, "edge2", 2), 20, "edge2 heartbeats")
        e2.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        await wait_for(lambda: _status_is(s, "edge2", "offline"), 10, "edge2 offline after SIGSTOP", 0.05)
        assert time.monotonic() - t0 <= 2 * PERIOD + 0.6
        await shutdown.wait(1, 5)
        assert shutdown.args[-1][0] == str(nodes["edge2"]["oid"])
        with pytest.raises(ApplicationError) as err:
            await w(s.call(R + "node.get_workers", "edge2"))
        assert err.value.error == "crossbar.error.node_offline"
        e2.signal(signal.SIGCONT)  # its session was closed: it reconnects by itself
        await wait_for(lambda: _status_is(s, "edge2", "online"), 40, "edge2 online again after SIGCONT")

        # SIGKILL: offline at once (the connection closes); started again: online
        e2.kill()
        t0 = time.monotonic()
        await wait_for(lambda: _status_is(s, "edge2", "offline"), 10, "edge2 offline after SIGKILL", 0.05)
        assert time.monotonic() - t0 <= 2 * PERIOD + 0.6
        e2.start()
        await wait_for(lambda: _status_is(s, "edge2", "online"), 40, "edge2 online after its restart")
        await wait_for(lambda: _with_heartbeat(s, "edge2", 1), 20, "edge2 heartbeats after its restart")

        status = await w(s.call(M + "get_status"))
        hb = status["heartbeats"]
        assert hb["node_accepted"] > 0 and hb["worker_accepted"] > 0 and hb["dropped"] == 0
        assert all(hb[f"refused_{r}"] == 0 for r in ("foreign", "unpaired", "malformed", "replayed", "pubkey")), hb

        # the master restarts: the edges come back by themselves; nothing stored is lost
        for x in sessions:
            await x.close()
        sessions.clear()
        master.stop()
        master.start()
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)
        await wait_for(lambda: _online(s, 2), 90, "both edges online after the master restart", 0.5)
        await wait_for(lambda: _with_heartbeat(s, "edge1", 1), 20, "edge1 heartbeats after the master restart")

        def read_logs():
            mdb = open_mrealm_db(master.cbdir, mrealm["oid"], readonly=True)
            try:
                ms = MrealmSchema.attach(mdb)
                with mdb.begin() as txn:
                    return (list(ms.mnode_logs.select(txn, return_keys=True)),
                            list(ms.mworker_logs.select(txn, return_keys=True)))
            finally:
                mdb.close()

        e1_oid = uuid.UUID(nodes["edge1"]["oid"])

        async def stored_from_both_sessions():
            # the master writes heartbeats in batches (every 100 ms): a heartbeat seen by the API
            # may not be in the database yet
            logs = read_logs()
            return logs if len({r.session for (_, n), r in logs[0] if n == e1_oid}) >= 2 else None

        node_logs, worker_logs = await wait_for(stored_from_both_sessions, 20,
                                                "edge1 heartbeats of both master runs in the database")
        by_node = {}
        for (ts, node_oid), rec in node_logs:
            assert rec.timestamp == ts and rec.node_id == node_oid
            assert rec.mrealm_id == uuid.UUID(mrealm["oid"]) and isinstance(rec.sent, int) and rec.seq >= 1
            by_node.setdefault(node_oid, []).append(rec)
        assert set(by_node) == {uuid.UUID(n["oid"]) for n in nodes.values()}
        e1_logs = by_node[uuid.UUID(nodes["edge1"]["oid"])]
        assert e1_logs[-1].cpu and "iowait" in e1_logs[-1].cpu and e1_logs[-1].memory
        assert len({r.session for r in e1_logs}) >= 2  # before and after the master restart
        workers = {}
        for (ts, node_oid, wid), rec in worker_logs:
            workers.setdefault((node_oid, wid), []).append(rec)
            assert isinstance(rec.process, dict) and rec.process.get("pid")
        e1 = uuid.UUID(nodes["edge1"]["oid"])
        assert (e1, "controller") in workers and (e1, "rw1") in workers, sorted(workers)
        assert any(r.router and r.router["messages"].get("call", 0) >= 1 for r in workers[(e1, "rw1")])
        keys = [k for k, _ in node_logs]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
    finally:
        for x in sessions:
            await x.close()
        for e in edges:
            e.stop()
        master.stop()


async def _online(s, n):
    online = await w(s.call(M + "get_nodes", "online"))
    return online if len(online) == n else None


async def _with_heartbeat(s, name, seq):
    n = await w(s.call(M + "get_node_by_authid", name))
    return n if n["status"] == "online" and (n["heartbeat"] or 0) >= seq else None


async def _status_is(s, name, status):
    return await node_status(s, name) == status
