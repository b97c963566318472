"""``wampfabric shell <verb> <noun> ...`` (the one-shot mode), ``shell init``, ``shell auth`` and
``shell profiles`` against a real master with two real edges (the ``fabric`` fixture): the master's
and the mrealm's records, a router worker with a realm, roles and a transport started on edge1 and
used by an autobahn-python client, then stopped; a container worker; pairing and unpairing; a second
user activated end to end and refused what a guest may not do; every error as one line, no
traceback, exit 1 (2 for a command line that cannot be parsed)."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.autobahn_client import connect, w
from support.nodes import FULL_PERMS, free_port

pytestmark = pytest.mark.timeout(240)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}{r.stdout}"
    assert "Traceback" not in r.stderr
    return r.stdout


def one_line_error(r, code=1, *needles):
    """Exit ``code``, nothing on stdout, one line on stderr (no traceback) containing ``needles``."""
    assert r.returncode == code, f"exit {r.returncode}: {r.stderr}{r.stdout}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_master_records_and_output_formats(fabric):
    # the profile's default mrealm is m1: the mrealm's status; --realm anywhere in the line
    status = fabric.json("show", "status")
    assert status["type"] == "management" and status["realm"] == "m1" and status["nodes_online"] == 2
    assert fabric.json("show", "status", "--realm", "m1")["type"] == "management"
    assert fabric.json("show", "version")
    assert fabric.json("show", "license")
    assert fabric.json("list", "mrealms", "--names") == ["m1"]
    [m1] = fabric.json("list", "mrealms")
    assert m1["name"] == "m1" and fabric.json("show", "mrealm", "m1")["oid"] == m1["oid"]
    assert fabric.json("show", "mrealm", m1["oid"])["name"] == "m1"
    # yaml
    assert yaml.safe_load(ok(fabric.run("list", "mrealms", "--names", "--output", "yaml"))) == ["m1"]
    # tables: a header, the rows, no trailing spaces (rich pads cells)
    out = ok(fabric.run("list", "nodes"))
    lines = out.rstrip("\n").splitlines()
    assert lines[0].split()[:3] == ["authid", "oid", "status"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["edge1", "edge2"]
    assert all(line == line.rstrip() for line in lines)
    assert all("online" in line for line in lines[1:])
    out = ok(fabric.run("show", "status"))
    assert "management" in out and all(line == line.rstrip() for line in out.splitlines())
    # help lists every command
    helptext = ok(fabric.run("help"))
    for usage in ("start router-realm NODE WORKER REALM [--config CONFIG]", "pair node PUBKEY MREALM NODE",
                  "list nodes [--online]"):
        assert usage in helptext


def test_nodes_by_name_and_oid(fabric):
    assert sorted(fabric.json("list", "nodes", "--online", "--names")) == ["edge1", "edge2"]
    nodes = {n["authid"]: n for n in fabric.json("list", "nodes")}
    e1 = fabric.json("show", "node", "edge1")
    assert e1["oid"] == nodes["edge1"]["oid"] and e1["status"] == "online"
    assert fabric.json("show", "node", e1["oid"])["authid"] == "edge1"
    assert fabric.json("list", "workers", "edge1") == []
    assert fabric.json("list", "workers", e1["oid"], "--names") == []


def test_router_worker_realm_roles_transport_used_by_a_client(fabric):
    port = free_port()
    e1 = fabric.json("show", "node", "edge1")["oid"]
    out = ok(fabric.run("start", "router-worker", "edge1", "rw1"))
    assert "started" in out and "rw1" in out
    [rw1] = fabric.json("list", "workers", "edge1")
    assert rw1["id"] == "rw1" and rw1["type"] == "router" and rw1["status"] == "started"
    assert fabric.json("show", "worker", e1, "rw1")["pid"] == rw1["pid"]

    # without --config: the realm and no roles (secure by default)
    plain = fabric.json("start", "router-realm", "edge1", "rw1", "closed")
    assert plain["name"] == "closed" and plain["roles"] == []
    assert fabric.json("list", "router-roles", "edge1", "rw1", "closed") == []
    ok(fabric.run("stop", "router-realm", "edge1", "rw1", "closed"))

    cfg = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
    r1 = fabric.json("start", "router-realm", "edge1", "rw1", "realm1", "--config", json.dumps(cfg))
    assert r1["id"] == "realm1" and r1["name"] == "realm1" and len(r1["roles"]) == 1
    role_cfg = {"permissions": [{"uri": "com.example.", "match": "prefix",
                                 "allow": {"call": True, "register": False, "publish": False, "subscribe": True}}]}
    role = fabric.json("start", "router-role", e1, "rw1", "realm1", "reader", "--config", json.dumps(role_cfg))
    assert role == {"id": "reader", "name": "reader"}
    roles = fabric.json("list", "router-roles", "edge1", "rw1", "realm1")
    assert "reader" in [r["id"] for r in roles] and "anonymous" in [r["name"] for r in roles]
    assert fabric.json("show", "router-role", "edge1", "rw1", "realm1", "reader")["config"]["name"] == "reader"
    ok(fabric.run("stop", "router-role", "edge1", "rw1", "realm1", "reader"))
    assert "reader" not in fabric.json("list", "router-roles", "edge1", "rw1", "realm1", "--names")
    assert [r["id"] for r in fabric.json("list", "router-realms", "edge1", "rw1")] == ["realm1"]
    assert fabric.json("show", "router-realm", "edge1", "rw1", "realm1")["name"] == "realm1"

    tcfg = {"type": "websocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}}
    t1 = fabric.json("start", "router-transport", "edge1", "rw1", "t1", "--config", json.dumps(tcfg))
    assert t1["id"] == "t1" and t1["type"] == "websocket" and t1["listening_since"]
    [listed] = fabric.json("list", "router-transports", "edge1", "rw1")
    assert listed["id"] == "t1" and listed["config"]["endpoint"]["port"] == port
    assert fabric.json("show", "router-transport", "edge1", "rw1", "t1")["id"] == "t1"
    assert "t1" in ok(fabric.run("list", "router-transports", "edge1", "rw1"))

    async def use_it():
        client = await connect(None, url=f"ws://127.0.0.1:{port}/", realm="realm1")
        try:
            await w(client.register(lambda x: x * 2, "com.example.double"))
            return await w(client.call("com.example.double", 21))
        finally:
            await client.shutdown()
    assert asyncio.run(use_it()) == 42
    realm = fabric.json("show", "router-realm", "edge1", "rw1", "realm1")
    assert realm["stats"]["call"] >= 1

    ok(fabric.run("stop", "router-transport", "edge1", "rw1", "t1"))
    assert fabric.json("list", "router-transports", "edge1", "rw1") == []
    ok(fabric.run("stop", "router-realm", "edge1", "rw1", "realm1"))
    assert fabric.json("list", "router-realms", "edge1", "rw1") == []
    ok(fabric.run("stop", "worker", "edge1", "rw1"))
    assert fabric.json("list", "workers", "edge1") == []


def test_container_worker_and_generic_start_worker(fabric):
    out = fabric.json("start", "worker", "edge2", "cw1", "container")
    assert out["status"] == "started"
    assert fabric.json("list", "workers", "edge2", "--names") == ["cw1"]
    assert fabric.json("list", "container-components", "edge2", "cw1") == []
    one_line_error(fabric.run("show", "container-component", "edge2", "cw1", "nothere"), 1, "no_such_object")
    ok(fabric.run("stop", "worker", "edge2", "cw1"))
    assert fabric.json("list", "workers", "edge2") == []
    # a guest needs its config; an unknown type
    one_line_error(fabric.run("start", "worker", "edge2", "g1", "guest"), 2, "--options")
    one_line_error(fabric.run("start", "worker", "edge2", "g1", "nosuchtype"), 2, "unknown worker type")


def test_pair_unpair_create_delete(fabric, tmp_path):
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    paired = fabric.json("pair", "node", key, "m1", "edge3", "--authextra", '{"note": "x"}')
    assert paired["authid"] == "edge3" and paired["pubkey"] == key and paired["authextra"] == {"note": "x"}
    offline = {n["authid"]: n["status"] for n in fabric.json("list", "nodes")}
    assert offline == {"edge1": "online", "edge2": "online", "edge3": "offline"}
    assert sorted(fabric.json("list", "nodes", "--online", "--names")) == ["edge1", "edge2"]
    one_line_error(fabric.run("pair", "node", key, "m1", "edge4"), 1, "already_exists")
    # by oid: named, a node paired after the mrealm started that has neither joined nor been asked for
    # by oid is still unknown to the master's remote API (master/nodes.py NodeView.resolve)
    one_line_error(fabric.run("list", "workers", paired["oid"]), 1, "node_offline", "edge3")
    ok(fabric.run("unpair", "node", "edge3"))  # found by name among the mrealms without --realm
    assert "edge3" not in fabric.json("list", "nodes", "--names")
    # by oid, the key from a key file
    keyfile = tmp_path / "k.pub"
    keyfile.write_text(f"Crossbar.io node public key\n\npublic-key-ed25519: {key}\n")
    oid = fabric.json("pair", "node", str(keyfile), "m1", "edge3")["oid"]
    ok(fabric.run("unpair", "node", oid))
    one_line_error(fabric.run("pair", "node", str(tmp_path / "none.pub"), "m1", "x"), 1, "neither")

    assert fabric.json("create", "mrealm", "m2")["name"] == "m2"
    assert sorted(fabric.json("list", "mrealms", "--names")) == ["m1", "m2"]
    fabric.json("pair", "node", key, "m2", "n2")
    one_line_error(fabric.run("delete", "mrealm", "m2"), 1, "not_empty")
    ok(fabric.run("delete", "mrealm", "m2", "--cascade"))
    assert fabric.json("list", "mrealms", "--names") == ["m1"]


def test_errors_are_one_line(fabric):
    one_line_error(fabric.run("show", "node", "nosuch"), 1, "no_such_object", "nosuch")
    one_line_error(fabric.run("list", "workers", "nosuch"), 1, "no_such_object", "nosuch")
    one_line_error(fabric.run("list", "router-realms", "edge1", "nosuchworker"), 1)
    one_line_error(fabric.run("--realm", "nosuch", "list", "nodes"), 1, "nosuch", "not_authorized")
    one_line_error(fabric.run("show", "mrealm", "nosuch"), 1, "no_such_object")
    one_line_error(fabric.run("start", "router-transport", "edge1", "rw1", "t9", "--config", "{bad"), 2, "not JSON")
    one_line_error(fabric.run("start", "router-transport", "edge1", "rw1", "t9", "--config", "[1]"), 2, "object")
    one_line_error(fabric.run("start", "router-transport", "edge1", "rw1", "t9"), 2, "--config")
    one_line_error(fabric.run("start", "nosuchnoun"), 2, "unknown command")
    one_line_error(fabric.run("frobnicate", "nodes"), 2, "unknown verb")
    one_line_error(fabric.run("list", "nodes", "--bogus"), 2, "--bogus")
    one_line_error(fabric.run("show", "node"), 2, "NODE")
    one_line_error(fabric.run("list", "nodes", "--output", "xml"), 2, "--output")
    # the master down: a profile pointing at a port nobody listens on
    ok(fabric.run("init", "--profile", "down", "--url", f"ws://127.0.0.1:{free_port()}/ws",
                  "--privkey", str(fabric.shell_dir / "default.priv")))
    one_line_error(fabric.run("--profile", "down", "show", "status"), 1, "connection refused")
    one_line_error(fabric.run("--profile", "nosuch", "show", "status"), 1, "no profile 'nosuch'")


def test_init_auth_profiles_and_a_guest(fabric):
    d = fabric.shell_dir
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "default.priv").stat().st_mode) == 0o600
    # a profile is not overwritten without --force; with it, its key is kept
    pub = fabric.json("show", "status") and (d / "default.pub").read_text()
    one_line_error(fabric.run("init", "--url", fabric.master.url), 1, "--force")
    out = ok(fabric.run("init", "--url", fabric.master.url, "--realm", "m1", "--force"))
    assert "kept the existing key" in out and (d / "default.pub").read_text() == pub
    # the superuser's key under another profile (--privkey: a Crossbar.io-format key file)
    out = ok(fabric.run("init", "--profile", "su2", "--url", fabric.master.url, "--privkey", str(d / "default.priv")))
    assert pub.split("public-key-ed25519: ")[1].split()[0] in out
    status = fabric.json("--profile", "su2", "show", "status")  # no default mrealm: the master's status
    assert status["type"] == "domain" and status["realm"] == "com.crossbario.fabric"
    one_line_error(fabric.run("init", "--profile", "bad", "--email", "not-an-email"), 1, "email")

    # a second user: a new key, activated with the code the master wrote into its node directory
    out = fabric.json("init", "--profile", "alice", "--url", fabric.master.url, "--email", "alice@example.com")
    assert out["user"] == "alice@example.com" and out["key"] == "new key pair" and "auth" in out["next"]
    assert len(out["pubkey"]) == 64 and stat.S_IMODE((d / "alice.priv").stat().st_mode) == 0o600
    profiles = fabric.json("profiles")
    assert [p["name"] for p in profiles if p["default"]] == ["default"]
    assert {"default", "su2", "alice"} <= {p["name"] for p in profiles}
    assert "*" in ok(fabric.run("profiles")).splitlines()[1]
    ok(fabric.run("init", "--profile", "su2", "--url", fabric.master.url, "--force", "--default"))
    assert [p["name"] for p in fabric.json("profiles") if p["default"]] == ["su2"]
    one_line_error(fabric.run("list", "nodes"), 1, "--realm")  # su2 has no default mrealm
    ok(fabric.run("init", "--profile", "default", "--url", fabric.master.url, "--realm", "m1", "--force", "--default"))
    assert [p["name"] for p in fabric.json("profiles") if p["default"]] == ["default"]
    assert stat.S_IMODE((d / "config.ini").stat().st_mode) == 0o600

    out = ok(fabric.run("--profile", "alice", "auth"))
    assert "We have sent an authentication code to alice@example.com" in out
    assert "activation-codes/alice@example.com.code" in out
    code_file = fabric.master.cbdir / "activation-codes" / "alice@example.com.code"
    code = code_file.read_text().strip()
    assert code in fabric.master.log()
    out = ok(fabric.run("auth", "--profile", "alice"))  # again without a code: pending
    assert "pending activation" in out
    one_line_error(fabric.run("--profile", "alice", "auth", "--code", "AAAA-AAAA-AAAA"), 1, "invalid-activation-code")
    one_line_error(fabric.run("--profile", "alice", "list", "mrealms"), 1, "pending-activation")
    out = ok(fabric.run("--profile", "alice", "auth", "--new-code"))  # the pending code replaced
    assert "We have sent an authentication code" in out
    assert code_file.read_text().strip() != code
    code = code_file.read_text().strip()
    out = ok(fabric.run("--profile", "alice", "auth", "--code", code))
    assert out.strip() == f"authenticated as alice@example.com (role user) at {fabric.master.url}"
    out = fabric.json("--profile", "alice", "auth")  # active now: no code needed
    assert out == {"status": "authenticated", "authid": "alice@example.com", "authrole": "user",
                   "realm": "com.crossbario.fabric", "url": fabric.master.url}
    one_line_error(fabric.run("--profile", "alice", "auth", "--code", code), 1, "no-pending-activation")

    # alice sees no mrealm until the owner gives her a role; as a guest she may look, not start
    assert fabric.json("--profile", "alice", "list", "mrealms") == []
    one_line_error(fabric.run("--profile", "alice", "--realm", "m1", "list", "nodes"), 1, "not_authorized")
    ok(fabric.run("set", "user-roles", "m1", "alice@example.com", "guest"))
    assert fabric.json("--profile", "alice", "list", "mrealms", "--names") == ["m1"]
    assert sorted(fabric.json("--profile", "alice", "--realm", "m1", "list", "nodes", "--names")) == ["edge1", "edge2"]
    one_line_error(fabric.run("--profile", "alice", "--realm", "m1", "start", "router-worker", "edge1", "x1"), 1,
                   "not_authorized")
    one_line_error(fabric.run("--profile", "alice", "create", "mrealm", "m1"), 1)  # exists
    one_line_error(fabric.run("--profile", "alice", "pair", "node", "ab" * 32, "m1", "x"), 1, "not_authorized")
    one_line_error(fabric.run("--profile", "alice", "list", "nodes"), 1, "--realm")  # no mrealm in her profile
    ok(fabric.run("set", "user-roles", "m1", "alice@example.com", "none"))
    assert fabric.json("--profile", "alice", "list", "mrealms") == []


def test_init_with_a_crossbar_key_file(tmp_path):
    """``init --privkey`` takes Crossbar.io's shell key (``crossbar shell init`` writes eth tags too);
    a key file others may read, or one without an Ed25519 key, is refused in one line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    wampfabric = str(Path(sys.executable).with_name("wampfabric"))  # not `from conftest`: tests/ has one too
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes_raw().hex()
    path = tmp_path / "default.priv"
    path.write_text("Crossbar.io user private key - KEEP THIS SAFE!\n\ncreator: unknown\n"
                    "created-at: 2026-12-05T13:04:10.746Z\nuser-id: unknown\n"
                    f"public-key-ed25519: {pub}\npublic-adr-eth: 0xba7D371Da5219bFCaE8a896A39752602065DC51f\n"
                    f"private-key-ed25519: {key.private_bytes_raw().hex()}\nprivate-key-eth: {'7f' * 32}\n")
    path.chmod(0o600)
    env = dict(os.environ, WAMPFABRIC_SHELL_DIR=str(tmp_path / "shell"), CROSSBAR_FABRIC_URL="ws://10.0.0.1:9000/ws")

    def run(*words):
        return subprocess.run([wampfabric, "shell", *words], capture_output=True, text=True, env=env, timeout=60)

    out = json.loads(ok(run("init", "--privkey", str(path), "--output", "json")))
    assert out["pubkey"] == pub and out["url"] == "ws://10.0.0.1:9000/ws" and out["privkey"] == str(path)
    assert out["default"] is True and not (tmp_path / "shell" / "default.priv").exists()
    path.chmod(0o644)
    one_line_error(run("init", "--profile", "other", "--privkey", str(path)), 1, "chmod 600")
    (tmp_path / "nokey").write_text("public-key-ed25519: " + pub + "\n")
    (tmp_path / "nokey").chmod(0o600)
    one_line_error(run("init", "--profile", "other", "--privkey", str(tmp_path / "nokey")), 1, "private-key-ed25519")
    one_line_error(run("init", "--profile", "other", "--url", "http://x"), 1, "--url")


