"""Interoperability with third-party JavaScript WAMP clients on Node.js.

Clients (pinned in tests/js/package.json, locked in tests/js/package-lock.json):

* autobahn-js 22.11.1 (npm ``autobahn``): on Node 20 it uses the ``ws``
  package as WebSocket; serializers JSON, MessagePack (msgpack5), CBOR (cbor).
* autobahn-js 26.3.1 (npm alias ``autobahn26``): uses the global WebSocket
  (Node >= 22; on Node 20 we pass ``--experimental-websocket``, or the script
  falls back to ``ws``); same serializers.
* Wampy.js 8.0.2 (npm ``wampy``) with ``ws``; serializers JSON, MessagePack
  (msgpackr), CBOR (cbor-x).

Every scenario is a Node script in tests/js/ that connects to the ``node``
fixture's router, runs, prints one JSON result line and exits 0 (or non-zero
with a reason).  The scripts check their own expectations; this module
asserts on the reported observations too.

The npm dependencies are installed with ``npm ci`` into tests/js/node_modules
when missing or older than package-lock.json.  The module is skipped only if
``node`` itself is not installed.

Run against the reference router: ``WAMPFABRIC_TEST_AGAINST=crossbar pytest tests/interop/test_interop_js.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from urllib.parse import urlparse

import pytest

from support.js import CLIENT_VERSION, JS_CLIENTS, JS_DIR, NODE, last_json_line, node_flags, require_node, run_js

require_node()

SERIALIZERS = ["json", "msgpack", "cbor"]
SCRIPT = {"autobahn": "autobahn_scenarios.mjs", "autobahn26": "autobahn_scenarios.mjs", "wampy": "wampy_scenarios.mjs"}

CLIENT_PARAMS = [pytest.param(lib, ser, id=f"{lib}-{ser}") for lib in JS_CLIENTS for ser in SERIALIZERS]
BINARY_SERIALIZERS = [p for p in CLIENT_PARAMS if p.values[1] != "json"]

# what the pubsub scenarios publish (tests/js/*_scenarios.mjs: PUB_ARGS / PUB_KWARGS)
PUB_ARGS = [1, "two", 3.5, True, None, {"nested": [1, 2, {"deep": "x"}]}, "üñíçødé ✓"]
PUB_KWARGS = {"a": 1, "b": [True, False, None], "s": "str", "n": -42, "big": 2**40, "obj": {"k": "v"}}


def run_scenario(node, lib: str, serializer: str, scenario: str, url: str | None = None) -> dict:
    args = ["--url", url or node.ws_url, "--realm", node.realm, "--serializer", serializer, "--scenario", scenario]
    if lib != "wampy":
        args += ["--lib", lib]
    result = run_js(node, SCRIPT[lib], *args, lib=lib)
    assert result["scenario"] == scenario
    assert result["serializer"] == serializer
    assert result["client"] == lib
    assert result["client_version"] == CLIENT_VERSION[lib]
    assert result["protocol"] == f"wamp.2.{serializer}", "router picked another serializer than the only one offered"
    node.assert_alive()
    return result


def assert_closed_cleanly(result: dict):
    closes = result["close"] if isinstance(result["close"], list) else [result["close"]]
    for c in closes:
        assert c["reason"] == "closed", f"session did not close cleanly: {c}"
        if "goodbye_reason" in c:  # autobahn-js: the reason of the router's GOODBYE reply
            # the spec's reply reason is wamp.close.goodbye_and_out; Crossbar.io replies wamp.close.normal
            assert c["goodbye_reason"] in ("wamp.close.goodbye_and_out", "wamp.close.normal"), c


# ---------------------------------------------------------------------------
# scenarios: one JS client talking to itself through the router


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_pubsub_args_kwargs_acknowledged(node, js_deps, lib, serializer):
    r = run_scenario(node, lib, serializer, "pubsub")
    assert isinstance(r["publication_id"], int) and 1 <= r["publication_id"] <= 2**53
    assert isinstance(r["subscription_id"], int) and 1 <= r["subscription_id"] <= 2**53
    assert r["received"] == {"args": PUB_ARGS, "kwargs": PUB_KWARGS}
    # the publisher (also subscribed) is excluded from its own event by default
    assert r["publisher_events"] == [["from-a"]]
    if "event_details_publication" in r:
        assert r["event_details_publication"] == r["publication_id"]
    assert_closed_cleanly(r)


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_rpc_args_kwargs(node, js_deps, lib, serializer):
    r = run_scenario(node, lib, serializer, "rpc")
    assert isinstance(r["registration_id"], int) and 1 <= r["registration_id"] <= 2**53
    assert r["result"] == {"args": [5], "kwargs": {"sum": 5, "echo": {"x": "y", "list": [1, 2]}}}
    assert r["invocation"]["args"] == [2, 3]
    assert r["invocation"]["kwargs"] == {"x": "y", "list": [1, 2]}
    assert r["single"] == 42
    assert r["async_result"] == [3, 2, 1]
    assert r["after_unregister"] == "wamp.error.no_such_procedure"
    assert_closed_cleanly(r)


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_rpc_application_error(node, js_deps, lib, serializer):
    r = run_scenario(node, lib, serializer, "app_error")
    assert r["error"] == {"uri": "com.myapp.error.custom", "args": [1, 2], "kwargs": {"foo": "bar"}}
    assert r["async_error"]["uri"] == "com.myapp.error.async"
    assert r["async_error"]["args"] == ["later"]
    assert r["async_error"]["kwargs"] in (None, {})
    assert_closed_cleanly(r)


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_binary_payloads(node, js_deps, lib, serializer):
    """Bytes in args/kwargs via RPC and PubSub.

    msgpack/cbor: native binary.  json: neither JS client converts bytes, so
    the scripts use the WAMP convention ("\\u0000" + base64 string) by hand and
    the router must hand those strings through unchanged (as bytes).
    """
    r = run_scenario(node, lib, serializer, "binary")
    expected = bytes(range(256)) + bytes([0x00, 0xFF, 0x00, 0x5C])
    assert bytes.fromhex(r["echoed_hex"]) == expected
    if serializer == "json":
        assert r["binary_mode"] == "json-nul-base64-convention"
        assert r["callee_saw"]["types"] == ["string", "string", "string"]
    else:
        assert r["binary_mode"] == "native"
        binary_types = {"Buffer", "Uint8Array"}
        assert set(r["callee_saw"]["types"][:2]) <= binary_types, r["callee_saw"]
        assert r["callee_saw"]["kw_types"]["blob"] in binary_types, r["callee_saw"]
        assert r["result_types"][2] == "string"
        assert r["event_types"][0] in binary_types
    assert_closed_cleanly(r)


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_call_unknown_procedure(node, js_deps, lib, serializer):
    r = run_scenario(node, lib, serializer, "no_such_procedure")
    assert r["error"] == "wamp.error.no_such_procedure"
    assert_closed_cleanly(r)


@pytest.mark.parametrize("lib,serializer", CLIENT_PARAMS)
def test_not_authorized_on_restricted_transport(node, js_deps, lib, serializer):
    r = run_scenario(node, lib, serializer, "not_authorized", url=node.restricted_ws_url)
    assert r["authrole"] == "restricted"
    assert r["authmethod"] == "anonymous"
    assert r["results"] == {
        "publish_other": "wamp.error.not_authorized",  # publish com.other.topic, acknowledge=true
        "call_other": "wamp.error.not_authorized",
        "subscribe_other": "wamp.error.not_authorized",
        "register_public": "wamp.error.not_authorized",  # com.public.: call/subscribe only
        "publish_public": "wamp.error.not_authorized",
        "subscribe_public": "ok",
        "call_public_unregistered": "wamp.error.no_such_procedure",  # authorized, but nobody registered it
    }
    assert_closed_cleanly(r)


# ---------------------------------------------------------------------------
# autobahn-js over RawSocket (its Node transport: JSON only)

RAWSOCKET_PARAMS = [pytest.param(lib, kind, id=f"{lib}-{kind}")
                    for lib in ("autobahn", "autobahn26") for kind in ("rawsocket-tcp", "rawsocket-unix")]


def rawsocket_url(node, kind: str) -> str:
    if kind == "rawsocket-tcp":
        return f"rs://127.0.0.1:{node.rawsocket_port}"
    return f"rs+unix://{node.rawsocket_path}"


@pytest.mark.parametrize("lib,kind", RAWSOCKET_PARAMS)
@pytest.mark.parametrize("scenario", ["pubsub", "rpc", "app_error", "no_such_procedure"])
def test_autobahn_js_rawsocket(node, js_deps, lib, kind, scenario):
    r = run_scenario(node, lib, "json", scenario, url=rawsocket_url(node, kind))
    assert r["transport"] == kind
    if scenario == "pubsub":
        assert r["received"] == {"args": PUB_ARGS, "kwargs": PUB_KWARGS}
        assert r["publisher_events"] == [["from-a"]]
    elif scenario == "rpc":
        assert r["result"] == {"args": [5], "kwargs": {"sum": 5, "echo": {"x": "y", "list": [1, 2]}}}
        assert r["after_unregister"] == "wamp.error.no_such_procedure"
    elif scenario == "app_error":
        assert r["error"] == {"uri": "com.myapp.error.custom", "args": [1, 2], "kwargs": {"foo": "bar"}}
    else:
        assert r["error"] == "wamp.error.no_such_procedure"
    assert_closed_cleanly(r)


# ---------------------------------------------------------------------------
# cross-client: autobahn-python calls a JavaScript callee (serializer translation)


def _py_serializer(name: str):
    import txaio

    txaio.use_asyncio()
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

    return {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}[name]()


@contextlib.asynccontextmanager
async def py_session(node, serializer: str, transport: str = "websocket"):
    """An autobahn-python (asyncio) session joined to node.realm."""
    import txaio

    txaio.use_asyncio()
    from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    joined: asyncio.Future = loop.create_future()

    class _Session(ApplicationSession):
        def onJoin(self, details):
            if not joined.done():
                joined.set_result(self)

        def onLeave(self, details):
            if not joined.done():
                joined.set_exception(ConnectionError(f"join refused: {details.reason} {details.message}"))
            super().onLeave(details)

        def onDisconnect(self):
            if not joined.done():
                joined.set_exception(ConnectionError("transport closed before the session joined"))

    def make():
        return _Session(ComponentConfig(node.realm))

    if transport == "websocket":
        url = urlparse(node.ws_url)
        factory = WampWebSocketClientFactory(make, url=node.ws_url, serializers=[_py_serializer(serializer)])
        host, port = url.hostname, url.port
    else:
        factory = WampRawSocketClientFactory(make, serializer=_py_serializer(serializer))
        host, port = "127.0.0.1", node.rawsocket_port
    tr, _ = await asyncio.wait_for(loop.create_connection(factory, host, port), 10)
    try:
        session = await asyncio.wait_for(joined, 10)
        yield session
        if session.is_attached():
            await asyncio.wait_for(session.leave(), 5)
    finally:
        tr.close()


@contextlib.asynccontextmanager
async def js_callee(node, lib: str, serializer: str, prefix: str, timeout_s: int = 30):
    """Start tests/js/callee.mjs; yield its 'ready' line; on exit close its stdin and collect the result."""
    cmd = [NODE, *node_flags(lib), str(JS_DIR / "callee.mjs"), "--lib", lib, "--url", node.ws_url,
           "--realm", node.realm, "--serializer", serializer, "--prefix", prefix, "--timeout", str(timeout_s)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    out_lines: list[str] = []
    final: dict = {}
    try:
        ready = None
        try:
            async with asyncio.timeout(20):
                while ready is None:
                    raw = await proc.stdout.readline()
                    if not raw:
                        break
                    line = raw.decode(errors="replace").strip()
                    out_lines.append(line)
                    msg = last_json_line(line)
                    if msg and msg.get("status") == "ready":
                        ready = msg
                    elif msg and msg.get("ok") is False:
                        break
        except TimeoutError:
            pass
        if ready is None:
            proc.kill()
            await proc.wait()
            pytest.fail(f"JS callee did not get ready: {out_lines}\nstderr: {(await stderr_task)[-3000:]!r}\n"
                        f"router log (tail):\n{node.log()[-3000:]}")
        yield ready, final
    finally:
        if proc.returncode is None:
            proc.stdin.close()
            try:
                rest = await asyncio.wait_for(proc.stdout.read(), 10)
                out_lines.extend(rest.decode(errors="replace").splitlines())
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        stderr_text = (await stderr_task).decode(errors="replace")
        final.update(last_json_line("\n".join(out_lines)) or {})
        final["_exit"] = proc.returncode
        final["_stderr"] = stderr_text[-3000:]


def _pattern(n: int) -> bytes:
    return bytes(i % 256 for i in range(n))


CROSS_PARAMS = (
    [pytest.param(lib, js, py, "websocket", id=f"{lib}-{js}_py-{py}")
     for lib in ("autobahn", "wampy") for js in SERIALIZERS for py in SERIALIZERS]
    + [pytest.param("autobahn26", s, s, "websocket", id=f"autobahn26-{s}_py-{s}") for s in SERIALIZERS]
    + [pytest.param("autobahn", js, py, "rawsocket", id=f"autobahn-{js}_py-{py}-rawsocket")
       for js, py in (("json", "msgpack"), ("msgpack", "cbor"), ("cbor", "json"))]
)


@pytest.mark.parametrize("lib,js_ser,py_ser,py_transport", CROSS_PARAMS)
async def test_python_caller_js_callee(node, js_deps, lib, js_ser, py_ser, py_transport):
    from autobahn.wamp.exception import ApplicationError

    prefix = f"com.interop.cross.{lib}.{js_ser}.{py_ser}.r{uuid.uuid4().hex[:12]}"
    blob = bytes(range(256)) + b"\x00\xff\x00\\"
    async with js_callee(node, lib, js_ser, prefix) as (ready, final):
        assert ready["protocol"] == f"wamp.2.{js_ser}"
        async with py_session(node, py_ser, py_transport) as s:
            # plain args/kwargs
            res = await asyncio.wait_for(s.call(f"{prefix}.add2", 2, 3, x="y", n=[1, None, True]), 5)
            assert list(res.results) == [5]
            assert res.kwresults == {"sum": 5, "echo": {"x": "y", "n": [1, None, True]}}

            # bytes Python -> JS -> Python, through the callee's serializer
            res = await asyncio.wait_for(s.call(f"{prefix}.echo", blob, "text", 7, b"", kw=b"kw-bytes"), 5)
            assert list(res.results) == [blob, "text", 7, b""]
            assert res.kwresults == {"kw": b"kw-bytes"}

            # what the JS callee actually received
            seen = await asyncio.wait_for(s.call(f"{prefix}.inspect", blob, "plain", kb=b"\x01\x02"), 5)
            seen = seen if isinstance(seen, dict) else seen.kwresults
            arg0, arg1 = seen["args"]
            want_kind = "json-nul-base64" if js_ser == "json" else "binary"
            assert arg0["kind"] == want_kind, seen
            assert arg0["length"] == len(blob) and arg0["sha256"] == hashlib.sha256(blob).hexdigest(), seen
            assert arg1 == {"kind": "value", "type": "string", "value": "plain"}
            assert seen["kwargs"]["kb"]["kind"] == want_kind
            assert seen["kwargs"]["kb"]["sha256"] == hashlib.sha256(b"\x01\x02").hexdigest()

            # bytes made in JS arrive as bytes in Python
            res = await asyncio.wait_for(s.call(f"{prefix}.make_bytes", 300), 5)
            assert list(res.results) == [_pattern(300)]
            assert res.kwresults == {"sha256": hashlib.sha256(_pattern(300)).hexdigest()}

            # application error raised in JS
            with pytest.raises(ApplicationError) as ei:
                await asyncio.wait_for(s.call(f"{prefix}.fail"), 5)
            assert ei.value.error == "com.myapp.error.custom"
            assert list(ei.value.args) == [1, 2]
            assert ei.value.kwargs == {"foo": "bar"}

            # and an unknown procedure next to the registered ones
            with pytest.raises(ApplicationError) as ei:
                await asyncio.wait_for(s.call(f"{prefix}.missing"), 5)
            assert ei.value.error == ApplicationError.NO_SUCH_PROCEDURE
    assert final.get("_exit") == 0 and final.get("ok"), f"JS callee failed: {final}"
    assert final["invocations"] == {"add2": 1, "echo": 1, "inspect": 1, "make_bytes": 1, "fail": 1}
    assert final["close"]["reason"] == "closed"
    node.assert_alive()
