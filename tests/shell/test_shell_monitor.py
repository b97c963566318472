"""``wampfabric shell monitor``: the live view of an mrealm in a pseudo-terminal, and ``--once``,
against the real master and edges of the ``fabric`` fixture (edges send a heartbeat every
second).  The last test SIGKILLs edge2: the fixture is per module, so it comes last."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

from wampfabric.edge.heartbeat import MESSAGE_KEYS, aggregate, worker_heartbeat
from wampfabric.shell.monitor import NodeRow

ROWS, COLS = 30, 120

WAMPFABRIC = str(Path(sys.executable).with_name("wampfabric"))  # the venv's command, as conftest runs it
pytestmark = pytest.mark.timeout(120)


def row(screen: str, node: str) -> list[str] | None:
    """The monitor's line of a node, split into its columns (two spaces or more between them)."""
    for line in screen.splitlines():
        if line.strip().startswith(node + " "):
            return re.split(r"\s{2,}", line.strip())
    return None


def test_rates_from_a_router_worker_heartbeat():
    """Sessions and messages per second as the edge reports them (counts since its previous
    heartbeat, aggregated or per realm), divided by the heartbeat's period."""
    msgs = dict.fromkeys(MESSAGE_KEYS, 0)
    per_realm = {"realm1": {"sessions": 3, "roles": 1, "messages": dict(msgs, publish=20, event=40)},
                 "realm2": {"sessions": 2, "roles": 1, "messages": dict(msgs, call=10, result=10)}}
    r = NodeRow("edge1")
    r.heartbeat({"period": 10, "workers": {"controller": 1, "router": 1}, "seq": 1}, now=100.0)
    for wid, router in (("rw1", aggregate(per_realm)), ("rw2", per_realm)):
        hb = worker_heartbeat(worker_type="router", monitor={}, timestamp=0, period=10, mrealm="m1", seq=1,
                              router=router)
        r.worker_heartbeat(wid, hb, now=100.0)
    snap = r.snapshot(now=101.0)
    assert snap["status"] == "online" and snap["workers"] == {"router": 1}
    assert snap["sessions"] == 10 and snap["messages_per_second"] == 16.0
    assert snap["heartbeat_age"] == 1.0
    # two periods without a heartbeat: stale, and the worker rates no longer count
    snap = r.snapshot(now=121.0)
    assert snap["status"] == "stale" and snap["sessions"] is None and snap["messages_per_second"] is None


def test_once_table_and_json(fabric):
    r = fabric.run("monitor", "--once")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "mrealm m1" in r.stdout and "nodes online 2/2" in r.stdout, r.stdout
    for node in ("edge1", "edge2"):
        cols = row(r.stdout, node)
        assert cols and cols[1] == "online" and cols[-1].endswith("s ago"), r.stdout

    r = fabric.run("monitor", "--once", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    nodes = json.loads(r.stdout)
    assert [n["node"] for n in nodes] == ["edge1", "edge2"]
    for n in nodes:
        assert n["status"] == "online" and 0 <= n["heartbeat_age"] < 2.5, n
        assert n["oid"]


def test_errors(fabric):
    for words, text in ((("monitor", "--bogus"), "unknown argument '--bogus'"),
                        (("--realm", "nosuch", "monitor", "--once"), "nosuch")):
        r = fabric.run(*words)
        assert r.returncode == 1, r
        assert r.stderr.startswith("Error: ") and text in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr + r.stdout


ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FOOTER = "Ctrl-C ends the monitor"


class Screen:
    """``wampfabric shell monitor`` in a pty; ``text()`` is the last whole frame it drew (rich's
    Live redraws the view in place: cursor up, erase line)."""

    def __init__(self, fabric, *words):
        self.child = pexpect.spawn(WAMPFABRIC, ["shell", *words], env=dict(fabric.env, TERM="xterm"),
                                   encoding="utf-8", dimensions=(ROWS, COLS), timeout=15)
        self.raw = ""
        self.frames = 0

    def text(self) -> str:
        plain = ESCAPES.sub("", self.raw).replace("\r", "\n")
        end = plain.rfind(FOOTER)
        start = plain.rfind("mrealm m1", 0, end)
        return "" if end < 0 or start < 0 else plain[start:end]

    def wait(self, check, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                data = ""
            if data:
                self.raw += data
            found = check(self.text())
            if found:
                return found
        raise AssertionError(f"not on the screen: {what}\n{self.text()}")


def test_live_view_a_router_worker_then_an_edge_killed(fabric):
    """The view in a terminal: both edges online with their heartbeat ages ticking; a router
    worker started on edge1 shows up from the heartbeats; edge2 SIGKILLed goes offline, then unpaired
    its row goes; Ctrl-C ends it with exit 0."""
    s = Screen(fabric, "monitor")
    try:
        s.wait(lambda t: "nodes online 2/2" in t and all((row(t, n) or [""])[1:2] == ["online"]
                                                          for n in ("edge1", "edge2")), "both online")
        clock = set()  # the header's clock ticks every second
        s.wait(lambda t: clock.add(t.splitlines()[0]) or len(clock) >= 3, "the clock ticking")

        r = fabric.run("start", "router-worker", "edge1", "rw1")
        assert r.returncode == 0, r.stderr + r.stdout
        cols = s.wait(lambda t: (c := row(t, "edge1")) and "router 1" in c and c[3] != "-" and c,
                      "edge1's router worker and its heartbeat")
        assert cols[1] == "online" and cols[3] == "0" and cols[4] == "0.0", cols  # sessions, msgs/s

        fabric.edges["edge2"].kill()  # its connection closes: the master says on_node_shutdown
        s.wait(lambda t: row(t, "edge2")[1] == "offline" and "nodes online 1/2" in t, "edge2 offline", timeout=30)
        assert row(s.text(), "edge1")[1] == "online"
        # no heartbeat comes any more: its age ticks on locally (edge1's stays fresh)
        s.wait(lambda t: int(row(t, "edge2")[-1].split("s")[0]) >= 3, "edge2's age ticking")
        assert int(row(s.text(), "edge1")[-1].split("s")[0]) <= 2

        # edge2 unpaired: its row goes (the master announces it on the global realm)
        r = fabric.run("unpair", "node", "edge2")
        assert r.returncode == 0, r.stderr + r.stdout
        s.wait(lambda t: row(t, "edge2") is None and "nodes online 1/1" in t, "edge2's row gone", timeout=15)

        s.child.sendcontrol("c")
        s.child.expect(pexpect.EOF, timeout=10)
        s.child.close()
        assert s.child.exitstatus == 0, (s.child.exitstatus, s.child.signalstatus)
        assert "Traceback" not in s.raw
    finally:
        if s.child.isalive():
            s.child.terminate(force=True)

    r = fabric.run("monitor", "--once", "--json")
    assert r.returncode == 0, r.stderr
    status = {n["node"]: n["status"] for n in json.loads(r.stdout)}
    assert status == {"edge1": "online"}, r.stdout
