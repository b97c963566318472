"""The ``wsgi`` web service end to end: a Flask application and plain WSGI applications served by
a node started with the CLI, spoken to with aiohttp's client and raw sockets; the PEP 3333
environ, streamed iterables sent as produced (and closed), backpressure, an application that
raises or blocks (the worker keeps serving), the pool bound (503)."""

from __future__ import annotations

import json
import threading
import time

import aiohttp
import pytest

from apps.appnode import app_state as state, apps_node, check_backpressure, wait_for
from httpfront import Raw, get, wait_log
from support.nodes import stop_node
from wampfabric.config.base import ConfigError
from wampfabric.config.check import check_config
from wampfabric.personality import Personality

PATHS = {
    "flask": {"type": "wsgi", "module": "flask_app", "object": "app", "maxthreads": 4},
    "raw": {"type": "wsgi", "module": "wsgi_apps", "object": "app", "minthreads": 1, "maxthreads": 6, "queue": 4},
    "one": {"type": "wsgi", "module": "wsgi_apps", "object": "app", "maxthreads": 1, "queue": 1},
    "deep/er": {"type": "wsgi", "module": "wsgi_apps", "object": "app"},
    "/": {"type": "wsgi", "module": "wsgi_apps", "object": "app", "max_body_size": 100},
}


@pytest.fixture(scope="module")
def wsgi_node():
    n = apps_node(PATHS)
    yield n
    stop_node(n)


async def test_flask_app(wsgi_node):
    base = wsgi_node.web_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/flask/") as r:
            assert r.status == 200 and await r.text() == "flask index"
        async with http.get(f"{base}/flask/hello/w%C3%B6rld?q=1") as r:
            assert r.status == 200
            # SCRIPT_NAME is the mount point: url_for builds links below it
            assert await r.json() == {"hello": "wörld", "q": "1", "link": "/flask/hello/w%C3%B6rld",
                                      "script_root": "/flask"}
        async with http.post(f"{base}/flask/echo", json={"a": [1, 2]}) as r:
            assert await r.json() == {"json": {"a": [1, 2]}, "length": 13, "ctype": "application/json"}
        async with http.post(f"{base}/flask/form", data={"x": "1", "y": "ä"}) as r:
            assert await r.json() == {"x": "1", "y": "ä"}
        async with http.get(f"{base}/flask/stream") as r:
            assert r.headers.get("Transfer-Encoding") == "chunked"
            assert await r.text() == "part0;part1;part2;part3;part4;"
        async with http.get(f"{base}/flask/nothing") as r:
            assert r.status == 404
        async with http.get(f"{base}/flask/fail") as r:  # Flask answers its own 500
            assert r.status == 500
        async with http.head(f"{base}/flask/") as r:
            assert r.status == 200 and await r.read() == b"" and r.headers["Content-Length"] == "11"


