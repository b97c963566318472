"""``wampfabric stop`` / ``status`` / ``start`` verify the process a pid file names (start time,
command line) before trusting it: a pid file naming some other process (ours without
``created``, Crossbar.io's ``{"pid", "argv", "options"}``, a hand-written one) never gets that
process signalled.  Through the CLI, with real processes."""

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

from support.nodecli import T, run_cli, small_config
from support.nodes import free_port, wait_port


def crossbar_pid_file(pid: int, cbdir: Path) -> str:
    """Exactly what Crossbar.io 26.10 writes (crossbar/node/main.py, ``_run_command_start``)."""
    data = {"pid": pid, "argv": ["/usr/local/bin/crossbar", "start", "--cbdir", str(cbdir)],
            "options": {"cbdir": str(cbdir), "config": None, "loglevel": "info", "personality": "standalone"}}
    return json.dumps(data, sort_keys=False, indent=4, separators=(", ", ": "), ensure_ascii=False) + "\n"


@pytest.fixture
def sleeper():
    """A process that is no node: it must survive every command of these tests."""
    p = subprocess.Popen(["sleep", "300"])
    yield p
    p.kill()
    p.wait()


@pytest.fixture
def cbdir():
    d = Path(tempfile.mkdtemp(prefix="wf-pid-")) / ".crossbar"
    d.mkdir()
    return d


def assert_alive(p: subprocess.Popen) -> None:
    time.sleep(0.2)
    assert p.poll() is None, f"process {p.pid} was signalled (exit {p.returncode})"


@pytest.mark.parametrize("fmt", ["bare", "crossbar", "garbage-created"])
def test_stop_and_status_refuse_a_pid_file_naming_another_process(cbdir, sleeper, fmt):
    if fmt == "bare":  # a pid file written by hand: echo "{\"pid\": $!}" > .crossbar/node.pid
        (cbdir / "node.pid").write_text(json.dumps({"pid": sleeper.pid}))
    elif fmt == "crossbar":
        (cbdir / "node.pid").write_text(crossbar_pid_file(sleeper.pid, cbdir))
    else:
        (cbdir / "node.pid").write_text(json.dumps({"pid": sleeper.pid, "created": "yesterday"}))
    r = run_cli("stop", "--cbdir", str(cbdir))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"Not stopping PID {sleeper.pid}: process {sleeper.pid} is not a wampfabric or Crossbar.io node " \
           f"(command line: sleep 300)" in r.stderr
    assert str(cbdir / "node.pid") in r.stderr and "Traceback" not in r.stdout + r.stderr
    assert_alive(sleeper)
    assert (cbdir / "node.pid").exists()  # not ours to remove: the operator decides
    r = run_cli("stop", "--cbdir", str(cbdir), "--kill")
    assert r.returncode == 1
    assert_alive(sleeper)
    r = run_cli("status", "--cbdir", str(cbdir))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "No node running" in r.stdout and "Node running" not in r.stdout
    assert f"names PID {sleeper.pid}, but process {sleeper.pid} is not a wampfabric or Crossbar.io node" in r.stderr
    assert_alive(sleeper)


def test_stale_crossbar_pid_file_is_removed_by_stop(cbdir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cbdir / "node.pid").write_text(crossbar_pid_file(dead.pid, cbdir))
    r = run_cli("status", "--cbdir", str(cbdir))
    assert r.returncode == 3 and "No node running" in r.stdout
    r = run_cli("stop", "--cbdir", str(cbdir))
    assert r.returncode == 3
    assert f"Removed stale pid file {cbdir / 'node.pid'} (process {dead.pid} does not exist)" in r.stderr
    assert not (cbdir / "node.pid").exists()


def test_a_real_node_replaces_a_foreign_pid_file_and_is_stopped_through_a_crossbar_format_one(cbdir, sleeper):
    port = free_port()
    (cbdir / "config.json").write_text(json.dumps(small_config(port, guest=False)))
    (cbdir / "node.pid").write_text(crossbar_pid_file(sleeper.pid, cbdir))
    log = cbdir.parent / "node.log"
    with open(log, "wb") as logf:
        node = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(cbdir)],
                                cwd=cbdir.parent, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, node, timeout=T)
        text = log.read_text()
        assert f"Replaced pid file {cbdir / 'node.pid'} naming a process that is not this node's: process " \
               f"{sleeper.pid} is not a wampfabric or Crossbar.io node" in text, text
        assert json.loads((cbdir / "node.pid").read_text())["pid"] == node.pid
        r = run_cli("status", "--cbdir", str(cbdir))
        assert r.returncode == 0 and f"(PID {node.pid})" in r.stdout, r.stdout + r.stderr
        # a pid file without a start time (Crossbar.io's format) naming the live node: its command line verifies it
        (cbdir / "node.pid").write_text(crossbar_pid_file(node.pid, cbdir))
        workers = psutil.Process(node.pid).children(recursive=True)
        assert workers
        r = run_cli("stop", "--cbdir", str(cbdir))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"Stopping node (PID {node.pid})" in r.stdout and "Node stopped" in r.stdout
        assert node.wait(T) == 0
        assert not (cbdir / "node.pid").exists()
        assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        assert_alive(sleeper)
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def test_a_node_of_another_directory_is_not_stopped(cbdir, tmp_path):
    """A pid file without a start time whose PID now belongs to a node of another node directory."""
    port = free_port()
    other = tmp_path / "other" / ".crossbar"
    other.mkdir(parents=True)
    (other / "config.json").write_text(json.dumps(small_config(port, guest=False)))
    with open(tmp_path / "node.log", "wb") as logf:
        node = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(other)],
                                cwd=tmp_path, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, node, timeout=T)
        (cbdir / "node.pid").write_text(json.dumps({"pid": node.pid}))
        r = run_cli("stop", "--cbdir", str(cbdir))
        assert r.returncode == 1
        assert f"process {node.pid} is the node of another node directory ({other})" in r.stderr
        time.sleep(0.2)
        assert node.poll() is None
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        try:
            node.wait(T)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def test_a_node_run_under_another_program_name_is_verified_by_its_own_pid_file(cbdir):
    """Our pid file records the start time and the arguments: a node started by a launcher whose
    name says neither wampfabric nor crossbar (a frozen or wrapped node) is still recognised."""
    port = free_port()
    (cbdir / "config.json").write_text(json.dumps(small_config(port, guest=False)))
    launcher = cbdir.parent / "edge-router"
    launcher.write_text(f"#!{sys.executable}\nimport sys\nfrom wampfabric.node.cli import main\nmain()\n")
    launcher.chmod(0o755)
    with open(cbdir.parent / "node.log", "wb") as logf:
        node = subprocess.Popen([str(launcher), "start", "--cbdir", str(cbdir)], cwd=cbdir.parent, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, node, timeout=T)
        r = run_cli("status", "--cbdir", str(cbdir))
        assert r.returncode == 0 and f"(PID {node.pid})" in r.stdout, r.stdout + r.stderr
        r = run_cli("stop", "--cbdir", str(cbdir))
        assert r.returncode == 0, r.stdout + r.stderr
        assert node.wait(T) == 0
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
