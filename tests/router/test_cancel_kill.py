"""CANCEL mode ``kill`` with an autobahn-python callee: the caller learns ``wamp.error.canceled``
(as from Crossbar.io 26.10), not what the callee answered the INTERRUPT with (autobahn-python
answers ``wamp.error.runtime_error``).  Spec: advanced/rpc_call_canceling.md (the ERROR comes
once the callee answered; the spec does not name its URI)."""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.types import RegisterOptions

from support.advanced import anxt
from support.autobahn_client import uid, w
from wampfabric.protocol.codes import CALL, CANCEL, ERROR


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket-tcp", "msgpack")])
async def test_cancel_kill_autobahn_callee_caller_gets_canceled(ac, raw, transport, serializer):
    callee = await ac(transport, serializer)
    proc = f"com.compatfix.kill.{uid()}"
    running = asyncio.Event()
    interrupted = asyncio.Event()

    async def slow():
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await w(callee.register(slow, proc, options=RegisterOptions()))
    caller = raw({"caller": ["call_canceling"]})
    req = caller.next_id()
    caller.send([CALL, req, {}, proc, []])
    await w(running.wait())
    caller.send([CANCEL, req, {"mode": "kill"}])
    await w(interrupted.wait())  # autobahn-python got the INTERRUPT and answers it
    err = await anxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled", err
