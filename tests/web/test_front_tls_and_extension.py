"""The HTTP front over TLS (keep-alive, HSTS, a WebSocket session through the same port), and the
extension point as docs/web.md shows it: its example service, taken from the page, served by a
node as a ``resource`` and checked with its personality."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from pathlib import Path

import pytest

from support.nodes import FULL_PERMS, REPO, free_port, start_node, stop_node


def _tls_web_config(pki):
    def config(ports, rs_path):
        ports.clear()
        ports.update(web=free_port())
        tls = {"key": pki["server.key"], "certificate": pki["server.pem"]}
        return {"version": 2, "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
            "transports": [{"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1",
                                                        "port": ports["web"], "tls": tls},
                            "options": {"hsts": True, "hsts_max_age": 600},
                            "paths": {"/": {"type": "json", "value": {"tls": True}},
                                      "ws": {"type": "websocket", "serializers": ["json"]}}}]}]}
    return config


@pytest.fixture(scope="module")
def tls_web(pki):
    n = start_node(_tls_web_config(pki))
    yield n
    stop_node(n)


def _client_context(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki["ca.pem"])
    ctx.check_hostname = False
    return ctx


def test_keep_alive_and_hsts_over_tls(tls_web, pki):
    raw = socket.create_connection(("127.0.0.1", tls_web.ports["web"]), timeout=5)
    with _client_context(pki).wrap_socket(raw) as s:
        f = s.makefile("rb")
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert f.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := f.readline()) != b"\r\n":
                k, _, v = line.decode().partition(":")
                headers[k.lower()] = v.strip()
            assert headers["strict-transport-security"] == "max-age=600"
            assert json.loads(f.read(int(headers["content-length"]))) == {"tls": True}


async def test_wamp_session_over_wss_through_the_front(tls_web, pki):
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.serializer import JsonSerializer
    from autobahn.wamp.types import ComponentConfig

    joined = asyncio.get_running_loop().create_future()

    class S(ApplicationSession):
        async def onJoin(self, details):
            await self.register(lambda: "pong", "com.tls.ping")
            joined.set_result(await self.call("com.tls.ping"))
            self.leave()

    url = f"wss://127.0.0.1:{tls_web.ports['web']}/ws"
    factory = WampWebSocketClientFactory(lambda: S(ComponentConfig("realm1")), url=url,
                                         serializers=[JsonSerializer()])
    transport, _ = await asyncio.get_running_loop().create_connection(
        factory, "127.0.0.1", tls_web.ports["web"], ssl=_client_context(pki), server_hostname="localhost")
    try:
        assert await asyncio.wait_for(joined, 10) == "pong"
    finally:
        transport.close()


def _docs_example() -> str:
    text = (REPO / "docs" / "web.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_documented_example_service(tmp_path):
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "hello.py").write_text(_docs_example())

    def config(ports, rs_path):
        root = Path(rs_path).parent
        (root / "myapp").mkdir()
        (root / "myapp" / "__init__.py").write_text("")
        (root / "myapp" / "hello.py").write_text(_docs_example())
        ports.clear()
        ports.update(web=free_port())
        return {"version": 2, "workers": [{
            "type": "router", "options": {"pythonpath": [".."]}, "realms": [],
            "transports": [{"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
                            "paths": {"hello": {"type": "resource", "classname": "myapp.hello.HelloService"}}}]}]}

    n = start_node(config)
    try:
        import urllib.request

        base = f"http://127.0.0.1:{n.ports['web']}/hello"
        with urllib.request.urlopen(base + "?name=docs", timeout=5) as r:
            assert r.read() == b"hello, docs\n"
        with urllib.request.urlopen(urllib.request.Request(base, data=b"poster"), timeout=5) as r:
            assert r.read() == b"hello, poster\n"
    finally:
        stop_node(n)
    # and as a type of its own, in a personality
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        from myapp.hello import MyPersonality

        from wampfabric.config.base import ConfigError
        from wampfabric.config.check import check_config

        cfg = {"version": 2, "workers": [{"type": "router", "realms": [], "transports": [
            {"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": {"/": {"type": "hello"}}}]}]}
        check_config(cfg, MyPersonality())
        cfg["workers"][0]["transports"][0]["paths"]["/"]["greeting"] = ""
        with pytest.raises(ConfigError, match=r"paths\['/'\]\.greeting"):
            check_config(cfg, MyPersonality())
    finally:
        sys.path.remove(str(tmp_path))
        for mod in [m for m in sys.modules if m == "myapp" or m.startswith("myapp.")]:
            del sys.modules[mod]
