"""The change engine end to end with the CLI: ``wampfabric master init/start`` (its container worker
``change_engine``) and ``wampfabric edge start`` nodes. The superuser sets a node's desired state
through the mrealm API (``set_node_config``); the edge gets the router worker, realm and WebSocket
transport, which an autobahn-python client uses; the edge is killed and its node directory wiped
except its key (a replaced machine): started again, it gets its workers back. With
``CROSSBAR_DISABLE_CE=1`` the worker is skipped with the design document's line and nothing is
applied; ``on_start_apply_config: false`` applies nothing on join; ``exclusive`` stops what goes
beyond; the engine's sessions need the master's key over the Unix socket."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest
from autobahn.wamp.exception import ApplicationError

from masternode import Key, Master, fabric_connect
from support.autobahn_client import JoinFailed, connect, w
from support.nodes import FULL_PERMS, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fabric"))
from fabricnodes import M, R, WfEdge, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def desired(port: int, extra_workers=()) -> dict:
    return {"version": 2, "workers": [{
        "id": "rw1", "type": "router",
        "realms": [{"id": "realm1", "name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
        "transports": [{"id": "t1", "type": "websocket",
                        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}}],
    }, *extra_workers]}


async def use_transport(port: int) -> None:
    client = await connect(None, url=f"ws://127.0.0.1:{port}/", realm="realm1")
    try:
        await w(client.register(lambda x: x * 2, "com.example.double"))
        assert await w(client.call("com.example.double", 21)) == 42
    finally:
        await client.shutdown()


async def workers_of(s, name):
    return await w(s.call(R + "node.get_workers", name))


def wipe_except_key(cbdir: Path) -> None:
    """A replaced machine: the node directory holds only its key (config.json is written again)."""
    for p in cbdir.iterdir():
        if p.name in ("key.priv", "key.pub"):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


async def test_desired_state_applied_on_join_change_and_replaced_machine(tmp_path):
    su = Key()
    master = Master(superuser=su)
    master.init()
    master.start()
    master.wait_log("Change engine ready")
    edge = WfEdge(tmp_path, "edge1", master.url)
    edge2 = WfEdge(tmp_path, "edge2", master.url)
    sessions = []
    try:
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        node = await w(g.call("crossbarfabriccenter.mrealm.pair_node", edge.pubkey, "m1", "edge1", None))
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", edge2.pubkey, "m1", "edge2",
                       {"on_start_apply_config": False}))
        master.wait_log("Change engine: following management realm 'm1'")
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)

        # a desired state set while the node is offline, by name; read back by oid
        port = free_port()
        out = await w(s.call(M + "set_node_config", "edge1", desired(port)))
        assert out["node_oid"] == node["oid"] and out["version"] == 1 and out["exclusive"] is False
        got = await w(s.call(M + "get_node_config", node["oid"]))
        assert got["config"]["workers"][0]["id"] == "rw1" and got["modified_by"] == "superuser"

        edge.start()
        assert await wait_for(lambda: _has(s, "edge1", "rw1"), 60, "rw1 started on edge1 by the engine")
        await wait_for(lambda: _transport_up(s, node["oid"]), 30, "t1 on rw1")
        await use_transport(port)
        master.wait_log("Change engine: node 'edge1' (mrealm 'm1'): started router worker 'rw1'")
        master.wait_log("Change engine: node 'edge1' (mrealm 'm1'): started realm 'realm1'")
        master.wait_log("Change engine: node 'edge1' (mrealm 'm1'): started transport 't1' on worker 'rw1'")

        # a change while online: a container worker more
        port2 = free_port()
        cw = {"id": "cw1", "type": "container", "components": []}
        out = await w(s.call(M + "set_node_config", node["oid"], desired(port, [cw])))
        assert out["version"] == 2
        assert await wait_for(lambda: _has(s, "edge1", "cw1"), 60, "cw1 started after the change")
        master.wait_log("Change engine: node 'edge1' (mrealm 'm1'): started container worker 'cw1'")

        # exclusive: what goes beyond the desired state is stopped
        await w(s.call(R + "node.start_worker", "edge1", "extra1", "container", {}), 30)
        assert await wait_for(lambda: _has(s, "edge1", "extra1"), 30, "extra1 runs")
        await w(s.call(M + "set_node_config", "edge1", desired(port, [cw]), exclusive=True))
        await wait_for(lambda: _lacks(s, "edge1", "extra1"), 60, "extra1 stopped (exclusive)")
        assert sorted(await workers_of(s, "edge1")) == ["cw1", "rw1"]
        master.wait_log("stopped worker 'extra1' (not in the exclusive desired state)")

        # a replaced machine: kill it, keep only its key, start it again
        edge.kill()
        await wait_for(lambda: _offline(s, "edge1"), 30, "edge1 offline")
        wipe_except_key(edge.cbdir)
        (edge.cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {
            "heartbeat": {"startup_delay": 0, "heartbeat_period": 1}}}, "workers": []}))
        applied = master.log().count("desired state version 3 applied")
        edge.start()
        await wait_for(lambda: _has(s, "edge1", "rw1"), 60, "rw1 back on the replaced edge1")
        await wait_for(lambda: _has(s, "edge1", "cw1"), 60, "cw1 back on the replaced edge1")
        await wait_for(lambda: _transport_up(s, node["oid"]), 30, "t1 back")
        await use_transport(port)
        master.wait_log("desired state version 3 applied", count=applied + 1)

        # on_start_apply_config false: nothing applied on join
        await w(s.call(M + "set_node_config", "edge2", desired(port2)))
        edge2.start()
        await wait_for(lambda: _online(s, "edge2"), 60, "edge2 online")
        master.wait_log("Change engine: node 'edge2' (mrealm 'm1') joined; on_start_apply_config is false")
        assert await workers_of(s, "edge2") == []
        # ... but a change while it is online is applied
        await w(s.call(M + "set_node_config", "edge2", desired(port2)))
        assert await wait_for(lambda: _has(s, "edge2", "rw1"), 60, "rw1 on edge2 after a change")

        # removing the desired state stops nothing
        assert await w(s.call(M + "set_node_config", "edge1", None)) is None
        assert await w(s.call(M + "get_node_config", "edge1")) is None
        assert sorted(await workers_of(s, "edge1")) == ["cw1", "rw1"]
    finally:
        for x in sessions:
            await x.close()
        edge.stop()
        edge2.stop()
        master.stop()


async def _has(s, name, wid):
    try:
        return wid in await workers_of(s, name)
    except ApplicationError:
        return False


async def _lacks(s, name, wid):
    return wid not in await workers_of(s, name)


async def _transport_up(s, oid):
    try:
        return "t1" in await w(s.call(R + "router.get_router_transports", oid, "rw1"))
    except ApplicationError:
        return False


async def _online(s, name):
    return (await w(s.call(M + "get_node_by_authid", name)))["status"] == "online"


async def _offline(s, name):
    return (await w(s.call(M + "get_node_by_authid", name)))["status"] == "offline"


async def test_set_node_config_checks_and_rights(tmp_path):
    su = Key()
    master = Master(superuser=su, env={"CROSSBAR_DISABLE_CE": "1"})
    master.init()
    master.start()
    sessions = []
    try:
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m2"}))
        nk = Key()
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", nk.pubkey, "m1", "edge1", None))
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)

        async def refused(uri, *args, **kwargs):
            with pytest.raises(ApplicationError) as e:
                await w(s.call(M + "set_node_config", *args, **kwargs))
            assert e.value.error == uri, e.value
            return e.value.args[0]

        bad = desired(free_port())
        bad["workers"][0]["transports"][0]["endpoint"]["port"] = "x"
        msg = await refused("wamp.error.invalid_argument", "edge1", bad)
        assert "$.workers[0].transports[0].endpoint.port" in msg, msg
        noid = desired(free_port())
        del noid["workers"][0]["realms"][0]["id"]
        assert "$.workers[0].realms[0].id" in await refused("wamp.error.invalid_argument", "edge1", noid)
        assert "$.controller" in await refused("wamp.error.invalid_argument", "edge1",
                                              {"version": 2, "controller": {}, "workers": []})
        assert "$" in await refused("wamp.error.invalid_argument", "edge1", [1])
        await refused("wamp.error.invalid_argument", "edge1", desired(1), exclusive="yes")
        await refused("crossbar.error.no_such_object", "nosuch", desired(1))
        # a node of another mrealm is not found here
        with pytest.raises(ApplicationError) as e:
            s2 = await fabric_connect(master.url, su, realm="m2")
            sessions.append(s2)
            await w(s2.call(M + "set_node_config", "edge1", desired(1)))
        assert e.value.error == "crossbar.error.no_such_object"

        # a user with role user or guest on m1 may neither set nor read it
        alice = Key()
        with pytest.raises(JoinFailed):
            await fabric_connect(master.url, alice, realm=None, authid="alice@example.com")
        from masternode import activation_code
        code = activation_code(master, "alice@example.com")
        a = await fabric_connect(master.url, alice, realm=None, authid="alice@example.com",
                                 authextra={"activation_code": code})
        sessions.append(a)
        await w(g.call("crossbarfabriccenter.mrealm.set_roles_on_mrealm_for_user", "m1", "alice@example.com",
                       ["user"]))
        am = await fabric_connect(master.url, alice, realm="m1", authid="alice@example.com")
        sessions.append(am)
        for proc, args in (("set_node_config", ("edge1", desired(1))), ("get_node_config", ("edge1",))):
            with pytest.raises(ApplicationError) as e:
                await w(am.call(M + proc, *args))
            assert e.value.error == "wamp.error.not_authorized", (proc, e.value)
        # an admin may
        await w(g.call("crossbarfabriccenter.mrealm.set_roles_on_mrealm_for_user", "m1", "alice@example.com",
                       ["admin"]))
        ad = await fabric_connect(master.url, alice, realm="m1", authid="alice@example.com")
        sessions.append(ad)
        assert (await w(ad.call(M + "set_node_config", "edge1", desired(1))))["version"] == 1
        assert (await w(ad.call(M + "get_node_config", "edge1")))["modified_by"] == "alice@example.com"

        # unpairing forgets it
        await w(g.call("crossbarfabriccenter.mrealm.unpair_node_by_name", "m1", "edge1"))
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", nk.pubkey, "m1", "edge1", None))
        assert await w(s.call(M + "get_node_config", "edge1")) is None
    finally:
        for x in sessions:
            await x.close()
        master.stop()


async def test_disabled_by_env_logs_and_applies_nothing(tmp_path):
    su = Key()
    master = Master(superuser=su, env={"CROSSBAR_DISABLE_CE": "1"})
    master.init()
    master.start()
    edge = WfEdge(tmp_path, "edge1", master.url)
    sessions = []
    try:
        master.wait_log("Skip start of worker Container change_engine (disabled from envvar CROSSBAR_DISABLE_CE)")
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", edge.pubkey, "m1", "edge1", None))
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)
        await w(s.call(M + "set_node_config", "edge1", desired(free_port())))
        edge.start()
        await wait_for(lambda: _online(s, "edge1"), 60, "edge1 online")
        await w(s.call(M + "set_node_config", "edge1", desired(free_port())))
        import asyncio
        await asyncio.sleep(3)
        assert await workers_of(s, "edge1") == []
        assert "Change engine" not in master.log()
    finally:
        for x in sessions:
            await x.close()
        edge.stop()
        master.stop()


async def test_disabled_by_config_parameter(tmp_path):
    master = Master()
    master.init()
    path = master.cbdir / "config.json"
    cfg = json.loads(path.read_text())
    ce = [wk for wk in cfg["workers"] if wk["id"] == "change_engine"][0]
    ce["options"]["disabled"] = True
    path.write_text(json.dumps(cfg))
    master.start()
    try:
        master.wait_log("Skip start of worker Container change_engine (disabled from config parameter)")
    finally:
        master.stop()


async def test_backend_socket_needs_the_master_key(tmp_path):
    """The engine's Unix socket (0600) accepts no session without a key: anonymous is refused, a
    user key gets no backend role, and the master's key is refused over TCP."""
    master = Master()
    master.init()
    master.start()
    try:
        master.wait_log("Change engine ready")
        sock = master.cbdir / "sock2"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        from wampfabric.client.auth import Cryptosign
        from wampfabric.client.connection import connect as wf_connect
        from wampfabric.client.session import ApplicationError as WfError
        from wampfabric.node.keys import load_or_create_node_key

        tr = {"type": "rawsocket", "serializer": "cbor", "endpoint": {"type": "unix", "path": str(sock)}}
        with pytest.raises(WfError):
            await wf_connect(tr, "com.crossbario.fabric")  # anonymous
        other = Key()
        with pytest.raises(WfError):
            await wf_connect(tr, "com.crossbario.fabric", auth=[Cryptosign(other.private, authid="backend")],
                             authrole="backend")
        mkey, _ = load_or_create_node_key(master.cbdir)
        s = await wf_connect(tr, "com.crossbario.fabric", auth=[Cryptosign(mkey.private, authid="backend")],
                             authrole="backend")
        try:
            assert s.details["authrole"] == "backend" and s.details["authid"] == "backend"
            # the backend registers and publishes nothing
            with pytest.raises(WfError) as e:
                await s.register("crossbarfabriccenter.mrealm.x", lambda: 1)
            assert e.value.error == "wamp.error.not_authorized"
        finally:
            await s.leave()
        # the master's key over the TCP listener: refused
        with pytest.raises(WfError) as e:
            await wf_connect(master.url, None, auth=[Cryptosign(mkey.private)])
        assert e.value.error == "wamp.error.not_authorized"
    finally:
        master.stop()
