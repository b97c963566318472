"""A user's plain install runs a node with a container and a guest.

The suite itself runs with Twisted installed (the test extra), which hid that a container
worker failed in a plain install: autobahn ships ``twisted/plugins/``, so
``importlib.util.find_spec("twisted")`` found a namespace package and the container installed
a Twisted reactor that was not there (``ModuleNotFoundError: No module named
'twisted.internet'``); and without autobahn a container could run no component at all.

Here the package is installed the way a user installs it -- ``pip install <repo>`` into a new
virtual environment, not editable, no extras (dependencies from the package index; pip's cache
makes it quick after the first run) -- and that environment's ``wampfabric start`` runs a node
directory with a router, an asyncio container component (an autobahn ``ApplicationSession``
class registering a procedure) and a guest worker.  This test's own autobahn client calls the
procedure.  A Twisted-flavoured component in that install fails with one line naming the
extra.  One venv for the module; it runs in ``make test`` like every other test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from support.nodes import REPO, free_port, wait_port
from support.autobahn_client import connect, w

pytestmark = pytest.mark.timeout(900)

BACKEND = '''
from autobahn.asyncio.wamp import ApplicationSession


class Backend(ApplicationSession):
    async def onJoin(self, details):
        await self.register(lambda a, b: a + b, "com.plain.add")
        print("plain backend registered", flush=True)
'''

TWISTED_BACKEND = '''
from autobahn.twisted.wamp import ApplicationSession


class Backend(ApplicationSession):
    def onJoin(self, details):
        return self.register(lambda a, b: a + b, "com.plain.add")
'''

GUEST = "import time; print('plain guest up', flush=True); time.sleep(3600)\n"


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("plain-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
                       capture_output=True, text=True, timeout=800)
    assert r.returncode == 0, f"pip install {REPO} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return venv


def node_dir(root: Path, port: int, module: str, with_guest: bool, venv: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "plainapp.py").write_text(module)
    (root / "guest.py").write_text(GUEST)
    workers = [
        {"type": "router",
         "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [
             {"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                        "subscribe": True},
              "disclose": {"caller": False, "publisher": False}, "cache": True}]}]}],
         "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
                         "serializers": ["json", "msgpack", "cbor"]}]},
        {"type": "container", "options": {"pythonpath": ["../app"]},
         "components": [{"type": "class", "classname": "plainapp.Backend", "realm": "realm1",
                         "transport": {"type": "websocket", "url": f"ws://127.0.0.1:{port}/",
                                       "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": port}}}]},
    ]
    if with_guest:
        workers.append({"type": "guest", "executable": str(venv / "bin" / "python"),
                        "arguments": ["-u", "guest.py"], "options": {"workdir": ".."}})
    cbdir = root / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {}, "workers": workers}, indent=2))
    return cbdir


def start(venv: Path, cbdir: Path) -> tuple[subprocess.Popen, Path]:
    log = cbdir.parent / "node.log"
    # the environment of a user's shell: nothing of this test run's interpreter or paths
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST"))}
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(venv / "bin" / "wampfabric"), "start", "--cbdir", str(cbdir)],
                                cwd=cbdir.parent, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    return proc, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_log(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    content = log.read_text(errors="replace")
    assert text in content, f"{text!r} not in the node log:\n{content[-4000:]}"
    return content


def test_plain_install_has_no_twisted(plain_venv):
    py = str(plain_venv / "bin" / "python")
    r = subprocess.run([py, "-c", "import twisted.internet"], capture_output=True, text=True)
    assert r.returncode != 0 and "No module named 'twisted" in r.stderr, r.stderr
    # autobahn (asyncio) is part of the default install
    r = subprocess.run([py, "-c", "import autobahn.asyncio.wamp, wampfabric"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


async def test_container_and_guest_in_a_plain_install(plain_venv, tmp_path):
    port = free_port()
    cbdir = node_dir(tmp_path / "node", port, BACKEND, with_guest=True, venv=plain_venv)
    proc, log = start(plain_venv, cbdir)
    try:
        wait_port(port, proc, timeout=60)
        wait_log(log, "plain backend registered", proc)
        wait_log(log, "plain guest up", proc)
        node = types.SimpleNamespace(realm="realm1", ws_url=f"ws://127.0.0.1:{port}/")
        client = await connect(node, "websocket", "json")
        try:
            assert await w(client.call("com.plain.add", 2, 3)) == 5
        finally:
            client.leave()
        assert proc.poll() is None
        content = log.read_text(errors="replace")
        assert "Traceback" not in content and "twisted" not in content.lower(), content[-4000:]
    finally:
        stop(proc)


def test_twisted_component_without_twisted_names_the_extra(plain_venv, tmp_path):
    port = free_port()
    cbdir = node_dir(tmp_path / "node", port, TWISTED_BACKEND, with_guest=False, venv=plain_venv)
    proc, log = start(plain_venv, cbdir)
    try:
        content = wait_log(log, "pip install 'wampfabric[twisted]'", proc)
        line = next(ln for ln in content.splitlines() if "pip install 'wampfabric[twisted]'" in ln)
        assert "plainapp.Backend" in line and "needs Twisted, which is not installed" in line, line
        assert "Traceback" not in content, content[-4000:]
    finally:
        stop(proc)
