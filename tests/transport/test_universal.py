"""Crossbar.io's ``universal`` transport: RawSocket, WebSocket and web services on one
port, told apart by the first byte of each connection."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from support.nodes import free_port, start_node, stop_node
from support.autobahn_client import connect


@pytest.fixture(scope="module")
def universal_node():
    ports = {}

    def config(p, rs_path):
        ports.update(web=free_port())
        p.clear()
        p.update(ports)
        perms = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                         "subscribe": True}}]
        return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
            {"name": "anonymous", "permissions": perms}]}], "transports": [{
                "type": "universal",
                "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"], "backlog": 1024},
                "rawsocket": {"serializers": ["cbor", "msgpack", "json"]},
                "websocket": {"ws": {"type": "websocket", "serializers": ["cbor", "msgpack", "json"]}},
                "web": {"paths": {"/": {"type": "static", "directory": "../web"}, "info": {"type": "nodeinfo"}}},
            }]}]}

    n = start_node(config)
    n.ports["rawsocket"] = n.ports["web"]  # the same port carries RawSocket
    yield n
    stop_node(n)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket-tcp"])
async def test_wamp_on_the_universal_port(universal_node, transport):
    callee = await connect(universal_node, transport, "msgpack")
    caller = await connect(universal_node, "websocket" if transport != "websocket" else "rawsocket-tcp", "cbor")
    try:
        await callee.register(lambda x: x * 2, "com.u.double")
        assert await asyncio.wait_for(caller.call("com.u.double", 21), 5) == 42
    finally:
        await caller.shutdown()
        await callee.shutdown()


def test_web_paths_on_the_universal_port(universal_node):
    base = f"http://127.0.0.1:{universal_node.ports['web']}"
    with urllib.request.urlopen(base + "/", timeout=5) as r:
        assert b"hello from static" in r.read()
    with urllib.request.urlopen(base + "/info", timeout=5) as r:
        assert b"realm1" in r.read()


def test_garbage_and_silence_do_not_break_it(universal_node):
    for junk in (b"\x00\x01\x02\x03\r\n\r\n", b"\x7f\xff\xff\xff", b"\xff" * 100 + b"\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", universal_node.ports["web"]), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    universal_node.assert_alive()
    test_web_paths_on_the_universal_port(universal_node)
