"""WAMP over HTTP long-poll (the ``longpoll`` web service): autobahn-js's 'longpoll' transport
against autobahn-python peers, the protocol driven by hand (open / send / receive / close,
json and batched msgpack), held receive requests, and transports reaped when their client
goes away or does not poll."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import msgpack
import pytest
from autobahn.wamp.types import CallResult

from support.autobahn_client import subscribe, uid, until, w
from support.js import JS_DIR, NODE, last_json_line, node_flags, require_node
from bridgenode import bridge_node_config, ws_sessions
from support.nodes import start_node, stop_node

require_node("long-poll tests with autobahn-js")

HELLO_ROLES = {"roles": {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}}


def longpoll_config(ports: dict, rs_path: str) -> dict:
    return bridge_node_config(ports, {
        "ws": {"type": "websocket"},
        "lp": {"type": "longpoll"},  # Crossbar.io's defaults: what autobahn-js expects
        "lp-short": {"type": "longpoll", "options": {"request_timeout": 1, "session_timeout": 2}},
        "lp-tiny": {"type": "longpoll", "options": {"queue_limit_messages": 5, "session_timeout": 30}},
    })


@pytest.fixture(scope="module")
def lpnode():
    n = start_node(longpoll_config)
    yield n
    stop_node(n)


@pytest.fixture
async def sessions(lpnode):
    async for c in ws_sessions(lpnode):
        yield c


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as h:
        yield h


class LongPoll:
    """The long-poll protocol by hand."""

    def __init__(self, h: aiohttp.ClientSession, base: str, protocol: str = "wamp.2.json"):
        self.h, self.base, self.protocol = h, base, protocol
        self.tid = None
        self.batched = protocol.endswith(".batched")
        self.msgpack = ".msgpack" in protocol

    async def post(self, path: str, data: bytes = b"") -> tuple[int, bytes, dict]:
        async with self.h.post(f"{self.base}/{path}", data=data) as r:
            return r.status, await r.read(), r.headers

    async def open(self) -> dict:
        status, body, _ = await self.post("open", json.dumps({"protocols": [self.protocol]}).encode())
        assert status == 200, body
        info = json.loads(body)
        self.tid = info["transport"]
        return info

    def encode(self, msg: list) -> bytes:
        if self.msgpack:
            data = msgpack.packb(msg)
            return len(data).to_bytes(4, "big") + data if self.batched else data
        data = json.dumps(msg).encode()
        return data + b"\x1e" if self.batched else data

    def decode(self, body: bytes) -> list:
        if not body:
            return []
        if self.msgpack:
            if not self.batched:
                return [msgpack.unpackb(body)]
            out = []
            while body:
                n = int.from_bytes(body[:4], "big")
                out.append(msgpack.unpackb(body[4:4 + n]))
                body = body[4 + n:]
            return out
        if self.batched:
            return [json.loads(c) for c in body.split(b"\x1e") if c]
        return [json.loads(body)]

    async def send(self, msg: list) -> int:
        status, _, _ = await self.post(f"{self.tid}/send", self.encode(msg))
        return status

    async def receive(self) -> list:
        status, body, _ = await self.post(f"{self.tid}/receive")
        assert status == 200, (status, body)
        return self.decode(body)

    async def receive_until(self, code: int, timeout: float = 10) -> list:
        async with asyncio.timeout(timeout):
            while True:
                for m in await self.receive():
                    if m[0] == code:
                        return m

    async def join(self) -> int:
        assert await self.send([1, "realm1", HELLO_ROLES]) == 204
        welcome = await self.receive_until(2)
        return welcome[1]

    async def info(self) -> tuple[int, bytes]:
        async with self.h.get(f"{self.base}/{self.tid}") as r:
            return r.status, await r.read()


@pytest.mark.parametrize("lib", ["autobahn", "autobahn26"])
async def test_autobahn_js_over_longpoll(lpnode, sessions, lib):
    """autobahn-js joins over long-poll, receives an event published by autobahn-python, calls a
    procedure registered by autobahn-python and publishes an event autobahn-python receives."""
    prefix = f"com.example.lp.{uid()}"
    s = await sessions()
    await w(s.register(lambda a, b, **kw: CallResult(a + b, got=kw), f"{prefix}.add2"))
    back, _ = await subscribe(s, f"{prefix}.back")
    cmd = [NODE, *node_flags(lib), str(JS_DIR / "longpoll_scenario.mjs"), "--lib", lib,
           "--url", f"{lpnode.web_url}/lp", "--realm", "realm1", "--prefix", prefix]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=JS_DIR, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        lines = []
        async with asyncio.timeout(20):
            while True:
                raw = await proc.stdout.readline()
                assert raw, f"script ended early: {lines} {(await proc.stderr.read())[-2000:]!r}"
                lines.append(raw.decode())
                msg = last_json_line(lines[-1])
                if msg is not None:
                    assert msg.get("status") == "ready", msg
                    break
        assert msg["transport"]["type"] == "longpoll"
        # the JS session is subscribed: publish to it from autobahn-python
        pub = await w(s.publish(f"{prefix}.topic", "to-js", 42, options=_ack()))
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result = last_json_line(out.decode())
    assert result and result.get("ok"), f"{result}\nstderr: {err[-3000:]!r}\nnode log: {lpnode.log()[-3000:]}"
    assert result["event"] == {"args": ["to-js", 42], "kwargs": {}, "publication": pub.id}
    assert result["call"] == {"args": [5], "kwargs": {"got": {"k": "v"}}}
    (args, kwargs, details), = await back.wait(1)
    assert (args, kwargs, details.publication) == (["from-js"], {"n": 1}, result["publication"])
    assert result["close"]["reason"] == "closed"
    assert result["xhr"]["byPath"]["receive"] >= 3 and result["xhr"]["byPath"]["close"] == 1


def _ack():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True)


@pytest.mark.parametrize("protocol", ["wamp.2.json", "wamp.2.msgpack.batched", "wamp.2.cbor"])
async def test_protocol_by_hand(lpnode, sessions, http, protocol):
    if protocol == "wamp.2.cbor":
        pytest.importorskip("cbor2")
    lp = LongPoll(http, f"{lpnode.web_url}/lp", protocol)
    info = await lp.open()
    assert info["protocol"] == protocol and len(info["transport"]) >= 12
    if protocol == "wamp.2.cbor":
        import cbor2

        lp.encode = cbor2.dumps
        lp.decode = lambda body: [cbor2.loads(body)] if body else []
    session_id = await lp.join()
    status, body = await lp.info()
    assert status == 200 and json.loads(body) == {"transport": lp.tid, "session": session_id}
    topic = f"com.example.lp.{uid()}"
    assert await lp.send([32, 1, {}, topic]) == 204
    subscribed = await lp.receive_until(33)
    s = await sessions()
    for i in range(3):
        s.publish(topic, i)
    got = []
    async with asyncio.timeout(10):
        while len(got) < 3:
            got.extend(m for m in await lp.receive() if m[0] == 36)
    assert [m[1] for m in got] == [subscribed[2]] * 3 and [m[4] for m in got] == [[0], [1], [2]]
    assert await lp.send([6, {}, "wamp.close.normal"]) == 204
    assert (await lp.receive_until(6))[2] == "wamp.close.goodbye_and_out"
    status, _, _ = await lp.post(f"{lp.tid}/close")
    assert status == 204
    assert (await lp.info())[0] == 404


async def test_held_receive_ends_after_request_timeout(lpnode, http):
    lp = LongPoll(http, f"{lpnode.web_url}/lp-short")
    await lp.open()
    await lp.join()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await lp.receive() == []  # nothing came: an empty 200 after request_timeout (1 s)
    assert 0.8 < loop.time() - t0 < 3
    await lp.post(f"{lp.tid}/close")


async def test_transport_reaped_after_session_timeout(lpnode, sessions, http):
    """A client that stops polling (here: its held receive request's connection dies) loses its
    transport after session_timeout, and its session leaves the realm."""
    s = await sessions()
    left = []
    await w(s.subscribe(lambda sid, *a: left.append(sid), "wamp.session.on_leave"))
    lp = LongPoll(http, f"{lpnode.web_url}/lp-short")
    await lp.open()
    session_id = await lp.join()
    # a held receive on a raw socket that then goes away
    port = lpnode.ports["web"]
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(f"POST /lp-short/{lp.tid}/receive HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    await asyncio.sleep(0.3)
    raw.close()
    await until(lambda: session_id in left, timeout=10, what="the long-poll session left")
    assert (await lp.info())[0] == 404
    status, _, _ = await lp.post(f"{lp.tid}/receive")
    assert status == 404


async def test_polling_client_is_kept(lpnode, http):
    """request_timeout 1 s, session_timeout 2 s: a client that keeps polling keeps its transport."""
    lp = LongPoll(http, f"{lpnode.web_url}/lp-short")
    await lp.open()
    await lp.join()
    for _ in range(5):  # about 5 s of empty polls
        assert await lp.receive() == []
    assert (await lp.info())[0] == 200
    await lp.post(f"{lp.tid}/close")


async def test_queue_limit_closes_transport(lpnode, sessions, http):
    s = await sessions()
    lp = LongPoll(http, f"{lpnode.web_url}/lp-tiny")
    await lp.open()
    session_id = await lp.join()
    topic = f"com.example.lp.{uid()}"
    await lp.send([32, 1, {}, topic])
    await lp.receive_until(33)
    left = []
    await w(s.subscribe(lambda sid, *a: left.append(sid), "wamp.session.on_leave"))
    for i in range(10):  # nobody polls: more than queue_limit_messages (5) wait
        s.publish(topic, i)
    await until(lambda: session_id in left, timeout=10, what="the long-poll session closed")
    assert (await lp.info())[0] == 404
    # closed from inside the broker's fan-out: the session leaves afterwards, never mid-loop
    assert "internal error" not in lpnode.log() and "Traceback" not in lpnode.log()


async def test_bad_requests(lpnode, http):
    base = f"{lpnode.web_url}/lp"

    async def post(path, data=b""):
        async with http.post(f"{base}/{path}", data=data) as r:
            return r.status, await r.read()

    for data, text in [(b"nope", b"could not parse"), (b"[1]", b"JSON object"), (b"{}", b"protocols"),
                       (b'{"protocols": ["wamp.2.xml"]}', b"no common protocol")]:
        status, body = await post("open", data)
        assert status == 400 and text in body, body
        assert b"Traceback" not in body
    assert (await post("0123456789ab/send", b"[1]"))[0] == 404
    async with http.get(f"{base}/open") as r:
        assert r.status == 405
    async with http.get(base) as r:
        assert r.status == 200 and b"long-poll" in await r.read()
    lp = LongPoll(http, base)
    await lp.open()
    assert (await post(f"{lp.tid}/frobnicate"))[0] == 404
    # an invalid WAMP message: the session is aborted (ABORT for the next receive), not the worker
    assert await lp.send([1, "realm1"]) == 204
    abort = await lp.receive_until(3)
    assert abort[2] == "wamp.error.protocol_violation"
    assert (await lp.info())[0] == 404
    lpnode.assert_alive()
