"""Starting and stopping routers, for bench/run.py, bench/membench.py and compat/run.py.

A router (wampfabric or Crossbar.io) runs ``COMMAND start --cbdir DIR/.crossbar`` from a node
directory, in its own process group (so the whole tree can be stopped), its output in a log
file; ``stop()`` sends SIGTERM to the group, waits, then SIGKILLs the group and any
descendant that left it, so no router outlives the tool that started it.

Commands: ``WAMPFABRIC_CMD`` (default: the repository's ``.venv/bin/wampfabric``, else
``python -m wampfabric``) and ``CROSSBAR_CMD`` (default ``bench/.venv-crossbar/bin/crossbar``,
installed by bench/setup_crossbar.sh); ``start --cbdir DIR`` is appended.

Free ports and the allow-everything permission are the test suite's (tests/support/nodes.py),
so that the tools and the tests pick ports the same way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_CROSSBAR = os.path.join(HERE, ".venv-crossbar", "bin", "crossbar")
DEFAULT_WAMPFABRIC = os.path.join(REPO, ".venv", "bin", "wampfabric")
TARGETS = ["wampfabric", "crossbar"]

if os.path.join(REPO, "tests") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "tests"))
from support.nodes import FULL_PERMS, free_port  # noqa: E402,F401  (free_port: re-exported for the tools)


def router_command(target: str) -> list[str]:
    """The command that starts *target* (``start --cbdir DIR`` is appended)."""
    if target == "crossbar":
        return shlex.split(os.environ.get("CROSSBAR_CMD", DEFAULT_CROSSBAR))
    cmd = os.environ.get("WAMPFABRIC_CMD")
    if cmd:
        return shlex.split(cmd)
    if os.path.exists(DEFAULT_WAMPFABRIC):
        return [DEFAULT_WAMPFABRIC]
    return [sys.executable, "-m", "wampfabric"]


def missing_command(target: str) -> str | None:
    """Why *target*'s command cannot run (and what to do), or None."""
    exe = router_command(target)[0]
    if shutil.which(exe) is not None or os.access(exe, os.X_OK):
        return None
    hint = "run: bash bench/setup_crossbar.sh" if target == "crossbar" else "set WAMPFABRIC_CMD or pip install -e ."
    return f"{target} command not found: {exe} ({hint})"


def bench_config(port: int, transport: str = "web", ws_options: dict | None = None) -> dict:
    """Crossbar config (version 2): one router worker, realm1 whose anonymous role may do
    everything, one transport on 127.0.0.1:*port*: ``web`` with a WebSocket service on path
    ``ws``, or a plain ``websocket`` transport; serializers msgpack and json."""
    realm = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
    endpoint = {"type": "tcp", "interface": "127.0.0.1", "port": port}
    ws = {"type": "websocket", "serializers": ["msgpack", "json"]}
    if ws_options:
        ws["options"] = ws_options
    if transport == "web":
        tr = {"type": "web", "endpoint": endpoint, "paths": {"ws": ws}}
    else:
        tr = {**ws, "endpoint": endpoint}
    return {"version": 2, "controller": {}, "workers": [{"type": "router", "realms": [realm], "transports": [tr]}]}


def make_node_dir(prefix: str, config: dict) -> str:
    """A new temporary node directory with ``.crossbar/config.json``; returns its path."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(os.path.join(d, ".crossbar"))
    with open(os.path.join(d, ".crossbar", "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return d


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


_LIVE: list = []  # started and not yet stopped (stop_all: the tools' signal handlers)


def stop_all() -> None:
    for r in list(_LIVE):
        try:
            r.stop()
        except Exception:
            pass


class RouterProcess:
    """One router process tree started from *cbdir*; *prefix* goes before the command (e.g.
    ``taskset -c 0``), *env* replaces the environment."""

    def __init__(self, target: str, cbdir: str, log_path: str, prefix=(), env: dict | None = None):
        self.target = target
        self.cbdir = str(cbdir)
        self.log_path = str(log_path)
        self.cmd = [*prefix, *router_command(target), "start", "--cbdir", self.cbdir]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=os.path.dirname(self.cbdir), env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # own process group: the whole tree stops
        _LIVE.append(self)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, ready, deadline: float, what: str, poll: float = 0.05) -> None:
        """Call ``ready()`` until it is true (an OSError counts as not yet); RuntimeError with the
        log's tail when the router exits first or *deadline* (time.monotonic) passes."""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.target} exited with code {self.proc.returncode} before {what} "
                                   f"(cmd: {shlex.join(self.cmd)}); log tail:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.target}: no {what} in time; log tail:\n{self.log_tail()}")
            time.sleep(poll)

    def wait_port(self, port: int, deadline: float) -> None:
        self.wait_until(lambda: port_open(port), deadline, f"port {port} open")

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return "(no log)"

    def log_tail(self, n: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def process_tree(self) -> list:
        if self.proc is None:
            return []
        try:
            main = psutil.Process(self.proc.pid)
            return [main] + main.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def find_router_process(self, pattern: str = "router", wait: float = 0.0):
        """Router process rule: among the started process's descendants, the one whose command
        line matches *pattern* (case-insensitive), preferring one that also says "worker", then
        the oldest; None if there is none (after waiting up to *wait* seconds for one)."""
        pat = re.compile(pattern, re.I)
        deadline = time.monotonic() + wait
        while True:
            found = []
            for p in self.process_tree()[1:]:
                cl = cmdline_of(p)
                if pat.search(cl):
                    try:
                        found.append((0 if re.search("worker", cl, re.I) else 1, p.create_time(), p.pid, p))
                    except psutil.Error:
                        pass
            if found:
                return min(found, key=lambda x: x[:3])[3]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    stop_timeout = 10.0  # seconds between SIGTERM and SIGKILL

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the process group, then SIGKILL (group and any escaped descendant)."""
        if self.proc is None:
            return
        if timeout is None:
            timeout = self.stop_timeout
        tree = self.process_tree()
        pgid = self.proc.pid  # start_new_session => pgid == pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        # wait a moment for the rest of the tree, then kill whatever is left
        deadline = time.monotonic() + 3
        alive = [p for p in tree if _alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in tree if _alive(p)]
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in alive:
            try:
                p.kill()
            except Exception:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:  # a killed node leaves its pid file: the directory can be started again
            os.unlink(os.path.join(self.cbdir, "node.pid"))
        except OSError:
            pass
        if self in _LIVE:
            _LIVE.remove(self)
        self.proc = None


def cmdline_of(p) -> str:
    try:
        return " ".join(x for x in p.cmdline() if x)
    except Exception:
        return ""


def _alive(p) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False
