"""The node as a user runs it from the command line: ``wampfabric check``/``start`` on a node
directory written for the test (``write``), the error lines they print (``error_lines``), builders
of config sections (``config``, ``router``, ``realm``, ``ws``, ``ws_transport``, ``small_config``),
a started node (``start_node`` -> ``NodeProc``; ``kill_node`` leaves nothing behind; ``mgmt``:
a session on its management socket), ``assert_gone`` (processes that must have ended) and ``T``,
the node tests' bound on waits (a node starting, stopping, a log line appearing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from support.nodes import FULL_PERMS, wait_port
from wampfabric.client.rawsocket import connect_rawsocket

T = 20.0


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wampfabric", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def run_start(cbdir: Path, timeout: float = 30) -> tuple[int, str]:
    """``wampfabric start``, expected to refuse: a node that starts anyway is killed (and fails the test)."""
    p = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(cbdir)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        pytest.fail(f"the node started:\n{out[-3000:]}")
    return p.returncode, out


def write(root: Path, config: dict) -> Path:
    cbdir = root / ".crossbar"
    cbdir.mkdir(exist_ok=True)
    (cbdir / "config.json").write_text(json.dumps(config, indent=1))
    return cbdir


def error_lines(text: str, cbdir: Path) -> list[str]:
    """``<file>: <JSON path>: <message>`` of each error line (of check's stderr or start's log)."""
    marker = f"{cbdir / 'config.json'}: "
    return [line[line.index(marker):] for line in text.splitlines() if marker in line]


def realm(name="realm1"):
    return {"name": name, "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}


def ws(port, interface="127.0.0.1", **extra):
    ep = {"type": "tcp", "port": port, **extra}
    if interface is not None:
        ep["interface"] = interface
    return {"type": "websocket", "endpoint": ep}


def router(*transports, realms=None):
    return {"type": "router", "realms": realms or [realm()], "transports": list(transports)}


def config(*workers, controller=None) -> dict:
    return {"version": 2, "controller": controller or {}, "workers": list(workers)}


def ws_transport(port, tid=None):
    t = {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
         "serializers": ["json", "msgpack", "cbor"]}
    if tid:
        t["id"] = tid
    return t


def small_config(port: int, controller: dict | None = None, guest_args=None, extra_workers=(),
                 guest: bool = True) -> dict:
    """Router ``router1`` on ``port`` and (unless ``guest=False``) a sleeping guest ``guest1``."""
    guests = [{"id": "guest1", "type": "guest", "executable": sys.executable,
               "arguments": guest_args or ["-c", "import time; time.sleep(600)"]}] if guest else []
    return {
        "version": 2,
        "controller": controller or {},
        "workers": [
            {"id": "router1", "type": "router", "realms": [realm()], "transports": [ws_transport(port)]},
            *guests,
            *extra_workers,
        ],
    }


class NodeProc:
    def __init__(self, root: Path, proc: subprocess.Popen, ports: dict):
        self.root = root
        self.cbdir = root / ".crossbar"
        self.proc = proc
        self.ports = ports
        self.log_path = root / "node.log"

    @property
    def sock(self) -> str:
        return str(self.cbdir / "node.sock")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_log(self, text: str, timeout: float = T) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in node log:\n{self.log()[-3000:]}")


def start_node(config: dict, wait_ports=(), env=None, wait_ready=True) -> NodeProc:
    root = Path(tempfile.mkdtemp(prefix="wf-rt-"))
    (root / ".crossbar").mkdir()
    (root / ".crossbar" / "config.json").write_text(json.dumps(config, indent=2))
    log = open(root / "node.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(root / ".crossbar")],
                            cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(env or os.environ, PYTHONUNBUFFERED="1"))
    log.close()
    node = NodeProc(root, proc, {})
    try:
        for p in wait_ports:
            wait_port(p, proc, timeout=T)
        if wait_ready:
            node.wait_log(" worker(s): ")
    except Exception:
        kill_node(node)
        raise RuntimeError(f"node did not start:\n{node.log()[-4000:]}")
    return node


def kill_node(node: NodeProc) -> None:
    """Last-resort cleanup: whatever the test did, nothing it started survives."""
    procs = node.descendants()
    try:
        os.killpg(node.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        node.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def assert_gone(procs, timeout: float = T) -> None:
    """Each of ``procs`` (psutil processes) ends (or is a zombie) within ``timeout``."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.05)
    assert not alive, f"processes left behind: {[(p.pid, p.cmdline()) for p in alive]}"


async def mgmt(node: NodeProc):
    return await connect_rawsocket("crossbar", path=node.sock)
