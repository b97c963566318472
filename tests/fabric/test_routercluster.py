"""A router cluster wired by the master, end to end (issue 16): a master (``master init/start``,
with its change engine) and three edge nodes (``edge start``) on loopback; the cluster of the three,
a worker group, an arealm with a role and a ticket principal are defined through the management
API and started; the change engine starts a router worker, the realm, a client transport, a link
listener and the links on each node. A client (autobahn-python) on each edge: an event published on
one reaches the subscribers on all three exactly once, a procedure registered on one is callable
from the other two. One edge SIGKILLed: the other two keep routing; started again, it is wired
again and all three converge. A node removed from the cluster: its worker and the links to it go;
added again, it converges again.
A role and a principal added while running reach every node; the cluster stopped, its workers go."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from fabricnodes import (AR, CROSSBAR, RC, ClusterFabric, ShellUser, WfEdge, free_ports, ticket_connect,
                         wait_for)
from masternode import fabric_connect
from support.autobahn_client import expect_error, w

pytestmark = pytest.mark.timeout(120)

TOPIC = "com.example.topic"
_seq = itertools.count()


class Inbox:
    def __init__(self):
        self.got: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.got.append(tuple(args))


async def subscribe_all(clients: dict) -> dict:
    inboxes = {}
    for name, c in clients.items():
        inboxes[name] = Inbox()
        await w(c.subscribe(inboxes[name], TOPIC))
    return inboxes


async def publish(c, *args):
    await w(c.publish(TOPIC, *args, options=PublishOptions(acknowledge=True, exclude_me=False)))


async def mesh_up(clients: dict, inboxes: dict, timeout: float = 40.0) -> None:
    """Probes from every client until every subscriber got one from every publisher (the links
    connect with backoff)."""
    async def check():
        tag = f"probe{next(_seq)}"
        for name, c in clients.items():
            await publish(c, tag, name)
        await asyncio.sleep(0.3)
        return all({a[1] for a in inboxes[n].got if a and a[0] == tag} == set(clients) for n in clients)
    await wait_for(check, timeout, "every subscriber gets every publisher's events", 0.2)


async def exactly_once(clients: dict, inboxes: dict, count: int = 20) -> None:
    for box in inboxes.values():
        box.got.clear()
    tag = f"round{next(_seq)}"
    for name, c in clients.items():
        for i in range(count):
            await publish(c, tag, name, i)
    expected = sorted((tag, name, i) for name in clients for i in range(count))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(len([a for a in box.got if a[0] == tag]) >= len(expected) for box in inboxes.values()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a duplicate would come now
    for name, box in inboxes.items():
        assert sorted(a for a in box.got if a[0] == tag) == expected, f"subscriber on {name}"


async def calls_everywhere(clients: dict, timeout: float = 30.0) -> None:
    """Every client calls every client's procedure (including its own)."""
    async def check():
        for caller, c in clients.items():
            for callee in clients:
                try:
                    got = await w(c.call(f"com.example.whoami.{callee}", caller), 5)
                except Exception:
                    return False
                if got != [callee, caller]:
                    return False
        return True
    await wait_for(check, timeout, "every procedure callable from every node", 0.2)


async def register(name, c) -> None:
    await w(c.register(lambda caller, n=name: [n, caller], f"com.example.whoami.{name}"))


