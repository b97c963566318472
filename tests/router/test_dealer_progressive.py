"""Progressive call results from JavaScript callees.

autobahn-js (22.11.1, 26.3.1) announces ``progressive_call_results`` but not ``call_canceling`` as a
callee; wampy 8.0.2 announces neither (it sends progressive YIELDs when the INVOCATION asks for
them).  The specification (advanced/rpc_progressive_call_results) says a dealer disregards the
progressive support of a callee without call canceling; wampfabric, like Crossbar.io, honours it by
default and keeps the strict rule as the realm option ``strict_progressive_call_results``.

When the caller leaves or cancels, the callee (which cannot be interrupted) keeps streaming: the
router drops those YIELDs, nobody gets an ERROR, and the callee keeps serving.

The callee is ``tests/js/progressive_callee.mjs`` (a real Node.js process), the caller autobahn-python.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions

from support import wamp_raw
from support.nodes import FULL_PERMS, node_config, start_node, stop_node
from support.autobahn_client import connect, uid, w
from support.js import JS_DIR, NODE, last_json_line, node_flags, require_node
from wampfabric.protocol.codes import (
    CALL, CANCEL, ERROR, INTERRUPT, INVOCATION, REGISTER, REGISTERED, RESULT, WELCOME, YIELD,
)

require_node()

STRICT_REALM = "strictprog"
# WAMPFABRIC_TEST_AGAINST=crossbar runs this module against Crossbar.io (which streams, too); it has no
# strict_progressive_call_results option, so those tests are skipped there
AGAINST_CROSSBAR = os.environ.get("WAMPFABRIC_TEST_AGAINST") == "crossbar"
wampfabric_only = pytest.mark.skipif(AGAINST_CROSSBAR, reason="realm option of wampfabric")

CALLEES = [pytest.param(lib, ser, id=f"{lib}-{ser}")
           for lib, ser in (("autobahn", "json"), ("autobahn", "msgpack"), ("autobahn26", "cbor"),
                            ("wampy", "json"), ("wampy", "msgpack"), ("wampy", "cbor"))]


def progressive_config(ports: dict, rs_path: str) -> dict:
    cfg = copy.deepcopy(node_config(ports, rs_path))
    cfg["workers"][0]["realms"].append({
        "name": STRICT_REALM,
        "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}],
        "options": {} if AGAINST_CROSSBAR else {"strict_progressive_call_results": True},
    })
    return cfg


@pytest.fixture(scope="module")
def pnode():
    n = start_node(progressive_config)
    yield n
    stop_node(n)


class JsCallee:
    """tests/js/progressive_callee.mjs as a running process; ``finished()`` waits for its next
    report of a finished invocation."""

    def __init__(self, proc):
        self.proc = proc
        self.lines: list[str] = []
        self.events: asyncio.Queue = asyncio.Queue()
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.reader = asyncio.ensure_future(self._read())
        self.stderr = asyncio.ensure_future(proc.stderr.read())

    async def _read(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").strip()
            self.lines.append(line)
            msg = last_json_line(line)
            if not msg:
                continue
            if msg.get("status") == "ready" and not self.ready.done():
                self.ready.set_result(msg)
            elif msg.get("event") == "finished":
                self.events.put_nowait(msg)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"JS callee did not get ready: {self.lines}"))

    async def finished(self, timeout: float = 10.0) -> dict:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def stop(self) -> dict:
        """Close stdin (the callee leaves) and return its final result line."""
        if self.proc.returncode is None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.reader
        final = last_json_line("\n".join(self.lines)) or {}
        final["_exit"] = self.proc.returncode
        final["_stderr"] = (await self.stderr).decode(errors="replace")[-3000:]
        return final


@contextlib.asynccontextmanager
async def js_callee(node, lib: str, serializer: str, prefix: str, realm: str | None = None):
    cmd = [NODE, *node_flags(lib), str(JS_DIR / "progressive_callee.mjs"), "--lib", lib, "--url", node.ws_url,
           "--realm", realm or node.realm, "--serializer", serializer, "--prefix", prefix, "--timeout", "60"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    callee = JsCallee(proc)
    try:
        try:
            await asyncio.wait_for(asyncio.shield(callee.ready), 20)
        except Exception:
            final = await callee.stop()
            pytest.fail(f"JS callee did not get ready: {json.dumps(final)[:3000]}\n"
                        f"router log (tail):\n{node.log()[-3000:]}")
        yield callee
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def assert_callee_ok(final: dict, node) -> None:
    """The callee was never thrown out and left cleanly (no ERROR, ABORT or lost connection)."""
    assert final.get("ok") is True and final["_exit"] == 0, (
        f"JS callee failed: {json.dumps(final)[:3000]}\nrouter log (tail):\n{node.log()[-3000:]}")
    assert "stopped_by" in final and final["stopped_by"] == "stdin closed", final
    node.assert_alive()
    assert "Traceback" not in node.log()


@pytest.mark.parametrize("lib,serializer", CALLEES)
async def test_js_callee_streams_progressive_results(pnode, js_deps, lib, serializer):
    prefix = f"com.prog.{uid()}"
    async with js_callee(pnode, lib, serializer, prefix) as callee:
        caller = await connect(pnode, "rawsocket-tcp", "msgpack")
        try:
            got = []
            res = await w(caller.call(f"{prefix}.stream", 3, options=CallOptions(on_progress=got.append)))
            assert got == [0, 1, 2] and res == "done"
            fin = await callee.finished()
            assert fin["procedure"] == "stream" and fin["receive_progress"] is True and fin["sent"] == 3
            # a caller that did not ask for progressive results: none are offered, the result arrives
            assert await w(caller.call(f"{prefix}.stream", 3)) == "done"
            fin = await callee.finished()
            assert fin["receive_progress"] is False and fin["sent"] == 0
        finally:
            await caller.shutdown()
        final = await callee.stop()
    assert_callee_ok(final, pnode)


@pytest.mark.parametrize("lib,serializer", CALLEES)
async def test_js_callee_caller_leaves_while_streaming(pnode, js_deps, lib, serializer):
    """The caller goes away after 3 results; the callee streams on (it cannot be interrupted): the
    router drops those YIELDs and its final one, nobody gets an ERROR, the callee serves on."""
    prefix = f"com.prog.{uid()}"
    async with js_callee(pnode, lib, serializer, prefix) as callee:
        caller = await connect(pnode, "websocket", "json")
        got = []
        three = asyncio.get_running_loop().create_future()

        def on_progress(i):
            got.append(i)
            if len(got) == 3 and not three.done():
                three.set_result(None)

        call = asyncio.ensure_future(caller.call(f"{prefix}.endless", 20, 40, options=CallOptions(on_progress=on_progress)))
        await w(three)
        caller.transport.close()  # the caller's connection is lost mid-stream
        with contextlib.suppress(Exception):
            await asyncio.wait_for(call, 5)
        fin = await callee.finished(timeout=15)
        assert fin["procedure"] == "endless" and fin["receive_progress"] is True and fin["sent"] == 40
        assert 3 <= len(got) < 40
        # the callee still serves another caller
        other = await connect(pnode, "rawsocket-tcp", "cbor")
        try:
            more = []
            assert await w(other.call(f"{prefix}.stream", 2, options=CallOptions(on_progress=more.append))) == "done"
            assert more == [0, 1]
        finally:
            await other.shutdown()
        final = await callee.stop()
    assert_callee_ok(final, pnode)


@pytest.mark.parametrize("lib,serializer", CALLEES[:1] + CALLEES[3:4])
async def test_js_callee_caller_cancels_while_streaming(pnode, js_deps, lib, serializer):
    """CANCEL mid-stream: the caller gets wamp.error.canceled once and nothing after it (autobahn-python
    would treat a RESULT for a finished call as a protocol violation); the callee's later YIELDs are dropped."""
    prefix = f"com.prog.{uid()}"
    async with js_callee(pnode, lib, serializer, prefix) as callee:
        caller = await connect(pnode, "websocket", "msgpack")
        try:
            got = []
            three = asyncio.get_running_loop().create_future()

            def on_progress(i):
                got.append(i)
                if len(got) == 3 and not three.done():
                    three.set_result(None)

            call = asyncio.ensure_future(caller.call(f"{prefix}.endless", 20, 30, options=CallOptions(on_progress=on_progress)))
            await w(three)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            n_at_cancel = len(got)
            fin = await callee.finished(timeout=15)
            assert fin["sent"] == 30
            await asyncio.sleep(0.2)
            assert len(got) <= n_at_cancel + 1  # at most one RESULT was already on its way
            # the caller's session is fine: it can still call
            assert await w(caller.call(f"{prefix}.stream", 0)) == "done"
            assert caller.is_attached()
        finally:
            await caller.shutdown()
        final = await callee.stop()
    assert_callee_ok(final, pnode)


