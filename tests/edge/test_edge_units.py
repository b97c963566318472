"""The edge's parts that need no master: URI translation, the heartbeat payloads and message
counts, where the master URL comes from (``key.activate``, ``CROSSBAR_FABRIC_URL``,
``controller.fabric.transport``), the ``controller.fabric`` config checks, ``edge keys`` and the
start of an edge without a master."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import pytest

from wampfabric.config.base import ConfigError
from wampfabric.config.controller import check_controller
from wampfabric.edge import heartbeat as hb
from wampfabric.edge.bridge import forwardable, local_uri, remote_uri
from wampfabric.client.connection import transport_spec
from wampfabric.edge.uplink import ActivationError, find_master, node_authenticator, parse_activation_file
from wampfabric.node.keys import load_or_create_node_key

PUB = "aa" * 32


# -- URIs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("local, remote", [
    ("crossbar.get_status", "crossbarfabriccenter.node.edge1.get_status"),
    ("crossbar.worker.rw1.start_router_realm", "crossbarfabriccenter.node.edge1.worker.rw1.start_router_realm"),
    ("crossbar.worker.rw1.on_realm_started", "crossbarfabriccenter.node.edge1.worker.rw1.on_realm_started"),
])
def test_uri_translation(local, remote):
    assert remote_uri("edge1", local) == remote
    assert local_uri("edge1", remote) == local


@pytest.mark.parametrize("uri", ["wamp.session.list", "crossbar", "crossbar.", "crossbarx.get_status", "com.crossbar.x"])
def test_only_node_management_uris_translate(uri):
    with pytest.raises(ValueError):
        remote_uri("edge1", uri)


def test_local_uri_of_another_node_is_refused():
    with pytest.raises(ValueError):
        local_uri("edge1", "crossbarfabriccenter.node.edge2.get_status")


def test_signing_procedures_are_never_forwarded():
    assert forwardable("crossbar.get_status")
    assert forwardable("crossbar.worker.rw1.get_router_realms")
    for uri in ("crossbar.sign", "crossbar.sign_challenge", "crossbar.worker.w1.sign"):
        assert not forwardable(uri)
    assert not forwardable("wamp.session.list")


# -- heartbeats -----------------------------------------------------------------------------------------

MONITOR = {"type": "router", "seq": 7, "timestamp": 123, "pid": 42, "status": "sleeping", "num_fds": 9,
           "num_threads": 1, "cpu_user": 0.5, "cpu_system": 0.25, "mem_rss": 1000, "read_ios": None,
           "cpu_user_per_sec": 0.01, "read_bytes_per_sec": 12.6, "num_ctx_switches_voluntary_per_sec": 3.2}


def test_node_heartbeat_payload():
    system = {"cpu": {"iowait": 1.5, "user": 2.0}, "memory": {}, "network": {}, "disk": {}}
    p = hb.node_heartbeat(timestamp=5, period=10, mrealm="mrealm1", seq=3, workers_by_type={"router": 2},
                          pubkey=PUB, system=system)
    assert p == {"timestamp": 5, "period": 10, "mrealm_id": "mrealm1", "seq": 3,
                 "workers": {"router": 2, "controller": 1}, "state": 1, "pubkey": PUB, "system": system}
    assert "system" not in hb.node_heartbeat(timestamp=5, period=10, mrealm="m", seq=1, workers_by_type={},
                                             pubkey=PUB)


def test_worker_heartbeats_have_one_schema_for_every_type():
    common = {"timestamp": 5, "period": 10, "mrealm": "mrealm1", "seq": 3}
    ctl = hb.worker_heartbeat(worker_type="controller", monitor={**MONITOR, "type": "controller"}, **common)
    rtr = hb.worker_heartbeat(worker_type="router", monitor=MONITOR, router={"sessions": 1}, **common)
    assert set(ctl) == {"type", "process", "timestamp", "period", "mrealm_id", "seq", "state"}
    assert set(rtr) == set(ctl) | {"router"}
    assert ctl["type"] == "controller" and ctl["state"] == 1 and ctl["mrealm_id"] == "mrealm1"
    proc = rtr["process"]
    # the heartbeat's own fields are not repeated, unreadable figures are left out
    assert not {"type", "seq", "timestamp", "read_ios"} & set(proc)
    assert proc["pid"] == 42 and proc["cpu_user"] == 0.5 and proc["cpu_user_per_sec"] == 0.01
    # counts and their rates are integers (the master's record has integer fields)
    assert proc["read_bytes_per_sec"] == 13 and type(proc["read_bytes_per_sec"]) is int
    assert proc["num_ctx_switches_voluntary_per_sec"] == 3


def test_settings_defaults_are_the_design_documents():
    assert hb.heartbeat_settings({}) == {"startup_delay": 5, "heartbeat_period": 10, "include_system_stats": True,
                                         "send_workers_heartbeats": True, "aggregate_workers_heartbeats": True}
    s = hb.heartbeat_settings({"fabric": {"heartbeat": {"heartbeat_period": 3}}})
    assert s["heartbeat_period"] == 3 and s["startup_delay"] == 5


def _stats(**messages):
    return {"sessions": 2, "roles": 3, "messages": messages}


def test_message_counts_per_interval():
    c = hb.MessageCounters()
    per_realm, base = c.deltas("rw1", {"realm1": _stats(call=10, publish=4), "realm2": _stats(call=1)})
    assert per_realm["realm1"]["messages"]["call"] == 10 and per_realm["realm1"]["sessions"] == 2
    total = hb.aggregate(per_realm)
    assert total["messages"]["call"] == 11 and total["messages"]["publish"] == 4
    assert total["sessions"] == 4 and total["roles"] == 6
    assert set(total["messages"]) == set(hb.MESSAGE_KEYS)
    # not sent (not acknowledged): the next heartbeat reports the same messages again
    again, _ = c.deltas("rw1", {"realm1": _stats(call=10, publish=4), "realm2": _stats(call=1)})
    assert again["realm1"]["messages"]["call"] == 10
    c.commit("rw1", base)
    per_realm, base = c.deltas("rw1", {"realm1": _stats(call=15, publish=4), "realm2": _stats(call=1)})
    assert per_realm["realm1"]["messages"]["call"] == 5 and per_realm["realm2"]["messages"]["call"] == 0
    c.commit("rw1", base)
    # a realm started again counts from zero; a new realm counts all it has
    per_realm, _ = c.deltas("rw1", {"realm1": _stats(call=2), "realm3": _stats(call=7)})
    assert per_realm["realm1"]["messages"]["call"] == 2 and per_realm["realm3"]["messages"]["call"] == 7
    c.forget_others([])
    per_realm, _ = c.deltas("rw1", {"realm1": _stats(call=15)})
    assert per_realm["realm1"]["messages"]["call"] == 15


# -- where the master is -----------------------------------------------------------------------------------

ACTIVATION = ("Crossbar.io node activation\n\ncreated-at: 2026-01-01T00:00:00.000Z\n"
              "management-url: ws://master.example:9000/ws\nmanagement-realm: default\n"
              "management-realm-oid: 6e8117fb-5bd8-4e83-860c-decefa1e95ac\n"
              "node-oid: 664e99a6-6a65-4f64-a95e-46ac9c28c80e\nnode-cluster-ip: unknown\nnode-authid: node-664e99\n"
              "activation-code: P33W-GS4H-5L4Q\npublic-key-ed25519: {pub}\n")


def test_activation_file_as_crossbar_writes_it(tmp_path):
    (tmp_path / "key.activate").write_text(ACTIVATION.format(pub=PUB))
    tags = parse_activation_file(tmp_path / "key.activate")
    assert tags["management-url"] == "ws://master.example:9000/ws" and tags["node-authid"] == "node-664e99"
    assert find_master(tmp_path, {}, PUB, environ={"CROSSBAR_FABRIC_URL": "ws://other/ws"})[0] == \
        "ws://master.example:9000/ws"


@pytest.mark.parametrize("text, error", [
    ("management-url: ws://x/ws\n", "no blank line"),
    ("h\n\nmanagement-url: ws://x/ws\nbogus: 1\n", "unknown tag 'bogus'"),
    ("h\n\nmanagement-url: ws://x/ws\nmanagement-url: ws://y/ws\n", "given twice"),
    ("h\n\nnode-authid: n\n", "no 'management-url'"),
    ("h\n\nmanagement-url\n", "expected 'tag: value'"),
])
def test_bad_activation_files(tmp_path, text, error):
    (tmp_path / "key.activate").write_text(text)
    with pytest.raises(ActivationError, match=error):
        find_master(tmp_path, {}, PUB, environ={})


def test_activation_file_of_another_node_is_refused(tmp_path):
    (tmp_path / "key.activate").write_text(ACTIVATION.format(pub="bb" * 32))
    with pytest.raises(ActivationError, match="not this node's"):
        find_master(tmp_path, {}, PUB, environ={})


def test_master_url_order(tmp_path):
    transport = {"type": "websocket", "url": "ws://cfg/ws", "endpoint": {"type": "tcp", "host": "cfg", "port": 1}}
    config = {"controller": {"fabric": {"transport": transport}}}
    assert find_master(tmp_path, config, PUB, environ={"CROSSBAR_FABRIC_URL": " ws://env/ws "})[0] == "ws://env/ws"
    assert find_master(tmp_path, config, PUB, environ={})[0] == transport
    off = find_master(tmp_path, {"controller": {"fabric": {"transport": None}}}, PUB, environ={})
    assert off[0] is None and "null" in off[1]
    none = find_master(tmp_path, {}, PUB, environ={"CROSSBAR_FABRIC_URL": "  "})
    assert none[0] is None


def test_node_authentication_binds_to_the_tls_channel():
    key = "11" * 32
    plain = node_authenticator(key, transport_spec("ws://master:9000/ws"))
    assert plain.method == "cryptosign" and plain.channel_binding is None
    assert plain.authextra == {"pubkey": plain.public_key, "trustroot": None, "challenge": None,
                               "channel_binding": None}
    tls = node_authenticator(key, transport_spec("wss://master:9000/ws"))
    assert tls.channel_binding == "tls-unique" and tls.authextra["channel_binding"] == "tls-unique"


# -- controller.fabric ------------------------------------------------------------------------------------------

TCP = {"type": "tcp", "host": "localhost", "port": 9000}


@pytest.mark.parametrize("fabric", [
    {"transport": {"type": "websocket", "url": "ws://localhost:9000/ws", "endpoint": TCP},
     "heartbeat": {"startup_delay": 5, "heartbeat_period": 10, "include_system_stats": True,
                   "send_workers_heartbeats": True, "aggregate_workers_heartbeats": True}},
    {"transport": {"type": "websocket", "url": "wss://m:9000/ws",
                   "endpoint": {**TCP, "tls": {"hostname": "m", "ca_certificates": ["ca.pem"]}}}},
    {"transport": {"type": "rawsocket", "serializer": "cbor", "endpoint": {"type": "unix", "path": "m.sock"}}},
    {"transport": None},
    {"heartbeat": {"startup_delay": 0}},
])
def test_valid_fabric_sections(fabric):
    check_controller({"fabric": fabric}, "controller", None)


@pytest.mark.parametrize("fabric, path, message", [
    ({"heartbeat": {"heartbeat_period": "10"}}, "controller.fabric.heartbeat.heartbeat_period", "must be an integer"),
    ({"heartbeat": {"heartbeat_period": 0}}, "controller.fabric.heartbeat.heartbeat_period", "must be 1..86400"),
    ({"heartbeat": {"startup_delay": -1}}, "controller.fabric.heartbeat.startup_delay", "0 or more"),
    ({"heartbeat": {"include_system_stats": 1}}, "controller.fabric.heartbeat.include_system_stats",
     "must be a boolean"),
    ({"heartbeat": {"period": 10}}, "controller.fabric.heartbeat.period", "unknown attribute"),
    ({"transprot": {}}, "controller.fabric.transprot", "unknown attribute"),
    ({"transport": {"type": "mqtt", "endpoint": TCP}}, "controller.fabric.transport.type", "invalid transport type"),
    ({"transport": {"type": "websocket", "url": "wss://m/ws", "endpoint": TCP}}, "controller.fabric.transport.url",
     "without 'tls'"),
    ({"transport": {"type": "websocket", "url": "http://m/ws", "endpoint": TCP}}, "controller.fabric.transport.url",
     "ws:// or wss://"),
    ({"transport": {"type": "websocket", "endpoint": {**TCP, "tls": {"hostnam": "m"}}}},
     "controller.fabric.transport.endpoint.tls.hostnam", "unknown attribute"),
    ({"transport": {"type": "websocket", "endpoint": {**TCP, "tls": {"key": "k.pem"}}}},
     "controller.fabric.transport.endpoint.tls.key", "needs its 'certificate'"),
    ({"transport": {"type": "websocket", "endpoint": {**TCP, "port": 70000}}},
     "controller.fabric.transport.endpoint.port", "invalid TCP port"),
])
def test_invalid_fabric_sections(fabric, path, message):
    with pytest.raises(ConfigError) as ei:
        check_controller({"fabric": fabric}, "controller", None)
    assert ei.value.path == path and message in ei.value.message


def test_check_command_reports_a_bad_heartbeat(tmp_path):
    cbdir = tmp_path / "n"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {
        "heartbeat": {"heartbeat_period": 0}}}}))
    r = _cli("edge", "check", "--cbdir", str(cbdir))
    assert r.returncode != 0
    assert "controller.fabric.heartbeat.heartbeat_period: must be 1..86400 seconds, not 0" in r.stdout + r.stderr


# -- the commands ---------------------------------------------------------------------------------------------

def _cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in ("CROSSBAR_FABRIC_URL", "CROSSBAR_DIR")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "wampfabric", *args], capture_output=True, text=True, timeout=60,
                          env=environ)


def test_edge_keys_creates_and_then_shows_the_key(tmp_path):
    cbdir = tmp_path / "fresh" / "node"
    r = _cli("edge", "keys", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    pub = r.stdout.strip().splitlines()[-1]
    key, created = load_or_create_node_key(cbdir)
    assert not created and pub == f"public-key-ed25519: {key.public_hex}"
    assert (cbdir / "key.priv").stat().st_mode & 0o777 == 0o600
    again = _cli("edge", "keys", "--cbdir", str(cbdir))
    assert again.returncode == 0 and again.stdout.strip() == pub  # the same key, nothing new


def test_edge_keys_refuses_a_readable_private_key(tmp_path):
    assert _cli("edge", "keys", "--cbdir", str(tmp_path)).returncode == 0
    os.chmod(tmp_path / "key.priv", 0o644)
    r = _cli("edge", "keys", "--cbdir", str(tmp_path))
    assert r.returncode != 0 and "accessible by others" in r.stderr


def test_edge_start_refuses_a_missing_directory(tmp_path):
    r = _cli("edge", "start", "--cbdir", str(tmp_path / "nope"))
    assert r.returncode != 0 and "wampfabric edge keys --cbdir" in r.stderr


@pytest.mark.timeout(60)
def test_edge_without_a_master_runs_standalone(tmp_path):
    """No key.activate, no CROSSBAR_FABRIC_URL, no controller.fabric: the node starts (default
    config written), says once that it runs standalone, and stops cleanly."""
    assert _cli("edge", "keys", "--cbdir", str(tmp_path)).returncode == 0
    log_path = tmp_path / "edge.log"
    with open(log_path, "wb") as log:
        p = subprocess.Popen([sys.executable, "-m", "wampfabric", "edge", "start", "--cbdir", str(tmp_path)],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             env={k: v for k, v in os.environ.items() if k != "CROSSBAR_FABRIC_URL"})
    try:
        deadline = time.monotonic() + 30
        while "ready (0 worker(s)" not in log_path.read_text():
            assert p.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert json.loads((tmp_path / "config.json").read_text())["workers"] == []
        r = _cli("edge", "stop", "--cbdir", str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
    log = log_path.read_text()
    assert log.count("No master configured") == 1 and "runs standalone" in log
    assert "Node extension Uplink started" in log and "Node extension Uplink stopped" in log


@pytest.mark.timeout(60)
def test_edge_with_a_bad_master_url_does_not_start(tmp_path):
    assert _cli("edge", "keys", "--cbdir", str(tmp_path)).returncode == 0
    p = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "start", "--cbdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "CROSSBAR_FABRIC_URL": "http://master.example/ws"})
    assert p.returncode == 1
    assert "Node could not start: node extension Uplink" in p.stdout + p.stderr
    assert "unknown scheme 'http'" in p.stdout + p.stderr
