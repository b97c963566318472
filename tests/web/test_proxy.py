"""The ``reverseproxy`` web service end to end, in front of a real HTTP server (aiohttp, in a
subprocess): GET/POST with bodies and encoded paths, hop-by-hop headers dropped both ways,
X-Forwarded-*, a large response streamed, the keep-alive pool, an upstream that is down (502),
slow (504) or breaks off mid-body; with aiohttp's client and raw sockets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from apps.appnode import APPS, apps_node
from httpfront import Raw, get, wait_log
from support.nodes import REPO, free_port, router_worker, stop_node, wait_port
from wampfabric.config.base import ConfigError
from wampfabric.config.check import check_config
from wampfabric.personality import Personality


def _server(script: str):
    """A server of APPS/<script> on a free port, in its own process, for a module fixture."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(APPS / script), str(port)])
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def upstream():
    yield from _server("upstream.py")


@pytest.fixture(scope="module")
def ws_upstream():
    yield from _server("ws_upstream.py")


@pytest.fixture(scope="module")
def proxy_node(upstream, ws_upstream):
    down = free_port()  # nothing listens there
    n = apps_node({
        "wsup": {"type": "reverseproxy", "host": "127.0.0.1", "port": ws_upstream, "path": "/base",
                 "options": {"timeout": 1}},
        "up": {"type": "reverseproxy", "host": "127.0.0.1", "port": upstream, "path": "/base",
               "options": {"timeout": 1, "max_body_size": 4 * 1024 * 1024}},
        "plain": {"type": "reverseproxy", "host": "127.0.0.1", "port": upstream},
        "fwd": {"type": "reverseproxy", "host": "127.0.0.1", "port": upstream, "forwarded_port": 443,
                "forwarded_proto": "https"},
        "down": {"type": "reverseproxy", "host": "127.0.0.1", "port": down},
    })
    yield n
    stop_node(n)


def headers_of(echo: dict) -> dict:
    out: dict = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


