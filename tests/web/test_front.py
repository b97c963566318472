"""The HTTP/1.1 front of web transports (transport/http.py), with raw sockets and with aiohttp's
client: keep-alive, pipelining, chunked bodies, HEAD, HTTP/1.0, 100-continue, streamed answers,
errors of services, WebSocket upgrades handed to picows."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from httpfront import Raw, get, wait_log
from support.autobahn_client import connect
from support.wamp_raw import ws_upgrade_request
from wampfabric.protocol.codes import HELLO


def test_keep_alive_serves_several_requests_on_one_connection(wnode):
    c = Raw(wnode.ports["web"])
    try:
        for path, body in (("/a.txt", b"file a"), ("/b.txt", b"file b"), ("/json", None), ("/a.txt", b"file a")):
            status, headers, got = c.request("GET", path)
            assert status == 200 and "connection" not in headers
            assert body is None or got == body
        assert json.loads(c.request("GET", "/json")[2]) == {"a": 1, "b": [1, 2], "s": "ü"}
    finally:
        c.close()


def test_pipelined_requests_are_answered_in_order(wnode):
    c = Raw(wnode.ports["web"])
    try:
        # a slow (async, streamed) answer first: the fast ones behind it must wait for it
        c.send(b"GET /echo/later HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /echo/p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
               b"HEAD /b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert c.response() [2] == b"part0;part1;part2;"
        assert c.response()[2] == b"file a"
        assert c.response()[2] == b"echo:POST p hello"
        status, headers, _ = c.response(head=True)
        assert status == 200 and headers["content-length"] == "6"
        status, headers, body = c.response()
        assert body == b"file b" and headers["connection"] == "close"
        assert c.closed_by_peer()
    finally:
        c.close()


def test_chunked_request_body(wnode):
    c = Raw(wnode.ports["web"])
    try:
        c.send(b"POST /echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n")
        status, _, body = c.response()
        assert status == 200 and body == b"echo:POST c hello world!"
        assert c.request("GET", "/a.txt")[2] == b"file a"  # the connection goes on
    finally:
        c.close()


def test_streamed_answer_is_chunked_for_http11_and_ends_with_the_connection_for_http10(wnode):
    c = Raw(wnode.ports["web"])
    try:
        status, headers, body = c.request("GET", "/echo/later")
        assert headers["transfer-encoding"] == "chunked" and body == b"part0;part1;part2;"
    finally:
        c.close()
    c = Raw(wnode.ports["web"])
    try:
        status, headers, body = c.request("GET", "/echo/later", version="1.0")
        assert "transfer-encoding" not in headers and headers["connection"] == "close"
        assert body == b"part0;part1;part2;"
    finally:
        c.close()


def test_head_has_the_headers_of_get_and_no_body(wnode):
    c = Raw(wnode.ports["web"])
    try:
        g_status, g_headers, g_body = c.request("GET", "/index.html")
        h_status, h_headers, h_body = c.request("HEAD", "/index.html")
        assert g_status == h_status == 200 and h_body == b""
        g_headers.pop("date"), h_headers.pop("date"), g_headers.pop("expires"), h_headers.pop("expires")
        assert g_headers == h_headers and int(h_headers["content-length"]) == len(g_body)
        # nothing of a body was sent after the HEAD answer: the next answer is parsed cleanly
        assert c.request("GET", "/a.txt")[2] == b"file a"
    finally:
        c.close()


def test_http10(wnode):
    c = Raw(wnode.ports["web"])
    try:
        status, headers, body = c.request("GET", "/a.txt", version="1.0")
        assert status == 200 and body == b"file a" and headers.get("connection") == "close"
        assert c.closed_by_peer()
    finally:
        c.close()
    c = Raw(wnode.ports["web"])
    try:
        status, headers, body = c.request("GET", "/a.txt", {"Connection": "keep-alive"}, version="1.0")
        assert headers["connection"].lower() == "keep-alive" and body == b"file a"
        assert c.request("GET", "/b.txt", {"Connection": "keep-alive"}, version="1.0")[2] == b"file b"
    finally:
        c.close()


def test_expect_100_continue(wnode):
    c = Raw(wnode.ports["web"])
    try:
        c.send(b"POST /echo/e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        status, _, _ = c.response()
        assert status == 100
        c.send(b"data")
        assert c.response()[2] == b"echo:POST e data"
        # too big for the service: 413 at once, no 100, and the body is never read
        c.send(b"POST /echo/e HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = c.response()
        assert status == 413 and headers["connection"] == "close" and b"4096" in body
        assert c.closed_by_peer()
    finally:
        c.close()


def test_query_and_percent_decoding(wnode):
    status, headers, body = get(wnode.ports["web"], "/echo/a%20b%C3%BC?x=1&y=%20")
    assert body == "echo:GET a bü ".encode() and headers["x-query"] == "x=1&y=%20"
    assert get(wnode.ports["web"], "/%61.txt")[2] == b"file a"  # /a.txt
    assert get(wnode.ports["web"], "//sub/./c.txt")[2] == b"file c"


def test_service_errors_are_500_and_the_worker_serves_on(wnode):
    status, _, body = get(wnode.ports["web"], "/echo/boom")
    assert status == 500 and body == b"internal error\n" and b"Traceback" not in body
    assert wait_log(wnode, "the service failed")
    assert "Traceback" not in wnode.log()
    assert get(wnode.ports["web"], "/a.txt")[2] == b"file a"


def test_unknown_method_and_garbage_get_400(wnode):
    for junk in (b"FOO / HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\xff\xfe\r\n\r\n", b"GET nopath HTTP/1.1\r\n\r\n"):
        c = Raw(wnode.ports["web"])
        try:
            status, headers, body = c.send(junk).response()
            assert status == 400 and headers["connection"] == "close", junk
            assert c.closed_by_peer()
        finally:
            c.close()
    wnode.assert_alive()


async def test_aiohttp_client(wnode):
    base = f"http://127.0.0.1:{wnode.ports['web']}"
    async with aiohttp.ClientSession() as s:
        for _ in range(3):  # one pooled keep-alive connection
            async with s.get(base + "/json") as r:
                assert r.status == 200 and await r.json() == {"a": 1, "b": [1, 2], "s": "ü"}
        async with s.post(base + "/echo/x", data=b"posted") as r:
            assert await r.read() == b"echo:POST x posted"

        async def gen():
            for part in (b"one ", b"two"):
                yield part

        async with s.post(base + "/echo/y", data=gen()) as r:  # chunked upload
            assert await r.read() == b"echo:POST y one two"
        async with s.get(base + "/big.bin") as r:
            data = await r.read()
            assert len(data) == int(r.headers["Content-Length"]) and data[:3] == b"\x00\x01\x02"
        async with s.get(base + "/redir", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "http://example.com/target"
        async with s.get(base + "/echo/later") as r:
            assert await r.read() == b"part0;part1;part2;"
        async with s.post(base + "/echo/x", data=b"x" * 5000) as r:
            assert r.status == 413


def _upgrade_then_hello(c: Raw, path: str) -> bytes:
    c.send(ws_upgrade_request("127.0.0.1", 0, path, "wamp.2.json"))
    status, headers, _ = c.response(head=True)
    assert status == 101 and headers["sec-websocket-protocol"] == "wamp.2.json"
    from support.wamp_raw import ws_frame

    c.send(ws_frame(json.dumps([HELLO, "realm1", {"roles": {"subscriber": {}}}]).encode()))
    while len(c.buf) < 4:
        c._more()
    return c.buf


def test_upgrade_after_keep_alive_requests_on_the_same_connection(wnode):
    c = Raw(wnode.ports["web"])
    try:
        assert c.request("GET", "/a.txt")[2] == b"file a"
        assert c.request("POST", "/echo/z", body=b"b")[2] == b"echo:POST z b"
        data = _upgrade_then_hello(c, "/ws")
        assert data[0] == 0x81 and b"[2," in data  # WELCOME in a text frame
    finally:
        c.close()


def test_upgrade_on_a_nested_websocket_path(wnode):
    c = Raw(wnode.ports["web"])
    try:
        assert b"[2," in _upgrade_then_hello(c, "/nest/ws2")
    finally:
        c.close()


def test_upgrade_on_other_paths_is_refused(wnode):
    for path, status in (("/json", 404), ("/a.txt", 404), ("/nothing/here", 404)):
        c = Raw(wnode.ports["web"])
        try:
            c.send(ws_upgrade_request("127.0.0.1", 0, path, "wamp.2.json"))
            got, headers, _ = c.response()
            assert got == status and headers["connection"] == "close"
        finally:
            c.close()
    # Upgrade without 'Connection: upgrade' on the WebSocket path
    c = Raw(wnode.ports["web"])
    try:
        req = ws_upgrade_request("127.0.0.1", 0, "/ws", "wamp.2.json").replace(b"Connection: Upgrade\r\n", b"")
        assert c.send(req).response()[0] == 400
    finally:
        c.close()


async def test_autobahn_sessions_through_the_web_and_universal_fronts(wnode):
    from support.nodes import Node

    sessions = []
    try:
        a = await connect(wnode, "websocket", "json")
        sessions.append(a)
        uni = Node(root=wnode.root, cbdir=wnode.cbdir, proc=wnode.proc, ports={"web": wnode.ports["uni"]},
                   rawsocket_path="")
        b = await connect(uni, "websocket", "cbor")
        sessions.append(b)
        await a.register(lambda x: x + 1, "com.web.inc")
        assert await asyncio.wait_for(b.call("com.web.inc", 41), 5) == 42
    finally:
        for s in sessions:
            await s.shutdown()


def test_thousands_of_pipelined_requests_behind_a_slow_one(wnode):
    """The requests queued behind an asynchronous answer are answered in a loop once it is done
    (no recursion per request), all of them, in order."""
    c = Raw(wnode.ports["web"], timeout=20)
    try:
        n = 3000
        c.send(b"GET /echo/later HTTP/1.1\r\nHost: x\r\n\r\n"
               + b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        assert c.response()[2] == b"part0;part1;part2;"
        for i in range(n):
            assert c.response()[2] == b"echo:GET %d " % i
    finally:
        c.close()
    wnode.assert_alive()