@wampfabric_only
@pytest.mark.parametrize("lib,serializer", [CALLEES[0], CALLEES[3]])
async def test_strict_realm_option_disregards_callee_without_canceling(pnode, js_deps, lib, serializer):
    """``strict_progressive_call_results: true``: the specification's rule, no progressive results
    for a callee without call_canceling; the call still succeeds with its final result."""
    prefix = f"com.prog.{uid()}"
    async with js_callee(pnode, lib, serializer, prefix, realm=STRICT_REALM) as callee:
        caller = await connect(pnode, "websocket", "json", realm=STRICT_REALM)
        try:
            got = []
            assert await w(caller.call(f"{prefix}.stream", 3, options=CallOptions(on_progress=got.append))) == "done"
            assert got == []
            fin = await callee.finished()
            assert fin["receive_progress"] is False
        finally:
            await caller.shutdown()
        final = await callee.stop()
    assert_callee_ok(final, pnode)


# ---------------------------------------------------------------------------
# raw peers: exactly the announced features, every message seen


def raw(node, features: dict, realm: str | None = None) -> wamp_raw.RawSocketPeer:
    roles = {r: {"features": {f: True for f in features.get(r, ())}}
             for r in ("caller", "callee", "publisher", "subscriber")}
    p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer="msgpack")
    reply = p.hello(realm or node.realm, {"roles": roles})
    assert reply is not None and reply[0] == WELCOME, reply
    return p


