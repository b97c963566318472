"""Every core of one node: a router worker with ``"options": {"replicas": N}`` runs as N
router worker processes (``router1-1`` .. ``router1-N``) on one listening port
(SO_REUSEPORT), linked into a full mesh by rlinks over Unix sockets in the node directory
(cryptosign with the node key).  Each test starts a real node (``wampfabric start``) and
connects real autobahn-python clients to the one port; which replica a client landed on is
read from its WELCOME (``authextra.x_cb_worker``)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rlinknodes import RNode, wait_for
from support.autobahn_client import connect, subscribe, w
from support.nodes import free_port

from autobahn.wamp.exception import ApplicationError

from wampfabric.client.session import ApplicationError as MgmtError  # the management session's errors

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
TOPIC = "com.example.cores"


def cores_config(port: int, replicas, *, transports=None, roles=None, more_workers=()) -> dict:
    return {
        "version": 2,
        "controller": {"transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}},
        "workers": [{
            "type": "router", "id": "router1", "options": {"replicas": replicas},
            "realms": [{"name": "realm1", "roles": roles or [
                {"name": "anonymous", "permissions": [{"uri": "", "match": "prefix", "allow": ALL,
                                                       "disclose": {"caller": True, "publisher": True}}]}]}],
            "transports": transports or [{"type": "websocket", "id": "ws",
                                          "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}}],
        }, *more_workers],
    }


def make_node(cfg: dict, port: int) -> RNode:
    root = Path(tempfile.mkdtemp(prefix="wf-cores-"))
    cbdir = root / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(cfg, indent=2))
    return RNode("cores", root, cbdir, port, log_path=root / "node.log")


@pytest.fixture
def node_factory():
    nodes = []

    def make(replicas, **kw) -> RNode:
        port = free_port()
        node = make_node(cores_config(port, replicas, **kw), port)
        nodes.append(node)
        return node

    yield make
    for n in nodes:
        n.stop()


def replica_ids(n: int) -> list[str]:
    return [f"router1-{i}" for i in range(1, n + 1)]


async def mesh_up(mgmt, n: int, timeout: float = 30) -> None:
    """Until every replica runs and every link of the mesh (i -> j > i) is connected."""
    async def up():
        try:
            if await mgmt.call("crossbar.get_workers") != replica_ids(n):
                return False
            for i in range(1, n + 1):
                prefix = f"crossbar.worker.router1-{i}"
                links = await mgmt.call(f"{prefix}.get_router_realm_links", "realm001")
                if links != [f"replica-router1-{j}" for j in range(i + 1, n + 1)]:
                    return False
                for link in links:
                    if not (await mgmt.call(f"{prefix}.get_router_realm_link", "realm001", link))["connected"]:
                        return False
            return True
        except Exception:
            return False
    await wait_for(up, timeout, f"{n} replicas running and linked in a mesh")


async def spread(node: RNode, n: int, per_worker: int = 2, limit: int = 120) -> dict[str, list]:
    """Connect clients to the one port until every replica has ``per_worker`` of them (the kernel
    picks the replica); the rest are closed again.  ``{worker id: [session, ...]}``."""
    by_worker: dict[str, list] = collections.defaultdict(list)
    extra = []
    for _ in range(limit):
        s = await connect(None, realm="realm1", url=node.url, serializer="msgpack")
        wid = s.joined.result().authextra["x_cb_worker"]
        s.worker = wid
        (by_worker[wid] if len(by_worker[wid]) < per_worker else extra).append(s)
        if len(by_worker) == n and all(len(v) >= per_worker for v in by_worker.values()):
            break
    for s in extra:
        await s.shutdown()
    assert sorted(by_worker) == replica_ids(n), f"clients landed on {dict((k, len(v)) for k, v in by_worker.items())}"
    return by_worker


async def close_all(by_worker: dict) -> None:
    for sessions in by_worker.values():
        for s in sessions:
            await s.shutdown()


async def check_exactly_once(by_worker: dict, events: int = 20) -> None:
    """Session 0 of every replica subscribes, session 1 of every replica publishes: every
    subscriber gets every event of every publisher exactly once; events from another replica
    came over a link (``forward_for``), events from its own replica did not."""
    topic = f"{TOPIC}.{time.monotonic_ns()}"
    subs = {}
    for wid, sessions in by_worker.items():
        subs[wid], _ = await subscribe(sessions[0], topic)
    pubs = {wid: sessions[1] for wid, sessions in by_worker.items()}

    def seen(ev, kind):
        return {(a[1], a[2]) if kind == "data" else a[1] for a in ev.args if a[0] == kind}

    # the links mirror the subscriptions (one reconciliation per change): probe until every
    # subscriber hears every publisher, then count
    async def mirrored():
        for wid, pub in pubs.items():
            await w(pub.publish(topic, "probe", wid, options=_ack()))
        await asyncio.sleep(0.05)
        return all(seen(ev, "probe") == set(pubs) for ev in subs.values())
    await wait_for(mirrored, 20, "every subscriber hearing every replica's publisher", interval=0.1)
    for ev in subs.values():
        ev.items.clear()

    for k in range(events):
        for wid, pub in pubs.items():
            await w(pub.publish(topic, "data", wid, k, options=_ack()))
    expected = {(wid, k) for wid in pubs for k in range(events)}
    for wid, ev in subs.items():
        await wait_for(lambda ev=ev: len([a for a in ev.args if a[0] == "data"]) >= len(expected), 10,
                       f"{len(expected)} events at the subscriber on {wid}")
    await asyncio.sleep(0.3)  # a duplicate would arrive now
    for wid, ev in subs.items():
        data = [(a[1], a[2]) for a in ev.args if a[0] == "data"]
        dupes = [x for x, c in collections.Counter(data).items() if c > 1]
        assert not dupes, f"subscriber on {wid} got events twice: {dupes[:5]}"
        assert set(data) == expected, f"subscriber on {wid} missed {sorted(expected - set(data))[:5]}"
        for args, _, details in ev.items:
            if args[0] != "data":
                continue
            if args[1] == wid:
                assert not details.forward_for, f"local event on {wid} has forward_for {details.forward_for}"
            else:
                assert details.forward_for and len(details.forward_for) == 1, \
                    f"event from {args[1]} at {wid}: forward_for {details.forward_for}"


def _ack():
    from autobahn.wamp.types import PublishOptions
    return PublishOptions(acknowledge=True)


async def check_calls(by_worker: dict) -> None:
    """A procedure registered on each replica is callable from every replica and runs there."""
    for wid, sessions in by_worker.items():
        await w(sessions[0].register(lambda wid=wid: wid, f"com.example.where.{wid}"))
    for wid, sessions in by_worker.items():
        caller = sessions[1]
        for target in by_worker:
            async def call(target=target):
                try:
                    return await w(caller.call(f"com.example.where.{target}"))
                except ApplicationError as e:
                    if e.error == "wamp.error.no_such_procedure":
                        return None  # not mirrored yet
                    raise
            assert await wait_for(call, 20, f"{target}'s procedure from {wid}", interval=0.1) == target
    # and many calls across, in parallel
    a, b = sorted(by_worker)[:2]
    results = await w(asyncio.gather(*(by_worker[a][1].call(f"com.example.where.{b}") for _ in range(200))), 20)
    assert results == [b] * 200


@pytest.mark.parametrize("n", [2, 3])
async def test_replicas_share_the_port_and_route_as_one_realm(node_factory, n):
    node = node_factory(n)
    node.start()
    mgmt = await node.manage()
    try:
        await mesh_up(mgmt, n)
        infos = [await mgmt.call("crossbar.get_worker", wid) for wid in replica_ids(n)]
        assert [i["id"] for i in infos] == replica_ids(n)
        assert all(i["type"] == "router" and i["status"] == "started" for i in infos)
        assert len({i["pid"] for i in infos}) == n, "every replica is a process of its own"
        # every replica listens on the same port (SO_REUSEPORT) ...
        for wid in replica_ids(n):
            t = await mgmt.call(f"crossbar.worker.{wid}.get_router_transport", "ws")
            assert t["config"]["endpoint"]["port"] == node.port and t["config"]["endpoint"]["shared"] is True
        # ... and the links between them are not on the network
        t = await mgmt.call("crossbar.worker.router1-1.get_router_transport", "replica-links")
        assert t["config"]["endpoint"]["type"] == "unix"
        sock = node.cbdir / "replica-router1-1.sock"
        assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o600
        # replicas are the node config's: the management API starts one process per worker
        with pytest.raises(MgmtError) as ei:
            await mgmt.call("crossbar.start_worker", "other", "router", {"replicas": 2})
        assert ei.value.error == "crossbar.error.invalid_configuration"

        by_worker = await spread(node, n)
        try:
            await check_exactly_once(by_worker)
            await check_calls(by_worker)
        finally:
            await close_all(by_worker)
    finally:
        await mgmt.leave()


async def test_links_refuse_a_foreign_key(node_factory):
    """The replicas' link socket takes only the node's own key."""
    from wampfabric.client.auth import Cryptosign
    from wampfabric.client.connection import connect as wf_connect
    from nacl.signing import SigningKey

    node = node_factory(2)
    node.start()
    mgmt = await node.manage()
    try:
        await mesh_up(mgmt, 2)
        spec = {"type": "rawsocket", "endpoint": {"type": "unix", "path": str(node.cbdir / "replica-router1-2.sock")}}
        foreign = SigningKey.generate().encode().hex()
        with pytest.raises(MgmtError) as ei:
            await wf_connect(spec, "realm1", auth=[Cryptosign(foreign, authid="router1-1")])
        assert ei.value.error in ("wamp.error.not_authorized", "wamp.error.authentication_failed"), ei.value.error
        with pytest.raises(MgmtError):
            await wf_connect(spec, "realm1")  # anonymous
    finally:
        await mgmt.leave()


async def test_a_killed_replica_is_restarted_and_relinked(node_factory):
    node = node_factory(3)
    node.start()
    mgmt = await node.manage()
    exits = []
    try:
        await mesh_up(mgmt, 3)
        await mgmt.subscribe("crossbar.on_worker_exit", lambda info: exits.append(info))
        before = await mgmt.call("crossbar.get_worker", "router1-2")
        os.kill(before["pid"], signal.SIGKILL)
        await wait_for(lambda: exits, 10, "crossbar.on_worker_exit")
        assert exits[0]["id"] == "router1-2" and exits[0]["signal"] == signal.SIGKILL and not exits[0]["requested"]
        # meanwhile the port is served by the others: no connection lands on the dead replica
        landed = []
        for _ in range(8):
            s = await connect(None, realm="realm1", url=node.url)
            landed.append(s.joined.result().authextra["x_cb_worker"])
            await s.shutdown()
        assert len(landed) == 8

        async def restarted():
            try:
                info = await mgmt.call("crossbar.get_worker", "router1-2")
            except Exception:
                return False
            return info["status"] == "started" and info["pid"] != before["pid"]
        await wait_for(restarted, 20, "router1-2 restarted")
        t0 = time.monotonic()
        await mesh_up(mgmt, 3, timeout=30)
        relinked = time.monotonic() - t0
        by_worker = await spread(node, 3)
        try:
            await check_exactly_once(by_worker)
            await check_calls(by_worker)
        finally:
            await close_all(by_worker)
        assert relinked < 30
    finally:
        await mgmt.leave()
    assert "died (signal SIGKILL)" in node.log() and "Restarting router worker 'router1-2'" in node.log()


# -- the config checker and the node's refusals ------------------------------------------------------


def check(cfg: dict) -> tuple[int, str, Path]:
    root = Path(tempfile.mkdtemp(prefix="wf-cores-check-"))
    cbdir = root / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(cfg))
    p = subprocess.run([sys.executable, "-m", "wampfabric", "check", "--cbdir", str(cbdir)], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr, cbdir / "config.json"


UNIX = {"type": "rawsocket", "id": "rs", "endpoint": {"type": "unix", "path": "app.sock"}}


@pytest.mark.parametrize("replicas,transports,roles,path,message", [
    (0, None, None, "$.workers[0].options.replicas", "must be an integer 1..256"),
    ("many", None, None, "$.workers[0].options.replicas", "or \"auto\" (one per CPU core), not 'many'"),
    (True, None, None, "$.workers[0].options.replicas", "not boolean True"),
    (1000, None, None, "$.workers[0].options.replicas", "must be an integer 1..256"),
    (2, [UNIX], None, "$.workers[0].transports[0].endpoint.type", "cannot listen on a Unix socket"),
    ("auto", [{"type": "websocket", "endpoint": {"type": "tcp", "port": 0}}], None,
     "$.workers[0].transports[0].endpoint.port", "needs a fixed port"),
    (2, [{"type": "websocket", "id": "replica-links", "endpoint": {"type": "tcp", "port": 8080}}], None,
     "$.workers[0].transports[0].id", "reserved for the links between replicas"),
    (2, None, [{"name": "wampfabric.replica"}], "$.workers[0].realms[0].roles[0].name",
     "reserved for the links between replicas"),
])
def test_check_refuses(replicas, transports, roles, path, message):
    rc, out, cfgfile = check(cores_config(8080, replicas, transports=transports, roles=roles))
    assert rc == 1, out
    assert f"{cfgfile}: {path}: " in out and message in out, out
    assert "Traceback" not in out


def test_check_accepts_and_one_is_as_before():
    for replicas in (1, 2, "auto"):
        rc, out, _ = check(cores_config(8080, replicas))
        assert rc == 0, out
    # a Unix socket is fine for one process
    rc, out, _ = check(cores_config(8080, 1, transports=[UNIX]))
    assert rc == 0, out
    # replicas are a router worker's option only
    cfg = cores_config(8080, 1)
    cfg["workers"].append({"type": "container", "options": {"replicas": 2}})
    rc, out, cfgfile = check(cfg)
    assert rc == 1 and f"{cfgfile}: $.workers[1].options" in out and "replicas" in out, out


def test_check_refuses_a_replica_id_that_names_another_worker():
    cfg = cores_config(8080, 3)
    cfg["workers"].append({"type": "container", "id": "router1-3"})
    rc, out, cfgfile = check(cfg)
    assert rc == 1, out
    assert (f"{cfgfile}: $.workers[0].options.replicas: worker 'router1': replica ID 'router1-3' is the ID of "
            "another worker") in out, out


def test_a_replica_id_that_names_another_worker_stops_the_start(node_factory):
    node = node_factory(2, more_workers=[{"type": "router", "id": "router1-2"}])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(node.cbdir)], cwd=node.root,
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    assert "worker 'router1': replica ID 'router1-2' is the ID of another worker" in p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
