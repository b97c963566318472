"""Node extensions and worker booters: what a personality adds to the node by composition.

A personality lists node extensions (objects with ``async start(node)`` / ``async stop()``) that the
node starts and stops with itself, and boots every worker type through its ``WORKER_BOOTERS``
table.  The tests run a real node process whose personality (``ext-test``) is registered in
``PERSONALITIES`` by a small launcher and selected with ``--personality``, as any personality is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.nodes import FULL_PERMS, free_port, wait_port

T = 30.0

LAUNCHER = textwrap.dedent('''
    import os

    from wampfabric.node.cli import main
    from wampfabric.personality import PERSONALITIES, Personality
    from wampfabric.transport.local import connect_local

    RECORD = os.environ["EXT_TEST_RECORD"]


    def record(*words):
        with open(RECORD, "a") as f:
            f.write(" ".join(str(w) for w in words) + "\\n")


    class Recorder:
        """Records its start and stop with what the management API shows at that moment."""

        async def start(self, node):
            # a session of its own on the node management router, as an uplink would have
            self.session = await connect_local(node.router, node.realm_name, authid="recorder", peer="recorder")
            status = await self.session.call("crossbar.get_status")
            record("start", status["personality"], "workers", status["running_workers"])
            await self.session.subscribe("crossbar.on_worker_ready", lambda info, **_: record("ready", info["id"]))

        async def stop(self):
            status = await self.session.call("crossbar.get_status")
            record("stop", "workers", status["running_workers"])
            await self.session.leave()


    class Failing:
        async def start(self, node):
            raise RuntimeError("the master is not reachable")

        async def stop(self):
            record("stop of an extension that never started")


    def recording(booter):
        async def boot(node, worker_id, config):
            record("boot", config["type"], worker_id)
            await booter(node, worker_id, config)
        return boot


    class ExtPersonality(Personality):
        NAME = "ext-test"
        WORKER_BOOTERS = {t: recording(b) for t, b in Personality.WORKER_BOOTERS.items()}
        NODE_EXTENSIONS = (Recorder, Failing) if os.environ.get("EXT_TEST_FAIL") else (Recorder,)


    PERSONALITIES[ExtPersonality.NAME] = ExtPersonality
    main()
''')


def config(port: int) -> dict:
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {"id": "router1", "type": "router",
             "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
             "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port}}]},
            {"id": "container1", "type": "container", "options": {}},
            {"id": "guest1", "type": "guest", "executable": sys.executable,
             "arguments": ["-c", "import time; time.sleep(600)"]},
        ],
    }


@pytest.fixture
def ext_node(tmp_path):
    """Start a node of personality ext-test; yields a function that starts it with an environment."""
    procs = []
    port = free_port()
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(config(port)))
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    record = tmp_path / "record.txt"

    def start(**env):
        log = open(tmp_path / "node.log", "wb")
        proc = subprocess.Popen([sys.executable, str(launcher), "start", "--cbdir", str(cbdir),
                                 "--personality", "ext-test"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1", EXT_TEST_RECORD=str(record), **env))
        log.close()
        procs.append(proc)
        return proc

    start.port = port
    start.log = lambda: (tmp_path / "node.log").read_text(errors="replace")
    start.record = lambda: record.read_text().splitlines() if record.exists() else []
    yield start
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def wait_log(ext_node, text: str) -> None:
    deadline = time.monotonic() + T
    while text not in ext_node.log():
        assert time.monotonic() < deadline, f"{text!r} not in node log:\n{ext_node.log()[-3000:]}"
        time.sleep(0.05)


def test_a_personality_extension_starts_before_the_workers_and_stops_after_them(ext_node):
    proc = ext_node()
    wait_port(ext_node.port, proc, timeout=T)
    wait_log(ext_node, " worker(s): ")
    assert "Node extension Recorder started" in ext_node.log()
    # every worker type went through the personality's booter table, after the extension had started
    # (which already saw the management API, with no worker yet) and with its events reaching it
    rec = ext_node.record()
    assert rec[:4] == ["start ext-test workers 0", "boot router router1", "ready router1",
                       "boot container container1"], rec
    assert rec[4:] == ["ready container1", "boot guest guest1", "ready guest1"], rec

    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(T) == 0, ext_node.log()[-3000:]
    assert ext_node.record()[-1] == "stop workers 0"  # the workers were stopped before it
    assert "Node extension Recorder stopped" in ext_node.log()


def test_an_extension_that_cannot_start_fails_the_node_start_with_one_line(ext_node):
    proc = ext_node(EXT_TEST_FAIL="1")
    assert proc.wait(T) == 1, ext_node.log()[-3000:]
    log = ext_node.log()
    assert "Node could not start: node extension Failing: RuntimeError: the master is not reachable" in log
    assert "Traceback" not in log
    # no worker was booted; the extension that had started was stopped, the failed one was not
    assert ext_node.record() == ["start ext-test workers 0", "stop workers 0"], ext_node.record()
