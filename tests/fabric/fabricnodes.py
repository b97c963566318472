"""Helpers of the end-to-end fabric tests: edge nodes started with the CLI (``wampfabric edge keys``,
``wampfabric edge start``) against a master started with the CLI (tests/master/masternode.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autobahn.wamp.exception import ApplicationError

from support.autobahn_client import w

from support.nodes import REPO

#: Crossbar.io 26.10 in its own venv (bench/setup_crossbar.sh), for the interop tests
CROSSBAR = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"

M = "crossbarfabriccenter.mrealm."
R = "crossbarfabriccenter.remote."


def edge_keys(cbdir: Path) -> str:
    """``wampfabric edge keys``: the public key it prints."""
    r = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "keys", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("public-key-ed25519: ")]
    assert line, r.stdout
    return line[0].split(": ", 1)[1]


class WfEdge:
    """A wampfabric edge node directory (keys, a config with a short heartbeat period) run by
    ``wampfabric edge start`` with ``CROSSBAR_FABRIC_URL``, its log in a file."""

    def __init__(self, root: Path, name: str, master_url: str, period: int = 1, system_stats: bool = False):
        self.name = name
        self.cbdir = root / name
        self.pubkey = edge_keys(self.cbdir)
        self.period = period
        (self.cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {"heartbeat": {
            "startup_delay": 0, "heartbeat_period": period, "include_system_stats": system_stats}}},
            "workers": []}))
        self.env = {k: v for k, v in os.environ.items() if k != "CROSSBAR_FABRIC_URL"}
        self.env.update(CROSSBAR_FABRIC_URL=master_url, PYTHONUNBUFFERED="1")
        self.log_path = root / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WfEdge":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "edge", "start", "--cbdir",
                                          str(self.cbdir)], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig) -> None:
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole node (controller and workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


async def wait_for(check, timeout: float = 30.0, what: str = "condition", interval: float = 0.1):
    """Poll ``await check()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = await check()
        except ApplicationError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


async def node_status(session, name: str) -> str:
    return (await w(session.call(M + "get_node_by_authid", name)))["status"]


class ShellUser:
    """``crossbar shell init --yes`` in a home of its own: its key is the superuser of the master."""

    def __init__(self, home, url):
        self.env = dict(os.environ, HOME=str(home), CROSSBAR_FABRIC_URL=url)
        self.env.pop("CROSSBAR_FABRIC_SUPERUSER", None)
        r = self.run("init", "--yes")
        assert r.returncode == 0, r.stderr + r.stdout
        self.pubfile = home / ".crossbar" / "default.pub"

    def run(self, *args, timeout=120) -> subprocess.CompletedProcess:
        return subprocess.run([str(CROSSBAR), "shell", *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=self.env["HOME"])
