"""Fixtures of the shell tests: a real master (``wampfabric master start``) whose superuser key is
the shell profile's, an mrealm ``m1``, and two edges ``edge1``, ``edge2`` (heartbeats every second)
paired into it and running; ``ShellFabric.run(*words)`` runs ``wampfabric shell ...`` as a user types
it, with ``WAMPFABRIC_SHELL_DIR`` pointing at the test's shell directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for extra in (HERE.parent / "master", HERE.parent / "fabric"):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

from fabricnodes import WfEdge  # noqa: E402
from masternode import Master  # noqa: E402

WAMPFABRIC = str(Path(sys.executable).with_name("wampfabric"))


class ShellFabric:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="wf-shell-"))
        self.shell_dir = self.root / "shell"
        self.env = dict(os.environ, WAMPFABRIC_SHELL_DIR=str(self.shell_dir), PYTHONUNBUFFERED="1")
        self.env.pop("CROSSBAR_FABRIC_URL", None)
        self.master: Master | None = None
        self.edges: dict[str, WfEdge] = {}

    def run(self, *words: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        """``wampfabric shell <words>``: returncode, stdout, stderr."""
        return subprocess.run([WAMPFABRIC, "shell", *words], capture_output=True, text=True, timeout=timeout,
                              env=self.env, input=input)

    def json(self, *words: str):
        r = self.run(*words, "--output", "json")
        assert r.returncode == 0, f"shell {' '.join(words)}: {r.stderr}{r.stdout}"
        return json.loads(r.stdout)

    def start(self) -> "ShellFabric":
        # the superuser: the shell profile's key, named to the master by CROSSBAR_FABRIC_SUPERUSER
        self.master = Master(env={"CROSSBAR_FABRIC_SUPERUSER": str(self.shell_dir / "default.pub")})
        r = self.run("init", "--url", self.master.url, "--realm", "m1")
        assert r.returncode == 0, r.stderr + r.stdout
        self.master.init()
        self.master.start()
        r = self.run("create", "mrealm", "m1")
        assert r.returncode == 0, r.stderr + r.stdout
        for name in ("edge1", "edge2"):
            e = WfEdge(self.root, name, self.master.url, period=1)
            r = self.run("pair", "node", str(e.cbdir / "key.pub"), "m1", name)
            assert r.returncode == 0, r.stderr + r.stdout
            self.edges[name] = e.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = self.run("list", "nodes", "--online", "--names", "--output", "json")
            if r.returncode == 0 and sorted(json.loads(r.stdout)) == ["edge1", "edge2"]:
                return self
            time.sleep(0.5)
        raise AssertionError(f"edges not online: {r.stderr}{r.stdout}\n{self.master.log()[-3000:]}")

    def stop(self) -> None:
        for e in self.edges.values():
            e.kill()
        if self.master is not None:
            self.master.stop()


@pytest.fixture(scope="module")
def fabric():
    """A master with mrealm m1 and two online edges, shared by the tests of one module."""
    f = ShellFabric()
    try:
        yield f.start()
    finally:
        f.stop()
