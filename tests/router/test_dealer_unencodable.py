"""Call payloads the other side's serializer cannot encode.

CALL -> INVOCATION, YIELD -> RESULT and ERROR -> ERROR cross serializers: a MessagePack extension
type cannot go to a JSON peer, a CBOR bignum neither to a JSON nor to a MessagePack peer.
The caller then gets ERROR ``wamp.error.invalid_argument`` (as Crossbar.io answers a call result
its validation refuses); a callee's unencodable ERROR reaches the caller with its error URI and a
text instead of its payload.  Nobody's session is closed; a broken progressive stream ends the call
(callee INTERRUPTed if it can take it).

Real node; raw peers (only they send arbitrary extension types / bignums) and autobahn-python.
"""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions

from support import wamp_raw
from support.advanced import silent
from support.autobahn_client import uid, w
from wampfabric.protocol.codes import CALL, ERROR, INTERRUPT, INVOCATION, REGISTER, REGISTERED, RESULT, WELCOME, YIELD

INVALID_ARGUMENT = "wamp.error.invalid_argument"


def raw(node, serializer, features=()):
    roles = {r: {"features": {f: True for f in features}} for r in ("caller", "callee")}
    p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer=serializer)
    reply = p.hello(node.realm, {"roles": roles})
    assert reply[0] == WELCOME, reply
    return p


def register(p, proc):
    r = p.request([REGISTER, p.next_id(), {}, proc])
    assert r[0] == REGISTERED, r


# (sender serializer, receiver serializer, a value the receiver's serializer cannot encode)
CASES = [
    pytest.param("msgpack", "json", msgpack.ExtType(5, b"abc"), id="msgpack-ext-to-json"),
    pytest.param("cbor", "json", 2**64, id="cbor-bignum-to-json"),
    pytest.param("cbor", "msgpack", 2**70, id="cbor-bignum-to-msgpack"),
]


def roundtrip_ok(caller, callee, proc):
    """An ordinary call still works between the two: neither session was harmed."""
    req = caller.next_id()
    caller.send([CALL, req, {}, proc, ["ok"]])
    inv = callee.recv()
    assert inv[0] == INVOCATION and inv[4] == ["ok"], inv
    callee.send([YIELD, inv[1], {}, ["fine"]])
    assert caller.recv() == [RESULT, req, {}, ["fine"]]


@pytest.mark.parametrize("src,dst,value", CASES)
def test_call_payload_unencodable_for_callee(node, src, dst, value):
    caller, callee = raw(node, src), raw(node, dst)
    try:
        proc = f"com.unenc.call.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {}, proc, [value]])
        err = caller.recv()
        assert err[:5] == [ERROR, CALL, req, {}, INVALID_ARGUMENT], err
        assert f"cannot be encoded for the callee ({dst})" in err[5][0]
        silent(callee)
        roundtrip_ok(caller, callee, proc)
    finally:
        caller.close()
        callee.close()
    node.assert_alive()


@pytest.mark.parametrize("src,dst,value", CASES)
def test_result_unencodable_for_caller(node, src, dst, value):
    callee, caller = raw(node, src), raw(node, dst)
    try:
        proc = f"com.unenc.result.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {}, proc, []])
        inv = callee.recv()
        callee.send([YIELD, inv[1], {}, [value]])
        err = caller.recv()
        assert err[:5] == [ERROR, CALL, req, {}, INVALID_ARGUMENT], err
        assert f"cannot be encoded in the caller's serializer ({dst})" in err[5][0]
        silent(callee)  # no ERROR, no ABORT for the callee
        silent(caller)
        roundtrip_ok(caller, callee, proc)
    finally:
        caller.close()
        callee.close()
    node.assert_alive()


def test_error_payload_unencodable_for_caller(node):
    callee, caller = raw(node, "msgpack"), raw(node, "json")
    try:
        proc = f"com.unenc.error.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {}, proc, []])
        inv = callee.recv()
        callee.send([ERROR, INVOCATION, inv[1], {"x": msgpack.ExtType(1, b"d")}, "com.app.failed",
                     [msgpack.ExtType(1, b"a")]])
        err = caller.recv()
        assert err[:5] == [ERROR, CALL, req, {}, "com.app.failed"], err
        assert "error payload cannot be encoded in json" in err[5][0]
        silent(callee)
        roundtrip_ok(caller, callee, proc)
    finally:
        caller.close()
        callee.close()
    node.assert_alive()


def test_progressive_result_unencodable_ends_the_call(node):
    callee = raw(node, "msgpack", ("progressive_call_results", "call_canceling"))
    caller = raw(node, "json", ("progressive_call_results",))
    try:
        proc = f"com.unenc.progress.{uid()}"
        register(callee, proc)
        req = caller.next_id()
        caller.send([CALL, req, {"receive_progress": True}, proc, []])
        inv = callee.recv()
        callee.send([YIELD, inv[1], {"progress": True}, [1]])
        assert caller.recv() == [RESULT, req, {"progress": True}, [1]]
        callee.send([YIELD, inv[1], {"progress": True}, [msgpack.ExtType(3, b"z")]])
        err = caller.recv()
        assert err[:5] == [ERROR, CALL, req, {}, INVALID_ARGUMENT], err
        intr = callee.recv()
        assert intr[0] == INTERRUPT and intr[1] == inv[1], intr
        callee.send([YIELD, inv[1], {"progress": True}, [2]])  # too late: dropped
        callee.send([YIELD, inv[1], {}, ["final"]])
        silent(caller)
        roundtrip_ok(caller, callee, proc)
    finally:
        caller.close()
        callee.close()
    node.assert_alive()


async def test_autobahn_json_caller_msgpack_callee(node, client):
    """A real JSON caller (autobahn-python): an ERROR it understands, and its session stays."""
    callee = await asyncio.to_thread(raw, node, "msgpack")
    caller = await client("websocket", "json")
    proc = f"com.unenc.ab.{uid()}"
    try:
        await asyncio.to_thread(register, callee, proc)
        call = asyncio.ensure_future(caller.call(proc))
        inv = await asyncio.to_thread(callee.recv)
        callee.send([YIELD, inv[1], {}, [msgpack.ExtType(9, b"q")]])
        with pytest.raises(ApplicationError) as ei:
            await w(call)
        assert ei.value.error == INVALID_ARGUMENT
        call = asyncio.ensure_future(caller.call(proc, options=CallOptions()))
        inv = await asyncio.to_thread(callee.recv)
        callee.send([YIELD, inv[1], {}, ["back"]])
        assert await w(call) == "back"
        assert caller.is_attached()
    finally:
        callee.close()
    node.assert_alive()
