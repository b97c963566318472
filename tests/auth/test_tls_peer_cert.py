"""A dynamic ``tls`` authenticator written for Crossbar.io finds the client certificate where
Crossbar.io's TransportDetails put it: ``details.transport.peer_cert`` (Autobahn's
peer_certificate_details shape; ``client_cert`` too, as Crossbar.io also gives it), and the session's
``wamp.session.get`` shows the TLS transport (autobahn-python clients)."""

from __future__ import annotations

import asyncio

import pytest

from support.nodes import free_port, start_node, stop_node
from support.autobahn_client import connect, w
from support.tls import client_ctx, tls_join

AUTH_PROC = "com.compatfix.authenticate_tls"


@pytest.fixture(scope="module")
def dyn_tls_node(pki):
    ports = {}

    def config(p, rs_path):
        ports.update(ws=free_port(), wss=free_port())
        p.clear()
        p.update(ports)
        tls = {"key": pki["server.key"], "certificate": pki["server.pem"], "ca_certificates": [pki["ca.pem"]]}
        perms = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                         "subscribe": True}}]
        return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
            {"name": "backend", "permissions": perms}, {"name": "user", "permissions": perms}]}],
            "transports": [
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["ws"]},
                 "auth": {"anonymous": {"type": "static", "role": "backend"}}},
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["wss"],
                                                   "tls": tls},
                 "auth": {"tls": {"type": "dynamic", "authenticator": AUTH_PROC}}},
            ]}]}

    node = start_node(config)
    node.ports.update(ports)
    yield node
    stop_node(node)


async def test_dynamic_tls_authenticator_gets_peer_cert(dyn_tls_node, pki):  # noqa: F811
    backend = await connect(dyn_tls_node, "websocket", "json", url=f"ws://127.0.0.1:{dyn_tls_node.ports['ws']}/")
    seen = []

    def authenticate(realm, authid, details):
        seen.append(details)
        cert = (details.get("transport") or {}).get("peer_cert")  # what a Crossbar.io authenticator reads
        if not cert:
            raise Exception("com.compatfix.no_certificate", "no peer_cert in details.transport")
        return {"role": "user", "authid": cert["subject"]["cn"]}

    try:
        await w(backend.register(authenticate, AUTH_PROC))
        session, details = await tls_join(f"wss://localhost:{dyn_tls_node.ports['wss']}/", pki, client_ctx(pki),
                                       authmethods=["tls"])
        assert (details.authmethod, details.authid, details.authrole) == ("tls", "client-alice", "user")
        t = seen[0]["transport"]
        cert = t["peer_cert"]
        assert t["client_cert"] == cert
        assert cert["sha1"] == pki["client_sha1"] and cert["issuer"] == {"cn": "Test CA"}
        assert cert["expired"] is False and len(cert["not_after"]) == 15 and cert["not_after"].endswith("Z")
        assert (t["channel_type"], t["channel_framing"], t["is_secure"]) == ("tls", "websocket", True)
        assert len(t["channel_id"]["tls-unique"]) == 32
        info = await w(session.call("wamp.session.get", details.session))
        assert info["transport"]["peer_cert"]["sha256"] == cert["sha256"]
        assert info["transport"]["channel_type"] == "tls" and info["authmethod"] == "tls"
        session.leave()
    finally:
        await backend.shutdown()
        await asyncio.sleep(0)
