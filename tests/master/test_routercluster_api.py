"""The router cluster and application realm management API of the master
(``crossbarfabriccenter.mrealm.routercluster.*``, ``crossbarfabriccenter.mrealm.arealm.*``) against a
master started with the CLI: definitions stored in the mrealm database (and still there after a
restart), events, errors, role checks, and the wiring a member node gets (what the change engine
applies; tests/fabric/test_routercluster.py runs it end to end)."""

from __future__ import annotations

import asyncio

import pytest
from masternode import Key, Master
from support.autobahn_client import expect_error, w

pytestmark = pytest.mark.timeout(180)

M = "crossbarfabriccenter.mrealm."
RC = M + "routercluster."
AR = M + "arealm."


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, object]] = []

    def handler(self, topic):
        def on(*args, **kwargs):
            self.events.append((topic, args[0] if args else None))
        return on

    def topics(self):
        return [t.rpartition(".")[2] for t, _ in self.events]


async def _setup(connect, master, superuser, name, nodes=("edge1", "edge2", "edge3")):
    g = await connect(master, superuser)
    await w(g.call(M + "create_mrealm", {"name": name}))
    keys = {}
    for n in nodes:
        keys[n] = Key()
        await w(g.call(M + "pair_node", keys[n].pubkey, name, n, None))
    s = await connect(master, superuser, realm=name)
    return g, s, keys


