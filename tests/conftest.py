"""Shared fixtures. The helpers they use live in tests/support/ (nodes.py: free ports, node configs,
starting and stopping nodes; wamp_raw.py: a raw WAMP peer; authnode.py: the authentication test node;
autobahn_client.py: autobahn-python sessions; advanced.py: the node with the advanced profile's
roles, identities and event history, and raw peers on it; js.py: the Node.js client scripts;
tls.py: a test PKI and the TLS node; nodecli.py: the node's command line and node directories;
cookienode.py: the cookie tests' node); ``pytest`` puts tests/ on sys.path
(pyproject.toml), so tests import them as ``support.*``."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from support import advanced, js, tls
from support.autobahn_client import closing_sessions, connect
from support.nodes import start_node, stop_node


@pytest.fixture(scope="session")
def node():
    n = start_node()
    yield n
    stop_node(n)


def _sessions(node):
    """``await connect_(transport, serializer, identity=None, **kw)`` -> a joined autobahn session on
    ``node`` (``identity``: a transport of ``advanced.IDENTITIES``), closed after the test."""

    async def _connect(transport="websocket", serializer="json", identity=None, **kw):
        if identity is not None:
            kw["url"] = advanced.identity_url(node, identity)
        return await connect(node, transport, serializer, **kw)

    return closing_sessions(node, _connect)


@pytest.fixture
async def client(node):
    """``await client(transport, serializer, ...)`` -> joined session, closed after the test."""
    async for connect_ in _sessions(node):
        yield connect_


@pytest.fixture(scope="module")
def anode():
    """A node of ``advanced.advanced_config``, one per test module."""
    n = start_node(advanced.advanced_config)
    yield n
    stop_node(n)


@pytest.fixture
async def ac(anode):
    """``await ac(transport="websocket", serializer="json", identity=None)`` -> joined autobahn session."""
    async for connect_ in _sessions(anode):
        yield connect_


@pytest.fixture
def raw(anode):
    """``raw(features, **kw)`` -> joined raw peer, closed after the test."""
    peers = []

    def _make(features=None, **kw):
        p = advanced.raw_peer(anode, features, **kw)
        peers.append(p)
        return p

    yield _make
    for p in peers:
        p.close()
    anode.assert_alive()


@pytest.fixture(scope="session")
def js_deps():
    """tests/js/node_modules installed from the lockfile (npm ci), once per session."""
    return js.install_deps()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """``tls.make_pki``: CA, server, client and rogue client certificates (file paths)."""
    return tls.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def ed_key():
    """An Ed25519 key pair for cryptosign: (private seed, public key), hex."""
    return tls.make_ed_key()


@pytest.fixture(scope="module")
def tls_node(pki, ed_key):
    """A node of ``tls.tls_config``: TLS WebSocket (port ``ws``) and TLS RawSocket (port ``rs``)."""
    node = start_node(tls.tls_config(pki, ed_key))
    yield node
    stop_node(node)


# Every temporary directory the test process makes with tempfile (node directories, masters, pid
# files ...) goes into one directory of this run, removed when the run ends, so that nothing is
# left in /tmp; WAMPFABRIC_KEEP_TEST_DIRS=1 keeps it (its path is printed).
_RUN_TMP: str | None = None


def pytest_configure(config):
    global _RUN_TMP
    if _RUN_TMP is None and not hasattr(config, "workerinput"):
        _RUN_TMP = tempfile.mkdtemp(prefix="wf-tests-")
        tempfile.tempdir = _RUN_TMP


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Every test cleans up the processes it starts; after the last teardown (session fixtures
    included) anything of ours still running is a leak: named, killed, and the run fails, so
    that a leak shows up in CI instead of as a stray node on the machine."""
    import psutil

    try:
        left = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return
    if not left:
        return
    names = []
    for p in left:
        try:
            names.append(f"{p.pid} {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.Error:
            pass
    if names:
        print(f"\n{len(names)} process(es) started by the tests were still running at the end (killed):\n  "
              + "\n  ".join(names))
        if session.exitstatus == 0:
            session.exitstatus = 1


def pytest_unconfigure(config):
    global _RUN_TMP
    if _RUN_TMP is None:
        return
    tempfile.tempdir = None
    if os.environ.get("WAMPFABRIC_KEEP_TEST_DIRS"):
        print(f"\ntest directories kept in {_RUN_TMP}")
    else:
        shutil.rmtree(_RUN_TMP, ignore_errors=True)
    _RUN_TMP = None
