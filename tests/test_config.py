"""Config loading and checking through the CLI, as a user runs it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, node_config

CROSSBAR_INIT_TEMPLATE = REPO / "tests" / "data" / "crossbar_init_config.json"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "wampfabric", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def write(tmp_path: Path, config, name="config.json") -> Path:
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (cbdir / name).write_text(text)
    return cbdir


def test_valid_test_config_checks(tmp_path):
    cbdir = write(tmp_path, node_config({"web": 8080, "rawsocket": 8081, "restricted": 8082}, "rs.sock"))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout


def test_crossbar_init_config_loads_unchanged(tmp_path):
    cbdir = write(tmp_path, CROSSBAR_INIT_TEMPLATE.read_text())
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr


def test_yaml_config(tmp_path):
    cbdir = write(tmp_path, "version: 2\nworkers:\n  - type: router\n    realms:\n      - name: realm1\n", "config.yaml")
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr


def base():
    return copy.deepcopy(node_config({"web": 8080, "rawsocket": 8081, "restricted": 8082}, "rs.sock"))


def _set(cfg, path, value):
    obj = cfg
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value
    return cfg


BAD = [
    # (mutation, expected JSON path, expected words)
    (lambda c: _set(c, ["workers", 0, "transports", 1, "endpoint", "port"], "8081"),
     "$.workers[0].transports[1].endpoint.port", "must be an integer"),
    (lambda c: _set(c, ["workers", 0, "transports", 1, "endpoint", "port"], 70000),
     "$.workers[0].transports[1].endpoint.port", "invalid TCP port"),
    (lambda c: _set(c, ["workers", 0, "transports", 0, "paths", "info", "type"], "fancy"),
     "$.workers[0].transports[0].paths['info'].type", "unknown web service type 'fancy'"),
    (lambda c: _set(c, ["workers", 0, "transports", 2, "type"], "carrier-pigeon"),
     "$.workers[0].transports[2].type", "unknown transport type"),
    (lambda c: _set(c, ["workers", 0, "realms", 0, "roles", 0, "permissions", 0, "match"], "regex"),
     "$.workers[0].realms[0].roles[0].permissions[0].match", "invalid match policy"),
    (lambda c: _set(c, ["workers", 0, "realms", 0, "roles", 0, "permissions", 0, "allow", "shout"], True),
     "$.workers[0].realms[0].roles[0].permissions[0].allow.shout", "unknown attribute"),
    (lambda c: _set(c, ["workers", 0, "realms", 0, "name"], "bad realm"),
     "$.workers[0].realms[0].name", "invalid realm name"),
    (lambda c: _set(c, ["workers", 0, "type"], "spaceship"),
     "$.workers[0].type", "unknown worker type"),
    (lambda c: _set(c, ["version"], 1), "$.version", "unsupported config version"),
    (lambda c: _set(c, ["workers", 0, "transports", 1, "serializers"], ["json", "xml"]),
     "$.workers[0].transports[1].serializers[1]", "unsupported serializer 'xml'"),
    (lambda c: _set(c, ["workers", 0, "transports", 0, "paths", "ws", "options", "max_message_size"], -1),
     "$.workers[0].transports[0].paths['ws'].options.max_message_size", "must not be negative"),
    (lambda c: _set(c, ["workers", 0, "realms", 0, "store"], {"type": "memory", "event-history": [{"match": "exact"}]}),
     "$.workers[0].realms[0].store['event-history'][0]", "missing mandatory attribute 'uri'"),
    (lambda c: _set(c, ["workers", 0, "realms", 0, "store"], {"type": "redis"}),
     "$.workers[0].realms[0].store.type", "unsupported store type"),
    (lambda c: _set(c, ["workers", 0, "options"], {"busy_poll_us": -5}),
     "$.workers[0].options.busy_poll_us", "must be an integer 0..100000"),
    (lambda c: _set(c, ["workers", 0, "options"], {"busy_poll_us": "fast"}),
     "$.workers[0].options.busy_poll_us", "must be an integer"),
    (lambda c: c["workers"][0]["transports"][1]["endpoint"].pop("port") and c,
     "$.workers[0].transports[1].endpoint", "missing mandatory attribute 'port'"),
]


@pytest.mark.parametrize("mutate,path,words", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_invalid_config_names_file_path_and_problem(tmp_path, mutate, path, words):
    cbdir = write(tmp_path, mutate(base()))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    err = r.stderr
    assert str(cbdir / "config.json") in err
    assert f"{path}: " in err, err
    assert words in err, err
    assert "Traceback" not in err + r.stdout


def test_invalid_json_names_line_and_column(tmp_path):
    cbdir = write(tmp_path, '{"version": 2,\n "workers": [}\n')
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    assert "config.json: $: invalid JSON at line 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_start_with_invalid_config_fails_without_traceback(tmp_path):
    cbdir = write(tmp_path, _set(base(), ["workers", 0, "transports", 1, "endpoint", "port"], "x"))
    r = run_cli("start", "--cbdir", str(cbdir))
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "$.workers[0].transports[1].endpoint.port" in out
    assert "Traceback" not in out


def test_missing_config_file(tmp_path):
    (tmp_path / ".crossbar").mkdir()
    r = run_cli("check", "--cbdir", str(tmp_path / ".crossbar"))
    assert r.returncode == 1 and "config file not found" in r.stderr


def test_init_creates_config_and_private_key_0600(tmp_path):
    r = run_cli("init", "--appdir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    cbdir = tmp_path / ".crossbar"
    assert (cbdir / "config.json").is_file()
    assert (tmp_path / "web" / "index.html").is_file()
    assert (cbdir / "key.priv").stat().st_mode & 0o777 == 0o600
    pub = (cbdir / "key.pub").read_text()
    assert "public-key-ed25519:" in pub and "private-key" not in pub
    assert run_cli("check", "--cbdir", str(cbdir)).returncode == 0
    # init refuses to overwrite
    r2 = run_cli("init", "--appdir", str(tmp_path))
    assert r2.returncode != 0 and "not overwriting" in r2.stderr
    # keys shows the same public key
    r3 = run_cli("keys", "--cbdir", str(cbdir))
    assert r3.stdout.strip().split()[-1] in pub


def test_version_lists_dependencies():
    r = run_cli("version")
    assert r.returncode == 0
    for name in ("wampfabric", "picows", "msgpack", "cbor2", "Python"):
        assert name in r.stdout


UNIVERSAL = {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1"}], "transports": [{
    "type": "universal", "endpoint": {"type": "tcp", "port": 8080},
    "rawsocket": {"serializers": ["cbor", "msgpack", "json"]},
    "websocket": {"ws": {"type": "websocket", "serializers": ["json"]}},
    "web": {"paths": {"/": {"type": "static", "directory": "../web"}, "info": {"type": "nodeinfo"}}}}]}]}


def test_universal_transport_config(tmp_path):
    assert run_cli("check", "--cbdir", str(write(tmp_path, UNIVERSAL))).returncode == 0
    bad = copy.deepcopy(UNIVERSAL)
    bad["workers"][0]["transports"][0]["rawsocket"]["serializers"] = ["xml"]
    r = run_cli("check", "--cbdir", str(write(tmp_path, bad)))
    assert r.returncode == 1 and "$.workers[0].transports[0].rawsocket.serializers[0]" in r.stderr
    clash = copy.deepcopy(UNIVERSAL)
    clash["workers"][0]["transports"][0]["web"]["paths"]["ws"] = {"type": "nodeinfo"}
    r = run_cli("check", "--cbdir", str(write(tmp_path, clash)))
    assert r.returncode == 1 and "already a WebSocket path" in r.stderr
