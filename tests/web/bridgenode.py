"""The node of the HTTP bridge and long-poll tests: realm1 (the anonymous role may do everything,
plus the roles a test names), a ``web`` transport with the test's paths, the RawSocket and
restricted WebSocket transports support.nodes' Node knows, and WebSocket sessions for a fixture."""

from __future__ import annotations

from support.autobahn_client import closing_sessions, connect
from support.nodes import FULL_PERMS


def bridge_node_config(ports: dict, paths: dict, roles: list | None = None) -> dict:
    """A config for ``support.nodes.start_node`` (which picks ``ports``)."""
    return {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]},
                                                   *(roles or [])]}],
            "transports": [
                {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
                 "paths": paths},
                {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["rawsocket"]}},
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["restricted"]}},
            ],
        }],
    }


async def ws_sessions(node):
    """For a ``sessions`` fixture: ``await sessions()`` -> an autobahn session (WebSocket, JSON)
    on ``node``, closed after the test."""
    async def _connect():
        return await connect(node, "websocket", "json")

    async for c in closing_sessions(node, _connect):
        yield c
