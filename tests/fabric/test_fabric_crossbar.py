"""Interop with Crossbar.io 26.10 (bench/.venv-crossbar): its edge node paired with our master (its
node and worker heartbeats stored, it shows online, ``remote.node.get_workers`` works on it), and
its shell listing and showing the nodes of an mrealm (``crossbar shell --realm M list nodes``,
``show node``) with the shell's own key as the master's superuser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest

from fabricnodes import CROSSBAR, M, R, ShellUser, wait_for
from masternode import Master, fabric_connect
from support.autobahn_client import w
from wampfabric.master.schema import MrealmSchema, open_mrealm_db

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not CROSSBAR.exists(), reason="Crossbar.io is not installed in "
                                                                "bench/.venv-crossbar (bench/setup_crossbar.sh)")]


class KeyOfFile:
    """The shell's key (``~/.crossbar/default.priv``) for an autobahn-python session."""

    def __init__(self, priv):
        from autobahn.wamp.cryptosign import CryptosignKey

        text = priv.read_text()
        seed = re.search(r"private-key-ed25519: ([0-9a-f]{64})", text).group(1)
        self.cryptosign = CryptosignKey.from_bytes(bytes.fromhex(seed))
        self.pubkey = self.cryptosign.public_key()


def crossbar_edge_keys(cbdir):
    cbdir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(CROSSBAR), "edge", "keys", "--cbdir", str(cbdir)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return re.search(r"public-key-ed25519: ([0-9a-f]{64})", (cbdir / "key.pub").read_text()).group(1)


def crossbar_edge(cbdir, url):
    """``crossbar edge start`` (paired first: an unpaired Crossbar.io edge exits, D6)."""
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {"heartbeat": {
        "startup_delay": 1, "heartbeat_period": 2}}}, "workers": []}))
    env = dict(os.environ, CROSSBAR_FABRIC_URL=url)
    env.pop("CROSSBAR_FABRIC_SUPERUSER", None)
    log_path = cbdir.parent / f"{cbdir.name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(CROSSBAR), "edge", "start", "--cbdir", str(cbdir)], stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, log_path


def stop(proc):
    import signal

    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def test_crossbar_edge_and_shell_with_our_master(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    master = Master()
    shell = ShellUser(home, master.url)
    master.env["CROSSBAR_FABRIC_SUPERUSER"] = str(shell.pubfile)
    master.init()
    master.start()
    proc = None
    try:
        r = shell.run("create", "mrealm", "m1")
        assert r.returncode == 0, r.stderr + r.stdout
        crossbar_edge_keys(tmp_path / "cbedge1")
        r = shell.run("pair", "node", str(tmp_path / "cbedge1" / "key.pub"), "m1", "cbedge1")
        assert r.returncode == 0, r.stderr + r.stdout
        proc, log_path = crossbar_edge(tmp_path / "cbedge1", master.url)
        key = KeyOfFile(home / ".crossbar" / "default.priv")
        s = await fabric_connect(master.url, key, realm="m1")
        try:
            try:
                node = await wait_for(lambda: _online_with_heartbeat(s), 90,
                                      "Crossbar.io's edge online with heartbeats", 0.5)
            except AssertionError as e:
                raise AssertionError(f"{e}\nedge log:\n{log_path.read_text(errors='replace')[-3000:]}\n"
                                     f"master log:\n{master.log()[-3000:]}") from None
            oid = node["oid"]
            assert await w(s.call(R + "node.get_workers", oid)) == []
            assert await w(s.call(R + "node.get_workers", "cbedge1")) == []
            status = (await w(s.call(M + "get_status")))["heartbeats"]
            assert status["refused_pubkey"] == 0 and status["refused_foreign"] == 0 and status["dropped"] == 0

            # its heartbeats: the node's (no pubkey, identified by its session: D3) and its controller's
            # (flat, gathered into process: D4)
            mrealm_oid = node["mrealm_oid"]

            def read():
                db = open_mrealm_db(master.cbdir, mrealm_oid, readonly=True)
                try:
                    ms = MrealmSchema.attach(db)
                    with db.begin() as txn:
                        return (list(ms.mnode_logs.select(txn)), list(ms.mworker_logs.select(txn, return_keys=True)))
                finally:
                    db.close()
            deadline = time.monotonic() + 20
            while True:
                nodes, workers = read()
                if nodes and workers or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert nodes and all(n.node_id == uuid.UUID(oid) and n.sent and n.period == 2 for n in nodes)
            assert nodes[-1].cpu and nodes[-1].memory
            ctl = [rec for (_, _, wid), rec in workers if wid == "controller"]
            assert ctl and ctl[-1].process.get("pid") and ctl[-1].type == "controller"

            # Crossbar.io's shell: list nodes, show node
            r = shell.run("--realm", "m1", "list", "nodes")
            assert r.returncode == 0 and oid in r.stdout, r.stderr + r.stdout
            r = shell.run("--realm", "m1", "list", "nodes", "--online", "--names")
            assert r.returncode == 0 and "cbedge1" in r.stdout, r.stderr + r.stdout
            r = shell.run("--realm", "m1", "show", "node", "cbedge1")
            assert r.returncode == 0 and "online" in r.stdout and oid in r.stdout, r.stderr + r.stdout
            r = shell.run("--realm", "m1", "list", "workers", "cbedge1")
            assert r.returncode == 0, r.stderr + r.stdout
        finally:
            await s.close()
    finally:
        if proc is not None:
            stop(proc)
        master.stop()


async def _online_with_heartbeat(s):
    n = await w(s.call(M + "get_node_by_authid", "cbedge1"))
    return n if n["status"] == "online" and n["heartbeat"] else None
