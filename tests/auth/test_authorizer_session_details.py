"""What a dynamic authorizer gets as its session argument: Crossbar.io 26.10's keys (session, authid,
authrole, authmethod, authprovider, authextra, transport -- not the meta API's longer SessionDetails),
with Crossbar.io's full transport details; autobahn-python clients on a real node."""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError

from support.nodes import free_port, start_node, stop_node
from support.autobahn_client import connect, w

AUTHORIZER = "com.compatfix.authorize"


@pytest.fixture(scope="module")
def authz_node():
    ports = {}

    def config(p, rs_path):
        ports.update(backend=free_port(), ws=free_port())
        p.clear()
        p.update(ports)
        perms = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                         "subscribe": True}}]
        return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
            {"name": "backend", "permissions": perms}, {"name": "dynrole", "authorizer": AUTHORIZER}]}],
            "transports": [
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["backend"]},
                 "auth": {"anonymous": {"type": "static", "role": "backend"}}},
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["ws"]},
                 "auth": {"anonymous": {"type": "static", "role": "dynrole"}}},
            ]}]}

    node = start_node(config)
    node.ports.update(ports)
    yield node
    stop_node(node)


async def test_authorizer_session_argument_is_crossbar_shaped(authz_node):
    backend = await connect(authz_node, url=f"ws://127.0.0.1:{authz_node.ports['backend']}/")
    client = None
    asked = []

    def authorize(session, uri, action, options=None):
        asked.append((session, uri, action))
        return uri.startswith("com.compatfix.allowed")

    try:
        await w(backend.register(authorize, AUTHORIZER))
        client = await connect(authz_node, serializer="msgpack", url=f"ws://127.0.0.1:{authz_node.ports['ws']}/")
        with pytest.raises(ApplicationError):
            await w(client.call("com.compatfix.allowed.nothing_registered"))
        session, uri, action = asked[0]
        assert (uri, action) == ("com.compatfix.allowed.nothing_registered", "call")
        assert set(session) == {"session", "authid", "authrole", "authmethod", "authprovider", "authextra",
                                "transport"}, sorted(session)
        assert session["session"] == client.session_id and session["authrole"] == "dynrole"
        t = session["transport"]
        assert (t["channel_type"], t["channel_framing"], t["websocket_protocol"]) == ("tcp", "websocket",
                                                                                     "wamp.2.msgpack")
        assert t["http_headers_received"]["user-agent"].startswith("AutobahnPython"), t
    finally:
        if client is not None:
            await client.shutdown()
        await backend.shutdown()
