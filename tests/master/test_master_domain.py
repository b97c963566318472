"""The domain API of the global realm (mrealms, pairing) and the mrealm controllers, through
autobahn-python sessions against a master started with the CLI; watch-to-pair; a restart keeps
everything."""

from __future__ import annotations

import asyncio
import time

import pytest

from masternode import GLOBAL, Key, Master, fabric_connect
from support.autobahn_client import JoinFailed, expect_error, subscribe, until, w

M = "crossbarfabriccenter.mrealm."


@pytest.fixture(scope="module")
def names():
    n = iter(range(1000))
    return lambda stem: f"{stem}{next(n)}"


async def test_domain_status_version_license(master, superuser, connect):
    su = await connect(master, superuser, serializer="json")
    status = await w(su.call("crossbarfabriccenter.domain.get_status"))
    assert status["type"] == "domain" and status["realm"] == GLOBAL
    assert status["now"].endswith("Z") and status["tick"] >= 1
    version = await w(su.call("crossbarfabriccenter.domain.get_version"))
    assert version["product"] == "wampfabric" and version["version"]
    lic = await w(su.call("crossbarfabriccenter.domain.get_license"))
    assert lic["product"] == "wampfabric"


async def test_create_list_delete_mrealm(master, superuser, connect, names):
    su = await connect(master, superuser)
    created_ev, _ = await subscribe(su, M + "on_mrealm_created")
    deleted_ev, _ = await subscribe(su, M + "on_mrealm_deleted")
    name = names("crud")
    before = time.time()
    mrealm = await w(su.call(M + "create_mrealm", {"name": name, "label": "L", "tags": ["a"]}))
    assert mrealm["name"] == name and mrealm["label"] == "L" and mrealm["tags"] == ["a"]
    assert before - 1 < mrealm["created"] / 1e6 < time.time() + 1  # microseconds, as Crossbar.io
    assert mrealm["owner"] and mrealm["oid"]
    await created_ev.wait(1)
    assert created_ev.args[0][0]["oid"] == mrealm["oid"]
    assert await w(su.call(M + "get_mrealm", mrealm["oid"])) == mrealm
    assert await w(su.call(M + "get_mrealm_by_name", name)) == mrealm
    assert name in await w(su.call(M + "list_mrealms", return_names=True))
    assert mrealm["oid"] in await w(su.call(M + "list_mrealms"))
    # the realm runs at once: the owner joins it
    on = await connect(master, superuser, realm=name)
    ticks, _ = await subscribe(on, M + "on_tick")
    await expect_error(su.call(M + "create_mrealm", {"name": name}), "crossbar.error.already_exists")
    for bad in ({"name": "Bad Name"}, {"name": "com.crossbario.fabric"}, {"name": "crossbar"}, {}, "x",
                {"name": "ok_name", "tags": "notalist"}):
        await expect_error(su.call(M + "create_mrealm", bad), "wamp.error.invalid_argument")
    await expect_error(su.call(M + "create_mrealm"), "wamp.error.invalid_argument")
    await ticks.wait(1, timeout=7)  # every 5 s
    assert set(ticks.args[0][0]) == {"now", "tick"}
    deleted = await w(su.call(M + "delete_mrealm", mrealm["oid"]))
    assert deleted["oid"] == mrealm["oid"]
    await deleted_ev.wait(1)
    await until(lambda: not on.is_attached(), what="the mrealm session closed")
    assert name not in await w(su.call(M + "list_mrealms", return_names=True))
    await expect_error(su.call(M + "get_mrealm", mrealm["oid"]), "crossbar.error.no_such_object")
    await expect_error(su.call(M + "get_mrealm", "not-a-uuid"), "crossbar.error.no_such_object")
    with pytest.raises(JoinFailed):
        await connect(master, superuser, realm=name)


