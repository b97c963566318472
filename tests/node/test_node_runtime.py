"""The node runtime end to end, as a user runs it: ``wampfabric start`` as a
subprocess with a router worker, container workers (asyncio, Twisted and
function components) and a guest worker; autobahn-python clients on the
router's transports; the management API over the node's Unix management
socket (our ClientSession over RawSocket); faults, shutdown policies, no
orphans, the CLI (pid file, stop, status)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

from support.nodecli import (
    T, NodeProc, assert_gone, kill_node, mgmt, realm, run_cli, small_config, start_node, ws_transport,
)
from support.nodes import FULL_PERMS, free_port, wait_port
from wampfabric.client import ApplicationError

HERE = Path(__file__).resolve().parent
APP = HERE / "node_app"
try:  # imported, not find_spec("twisted"): autobahn's twisted/plugins/ is a namespace package without Twisted
    import twisted.internet  # noqa: F401

    HAS_TWISTED = True
except ImportError:
    HAS_TWISTED = False


# -- helpers ----------------------------------------------------------------------------------

def component_transport(port):
    return {"type": "websocket", "url": f"ws://127.0.0.1:{port}/",
            "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": port}}


class AbClient(ApplicationSession):
    def onJoin(self, details):
        self.joined.set_result(details)


async def ab_connect(port: int, realm_name: str = "realm1", path: str = "") -> AbClient:
    """An autobahn-python (asyncio) client session, joined."""
    loop = asyncio.get_running_loop()
    joined = loop.create_future()
    made = []

    def make():
        sess = AbClient(ComponentConfig(realm_name))
        sess.joined = joined
        made.append(sess)
        return sess

    factory = WampWebSocketClientFactory(make, url=f"ws://127.0.0.1:{port}/{path}")
    await loop.create_connection(factory, "127.0.0.1", port)
    await asyncio.wait_for(joined, T)
    return made[0]


async def wait_for_call(session, proc, *args, timeout=T):
    """Call until the procedure exists (e.g. while a component restarts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await session.call(proc, *args)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# -- the main node ------------------------------------------------------------------------------

def main_config(ports: dict) -> dict:
    containers = [
        {"id": "container1", "type": "container",
         "options": {"pythonpath": [str(APP)], "restart": "restart-on-failed"},
         "components": [
             {"id": "backend", "type": "class", "classname": "nodeapp.Backend", "realm": "realm1",
              "transport": component_transport(ports["ws"])},
             {"id": "fn", "type": "function", "callbacks": {"join": "nodeapp.on_join"}, "realm": "realm1",
              "transport": {"type": "rawsocket", "serializer": "msgpack",
                            "endpoint": {"type": "unix", "path": "../rs.sock"}}},
         ]},
    ]
    if HAS_TWISTED:
        containers.append(
            {"id": "txcontainer", "type": "container", "options": {"pythonpath": [str(APP)]},
             "components": [{"id": "tx", "type": "class", "classname": "nodeapp_tx.TxBackend", "realm": "realm1",
                             "transport": component_transport(ports["ws"])}]})
    return {
        "version": 2,
        "controller": {
            "id": "testnode",
            "options": {"shutdown": ["shutdown_on_worker_exit_with_error"]},
            "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}},
        },
        "workers": [
            {"id": "router1", "type": "router",
             "realms": [realm()],
             "transports": [ws_transport(ports["ws"], "ws1"),
                            {"type": "rawsocket", "endpoint": {"type": "unix", "path": "../rs.sock"},
                             "serializers": ["msgpack"]}],
             "components": [{"id": "rc1", "type": "class", "classname": "nodeapp.RouterSide", "realm": "realm1"}],
             "options": {"pythonpath": [str(APP)]}},
            *containers,
            {"id": "guest1", "type": "guest", "executable": sys.executable,
             "arguments": ["-u", "-c", "import os, time; print('guest hello', os.environ['WF_GUEST'], "
                           "os.getcwd()); time.sleep(600)"],
             "options": {"restart": "restart-always", "workdir": "..", "env": {"vars": {"WF_GUEST": "from-env"}}}},
            {"id": "change_engine", "type": "container", "options": {"disabled": True}},
            {"id": "ce2", "type": "container", "options": {"disabled": "WF_TEST_DISABLE_CE"}},
        ],
    }


@pytest.fixture(scope="module")
def node():
    ports = {"ws": free_port()}
    n = start_node(main_config(ports), wait_ports=[ports["ws"]],
                   env=dict(os.environ, WF_TEST_DISABLE_CE="1"))
    n.ports = ports
    yield n
    kill_node(n)


async def test_boot_status_and_workers(node):
    s = await mgmt(node)
    status = await s.call("crossbar.get_status")
    assert status["controller_pid"] == node.proc.pid
    assert status["node_id"] == "testnode"
    expected = {"router": 1, "container": 2 if HAS_TWISTED else 1, "guest": 1}
    assert status["workers_by_type"] == expected
    assert status["running_workers"] == sum(expected.values())
    assert status["directory"] == str(node.cbdir)
    assert len(status["pubkey"]) == 64
    workers = await s.call("crossbar.get_workers")
    assert {"router1", "container1", "guest1"} <= set(workers)
    assert await s.call("crossbar.get_workers", ["guest"]) == ["guest1"]
    w = await s.call("crossbar.get_worker", "router1")
    assert w["type"] == "router" and w["status"] == "started" and isinstance(w["pid"], int)
    # the router worker is a process of its own whose command line says "router"
    p = psutil.Process(w["pid"])
    assert p.ppid() == node.proc.pid and "router" in " ".join(p.cmdline())
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.get_worker", "nope")
    assert e.value.error == "crossbar.error.no_such_worker"
    assert await s.call(f"crossbar.worker.router1.get_router_realms") == ["realm001"]
    # a realm's session count leaves out its own meta API session, in both places that report it
    realm = await s.call("crossbar.worker.router1.get_router_realm", "realm001")
    stats = await s.call("crossbar.worker.router1.get_router_realm_stats", "realm001")
    assert realm["sessions"] == stats["realm001"]["sessions"] >= 1  # the router component rc1
    assert await s.call(f"crossbar.worker.router1.get_router_transports") == ["transport002", "ws1"]
    assert await s.call(f"crossbar.worker.router1.get_router_components") == ["rc1"]
    assert await s.call("crossbar.worker.container1.get_components") == ["backend", "fn"]
    await s.leave()


def test_disabled_workers_are_skipped_with_the_design_document_lines(node):
    log = node.log()
    assert "Skip start of worker Container change_engine (disabled from config parameter)" in log
    assert "Skip start of worker Container ce2 (disabled from envvar WF_TEST_DISABLE_CE)" in log


def test_management_socket_is_private(node):
    st = os.stat(node.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


async def test_clients_use_container_router_and_function_components(node):
    c = await ab_connect(node.ports["ws"])
    assert await wait_for_call(c, "com.example.add2", 2, 3) == 5
    assert await wait_for_call(c, "com.example.router_echo", "hi") == "router says hi"
    assert await wait_for_call(c, "com.example.fn_times10", 4) == 40
    got = asyncio.get_running_loop().create_future()
    await c.subscribe(lambda n: got.done() or got.set_result(n), "com.example.tick")
    assert isinstance(await asyncio.wait_for(got, T), int)
    c.leave()


@pytest.mark.skipif(not HAS_TWISTED, reason="Twisted is not installed")
async def test_twisted_component_runs_on_the_asyncio_reactor(node):
    c = await ab_connect(node.ports["ws"])
    assert await wait_for_call(c, "com.example.tx_mul", 6, 7) == 42
    assert await c.call("com.example.tx_reactor") == "AsyncioSelectorReactor"
    c.leave()


async def test_worker_logs(node):
    s = await mgmt(node)
    guest_log = await s.call("crossbar.get_worker_log", "guest1")
    assert any(line.endswith(f"guest hello from-env {node.root}") and "[Guest" in line for line in guest_log)
    router_log = await s.call("crossbar.get_worker_log", "router1", 1000)
    assert any("[Router" in line and "Realm 'realm1' started" in line for line in router_log)
    container_log = await s.call("crossbar.get_worker_log", "container1")
    assert any("backend joined realm1" in line for line in container_log)  # a component's print()
    assert len(await s.call("crossbar.get_worker_log", "router1", 2)) == 2
    # ... and in the node's log, with the worker's prefix
    node.wait_log("guest hello")
    line = next(ln for ln in node.log().splitlines() if ln.endswith(f"guest hello from-env {node.root}"))
    assert f"[Guest" in line
    await s.leave()


async def test_process_and_system_stats(node):
    s = await mgmt(node)
    ps = await s.call("crossbar.get_process_stats")
    assert ps["pid"] == node.proc.pid and ps["type"] == "controller" and ps["num_threads"] >= 1
    mon = await s.call("crossbar.get_process_monitor")
    assert "cpu_user_per_sec" in mon and mon["type"] == "controller"
    wps = await s.call("crossbar.worker.router1.get_process_stats")
    assert wps["type"] == "router" and wps["pid"] != node.proc.pid
    wmon = await s.call("crossbar.worker.container1.get_process_monitor")
    assert wmon["type"] == "container"
    guest = await s.call("crossbar.get_worker", "guest1")
    gps = await s.call("crossbar.worker.guest1.get_process_stats")
    assert gps["type"] == "guest" and gps["pid"] == guest["pid"]
    assert (await s.call("crossbar.worker.guest1.get_process_monitor"))["pid"] == guest["pid"]
    sysstats = await s.call("crossbar.get_system_stats")
    assert {"cpu", "memory", "network", "disk", "uptime"} <= set(sysstats)
    assert "AF_INET" in sysstats["network"]["connection"]
    await s.leave()


async def test_management_clients_cannot_register_or_publish(node):
    s = await mgmt(node)
    assert s.details["authrole"] == "management"
    with pytest.raises(ApplicationError) as e:
        await s.register("crossbar.get_status2", lambda: None)
    assert e.value.error == "wamp.error.not_authorized"
    with pytest.raises(ApplicationError) as e:
        await s.publish("crossbar.on_ready", options={"acknowledge": True})
    assert e.value.error == "wamp.error.not_authorized"
    # and nothing signs with the node key (defect D1 of Crossbar.io)
    for proc in ("crossbar.sign", "crossbar.sign_challenge"):
        with pytest.raises(ApplicationError) as e:
            await s.call(proc, b"x")
        assert e.value.error == "wamp.error.no_such_procedure"
    await s.leave()


async def test_runtime_router_worker_realm_transport(node):
    s = await mgmt(node)
    events: dict[str, list] = {}

    def on(topic):
        async def sub():
            await s.subscribe(topic, lambda *a, **kw: events.setdefault(topic, []).append(a))
        return sub()

    for t in ("crossbar.on_worker_ready", "crossbar.on_worker_exit", "crossbar.worker.router2.on_realm_started",
              "crossbar.worker.router2.on_router_transport_started", "crossbar.worker.router2.on_worker_ready"):
        await on(t)
    port = free_port()
    started = await s.call("crossbar.start_worker", "router2", "router", {})
    assert started["id"] == "router2" and started["status"] == "started" and started["pid"]
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.start_worker", "router2", "router", {})
    assert e.value.error == "crossbar.error.worker_already_running"
    await s.call("crossbar.worker.router2.start_router_realm", "r2", realm("realm2"))
    tr = await s.call("crossbar.worker.router2.start_router_transport", "t2", ws_transport(port))
    assert tr["id"] == "t2" and tr["type"] == "websocket" and tr["state"] == 3 and tr["listening_since"]
    assert await s.call("crossbar.worker.router2.get_router_transports") == ["t2"]
    await s.call("crossbar.worker.router2.start_router_realm_role", "r2", "guest",
                 {"name": "guest", "permissions": [FULL_PERMS]})
    assert await s.call("crossbar.worker.router2.get_router_realm_roles", "r2") == ["guest", "role001"]
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.worker.router2.start_router_transport", "bad", {"type": "websocket"})
    assert e.value.error == "crossbar.error.invalid_configuration" and "endpoint" in str(e.value)
    # a client uses the new router
    c1 = await ab_connect(port, "realm2")
    c2 = await ab_connect(port, "realm2")
    await c1.register(lambda: "from router2", "com.r2.hello")
    assert await c2.call("com.r2.hello") == "from router2"
    c1.leave()
    c2.leave()
    info = await s.call("crossbar.worker.router2.stop_router_transport", "t2")
    assert info["id"] == "t2"
    with pytest.raises(OSError):
        await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", port)
    stop = await s.call("crossbar.stop_worker", "router2")
    assert stop["id"] == "router2" and stop["exit_code"] == 0
    assert "router2" not in await s.call("crossbar.get_workers")
    deadline = time.monotonic() + T
    while "crossbar.on_worker_exit" not in events and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert events["crossbar.worker.router2.on_worker_ready"][0][0]["type"] == "router"
    assert any(a[0]["id"] == "router2" for a in events["crossbar.on_worker_ready"])
    assert events["crossbar.worker.router2.on_realm_started"][0][0] == {"id": "r2", "name": "realm2"}
    assert events["crossbar.worker.router2.on_router_transport_started"][0][0]["id"] == "t2"
    exit_ev = [a[0] for a in events["crossbar.on_worker_exit"] if a[0]["id"] == "router2"][0]
    assert exit_ev["requested"] is True and exit_ev["exit_code"] == 0
    # the log of a stopped worker can still be read
    assert any("Realm 'realm2' started" in ln for ln in await s.call("crossbar.get_worker_log", "router2"))
    await s.leave()


async def test_a_transport_that_cannot_start_leaves_nothing_behind(node):
    """A web transport whose service cannot start (a static directory that is not there) is
    refused with crossbar.error.cannot_start and not listed; the same ID starts once fixed."""
    s = await mgmt(node)
    port = free_port()
    cfg = {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
           "paths": {"/": {"type": "static", "directory": "no-such-dir"}}}
    before = await s.call("crossbar.worker.router1.get_router_transports")
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.worker.router1.start_router_transport", "broken1", cfg)
    assert e.value.error == "crossbar.error.cannot_start" and "no-such-dir" in str(e.value)
    assert await s.call("crossbar.worker.router1.get_router_transports") == before
    cfg["paths"]["/"] = {"type": "nodeinfo"}
    await s.call("crossbar.worker.router1.start_router_transport", "broken1", cfg)
    assert "broken1" in await s.call("crossbar.worker.router1.get_router_transports")
    await s.call("crossbar.worker.router1.stop_router_transport", "broken1")
    await s.leave()


async def test_web_transport_services_at_runtime(node):
    s = await mgmt(node)
    port = free_port()
    await s.call("crossbar.worker.router1.start_router_transport", "web1",
                 {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
                  "paths": {"info": {"type": "nodeinfo"}}})
    assert await s.call("crossbar.worker.router1.get_web_transport_services", "web1") == ["info"]
    await s.call("crossbar.worker.router1.start_web_transport_service", "web1", "ws", {"type": "websocket"})
    c = await ab_connect(port, path="ws")
    assert await wait_for_call(c, "com.example.add2", 1, 1) == 2
    c.leave()
    await s.call("crossbar.worker.router1.stop_web_transport_service", "web1", "ws")
    assert await s.call("crossbar.worker.router1.get_web_transport_services", "web1") == ["info"]
    await s.call("crossbar.worker.router1.stop_router_transport", "web1")
    await s.leave()


async def test_container_component_start_stop_and_failure(node):
    s = await mgmt(node)
    cfg = {"type": "class", "classname": "nodeapp.Backend", "realm": "realm1", "extra": {"prefix": "com.x"},
           "transport": component_transport(node.ports["ws"])}
    info = await s.call("crossbar.worker.container1.start_component", "x", cfg)
    assert info["status"] == "started"
    c = await ab_connect(node.ports["ws"])
    assert await c.call("com.x.add2", 20, 22) == 42
    await s.call("crossbar.worker.container1.stop_component", "x")
    with pytest.raises(Exception):
        await c.call("com.x.add2", 1, 2)
    c.leave()
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.worker.container1.start_component", "bad",
                     {**cfg, "classname": "nodeapp.Failing"})
    assert e.value.error == "crossbar.error.cannot_start" and "fails on purpose" in str(e.value.args_)
    with pytest.raises(ApplicationError) as e:
        await s.call("crossbar.worker.container1.start_component", "bad", {**cfg, "classname": "nodeapp.Nope"})
    assert e.value.error == "crossbar.error.class_import_failed"
    await s.leave()


async def test_failing_component_is_restarted_by_the_container(node):
    s = await mgmt(node)
    starts = []
    await s.subscribe("crossbar.worker.container1.on_component_start", lambda info: starts.append(info["id"]))
    cfg = {"type": "class", "classname": "nodeapp.Flaky", "realm": "realm1",
           "transport": component_transport(node.ports["ws"])}
    await s.call("crossbar.worker.container1.start_component", "flaky", cfg)
    c = await ab_connect(node.ports["ws"])
    deadline = time.monotonic() + T
    while time.monotonic() < deadline:
        try:
            if await c.call("com.flaky.runs") == 3:
                break
        except Exception:
            pass
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("component was not restarted twice")
    assert starts.count("flaky") == 3  # the start and two restarts
    info = await s.call("crossbar.worker.container1.get_component", "flaky")
    assert info["status"] == "started"
    await s.call("crossbar.worker.container1.stop_component", "flaky")
    c.leave()
    await s.leave()


async def test_killed_container_is_restarted_and_reported(node):
    s = await mgmt(node)
    exits, ready = [], []
    await s.subscribe("crossbar.on_worker_exit", lambda ev: exits.append(ev))
    await s.subscribe("crossbar.on_worker_ready", lambda ev: ready.append(ev))
    old = await s.call("crossbar.get_worker", "container1")
    os.kill(old["pid"], signal.SIGKILL)
    deadline = time.monotonic() + T
    while not any(r["id"] == "container1" for r in ready) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    ev = [e for e in exits if e["id"] == "container1"][0]
    assert ev["exit_code"] == -9 and ev["signal"] == 9 and ev["requested"] is False
    new = await s.call("crossbar.get_worker", "container1")
    assert new["pid"] != old["pid"] and new["status"] == "started"
    assert node.proc.poll() is None  # restart, not shutdown
    c = await ab_connect(node.ports["ws"])
    assert await wait_for_call(c, "com.example.add2", 2, 2) == 4
    assert await wait_for_call(c, "com.example.pid") == new["pid"]
    c.leave()
    assert f"Container worker 'container1' (pid {old['pid']}) died (signal SIGKILL)" in node.log()
    await s.leave()


def test_cli_keygen_and_keys(node):
    r = run_cli("keygen")
    assert r.returncode == 0
    tags = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    assert len(tags["public-key-ed25519"]) == 64 and len(tags["private-key-ed25519"]) == 64
    r = run_cli("keys", "--cbdir", str(node.cbdir))
    assert r.returncode == 0 and (node.cbdir / "key.pub").read_text().split("public-key-ed25519: ")[1][:64] in r.stdout
    assert stat.S_IMODE(os.stat(node.cbdir / "key.priv").st_mode) == 0o600


def test_cli_status_second_start_and_stop(node):
    r = run_cli("status", "--cbdir", str(node.cbdir))
    assert r.returncode == 0, r.stderr
    assert "Node 'testnode' running" in r.stdout and "router1" in r.stdout and "guest1" in r.stdout
    r = run_cli("start", "--cbdir", str(node.cbdir))
    assert r.returncode == 1
    assert f"A node is already running from node directory {node.cbdir} (PID {node.proc.pid})" in r.stdout + r.stderr
    procs = node.descendants()
    assert len(procs) >= 3
    r = run_cli("stop", "--cbdir", str(node.cbdir))
    assert r.returncode == 0, r.stderr
    assert node.proc.wait(T) == 0
    assert_gone(procs)
    assert not (node.cbdir / "node.pid").exists()
    assert not Path(node.sock).exists()
    r = run_cli("status", "--cbdir", str(node.cbdir))
    assert r.returncode == 3 and "No node running" in r.stdout
    r = run_cli("stop", "--cbdir", str(node.cbdir))
    assert r.returncode == 3


# -- other nodes --------------------------------------------------------------------------------

def test_sigkill_of_the_controller_leaves_no_orphans():
    port = free_port()
    cfg = small_config(port, extra_workers=[
        {"id": "c1", "type": "container", "options": {"pythonpath": [str(APP)]},
         "components": [{"type": "class", "classname": "nodeapp.Backend", "realm": "realm1",
                         "transport": component_transport(port)}]}])
    node = start_node(cfg, wait_ports=[port])
    try:
        procs = node.descendants()
        assert {p.cmdline()[p.cmdline().index("--type") + 1] for p in procs if "--type" in p.cmdline()} == \
            {"router", "container"}
        # router, container, guest, and the guests' process group watchdog (/bin/sh, see node/process.py)
        assert len(procs) == 4 and len([p for p in procs if p.cmdline()[0] == "/bin/sh"]) == 1
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(T)
        assert_gone(procs)
    finally:
        kill_node(node)


def test_worker_exit_with_error_shuts_the_node_down():
    port = free_port()
    cfg = small_config(port, controller={"options": {"shutdown": ["shutdown_on_worker_exit_with_error"]}},
                       guest_args=["-c", "import sys, time; time.sleep(0.5); sys.exit(3)"])
    node = start_node(cfg, wait_ports=[port])
    try:
        procs = node.descendants()
        assert node.proc.wait(T) == 1
        assert_gone(procs)
        log = node.log()
        assert "Guest worker 'guest1'" in log and "died (exit code 3)" in log
        assert "trigger 'shutdown_on_worker_exit_with_error' is active" in log
    finally:
        kill_node(node)


def test_clean_guest_exit_keeps_the_node_with_error_trigger_and_stale_pid_file_is_replaced():
    port = free_port()
    cfg = small_config(port, controller={"options": {"shutdown": ["shutdown_on_worker_exit_with_error"]}},
                       guest_args=["-c", "print('bye')"])
    root = Path(tempfile.mkdtemp(prefix="wf-rt-"))
    # a stale pid file: a process that is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / ".crossbar").mkdir()
    (root / ".crossbar" / "node.pid").write_text(json.dumps({"pid": dead.pid}))
    (root / ".crossbar" / "config.json").write_text(json.dumps(cfg))
    logf = open(root / "node.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(root / ".crossbar")],
                            cwd=root, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    node = NodeProc(root, proc, {})
    try:
        wait_port(port, proc, timeout=T)
        node.wait_log(f"Removed stale pid file of node process {dead.pid}")
        node.wait_log("ended (exit code 0)")
        node.wait_log("Node continues to run")
        assert proc.poll() is None
        assert json.loads((root / ".crossbar" / "node.pid").read_text())["pid"] == proc.pid
        r = run_cli("status", "--cbdir", str(node.cbdir))  # no management socket: the pid file tells
        assert r.returncode == 0 and f"Node running from node directory {node.cbdir} (PID {proc.pid})" in r.stdout
        procs = node.descendants()
        r = run_cli("stop", "--cbdir", str(node.cbdir))
        assert r.returncode == 0 and proc.wait(T) == 0
        assert_gone(procs)
    finally:
        kill_node(node)


def test_default_policy_shuts_down_when_a_worker_exits():
    """Crossbar.io's default trigger is shutdown_on_worker_exit."""
    port = free_port()
    node = start_node(small_config(port), wait_ports=[port])
    try:
        procs = node.descendants()
        guest = [p for p in procs if "sleep(600)" in " ".join(p.cmdline())][0]
        guest.kill()
        assert node.proc.wait(T) == 1
        assert_gone(procs)
        assert "trigger 'shutdown_on_worker_exit' is active" in node.log()
    finally:
        kill_node(node)


async def test_guest_and_errors_via_the_api_then_shutdown_via_the_api():
    port = free_port()
    controller = {"options": {"shutdown": ["shutdown_on_shutdown_requested"]},
                  "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}}
    node = start_node(small_config(port, controller=controller), wait_ports=[port])
    try:
        procs = node.descendants()
        s = await mgmt(node)
        exits, shutdown = [], asyncio.get_running_loop().create_future()
        await s.subscribe("crossbar.on_worker_exit", lambda ev: exits.append(ev))
        await s.subscribe("crossbar.on_shutdown", lambda ev: shutdown.done() or shutdown.set_result(ev))
        info = await s.call("crossbar.start_worker", "g2", "guest",
                            {"executable": sys.executable, "arguments": ["-u", "-c", "print('api guest')"]})
        assert info["id"] == "g2" and info["pid"]
        deadline = time.monotonic() + T
        while not any(e["id"] == "g2" for e in exits) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [e for e in exits if e["id"] == "g2"][0]["exit_code"] == 0
        assert any(ln.endswith("api guest") for ln in await s.call("crossbar.get_worker_log", "g2"))
        assert node.proc.poll() is None  # only an explicit shutdown ends this node
        with pytest.raises(ApplicationError) as e:
            await s.call("crossbar.start_worker", "r3", "router", {"bogus": 1})
        assert e.value.error == "crossbar.error.invalid_configuration" and "bogus" in str(e.value)
        with pytest.raises(ApplicationError) as e:
            await s.call("crossbar.start_worker", "x", "nope", {})
        assert e.value.error == "crossbar.error.invalid_configuration"
        with pytest.raises(ApplicationError) as e:
            await s.call("crossbar.start_worker", "g3", "guest", {"executable": "/nonexistent/program"})
        assert e.value.error == "crossbar.error.cannot_start"
        # a worker shut down through its own procedure: requested, not a fault
        await s.call("crossbar.start_worker", "c9", "container", {})
        await s.call("crossbar.worker.c9.shutdown")
        deadline = time.monotonic() + T
        while not any(e["id"] == "c9" for e in exits) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [e for e in exits if e["id"] == "c9"][0]["requested"] is True
        assert (await s.call("crossbar.shutdown"))["node_id"] == status_node_id(node)
        ev = await asyncio.wait_for(shutdown, T)
        assert ev["was_clean"] is True
        assert node.proc.wait(T) == 0
        assert_gone(procs)
    finally:
        kill_node(node)


def status_node_id(node: NodeProc) -> str:
    return os.uname().nodename.split(".")[0]


async def test_router_restart_policy_and_container_ending_with_its_last_component():
    port = free_port()
    cfg = {
        "version": 2,
        "controller": {"options": {"shutdown": ["shutdown_on_worker_exit_with_error"]},
                       "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}},
        "workers": [
            {"id": "router1", "type": "router", "options": {"restart": "restart-on-failed", "cpu_affinity": [0]},
             "realms": [realm()], "transports": [ws_transport(port)]},
            {"id": "quitter", "type": "container",
             "options": {"pythonpath": [str(APP)], "shutdown": "shutdown-on-last-component-stopped"},
             "components": [{"type": "class", "classname": "nodeapp.Quitter", "realm": "realm1",
                             "transport": component_transport(port)}]},
        ],
    }
    node = start_node(cfg, wait_ports=[port])
    try:
        node.wait_log("Container worker 'quitter'")
        node.wait_log("ended (exit code 0)")  # its only component left: the container ended cleanly
        s = await mgmt(node)
        assert await s.call("crossbar.get_workers") == ["router1"]
        old = await s.call("crossbar.get_worker", "router1")
        assert psutil.Process(old["pid"]).cpu_affinity() == [0]
        os.kill(old["pid"], signal.SIGKILL)
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            try:
                new = await s.call("crossbar.get_worker", "router1")
                if new["pid"] != old["pid"] and new["status"] == "started":
                    break
            except ApplicationError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(node.log()[-3000:])
        # restarted from its config: realm and transport are back
        wait_port(port, timeout=T)
        c = await ab_connect(port)
        await c.register(lambda: 1, "com.back")
        assert await c.call("com.back") == 1
        c.leave()
        assert "Restarting router worker 'router1'" in node.log()
        await s.leave()
    finally:
        kill_node(node)


async def test_a_worker_that_dies_while_starting_reports_its_log():
    port = free_port()
    controller = {"options": {"shutdown": ["shutdown_on_shutdown_requested"]},
                  "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}}
    node = start_node(small_config(port, controller=controller), wait_ports=[port])
    try:
        s = await mgmt(node)
        # a broken Python home: the worker process dies before it could join
        with pytest.raises(ApplicationError) as e:
            await s.call("crossbar.start_worker", "bad", "router",
                         {"env": {"vars": {"PYTHONHOME": "/nonexistent-home"}}})
        assert e.value.error == "crossbar.error.cannot_start"
        assert "exited with code" in str(e.value)
        assert any("Fatal Python error" in ln and "[Router" in ln for ln in e.value.args_[1])
        assert "bad" not in await s.call("crossbar.get_workers")
        assert node.proc.poll() is None
        await s.leave()
    finally:
        kill_node(node)
