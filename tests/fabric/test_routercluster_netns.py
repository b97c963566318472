"""A router cluster across hosts: the master and three edges, each in its own network namespace on
a switch (tests/support/netns.py), run with the CLI as on separate machines. The superuser defines a
cluster of the three edges on the master (worker group, application realm, role, ticket principal;
each node's links reach it at its own address) and the master's change engine wires it. A client on
each edge's host, connected to its own edge, sees one realm: events reach the other two hosts
exactly once, calls cross. Then edge3's cable is pulled: edge1 and edge2 keep routing between each
other (events and calls) while edge3's links are down; the cable back, the three converge again
without anybody touching them (events both ways exactly once, calls from edge3 to edge1).

Skipped, with the reason, where network namespaces cannot be made (found by trying)."""

from __future__ import annotations

import asyncio
import time

import pytest
from autobahn.wamp.types import ComponentConfig

from fabricnodes import M, TicketClient, wait_for
from masternode import Key
from support.autobahn_client import w
from support.netns import network_or_skip
from test_fabric_netns import NsEdge, NsMaster, _connect_from, superuser_from

pytestmark = pytest.mark.timeout(240)

RC = "crossbarfabriccenter.mrealm.routercluster."
AR = "crossbarfabriccenter.mrealm.arealm."
NAMES = ("edge1", "edge2", "edge3")
REALM, AUTHID, TICKET = "realm1", "client1", "ticket-1"


@pytest.fixture
def net():
    """Four hosts on a switch: master, edge1, edge2, edge3."""
    yield from network_or_skip("wfc", ("master", *NAMES))


class Inbox:
    """Events received by one subscriber: (publisher's host, n) in arrival order."""

    def __init__(self):
        self.got: list[tuple[str, int]] = []

    def __call__(self, origin, n):
        self.got.append((origin, n))

    def of(self, origin: str) -> list[int]:
        return [n for o, n in self.got if o == origin]


