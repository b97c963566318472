"""The ``asgi`` web service end to end: a Starlette application (with lifespan) and plain ASGI
applications served by a node started with the CLI, spoken to with aiohttp's client and raw
sockets; the http scope, streaming as produced, the client's disconnect, backpressure, an
application that raises (the worker keeps serving), lifespan startup/shutdown and its failures."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import aiohttp
import pytest

from apps.appnode import APPS, app_state as state, apps_node, check_backpressure, wait_for
from httpfront import Raw, get, wait_log
from support.nodes import free_port, start_node, stop_node
from wampfabric.config.base import ConfigError
from wampfabric.config.check import check_config
from wampfabric.personality import Personality

PATHS = {
    "star": {"type": "asgi", "module": "starlette_app", "object": "app"},
    "raw": {"type": "asgi", "module": "asgi_apps", "object": "app", "max_body_size": 1000},
    "off": {"type": "asgi", "module": "asgi_apps", "object": "failing_lifespan", "lifespan": "off"},
}


@pytest.fixture(scope="module")
def asgi_node():
    n = apps_node(PATHS)
    yield n
    stop_node(n)


async def test_starlette_app(asgi_node):
    base = asgi_node.web_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/star/") as r:
            assert r.status == 200 and await r.text() == "starlette index"
        async with http.get(f"{base}/star/hello/w%C3%B6rld?q=1") as r:
            assert r.status == 200
            # root_path is the mount point: url_for builds URLs below it; the lifespan's state is there
            assert await r.json() == {"hello": "wörld", "q": "1", "url": f"{base}/star/hello/x",
                                      "root_path": "/star", "state": "yes"}
        async with http.post(f"{base}/star/echo", json={"a": [1, 2]}) as r:
            assert await r.json() == {"length": 13, "json": {"a": [1, 2]}, "ctype": "application/json"}
        async with http.get(f"{base}/star/stream") as r:
            assert r.headers.get("Transfer-Encoding") == "chunked"
            assert await r.text() == "chunk0;chunk1;chunk2;chunk3;"
        async with http.get(f"{base}/star/nothing") as r:
            assert r.status == 404
        async with http.head(f"{base}/star/") as r:
            assert r.status == 200 and await r.read() == b""
        async with http.get(f"{base}/star/fail") as r:
            assert r.status == 500
    assert wait_log(asgi_node, "ASGI app starlette_app.app: lifespan startup complete")
    assert (asgi_node.root / "apps" / "lifespan.log").read_text() == "startup\n"


def test_scope(asgi_node):
    c = Raw(asgi_node.ports["web"])
    status, headers, body = c.request("POST", "/raw/scope/a%20b?x=1&y=%20", {"X-Custom": "v1"}, b"the body")
    assert status == 200 and headers["content-length"] == str(len(body))
    scope = json.loads(body)
    assert scope["method"] == "POST" and scope["http_version"] == "1.1" and scope["scheme"] == "http"
    assert scope["root_path"] == "/raw" and scope["path"] == "/raw/scope/a b"
    assert scope["raw_path"] == "/raw/scope/a%20b" and scope["query_string"] == "x=1&y=%20"
    assert ["x-custom", "v1"] in scope["headers"] and ["host", "x"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", asgi_node.ports["web"]]
    assert scope["body"] == "the body" and scope["more_body"] is False
    # a chunked body arrives whole
    status, _, body = c.request("PUT", "/raw/scope", {"Transfer-Encoding": "chunked"},
                                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert status == 200 and json.loads(body)["body"] == "abcdefg"
    # the service's max_body_size
    assert c.request("POST", "/raw/scope", {"Content-Length": "1001"})[0] == 413
    c.close()


def test_app_errors_answered_worker_keeps_serving(asgi_node):
    port = asgi_node.ports["web"]
    c = Raw(port)
    status, _, body = c.request("GET", "/raw/raise")
    assert status == 500 and body == b"internal error\n"
    assert wait_log(asgi_node, "ASGI app asgi_apps.app failed on GET '/raw/raise': ValueError: the application failed")
    assert c.request("GET", "/raw/scope")[0] == 200
    status, _, body = c.request("GET", "/raw/nothing")
    assert status == 500 and b"sent no response" in body
    assert wait_log(asgi_node, "ASGI app asgi_apps.app returned without a response to GET '/raw/nothing'")
    c.close()
    c = Raw(port)
    c.send(b"GET /raw/raise-late HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises((EOFError, ConnectionResetError)):
        c.response()
    c.close()
    assert wait_log(asgi_node, "failed on GET '/raw/raise-late': ValueError: failed while streaming")
    assert get(port, "/raw/scope")[0] == 200
    asgi_node.assert_alive()


def test_streamed_as_produced_and_disconnect(asgi_node):
    port = asgi_node.ports["web"]
    c = Raw(port)
    c.send(b"GET /raw/stream?g1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    while c._line():
        pass
    # the first block arrives while the application waits at its gate
    assert c._line() == b"6" and c._exactly(8) == b"first;\r\n"
    assert get(port, "/raw/open?g1")[2] == b"opened"
    rest = b""
    while (size := int(c._line(), 16)) != 0:
        rest += c._exactly(size)
        c._exactly(2)
    assert rest == b"after0;after1;after2;"
    c.close()
    # receive() after the body says http.disconnect once the client goes
    before = state(port)["disconnected"]
    c = Raw(port)
    c.send(b"GET /raw/wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    assert state(port)["disconnected"] == before
    c.close()
    wait_for(lambda: state(port)["disconnected"] == before + 1, what="http.disconnect")


def test_send_after_the_client_went_raises(asgi_node):
    port = asgi_node.ports["web"]
    c = Raw(port)
    c.send(b"GET /raw/forever HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    c._more()
    c.close()
    # the endless application learns it from send() (no spinning on a closed connection)
    wait_for(lambda: state(port)["forever_ended"] == "ClientDisconnected", what="send() raising")
    assert "ASGI app asgi_apps.app failed on GET '/raw/forever'" not in asgi_node.log()


def test_backpressure_and_large_response(asgi_node):
    # the client reads nothing: the application is held back after a few socket buffers' worth
    check_backpressure(asgi_node.ports["web"])


@pytest.mark.parametrize("service,message", [
    # lifespan "on" and an application without it
    ({"type": "asgi", "module": "asgi_apps", "object": "app", "lifespan": "on"},
     "the AsgiWebService on path '/a' failed to start: ServiceStartError: asgi service asgi_apps.app: "
     "lifespan startup failed: ValueError: no lifespan here"),
    # an application whose startup fails
    ({"type": "asgi", "module": "asgi_apps", "object": "failing_lifespan"},
     "the AsgiWebService on path '/a' failed to start: ServiceStartError: asgi service "
     "asgi_apps.failing_lifespan: lifespan startup failed: the database is not there"),
])
def test_lifespan_failure_fails_the_start(service, message):
    with pytest.raises(RuntimeError) as e:
        apps_node({"a": service, "b": {"type": "asgi", "module": "lifecycle_apps", "object": "quick"}})
    text = str(e.value)
    assert message in text and "Traceback" not in text, text


def test_lifespan_modes(asgi_node):
    port = asgi_node.ports["web"]
    # "off": an application whose startup would fail is served, its lifespan never run
    assert get(port, "/off/")[2] == b"never served"
    # "auto" and an application without lifespan: served
    assert get(port, "/raw/scope")[0] == 200
    assert wait_log(asgi_node, "ASGI app asgi_apps.app: no lifespan support (ValueError: no lifespan here)")


def test_lifespan_shutdown_when_the_node_stops():
    n = apps_node({"star": {"type": "asgi", "module": "starlette_app", "object": "app", "lifespan": "on"}})
    try:
        assert get(n.ports["web"], "/star/")[2] == b"starlette index"
        log = n.root / "apps" / "lifespan.log"
        assert log.read_text() == "startup\n"
    finally:
        stop_node(n)
    assert log.read_text() == "startup\nshutdown\n"


def test_checker():
    transport = {"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": {}}
    cfg = {"version": 2, "workers": [{"type": "router", "realms": [], "transports": [transport]}]}
    transport["paths"] = {"/": {"type": "asgi", "module": "my.app", "object": "app", "lifespan": "off",
                                "max_body_size": 5, "id": "a"}}
    check_config(cfg, Personality())
    for svc, where, what in [
        ({"type": "asgi", "object": "app"}, "paths['a']", "'module'"),
        ({"type": "asgi", "module": "m", "object": "app", "lifespan": "yes"}, "paths['a'].lifespan",
         "'auto', 'on', 'off'"),
        ({"type": "asgi", "module": "m", "object": "app", "maxthreads": 3}, "paths['a'].maxthreads",
         "unknown attribute"),
        ({"type": "asgi", "module": "m.", "object": "app"}, "paths['a'].module", "not a Python module name"),
    ]:
        transport["paths"] = {"a": svc}
        with pytest.raises(ConfigError) as e:
            check_config(cfg, Personality())
        assert f"$.workers[0].transports[0].{where}" in str(e.value) and what in str(e.value), str(e.value)


def test_start_failure_named():
    with pytest.raises(RuntimeError) as e:
        apps_node({"a": {"type": "asgi", "module": "asgi_apps", "object": "missing"}})
    assert "asgi service: module 'asgi_apps' has no object 'missing'" in str(e.value), str(e.value)


def test_lifespan_startup_before_the_port_listens_and_shutdown_awaited():
    # startup takes a second: once the port accepts connections it has completed; the node's
    # stop waits for the (one second) shutdown
    n = apps_node({"slow": {"type": "asgi", "module": "lifecycle_apps", "object": "slow"}})
    log = n.root / "apps" / "lifecycle-slow.log"
    try:
        assert log.read_text() == "startup\n"  # no request made yet
        assert get(n.ports["web"], "/slow/")[2] == b"slow served"
    finally:
        stop_node(n)
    assert log.read_text() == "startup\nshutdown\n"


async def test_services_added_and_removed_at_runtime_start_and_stop():
    # the management API's start/stop_web_transport_service: lifespan startup runs in the
    # background (requests wait for it), a failed one answers 503; removing a service awaits its
    # shutdown
    from wampfabric.client.rawsocket import connect_rawsocket

    def config(ports: dict, rs_path: str) -> dict:
        root = Path(rs_path).parent
        shutil.copytree(APPS, root / "apps", ignore=shutil.ignore_patterns("__pycache__", "appnode.py"))
        ports.clear()
        ports["web"] = free_port()
        return {"version": 2,
                "controller": {"transport": {"type": "rawsocket", "serializers": ["cbor"],
                                             "endpoint": {"type": "unix", "path": "node.sock"}}},
                "workers": [{"type": "router", "options": {"pythonpath": ["../apps"]}, "realms": [],
                             "transports": [{"type": "web", "paths": {"json": {"type": "json", "value": 1}},
                                             "endpoint": {"type": "tcp", "interface": "127.0.0.1",
                                                          "port": ports["web"]}}]}]}

    n = start_node(config)
    port = n.ports["web"]
    log = n.root / "apps" / "lifecycle-slow.log"
    try:
        s = await connect_rawsocket("crossbar", path=str(n.cbdir / "node.sock"))
        worker = (await s.call("crossbar.get_workers"))[0]
        api = f"crossbar.worker.{worker}."
        tid = (await s.call(api + "get_router_transports"))[0]
        await s.call(api + "start_web_transport_service", tid, "slow",
                     {"type": "asgi", "module": "lifecycle_apps", "object": "slow"})
        await s.call(api + "start_web_transport_service", tid, "broken",
                     {"type": "asgi", "module": "lifecycle_apps", "object": "broken"})
        t0 = time.monotonic()
        status, _, body = await asyncio.to_thread(get, port, "/slow/")
        assert (status, body) == (200, b"slow served") and log.read_text() == "startup\n"
        status, _, body = await asyncio.to_thread(get, port, "/broken/")
        assert status == 503 and body == b"the application failed to start\n"
        assert wait_log(n, "the AsgiWebService on path 'broken' failed to start: ServiceStartError: asgi service "
                           "lifecycle_apps.broken: lifespan startup failed: broken cannot start")
        await s.call(api + "stop_web_transport_service", tid, "slow")
        assert (await asyncio.to_thread(get, port, "/slow/"))[0] == 404
        await asyncio.to_thread(wait_for, lambda: log.read_text() == "startup\nshutdown\n", 5.0, "shutdown")
        assert time.monotonic() - t0 >= 1.0
        await s.leave()
    finally:
        stop_node(n)