def silent(p, t: float = 0.3) -> None:
    try:
        m = p.recv(t)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {m!r}")


def register(p, proc: str) -> None:
    r = p.request([REGISTER, p.next_id(), {}, proc])
    assert r[0] == REGISTERED, r


def test_raw_callee_without_canceling_caller_leaves(pnode):
    """Default realm: no INTERRUPT (the callee cannot take one), the callee's later YIELDs are dropped
    without an ERROR to it, and it keeps serving."""
    callee = raw(pnode, {"callee": ["progressive_call_results"]})
    caller = raw(pnode, {"caller": ["progressive_call_results"]})
    caller2 = raw(pnode, {"caller": ["progressive_call_results"]})
    try:
        proc = f"com.prog.raw.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {"receive_progress": True}, proc, []])
        inv = callee.recv()
        assert inv[0] == INVOCATION and inv[3].get("receive_progress") is True, inv
        callee.send([YIELD, inv[1], {"progress": True}, [1]])
        assert caller.recv() == [RESULT, req, {"progress": True}, [1]]
        caller.close()
        time.sleep(0.2)
        for i in range(5):
            callee.send([YIELD, inv[1], {"progress": True}, [i]])
        callee.send([YIELD, inv[1], {}, ["final"]])
        silent(callee)  # no INTERRUPT, no ERROR
        req2 = caller2.next_id()
        caller2.send([CALL, req2, {}, proc, []])
        inv2 = callee.recv()
        assert inv2[0] == INVOCATION and "receive_progress" not in inv2[3]
        callee.send([YIELD, inv2[1], {}, ["ok"]])
        assert caller2.recv() == [RESULT, req2, {}, ["ok"]]
        silent(caller2)
    finally:
        for p in (callee, caller, caller2):
            p.close()
    pnode.assert_alive()


@wampfabric_only
def test_raw_strict_realm(pnode):
    """strict_progressive_call_results: only a callee with call_canceling is asked for progressive
    results; progressive YIELDs of another are not passed on, its final YIELD is."""
    weak = raw(pnode, {"callee": ["progressive_call_results"]}, STRICT_REALM)
    full = raw(pnode, {"callee": ["progressive_call_results", "call_canceling"]}, STRICT_REALM)
    caller = raw(pnode, {"caller": ["progressive_call_results", "call_canceling"]}, STRICT_REALM)
    try:
        base = f"com.prog.strict.{uid()}"
        register(weak, base + ".weak")
        register(full, base + ".full")
        req = caller.next_id()
        caller.send([CALL, req, {"receive_progress": True}, base + ".weak", []])
        inv = weak.recv()
        assert inv[0] == INVOCATION and "receive_progress" not in inv[3], inv
        weak.send([YIELD, inv[1], {"progress": True}, [1]])
        weak.send([YIELD, inv[1], {}, ["final"]])
        assert caller.recv() == [RESULT, req, {}, ["final"]]
        req = caller.next_id()
        caller.send([CALL, req, {"receive_progress": True}, base + ".full", []])
        inv = full.recv()
        assert inv[3].get("receive_progress") is True, inv
        full.send([YIELD, inv[1], {"progress": True}, [1]])
        assert caller.recv() == [RESULT, req, {"progress": True}, [1]]
        caller.close()
        m = full.recv()
        assert m[0] == INTERRUPT and m[1] == inv[1] and m[2].get("mode") == "killnowait", m
    finally:
        for p in (weak, full, caller):
            p.close()
    pnode.assert_alive()


def test_raw_cancel_kill_drops_later_progressive_results(pnode):
    """CANCEL mode kill: the dealer waits for the callee's ERROR; progressive YIELDs meanwhile are
    not passed on to the caller who canceled."""
    callee = raw(pnode, {"callee": ["progressive_call_results", "call_canceling"]})
    caller = raw(pnode, {"caller": ["progressive_call_results", "call_canceling"]})
    try:
        proc = f"com.prog.kill.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {"receive_progress": True}, proc, []])
        inv = callee.recv()
        callee.send([YIELD, inv[1], {"progress": True}, [1]])
        assert caller.recv() == [RESULT, req, {"progress": True}, [1]]
        caller.send([CANCEL, req, {"mode": "kill"}])
        m = callee.recv()
        assert m[0] == INTERRUPT and m[2].get("mode") == "kill", m
        callee.send([YIELD, inv[1], {"progress": True}, [2]])  # crossed the INTERRUPT: dropped
        silent(caller)
        callee.send([ERROR, INVOCATION, inv[1], {}, "wamp.error.canceled"])
        m = caller.recv()
        assert m[:5] == [ERROR, CALL, req, {}, "wamp.error.canceled"], m
    finally:
        callee.close()
        caller.close()
    pnode.assert_alive()
