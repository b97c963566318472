"""The node of the wsgi/asgi/reverseproxy tests: a web transport whose ``paths`` a test module
gives, the applications of this directory copied into the node directory's parent and found
through the router worker's ``pythonpath`` (relative to the node directory, as in Crossbar.io)."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

from httpfront import Raw, get
from support.nodes import FULL_PERMS, free_port, start_node

APPS = Path(__file__).resolve().parent


def apps_node(paths: dict, options: dict | None = None):
    def config(ports: dict, rs_path: str) -> dict:
        root = Path(rs_path).parent
        shutil.copytree(APPS, root / "apps", ignore=shutil.ignore_patterns("__pycache__", "appnode.py"))
        ports.clear()
        ports["web"] = free_port()
        transport = {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
                     "paths": paths}
        if options:
            transport["options"] = options
        return {"version": 2, "workers": [{
            "type": "router", "options": {"pythonpath": ["../apps"]},
            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
            "transports": [transport],
        }]}

    return start_node(config)


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def app_state(port: int) -> dict:
    """What the test applications' ``/raw/state`` path reports (their counters)."""
    return json.loads(get(port, "/raw/state")[2])


def check_backpressure(port: int, total: int = 24 * 1024 * 1024) -> dict:
    """GET ``/raw/big?<total>`` without reading: the application must be held back after a few
    socket buffers' worth (its ``produced`` counter), then every byte arrives once read.  Returns
    the response headers."""
    c = Raw(port)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.send(f"GET /raw/big?{total} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(1.5)
    produced = app_state(port)["produced"]
    assert produced < 10 * 1024 * 1024, produced
    c.s.settimeout(20)
    assert c._line().startswith(b"HTTP/1.1 200")
    headers = {}
    while line := c._line():
        k, _, v = line.decode().partition(":")
        headers[k.lower()] = v.strip()
    assert headers["content-length"] == str(total)
    got = len(c.buf)
    while got < total:
        chunk = c.s.recv(1 << 20)
        assert chunk, f"connection closed after {got} bytes"
        assert chunk.count(b"z") == len(chunk)
        got += len(chunk)
    assert got == total
    c.close()
    return headers
