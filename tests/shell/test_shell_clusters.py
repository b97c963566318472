"""Router clusters and application realms from the shell (``wampfabric shell create routercluster``
... ``start arealm``), as a user types them, against a real master with two real edges (the
``fabric`` fixture): the definition made by name, listed and shown in every form, started, then used
by autobahn-python clients that log in with a principal's ticket on each edge: events and calls
cross from one edge to the other. Errors are one line (a running cluster cannot be deleted, an
unknown name is named); stopping the realm takes it down on both edges, and the definition is
removed again by name."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

from support.autobahn_client import w
from support.nodes import free_port

from test_shell_oneshot import ok, one_line_error

pytestmark = pytest.mark.timeout(240)


class TicketClient(ApplicationSession):
    def __init__(self, config, authid, ticket):
        super().__init__(config)
        self._authid, self._ticket = authid, ticket
        self.joined = asyncio.get_running_loop().create_future()

    def onConnect(self):
        self.join(self.config.realm, ["ticket"], self._authid)

    def onChallenge(self, challenge):
        return self._ticket

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(RuntimeError(f"{details.reason}: {details.message}"))
        self.disconnect()


async def ticket_client(port: int, realm: str, authid: str, ticket: str) -> TicketClient:
    loop = asyncio.get_running_loop()
    made = []

    def make():
        made.append(TicketClient(ComponentConfig(realm=realm), authid, ticket))
        return made[-1]

    factory = WampWebSocketClientFactory(make, url=f"ws://127.0.0.1:{port}/")
    await w(loop.create_connection(factory, "127.0.0.1", port))
    for _ in range(500):
        if made:
            break
        await asyncio.sleep(0.01)
    await w(made[0].joined)
    return made[0]


async def connect_until(port, realm, authid, ticket, timeout=60.0) -> TicketClient:
    """A client on ``port`` once the master has wired the realm there (the change engine works
    asynchronously after ``start arealm``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await ticket_client(port, realm, authid, ticket)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def test_router_cluster_defined_started_and_used_from_the_shell(fabric):
    run, js = fabric.run, fabric.json
    ports = {e: (free_port(), free_port()) for e in ("edge1", "edge2")}

    # the definition, by name
    cluster = js("create", "routercluster", "cluster1", "--config", '{"description": "two edges"}')
    assert cluster["name"] == "cluster1" and cluster["status"] == "STOPPED"
    for edge, (client_port, link_port) in ports.items():
        ok(run("add", "routercluster-node", "cluster1", edge, "--config",
               json.dumps({"client_port": client_port, "link_port": link_port})))
    wg = js("add", "routercluster-workergroup", "cluster1", "wg1", "--config", '{"scale": 1}')
    assert wg["name"] == "wg1" and wg["scale"] == 1
    ok(run("create", "role", "app"))
    perm = js("add", "role-permission", "app", "com.example.", "--config",
              json.dumps({"match": "prefix", "allow_call": True, "allow_register": True,
                          "allow_publish": True, "allow_subscribe": True, "disclose_publisher": True}))
    assert perm["uri"] == "com.example." and perm["match"] == "prefix" and perm["allow_publish"] is True
    ok(run("create", "arealm", "realm1"))
    ok(run("add", "arealm-role", "realm1", "app"))
    principal = js("add", "principal", "realm1", "client1", "--config", '{"role": "app", "ticket": "secret1"}')
    assert principal["authid"] == "client1" and "ticket" not in principal

    # listed and shown: names, records, by name and by oid
    assert js("list", "routerclusters", "--names") == ["cluster1"]
    [rc] = js("list", "routerclusters")
    assert rc["oid"] == cluster["oid"] and js("show", "routercluster", rc["oid"])["name"] == "cluster1"
    assert sorted(js("list", "routercluster-nodes", "cluster1", "--names")) == ["edge1", "edge2"]
    assert js("show", "routercluster-node", "cluster1", "edge1")["client_port"] == ports["edge1"][0]
    assert js("list", "routercluster-workergroups", "cluster1", "--names") == ["wg1"]
    assert js("show", "routercluster-workergroup", "cluster1", "wg1")["oid"] == wg["oid"]
    assert js("list", "roles", "--names") == ["app"]
    assert [p["uri"] for p in js("list", "role-permissions", "app")] == ["com.example."]
    assert js("show", "role-permission", "app", "com.example.")["oid"] == perm["oid"]
    assert js("list", "arealm-roles", "realm1", "--names") == ["app"]
    assert js("list", "principals", "realm1", "--names") == ["client1"]
    assert js("show", "principal", "realm1", "client1")["oid"] == principal["oid"]
    table = ok(run("list", "routercluster-nodes", "cluster1")).splitlines()
    assert table[0].split()[:2] == ["node", "node_oid"] and len(table) == 3

    # errors: one line each
    one_line_error(run("show", "routercluster", "nosuch"), 1, "nosuch")
    one_line_error(run("start", "arealm", "realm1", "cluster1", "nosuch"), 1, "nosuch")
    one_line_error(run("add", "principal", "realm1", "client2", "--config", '{"ticket": "x"}'), 2, "role")
    one_line_error(run("show", "principal", "realm1", "nobody"), 1, "nobody")

    # started: the master wires both edges; clients on each see one realm
    assert js("start", "routercluster", "cluster1")["status"] == "RUNNING"
    assert js("start", "arealm", "realm1", "cluster1", "wg1")["status"] == "RUNNING"
    one_line_error(run("delete", "routercluster", "cluster1"), 1)  # running: refused

    async def use():
        c1 = await connect_until(ports["edge1"][0], "realm1", "client1", "secret1")
        c2 = await connect_until(ports["edge2"][0], "realm1", "client1", "secret1")
        try:
            got = asyncio.get_running_loop().create_future()
            await w(c2.subscribe(lambda x: got.done() or got.set_result(x), "com.example.topic"))
            await w(c1.register(lambda x: x * 2, "com.example.double"))
            # the links mirror interest asynchronously: publish until the event arrives
            for _ in range(100):
                c1.publish("com.example.topic", 42)
                try:
                    assert await asyncio.wait_for(asyncio.shield(got), 0.2) == 42
                    break
                except asyncio.TimeoutError:
                    continue
            assert got.done() and got.result() == 42
            for _ in range(100):
                try:
                    assert await w(c2.call("com.example.double", 21)) == 42
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("com.example.double not callable on edge2")
        finally:
            for c in (c1, c2):
                c.leave()
            await asyncio.sleep(0.1)

    asyncio.run(use())
    shown = js("show", "routercluster", "cluster1")
    assert shown["status"] == "RUNNING" and {n["name"] for n in shown["nodes"]} == {"edge1", "edge2"}
    assert js("show", "arealm", "realm1")["status"] == "RUNNING"

    # stopped and removed again, by name
    assert js("stop", "arealm", "realm1")["status"] == "STOPPED"
    assert js("stop", "routercluster", "cluster1")["status"] == "STOPPED"

    async def gone():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = await ticket_client(ports["edge1"][0], "realm1", "client1", "secret1")
                c.leave()
            except Exception:
                return
            await asyncio.sleep(0.5)
        raise AssertionError("realm1 still served on edge1 after stop arealm")

    asyncio.run(gone())
    ok(run("remove", "arealm-principal", "realm1", "client1"))
    ok(run("remove", "arealm-role", "realm1", "app"))
    ok(run("delete", "arealm", "realm1"))
    ok(run("remove", "role-permission", "app", "com.example."))
    ok(run("delete", "role", "app"))
    ok(run("remove", "routercluster-workergroup", "cluster1", "wg1"))
    ok(run("remove", "routercluster-node", "cluster1", "edge2"))
    ok(run("delete", "routercluster", "cluster1"))
    assert js("list", "routerclusters", "--names") == [] and js("list", "arealms", "--names") == []