async def test_pair_and_unpair(master, superuser, connect, names):
    su = await connect(master, superuser)
    paired_ev, _ = await subscribe(su, M + "on_node_paired")
    unpaired_ev, _ = await subscribe(su, M + "on_node_unpaired")
    realm = names("pairing")
    mrealm = await w(su.call(M + "create_mrealm", {"name": realm}))
    key = Key()
    node = await w(su.call(M + "pair_node", key.pubkey, realm, "edge1", {"note": "n"}))
    assert (node["pubkey"], node["authid"], node["mrealm_oid"], node["authextra"]) == \
        (key.pubkey, "edge1", mrealm["oid"], {"note": "n"})
    await paired_ev.wait(1)
    assert paired_ev.args[0][0]["oid"] == node["oid"]
    # the same key twice, the same name twice, bad arguments
    await expect_error(su.call(M + "pair_node", key.pubkey, realm, "edge2", None), "crossbar.error.already_exists")
    await expect_error(su.call(M + "pair_node", Key().pubkey, realm, "edge1", None), "crossbar.error.already_exists")
    await expect_error(su.call(M + "pair_node", "abc", realm, "edge3", None), "wamp.error.invalid_argument")
    await expect_error(su.call(M + "pair_node", Key().pubkey, realm, "Edge.3", None), "wamp.error.invalid_argument")
    await expect_error(su.call(M + "pair_node", Key().pubkey, realm, "edge3", "x"), "wamp.error.invalid_argument")
    await expect_error(su.call(M + "pair_node", Key().pubkey, "nosuch", "edge3", None),
                       "crossbar.error.no_such_object")
    # lookups
    got = await w(su.call(M + "get_node", node["oid"]))
    assert got["authid"] == "edge1" and got["mrealm_name"] == realm and got["connected"] is False
    assert (await w(su.call(M + "get_node_by_name", realm, "edge1")))["oid"] == node["oid"]
    assert await w(su.call(M + "list_nodes", realm)) == [node["oid"]]
    assert [realm, "edge1"] in await w(su.call(M + "list_nodes", return_names=True))
    # the node joins; unpairing kicks it and it cannot come back
    n = await connect(master, key, authrole="node")
    assert (await w(su.call(M + "get_node", node["oid"])))["connected"] is True
    await w(su.call(M + "unpair_node", node["oid"]))
    await unpaired_ev.wait(1)
    await until(lambda: not n.is_attached(), what="the unpaired node's session closed")
    with pytest.raises(JoinFailed) as ei:
        await connect(master, key, authrole="node")
    assert ei.value.reason == "fabric.auth-failed.node-unpaired"
    await expect_error(su.call(M + "get_node", node["oid"]), "crossbar.error.no_such_object")
    # by pubkey and by name
    k2, k3 = Key(), Key()
    await w(su.call(M + "pair_node", k2.pubkey, realm, "edge2", None))
    await w(su.call(M + "pair_node", k3.pubkey, realm, "edge3", None))
    assert (await w(su.call(M + "unpair_node_by_pubkey", k2.pubkey)))["authid"] == "edge2"
    assert (await w(su.call(M + "unpair_node_by_name", realm, "edge3")))["pubkey"] == k3.pubkey
    assert await w(su.call(M + "list_nodes", realm)) == []
    await expect_error(su.call(M + "unpair_node_by_name", realm, "edge3"), "crossbar.error.no_such_object")


async def test_delete_refuses_while_nodes_are_paired_unless_cascade(master, superuser, connect, names):
    su = await connect(master, superuser)
    realm = names("cascade")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    key = Key()
    await w(su.call(M + "pair_node", key.pubkey, realm, "edge1", None))
    n = await connect(master, key, authrole="node")
    await expect_error(su.call(M + "delete_mrealm_by_name", realm), "crossbar.error.not_empty")
    assert n.is_attached()
    await w(su.call(M + "delete_mrealm_by_name", realm, cascade=True))
    await until(lambda: not n.is_attached(), what="the node's session closed")
    with pytest.raises(JoinFailed) as ei:
        await connect(master, key, authrole="node")
    assert ei.value.reason == "fabric.auth-failed.node-unpaired"


async def test_restart_keeps_mrealms_roles_and_pairings():
    su_key = Key()
    m = Master(superuser=su_key)
    m.init()
    try:
        m.start()
        su = await fabric_connect(m.url, su_key)
        await w(su.call(M + "create_mrealm", {"name": "kept"}))
        node_key = Key()
        await w(su.call(M + "pair_node", node_key.pubkey, "kept", "edge1", {"x": 1}))
        await su.close()
        assert m.stop() == 0
        m.start()
        assert "Master: 1 management realm(s) started from the database" in m.log()
        n = await fabric_connect(m.url, node_key, authrole="node")
        assert (n.joined.result().realm, n.joined.result().authid, n.joined.result().authextra["x"]) == \
            ("kept", "edge1", 1)
        assert (await w(n.call(M + "get_status")))["realm"] == "kept"
        await n.close()
        owner = await fabric_connect(m.url, su_key, realm="kept")
        assert owner.joined.result().authrole == "owner"
        await owner.close()
    finally:
        m.stop()


async def test_watch_to_pair(tmp_path):
    su_key = Key()
    watched = tmp_path / "nodes"
    (watched / "n1" / ".crossbar").mkdir(parents=True)
    (watched / "n2").mkdir()
    k1, k2 = Key(), Key()
    k1.write_pub(watched / "n1" / ".crossbar" / "key.pub", **{"node-authid": "alpha"})
    k2.write_pub(watched / "n2" / "key.pub")
    (watched / "n2" / "key.activate").write_text("mine\n")  # an existing file is left alone
    m = Master(superuser=su_key, env={"CROSSBAR_WATCH_TO_PAIR": str(watched), "CROSSBAR_WATCH_TO_PAIR_PERIOD": "0.5"})
    m.init()
    try:
        m.start()
        m.wait_log("Watch-to-pair: node 'alpha' paired with 'default'")
        text = (watched / "n1" / ".crossbar" / "key.activate").read_text()
        lines = text.splitlines()
        assert lines[:2] == ["Crossbar.io node activation", ""]
        tags = dict(line.split(": ", 1) for line in lines[2:])
        assert tags["management-url"] == m.url
        assert tags["management-realm"] == "default" and tags["node-authid"] == "alpha"
        assert tags["public-key-ed25519"] == k1.pubkey
        assert (watched / "n2" / "key.activate").read_text() == "mine\n"
        su = await fabric_connect(m.url, su_key)
        names = await w(su.call(M + "list_nodes", "default", return_names=True))
        assert ["default", "alpha"] in names and len(names) == 2
        n = await fabric_connect(m.url, k1, authrole="node")
        assert (n.joined.result().realm, n.joined.result().authid) == ("default", "alpha")
        await n.close()
        # a key found again is not paired twice
        await asyncio.sleep(1.2)
        assert len(await w(su.call(M + "list_nodes", "default"))) == 2
        await su.close()
    finally:
        m.stop()
