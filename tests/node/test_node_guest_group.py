"""A guest worker runs in its own process group, and the group is ended with it: the processes a
guest starts (``/bin/sh -c "sleep 777 & ..."``) do not outlive ``wampfabric stop``, nor a controller
killed with SIGKILL (the watchdog ends the groups then).  Through the CLI with real nodes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from support.nodecli import T, assert_gone, run_cli
from support.nodes import FULL_PERMS, free_port, wait_port

# the guest: one child that ends on SIGTERM, one that ignores it (SIGKILL after the stop timeout),
# then the guest itself becomes a long sleep
GUEST = "sleep 777 & (trap '' TERM; exec sleep 779) & exec sleep 600"


def config(port: int, extra_guests=(), shutdown=None) -> dict:
    controller = {"options": {"shutdown_timeout": 2}}
    if shutdown is not None:
        controller["options"]["shutdown"] = shutdown
    return {"version": 2, "controller": controller, "workers": [
        {"id": "router1", "type": "router",
         "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
         "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port}}]},
        {"id": "guest1", "type": "guest", "executable": "/bin/sh", "arguments": ["-c", GUEST]},
        *extra_guests]}


class Node:
    def __init__(self, cfg: dict, wait_port_: int):
        self.root = Path(tempfile.mkdtemp(prefix="wf-grp-"))
        self.cbdir = self.root / ".crossbar"
        self.cbdir.mkdir()
        (self.cbdir / "config.json").write_text(json.dumps(cfg))
        self.log_path = self.root / "node.log"
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(self.cbdir)],
                                         cwd=self.root, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        self.groups: list[int] = []
        try:
            wait_port(wait_port_, self.proc, timeout=T)
            self.wait_log(" worker(s): ")
        except Exception:
            self.cleanup()
            raise RuntimeError(f"node did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str) -> None:
        deadline = time.monotonic() + T
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not in node log:\n{self.log()[-3000:]}"
            time.sleep(0.05)

    def guest_pid(self, worker_id: str) -> int:
        m = re.search(rf"Guest worker '{worker_id}' started: .* \(pid (\d+),", self.log())
        assert m, self.log()
        pid = int(m.group(1))
        self.groups.append(pid)
        return pid

    def cleanup(self) -> None:
        """Whatever the test did, nothing it started survives."""
        for pgid in [self.proc.pid, *self.groups]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


def started_by(node: Node, *cmdlines: str) -> list[psutil.Process]:
    """The live processes with these command lines that were started since the node was."""
    since = psutil.Process(node.proc.pid).create_time() - 1
    deadline = time.monotonic() + T
    while True:
        found = []
        for p in psutil.process_iter(["cmdline", "create_time", "status"]):
            if " ".join(p.info["cmdline"] or ()) in cmdlines and (p.info["create_time"] or 0) >= since \
                    and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        if len(found) >= len(cmdlines):
            return found
        assert time.monotonic() < deadline, f"not found: {cmdlines}: {[p.cmdline() for p in found]}"
        time.sleep(0.05)


def test_stop_ends_the_processes_guests_started():
    port = free_port()
    # guest2 starts a child and ends by itself (a clean exit: the node keeps running)
    # guest3 starts a child and ends at once: that is no start failure
    node = Node(config(port, extra_guests=[{"id": "guest2", "type": "guest", "executable": "/bin/sh",
                                            "arguments": ["-c", "sleep 780 & sleep 0.5"]},
                                           {"id": "guest3", "type": "guest", "executable": "/bin/sh",
                                            "arguments": ["-c", "sleep 781 &"]}],
                       shutdown=["shutdown_on_worker_exit_with_error"]), port)
    try:
        g1, g2 = node.guest_pid("guest1"), node.guest_pid("guest2")
        leaders = (os.getpgid(g1), os.getpgid(g2))
        procs = started_by(node, "sleep 777", "sleep 779", "sleep 600")
        node.wait_log("Guest worker 'guest2' (pid")  # it has ended ...
        procs += started_by(node, "sleep 780", "sleep 781")  # ... its child runs on
        r = run_cli("stop", "--cbdir", str(node.cbdir))
        assert r.returncode == 0, r.stdout + r.stderr
        assert node.proc.wait(T) == 0
        assert_gone(procs, timeout=2)
        assert leaders == (g1, g2)  # each guest led its own process group
        assert "Traceback" not in node.log()
    finally:
        node.cleanup()


def test_controller_killed_with_sigkill_leaves_no_guest_process():
    port = free_port()
    node = Node(config(port), port)
    try:
        node.guest_pid("guest1")
        procs = started_by(node, "sleep 777", "sleep 779", "sleep 600")
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(T)
        # the guest itself gets the parent-death signal; its children: the watchdog (TERM, KILL after 5 s)
        assert_gone(procs)
    finally:
        node.cleanup()


def test_stop_worker_via_the_api_ends_its_group():
    """The management API's stop_worker ends the guest's children too (a node with a management socket)."""
    import asyncio

    from wampfabric.client.rawsocket import connect_rawsocket

    port = free_port()
    cfg = config(port)
    cfg["controller"]["transport"] = {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}
    node = Node(cfg, port)
    try:
        node.guest_pid("guest1")
        procs = started_by(node, "sleep 777", "sleep 779", "sleep 600")

        async def stop():
            s = await connect_rawsocket("crossbar", path=str(node.cbdir / "node.sock"))
            try:
                return await s.call("crossbar.stop_worker", "guest1")
            finally:
                await s.leave()

        info = asyncio.run(stop())
        assert info["id"] == "guest1"
        assert_gone(procs, timeout=2)
        assert node.proc.poll() is None  # a requested stop: the node runs on
    finally:
        node.cleanup()