async def test_get_post_and_paths(proxy_node, upstream):
    base = proxy_node.web_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/up/echo/a%2Fb%20c/%C3%A4?x=1&y=%20") as r:
            assert r.status == 200 and r.headers["X-Upstream"] == "yes"
            echo = await r.json()
        # the mount point maps to 'path'; the rest goes as received (an encoded '/' stays encoded)
        assert echo["method"] == "GET" and echo["path"] == "/base/echo/a%2Fb%20c/%C3%A4?x=1&y=%20"
        async with http.get(f"{base}/plain/echo") as r:
            assert (await r.json())["path"] == "/echo"
        body = bytes(range(256)) * 4096  # 1 MiB, binary
        async with http.post(f"{base}/up/echo", data=body, headers={"Content-Type": "application/x-bin"}) as r:
            echo = await r.json()
        assert echo["method"] == "POST" and echo["body"].encode("latin-1") == body
        assert headers_of(echo)["content-type"] == ["application/x-bin"]
        async with http.put(f"{base}/up/echo", json={"k": "v"}) as r:
            echo = await r.json()
        assert echo["method"] == "PUT" and json.loads(echo["body"]) == {"k": "v"}
        # the answer's status and headers as the upstream gave them; a redirect is not followed
        async with http.get(f"{base}/up/status/302", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/elsewhere"
        for code in (204, 404, 503):
            async with http.get(f"{base}/up/status/{code}") as r:
                assert r.status == code
    # a chunked request body goes on whole
    c = Raw(proxy_node.ports["web"])
    status, _, body = c.request("POST", "/up/echo", {"Transfer-Encoding": "chunked"},
                                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert status == 200 and json.loads(body)["body"] == "abcdefg"
    # HEAD: the upstream's Content-Length, no body
    status, headers, body = c.request("HEAD", "/up/sized?n=1234")
    assert status == 200 and headers["content-length"] == "1234" and body == b""
    assert c.request("GET", "/up/sized?n=5")[2] == b"xxxxx"
    c.close()


def test_hop_by_hop_headers_and_forwarded(proxy_node, upstream):
    port = proxy_node.ports["web"]
    c = Raw(port)
    status, _, body = c.request("GET", "/up/echo", {
        "Connection": "keep-alive, X-Drop", "X-Drop": "1", "Keep-Alive": "300", "TE": "trailers",
        "Proxy-Authorization": "Basic eDp5", "Proxy-Connection": "keep-alive", "Trailer": "X-T",
        "X-Custom": "kept", "X-Forwarded-For": "10.0.0.1"})
    assert status == 200
    seen = headers_of(json.loads(body))
    for hop in ("x-drop", "keep-alive", "te", "proxy-authorization", "proxy-connection", "trailer"):
        assert hop not in seen, hop
    assert seen["x-custom"] == ["kept"]
    assert seen["x-forwarded-for"] == ["10.0.0.1, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"] and seen["x-forwarded-host"] == ["x"]
    assert seen["x-forwarded-port"] == [str(port)]
    assert seen["host"] == [f"127.0.0.1:{upstream}"]
    # the answer's hop-by-hop headers (and the ones its Connection names) stay behind
    c.send(b"GET /up/hop HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    names = []
    while line := c._line():
        names.append(line.split(b":")[0].decode().lower())
    for hop in ("keep-alive", "x-secret", "proxy-foo", "trailer", "upgrade"):
        assert hop not in names, hop
    assert "x-kept" in names and names.count("date") == 1 and names.count("server") == 1
    assert names.count("connection") == 0
    c.close()
    # Crossbar.io's forwarded_port / forwarded_proto
    seen = headers_of(json.loads(get(port, "/fwd/echo")[2]))
    assert seen["x-forwarded-proto"] == ["https"] and seen["x-forwarded-port"] == ["443"]


def test_keepalive_pool(proxy_node):
    port = proxy_node.ports["web"]
    ports = {json.loads(get(port, "/up/echo")[2])["peer_port"] for _ in range(5)}
    assert len(ports) == 1  # one kept-alive upstream connection served them all


def test_large_response_streamed(proxy_node):
    total = 20 * 1024 * 1024 + 7
    c = Raw(proxy_node.ports["web"], timeout=20)
    c.send(f"GET /up/big?n={total} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert c._line().startswith(b"HTTP/1.1 200")
    headers = {}
    while line := c._line():
        k, _, v = line.decode().partition(":")
        headers[k.lower()] = v.strip()
    assert headers["transfer-encoding"] == "chunked"
    pattern = bytes(range(256)) * 256
    got = bytearray()
    while True:
        size = int(c._line(), 16)
        if size == 0:
            c._line()
            break
        got += c._exactly(size)
        c._exactly(2)
    assert len(got) == total and got[:65536] == pattern and got[-7:] == pattern[:7]
    # the connection goes on
    assert c.request("GET", "/up/sized?n=3")[2] == b"xxx"
    c.close()


def test_upstream_down_slow_broken(proxy_node):
    port = proxy_node.ports["web"]
    status, _, body = get(port, "/down/anything")
    assert status == 502 and body.startswith(b"bad gateway")
    assert wait_log(proxy_node, "reverse proxy to http://127.0.0.1:")
    t0 = time.monotonic()
    status, _, body = get(port, "/up/slow?s=5")
    assert status == 504 and time.monotonic() - t0 < 4
    assert wait_log(proxy_node, "the upstream did not answer within 1 s")
    # an answer that stops mid-body: the client sees it cut, not a clean end
    c = Raw(port, timeout=10)
    c.send(b"GET /up/slow-body HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises((EOFError, ConnectionResetError)):
        c.response()
    c.close()
    assert get(port, "/up/sized?n=2")[2] == b"xx"
    proxy_node.assert_alive()


UPGRADE = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
           "Sec-WebSocket-Version": "13"}


async def test_websocket_proxied_both_ways(proxy_node, ws_upstream):
    port = proxy_node.ports["web"]
    async with ws_connect(f"ws://127.0.0.1:{port}/wsup/chat?x=1", max_size=None,
                          additional_headers={"X-Forwarded-For": "10.0.0.1", "Keep-Alive": "timeout=5",
                                              "X-App": "a"}) as ws:
        hello = json.loads(await ws.recv())
        # the mount point maps to 'path', the query kept; hop-by-hop headers dropped, X-Forwarded-* set
        assert hello["path"] == "/base/chat?x=1"
        headers = {}
        for k, v in hello["headers"]:
            headers.setdefault(k.lower(), []).append(v)
        assert headers["host"] == [f"127.0.0.1:{ws_upstream}"] and headers["x-app"] == ["a"]
        assert headers["x-forwarded-for"] == ["10.0.0.1, 127.0.0.1"] and headers["x-forwarded-port"] == [str(port)]
        assert headers["x-forwarded-host"] == [f"127.0.0.1:{port}"] and headers["x-forwarded-proto"] == ["http"]
        assert headers["connection"] == ["Upgrade"] and headers["upgrade"] == ["websocket"]
        assert "keep-alive" not in headers
        for message in ("text ü", b"\x00\x01binary", "x" * 200_000, bytes(3_000_000)):
            await ws.send(message)
            assert await ws.recv() == message
        # the upstream closes: so does the client's connection, with the upstream's code
        await ws.send("close 4001")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4001 and ws.close_reason == "asked to"


async def test_websocket_client_closing_closes_the_upstream(proxy_node, ws_upstream):
    port = proxy_node.ports["web"]
    ws = await ws_connect(f"ws://127.0.0.1:{port}/wsup/c?id=c1")
    await ws.recv()
    # the client's connection dropped without a close handshake: the upstream's ends too
    ws.transport.abort()
    async with ws_connect(f"ws://127.0.0.1:{ws_upstream}/") as direct:
        await direct.recv()
        deadline = time.monotonic() + 5
        while True:
            await direct.send("closed c1")
            if await direct.recv() == "yes":
                break
            assert time.monotonic() < deadline, "the upstream connection stayed open"
            await asyncio.sleep(0.05)


async def test_websocket_flow_control_both_ways(proxy_node, ws_upstream):
    # 128 MiB each way while the receiving end does not read: the proxy must hold back the
    # sender (pausing its reads) instead of keeping what it reads (its memory stays flat)
    port = proxy_node.ports["web"]
    worker = router_worker(proxy_node)
    block = bytes((i * 7919 + (i >> 8) * 104729) % 251 for i in range(1 << 20))  # ws_upstream.BLOCK
    async with ws_connect(f"ws://127.0.0.1:{port}/wsup/f", max_size=None, max_queue=1, compression=None) as ws:
        await ws.recv()
        rss = worker.memory_info().rss
        # upstream -> client: the client does not read for 2 s
        await ws.send("flood 128")
        await asyncio.sleep(2.0)
        grown = worker.memory_info().rss - rss
        assert grown < 40 * 1024 * 1024, f"the proxy worker grew by {grown >> 20} MiB"
        got = 0
        while (m := await ws.recv()) != "done":
            assert m == block
            got += 1
        assert got == 128
        # client -> upstream: the upstream does not read for 2 s
        await ws.send("hold 2")

        async def send_all():
            for _ in range(128):
                await ws.send(block)

        sending = asyncio.ensure_future(send_all())
        await asyncio.sleep(1.8)
        grown = worker.memory_info().rss - rss
        assert grown < 40 * 1024 * 1024, f"the proxy worker grew by {grown >> 20} MiB"
        assert not sending.done()  # held back
        assert await asyncio.wait_for(ws.recv(), 20.0) == "held"
        for _ in range(128):
            assert await asyncio.wait_for(ws.recv(), 20.0) == block
        await sending


async def test_websocket_refused_by_the_upstream(proxy_node):
    port = proxy_node.ports["web"]
    with pytest.raises(websockets.InvalidStatus) as e:
        await ws_connect(f"ws://127.0.0.1:{port}/wsup/refuse")
    assert e.value.response.status_code == 403 and e.value.response.body == b"forbidden here\n"
    # an upstream that answers the upgrade as a plain request: its answer, then the connection closes
    c = Raw(port)
    status, headers, body = c.request("GET", "/up/echo", UPGRADE)
    assert status == 200 and headers["connection"] == "close" and json.loads(body)["path"] == "/base/echo"
    assert c.closed_by_peer()
    c.close()


def test_websocket_upstream_down_or_silent(proxy_node):
    port = proxy_node.ports["web"]
    c = Raw(port)
    status, headers, body = c.request("GET", "/down/ws", UPGRADE)
    assert status == 502 and headers["connection"] == "close" and c.closed_by_peer()
    c.close()
    # the aiohttp upstream's /slow answers after 3 s, 'up' waits 1 s
    c = Raw(port)
    t0 = time.monotonic()
    status, headers, body = c.request("GET", "/up/slow", UPGRADE)
    assert status == 504 and 0.9 < time.monotonic() - t0 < 2.5 and c.closed_by_peer()
    c.close()
    proxy_node.assert_alive()


def _config(paths: dict) -> dict:
    transport = {"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": paths}
    return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": []}],
                                       "transports": [transport]}]}


# Crossbar.io's shapes of the services of this test and of test_wsgi.py
CROSSBAR_SHAPED = {
    "proxy": {"type": "reverseproxy", "host": "backend.example.com", "port": 8080, "path": "/app",
              "forwarded_port": 443, "forwarded_proto": "https", "id": "proxy1"},
    "wsgi": {"type": "wsgi", "module": "myapp", "object": "app", "minthreads": 1, "maxthreads": 10},
}


def test_checker():
    check_config(_config(CROSSBAR_SHAPED), Personality())
    check_config(_config({"p": {"type": "reverseproxy", "host": "::1", "options": {
        "timeout": 2.5, "connect_timeout": 1, "max_connections": 10, "max_body_size": 0, "tls": True}}}),
        Personality())
    for svc, where, what in [
        ({"type": "reverseproxy", "port": 80}, "paths['a']", "'host'"),
        ({"type": "reverseproxy", "host": "a/b"}, "paths['a'].host", "not a host name"),
        ({"type": "reverseproxy", "host": "a", "port": 70000}, "paths['a'].port", "port number"),
        ({"type": "reverseproxy", "host": "a", "forwarded_port": 0}, "paths['a'].forwarded_port", "port number"),
        ({"type": "reverseproxy", "host": "a", "forwarded_proto": "ftp"}, "paths['a'].forwarded_proto", "'http'"),
        ({"type": "reverseproxy", "host": "a", "path": "app"}, "paths['a'].path", "starts with '/'"),
        ({"type": "reverseproxy", "host": "a", "options": {"timeout": 0}}, "paths['a'].options.timeout",
         "positive"),
        ({"type": "reverseproxy", "host": "a", "options": {"retries": 2}}, "paths['a'].options.retries",
         "unknown attribute"),
    ]:
        with pytest.raises(ConfigError) as e:
            check_config(_config({"a": svc}), Personality())
        assert f"$.workers[0].transports[0].{where}" in str(e.value) and what in str(e.value), str(e.value)


def test_wampfabric_check_and_crossbar_check_accept_the_same_config(tmp_path):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(_config(CROSSBAR_SHAPED)))
    # the wsgi module must be findable (the node directory is on the router worker's Python path)
    (cbdir / "myapp.py").write_text("def app(environ, start_response):\n    return []\n")

    def check(cmd):
        return subprocess.run(cmd + ["check", "--cbdir", str(cbdir)], capture_output=True, text=True, timeout=120)

    r = check([sys.executable, "-m", "wampfabric"])
    assert r.returncode == 0, r.stdout + r.stderr
    crossbar = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"
    if not crossbar.exists():
        pytest.skip("Crossbar.io is not installed (bench/setup_crossbar.sh)")
    r = check([str(crossbar)])
    assert r.returncode == 0, r.stdout + r.stderr