async def test_router_cluster_wired_by_the_master(tmp_path):
    t0 = time.monotonic()
    fabric = ClusterFabric(tmp_path)
    try:
        await fabric.start()
        defs = await fabric.define()
        m = fabric.master
        for name in fabric.names:
            m.wait_log(f"Change engine: node '{name}' (mrealm 'm1'): started router worker 'wg1_1'")
        clients = {name: await fabric.client(name) for name in fabric.names}
        inboxes = await subscribe_all(clients)
        for name, c in clients.items():
            await register(name, c)
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes)
        await calls_everywhere(clients)
        # one link per pair, on the side that sorts first: edge1 -> edge2, edge3; edge2 -> edge3
        links = {n: await fabric.node_call(n, "worker.wg1_1.get_router_realm_links", "realm1") for n in fabric.names}
        assert links == {"edge1": ["to_edge2_wg1_1", "to_edge3_wg1_1"], "edge2": ["to_edge3_wg1_1"], "edge3": []}
        link = await fabric.node_call("edge1", "worker.wg1_1.get_router_realm_link", "realm1", "to_edge2_wg1_1")
        assert link["connected"] is True and link["config"]["authentication"] == {"cryptosign": {"authid": "edge1"}}
        stat = await w(fabric.session.call(RC + "stat_routercluster", defs["cluster"]["oid"]))
        assert [(n["name"], n["status"], n["workers"]) for n in stat["nodes"]] == [
            ("edge1", "online", ["wg1_1"]), ("edge2", "online", ["wg1_1"]), ("edge3", "online", ["wg1_1"])]

        # edge3 SIGKILLed: edge1 and edge2 keep routing (events and calls)
        fabric.edges["edge3"].kill()
        await clients.pop("edge3").close()
        inboxes.pop("edge3")
        await exactly_once(clients, inboxes)
        await calls_everywhere(clients, 10)

        # started again: the engine wires it again, the links to it reconnect, all three converge
        fabric.edges["edge3"].start()
        await wait_for(lambda: _restarted(fabric), 60, "edge3 wired again")
        clients["edge3"] = await fabric.client("edge3")
        inboxes["edge3"] = Inbox()
        await w(clients["edge3"].subscribe(inboxes["edge3"], TOPIC))
        await register("edge3", clients["edge3"])
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes)
        await calls_everywhere(clients)

        # the engine's passes (on every join and definition change) restarted nothing that had not changed
        assert "(its configuration changed)" not in m.log()

        # edge3 removed from the cluster: its router worker goes, and the links to it; the link
        # listeners of the others no longer take edge3's key (their principals changed: restarted)
        await w(fabric.session.call(RC + "remove_routercluster_node",
                                    defs["cluster"]["oid"], "edge3"))
        await wait_for(lambda: _gone(fabric), 30, "edge3's worker and the links to it stopped")
        m.wait_log("Change engine: node 'edge3' (mrealm 'm1'): stopped router worker 'wg1_1'")
        m.wait_log("Change engine: node 'edge1' (mrealm 'm1'): stopped link 'to_edge3_wg1_1'")
        await clients.pop("edge3").close()
        inboxes.pop("edge3")
        for n in ("edge1", "edge2"):
            m.wait_log(f"Change engine: node '{n}' (mrealm 'm1'): stopped transport 'link' on worker 'wg1_1' (its "
                       f"configuration changed)")
            principals = (await fabric.node_call(n, "worker.wg1_1.get_router_transport", "link"))["config"]["auth"][
                "cryptosign"]["principals"]
            assert sorted(principals) == ["edge1", "edge2"]
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes)
        await calls_everywhere(clients)

        # edge3 added again (same ports): wired again, the others link to it again, all three converge
        cport, lport = fabric.ports["edge3"]
        await w(fabric.session.call(RC + "add_routercluster_node", defs["cluster"]["oid"], "edge3",
                                    {"client_port": cport, "link_port": lport}))
        clients["edge3"] = await fabric.client("edge3")
        inboxes["edge3"] = Inbox()
        await w(clients["edge3"].subscribe(inboxes["edge3"], TOPIC))
        await register("edge3", clients["edge3"])
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes)
        await calls_everywhere(clients)
        assert await fabric.node_call("edge1", "worker.wg1_1.get_router_realm_links", "realm1") == \
            ["to_edge2_wg1_1", "to_edge3_wg1_1"]

        # a role and a principal added while running: the client transports take the new principal,
        # and its role's permissions hold on every node
        reader = await w(fabric.session.call(AR + "create_role", {"name": "reader"}))
        await w(fabric.session.call(AR + "add_role_permission", reader["oid"], "com.example.",
                                    {"match": "prefix", "allow_subscribe": True}))
        await w(fabric.session.call(AR + "add_arealm_role", defs["arealm"]["oid"], reader["oid"]))
        await w(fabric.session.call(AR + "add_principal", defs["arealm"]["oid"],
                                    {"authid": "reader1", "role": "reader", "ticket": "reader-ticket"}))
        readers = {}
        for n in ("edge1", "edge2"):
            readers[n] = await wait_for(lambda n=n: _join(fabric, n, "reader1", "reader-ticket"), 30,
                                        f"reader1 joins on {n}")
            fabric.track(readers[n])
            assert readers[n].joined.result().authrole == "reader"
        # the client transports were restarted for the new principal: the sessions already joined stay
        m.wait_log("Change engine: node 'edge1' (mrealm 'm1'): stopped transport 'client' on worker 'wg1_1' (its "
                   "configuration changed)")
        await exactly_once(clients, inboxes)
        await expect_error(readers["edge1"].publish(TOPIC, "x", options=PublishOptions(acknowledge=True)),
                           "wamp.error.not_authorized")
        await expect_error(readers["edge1"].call("com.example.whoami.edge1", "x"), "wamp.error.not_authorized")
        box = Inbox()
        await w(readers["edge2"].subscribe(box, TOPIC))
        writer = await fabric.client("edge1")
        await wait_for(lambda: _published_seen(writer, box), 20, "an event from edge1 reaching reader1 on edge2")
        # a permission added to a running role: the engine replaces the role on the realms
        await w(fabric.session.call(AR + "add_role_permission", reader["oid"], "com.example.topic",
                                    {"match": "exact", "allow_publish": True}))
        await wait_for(lambda: _may_publish(readers["edge1"]), 20, "reader1 may publish once its role changed")
        m.wait_log("Change engine: node 'edge1' (mrealm 'm1'): stopped role 'reader' of realm 'realm1' on worker "
                   "'wg1_1' (its permissions changed)")

        # the principal removed: its joined sessions are closed on every node and it cannot join again;
        # the other principal's sessions stay
        principal = await w(fabric.session.call(AR + "get_principal_by_name", defs["arealm"]["oid"], "reader1"))
        await w(fabric.session.call(AR + "remove_principal", defs["arealm"]["oid"], principal["oid"]))
        for n in ("edge1", "edge2"):
            details = await w(readers[n].left, 30)
            assert details is not None and details.reason == "wamp.close.killed", (n, details)
            assert await _join(fabric, n, "reader1", "reader-ticket") is None
        m.wait_log("Change engine: node 'edge1' (mrealm 'm1'): closed the sessions of reader1 on realm 'realm1' of "
                   "worker 'wg1_1' (principal removed or changed)")
        await exactly_once(clients, inboxes)

        # the cluster stopped: its router workers go
        await w(fabric.session.call(RC + "stop_routercluster", defs["cluster"]["oid"]))
        for n in ("edge1", "edge2"):
            await wait_for(lambda n=n: _no_worker(fabric, n), 30, f"wg1_1 stopped on {n}")
    finally:
        await fabric.close()
    assert time.monotonic() - t0 < 90


