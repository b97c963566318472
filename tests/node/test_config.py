"""Config loading and checking through the CLI, as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from support.nodecli import run_cli
from support.nodes import REPO, node_config

CROSSBAR_INIT_TEMPLATE = REPO / "tests" / "data" / "crossbar_init_config.json"


def write(tmp_path: Path, config, name="config.json") -> Path:
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir(exist_ok=True)
    (tmp_path / "web").mkdir(exist_ok=True)  # the static directory "../web" of the configs here
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


# Crossbar.io 26.x (crossbar/common/key.py) ignores the lines before the first blank line, refuses any
# other tag and requires these; a node directory must move between the two unchanged
CROSSBAR_KEY_TAGS = {"public-key-ed25519", "public-adr-eth", "machine-id", "node-authid", "node-cluster-ip",
                     "created-at", "creator"}
CROSSBAR_PRIVATE_KEY_TAGS = CROSSBAR_KEY_TAGS | {"private-key-ed25519", "private-key-eth"}
CROSSBAR_MANDATORY_TAGS = {"creator", "created-at", "machine-id", "public-key-ed25519"}


def crossbar_parse_key_file(text: str, allowed: set) -> dict:
    """Crossbar.io's reading of a key file: tags after the first blank line, unknown tags refused."""
    head, sep, body = text.partition("\n\n")
    assert sep, "no blank line after the header: Crossbar.io would find no tags"
    tags = {}
    for line in body.splitlines():
        if line.strip():
            tag, value = line.split(":", 1)
            assert tag.strip().lower() in allowed, f"Crossbar.io refuses the tag {tag!r}"
            tags[tag.strip().lower()] = value.strip()
    return tags


def test_node_key_files_are_in_crossbar_format(tmp_path):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    assert run_cli("keys", "--cbdir", str(cbdir)).returncode == 0
    priv_text, pub_text = (cbdir / "key.priv").read_text(), (cbdir / "key.pub").read_text()
    assert priv_text.startswith("Crossbar.io node private key - KEEP THIS SAFE!\n\n")
    assert pub_text.startswith("Crossbar.io node public key\n\n")
    priv = crossbar_parse_key_file(priv_text, CROSSBAR_PRIVATE_KEY_TAGS)
    pub = crossbar_parse_key_file(pub_text, CROSSBAR_KEY_TAGS)
    assert CROSSBAR_MANDATORY_TAGS | {"private-key-ed25519"} <= set(priv)
    assert CROSSBAR_MANDATORY_TAGS <= set(pub) and not any(t.startswith("private") for t in pub)
    assert pub["public-key-ed25519"] == priv["public-key-ed25519"]


def test_crossbar_written_key_files_load(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv_hex = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption()).hex()
    pub_hex = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    tags = {"creator": "ops@host", "created-at": "2026-01-02T03:04:05.678Z", "machine-id": "abc123",
            "node-authid": "node7", "public-key-ed25519": pub_hex,
            "public-adr-eth": "0x0000000000000000000000000000000000000001"}
    private = {**tags, "private-key-ed25519": priv_hex, "private-key-eth": "00" * 32}
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    fd = os.open(cbdir / "key.priv", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:  # exactly as crossbar/common/key.py writes it
        f.write("Crossbar.io node private key - KEEP THIS SAFE!\n\n")
        f.write("".join(f"{k}: {v}\n" for k, v in private.items()))
    (cbdir / "key.pub").write_text("Crossbar.io node public key\n\n" + "".join(f"{k}: {v}\n" for k, v in tags.items()))
    r = run_cli("keys", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    assert pub_hex in r.stdout and "New node key" not in r.stdout
    # a missing key.pub is written again from key.priv: Crossbar.io's format, no private tag
    (cbdir / "key.pub").unlink()
    assert run_cli("keys", "--cbdir", str(cbdir)).returncode == 0
    pub = crossbar_parse_key_file((cbdir / "key.pub").read_text(), CROSSBAR_KEY_TAGS)
    assert pub == tags


CROSSBAR = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"


@pytest.mark.skipif(not CROSSBAR.exists(), reason="Crossbar.io not installed (bash bench/setup_crossbar.sh)")
def test_crossbar_accepts_what_wampfabric_init_writes(tmp_path):
    """Differential: the node directory `wampfabric init` makes (config and key files) passes
    Crossbar.io's own `crossbar check`."""
    assert run_cli("init", "--appdir", str(tmp_path)).returncode == 0
    assert run_cli("keys", "--cbdir", str(tmp_path / ".crossbar")).returncode == 0
    r = subprocess.run([str(CROSSBAR), "check", "--cbdir", str(tmp_path / ".crossbar")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "looks good" in r.stdout, r.stdout + r.stderr


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
