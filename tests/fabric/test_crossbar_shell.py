"""Crossbar.io 26.10's shell (``crossbar shell``, bench/.venv-crossbar) against our master: every
command of protocol §6 that works against Crossbar.io's master works against ours, and the ones
broken there by D5 (``start router-worker``, ``stop worker``, ``stop router-realm``, node names
instead of oids) work too.  The shell's own key is the master's superuser; the edge is ours.

Exception (docs/decisions.md, "Crossbar.io's shell against our master"): ``show worker`` calls
``crossbarfabriccenter.show_worker``, a procedure neither master registers (D5)."""

from __future__ import annotations

import json

import pytest

from fabricnodes import CROSSBAR, ShellUser, WfEdge, wait_for
from masternode import Master
from support.autobahn_client import connect, w
from support.nodes import free_port

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not CROSSBAR.exists(), reason="Crossbar.io is not installed in "
                                                                "bench/.venv-crossbar (bench/setup_crossbar.sh)")]


def ok(r, *texts):
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    for t in texts:
        assert t in r.stdout, f"{t!r} not in:\n{r.stdout[-3000:]}"
    return r.stdout


async def test_crossbar_shell_commands_against_our_master(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    master = Master()
    shell = ShellUser(home, master.url)
    master.env["CROSSBAR_FABRIC_SUPERUSER"] = str(shell.pubfile)
    master.init()
    master.start()
    edge = None
    client = None
    try:
        # the global realm
        ok(shell.run("show", "status"), "domain")
        ok(shell.run("show", "version"), "wampfabric")
        ok(shell.run("show", "license"))
        ok(shell.run("create", "mrealm", "m1"), "m1")
        ok(shell.run("list", "mrealms"))
        ok(shell.run("list", "mrealms", "--names"), "m1")
        edge = WfEdge(tmp_path, "edge1", master.url, period=1)
        ok(shell.run("pair", "node", str(edge.cbdir / "key.pub"), "m1", "edge1"))
        edge.start()

        # the mrealm
        m = ("--realm", "m1")
        ok(shell.run(*m, "show", "status"), "management")

        async def online():
            r = shell.run(*m, "list", "nodes", "--online", "--names")
            return r.returncode == 0 and "edge1" in r.stdout
        await wait_for(online, 60, "edge1 online in Crossbar.io's shell", 1)
        out = ok(shell.run(*m, "list", "nodes"))
        ok(shell.run(*m, "show", "node", "edge1"), "online", "edge1")
        assert "edge1" in out or "online" in out or out.strip()

        # workers, realms, transports: D5 commands included, node by name
        ok(shell.run(*m, "start", "router-worker", "edge1", "rw1"), "rw1")
        ok(shell.run(*m, "list", "workers", "edge1"), "rw1")
        ok(shell.run(*m, "start", "router-realm", "edge1", "rw1", "realm1"), "realm1")
        ok(shell.run(*m, "list", "router-realms", "edge1", "rw1"), "realm1")
        port = free_port()
        cfg = {"type": "websocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}}
        ok(shell.run(*m, "start", "router-transport", "edge1", "rw1", "t1", "--config", json.dumps(cfg)), "t1")
        ok(shell.run(*m, "list", "router-transports", "edge1", "rw1"), "t1")

        # the realm as Crossbar.io's shell configures it (role anonymous) serves a client
        client = await connect(None, realm="realm1", url=f"ws://127.0.0.1:{port}/ws")
        await w(client.register(lambda: "pong", "com.example.ping"))
        assert await w(client.call("com.example.ping")) == "pong"
        await client.shutdown()
        client = None

        ok(shell.run(*m, "stop", "router-transport", "edge1", "rw1", "t1"))
        ok(shell.run(*m, "stop", "router-realm", "edge1", "rw1", "realm1"))
        r = shell.run(*m, "list", "router-realms", "edge1", "rw1")
        assert r.returncode == 0 and "realm1" not in r.stdout, r.stdout + r.stderr
        ok(shell.run(*m, "stop", "worker", "edge1", "rw1"))
        r = shell.run(*m, "list", "workers", "edge1")
        assert r.returncode == 0 and "rw1" not in r.stdout, r.stdout + r.stderr

        # the exception: show worker calls a procedure no master has
        r = shell.run(*m, "show", "worker", "edge1", "rw1")
        assert "no_such_procedure" in r.stdout + r.stderr
    finally:
        if client is not None:
            await client.shutdown()
        if edge is not None:
            edge.kill()
        master.stop()