async def test_router_cluster_across_hosts_one_cut_off_and_restored(net, tmp_path):
    hm = net.hosts["master"]
    hosts = {name: net.hosts[name] for name in NAMES}
    su = Key()
    master = NsMaster(hm, su)
    master.init()
    master.start()
    master.wait_log("Change engine ready")
    edges = {name: NsEdge(tmp_path, name, master.url, hosts[name], period=1) for name in NAMES}
    sessions = []
    try:
        g = await superuser_from(hm, master.url, su, None)
        sessions.append(g)
        await w(g.call(M + "create_mrealm", {"name": "m1"}))
        for name, e in edges.items():
            await w(g.call(M + "pair_node", e.pubkey, "m1", name, None))
        s = await superuser_from(hm, master.url, su, "m1")
        sessions.append(s)
        for e in edges.values():
            e.start()

        async def online(names):
            got = await w(s.call(M + "get_nodes", "online", return_names=True))
            return sorted(got or []) == sorted(names)
        await wait_for(lambda: online(NAMES), 60, "three edges online")

        # the cluster: every node listens for clients and links on its own address
        ports = {name: (h.free_port(), h.free_port()) for name, h in hosts.items()}
        c = await w(s.call(RC + "create_routercluster", {"name": "cluster1"}))
        for name, h in hosts.items():
            await w(s.call(RC + "add_routercluster_node", c["oid"], name, {
                "client_port": ports[name][0], "link_port": ports[name][1], "link_host": h.ip}))
        wg = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1", "scale": 1}))
        role = await w(s.call(AR + "create_role", {"name": "app"}))
        await w(s.call(AR + "add_role_permission", role["oid"], "com.example.", {
            "match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True,
            "allow_subscribe": True}))
        arealm = await w(s.call(AR + "create_arealm", {"name": REALM}))
        await w(s.call(AR + "add_arealm_role", arealm["oid"], role["oid"]))
        await w(s.call(AR + "add_principal", arealm["oid"], {"authid": AUTHID, "role_oid": role["oid"],
                                                              "ticket": TICKET}))
        await w(s.call(RC + "start_routercluster", c["oid"]))
        await w(s.call(AR + "start_arealm", arealm["oid"], wg["oid"]))

        # a client on each host, on its own edge
        async def client(name):
            async def attempt():
                try:
                    url = f"ws://{hosts[name].ip}:{ports[name][0]}/"
                    return await _connect_from(hosts[name], url,
                                               TicketClient(ComponentConfig(realm=REALM), AUTHID, TICKET))
                except Exception:
                    return None
            cl = await wait_for(attempt, 60, f"a client of {REALM} on {name}", 0.3)
            sessions.append(cl)
            return cl
        clients = {name: await client(name) for name in NAMES}

        inbox = {name: Inbox() for name in NAMES}
        for name, cl in clients.items():
            await w(cl.subscribe(inbox[name], "com.example.news"))
            await w(cl.register(lambda n=name: n, f"com.example.where.{name}"))

        counter = {"n": 0}

        async def converged(publishers, subscribers, what, timeout=60):
            """Publish from each of ``publishers`` until every one of ``subscribers`` gets an event of
            each; then each later event arrives exactly once."""
            async def check():
                marks = {}
                for p in publishers:
                    counter["n"] += 1
                    marks[p] = counter["n"]
                    clients[p].publish("com.example.news", p, counter["n"])
                await asyncio.sleep(0.3)
                return all(marks[p] in inbox[sub].of(p) for p in publishers for sub in subscribers if sub != p)
            await wait_for(check, timeout, what, 0.2)
            # now exactly once: a burst from each publisher
            first = counter["n"] + 1
            for p in publishers:
                for _ in range(20):
                    counter["n"] += 1
                    clients[p].publish("com.example.news", p, counter["n"])
            last = counter["n"]

            async def all_in():
                return all(len([n for n in inbox[sub].of(p) if first <= n <= last]) >= 20
                           for p in publishers for sub in subscribers if sub != p)
            await wait_for(all_in, 20, f"{what}: a burst of 20 from each")
            await asyncio.sleep(0.5)
            for p in publishers:
                for sub in subscribers:
                    if sub != p:
                        got = [n for n in inbox[sub].of(p) if first <= n <= last]
                        assert len(got) == 20 and len(set(got)) == 20, (p, sub, got)

        async def calls(frm, to):
            async def attempt():
                try:
                    return await w(clients[frm].call(f"com.example.where.{to}"))
                except Exception:
                    return None
            assert await wait_for(attempt, 60, f"a call from {frm} to {to}", 0.3) == to

        await converged(NAMES, NAMES, "events between the three hosts")
        for frm in NAMES:
            for to in NAMES:
                if frm != to:
                    await calls(frm, to)

        # edge3's cable pulled: edge1 and edge2 route on
        net.cut(hosts["edge3"])
        t0 = time.monotonic()
        await converged(("edge1", "edge2"), ("edge1", "edge2"), "events between edge1 and edge2, edge3 cut off")
        await calls("edge1", "edge2")
        await calls("edge2", "edge1")
        assert time.monotonic() - t0 < 30  # nobody waited for edge3's dead links

        # the master notices edge3 is gone
        async def offline():
            return "edge3" not in (await w(s.call(M + "get_nodes", "online", return_names=True)) or [])
        await wait_for(offline, 30, "edge3 offline on the master")

        # the cable back: everything converges without anybody touching it
        net.restore(hosts["edge3"])
        await wait_for(lambda: online(NAMES), 90, "edge3 online again")
        await converged(NAMES, NAMES, "events between the three hosts after edge3 is back", timeout=90)
        await calls("edge3", "edge1")
        await calls("edge1", "edge3")
        for name, e in edges.items():
            assert e.proc.poll() is None, f"{name} exited: {e.log()[-3000:]}"
    finally:
        for sess in reversed(sessions):
            try:
                sess.leave()
            except Exception:
                pass
        await asyncio.sleep(0.2)
        for e in edges.values():
            e.kill()
        master.kill()
