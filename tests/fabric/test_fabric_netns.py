"""The fabric across hosts: the master and two edges, each in its own network namespace on a
switch (tests/support/netns.py), run with the CLI as on separate machines (``wampfabric master
init --listen <its address>`` / ``master start``, ``wampfabric edge keys`` / ``edge start`` with
``CROSSBAR_FABRIC_URL``). The superuser pairs both from the master's host; a router worker, realm
and transport are started on edge1 remotely and used by a client on a fourth host; then edge2's
cable is pulled: the master marks edge2 (only) offline within two heartbeat periods while edge2
serves its local clients on; the cable back, edge2 reconnects by itself and its heartbeats go on
with the next seq. The heartbeats are read from the mrealm database afterwards, read-only.

Skipped, with the reason, where network namespaces cannot be made (found by trying)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import uuid
from urllib.parse import urlparse

import pytest
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer
from autobahn.wamp.types import ComponentConfig

from fabricnodes import M, R, WfEdge, wait_for
from masternode import WAMPFABRIC, FabricSession, Key, Master, cli
from support.autobahn_client import Client, Events, w
from support.netns import Host, network_or_skip
from support.nodes import FULL_PERMS
from wampfabric.master.schema import MrealmSchema, open_mrealm_db

pytestmark = pytest.mark.timeout(180)

PERIOD = 1  # the edges' heartbeat_period (s); startup_delay 0


@pytest.fixture
def net():
    """Four hosts on a switch: master, edge1, edge2, client."""
    yield from network_or_skip("wf", ("master", "edge1", "edge2", "client"))


class NsMaster(Master):
    """The master node run with the CLI on ``host``, listening on the host's address."""

    def __init__(self, host: Host, superuser: Key):
        super().__init__(superuser=superuser)
        self.host = host
        self.port = host.free_port()

    @property
    def url(self) -> str:
        return f"ws://{self.host.ip}:{self.port}/ws"

    def init(self) -> subprocess.CompletedProcess:
        r = cli("master", "init", "--cbdir", str(self.cbdir), "--listen", f"{self.host.ip}:{self.port}", env=self.env)
        assert r.returncode == 0, r.stderr + r.stdout
        return r

    def start(self) -> "NsMaster":
        with open(self.log_path, "ab") as log:
            self.proc = self.host.popen([*WAMPFABRIC, "master", "start", "--cbdir", str(self.cbdir)], stdout=log,
                                        stderr=subprocess.STDOUT, env=self.env, cwd=self.root)
        try:
            self.host.wait_port(self.host.ip, self.port, self.proc)
            self.wait_log("Node center1 ready")
        except Exception:
            self.kill()
            raise RuntimeError(f"master did not start:\n{self.log()[-4000:]}")
        return self


class NsEdge(WfEdge):
    """``wampfabric edge start`` on ``host``."""

    def __init__(self, root, name, master_url, host: Host, **kw):
        super().__init__(root, name, master_url, **kw)
        self.host = host

    def start(self) -> "NsEdge":
        with open(self.log_path, "ab") as log:
            self.proc = self.host.popen([*WAMPFABRIC, "edge", "start", "--cbdir", str(self.cbdir)], stdout=log,
                                        stderr=subprocess.STDOUT, env=self.env)
        return self


async def _connect_from(host: Host, url: str, session):
    """Connect an autobahn-python session over a socket of ``host``; wait until it joined."""
    u = urlparse(url)
    sock = await asyncio.get_running_loop().run_in_executor(None, host.connect, u.hostname, u.port)
    factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[CBORSerializer()])
    await w(asyncio.get_running_loop().create_connection(factory, sock=sock))
    await w(asyncio.shield(session.joined))
    return session


async def superuser_from(host: Host, url: str, key: Key, realm):
    return await _connect_from(host, url, FabricSession(ComponentConfig(realm=realm), key, realm))


async def client_from(host: Host, url: str, realm: str) -> Client:
    return await _connect_from(host, url, Client(ComponentConfig(realm=realm)))


