"""The edge's uplink over TLS with cryptosign bound to the TLS channel, against a wampfabric router
standing in for a master (no Crossbar.io needed): the router authenticates the node key as a
static principal (authid ``edge9``, realm ``mrealm1``, role ``node`` allowed only its own
prefix), an autobahn-python session plays the master's side: it calls the node's procedures and
receives its events and heartbeats.  The router is killed and started again: the edge comes back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from support.autobahn_client import Events, connect, w
from support.nodes import FULL_PERMS, free_port, start_node, stop_node, wait_port
from support.tls import make_pki

from test_edge_with_crossbar_master import Edge, edge_keys

pytestmark = pytest.mark.timeout(120)

NODE = "crossbarfabriccenter.node.edge9"


def stand_in_master(pki: dict, pubkey: str):
    def config(ports, rs_path):
        ports.clear()
        ports.update(wss=free_port(), ws=free_port())
        node_role = {"name": "node", "permissions": [
            {"uri": f"{NODE}.", "match": "prefix", "allow": {"register": True, "publish": True}},
            {"uri": "crossbarfabriccenter.node.on_", "match": "prefix", "allow": {"publish": True}},
            {"uri": "crossbarfabriccenter.mrealm.get_status", "match": "exact", "allow": {"call": True}}]}
        return {"version": 2, "controller": {}, "workers": [{"type": "router", "realms": [
            {"name": "mrealm1", "roles": [node_role, {"name": "owner", "permissions": [FULL_PERMS]}]}],
            "transports": [
                {"type": "websocket", "serializers": ["cbor", "json"],
                 "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["wss"],
                              "tls": {"key": pki["server.key"], "certificate": pki["server.pem"]}},
                 "auth": {"cryptosign": {"type": "static", "principals": {
                     "edge9": {"authorized_keys": [pubkey], "role": "node", "realm": "mrealm1"}}}}},
                {"type": "websocket", "serializers": ["json"],
                 "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["ws"]},
                 "auth": {"anonymous": {"type": "static", "role": "owner"}}}]}]}

    return config


def restart(node) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(node.log_path, "ab") as log:
        node.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(node.cbdir)],
                                     cwd=node.root, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
    for port in node.ports.values():
        wait_port(port, node.proc)


async def test_uplink_over_tls_with_channel_binding(tmp_path):
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    cbdir = tmp_path / "edge9"
    pubkey = edge_keys(cbdir)
    master = start_node(stand_in_master(pki, pubkey))
    edge = None
    try:
        (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {
            "transport": {"type": "websocket", "url": f"wss://localhost:{master.ports['wss']}/",
                          "endpoint": {"type": "tcp", "host": "localhost", "port": master.ports["wss"],
                                       "tls": {"hostname": "localhost", "ca_certificates": [pki["ca.pem"]]}}},
            "heartbeat": {"startup_delay": 0, "heartbeat_period": 1, "include_system_stats": False}}}}))
        observer = await connect(None, url=f"ws://127.0.0.1:{master.ports['ws']}/", realm="mrealm1")
        try:
            beats, worker_beats, events = Events(), Events(), Events()
            await w(observer.subscribe(beats, "crossbarfabriccenter.node.on_heartbeat"))
            await w(observer.subscribe(worker_beats, "crossbarfabriccenter.node.on_worker_heartbeat"))
            await w(observer.subscribe(events, f"{NODE}.on_worker_ready"))
            edge = Edge(cbdir)
            log = await edge.wait_log("Management bridge up")
            assert "node 'edge9' in management realm 'mrealm1'" in log and "(TLS)" in log
            # nobody answers crossbarfabriccenter.mrealm.get_status here: the uplink check tries again
            await edge.wait_log("Uplink check: the master's management realm does not answer yet; again in 5 s")

            status = await w(observer.call(f"{NODE}.get_status"))
            assert status["management_node_id"] == "edge9" and status["management_realm"] == "mrealm1"
            assert status["pubkey"] == pubkey
            started = await w(observer.call(f"{NODE}.start_worker", "c1", "container", {}), 30)
            assert started["status"] == "started"
            await events.wait(1, 10)
            assert events.items[0][0][0]["id"] == "c1"

            node_id, hb = (await beats.wait(1, 10))[0][0]
            assert node_id == "edge9" and hb["pubkey"] == pubkey and hb["mrealm_id"] == "mrealm1"
            assert hb["period"] == 1 and hb["state"] == 1 and "system" not in hb
            assert hb["workers"]["controller"] == 1
            await worker_beats.wait(3, 10)
            workers = {}
            for (nid, wid, whb), _, _ in worker_beats.items:
                assert nid == "edge9"
                workers[wid] = whb
            await asyncio.sleep(1.5)
            for (nid, wid, whb), _, _ in worker_beats.items:
                workers[wid] = whb
            assert set(workers) == {"controller", "c1"}
            for wid, whb in workers.items():
                assert set(whb) == {"type", "process", "timestamp", "period", "mrealm_id", "seq", "state"}, whb
                assert whb["process"]["pid"] > 0 and isinstance(whb["process"]["cpu_user"], float)
            assert workers["c1"]["type"] == "container" and workers["controller"]["type"] == "controller"
            seqs = [hb["seq"] for (_, hb), _, _ in beats.items]
            assert seqs == list(range(1, len(seqs) + 1))

            # the node may not publish or register outside its prefix: its bridge never tries
            assert "not accepted by the master" not in edge.log() and "Cannot register" not in edge.log()
        finally:
            await observer.shutdown()

        # the stand-in master dies and comes back on the same ports: the edge reconnects by itself
        stop_node(master)
        await edge.wait_log("Uplink to the master at", timeout=20)
        restart(master)
        await edge.wait_log("Management bridge up", count=2, timeout=60)
        observer = await connect(None, url=f"ws://127.0.0.1:{master.ports['ws']}/", realm="mrealm1")
        try:
            assert await w(observer.call(f"{NODE}.get_workers")) == ["c1"]
            beats = Events()
            await w(observer.subscribe(beats, "crossbarfabriccenter.node.on_heartbeat"))
            (_, hb), _, _ = (await beats.wait(1, 10))[0]
            assert hb["seq"] > seqs[-1]  # the sequence goes on across reconnects
        finally:
            await observer.shutdown()
    finally:
        if edge is not None:
            assert edge.stop() == 0
        stop_node(master)
