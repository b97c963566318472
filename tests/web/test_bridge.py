"""The HTTP bridge (``publisher``, ``caller``, ``webhook``) end to end: a node started from a
config, requests made by curl from a plain shell script, seen by autobahn-python and autobahn-js
subscribers and callees."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import subprocess

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, RegisterOptions

from support.autobahn_client import subscribe, uid, w
from support.js import JS_DIR, NODE, last_json_line, node_flags, require_node
from bridgenode import bridge_node_config, ws_sessions
from support.nodes import FULL_PERMS, start_node, stop_node

require_node("HTTP bridge tests with autobahn-js")

NOPUB = {"uri": "", "match": "prefix", "allow": {"call": False, "register": False, "publish": False, "subscribe": True},
         "disclose": {"caller": False, "publisher": False}, "cache": True}


def bridge_config(ports: dict, rs_path: str) -> dict:
    def svc(kind, role="bridge", realm="realm1", **options):
        cfg = {"type": kind, "realm": realm, "role": role}
        if options:
            cfg["options"] = options
        return cfg

    return bridge_node_config(ports, {
        "ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]},
        "pub": svc("publisher"),
        "pub-small": svc("publisher", post_body_limit=100),
        "pub-nopub": svc("publisher", role="nopub"),
        "pub-norealm": svc("publisher", realm="realm9"),
        "call": svc("caller"),
        "call-nopub": svc("caller", role="nopub"),
        "hook": svc("webhook", topic="com.example.hook", success_response="thanks"),
    }, roles=[
        {"name": "bridge", "permissions": [FULL_PERMS]},
        {"name": "nopub", "permissions": [NOPUB]},
    ])


@pytest.fixture(scope="module")
def bnode():
    n = start_node(bridge_config)
    yield n
    stop_node(n)


@pytest.fixture
async def sessions(bnode):
    async for c in ws_sessions(bnode):
        yield c


def sh(script: str, timeout: float = 20) -> tuple[int, bytes]:
    """Run a shell script whose last curl prints the status code on a line of its own (-w)."""
    proc = subprocess.run(["sh", "-c", script], capture_output=True, timeout=timeout)
    assert proc.returncode == 0, f"script failed ({proc.returncode}): {proc.stderr!r}"
    body, _, status = proc.stdout.rstrip(b"\n").rpartition(b"\n")
    return int(status), body


def curl_post(url: str, data, content_type: str | None = "application/json", extra: str = "") -> tuple[int, bytes]:
    """POST with curl from a shell script (the way a backend without a WAMP library would)."""
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    if isinstance(body, bytes):
        body = body.decode("latin-1")
    ctype = f"-H {shlex.quote('Content-Type: ' + content_type)} " if content_type else "-H 'Content-Type:' "
    script = (f"curl -sS -X POST {ctype}{extra} --data-binary {shlex.quote(body)} "
              f"-w '\\n%{{http_code}}\\n' {shlex.quote(url)}\n")
    return sh(script)


def no_traceback(body: bytes) -> None:
    assert b"Traceback" not in body and b'File "' not in body, body


@contextlib.asynccontextmanager
async def js_script(bnode, script: str, *args: str, lib: str = "autobahn"):
    """Run a tests/js script that prints a 'ready' line; yield (ready, final) with ``final``
    filled with its result line once the block is left (the script ends by itself)."""
    cmd = [NODE, *node_flags(lib), str(JS_DIR / script), "--lib", lib, *args]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    final: dict = {}
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    try:
        ready = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                while ready is None:
                    raw = await proc.stdout.readline()
                    if not raw:
                        break
                    line = raw.decode(errors="replace").strip()
                    lines.append(line)
                    msg = last_json_line(line)
                    if msg and msg.get("status") == "ready":
                        ready = msg
                    elif msg and msg.get("ok") is False:
                        break
        if ready is None:
            proc.kill()
            await proc.wait()
            pytest.fail(f"{script} did not get ready: {lines}\nstderr: {(await stderr_task)[-3000:]!r}\n"
                        f"node log: {bnode.log()[-3000:]}")
        yield ready, final
        if proc.returncode is None:
            proc.stdin.close()
        try:
            rest = await asyncio.wait_for(proc.stdout.read(), 20)
        except TimeoutError:
            rest = b""
        lines.extend(rest.decode(errors="replace").splitlines())
        final.update(last_json_line("\n".join(lines)) or {})
        assert final.get("ok"), f"{script} failed: {final}\nstderr: {(await stderr_task)[-3000:]!r}"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if not stderr_task.done():
            stderr_task.cancel()


# -- publisher ---------------------------------------------------------------------------------


async def test_curl_publish_seen_by_autobahn_python_and_js(bnode, sessions):
    topic = f"com.example.bridge.{uid()}"
    s = await sessions()
    events, _ = await subscribe(s, topic)
    async with js_script(bnode, "bridge_subscriber.mjs", "--url", bnode.ws_url, "--realm", "realm1",
                         "--serializer", "msgpack", "--prefix", topic) as (_, js):
        status, body = await asyncio.to_thread(
            curl_post, f"{bnode.web_url}/pub",
            {"topic": topic, "args": ["Hello from curl", 23, {"nested": [1, None]}], "kwargs": {"n": 1.5, "ok": True}})
        assert status == 200, body
        answer = json.loads(body)
        assert set(answer) == {"id"} and isinstance(answer["id"], int)
        args, kwargs, details = (await events.wait(1))[0]
        assert args == ["Hello from curl", 23, {"nested": [1, None]}]
        assert kwargs == {"n": 1.5, "ok": True}
        assert details.publication == answer["id"]
    assert js["event"] == {"args": ["Hello from curl", 23, {"nested": [1, None]}], "kwargs": {"n": 1.5, "ok": True},
                           "publication": answer["id"]}


async def test_publish_options_are_applied(bnode, sessions):
    """``options`` of a publisher request become PUBLISH options (here: exclude by session ID)."""
    topic = f"com.example.bridge.{uid()}"
    a, b = await sessions(), await sessions()
    ev_a, _ = await subscribe(a, topic)
    ev_b, _ = await subscribe(b, topic)
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub",
                                           {"topic": topic, "args": [1], "options": {"exclude": [a._session_id]}})
    assert status == 200, body
    await ev_b.wait(1)
    await asyncio.sleep(0.2)
    assert ev_a.items == []


async def test_role_without_publish_permission_gets_403(bnode, sessions):
    topic = f"com.example.bridge.{uid()}"
    s = await sessions()
    events, _ = await subscribe(s, topic)
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub-nopub", {"topic": topic, "args": [1]})
    assert status == 403, body
    answer = json.loads(body)
    assert answer["error"] == "wamp.error.not_authorized"
    assert topic in answer["args"][0]
    await asyncio.sleep(0.2)
    assert events.items == []
    # the same role may not call either
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/call-nopub", {"procedure": "com.x.y"})
    assert status == 403 and json.loads(body)["error"] == "wamp.error.not_authorized", body


async def test_body_limit_413(bnode):
    small = {"topic": "com.example.small", "args": ["x"]}
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub-small", small)
    assert status == 200, body
    big = {"topic": "com.example.small", "args": ["x" * 200]}
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub-small", big)
    assert status == 413, body
    no_traceback(body)
    bnode.assert_alive()


@pytest.mark.parametrize("data, ctype, status, text", [
    ("not json", "application/json", 400, b"not valid JSON"),
    ("[1, 2]", "application/json", 400, b"must be a JSON object"),
    ('{"args": [1]}', "application/json", 400, b"lacks the mandatory key 'topic'"),
    ('{"topic": 5}', "application/json", 400, b"'topic' must be a string"),
    ('{"topic": "com.x", "args": {"a": 1}}', "application/json", 400, b"'args' must be a list"),
    ('{"topic": "com.x", "kwargs": [1]}', "application/json", 400, b"'kwargs' must be an object"),
    ('{"topic": "com.x"}', "application/x-www-form-urlencoded", 400, b"content type"),
    ('{"topic": "com.x"}', "application/json; charset=latin-1", 400, b"charset"),
    ("", "application/json", 400, b"empty"),
])
async def test_bad_requests_get_clear_errors(bnode, data, ctype, status, text):
    got, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub", data, ctype)
    assert got == status, body
    assert text in body, body
    answer = json.loads(body)
    assert set(answer) == {"error", "args", "kwargs"}
    no_traceback(body)


async def test_invalid_utf8_and_methods(bnode):
    status, body = await asyncio.to_thread(
        sh, f"printf '{{\"topic\": \"com.x\", \"args\": [\"\\377\"]}}' | curl -sS -X POST "
            f"-H 'Content-Type: application/json' --data-binary @- -w '\\n%{{http_code}}\\n' {bnode.web_url}/pub")
    assert status == 400 and b"UTF-8" in body, body
    status, body = await asyncio.to_thread(sh, f"curl -sS -w '\\n%{{http_code}}\\n' {bnode.web_url}/pub")
    assert status == 405 and b"GET not allowed" in body, body
    # a CORS preflight
    status, body = await asyncio.to_thread(
        sh, f"curl -sS -X OPTIONS -H 'Origin: http://example.com' -H 'Access-Control-Request-Headers: content-type' "
            f"-D - -o /dev/null -w '\\n%{{http_code}}\\n' {bnode.web_url}/pub")
    assert status == 200
    head = body.decode().lower()
    assert "access-control-allow-origin: http://example.com" in head
    assert "access-control-allow-methods: post,put,options" in head
    assert "access-control-allow-headers: content-type" in head


async def test_realm_not_running_is_503(bnode):
    status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/pub-norealm", {"topic": "com.x"})
    assert status == 503, body
    assert b"realm 'realm9' is not running" in body
    bnode.assert_alive()


# -- caller ----------------------------------------------------------------------------------------


async def test_curl_call_autobahn_python_callee(bnode, sessions):
    prefix = f"com.example.bridge.{uid()}"
    s = await sessions()
    cancelled = asyncio.Event()

    def add2(a, b):
        return a + b

    def multi(*args, **kwargs):
        return CallResult(*args, **kwargs)

    def nothing():
        return None

    def oops(*args):
        raise ApplicationError("com.example.oops", "it failed", 7, detail={"x": [1, 2]})

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    for name, fn in [("add2", add2), ("multi", multi), ("nothing", nothing), ("oops", oops), ("slow", slow)]:
        await w(s.register(fn, f"{prefix}.{name}", options=RegisterOptions()))
    url = f"{bnode.web_url}/call"

    async def call(req):
        return await asyncio.to_thread(curl_post, url, req)

    status, body = await call({"procedure": f"{prefix}.add2", "args": [2, 3]})
    assert (status, json.loads(body)) == (200, {"args": [5]})
    status, body = await call({"procedure": f"{prefix}.multi", "args": [1, "b"], "kwargs": {"k": [True]}})
    assert (status, json.loads(body)) == (200, {"args": [1, "b"], "kwargs": {"k": [True]}})
    status, body = await call({"procedure": f"{prefix}.multi", "kwargs": {"only": 1}})
    assert (status, json.loads(body)) == (200, {"kwargs": {"only": 1}})
    status, body = await call({"procedure": f"{prefix}.nothing"})
    assert (status, json.loads(body)) == (200, {"args": [None]})
    # an application error is the application's answer: 200 with its URI, args and kwargs (as Crossbar.io)
    status, body = await call({"procedure": f"{prefix}.oops"})
    assert (status, json.loads(body)) == (200, {"error": "com.example.oops", "args": ["it failed", 7],
                                                "kwargs": {"detail": {"x": [1, 2]}}})
    status, body = await call({"procedure": f"{prefix}.missing"})
    assert status == 200 and json.loads(body)["error"] == "wamp.error.no_such_procedure", body
    # the WAMP call timeout: 504
    status, body = await call({"procedure": f"{prefix}.slow", "options": {"timeout": 300}})
    assert status == 504 and json.loads(body)["error"] == "wamp.error.timeout", body
    await w(cancelled.wait())
    status, body = await call({"procedure": f"{prefix}.add2", "options": {"timeout": "soon"}})
    assert status == 400 and b"options.timeout" in body


async def test_http_client_going_away_cancels_its_call(bnode, sessions):
    prefix = f"com.example.bridge.{uid()}"
    s = await sessions()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await w(s.register(slow, f"{prefix}.slow"))
    script = (f"curl -sS -m 1 -X POST -H 'Content-Type: application/json' "
              f"--data-binary '{{\"procedure\": \"{prefix}.slow\"}}' {bnode.web_url}/call; echo exit=$?")
    proc = await asyncio.to_thread(subprocess.run, ["sh", "-c", script], capture_output=True, timeout=20)
    assert b"exit=28" in proc.stdout  # curl's "operation timed out"
    assert started.is_set()
    await w(cancelled.wait())  # the bridge sent CANCEL, the callee got INTERRUPT


async def test_curl_call_autobahn_js_callee(bnode):
    prefix = f"com.example.bridge.js{uid()}"
    async with js_script(bnode, "callee.mjs", "--url", bnode.ws_url, "--realm", "realm1", "--serializer", "cbor",
                         "--prefix", prefix):
        status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/call",
                                               {"procedure": f"{prefix}.add2", "args": [2, 3], "kwargs": {"x": "y"}})
        assert status == 200, body
        assert json.loads(body) == {"args": [5], "kwargs": {"sum": 5, "echo": {"x": "y"}}}
        status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/call", {"procedure": f"{prefix}.fail"})
        assert (status, json.loads(body)) == (200, {"error": "com.myapp.error.custom", "args": [1, 2],
                                                    "kwargs": {"foo": "bar"}})
        # binary results travel as WAMP's JSON convention ("\0" + base64)
        status, body = await asyncio.to_thread(curl_post, f"{bnode.web_url}/call",
                                               {"procedure": f"{prefix}.make_bytes", "args": [3]})
        assert status == 200 and json.loads(body)["args"] == ["\0AAEC"], body


# -- webhook -------------------------------------------------------------------------------------


async def test_webhook_event_seen_by_autobahn_python_and_js(bnode, sessions):
    s = await sessions()
    events, _ = await subscribe(s, "com.example.hook")
    async with js_script(bnode, "bridge_subscriber.mjs", "--url", bnode.ws_url, "--realm", "realm1",
                         "--serializer", "json", "--prefix", "com.example.hook") as (_, js):
        status, body = await asyncio.to_thread(
            curl_post, f"{bnode.web_url}/hook", "payload=anything &at all", "application/x-www-form-urlencoded",
            "-H 'X-GitHub-Event: push'")
        assert (status, body) == (202, b"thanks")
        args, kwargs, _ = (await events.wait(1))[0]
    assert kwargs == {}
    (message,) = args
    assert message["body"] == "payload=anything &at all"
    assert message["headers"]["X-Github-Event"] == ["push"]
    assert message["headers"]["Content-Type"] == ["application/x-www-form-urlencoded"]
    assert message["headers"]["User-Agent"][0].startswith("curl/")
    assert js["event"]["args"] == [message]


# -- config --------------------------------------------------------------------------------------


def _with_path(svc: dict) -> dict:
    config = bridge_config({"web": 1, "rawsocket": 2, "restricted": 3}, "")
    config["workers"][0]["transports"][0]["paths"]["x"] = svc
    return config


@pytest.mark.parametrize("svc, where, text", [
    ({"type": "publisher", "realm": "realm1"}, "", "missing mandatory attribute 'role'"),
    ({"type": "publisher", "realm": "realm1", "role": "r", "options": {"post_body_limit": 2 ** 21}},
     ".options.post_body_limit", "between 0"),
    ({"type": "caller", "realm": "realm1", "role": "r", "options": {"timestamp_delta_limit": -1}},
     ".options.timestamp_delta_limit", "between 0"),
    ({"type": "caller", "realm": "realm1", "role": "r", "options": {"key": "k"}}, ".options", "without 'secret'"),
    ({"type": "publisher", "realm": "realm1", "role": "r", "options": {"require_ip": ["10.0.0.300/8"]}},
     ".options.require_ip[0]", "invalid IP network"),
    ({"type": "publisher", "realm": "realm1", "role": "r", "options": {"sekret": "x"}}, ".options.sekret",
     "unknown attribute"),
    ({"type": "webhook", "realm": "realm1", "role": "r", "options": {}}, ".options", "'topic'"),
    ({"type": "webhook", "realm": "realm1", "role": "r", "options": {"topic": "a..b"}}, ".options.topic",
     "invalid topic URI"),
    ({"type": "webhook", "realm": "realm1", "role": "r", "options": {"topic": "a.b", "secret": "x"}},
     ".options.secret", "unknown attribute"),
    ({"type": "longpoll", "options": {"session_timeout": 0}}, ".options.session_timeout", "must be positive"),
    ({"type": "longpoll", "options": {"queue_limit_bytes": "big"}}, ".options.queue_limit_bytes", "integer"),
])
def test_config_errors_name_the_path(svc, where, text):
    from wampfabric.config.base import ConfigError
    from wampfabric.config.check import check_config
    from wampfabric.personality import Personality

    with pytest.raises(ConfigError) as ei:
        check_config(_with_path(svc), Personality)
    assert ei.value.path == f"$.workers[0].transports[0].paths['x']{where}", str(ei.value)
    assert text in ei.value.message, str(ei.value)


def test_config_of_the_test_node_is_valid():
    from wampfabric.config.check import check_config
    from wampfabric.personality import Personality

    check_config(bridge_config({"web": 1, "rawsocket": 2, "restricted": 3}, ""), Personality)


def test_wampfabric_check_and_crossbar_check_accept_the_bridge_config(tmp_path):
    """Crossbar.io's shapes, every option set: accepted by both checkers."""
    import sys
    from pathlib import Path

    config = bridge_config({"web": 8080, "rawsocket": 8081, "restricted": 8082}, "")
    paths = config["workers"][0]["transports"][0]["paths"]
    signed = {"debug": True, "key": "k", "secret": "s", "require_tls": False, "require_ip": ["127.0.0.0/8"],
              "post_body_limit": 4096, "timestamp_delta_limit": 10}
    paths["pub-all"] = {"type": "publisher", "realm": "realm1", "role": "bridge", "options": signed}
    paths["call-all"] = {"type": "caller", "realm": "realm1", "role": "bridge", "options": signed}
    paths["hook-all"] = {"type": "webhook", "realm": "realm1", "role": "bridge",
                         "options": {"debug": True, "post_body_limit": 4096, "topic": "com.example.hook",
                                     "success_response": "yes", "error_response": "no", "github_secret": "g"}}
    paths["lp"] = {"type": "longpoll", "options": {"debug": True, "debug_transport_id": "kjmd3sBLOUnb3Fyr",
                                                   "request_timeout": 10, "session_timeout": 30,
                                                   "queue_limit_bytes": 131072, "queue_limit_messages": 100}}
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps(config))

    def check(cmd):
        return subprocess.run([*cmd, "check", "--cbdir", str(cbdir)], capture_output=True, text=True, timeout=120)

    r = check([sys.executable, "-m", "wampfabric"])
    assert r.returncode == 0, r.stdout + r.stderr
    crossbar = Path(__file__).resolve().parents[2] / "bench" / ".venv-crossbar" / "bin" / "crossbar"
    if not crossbar.exists():
        pytest.skip("Crossbar.io is not installed (bench/setup_crossbar.sh)")
    r = check([str(crossbar)])
    assert r.returncode == 0, r.stdout + r.stderr