async def test_fabric_across_hosts_link_cut_and_restored(net, tmp_path):
    t_start = time.monotonic()
    hm, h1, h2, hc = (net.hosts[r] for r in ("master", "edge1", "edge2", "client"))
    su = Key()
    master = NsMaster(hm, su)
    master.init()
    master.start()
    edges = {name: NsEdge(tmp_path, name, master.url, net.hosts[name], period=PERIOD) for name in ("edge1", "edge2")}
    # edge2 has a router of its own for the clients on its host (the master has nothing to do with it)
    local_port = h2.free_port("127.0.0.1")
    cfg_path = edges["edge2"].cbdir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["workers"] = [{"type": "router", "id": "local1",
                       "realms": [{"name": "local", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
                       "transports": [{"type": "websocket", "id": "lt1", "endpoint": {
                           "type": "tcp", "port": local_port, "interface": "127.0.0.1"}}]}]
    cfg_path.write_text(json.dumps(cfg))
    local_url = f"ws://127.0.0.1:{local_port}/"
    sessions = []
    passed = False
    try:
        # the superuser, on the master's host, makes an mrealm and pairs both edges
        g = await superuser_from(hm, master.url, su, None)
        sessions.append(g)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        nodes = {name: await w(g.call("crossbarfabriccenter.mrealm.pair_node", e.pubkey, "m1", name, None))
                 for name, e in edges.items()}
        s = await superuser_from(hm, master.url, su, "m1")
        sessions.append(s)
        shutdown = Events()
        await w(s.subscribe(shutdown, M + "on_node_shutdown"))

        for e in edges.values():
            e.start()
        await wait_for(lambda: _online(s, ["edge1", "edge2"]), 60, "both edges online")
        n1 = await wait_for(lambda: _with_heartbeat(s, "edge1", 2), 20, "edge1 heartbeats")
        n2 = await wait_for(lambda: _with_heartbeat(s, "edge2", 2), 20, "edge2 heartbeats")
        assert n1["last_heartbeat"]["period"] == n2["last_heartbeat"]["period"] == PERIOD
        assert (await w(s.call(M + "get_status")))["nodes_online"] == 2

        # a router worker, realm and transport on edge1, started remotely, listening on edge1's address
        started = await w(s.call(R + "node.start_worker", "edge1", "rw1", "router", {}), 60)
        assert started["id"] == "rw1" and started["status"] == "started"
        realm_cfg = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
        await w(s.call(R + "router.start_router_realm", "edge1", "rw1", "realm1", realm_cfg), 30)
        port = h1.free_port()
        t = await w(s.call(R + "router.start_router_transport", "edge1", "rw1", "t1", {
            "type": "websocket", "endpoint": {"type": "tcp", "port": port, "interface": h1.ip}}), 30)
        assert t["id"] == "t1"
        assert await w(s.call(R + "router.get_router_transports", "edge1", "rw1")) == ["t1"]

        # a client on the fourth host uses it
        app_url = f"ws://{h1.ip}:{port}/"
        c1 = await client_from(hc, app_url, "realm1")
        sessions.append(c1)
        c1b = await client_from(hc, app_url, "realm1")
        sessions.append(c1b)
        await w(c1.register(lambda x: x * 2, "com.example.double"))
        assert await w(c1b.call("com.example.double", 21)) == 42
        me = await w(c1b.call("wamp.session.get", c1b.session_id))
        assert me["transport"]["peer"].startswith(f"tcp4:{hc.ip}:"), me["transport"]

        # edge2's local client, on edge2's host
        lc = await client_from(h2, local_url, "local")
        sessions.append(lc)
        await w(lc.register(lambda: "local answer", "com.example.here"))

        # pull edge2's cable: offline within two heartbeat periods, edge1 stays online
        before = await w(s.call(M + "get_node_by_authid", "edge2"))
        seq_before, session_before = before["heartbeat"], before["session"]
        e1_seq_before = (await w(s.call(M + "get_node_by_authid", "edge1")))["heartbeat"]
        net.cut(h2)
        t0 = time.monotonic()
        assert not net.carrier(h2)
        await wait_for(lambda: _status_is(s, "edge2", "offline"), 10, "edge2 offline after its cable was pulled", 0.05)
        took = time.monotonic() - t0
        assert took <= 2 * PERIOD + 1.0, took
        await shutdown.wait(1, 5)
        assert [a[0] for a in shutdown.args] == [nodes["edge2"]["oid"]]
        quiet = re.findall(r"Node '(\w+)' .* no heartbeat for ([\d.]+) s \(period (\d+) s\)", master.log())
        assert [(n, p) for n, _, p in quiet] == [("edge2", str(PERIOD))], quiet
        assert float(quiet[0][1]) <= 2 * PERIOD + 0.75, quiet  # the master's own measure: since the last heartbeat

        # edge1 goes on (heartbeats keep coming) while edge2 is away
        await wait_for(lambda: _with_heartbeat(s, "edge1", e1_seq_before + 2), 10, "edge1 heartbeats during the cut")
        assert await w(s.call(M + "get_nodes", "online", return_names=True)) == ["edge1"]
        assert (await w(s.call(M + "get_status")))["nodes_online"] == 1
        assert await w(s.call(R + "node.get_workers", "edge1")) == ["rw1"]
        assert await w(c1b.call("com.example.double", 4)) == 8

        # edge2 serves its local clients on: the session it had, and a new one
        assert await w(lc.call("com.example.here")) == "local answer"
        lc2 = await client_from(h2, local_url, "local")
        sessions.append(lc2)
        assert await w(lc2.call("com.example.here")) == "local answer"
        # the master is really out of edge2's reach
        with pytest.raises(OSError):
            await asyncio.get_running_loop().run_in_executor(None, lambda: h2.connect(hm.ip, master.port, 1.0))
        await asyncio.sleep(2 * PERIOD)  # the cut lasts a while: more heartbeats go nowhere
        assert await _status_is(s, "edge2", "offline")
        # edge2 notices the dead uplink by itself while the cable is still out (its WebSocket pings
        # go unanswered: pinged after a heartbeat period of silence, dropped a period later)

        async def edge2_noticed():
            return re.search(r"Uplink to the master at .* lost \(", edges["edge2"].log())

        await wait_for(edge2_noticed, 4 * PERIOD + 3, "edge2 noticing its dead uplink during the cut", 0.1)
        assert not net.carrier(h2)

        # the cable back: edge2 reconnects by itself, its heartbeats go on with the next seq
        net.restore(h2)
        t1 = time.monotonic()
        after = await wait_for(lambda: _with_heartbeat(s, "edge2", seq_before + 1), 40,
                               "edge2 online with new heartbeats after the cable is back", 0.2)
        reconnect = time.monotonic() - t1
        assert after["session"] != session_before
        assert edges["edge2"].proc.poll() is None  # the same node process: it was not restarted
        assert sorted(await w(s.call(M + "get_nodes", "online", return_names=True))) == ["edge1", "edge2"]
        n2_seq = after["heartbeat"]
        await wait_for(lambda: _with_heartbeat(s, "edge2", n2_seq + 1), 10, "edge2's next heartbeat")
        assert await w(lc.call("com.example.here")) == "local answer"
        # what edge2 saw: the lost uplink, then its backoff
        assert re.search(r"Uplink to the master at .* lost \(.*\); reconnecting in",
                         edges["edge2"].log()), edges["edge2"].log()[-3000:]

        status = await w(s.call(M + "get_status"))
        hb = status["heartbeats"]
        assert hb["dropped"] == 0 and all(hb[f"refused_{r}"] == 0 for r in (
            "foreign", "unpaired", "malformed", "replayed", "pubkey")), hb
        await _close_all(sessions)

        # the stored heartbeats, read-only beside the running master
        mdb = open_mrealm_db(master.cbdir, mrealm["oid"], readonly=True)
        try:
            ms = MrealmSchema.attach(mdb)
            with mdb.begin() as txn:
                node_logs = list(ms.mnode_logs.select(txn, return_keys=True))
                worker_logs = list(ms.mworker_logs.select(txn, return_keys=True))
        finally:
            mdb.close()
        by_node: dict = {}
        for (ts, node_oid), rec in node_logs:
            by_node.setdefault(node_oid, []).append(rec)
        e1, e2 = (uuid.UUID(nodes[n]["oid"]) for n in ("edge1", "edge2"))
        assert set(by_node) == {e1, e2}
        e2_logs = by_node[e2]
        seqs = [r.seq for r in e2_logs]
        assert seqs == sorted(set(seqs)), seqs  # one node process: seq only rises, across the reconnect
        sessions_seen = [r.session for r in e2_logs]
        first_new = sessions_seen.index(after["session"])
        assert set(sessions_seen[:first_new]) == {session_before}
        assert set(sessions_seen[first_new:]) == {after["session"]}
        assert seqs[first_new - 1] >= seq_before and seqs[first_new] > seqs[first_new - 1] > 1
        # edge1 was stored all along: no gap of more than two periods in its records
        e1_times = [r.timestamp for r in by_node[e1]]
        gaps = [(b - a) / 1e9 for a, b in zip(e1_times, e1_times[1:])]
        assert max(gaps) < 2 * PERIOD + 0.5, max(gaps)
        workers = {(node_oid, wid) for (ts, node_oid, wid), rec in worker_logs}
        assert {(e1, "controller"), (e1, "rw1"), (e2, "controller"), (e2, "local1")} <= workers, sorted(workers)
        print(f"offline after the cut: {took:.2f} s; online again after the restore: {reconnect:.2f} s; "
              f"test: {time.monotonic() - t_start:.1f} s")
    except BaseException:
        print(f"logs: {master.log_path}, {', '.join(str(e.log_path) for e in edges.values())}")
        raise
    else:
        passed = True
    finally:
        await _close_all(sessions)
        for e in edges.values():
            e.stop()
        master.stop()
        if passed:
            shutil.rmtree(master.root, ignore_errors=True)


async def _close_all(sessions) -> None:
    for x in sessions:
        try:
            await (x.close() if isinstance(x, FabricSession) else x.shutdown())
        except Exception:
            pass
    sessions.clear()


async def _online(s, names):
    return sorted(await w(s.call(M + "get_nodes", "online", return_names=True))) == names


async def _with_heartbeat(s, name, seq):
    n = await w(s.call(M + "get_node_by_authid", name))
    return n if n["status"] == "online" and (n["heartbeat"] or 0) >= seq else None


async def _status_is(s, name, status):
    return (await w(s.call(M + "get_node_by_authid", name)))["status"] == status
