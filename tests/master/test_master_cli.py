"""The master's command line as a user runs it: ``wampfabric master init|start|status|stop``."""

from __future__ import annotations

import json
import os
import stat

import pytest

from masternode import Key, Master, cli, fabric_connect
from support.autobahn_client import JoinFailed


def test_init_writes_keys_and_a_loopback_config(tmp_path):
    cbdir = tmp_path / "m"
    r = cli("master", "init", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    assert "ws://127.0.0.1:9000/ws" in r.stdout
    assert stat.S_IMODE(os.stat(cbdir / "key.priv").st_mode) == 0o600
    pub = (cbdir / "key.pub").read_text()
    assert "public-key-ed25519:" in pub and "private" not in pub
    cfg = json.loads((cbdir / "config.json").read_text())
    worker = cfg["workers"][0]
    assert (worker["id"], worker["type"]) == ("cfrouter1", "router")
    assert [r["name"] for r in worker["realms"]] == ["com.crossbario.fabric"]
    transport, backend = worker["transports"]
    assert transport["type"] == "web"
    # the backend's Unix socket (the change engine): cryptosign through the same authenticator
    assert backend["endpoint"] == {"type": "unix", "path": "sock2"}
    assert backend["auth"] == {"cryptosign": {"type": "function", "create": "wampfabric.master.authenticator.create"}}
    assert transport["endpoint"] == {"type": "tcp", "interface": "127.0.0.1", "port": 9000}  # loopback (D12)
    ws = transport["paths"]["ws"]
    assert ws["type"] == "websocket" and ws["serializers"] == ["cbor", "msgpack", "json"]
    # cryptosign only, through the master's in-process authenticator: nothing anonymous (D2)
    assert ws["auth"] == {"cryptosign": {"type": "function", "create": "wampfabric.master.authenticator.create"}}
    assert [c["classname"] for c in worker["components"]] == ["wampfabric.master.domain.DomainController"]
    r = cli("master", "check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr


def test_init_refuses_to_overwrite_and_checks_listen(tmp_path):
    cbdir = tmp_path / "m"
    assert cli("master", "init", "--cbdir", str(cbdir), "--listen", "127.0.0.1:29999").returncode == 0
    before = (cbdir / "config.json").read_text()
    r = cli("master", "init", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "already has a node config" in r.stderr
    assert (cbdir / "config.json").read_text() == before
    for bad in ("localhost", "127.0.0.1:0", "127.0.0.1:70000", "nohost:9000", ":9000"):
        r = cli("master", "init", "--cbdir", str(tmp_path / "other"), "--listen", bad)
        assert r.returncode == 2 and "IP-ADDRESS:PORT" in r.stderr, (bad, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "other").exists()


def test_start_without_init_says_what_to_do(tmp_path):
    cbdir = tmp_path / "nothing"
    r = cli("master", "start", "--cbdir", str(cbdir), timeout=30)
    assert r.returncode == 1
    assert f"wampfabric master init --cbdir {cbdir}" in r.stderr
    assert "Traceback" not in r.stderr and not cbdir.exists()


def test_start_status_stop(tmp_path):
    su = Key()
    m = Master(superuser=su)
    m.init()
    try:
        m.start()
        assert "Master ready (global database" in m.log()
        assert (m.cbdir / ".db-controller").is_dir()
        r = cli("master", "status", "--cbdir", str(m.cbdir), env=m.env)
        assert r.returncode == 0, r.stderr
        assert "running" in r.stdout
        assert m.stop() == 0
        r = cli("master", "status", "--cbdir", str(m.cbdir), env=m.env)
        assert r.returncode == 3 and "No node running" in r.stdout
    finally:
        m.kill()


def test_unreadable_superuser_key_file_stops_the_start_with_a_clear_error(tmp_path):
    m = Master(env={"CROSSBAR_FABRIC_SUPERUSER": str(tmp_path / "missing.pub")})
    m.init()
    try:
        m.start(wait=False)
        m.proc.wait(60)
        assert m.proc.returncode != 0
        assert "cannot read the superuser's key file" in m.log()
    finally:
        m.kill()


async def test_the_master_listens_on_loopback_only_and_grants_nothing_without_a_key(tmp_path):
    import asyncio

    from support.autobahn_client import connect

    m = Master()
    m.init()
    try:
        m.start()
        # an anonymous WAMP client is refused: cryptosign is the only method
        class _Node:
            ws_url = m.url
            realm = "com.crossbario.fabric"

        with pytest.raises(JoinFailed) as ei:
            await connect(_Node())
        assert ei.value.reason == "wamp.error.no_auth_method"
        # with no superuser configured, a key that calls itself superuser is just an unknown user
        with pytest.raises(JoinFailed) as ei:
            await fabric_connect(m.url, Key(), authid="superuser")
        assert ei.value.reason == "fabric.auth-failed.invalid-parameters"
        # the listener is on 127.0.0.1 only
        import psutil

        listening = {(c.laddr.ip, c.laddr.port) for p in psutil.Process(m.proc.pid).children(recursive=True)
                     for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", m.port)}
        await asyncio.sleep(0)
    finally:
        m.stop()


async def test_tls_when_configured(tmp_path):
    """The user adds ``tls`` to the listener's endpoint, as on any node: the master speaks wss, and
    cryptosign may bind the signature to the TLS channel."""
    from support import tls

    pki = tls.make_pki(tmp_path)
    su = Key()
    m = Master(superuser=su)
    m.init()
    path = m.cbdir / "config.json"
    cfg = json.loads(path.read_text())
    cfg["workers"][0]["transports"][0]["endpoint"]["tls"] = {"key": pki["server.key"],
                                                             "certificate": pki["server.pem"]}
    path.write_text(json.dumps(cfg))
    try:
        m.start()
        url = f"wss://localhost:{m.port}/ws"
        ctx = tls.client_ctx(pki, cert=None)
        s = await fabric_connect(url, su, ssl=ctx, authextra={"channel_binding": "tls-unique"})
        assert s.joined.result().authid == "superuser"
        assert (await s.call("crossbarfabriccenter.domain.get_status"))["type"] == "domain"
        await s.close()
        # plain WebSocket to the TLS listener gets nowhere
        with pytest.raises(Exception):
            await fabric_connect(f"ws://127.0.0.1:{m.port}/ws", su, timeout=3)
    finally:
        m.stop()