def test_environ(wsgi_node):
    c = Raw(wsgi_node.ports["web"])
    status, headers, body = c.request("POST", "/raw/env/a%20b/%C3%A4?x=1&y=%20", {
        "Content-Type": "text/plain", "X-Custom": "v1", "X_Sneaky": "smuggled", "Cookie": "k=v"}, b"the body")
    assert status == 200
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "POST" and env["SCRIPT_NAME"] == "/raw"
    # PEP 3333: the decoded path's bytes as latin-1 characters
    assert env["PATH_INFO"] == "/env/a b/" + "ä".encode().decode("latin-1")
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["CONTENT_LENGTH"] == "8" and env["CONTENT_TYPE"] == "text/plain" and env["body"] == "the body"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1" and env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_NAME"] == "x" and env["SERVER_PORT"] == str(wsgi_node.ports["web"])
    assert env["wsgi.url_scheme"] == "http" and env["multithread"] is True
    assert env["http"]["HTTP_X_CUSTOM"] == "v1" and env["http"]["HTTP_COOKIE"] == "k=v"
    assert env["http"]["HTTP_HOST"] == "x"
    # a header with '_' would pose as HTTP_X_SNEAKY: not passed
    assert "HTTP_X_SNEAKY" not in env["http"]
    # a chunked request body arrives whole, with its length
    status, _, body = c.request("PUT", "/raw/env", {"Transfer-Encoding": "chunked"},
                                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    env = json.loads(body)
    assert status == 200 and env["body"] == "abcdefg" and env["CONTENT_LENGTH"] == "7"
    assert "HTTP_TRANSFER_ENCODING" not in env["http"]
    # nested mount point, the mount point itself, the root mount
    env = json.loads(c.request("GET", "/deep/er/env")[2])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/deep/er", "/env")
    env = json.loads(c.request("GET", "/env/x")[2])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/env/x")
    assert env["CONTENT_LENGTH"] is None
    c.close()
    assert wait_log(wsgi_node, "WSGI app wsgi_apps.app: a line for wsgi.errors")
    # the root service's max_body_size
    assert get(wsgi_node.ports["web"], "/env", {"Content-Length": "101"}, method="POST")[0] == 413


def test_app_errors_answered_worker_keeps_serving(wsgi_node):
    port = wsgi_node.ports["web"]
    c = Raw(port)
    status, _, body = c.request("GET", "/raw/raise")
    assert status == 500 and body == b"internal error\n" and b"Traceback" not in body
    assert wait_log(wsgi_node, "WSGI app wsgi_apps.app failed on GET '/raw/raise': ValueError: the application failed")
    # the same keep-alive connection goes on
    assert c.request("GET", "/raw/env")[0] == 200
    # start_response again with exc_info before anything was sent: the application's error page
    status, _, body = c.request("GET", "/raw/exc-info")
    assert status == 503 and body == b"custom error page"
    # start_response never called
    assert c.request("GET", "/raw/none")[0] == 500
    assert wait_log(wsgi_node, "returned before calling start_response()")
    # the legacy write() callable, then the iterable
    status, _, body = c.request("GET", "/raw/write")
    assert status == 200 and body == b"written;returned"
    c.close()
    # an error after the response started: the client sees the response cut off, not a clean end
    c = Raw(port)
    c.send(b"GET /raw/raise-late HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises((EOFError, ConnectionResetError)):
        c.response()
    c.close()
    assert wait_log(wsgi_node, "failed on GET '/raw/raise-late': ValueError: failed while streaming")
    assert get(port, "/raw/env")[0] == 200
    wsgi_node.assert_alive()


def test_streamed_as_produced_and_closed(wsgi_node):
    port = wsgi_node.ports["web"]
    closed_before = state(port)["closed"]
    c = Raw(port)
    c.send(b"GET /raw/stream?g1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    while c._line():
        pass
    # the first block arrives while the application still waits at its gate
    assert c._line() == b"6" and c._exactly(8) == b"first;\r\n"
    assert get(port, "/raw/open?g1")[2] == b"opened"
    rest = b""
    while True:
        size = int(c._line(), 16)
        if size == 0:
            c._line()
            break
        rest += c._exactly(size)
        c._exactly(2)
    assert rest == b"after0;after1;after2;"
    wait_for(lambda: state(port)["closed"] == closed_before + 1, what="close() of the iterable")
    # a client that goes away mid-stream: the iterable is closed too
    c.close()
    c = Raw(port)
    c.send(b"GET /raw/stream?g2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c._line().startswith(b"HTTP/1.1 200")
    c.close()
    get(port, "/raw/open?g2")
    wait_for(lambda: state(port)["closed"] == closed_before + 2, what="close() after the client went")


def test_backpressure_and_large_response(wsgi_node):
    # the client reads nothing: the application is held back after a few socket buffers' worth
    headers = check_backpressure(wsgi_node.ports["web"])
    assert "transfer-encoding" not in headers


def _blocked(port, path: str, results: list):
    def run():
        try:
            results.append(get(port, path)[:3:2])
        except Exception as e:  # noqa: BLE001 (reported by the test)
            results.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_blocking_app_holds_one_thread_and_pool_bound(wsgi_node):
    port = wsgi_node.ports["web"]
    get(port, "/raw/rearm")
    results: list = []
    threads = [_blocked(port, "/raw/block", results) for _ in range(2)]
    wait_for(lambda: state(port)["blocked"] == 2, what="two blocked requests")
    # the others are served meanwhile, by the same application and by others
    t0 = time.monotonic()
    for _ in range(5):
        assert get(port, "/raw/env")[0] == 200
    assert get(port, "/flask/")[2] == b"flask index"
    assert time.monotonic() - t0 < 3
    # a pool of 1 thread and a queue of 1: one runs, one waits, the third is refused at once
    one = [_blocked(port, "/one/block", results) for _ in range(1)]
    wait_for(lambda: state(port)["blocked"] == 3, what="the one thread blocked")
    one.append(_blocked(port, "/one/block", results))
    time.sleep(0.3)
    t0 = time.monotonic()
    status, headers, body = get(port, "/one/env")
    assert status == 503 and headers["retry-after"] == "1" and time.monotonic() - t0 < 1
    assert wait_log(wsgi_node, "WSGI app wsgi_apps.app: all 1 threads busy and 1 requests waiting: 503")
    assert get(port, "/raw/release")[2] == b"released"
    for t in threads + one:
        t.join(10)
    assert results.count((200, b"unblocked")) == 4, results
    assert get(port, "/one/env")[0] == 200
    get(port, "/raw/rearm")


def _config(paths: dict) -> dict:
    transport = {"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": paths}
    return {"version": 2, "workers": [{"type": "router", "realms": [], "transports": [transport]}]}


def test_checker():
    check_config(_config({"/": {"type": "wsgi", "module": "my.app", "object": "application", "minthreads": 2,
                                "maxthreads": 8, "queue": 0, "max_body_size": 10, "id": "w"}}), Personality())
    for svc, where, what in [
        ({"type": "wsgi", "object": "app"}, "paths['a']", "'module'"),
        ({"type": "wsgi", "module": "m"}, "paths['a']", "'object'"),
        ({"type": "wsgi", "module": "my-app", "object": "app"}, "paths['a'].module", "not a Python module name"),
        ({"type": "wsgi", "module": "m", "object": "a.b"}, "paths['a'].object", "not a Python name"),
        ({"type": "wsgi", "module": "m", "object": "a", "maxthreads": 0}, "paths['a'].maxthreads", "positive"),
        ({"type": "wsgi", "module": "m", "object": "a", "minthreads": 5, "maxthreads": 2}, "paths['a'].minthreads",
         "more than maxthreads"),
        ({"type": "wsgi", "module": "m", "object": "a", "queue": -1}, "paths['a'].queue", "non-negative"),
        ({"type": "wsgi", "module": "m", "object": "a", "maxthreads": "4"}, "paths['a'].maxthreads", "must be"),
        ({"type": "wsgi", "module": "m", "object": "a", "threads": 4}, "paths['a'].threads", "unknown attribute"),
    ]:
        with pytest.raises(ConfigError) as e:
            check_config(_config({"a": svc}), Personality())
        assert f"$.workers[0].transports[0].{where}" in str(e.value) and what in str(e.value), str(e.value)


def test_start_failures_named(tmp_path):
    """An application that cannot be imported fails the node's start with a message saying why."""
    from apps.appnode import apps_node as start
    for svc, text in [
        ({"type": "wsgi", "module": "no_such_module_here", "object": "app"},
         "wsgi service: cannot import module 'no_such_module_here': ModuleNotFoundError"),
        ({"type": "wsgi", "module": "wsgi_apps", "object": "nothing"},
         "wsgi service: module 'wsgi_apps' has no object 'nothing'"),
        ({"type": "wsgi", "module": "wsgi_apps", "object": "state"}, "'wsgi_apps.state' is not callable"),
    ]:
        with pytest.raises(RuntimeError) as e:
            start({"a": svc})
        assert text in str(e.value) and "Traceback" not in str(e.value), str(e.value)
