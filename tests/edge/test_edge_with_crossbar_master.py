"""A wampfabric edge node (``wampfabric edge start``, a separate process) managed by Crossbar.io
26.10's master (skipped without bench/.venv-crossbar): pairing, the management bridge, remote
management, heartbeats stored in the master's databases, an unpaired node that keeps trying, a
master restarted under a running edge.  The superuser's client is autobahn-python."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.autobahn_client import Events, connect, w
from support.crossbar_master import CrossbarMaster, requires_crossbar
from support.nodes import FULL_PERMS, free_port, wait_port

pytestmark = [requires_crossbar, pytest.mark.timeout(240)]

NODE_PREFIX = "crossbarfabriccenter.node."


class Edge:
    """``wampfabric edge start --cbdir DIR`` as a user runs it, its log in a file."""

    def __init__(self, cbdir: Path, env: dict | None = None):
        self.cbdir = cbdir
        self.log_path = cbdir.parent / f"{cbdir.name}.log"
        environ = {k: v for k, v in os.environ.items() if k != "CROSSBAR_FABRIC_URL"}
        environ.update(env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "edge", "start", "--cbdir", str(cbdir)],
                                         stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, text: str, count: int = 1, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if log.count(text) >= count:
                return log
            assert self.proc.poll() is None, f"edge exited ({self.proc.returncode}):\n{log[-4000:]}"
            assert time.monotonic() < deadline, f"no {count}x {text!r} in the edge log within {timeout}s:\n{log[-4000:]}"
            await asyncio.sleep(0.1)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing of it may stay
        except ProcessLookupError:
            pass
        return self.proc.returncode


def edge_keys(cbdir: Path) -> str:
    """``wampfabric edge keys``: the public key it prints."""
    r = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "keys", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("public-key-ed25519: ")]
    assert line, r.stdout
    return line[0].split(": ", 1)[1]


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    m = CrossbarMaster(tmp_path_factory.mktemp("cbmaster"))
    m.start()
    asyncio.run(m.create_mrealm("mrealm1"))
    yield m
    m.stop()


@pytest.fixture
def edges():
    started = []

    def start(cbdir, env=None):
        e = Edge(cbdir, env)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


async def remote(session, proc, *args, **kwargs):
    return await w(session.call(f"crossbarfabriccenter.remote.{proc}", *args, **kwargs), 30)


async def node_procedures(session, name: str) -> list[str]:
    """The procedures registered on the master's mrealm under ``crossbarfabriccenter.node.<name>.``."""
    regs = await w(session.call("wamp.registration.list"))
    uris = []
    for rid in [r for ids in regs.values() for r in ids]:
        uri = (await w(session.call("wamp.registration.get", rid)))["uri"]
        if uri.startswith(f"{NODE_PREFIX}{name}."):
            uris.append(uri)
    return sorted(uris)


