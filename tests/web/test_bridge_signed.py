"""Signed HTTP bridge requests (``key``/``secret``: timestamp, seq, nonce, signature as query
arguments, HMAC-SHA256 as Crossbar.io computes it), replays and stale timestamps, and the
``require_ip`` / ``require_tls`` options; requests made with curl from a shell script."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import random
import shlex
import subprocess
from urllib.parse import urlencode

import pytest

from support.autobahn_client import subscribe, uid, w
from bridgenode import bridge_node_config, ws_sessions
from support.nodes import start_node, stop_node

KEY, SECRET = "backend-1", "s3cr3t-kEy"


def signed_config(ports: dict, rs_path: str) -> dict:
    signed = {"key": KEY, "secret": SECRET}
    return bridge_node_config(ports, {
        "ws": {"type": "websocket"},
        "pub": {"type": "publisher", "realm": "realm1", "role": "anonymous",
                "options": {**signed, "timestamp_delta_limit": 60}},
        "call": {"type": "caller", "realm": "realm1", "role": "anonymous", "options": signed},
        "pub-lan": {"type": "publisher", "realm": "realm1", "role": "anonymous",
                    "options": {"require_ip": ["10.0.0.0/8", "192.168.0.0/16"]}},
        "pub-local": {"type": "publisher", "realm": "realm1", "role": "anonymous",
                      "options": {"require_ip": ["10.0.0.0/8", "127.0.0.0/8"]}},
        "pub-tls": {"type": "publisher", "realm": "realm1", "role": "anonymous",
                    "options": {"require_tls": True}},
    })


@pytest.fixture(scope="module")
def snode():
    n = start_node(signed_config)
    yield n
    stop_node(n)


@pytest.fixture
async def sessions(snode):
    async for c in ws_sessions(snode):
        yield c


def utc_timestamp(offset: float = 0.0) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def sign(body: bytes, key: str = KEY, secret: str = SECRET, timestamp: str | None = None, seq: int = 1,
         nonce: int | None = None) -> dict:
    """The query of a signed request: HMAC-SHA256 over key | timestamp | seq | nonce | body."""
    q = {"key": key, "timestamp": timestamp or utc_timestamp(), "seq": str(seq),
         "nonce": str(random.randint(0, 2 ** 53) if nonce is None else nonce)}
    mac = hmac.new(secret.encode(), None, hashlib.sha256)
    for name in ("key", "timestamp", "seq", "nonce"):
        mac.update(q[name].encode())
    mac.update(body)
    q["signature"] = base64.urlsafe_b64encode(mac.digest()).decode()
    return q


def curl(url: str, body: bytes, query: dict | None = None) -> tuple[int, dict]:
    target = url + ("?" + urlencode(query) if query else "")
    script = (f"curl -sS -X POST -H 'Content-Type: application/json' --data-binary {shlex.quote(body.decode())} "
              f"-w '\\n%{{http_code}}\\n' {shlex.quote(target)}\n")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    text, _, status = proc.stdout.rstrip(b"\n").rpartition(b"\n")
    assert b"Traceback" not in text
    return int(status), json.loads(text)


async def post(url, body, query=None):
    return await asyncio.to_thread(curl, url, body, query)


async def test_signed_publish_accepted_and_replay_refused(snode, sessions):
    topic = f"com.example.signed.{uid()}"
    s = await sessions()
    events, _ = await subscribe(s, topic)
    body = json.dumps({"topic": topic, "args": ["signed"]}).encode()
    query = sign(body)
    status, answer = await post(f"{snode.web_url}/pub", body, query)
    assert status == 200, answer
    assert (await events.wait(1))[0][0] == ["signed"]
    # the very same request again (a captured request replayed): refused, nothing published
    status, answer = await post(f"{snode.web_url}/pub", body, query)
    assert status == 400 and "replayed" in answer["error"], answer
    # a new nonce with the same seq is a new request (clients restart their seq at 1, as Crossbar.io's do)
    status, answer = await post(f"{snode.web_url}/pub", body, sign(body, seq=1))
    assert status == 200, answer
    await events.wait(2)
    await asyncio.sleep(0.2)
    assert len(events.items) == 2


@pytest.mark.parametrize("case, status, text", [
    ("wrong-signature", 401, "invalid request signature"),
    ("wrong-secret", 401, "invalid request signature"),
    ("wrong-key", 401, "unknown key"),
    ("body-changed", 401, "invalid request signature"),
    ("stale", 400, "expired"),
    ("future", 400, "expired"),
    ("bad-timestamp", 400, "invalid timestamp"),
    ("bad-nonce", 400, "invalid nonce"),
    ("missing-signature", 400, "'signature' is missing"),
    ("unsigned", 400, "'key' is missing"),
])
async def test_bad_signed_requests_refused(snode, sessions, case, status, text):
    topic = f"com.example.signed.{uid()}"
    s = await sessions()
    events, _ = await subscribe(s, topic)
    body = json.dumps({"topic": topic, "args": [case]}).encode()
    query = sign(body)
    if case == "wrong-signature":
        sig = query["signature"]
        query["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    elif case == "wrong-secret":
        query = sign(body, secret="guess")
    elif case == "wrong-key":
        query = sign(body, key="backend-2")
    elif case == "body-changed":
        body = json.dumps({"topic": topic, "args": ["tampered"]}).encode()
    elif case == "stale":
        query = sign(body, timestamp=utc_timestamp(-600))  # the service allows 60 s
    elif case == "future":
        query = sign(body, timestamp=utc_timestamp(+600))
    elif case == "bad-timestamp":
        query = sign(body, timestamp="yesterday")
    elif case == "bad-nonce":
        query["nonce"] = "abc"
    elif case == "missing-signature":
        del query["signature"]
    elif case == "unsigned":
        query = None
    got, answer = await post(f"{snode.web_url}/pub", body, query)
    assert got == status and text in answer["error"], answer
    assert set(answer) == {"error", "args", "kwargs"}
    await asyncio.sleep(0.2)
    assert events.items == []


async def test_signed_call(snode, sessions):
    proc = f"com.example.signed.{uid()}"
    s = await sessions()
    await w(s.register(lambda a, b: a * b, proc))
    body = json.dumps({"procedure": proc, "args": [6, 7]}).encode()
    status, answer = await post(f"{snode.web_url}/call", body, sign(body))
    assert (status, answer) == (200, {"args": [42]})
    status, answer = await post(f"{snode.web_url}/call", body)
    assert status == 400


async def test_require_ip_and_tls(snode, sessions):
    topic = f"com.example.ip.{uid()}"
    s = await sessions()
    events, _ = await subscribe(s, topic)
    body = json.dumps({"topic": topic, "args": [1]}).encode()
    status, answer = await post(f"{snode.web_url}/pub-lan", body)
    assert status == 400 and "IP address" in answer["error"], answer
    status, answer = await post(f"{snode.web_url}/pub-tls", body)
    assert status == 400 and "TLS" in answer["error"], answer
    await asyncio.sleep(0.2)
    assert events.items == []
    status, answer = await post(f"{snode.web_url}/pub-local", body)
    assert status == 200, answer
    await events.wait(1)