async def _join(fabric, name, authid, ticket):
    try:
        return await ticket_connect("127.0.0.1", fabric.ports[name][0], "realm1", authid, ticket)
    except (OSError, RuntimeError, asyncio.TimeoutError):
        return None


async def _published_seen(writer, box) -> bool:
    tag = f"w{next(_seq)}"
    await publish(writer, tag)
    await asyncio.sleep(0.2)
    return any(a and a[0] == tag for a in box.got)


async def _may_publish(c) -> bool:
    try:
        await w(c.publish(TOPIC, "reader", options=PublishOptions(acknowledge=True)))
    except ApplicationError as e:
        assert e.error == "wamp.error.not_authorized"
        return False
    return True


async def _no_worker(fabric, name) -> bool:
    return "wg1_1" not in await fabric.node_call(name, "get_workers")


async def _restarted(fabric) -> bool:
    return "wg1_1" in await fabric.node_call("edge3", "get_workers")


async def _gone(fabric) -> bool:
    if "wg1_1" in await fabric.node_call("edge3", "get_workers"):
        return False
    for n in ("edge1", "edge2"):
        if any("edge3" in x for x in await fabric.node_call(n, "worker.wg1_1.get_router_realm_links", "realm1")):
            return False
    return True


async def test_worker_group_of_two_on_two_nodes(tmp_path):
    """scale 2: two router workers on every member node, all four in one mesh (links between the
    workers of one node too), and a client on each of them sees one realm; a worker stopped by hand
    is started and wired again by the engine."""
    fabric = ClusterFabric(tmp_path, names=("edge1", "edge2"))
    try:
        await fabric.start()
        await fabric.define(scale=2)
        clients = {f"{n}_{k}": await fabric.client(n, worker=k) for n in fabric.names for k in (1, 2)}
        inboxes = await subscribe_all(clients)
        for name, c in clients.items():
            await register(name, c)
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes, 10)
        await calls_everywhere(clients)
        # 4 workers, 6 links: each configured on the side that sorts first
        links = {(n, k): await fabric.node_call(n, f"worker.wg1_{k}.get_router_realm_links", "realm1")
                 for n in fabric.names for k in (1, 2)}
        assert links == {("edge1", 1): ["to_edge1_wg1_2", "to_edge2_wg1_1", "to_edge2_wg1_2"],
                         ("edge1", 2): ["to_edge2_wg1_1", "to_edge2_wg1_2"],
                         ("edge2", 1): ["to_edge2_wg1_2"], ("edge2", 2): []}

        # a router worker of the cluster stopped by hand (a killed one takes the whole edge down: its
        # shutdown_on_worker_exit trigger): the engine starts and wires it again, the mesh converges
        pid = (await fabric.node_call("edge2", "get_worker", "wg1_2"))["pid"]
        await fabric.node_call("edge2", "stop_worker", "wg1_2")
        await clients.pop("edge2_2").close()
        inboxes.pop("edge2_2")

        async def back():
            try:
                info = await fabric.node_call("edge2", "get_worker", "wg1_2")
            except ApplicationError:
                return False
            return info.get("pid") not in (None, pid) and info.get("status") in ("started", "running", None)
        await wait_for(back, 30, "wg1_2 on edge2 started again")
        fabric.master.wait_log("Change engine: node 'edge2' (mrealm 'm1') router worker 'wg1_2' stopped: router "
                               "cluster wiring applied")
        clients["edge2_2"] = await fabric.client("edge2", worker=2)
        inboxes["edge2_2"] = Inbox()
        await w(clients["edge2_2"].subscribe(inboxes["edge2_2"], TOPIC))
        await register("edge2_2", clients["edge2_2"])
        await mesh_up(clients, inboxes)
        await exactly_once(clients, inboxes, 10)
        await calls_everywhere(clients)
    finally:
        await fabric.close()