async def test_managed_edge_node(master, edges, tmp_path):
    """A paired edge found through ``key.activate``: its management API and events on the master,
    a router worker, realm and transport started remotely, a client using it, and the node and
    worker heartbeats (with the router's message counts) stored by the master."""
    cbdir = tmp_path / "edge1"
    pubkey = edge_keys(cbdir)
    assert (cbdir / "key.priv").stat().st_mode & 0o777 == 0o600
    node = await master.pair_node(pubkey, "mrealm1", "edge1", {"note": "test"})
    # the activation file a master's watch-to-pair writes beside the node key
    (cbdir / "key.activate").write_text(
        "Crossbar.io node activation\n\n"
        f"created-at: 2026-01-01T00:00:00.000Z\nmanagement-url: {master.url}\nmanagement-realm: mrealm1\n"
        f"node-oid: {node['oid']}\nnode-cluster-ip: unknown\nnode-authid: edge1\npublic-key-ed25519: {pubkey}\n")
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"id": "edgenode", "fabric": {
        "heartbeat": {"startup_delay": 1, "heartbeat_period": 2}}}}))
    edge = edges(cbdir, {"CROSSBAR_FABRIC_URL": "ws://127.0.0.1:1/ws"})  # key.activate comes first
    log = await edge.wait_log("Management bridge up")
    assert f"Master from activation file {cbdir / 'key.activate'}" in log
    assert "node 'edge1' in management realm 'mrealm1'" in log
    await edge.wait_log("Uplink check: management realm 'mrealm1' of the master answers")

    s = await master.superuser("mrealm1")
    events = Events()
    try:
        await w(s.subscribe(events, f"{NODE_PREFIX}edge1.", options=_prefix()))
        procs = await node_procedures(s, "edge1")
        assert f"{NODE_PREFIX}edge1.get_status" in procs and f"{NODE_PREFIX}edge1.start_worker" in procs
        # D1: nothing that signs with the node key
        assert not [p for p in procs if p.rsplit(".", 1)[-1] in ("sign", "sign_challenge")], procs

        oid = node["oid"]
        status = await remote(s, "node.get_status", oid)
        assert status["pubkey"] == pubkey and status["management_node_id"] == "edge1"
        assert status["management_realm"] == "mrealm1" and status["management_node_extra"] == {"note": "test"}
        assert await remote(s, "node.get_workers", oid) == []
        started = await remote(s, "node.start_worker", oid, "rw1", "router", {})
        assert started["id"] == "rw1" and started["status"] == "started"
        assert await remote(s, "node.get_workers", oid) == ["rw1"]
        # keyword arguments are forwarded too (D5)
        info = await w(s.call(f"{NODE_PREFIX}edge1.get_worker", worker_id="rw1"))
        assert info["id"] == "rw1"
        # the worker's procedures appear on the master as it registers them
        for _ in range(50):
            if f"{NODE_PREFIX}edge1.worker.rw1.start_router_realm" in await node_procedures(s, "edge1"):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("rw1's procedures were not registered on the master")
        port = free_port()
        await remote(s, "router.start_router_realm", oid, "rw1", "realm1",
                     {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]})
        await remote(s, "router.start_router_transport", oid, "rw1", "tr1",
                     {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port}})
        wait_port(port)
        # an error of the node comes back as it is
        with pytest.raises(Exception) as ei:
            await remote(s, "node.start_worker", oid, "rw1", "router", {})
        assert "crossbar.error.worker_already_running" in str(ei.value)

        # the events the node really publishes (D8)
        await events.wait(3, 10)
        await asyncio.sleep(0.5)
        topics = {d.topic for _, _, d in events.items}
        assert f"{NODE_PREFIX}edge1.worker.rw1.on_worker_ready" in topics
        assert f"{NODE_PREFIX}edge1.on_worker_ready" in topics
        assert f"{NODE_PREFIX}edge1.worker.rw1.on_realm_started" in topics

        # a client of the edge's router: 5 calls, 3 acknowledged publishes with one subscriber
        app = await connect(None, url=f"ws://127.0.0.1:{port}/", realm="realm1")
        try:
            await w(app.register(lambda x: x * 2, "com.example.double"))
            got = Events()
            await w(app.subscribe(got, "com.example.topic"))
            for i in range(5):
                assert await w(app.call("com.example.double", i)) == 2 * i
            app2 = await connect(None, url=f"ws://127.0.0.1:{port}/", realm="realm1")
            try:
                for i in range(3):
                    await w(app2.publish("com.example.topic", i, options=_ack()))
                await got.wait(3, 10)
                # heartbeats go on; the router's counts arrive with the next ones
                await asyncio.sleep(5)
                stored = master.heartbeats("mrealm1")
                # the master holds the node online (heartbeats, and get_status with workers_by_type)
                seen = await w(s.call("crossbarfabriccenter.mrealm.get_node_by_authid", "edge1"))
                assert seen["status"] == "online", seen
            finally:
                await app2.shutdown()
        finally:
            await app.shutdown()
    finally:
        await s.shutdown()

    # node heartbeats are stored: they carry the node's public key (D3)
    nodes = stored["nodes"]
    assert len(nodes) >= 3, stored
    assert {n["node_id"] for n in nodes} == {oid}
    assert nodes[-1]["workers"]["controller"] == 1 and nodes[-1]["workers"]["router"] == 1
    assert nodes[-1]["period"] == 2 and nodes[-1]["memory"]["total"] > 0
    seqs = [n["seq"] for n in nodes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # worker heartbeats: the controller's and the router's in one schema (D4), process stats stored
    by_worker = {}
    for rec in stored["workers"]:
        by_worker.setdefault(rec["worker_id"], []).append(rec)
    assert {"controller", "rw1"} <= set(by_worker)
    assert by_worker["controller"][-1]["type"] == "controller"
    assert by_worker["controller"][-1]["process"]["num_threads"] > 0
    rw1 = by_worker["rw1"]
    assert rw1[-1]["type"] == "router" and rw1[-1]["process"]["num_fds"] > 0
    # messages per interval: their sum over the heartbeats is what the router routed
    total = {k: sum(r["router"]["messages"][k] for r in rw1) for k in rw1[-1]["router"]["messages"]}
    assert total["call"] == 5 and total["invocation"] == 5 and total["yield"] == 5 and total["result"] == 5
    assert total["publish"] == 3 and total["published"] == 3 and total["event"] == 3
    assert total["register"] == 1 and total["registered"] == 1
    assert total["subscribe"] == 1 and total["subscribed"] == 1
    assert max(r["router"]["sessions"] for r in rw1) >= 2


async def test_unpaired_edge_keeps_trying_and_joins_once_paired(master, edges, tmp_path):
    """A fresh node directory with only the key and the master URL: the edge starts (default
    config), says how to pair it, keeps serving and trying, and joins once paired (D6)."""
    cbdir = tmp_path / "edge2"
    pubkey = edge_keys(cbdir)
    assert sorted(p.name for p in cbdir.iterdir()) == ["key.priv", "key.pub"]
    edge = edges(cbdir, {"CROSSBAR_FABRIC_URL": master.url})
    log = await edge.wait_log("This node is not paired", timeout=30)
    assert pubkey in log and "trying again in" in log
    assert (cbdir / "config.json").exists()
    # the node serves meanwhile: its management API answers over the CLI
    r = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "status", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    await edge.wait_log("This node is not paired", count=2, timeout=30)
    assert edge.log().count("This node is not paired") == 2  # one line per attempt
    await master.pair_node(pubkey, "mrealm1", "edge2", None)
    await edge.wait_log("Management bridge up", timeout=60)
    s = await master.superuser("mrealm1")
    try:
        node = await w(s.call("crossbarfabriccenter.mrealm.get_node_by_authid", "edge2"))
        assert (await remote(s, "node.get_status", node["oid"]))["pubkey"] == pubkey
    finally:
        await s.shutdown()
    assert edge.stop() == 0


async def test_edge_reconnects_after_master_restart(edges, tmp_path):
    """The master stops and starts again: the edge rides it out and is managed again."""
    # a short directory of its own: Crossbar.io's master listens on Unix sockets in it, and a Unix
    # socket path has at most 107 bytes (pytest-xdist's tmp_path is longer)
    m = CrossbarMaster()
    try:
        m.start()
        await m.create_mrealm("mrealm2")
        cbdir = tmp_path / "edge3"
        pubkey = edge_keys(cbdir)
        node = await m.pair_node(pubkey, "mrealm2", "edge3", None)
        (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {
            "transport": {"type": "websocket", "url": m.url,
                          "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": m.port}}}}}))
        edge = edges(cbdir)
        await edge.wait_log("Management bridge up")
        assert "Master from controller.fabric.transport" in edge.log()
        m.stop()
        await edge.wait_log("Uplink to the master at", timeout=30)
        assert "reconnecting in" in edge.log()
        # the node serves on without its master
        r = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "status", "--cbdir", str(cbdir)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        m.start()
        await edge.wait_log("Management bridge up", count=2, timeout=90)
        s = await m.superuser("mrealm2")
        try:
            assert (await remote(s, "node.get_status", node["oid"]))["management_node_id"] == "edge3"
        finally:
            await s.shutdown()
        assert edge.proc.poll() is None
    finally:
        m.stop()


def _prefix():
    from autobahn.wamp.types import SubscribeOptions

    return SubscribeOptions(match="prefix", details_arg="details")


def _ack():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True, exclude_me=False)