async def test_clusters_nodes_workergroups_events_and_errors(master, superuser, connect):
    g, s, keys = await _setup(connect, master, superuser, "rc1")
    rec = Recorder()
    for ev in ("on_routercluster_created", "on_routercluster_deleted", "on_routercluster_starting",
               "on_routercluster_started", "on_routercluster_stopping", "on_routercluster_stopped",
               "on_routercluster_node_added", "on_routercluster_node_removed", "on_workergroup_added",
               "on_workergroup_removed"):
        await w(s.subscribe(rec.handler(RC + ev), RC + ev))

    assert await w(s.call(RC + "list_routerclusters")) == []
    c = await w(s.call(RC + "create_routercluster", {"name": "cluster1", "label": "first", "tags": ["a"]}))
    assert c["name"] == "cluster1" and c["status"] == "STOPPED" and c["label"] == "first" and c["tags"] == ["a"]
    assert c["owner_oid"] is not None
    assert await w(s.call(RC + "list_routerclusters")) == [c["oid"]]
    assert await w(s.call(RC + "list_routerclusters", return_names=True)) == ["cluster1"]
    assert await w(s.call(RC + "get_routercluster", c["oid"])) == c
    assert await w(s.call(RC + "get_routercluster_by_name", "cluster1")) == c
    await expect_error(s.call(RC + "create_routercluster", {"name": "cluster1"}), "crossbar.error.already_exists")
    await expect_error(s.call(RC + "create_routercluster", {"name": "Bad.Name"}), "wamp.error.invalid_argument")
    await expect_error(s.call(RC + "create_routercluster", {"name": "c2", "colour": 1}), "wamp.error.invalid_argument")
    await expect_error(s.call(RC + "get_routercluster", "nope"), "wamp.error.invalid_argument")
    await expect_error(s.call(RC + "get_routercluster", "6e7a4b4e-0000-4000-8000-000000000000"),
                       "crossbar.error.no_such_object")
    await expect_error(s.call(RC + "get_routercluster_by_name", "cluster9"), "crossbar.error.no_such_object")

    # nodes: by oid (Crossbar.io) or by name (ours); the membership says where the workers listen
    node1 = await w(s.call(M + "get_node_by_authid", "edge1"))
    m1 = await w(s.call(RC + "add_routercluster_node", c["oid"], node1["oid"],
                        {"client_port": 9100, "link_port": 9200, "hardlimit": 4, "link_host": "10.0.0.1"}))
    assert m1 == {"cluster_oid": c["oid"], "node_oid": node1["oid"], "node": "edge1", "softlimit": None,
                  "hardlimit": 4, "client_port": 9100, "client_interface": None, "link_port": 9200,
                  "link_interface": None, "link_host": "10.0.0.1", "changed": m1["changed"]}
    m2 = await w(s.call(RC + "add_routercluster_node", c["oid"], "edge2"))
    assert (m2["client_port"], m2["link_port"]) == (8080, 8180)
    await expect_error(s.call(RC + "add_routercluster_node", c["oid"], "edge2"), "crossbar.error.already_exists")
    await expect_error(s.call(RC + "add_routercluster_node", c["oid"], "edge9"), "crossbar.error.no_such_object")
    await expect_error(s.call(RC + "add_routercluster_node", c["oid"], "edge3", {"client_port": 70000}),
                       "wamp.error.invalid_argument")
    await expect_error(s.call(RC + "add_routercluster_node", c["oid"], "edge3", {"link_port": "x"}),
                       "wamp.error.invalid_argument")
    assert sorted(await w(s.call(RC + "list_routercluster_nodes", c["oid"], return_names=True))) == ["edge1", "edge2"]
    assert await w(s.call(RC + "list_routercluster_nodes", c["oid"], filter_by_status="online")) == []
    assert len(await w(s.call(RC + "list_routercluster_nodes", c["oid"], filter_by_status="offline"))) == 2
    assert await w(s.call(RC + "get_routercluster_node", c["oid"], "edge1")) == m1
    removed = await w(s.call(RC + "remove_routercluster_node", c["oid"], "edge2"))
    assert removed["node"] == "edge2"
    await expect_error(s.call(RC + "remove_routercluster_node", c["oid"], "edge2"), "crossbar.error.no_such_object")
    await expect_error(s.call(RC + "get_routercluster_node", c["oid"], "edge2"), "crossbar.error.no_such_object")

    # worker groups
    wg = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1", "scale": 2}))
    assert (wg["name"], wg["scale"], wg["status"], wg["cluster_oid"]) == ("wg1", 2, "STOPPED", c["oid"])
    auto = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {}))
    assert auto["name"] == "cwg_" + auto["oid"][:8] and auto["scale"] == 1
    await expect_error(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1"}),
                       "crossbar.error.already_exists")
    await expect_error(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg2", "scale": 0}),
                       "wamp.error.invalid_argument")
    assert await w(s.call(RC + "list_routercluster_workergroups", c["oid"], return_names=True)) == \
        sorted(["wg1", auto["name"]])
    assert await w(s.call(RC + "get_routercluster_workergroup", c["oid"], wg["oid"])) == wg
    assert await w(s.call(RC + "get_routercluster_workergroup_by_name", "cluster1", "wg1")) == wg
    await w(s.call(RC + "remove_routercluster_workergroup", c["oid"], auto["oid"]))
    await expect_error(s.call(RC + "get_routercluster_workergroup", c["oid"], auto["oid"]),
                       "crossbar.error.no_such_object")

    # start / stop / stat / delete
    started = await w(s.call(RC + "start_routercluster", c["oid"]))
    assert started["status"] == "RUNNING" and started["who"]["authid"] == "superuser"
    assert (await w(s.call(RC + "get_routercluster", c["oid"])))["status"] == "RUNNING"
    assert (await w(s.call(RC + "get_routercluster_workergroup", c["oid"], wg["oid"])))["status"] == "RUNNING"
    await expect_error(s.call(RC + "start_routercluster", c["oid"]), "crossbar.error.cannot_start")
    await expect_error(s.call(RC + "delete_routercluster", c["oid"]), "crossbar.error.not_stopped")
    stat = await w(s.call(RC + "stat_routercluster", c["oid"]))
    assert stat["status"] == "RUNNING"
    assert stat["nodes"] == [{"node_oid": node1["oid"], "name": "edge1", "status": "offline",
                              "workers": ["wg1_1", "wg1_2"]}]
    assert [x["name"] for x in stat["workergroups"]] == ["wg1"]
    stopped = await w(s.call(RC + "stop_routercluster", c["oid"]))
    assert stopped["status"] == "STOPPED"
    await expect_error(s.call(RC + "stop_routercluster", c["oid"]), "crossbar.error.cannot_stop")
    deleted = await w(s.call(RC + "delete_routercluster", c["oid"]))
    assert deleted["oid"] == c["oid"]
    assert await w(s.call(RC + "list_routerclusters")) == []
    await expect_error(s.call(RC + "get_routercluster_workergroup_by_name", "cluster1", "wg1"),
                       "crossbar.error.no_such_object")

    await asyncio.sleep(0.3)
    assert rec.topics() == [
        "on_routercluster_created", "on_routercluster_node_added", "on_routercluster_node_added",
        "on_routercluster_node_removed", "on_workergroup_added", "on_workergroup_added", "on_workergroup_removed",
        "on_routercluster_starting", "on_routercluster_started", "on_routercluster_stopping",
        "on_routercluster_stopped", "on_routercluster_deleted"]
    assert rec.events[0][1] == c


