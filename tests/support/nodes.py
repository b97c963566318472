"""Test nodes started the way a user starts them.

``start_node`` writes a node directory with a Crossbar.io version-2
``config.json`` on free ports and runs ``wampfabric start --cbdir DIR`` as a
subprocess.  With ``WAMPFABRIC_TEST_AGAINST=crossbar`` the same tests run
against Crossbar.io (``bench/.venv-crossbar/bin/crossbar``, see
``bench/setup_crossbar.sh``): differential testing against the reference.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


REPO = Path(__file__).resolve().parents[2]
# Tests never read ../shared (a user's clone has nothing beside it): reference material a test
# needs is vendored under tests/ (tests/vectors) or stated in the test itself.


def free_port() -> int:
    """A free TCP port below the kernel's ephemeral range (32768+), so that a port
    chosen now cannot be taken by some client connection's local port before the
    node binds it; ports already handed out in this run are not reused."""
    while True:
        port = random.randrange(20000, 32000)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port


_ports_given: set[int] = set()


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"router exited with code {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


FULL_PERMS = {
    "uri": "",
    "match": "prefix",
    "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
    "disclose": {"caller": False, "publisher": False},
    "cache": True,
}


def node_config(ports: dict, rs_path: str) -> dict:
    """A config exercising every transport kind of the foundation."""
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "realms": [
                    {
                        "name": "realm1",
                        "roles": [
                            {"name": "anonymous", "permissions": [FULL_PERMS]},
                            {
                                "name": "restricted",
                                "permissions": [
                                    {
                                        "uri": "com.public.",
                                        "match": "prefix",
                                        "allow": {"call": True, "register": False, "publish": False, "subscribe": True},
                                        "disclose": {"caller": False, "publisher": False},
                                        "cache": True,
                                    },
                                    {
                                        "uri": "com.open..data",
                                        "match": "wildcard",
                                        "allow": {"call": False, "register": False, "publish": True, "subscribe": True},
                                        "disclose": {"caller": False, "publisher": False},
                                        "cache": True,
                                    },
                                    {
                                        "uri": "com.exact.proc",
                                        "match": "exact",
                                        "allow": {"call": True, "register": True, "publish": False, "subscribe": False},
                                        "disclose": {"caller": False, "publisher": False},
                                        "cache": True,
                                    },
                                ],
                            },
                        ],
                    }
                ],
                "transports": [
                    {
                        "type": "web",
                        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
                        "paths": {
                            "/": {"type": "static", "directory": "../web", "options": {"enable_directory_listing": True}},
                            "ws": {
                                "type": "websocket",
                                "serializers": ["json", "msgpack", "cbor"],
                                "options": {"max_message_size": 2 * 1024 * 1024},
                            },
                            "info": {"type": "nodeinfo"},
                        },
                    },
                    {
                        "type": "rawsocket",
                        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["rawsocket"]},
                        "serializers": ["json", "msgpack", "cbor"],
                        "options": {"max_message_size": 2 * 1024 * 1024},
                    },
                    {
                        "type": "rawsocket",
                        "endpoint": {"type": "unix", "path": rs_path},
                        "serializers": ["json", "msgpack", "cbor"],
                    },
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["restricted"]},
                        "serializers": ["json", "msgpack", "cbor"],
                        "auth": {"anonymous": {"type": "static", "role": "restricted"}},
                    },
                ],
            }
        ],
    }


def router_command(cbdir: Path) -> list[str]:
    if os.environ.get("WAMPFABRIC_TEST_AGAINST") == "crossbar":
        return [str(REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"), "start", "--cbdir", str(cbdir)]
    return [sys.executable, "-m", "wampfabric", "start", "--cbdir", str(cbdir)]


@dataclass
class Node:
    """A running node, as seen by tests."""

    root: Path
    cbdir: Path
    proc: subprocess.Popen
    ports: dict
    rawsocket_path: str
    realm: str = "realm1"
    log_path: Path = field(default=None)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['web']}/ws"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    @property
    def rawsocket_port(self) -> int:
        return self.ports["rawsocket"]

    @property
    def restricted_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['restricted']}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def assert_alive(self):
        assert self.proc.poll() is None, f"router died (exit {self.proc.returncode}):\n{self.log()[-4000:]}"


def start_node(config_factory=node_config) -> Node:
    root = Path(tempfile.mkdtemp(prefix="wf-node-"))
    cbdir = root / ".crossbar"
    cbdir.mkdir()
    web = root / "web"
    web.mkdir()
    (web / "index.html").write_text("<html><body>hello from static</body></html>")
    ports = {"web": free_port(), "rawsocket": free_port(), "restricted": free_port()}
    rs_path = str(root / "rs.sock")
    (cbdir / "config.json").write_text(json.dumps(config_factory(ports, rs_path), indent=2))
    log_path = root / "node.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            router_command(cbdir), cwd=root, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    node = Node(root=root, cbdir=cbdir, proc=proc, ports=ports, rawsocket_path=rs_path, log_path=log_path)
    try:
        for p in ports.values():
            wait_port(p, proc)
    except Exception:
        stop_node(node)
        raise RuntimeError(f"node did not start:\n{node.log()[-4000:]}")
    return node


def stop_node(node: Node, timeout: float = 10.0) -> int | None:
    proc = node.proc
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the process group may still hold workers of a dying controller
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.returncode


def router_worker(node) -> psutil.Process:
    """The router worker process of a started node (waited for up to 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for p in psutil.Process(node.proc.pid).children(recursive=True):
            try:
                cmd = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if "wampfabric.worker" in cmd and "router" in cmd:
                return p
        time.sleep(0.1)
    raise AssertionError("no router worker process")