def test_version_and_guest_worker_usage(fabric):
    """`version` (as Crossbar.io's shell has it): this shell's version and the master's; a guest
    worker needs its options."""
    doc = fabric.json("version")
    assert doc["shell"]["product"] == "wampfabric" and doc["master"]["product"] == "wampfabric"
    r = fabric.run("start", "guest-worker", "edge1", "g1")
    assert r.returncode == 2 and "needs --options" in r.stderr and "Traceback" not in r.stderr


def test_export_database(fabric, tmp_path):
    """`export database DBPATH` (as Crossbar.io's shell has it): the master's database as JSON,
    read-only beside the running master; no profile or master connection needed."""
    import json as _json

    db = fabric.master.cbdir / ".db-controller"
    out = tmp_path / "export.json"
    r = fabric.run("export", "database", str(db), "--filename", str(out), "--output", "json")
    assert r.returncode == 0, r.stderr
    assert _json.loads(r.stdout)["tables"]["nodes"] == 2
    doc = _json.loads(out.read_text())
    assert [rec["value"]["name"] for rec in doc["tables"]["mrealms"]] == ["m1"]
    assert sorted(rec["value"]["authid"] for rec in doc["tables"]["nodes"]) == ["edge1", "edge2"]
    assert not any("/" in t for t in doc["tables"])  # indexes only when asked
    r = fabric.run("export", "database", str(db), "--filename", str(out), "--tables", "nodes,users",
                   "--include-indexes")
    assert r.returncode == 0, r.stderr
    assert set(_json.loads(out.read_text())["tables"]) == {"nodes", "users"}
    r = fabric.run("export", "database", str(db), "--tables", "nosuch")
    assert r.returncode == 1 and "no table(s) nosuch" in r.stderr and "Traceback" not in r.stderr
    r = fabric.run("export", "database", str(tmp_path / "none"))
    assert r.returncode == 1 and r.stderr.startswith("Error: no database at")
