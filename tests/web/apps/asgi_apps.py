"""Plain ASGI applications for tests/web/test_asgi.py: the scope, failures, streaming as produced,
the client's disconnect, backpressure; and lifespan variants (none, failing)."""

import asyncio
import json

gates: dict = {}
state = {"produced": 0, "disconnected": 0, "forever_ended": None}


def _gate(name):
    return gates.setdefault(name, asyncio.Event())


async def _text(send, status, body: bytes, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise ValueError("no lifespan here")  # 'auto' runs without; 'on' fails
    path = scope["path"][len(scope["root_path"]):]
    qs = scope["query_string"].decode()
    if path.startswith("/scope"):
        msg = await receive()
        out = {k: scope[k] for k in ("http_version", "method", "scheme", "path", "root_path", "client", "server")}
        out["raw_path"] = scope["raw_path"].decode("latin-1")
        out["query_string"] = scope["query_string"].decode("latin-1")
        out["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        out["body"] = msg["body"].decode("latin-1")
        out["more_body"] = msg["more_body"]
        return await _text(send, 200, json.dumps(out).encode())
    if path == "/raise":
        raise ValueError("the application failed")
    if path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"some;", "more_body": True})
        raise ValueError("failed while streaming")
    if path == "/nothing":
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        await asyncio.wait_for(_gate(qs).wait(), 20)
        for i in range(3):
            await send({"type": "http.response.body", "body": b"after%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/open":
        _gate(qs).set()
        return await _text(send, 200, b"opened")
    if path == "/wait-disconnect":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting;", "more_body": True})
        msg = await receive()
        if msg["type"] == "http.disconnect":
            state["disconnected"] += 1
        return
    if path == "/big":
        total = int(qs)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(total).encode())]})
        block = b"z" * 65536
        sent = 0
        while sent < total:
            state["produced"] = sent
            await send({"type": "http.response.body", "body": block, "more_body": True})
            sent += len(block)
        state["produced"] = sent
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/forever":  # streams until send() says the client is gone
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick;", "more_body": True})
        except OSError as e:
            state["forever_ended"] = type(e).__name__
            raise
    if path == "/state":
        return await _text(send, 200, json.dumps(state).encode())
    return await _text(send, 404, b"not here")


async def failing_lifespan(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await _text(send, 200, b"never served")
