"""The controller <-> worker channel (transport/stdio.py) in one process: WAMP over two pipes,
RawSocket frame headers + msgpack, end of file = the peer is gone."""

from __future__ import annotations

import asyncio
import os

import pytest

from wampfabric.client import ApplicationError
from wampfabric.protocol import rawsocket as rs
from wampfabric.protocol.codes import HELLO
from wampfabric.router.realm import Router
from wampfabric.transport.stdio import StdioRouterTransport, connect_stdio_client

REALM = {"name": "crossbar", "roles": [{"name": "w", "permissions": [
    {"uri": "crossbar.worker.w1.", "match": "prefix",
     "allow": {"call": True, "register": True, "publish": True, "subscribe": True}}]}]}


async def pipe_pair(router):
    c2w_r, c2w_w = os.pipe()
    w2c_r, w2c_w = os.pipe()
    rt = StdioRouterTransport(router, {"anonymous": {"type": "static", "role": "w", "authid": "w1"}}, "process:1")
    await rt.open(w2c_r, c2w_w)
    client = await connect_stdio_client(c2w_r, w2c_w)
    return rt, client


async def test_join_register_call_over_pipes():
    router = Router("n", "controller")
    router.start_realm(REALM)
    rt, worker = await pipe_pair(router)
    details = await worker.join("crossbar")
    assert details["authid"] == "w1" and details["authrole"] == "w"
    await worker.register("crossbar.worker.w1.echo", lambda *a, **kw: [a, kw])
    rt2, caller = await pipe_pair(router)
    await caller.join("crossbar")
    big = b"\x00" * 300_000  # several pipe buffers' worth in one frame
    assert await caller.call("crossbar.worker.w1.echo", 1, big, k="v") == [[1, big], {"k": "v"}]
    # the role confines the worker to its own prefix
    with pytest.raises(ApplicationError) as e:
        await worker.register("crossbar.start_worker", lambda: None)
    assert e.value.error == "wamp.error.not_authorized"
    await worker.leave()
    await caller.leave()


async def test_end_of_file_closes_both_sides():
    router = Router("n", "controller")
    router.start_realm(REALM)
    rt, worker = await pipe_pair(router)
    await worker.join("crossbar")
    left = asyncio.get_running_loop().create_future()
    worker.on_leave.append(lambda reason: left.set_result(reason))
    rt.close()  # the controller side goes away: the worker sees its session end
    await asyncio.wait_for(left, 5)
    await asyncio.sleep(0.05)
    assert [sess.authid for sess in router.realms["crossbar"].sessions.values()] == ["routerservice"]


def test_frames_are_rawsocket_frames():
    from wampfabric.protocol.serializers import create_serializer

    ser = create_serializer("msgpack")
    msg = ser.serialize([HELLO, "crossbar", {"roles": {"caller": {}}}])
    frame = rs.frame_header(rs.FRAME_WAMP, len(msg)) + msg
    assert rs.FrameReader().feed(frame) == [(rs.FRAME_WAMP, msg)]
