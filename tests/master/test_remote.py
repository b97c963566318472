"""The remote API and the node view of an mrealm, against a master started with the CLI and a node
played by an autobahn-python session (role ``node``, cryptosign with its paired key) that registers
management procedures and publishes management events as an edge does: forwarding by oid or name,
positional and keyword arguments (D5), errors (unknown node, offline node, the node's own error),
no signing (D1), who may call what (guest, user), the consolidated events and remote.* events."""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from masternode import Key, activation_code, fabric_connect
from support.autobahn_client import Events, JoinFailed, w

M = "crossbarfabriccenter.mrealm."
R = "crossbarfabriccenter.remote."
N = "crossbarfabriccenter.node.n1."
ACK = PublishOptions(acknowledge=True)

pytestmark = pytest.mark.timeout(120)


async def new_user(master, connect, email: str) -> Key:
    key = Key()
    with pytest.raises(JoinFailed):
        await fabric_connect(master.url, key, authid=email)
    code = activation_code(master, email)
    s = await connect(master, key, authid=email, authextra={"activation_code": code})
    await s.close()
    return key


async def call_error(session, uri, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as err:
        await w(session.call(uri, *args, **kwargs))
    return err.value


async def test_remote_api_and_node_view(master, superuser, connect):
    g = await connect(master, superuser)
    await w(g.call(M + "create_mrealm", {"name": "rm1"}))
    nkey, offkey = Key(), Key()
    n1 = await w(g.call(M + "pair_node", nkey.pubkey, "rm1", "n1", None))
    off = await w(g.call(M + "pair_node", offkey.pubkey, "rm1", "off1", None))
    s = await connect(master, superuser, realm="rm1")
    ready, started, realm_started, remote_ready, remote_realm = Events(), Events(), Events(), Events(), Events()
    await w(s.subscribe(ready, M + "on_node_ready"))
    await w(s.subscribe(started, M + "on_worker_started"))
    await w(s.subscribe(realm_started, M + "on_realm_started"))
    await w(s.subscribe(remote_ready, R + "node.on_worker_ready"))
    await w(s.subscribe(remote_realm, R + "worker.on_realm_started"))

    node = await connect(master, nkey, authrole="node")
    calls = []

    def proc(name):
        def f(*args, **kwargs):
            kwargs.pop("details", None)
            calls.append((name, list(args), kwargs))
            if name == "fail":
                raise ApplicationError("crossbar.error.no_such_worker", "no worker with ID 'x'", 42, why="test")
            if name == "get_workers":
                return ["w1"]
            if name == "get_worker":
                return {"id": args[0], "type": "router", "status": "started", "pid": 4711}
            if name == "get_status":
                return {"workers_by_type": {"router": 1}}
            if name == "get_router_realms":
                return ["r0"]
            return {"called": name, "args": list(args), "kwargs": kwargs}
        return f

    for name in ("get_status", "get_workers", "get_worker", "start_worker", "stop_worker", "shutdown", "fail",
                 "sign", "sign_challenge"):
        await w(node.register(proc(name), N + name, options=RegisterOptions(details_arg="details")))
    for name in ("get_router_realms", "get_router_transports", "start_router_realm"):
        await w(node.register(proc(name), N + "worker.w1." + name, options=RegisterOptions(details_arg="details")))

    # the view asked the node when it joined
    await ready.wait(1, 10)
    oid = ready.args[0][0]
    assert oid == n1["oid"] and ready.args[0][1]["status"] == "online"
    view = await w(s.call(M + "get_node", oid))
    assert view["workers"]["w1"]["type"] == "router" and view["workers"]["w1"]["pid"] == 4711
    assert set(view["workers"]["w1"]["realms"]) == {"r0"}

    # forwarding: by oid or name, positional or keyword arguments
    assert await w(s.call(R + "node.start_worker", oid, "w2", "router", {})) == {
        "called": "start_worker", "args": ["w2", "router", {}], "kwargs": {}}
    assert await w(s.call(R + "node.start_worker", node_id="n1", worker_id="w2", worker_type="router",
                          worker_options={"a": 1})) == {
        "called": "start_worker", "args": [], "kwargs": {"worker_id": "w2", "worker_type": "router",
                                                         "worker_options": {"a": 1}}}
    assert await w(s.call(R + "node.stop_worker", node_oid=oid, worker_id="w2", kill=True)) == {
        "called": "stop_worker", "args": [], "kwargs": {"worker_id": "w2", "kill": True}}
    assert await w(s.call(R + "router.start_router_realm", "n1", "w1", "realm1", {"name": "realm1"})) == {
        "called": "start_router_realm", "args": ["realm1", {"name": "realm1"}], "kwargs": {}}
    assert (await w(s.call(R + "worker.get_router_transports", node_id=oid, worker_id="w1")))["kwargs"] == {}

    # errors
    e = await call_error(s, R + "node.fail", "n1")
    assert e.error == "crossbar.error.no_such_worker" and e.args == ("no worker with ID 'x'", 42)
    assert e.kwargs == {"why": "test"}
    assert (await call_error(s, R + "node.get_workers", "nosuch")).error == "crossbar.error.no_such_object"
    assert (await call_error(s, R + "node.get_workers", "00000000-0000-0000-0000-000000000000")).error == \
        "crossbar.error.no_such_object"
    # a node paired after the mrealm started and never joined: by name first (not yet in the view), then by oid
    assert (await call_error(s, R + "node.get_workers", "off1")).error == "crossbar.error.node_offline"
    assert (await call_error(s, R + "node.get_workers", off["oid"])).error == "crossbar.error.node_offline"
    assert (await call_error(s, R + "node.get_workers")).error == "wamp.error.invalid_argument"
    assert (await call_error(s, R + "router.get_router_realms", "n1")).error == "wamp.error.invalid_argument"
    assert (await call_error(s, R + "node.a.b", "n1")).error == "wamp.error.invalid_argument"
    # no call reaches the node's signing procedures, whatever the role (D1)
    for name in ("sign", "sign_challenge"):
        assert (await call_error(s, R + f"node.{name}", "n1", b"x")).error == "wamp.error.not_authorized"
    assert not [c for c in calls if c[0].startswith("sign")]

    # the mrealm API: nodes with status
    assert sorted(await w(s.call(M + "get_nodes"))) == sorted([n1["oid"], off["oid"]])
    assert await w(s.call(M + "get_nodes", "online", return_names=True)) == ["n1"]
    assert await w(s.call(M + "get_nodes", "offline", return_names=True)) == ["off1"]
    assert (await w(s.call(M + "get_node_by_authid", "off1")))["status"] == "offline"
    assert (await call_error(s, M + "get_node_by_authid", "nosuch")).error == "crossbar.error.no_such_object"
    assert (await call_error(s, M + "get_node", "no-uuid")).error == "wamp.error.invalid_argument"
    assert (await call_error(s, M + "get_nodes", "sleeping")).error == "wamp.error.invalid_argument"

    # events: the node's management events move the view and come out consolidated and as remote.*
    await w(node.publish(N + "on_worker_ready", {"id": "w3", "type": "container", "status": "started"}, options=ACK))
    await w(node.publish(N + "worker.w1.on_realm_started", {"id": "r1", "name": "realm1"}, options=ACK))
    await started.wait(1, 5)
    assert started.args[0][0] == oid and started.args[0][1]["id"] == "w3"
    await realm_started.wait(1, 5)
    assert realm_started.args[0] == [oid, "w1", {"id": "r1", "name": "realm1"}]
    await remote_ready.wait(1, 5)
    assert remote_ready.args[0] == [oid, {"id": "w3", "type": "container", "status": "started"}]
    await remote_realm.wait(1, 5)
    assert remote_realm.args[0] == [oid, "w1", {"id": "r1", "name": "realm1"}]
    view = await w(s.call(M + "get_node_by_authid", "n1"))
    assert set(view["workers"]) == {"w1", "w3"} and set(view["workers"]["w1"]["realms"]) == {"r0", "r1"}
    await w(node.publish(N + "worker.w1.on_realm_stopped", {"id": "r1", "name": "realm1"}, options=ACK))
    await w(node.publish(N + "on_worker_exit", {"id": "w3", "type": "container"}, options=ACK))
    await w(s.call(M + "get_status"))  # a round trip after the events
    view = await w(s.call(M + "get_node_by_authid", "n1"))
    assert set(view["workers"]) == {"w1"} and set(view["workers"]["w1"]["realms"]) == {"r0"}

    # roles: a guest reads, a user also starts and stops, neither reaches anything else
    for email, role in (("guest@example.com", "guest"), ("user@example.com", "user")):
        key = await new_user(master, connect, email)
        await w(g.call(M + "set_roles_on_mrealm_for_user", "rm1", email, [role]))
        u = await connect(master, key, authid=email, realm="rm1")
        assert await w(u.call(R + "node.get_workers", "n1")) == ["w1"]
        assert await w(u.call(M + "get_nodes", return_names=True))
        if role == "guest":
            e = await call_error(u, R + "node.start_worker", "n1", "w9", "router", {})
            assert e.error == "wamp.error.not_authorized"
        else:
            assert (await w(u.call(R + "node.start_worker", "n1", "w9", "router", {})))["called"] == "start_worker"
        assert (await call_error(u, R + "node.shutdown", "n1")).error == "wamp.error.not_authorized"
        await u.close()

    # the node leaves: offline at once
    shutdown = Events()
    await w(s.subscribe(shutdown, M + "on_node_shutdown"))
    await node.close()
    await shutdown.wait(1, 5)
    assert shutdown.args[0][0] == oid and shutdown.args[0][1]["status"] == "offline"
    assert (await call_error(s, R + "node.get_workers", "n1")).error == "crossbar.error.node_offline"