@pytest.mark.skipif(not CROSSBAR.exists(), reason="Crossbar.io is not installed in bench/.venv-crossbar")
async def test_crossbar_shell_defines_a_router_cluster(tmp_path):
    """Crossbar.io 26.10's shell (its argument shapes) defines the cluster against our master:
    create/add/list/show for router clusters, nodes, worker groups, roles, permissions, arealms,
    principals and their credentials, start routercluster. ``start arealm`` there needs a web
    cluster (ours has none): the arealm is started through the API, and a client joins on the node
    with the credential the shell gave."""
    home = tmp_path / "home"
    home.mkdir()
    fabric = ClusterFabric(tmp_path, names=("edge1",))
    shell = ShellUser(home, fabric.master.url)
    fabric.master.env["CROSSBAR_FABRIC_SUPERUSER"] = str(shell.pubfile)
    fabric.superuser = None
    try:
        fabric.master.init()
        fabric.master.start()
        fabric.master.wait_log("Change engine ready")

        def ok(*args, expect=()):
            r = shell.run(*args)
            assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
            for t in expect:
                assert t in r.stdout, f"{t!r} not in:\n{r.stdout[-3000:]}"
            return r.stdout

        ok("create", "mrealm", "m1")
        edge = fabric.edges["edge1"] = WfEdge(tmp_path, "edge1", fabric.master.url)
        ok("pair", "node", str(edge.cbdir / "key.pub"), "m1", "edge1")
        edge.start()
        m = ("--realm", "m1")
        port, link = free_ports(1), free_ports(1)
        ok(*m, "create", "routercluster", "cluster1", expect=("cluster1", "STOPPED"))
        ok(*m, "add", "routercluster-node", "cluster1", "edge1", "--config",
           json.dumps({"client_port": port, "link_port": link, "softlimit": 4}), expect=(str(port),))
        ok(*m, "add", "routercluster-workergroup", "cluster1", "wg1", "--config", json.dumps({"scale": 1}),
           expect=("wg1",))
        ok(*m, "create", "role", "app", expect=("app",))
        ok(*m, "add", "role-permission", "app", "com.example.", "--config", json.dumps({
            "match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True,
            "allow_subscribe": True}), expect=("com.example.",))
        ok(*m, "create", "arealm", "realm1", expect=("realm1",))
        ok(*m, "add", "arealm-role", "realm1", "app")
        ok(*m, "add", "principal", "realm1", "client1", "--config", json.dumps({"role": "app"}), expect=("client1",))
        ok(*m, "add", "principal-credential", "realm1", "client1", "--config",
           json.dumps({"authmethod": "ticket", "secret": "shell-secret"}), expect=("ticket",))
        ok(*m, "list", "routerclusters", "--names", expect=("cluster1",))
        ok(*m, "list", "routercluster-nodes", "cluster1", "--names", expect=("edge1",))
        ok(*m, "list", "routercluster-workergroups", "cluster1", "--names", expect=("wg1",))
        ok(*m, "show", "routercluster-workergroup", "cluster1", "wg1", expect=("wg1",))
        ok(*m, "list", "arealms", "--names", expect=("realm1",))
        ok(*m, "list", "principals", "realm1", "--names", expect=("client1",))
        ok(*m, "show", "principal", "realm1", "client1", expect=("client1",))
        ok(*m, "start", "routercluster", "cluster1", expect=("RUNNING",))

        s = await fabric_connect(fabric.master.url, shell_key(home), realm="m1")
        fabric.track(s)
        arealm = await w(s.call(AR + "get_arealm_by_name", "realm1"))
        wg = await w(s.call(RC + "get_routercluster_workergroup_by_name", "cluster1", "wg1"))
        await w(s.call(AR + "start_arealm", arealm["oid"], wg["oid"]))

        async def joined():
            try:
                return await ticket_connect("127.0.0.1", port, "realm1", "client1", "shell-secret")
            except (OSError, RuntimeError, asyncio.TimeoutError):
                return None
        c = await wait_for(joined, 60, "client1 joins realm1 on edge1 with the shell's credential", 0.2)
        fabric.track(c)
        await w(c.register(lambda: "pong", "com.example.ping"))
        assert await w(c.call("com.example.ping")) == "pong"
    finally:
        await fabric.close()


def shell_key(home):
    """The shell's key (``~/.crossbar/default.priv``) as a masternode.Key (the master's superuser)."""
    from autobahn.wamp.cryptosign import CryptosignKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from masternode import Key

    for line in (home / ".crossbar" / "default.priv").read_text().splitlines():
        if line.startswith("private-key-ed25519:"):
            raw = bytes.fromhex(line.split(":", 1)[1].strip())
            break
    else:
        raise AssertionError("no private key in the shell's key file")
    key = Key.__new__(Key)
    key.private = Ed25519PrivateKey.from_private_bytes(raw)
    key.cryptosign = CryptosignKey.from_bytes(raw)
    key.pubkey = key.cryptosign.public_key()
    return key