async def _realm_with_role(s, name="realm1", role="app"):
    r = await w(s.call(AR + "create_role", {"name": role}))
    perm = await w(s.call(AR + "add_role_permission", r["oid"], "com.example.", {
        "match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True,
        "allow_subscribe": True, "disclose_caller": True}))
    a = await w(s.call(AR + "create_arealm", {"name": name}))
    await w(s.call(AR + "add_arealm_role", a["oid"], r["oid"]))
    return a, r, perm


async def test_arealms_roles_permissions_principals(master, superuser, connect):
    g, s, keys = await _setup(connect, master, superuser, "ar1")
    rec = Recorder()
    for ev in ("on_arealm_created", "on_arealm_starting", "on_arealm_started", "on_arealm_stopping",
               "on_arealm_stopped", "on_arealm_deleted", "on_role_created", "on_role_deleted", "on_permission_added",
               "on_permission_removed", "on_arealm_role_added", "on_arealm_role_removed", "on_principal_created",
               "on_principal_deleted", "on_principal_changed"):
        await w(s.subscribe(rec.handler(AR + ev), AR + ev))

    a, r, perm = await _realm_with_role(s)
    assert a["status"] == "STOPPED" and a["workergroup_oid"] is None and a["webcluster_oid"] is None
    assert perm["uri"] == "com.example." and perm["match"] == "prefix" and perm["allow_call"] is True
    assert perm["disclose_publisher"] is False
    assert await w(s.call(AR + "list_arealms", return_names=True)) == ["realm1"]
    assert await w(s.call(AR + "get_arealm_by_name", "realm1")) == a
    assert await w(s.call(AR + "get_role_by_name", "app")) == r
    assert await w(s.call(AR + "list_roles", return_names=True)) == ["app"]
    assert await w(s.call(AR + "list_role_permissions", r["oid"])) == [perm["oid"]]
    assert await w(s.call(AR + "list_role_permissions", r["oid"], prefix="org.")) == []
    assert await w(s.call(AR + "get_role_permission", r["oid"], perm["oid"])) == perm
    assert await w(s.call(AR + "list_arealm_roles", a["oid"], return_names=True)) == ["app"]
    assert (await w(s.call(AR + "get_arealm_role", a["oid"], r["oid"])))["role_oid"] == r["oid"]
    await expect_error(s.call(AR + "create_arealm", {"name": "realm1"}), "crossbar.error.already_exists")
    await expect_error(s.call(AR + "create_arealm", {"name": "bad realm"}), "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "create_role", {"name": "wampfabric.rlink"}), "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "create_role", {"name": "app"}), "crossbar.error.already_exists")
    await expect_error(s.call(AR + "add_role_permission", r["oid"], "com..x", {"match": "exact"}),
                       "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "add_role_permission", r["oid"], "com.x", {"match": "regex"}),
                       "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "add_role_permission", r["oid"], "com.x", {"allow_call": "yes"}),
                       "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "add_arealm_role", a["oid"], r["oid"]), "crossbar.error.already_exists")

    # principals: the role must be the arealm's; the ticket is never shown
    other = await w(s.call(AR + "create_role", {"name": "other"}))
    await expect_error(s.call(AR + "add_principal", a["oid"], {"authid": "c1", "role_oid": other["oid"],
                                                              "ticket": "t"}), "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "add_principal", a["oid"], {"authid": "c1", "role": "app",
                                                              "authorized_keys": ["xyz"]}),
                       "wamp.error.invalid_argument")
    p1 = await w(s.call(AR + "add_principal", a["oid"], {"authid": "c1", "role_oid": r["oid"], "ticket": "secret"}))
    assert p1["authid"] == "c1" and p1["role"] == "app" and p1["has_ticket"] is True and "ticket" not in p1
    k = Key()
    p2 = await w(s.call(AR + "add_principal", a["oid"], {"authid": "c2", "role": "app",
                                                        "authorized_keys": [k.pubkey.upper()]}))
    assert p2["authorized_keys"] == [k.pubkey] and p2["has_ticket"] is False
    await expect_error(s.call(AR + "add_principal", a["oid"], {"authid": "c1", "role": "app", "ticket": "x"}),
                       "crossbar.error.already_exists")
    assert await w(s.call(AR + "list_principals", a["oid"], return_names=True)) == ["c1", "c2"]
    assert await w(s.call(AR + "get_principal", a["oid"], p1["oid"])) == p1
    assert await w(s.call(AR + "get_principal_by_name", a["oid"], "c1")) == p1

    # Crossbar.io's shell: a principal without credentials, then credentials (one per method)
    p3 = await w(s.call(AR + "add_principal", a["oid"], {"authid": "c3", "role_oid": r["oid"]}))
    assert p3["has_ticket"] is False and p3["authorized_keys"] is None
    assert await w(s.call(AR + "list_principal_credentials", a["oid"], p3["oid"])) == []
    cred = await w(s.call(AR + "add_principal_credential", a["oid"], p3["oid"],
                          {"authmethod": "ticket", "secret": "s3"}))
    assert (cred["authmethod"], cred["realm"], cred["authid"], cred["principal_oid"]) == ("ticket", "realm1", "c3",
                                                                                          p3["oid"])
    assert "s3" not in repr(cred)
    await expect_error(s.call(AR + "add_principal_credential", a["oid"], p3["oid"],
                              {"authmethod": "ticket", "secret": "again"}), "crossbar.error.already_running")
    await expect_error(s.call(AR + "add_principal_credential", a["oid"], p3["oid"],
                              {"authmethod": "wampcra", "secret": "x"}), "wamp.error.invalid_argument")
    ccs = await w(s.call(AR + "add_principal_credential", a["oid"], p3["oid"],
                         {"authmethod": "cryptosign", "authconfig": {"authorized_keys": [k.pubkey]}}))
    assert ccs["authconfig"] == {"authorized_keys": [k.pubkey]}
    assert sorted(await w(s.call(AR + "list_principal_credentials", a["oid"], p3["oid"]))) == \
        sorted([cred["oid"], ccs["oid"]])
    got = await w(s.call(AR + "get_principal_credential", a["oid"], p3["oid"], cred["oid"]))
    assert dict(got, modified=None) == dict(cred, modified=None)
    got = await w(s.call(AR + "get_principal", a["oid"], p3["oid"]))
    assert got["has_ticket"] is True and got["authorized_keys"] == [k.pubkey]
    await w(s.call(AR + "remove_principal_credential", a["oid"], p3["oid"], cred["oid"]))
    assert await w(s.call(AR + "list_principal_credentials", a["oid"], p3["oid"])) == [ccs["oid"]]
    await w(s.call(AR + "remove_principal", a["oid"], p3["oid"]))
    assert [x["uri"] for x in await w(s.call(AR + "get_role_permissions_by_uri", r["oid"], "com."))] == \
        ["com.example."]
    assert await w(s.call(AR + "get_role_permissions_by_uri", r["oid"], "org.")) == []
    await expect_error(s.call(AR + "delete_role", r["oid"]), "wamp.error.invalid_argument")
    await expect_error(s.call(AR + "remove_arealm_role", a["oid"], r["oid"]), "wamp.error.invalid_argument")

    # start on a worker group (no web clusters here), stop, delete
    c = await w(s.call(RC + "create_routercluster", {"name": "cluster1"}))
    wg = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1"}))
    await expect_error(s.call(AR + "start_arealm", a["oid"], wg["oid"], "6e7a4b4e-0000-4000-8000-000000000000"),
                       "crossbar.error.no_such_object")
    started = await w(s.call(AR + "start_arealm", a["oid"], wg["oid"]))
    assert started["status"] == "RUNNING" and started["router_workergroup_oid"] == wg["oid"]
    await expect_error(s.call(AR + "start_arealm", a["oid"], wg["oid"]), "crossbar.error.cannot_start")
    await expect_error(s.call(AR + "delete_arealm", a["oid"]), "crossbar.error.not_stopped")
    await expect_error(s.call(RC + "remove_routercluster_workergroup", c["oid"], wg["oid"]),
                       "crossbar.error.not_stopped")
    stat = await w(s.call(AR + "stat_arealm", a["oid"]))
    assert stat["routercluster_oid"] == c["oid"] and stat["roles"] == ["app"] and stat["principals"] == 2
    await w(s.call(AR + "stop_arealm", a["oid"]))
    await expect_error(s.call(AR + "stop_arealm", a["oid"]), "crossbar.error.cannot_stop")

    await w(s.call(AR + "remove_principal", a["oid"], p2["oid"]))
    await w(s.call(AR + "remove_role_permission", r["oid"], perm["oid"]))
    assert await w(s.call(AR + "list_role_permissions", r["oid"])) == []
    await w(s.call(AR + "delete_arealm", a["oid"]))  # its principals and role associations go with it
    assert await w(s.call(AR + "list_arealms")) == []
    await w(s.call(AR + "delete_role", r["oid"]))
    assert await w(s.call(AR + "list_roles", return_names=True)) == ["other"]

    await asyncio.sleep(0.3)
    assert rec.topics() == [
        "on_role_created", "on_permission_added", "on_arealm_created", "on_arealm_role_added", "on_role_created",
        "on_principal_created", "on_principal_created", "on_principal_created", "on_principal_changed",
        "on_principal_changed", "on_principal_changed", "on_principal_deleted", "on_arealm_starting",
        "on_arealm_started", "on_arealm_stopping", "on_arealm_stopped", "on_principal_deleted", "on_permission_removed",
        "on_arealm_deleted", "on_role_deleted"]


