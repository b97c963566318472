"""Plain WSGI applications for tests/web/test_wsgi.py: the environ, failures, blocking, streaming
as produced, backpressure (what a stalled client lets the application produce)."""

import json
import sys
import threading
import time

gates: dict = {}
state = {"closed": 0, "produced": 0, "blocked": 0}
lock = threading.Lock()
release = threading.Event()


def _gate(name: str) -> threading.Event:
    with lock:
        return gates.setdefault(name, threading.Event())


class Stream:
    """An iterable with close(), the first block before a gate, the rest after it."""

    def __init__(self, gate: str):
        self.gate = gate

    def __iter__(self):
        yield b"first;"
        _gate(self.gate).wait(20)
        for i in range(3):
            yield b"after%d;" % i

    def close(self):
        with lock:
            state["closed"] += 1


def big(total: int):
    block = b"z" * 65536
    sent = 0
    while sent < total:
        state["produced"] = sent
        yield block
        sent += len(block)
    state["produced"] = sent


def app(environ, start_response):
    path = environ["PATH_INFO"]
    qs = environ["QUERY_STRING"]
    if path.startswith("/env"):
        body = environ["wsgi.input"].read()
        keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH", "CONTENT_TYPE",
                "SERVER_PROTOCOL", "REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme")
        out = {k: environ.get(k) for k in keys}
        out["http"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        out["body"] = body.decode("latin-1")
        out["multithread"] = environ["wsgi.multithread"]
        environ["wsgi.errors"].write("a line for wsgi.errors\n")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]
    if path == "/raise":
        raise ValueError("the application failed")
    if path == "/raise-late":
        def late():
            yield b"some;"
            raise ValueError("failed while streaming")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return late()
    if path == "/exc-info":
        try:
            raise KeyError("x")
        except KeyError:
            start_response("200 OK", [("Content-Type", "text/plain")])
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"custom error page"]
    if path == "/block":
        with lock:
            state["blocked"] += 1
        release.wait(30)
        with lock:
            state["blocked"] -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"unblocked"]
    if path == "/release":
        release.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"released"]
    if path == "/rearm":
        release.clear()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"rearmed"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Stream(qs)
    if path == "/open":
        _gate(qs).set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"opened"]
    if path == "/big":
        total = int(qs)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))])
        return big(total)
    if path == "/state":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(state).encode()]
    if path == "/write":  # the legacy write() callable
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]
    if path == "/none":
        return [b"no start_response"]
    if path == "/sleep":
        time.sleep(float(qs))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not here"]
