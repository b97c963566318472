"""Interop: Crossbar.io 26.10's edge node (bench/.venv-crossbar) pairs with our master, joins its
mrealm, and its management procedures are registered there: the superuser calls one through the
router on the mrealm realm. Pairing by ``pair_node`` (URL from ``CROSSBAR_FABRIC_URL``) and by
watch-to-pair (URL from the ``key.activate`` our master writes)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from autobahn.wamp.exception import ApplicationError

from masternode import Key, Master, fabric_connect
from support.autobahn_client import expect_error, w
from support.nodes import REPO

CROSSBAR = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"

pytestmark = pytest.mark.skipif(not CROSSBAR.exists(),
                                reason="Crossbar.io is not installed in bench/.venv-crossbar (bench/setup_crossbar.sh)")

M = "crossbarfabriccenter.mrealm."


def edge_keys(cbdir: Path) -> str:
    cbdir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(CROSSBAR), "edge", "keys", "--cbdir", str(cbdir)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return re.search(r"public-key-ed25519: ([0-9a-f]{64})", (cbdir / "key.pub").read_text()).group(1)


class Edge:
    def __init__(self, cbdir: Path, env: dict):
        self.log_path = cbdir.parent / f"{cbdir.name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(CROSSBAR), "edge", "start", "--cbdir", str(cbdir)], stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of its group is left
        except ProcessLookupError:
            pass


async def call_node(session, uri, edge: Edge, timeout=60.0):
    """Call a procedure the edge registers once its uplink is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await w(session.call(uri))
        except ApplicationError as e:
            if e.error != "wamp.error.no_such_procedure" or loop.time() > deadline:
                raise AssertionError(f"{e}\nedge log:\n{edge.log()[-3000:]}")
        assert edge.proc.poll() is None, f"the edge exited:\n{edge.log()[-3000:]}"
        await asyncio.sleep(0.5)


async def test_crossbar_edge_pairs_and_is_reachable(tmp_path):
    su_key = Key()
    m = Master(superuser=su_key)
    m.init()
    edge = None
    try:
        m.start()
        pubkey = edge_keys(tmp_path / "edge1")
        su = await fabric_connect(m.url, su_key)
        await w(su.call(M + "create_mrealm", {"name": "mrealm1"}))
        await w(su.call(M + "pair_node", pubkey, "mrealm1", "edge1", {"note": "example"}))
        env = dict(os.environ, CROSSBAR_FABRIC_URL=m.url)
        env.pop("CROSSBAR_FABRIC_SUPERUSER", None)
        edge = Edge(tmp_path / "edge1", env)
        owner = await fabric_connect(m.url, su_key, realm="mrealm1")
        status = await call_node(owner, "crossbarfabriccenter.node.edge1.get_status", edge)
        assert status["management_realm"] == "mrealm1" and status["management_node_id"] == "edge1"
        assert status["pubkey"] == pubkey
        assert status["management_node_extra"]["note"] == "example"
        node = await w(su.call(M + "get_node_by_name", "mrealm1", "edge1"))
        assert node["connected"] is True
        # its uplink check found our mrealm.get_status
        assert (await w(owner.call(M + "get_status")))["nodes_online"] == 1
        # the edge registers its key's signing procedures (D1): the master forwards no call to them
        await expect_error(owner.call("crossbarfabriccenter.node.edge1.sign", b"x"), "wamp.error.not_authorized")
        await su.close()
        await owner.close()
    finally:
        if edge is not None:
            edge.stop()
        m.stop()


async def test_crossbar_edge_reads_the_activation_file_of_watch_to_pair(tmp_path):
    su_key = Key()
    watched = tmp_path / "nodes"
    edge_dir = watched / "edgex"
    pubkey = edge_keys(edge_dir)
    m = Master(superuser=su_key, env={"CROSSBAR_WATCH_TO_PAIR": str(watched), "CROSSBAR_WATCH_TO_PAIR_PERIOD": "0.5"})
    m.init()
    edge = None
    try:
        m.start()
        m.wait_log("key.activate written")
        name = re.search(r"node-authid: (\S+)", (edge_dir / "key.activate").read_text()).group(1)
        env = {k: v for k, v in os.environ.items() if k not in ("CROSSBAR_FABRIC_URL", "CROSSBAR_FABRIC_SUPERUSER")}
        edge = Edge(edge_dir, env)
        owner = await fabric_connect(m.url, su_key, realm="default")
        status = await call_node(owner, f"crossbarfabriccenter.node.{name}.get_status", edge)
        assert (status["management_realm"], status["pubkey"]) == ("default", pubkey)
        assert "Found auto-activation file" in edge.log()
        await owner.close()
    finally:
        if edge is not None:
            edge.stop()
        m.stop()