async def test_role_checks(master, superuser, connect):
    g, owner, keys = await _setup(connect, master, superuser, "rcroles")
    c = await w(owner.call(RC + "create_routercluster", {"name": "cluster1"}))
    a = await w(owner.call(AR + "create_arealm", {"name": "realm1"}))
    guest = await connect(master, superuser, realm="rcroles", authrole="guest")
    user = await connect(master, superuser, realm="rcroles", authrole="user")
    admin = await connect(master, superuser, realm="rcroles", authrole="admin")
    # guest: reads only
    assert await w(guest.call(RC + "list_routerclusters")) == [c["oid"]]
    assert (await w(guest.call(AR + "get_arealm", a["oid"])))["name"] == "realm1"
    assert (await w(guest.call(RC + "stat_routercluster", c["oid"])))["status"] == "STOPPED"
    for proc, args in ((RC + "create_routercluster", ({"name": "x"},)), (RC + "start_routercluster", (c["oid"],)),
                       (RC + "add_routercluster_node", (c["oid"], "edge1")), (AR + "create_role", ({"name": "r"},)),
                       (AR + "delete_arealm", (a["oid"],))):
        await expect_error(guest.call(proc, *args), "wamp.error.not_authorized")
    # user: also starts and stops, does not define
    await expect_error(user.call(RC + "create_routercluster", {"name": "x"}), "wamp.error.not_authorized")
    await expect_error(user.call(RC + "delete_routercluster", c["oid"]), "wamp.error.not_authorized")
    await expect_error(user.call(AR + "add_principal", a["oid"], {"authid": "x", "ticket": "t"}),
                       "wamp.error.not_authorized")
    await w(user.call(RC + "start_routercluster", c["oid"]))
    await w(user.call(RC + "stop_routercluster", c["oid"]))
    # admin: defines
    await w(admin.call(RC + "add_routercluster_node", c["oid"], "edge1"))
    # the wiring holds tickets: owner and admin (and the change engine), not user or guest
    for s in (guest, user):
        await expect_error(s.call(RC + "get_routercluster_wiring", "edge1"), "wamp.error.not_authorized")
    assert (await w(admin.call(RC + "get_routercluster_wiring", "edge1")))["node"] == "edge1"


async def test_wiring_full_mesh_ports_auth_and_persistence(superuser, connect):
    """What each member node gets: one link per pair of router workers, on the side that sorts
    first; ports per worker; the principals on the client transport and the node keys on the link
    transport. The definitions survive a restart of the master."""
    master = Master(superuser=superuser)
    master.init()
    master.start()
    try:
        g, s, keys = await _setup(connect, master, superuser, "wire")
        c = await w(s.call(RC + "create_routercluster", {"name": "cluster1"}))
        for i, n in enumerate(("edge1", "edge2", "edge3")):
            await w(s.call(RC + "add_routercluster_node", c["oid"], n, {"client_port": 9000 + 10 * i,
                                                                       "link_port": 9500 + 10 * i}))
        wg = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1", "scale": 2}))
        a, r, _ = await _realm_with_role(s)
        ck = Key()
        await w(s.call(AR + "add_principal", a["oid"], {"authid": "c1", "role": "app", "ticket": "secret1"}))
        await w(s.call(AR + "add_principal", a["oid"], {"authid": "c2", "role": "app", "authorized_keys": [ck.pubkey]}))

        # nothing runs while the cluster or the arealm is stopped; but the group's workers are managed
        empty = await w(s.call(RC + "get_routercluster_wiring", "edge1"))
        assert empty["workers"] == [] and empty["managed"] == ["wg1_1", "wg1_2"]
        await w(s.call(RC + "start_routercluster", c["oid"]))
        assert (await w(s.call(RC + "get_routercluster_wiring", "edge1")))["workers"] == []
        await w(s.call(AR + "start_arealm", a["oid"], wg["oid"]))

        wiring = {n: await w(s.call(RC + "get_routercluster_wiring", n)) for n in ("edge1", "edge2", "edge3")}
        links = set()
        for n, wr in wiring.items():
            assert wr["clusters"] == ["cluster1"]
            assert [x["id"] for x in wr["workers"]] == ["wg1_1", "wg1_2"]
            for k, wk in enumerate(wr["workers"]):
                i = int(n[-1]) - 1
                tr = {t["id"]: t["config"] for t in wk["transports"]}
                assert tr["client"]["endpoint"]["port"] == 9000 + 10 * i + k
                assert tr["link"]["endpoint"]["port"] == 9500 + 10 * i + k
                assert tr["client"]["auth"]["ticket"]["principals"] == {
                    "c1": {"realm": "realm1", "role": "app", "ticket": "secret1"}}
                assert tr["client"]["auth"]["cryptosign"]["principals"]["c2"]["authorized_keys"] == [ck.pubkey]
                assert tr["link"]["auth"]["cryptosign"]["principals"] == {
                    m: {"authorized_keys": [keys[m].pubkey], "role": "wampfabric.rlink"} for m in keys}
                realm = wk["realms"][0]["config"]
                assert realm["name"] == "realm1" and [x["name"] for x in realm["roles"]] == ["app", "wampfabric.rlink"]
                assert realm["roles"][0]["permissions"][0]["allow"] == {
                    "call": True, "register": True, "publish": True, "subscribe": True}
                for link in wk["links"]:
                    assert link["config"]["authentication"] == {"cryptosign": {"authid": n}}
                    port = link["config"]["transport"]["endpoint"]["port"]
                    links.add(((n, wk["id"]), port))
        # 6 router workers: 15 pairs, each linked once, from the side that sorts first
        slots = [(n, f"wg1_{k}") for n in ("edge1", "edge2", "edge3") for k in (1, 2)]
        port_of = {(n, f"wg1_{k}"): 9500 + 10 * (int(n[-1]) - 1) + k - 1 for n, k in
                   ((n, k) for n in ("edge1", "edge2", "edge3") for k in (1, 2))}
        expected = {(a_, port_of[b]) for i, a_ in enumerate(slots) for b in slots[i + 1:]}
        assert links == expected and len(links) == 15

        # a second arealm on the group: a realm more on every worker, linked the same way; the first
        # stopped: only the second is wanted
        a2 = await w(s.call(AR + "create_arealm", {"name": "realm2"}))
        await w(s.call(AR + "start_arealm", a2["oid"], wg["oid"]))
        wk = (await w(s.call(RC + "get_routercluster_wiring", "edge1")))["workers"][0]
        assert [r["id"] for r in wk["realms"]] == ["realm1", "realm2"]
        assert sorted({x["realm_id"] for x in wk["links"]}) == ["realm1", "realm2"] and len(wk["links"]) == 10
        await w(s.call(AR + "stop_arealm", a["oid"]))
        wk = (await w(s.call(RC + "get_routercluster_wiring", "edge1")))["workers"][0]
        assert [r["id"] for r in wk["realms"]] == ["realm2"] and {x["realm_id"] for x in wk["links"]} == {"realm2"}
        assert "ticket" in wk["transports"][0]["config"]["auth"]  # realm2 has no principal: nobody joins
        assert wk["transports"][0]["config"]["auth"]["ticket"]["principals"] == {}
        await w(s.call(AR + "stop_arealm", a2["oid"]))
        assert (await w(s.call(RC + "get_routercluster_wiring", "edge1")))["workers"] == []
        await w(s.call(AR + "start_arealm", a["oid"], wg["oid"]))

        # a removed node: nothing wanted there, its workers still managed (so the engine stops them)
        await w(s.call(RC + "remove_routercluster_node", c["oid"], "edge3"))
        gone = await w(s.call(RC + "get_routercluster_wiring", "edge3"))
        assert gone["workers"] == [] and gone["managed"] == ["wg1_1", "wg1_2"]
        assert all("edge3" not in link["id"] for wk in (await w(s.call(RC + "get_routercluster_wiring", "edge1")))[
            "workers"] for link in wk["links"])

        await g.close()
        await s.close()
        master.stop()
        master.start()
        s = await connect(master, superuser, realm="wire")
        assert await w(s.call(RC + "list_routerclusters", return_names=True)) == ["cluster1"]
        assert (await w(s.call(AR + "get_arealm", a["oid"])))["status"] == "RUNNING"
        assert await w(s.call(RC + "list_routercluster_nodes", c["oid"], return_names=True)) == ["edge1", "edge2"]
        assert len((await w(s.call(RC + "get_routercluster_wiring", "edge1")))["workers"]) == 2
    finally:
        master.stop()

