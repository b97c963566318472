"""WAMP Advanced Profile, RPC features, end to end with clients we did not write.

Every assertion follows the spec text in ``shared/reference/wamp-spec/advanced/rpc_*.md``.
Clients:

* autobahn-python (asyncio) over WebSocket and RawSocket, via the helpers of
  ``support/autobahn_client.py`` (``connect``);
* the raw peers of ``wamp_raw`` where autobahn-python cannot produce a message
  (progressive CALLs, CANCEL with a mode, ``disclose_me``, a callee announcing
  exactly the features a test needs).

The module runs its own node (``anode``, ``support/advanced.py``): realm
``realm1`` with the roles of the default test config plus ``discloser``
(disclose caller and publisher), ``member`` and ``guest``, extra WebSocket
transports with fixed authid/authrole, and an event store (``store`` /
``event-history``).  The PubSub and meta API modules run the same node.

Every test asserts the spec's behaviour (where the feature's description and the spec
disagree, e.g. the call timeout's error URI, the spec wins).
"""

from __future__ import annotations

import asyncio
import collections
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions

from support import wamp_raw
from support.advanced import anxt, asilent, nxt, raw_register, silent
from support.autobahn_client import DIAGONAL, expect_error, uid, w
from wampfabric.protocol.codes import ABORT, CALL, CANCEL, ERROR, INTERRUPT, INVOCATION, RESULT, UNREGISTERED, YIELD

CALLEE_CANCEL = {"callee": ["call_canceling", "progressive_call_results"], "caller": ["call_canceling"]}
PCI = "progressive_call_invocations"
CALLEE_PCI = {"callee": [PCI, "call_canceling", "progressive_call_results", "pattern_based_registration",
                         "caller_identification"]}
CALLER_PCI = {"caller": [PCI, "progressive_call_results", "call_canceling", "caller_identification"]}


# ===========================================================================
# Progressive call results (rpc_progressive_call_results.md)


@pytest.mark.parametrize("transport,serializer", DIAGONAL)
async def test_progressive_call_results(ac, transport, serializer):
    callee = await ac(transport, serializer)
    caller = await ac(transport, serializer)
    proc = f"com.adv.progress.{uid()}"
    seen = {}

    def stream(n, details):
        seen["progress_callable"] = details.progress is not None
        for i in range(n):
            details.progress(i, part=f"p{i}")
        return CallResult("done", total=n)

    await w(callee.register(stream, proc, options=RegisterOptions(details_arg="details")))
    progress = []
    res = await w(caller.call(proc, 3, options=CallOptions(on_progress=lambda *a, **kw: progress.append((a, kw)))))
    assert progress == [((0,), {"part": "p0"}), ((1,), {"part": "p1"}), ((2,), {"part": "p2"})]
    assert list(res.results) == ["done"] and res.kwresults == {"total": 3}
    # INVOCATION.Details.receive_progress was set: autobahn offers details.progress only then
    assert seen["progress_callable"] is True

    # a caller that did not ask for progress: no receive_progress, only the final result
    res = await w(caller.call(proc, 0))
    assert list(res.results) == ["done"] and seen["progress_callable"] is False


def test_progressive_results_raw_message_flow(raw):
    caller = raw({"caller": ["progressive_call_results"]})
    callee = raw(CALLEE_CANCEL)
    proc = f"com.adv.progress.raw.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {"receive_progress": True}, proc, [2010]])
    inv = nxt(callee)
    assert inv[0] == INVOCATION and inv[3].get("receive_progress") is True, inv
    callee.send([YIELD, inv[1], {"progress": True}, ["Y2010", 120]])
    callee.send([YIELD, inv[1], {"progress": True}])  # empty progressive result ("still working")
    callee.send([YIELD, inv[1], {"progress": True}, [], {"foo": 10}])
    callee.send([YIELD, inv[1], {}, ["Total", 490]])
    assert nxt(caller) == [RESULT, req, {"progress": True}, ["Y2010", 120]]
    assert nxt(caller) == [RESULT, req, {"progress": True}]
    m = nxt(caller)
    assert m[:3] == [RESULT, req, {"progress": True}] and m[3:] in ([[], {"foo": 10}],), m
    assert nxt(caller) == [RESULT, req, {}, ["Total", 490]]
    # progressive YIELDs after the final one are dropped
    callee.send([YIELD, inv[1], {"progress": True}, ["late"]])
    silent(caller)


def test_progressive_results_forwarded_to_callee_without_call_canceling(raw):
    # docs/decisions.md: by default (as Crossbar.io) a callee without call_canceling (autobahn-js,
    # wampy) may stream; the spec's rule is the realm option strict_progressive_call_results
    # (tests/router/test_dealer_progressive.py)
    caller = raw({"caller": ["progressive_call_results"]})
    callee = raw({"callee": ["progressive_call_results"]})  # no call_canceling
    proc = f"com.adv.progress.nocancel.{uid()}"
    raw_register(callee, proc)
    caller.send([CALL, caller.next_id(), {"receive_progress": True}, proc, []])
    inv = nxt(callee)
    assert inv[0] == INVOCATION
    assert inv[3].get("receive_progress") is True, inv


async def test_progressive_results_caller_leaves_interrupts_callee(ac, raw):
    callee = raw(CALLEE_CANCEL)
    proc = f"com.adv.progress.leave.{uid()}"
    raw_register(callee, proc)
    caller = await ac("rawsocket-tcp", "msgpack")
    got = asyncio.Event()
    fut = asyncio.ensure_future(caller.call(proc, options=CallOptions(on_progress=lambda *a: got.set())))
    inv = await anxt(callee)
    assert inv[0] == INVOCATION and inv[3].get("receive_progress") is True
    callee.send([YIELD, inv[1], {"progress": True}, [1]])
    await w(got.wait())
    caller.disconnect()  # transport dropped, no GOODBYE
    m = await anxt(callee)
    # spec: "the Dealer sends an INTERRUPT to the Callee with mode="killnowait""
    assert m[0] == INTERRUPT and m[1] == inv[1] and m[2].get("mode") == "killnowait", m
    fut.cancel()


async def test_progressive_results_callee_leaves_caller_gets_canceled(ac):
    callee = await ac("websocket", "msgpack")
    caller = await ac("websocket", "cbor")
    proc = f"com.adv.progress.calleeleaves.{uid()}"
    started = asyncio.Event()

    async def endless(details):
        details.progress("first")
        started.set()
        await asyncio.sleep(30)

    await w(callee.register(endless, proc, options=RegisterOptions(details_arg="details")))
    progress = []
    fut = asyncio.ensure_future(caller.call(proc, options=CallOptions(on_progress=lambda *a: progress.append(a))))
    await w(started.wait())
    callee.disconnect()
    await expect_error(fut, "wamp.error.canceled")
    assert progress == [("first",)]


# ===========================================================================
# Progressive call invocations (rpc_progressive_call_invocations.md)


@pytest.mark.parametrize("transport,serializer", [("rawsocket", "msgpack"), ("websocket", "json")])
def test_progressive_call_invocations(raw, transport, serializer):
    caller = raw(CALLER_PCI, transport=transport, serializer=serializer)
    callee = raw(CALLEE_PCI, transport=transport, serializer=serializer)
    proc = f"com.adv.pci.{uid()}"
    reg = raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {"progress": True, "receive_progress": True}, proc, ["chunk0"]])
    inv = nxt(callee)
    assert inv[0] == INVOCATION and inv[2] == reg and inv[4] == ["chunk0"], inv
    assert inv[3].get("progress") is True and inv[3].get("receive_progress") is True, inv
    inv_id = inv[1]
    # progressive results while the caller is still streaming
    callee.send([YIELD, inv_id, {"progress": True}, ["ack0"]])
    assert nxt(caller) == [RESULT, req, {"progress": True}, ["ack0"]]
    caller.send([CALL, req, {"progress": True}, proc, ["chunk1"], {"k": 1}])
    inv = nxt(callee)
    assert inv[:3] == [INVOCATION, inv_id, reg] and inv[3].get("progress") is True, inv
    assert inv[4:] == [["chunk1"], {"k": 1}], inv
    # a new, ordinary call from the same caller in between
    req2 = caller.next_id()
    caller.send([CALL, req2, {}, proc, ["other"]])
    inv2 = nxt(callee)
    assert inv2[0] == INVOCATION and inv2[1] != inv_id and not inv2[3].get("progress") and inv2[4] == ["other"], inv2
    callee.send([YIELD, inv2[1], {}, ["other-done"]])
    assert nxt(caller) == [RESULT, req2, {}, ["other-done"]]
    # the final chunk: no progress (or progress=false)
    caller.send([CALL, req, {"progress": False}, proc, ["chunk2"]])
    inv = nxt(callee)
    assert inv[:3] == [INVOCATION, inv_id, reg] and not inv[3].get("progress") and inv[4] == ["chunk2"], inv
    callee.send([YIELD, inv_id, {}, ["total", 3]])
    assert nxt(caller) == [RESULT, req, {}, ["total", 3]]
    silent(callee)


def test_progressive_call_invocations_shared_registration_stick_to_one_callee(raw):
    caller = raw(CALLER_PCI)
    callees = [raw(CALLEE_PCI) for _ in range(2)]
    proc = f"com.adv.pci.shared.{uid()}"
    for c in callees:
        raw_register(c, proc, {"invoke": "roundrobin"})
    req = caller.next_id()
    caller.send([CALL, req, {"progress": True}, proc, [0]])
    first = nxt(callees[0])
    for i in (1, 2):
        caller.send([CALL, req, {"progress": i < 2}, proc, [i]])
        m = nxt(callees[0])  # spec: all chunks of one call go to the first picked callee
        assert m[1] == first[1] and m[4] == [i], m
    silent(callees[1])
    callees[0].send([YIELD, first[1], {}, ["ok"]])
    assert nxt(caller) == [RESULT, req, {}, ["ok"]]


async def test_progressive_call_invocations_callee_without_feature(ac, raw):
    caller = raw(CALLER_PCI)
    # autobahn-python does not announce progressive_call_invocations
    callee = await ac("websocket", "msgpack")
    proc = f"com.adv.pci.unsupported.{uid()}"
    await w(callee.register(lambda *a: "never", proc))
    r = await asyncio.to_thread(caller.request, [CALL, caller.next_id(), {"progress": True}, proc, [1]])
    assert r[0] == ERROR and r[1] == CALL and r[4] == "wamp.error.feature_not_supported", r
    # a callee announcing progressive_call_invocations but not call_canceling counts as not supporting it
    c2 = raw({"callee": [PCI]})
    proc2 = f"com.adv.pci.nocancel.{uid()}"
    raw_register(c2, proc2)
    r = caller.request([CALL, caller.next_id(), {"progress": True}, proc2, [1]])
    assert r[0] == ERROR and r[4] == "wamp.error.feature_not_supported", r
    silent(c2)


def test_progressive_call_invocation_from_caller_without_feature_is_protocol_violation(raw):
    callee = raw(CALLEE_PCI)
    proc = f"com.adv.pci.violation.{uid()}"
    raw_register(callee, proc)
    caller = raw({"caller": ["progressive_call_results"]})
    caller.send([CALL, caller.next_id(), {"progress": True}, proc, [1]])
    msgs = caller.recv_until_closed()
    assert msgs and msgs[-1][0] == ABORT and msgs[-1][2] == "wamp.error.protocol_violation", msgs
    silent(callee)


def test_progressive_call_invocations_caller_leaves_or_callee_leaves(raw):
    callee = raw(CALLEE_PCI)
    proc = f"com.adv.pci.leave.{uid()}"
    raw_register(callee, proc)
    caller = raw(CALLER_PCI)
    caller.send([CALL, caller.next_id(), {"progress": True}, proc, [0]])
    inv = nxt(callee)
    wamp_raw.abort_socket(caller.sock)  # the caller is gone mid-stream
    m = nxt(callee)
    assert m[0] == INTERRUPT and m[1] == inv[1] and m[2].get("mode") == "killnowait", m
    # and the other way round: the callee goes away while the caller is still streaming
    caller = raw(CALLER_PCI)
    req = caller.next_id()
    caller.send([CALL, req, {"progress": True}, proc, [0]])
    nxt(callee)
    callee.close()
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled", err


def test_progressive_call_invocations_options_frozen(raw):
    caller = raw(CALLER_PCI)
    callee = raw(CALLEE_PCI)
    base = f"com.adv.pci.frozen.{uid()}"
    raw_register(callee, base, {"match": "prefix"})
    proc = base + ".upload"
    req = caller.next_id()
    caller.send([CALL, req, {"progress": True, "disclose_me": True, "receive_progress": True}, proc, [0]])
    first = nxt(callee)
    d0 = first[3]
    assert d0.get("caller") == caller.session_id and d0.get("procedure") == proc, d0
    caller.send([CALL, req, {"progress": True}, proc, [1]])
    caller.send([CALL, req, {}, proc, [2]])
    for _ in range(2):
        d = nxt(callee)[3]
        for k in ("caller", "caller_authid", "caller_authrole", "procedure", "receive_progress"):
            assert d.get(k) == d0.get(k), (k, d, d0)


def test_progressive_call_invocation_continuation_after_completion_is_discarded(raw):
    caller = raw(CALLER_PCI)
    callee = raw(CALLEE_PCI)
    proc = f"com.adv.pci.late.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {"progress": True}, proc, [0]])
    inv = nxt(callee)
    callee.send([ERROR, INVOCATION, inv[1], {}, "com.myapp.too_big"])
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "com.myapp.too_big", err
    caller.send([CALL, req, {"progress": True}, proc, [1]])  # the caller had not seen the ERROR yet
    silent(callee)
    silent(caller)


# ===========================================================================
# Call timeout (rpc_call_timeout.md)


async def test_call_timeout_router_enforced_interrupts_callee(ac):
    callee = await ac("websocket", "json")
    caller = await ac("rawsocket-tcp", "msgpack")
    proc = f"com.adv.timeout.{uid()}"
    interrupted = asyncio.get_running_loop().create_future()

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # autobahn cancels the handler on INTERRUPT
            interrupted.set_result(time.monotonic())
            raise

    await w(callee.register(slow, proc))
    t0 = time.monotonic()
    with pytest.raises(ApplicationError) as ei:
        await w(caller.call(proc, options=CallOptions(timeout=200)))
    elapsed = time.monotonic() - t0
    assert 0.15 <= elapsed < 3, elapsed
    assert ei.value.error in ("wamp.error.timeout", "wamp.error.canceled"), ei.value
    t_int = await w(interrupted)
    assert t_int - t0 < 3
    # the callee is still fine afterwards
    await w(callee.register(lambda: "ok", proc + ".after"))
    assert await w(caller.call(proc + ".after", options=CallOptions(timeout=2000))) == "ok"


def test_call_timeout_error_uri_is_wamp_error_timeout(raw):
    caller = raw({"caller": ["call_timeout", "call_canceling"]})
    callee = raw(CALLEE_CANCEL)
    proc = f"com.adv.timeout.uri.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {"timeout": 100}, proc, []])
    inv = nxt(callee)
    assert "timeout" not in inv[3] or inv[3]["timeout"] == 100
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.timeout", err
    m = nxt(callee)
    assert m[0] == INTERRUPT and m[1] == inv[1] and m[2].get("mode") == "killnowait", m


def test_call_timeout_late_yield_discarded_and_skip_for_callee_without_canceling(raw):
    caller = raw({"caller": ["call_canceling"]})
    callee = raw({})  # no call_canceling: timeout means mode skip, no INTERRUPT
    proc = f"com.adv.timeout.skip.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    t0 = time.monotonic()
    caller.send([CALL, req, {"timeout": 150}, proc, []])
    inv = nxt(callee)
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] in ("wamp.error.timeout", "wamp.error.canceled"), err
    assert time.monotonic() - t0 >= 0.12
    silent(callee)  # no INTERRUPT for a callee without call_canceling
    callee.send([YIELD, inv[1], {}, ["too late"]])
    silent(caller)  # the late result is discarded


def test_call_timeout_not_triggered_and_zero_means_none(raw):
    caller = raw({})
    callee = raw(CALLEE_CANCEL)
    proc = f"com.adv.timeout.fast.{uid()}"
    raw_register(callee, proc)
    for timeout in (5000, 0):
        req = caller.next_id()
        caller.send([CALL, req, {"timeout": timeout}, proc, []])
        inv = nxt(callee)
        if timeout == 0:
            silent(caller, 0.25)  # 0 = no timeout
        callee.send([YIELD, inv[1], {}, [timeout]])
        assert nxt(caller) == [RESULT, req, {}, [timeout]]
    silent(callee)


def test_call_timeout_is_per_progressive_result(raw):
    caller = raw({"caller": ["progressive_call_results"]})
    callee = raw(CALLEE_CANCEL)
    proc = f"com.adv.timeout.progress.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {"timeout": 300, "receive_progress": True}, proc, []])
    inv = nxt(callee)
    for i in range(4):  # 4 x 150 ms = 600 ms in total, never 300 ms without a result
        time.sleep(0.15)
        callee.send([YIELD, inv[1], {"progress": True}, [i]])
    callee.send([YIELD, inv[1], {}, ["end"]])
    msgs = []
    while not msgs or (msgs[-1][0] == RESULT and msgs[-1][2].get("progress")):
        msgs.append(nxt(caller))
    assert msgs == [[RESULT, req, {"progress": True}, [i]] for i in range(4)] + [[RESULT, req, {}, ["end"]]], msgs


# ===========================================================================
# Call canceling (rpc_call_canceling.md)


def _cancel_setup(raw, callee_features=CALLEE_CANCEL):
    caller = raw({"caller": ["call_canceling"]})
    callee = raw(callee_features)
    proc = f"com.adv.cancel.{uid()}"
    raw_register(callee, proc)
    req = caller.next_id()
    caller.send([CALL, req, {}, proc, []])
    inv = nxt(callee)
    return caller, callee, req, inv[1]


def test_cancel_skip(raw):
    caller, callee, req, inv_id = _cancel_setup(raw)
    caller.send([CANCEL, req, {"mode": "skip"}])
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled", err
    silent(callee)  # skip: no INTERRUPT
    callee.send([YIELD, inv_id, {}, ["discarded"]])
    silent(caller)


def test_cancel_kill_waits_for_callee(raw):
    caller, callee, req, inv_id = _cancel_setup(raw)
    caller.send([CANCEL, req, {"mode": "kill"}])
    m = nxt(callee)
    assert m[0] == INTERRUPT and m[1] == inv_id and m[2].get("mode") == "kill", m
    silent(caller)  # kill: the ERROR only comes once the callee answered
    callee.send([ERROR, INVOCATION, inv_id, {}, "wamp.error.canceled", ["stopped at 40%"]])
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled" and err[5] == ["stopped at 40%"], err


def test_cancel_kill_callee_finishes_first(raw):
    caller, callee, req, inv_id = _cancel_setup(raw)
    caller.send([CANCEL, req, {"mode": "kill"}])
    assert nxt(callee)[0] == INTERRUPT
    # "the caller may receive RESULT or ERROR depending whether the callee finishes processing first"
    callee.send([YIELD, inv_id, {}, ["finished anyway"]])
    assert nxt(caller) == [RESULT, req, {}, ["finished anyway"]]


def test_cancel_killnowait(raw):
    caller, callee, req, inv_id = _cancel_setup(raw)
    caller.send([CANCEL, req, {"mode": "killnowait"}])
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled", err
    m = nxt(callee)
    assert m[0] == INTERRUPT and m[1] == inv_id and m[2].get("mode") == "killnowait", m
    callee.send([ERROR, INVOCATION, inv_id, {}, "wamp.error.canceled"])  # ignored by the dealer
    silent(caller)


@pytest.mark.parametrize("mode", ["kill", "killnowait"])
def test_cancel_callee_without_call_canceling_behaves_as_skip(raw, mode):
    caller, callee, req, inv_id = _cancel_setup(raw, callee_features={})
    caller.send([CANCEL, req, {"mode": mode}])
    err = nxt(caller)
    assert err[:3] == [ERROR, CALL, req] and err[4] == "wamp.error.canceled", err
    silent(callee)
    callee.send([YIELD, inv_id, {}, ["discarded"]])
    silent(caller)


async def test_cancel_autobahn_future(ac):
    callee = await ac("rawsocket-tcp", "cbor")
    caller = await ac("websocket", "json")
    proc = f"com.adv.cancel.ab.{uid()}"
    started = asyncio.Event()
    interrupted = asyncio.get_running_loop().create_future()

    async def slow():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set_result(True)
            raise

    await w(callee.register(slow, proc))
    fut = caller.call(proc)
    await w(started.wait())
    fut.cancel()  # autobahn sends CANCEL (no mode: the dealer's default applies)
    assert await w(interrupted) is True  # INTERRUPT reached the callee
    with pytest.raises(asyncio.CancelledError):
        await fut
    # the caller's session is intact
    await w(callee.register(lambda: 7, proc + ".after"))
    assert await w(caller.call(proc + ".after")) == 7


# ===========================================================================
# Caller identification (rpc_caller_identification.md)


async def test_caller_disclose_me(ac, raw):
    callee = await ac("websocket", "msgpack")
    proc = f"com.adv.disclose.{uid()}"

    def who(details):
        return [details.caller, details.caller_authid, details.caller_authrole]

    await w(callee.register(who, proc, options=RegisterOptions(details_arg="details")))
    # autobahn-python 26 has no disclose_me in CallOptions: a raw caller asks for disclosure
    caller = raw({"caller": ["caller_identification"]}, identity="alice")
    r = await asyncio.to_thread(caller.request, [CALL, caller.next_id(), {"disclose_me": True}, proc, []])
    assert r[0] == RESULT and r[3] == [[caller.session_id, "alice", "member"]], r
    # not requested: nothing disclosed
    r = await asyncio.to_thread(caller.request, [CALL, caller.next_id(), {}, proc, []])
    assert r[0] == RESULT and r[3] == [[None, None, None]], r
    # a caller cannot forge its identity through CALL options
    forged = {"caller": 4242, "caller_authid": "root", "caller_authrole": "admin"}
    r = await asyncio.to_thread(caller.request, [CALL, caller.next_id(), forged, proc, []])
    assert r[0] == RESULT and r[3] == [[None, None, None]], r
    ab_caller = await ac("rawsocket-unix", "json")
    assert await w(ab_caller.call(proc)) == [None, None, None]


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("websocket", "cbor")])
async def test_caller_disclosed_by_role(ac, transport, serializer):
    callee = await ac("rawsocket-tcp", "msgpack")
    proc = f"com.adv.disclose.role.{uid()}"

    def who(details):
        return [details.caller, details.caller_authid, details.caller_authrole]

    await w(callee.register(who, proc, options=RegisterOptions(details_arg="details")))
    caller = await ac(transport, serializer, identity="disclose")  # role "discloser": disclose.caller = true
    info = caller.joined.result()
    assert info.authrole == "discloser" and info.authid == "dave"
    assert await w(caller.call(proc)) == [caller.session_id, "dave", "discloser"]


def test_callee_requests_disclose_caller(raw):
    callee = raw({"callee": ["caller_identification"]})
    proc = f"com.adv.disclose.callee.{uid()}"
    raw_register(callee, proc, {"disclose_caller": True})
    caller = raw({})
    caller.send([CALL, caller.next_id(), {}, proc, []])
    inv = nxt(callee)
    assert inv[3].get("caller") == caller.session_id, inv


# ===========================================================================
# Pattern-based registrations (rpc_pattern_based_registration.md)


@pytest.mark.parametrize("transport,serializer", DIAGONAL)
async def test_pattern_registration_details_procedure(ac, transport, serializer):
    callee = await ac(transport, serializer)
    caller = await ac(transport, serializer)
    base = f"com.adv.pat{uid()}"

    def handler(tag):
        return lambda *a, details: [tag, details.procedure]

    await w(callee.register(handler("prefix"), f"{base}.myobject1",
                            options=RegisterOptions(match="prefix", details_arg="details")))
    await w(callee.register(handler("wildcard"), f"{base}..myprocedure1",
                            options=RegisterOptions(match="wildcard", details_arg="details")))
    await w(callee.register(handler("exact"), f"{base}.exact", options=RegisterOptions(details_arg="details")))
    # spec examples (prefix)
    for tail in (".myobject1.myprocedure1", ".myobject1_mysubobject1", ".myobject1.mysubobject1.myprocedure1",
                 ".myobject1"):
        assert await w(caller.call(base + tail)) == ["prefix", base + tail]
    # spec examples (wildcard)
    for tail in (".myobject2.myprocedure1", ".foo.myprocedure1"):
        assert await w(caller.call(base + tail)) == ["wildcard", base + tail]
    for tail in (".myobject2", ".myobject", ".foo.myprocedure1.mysubprocedure1", ".foo.myprocedure2"):
        await expect_error(caller.call(base + tail), "wamp.error.no_such_procedure")
    tag, procedure = await w(caller.call(base + ".exact"))
    assert tag == "exact" and procedure in (None, base + ".exact")


async def test_pattern_registration_precedence_spec_examples(ac):
    """The spec's example table.  RPC 5 is 'a1.b2.x33..e5' (spec: 'a1.b2.c33..e5'): with string prefix
    matching, which the spec's own prefix examples require ('myobject1-mysubobject1'), prefix 'a1.b2.c3' would
    match 'a1.b2.c33.d4.e5', contradicting the table's 'no prefix match' for that call."""
    callee = await ac("rawsocket-tcp", "msgpack")
    caller = await ac("websocket", "json")
    b = f"com.adv.prec{uid()}"
    regs = {
        1: (f"{b}.a1.b2.c3.d4.e55", "exact"),
        2: (f"{b}.a1.b2.c3", "prefix"),
        3: (f"{b}.a1.b2.c3.d4", "prefix"),
        4: (f"{b}.a1.b2..d4.e5", "wildcard"),
        5: (f"{b}.a1.b2.x33..e5", "wildcard"),
        6: (f"{b}.a1.b2..d4.e5..g7", "wildcard"),
        7: (f"{b}.a1.b2..d4..f6.g7", "wildcard"),
    }
    for n, (uri, match) in regs.items():
        await w(callee.register(lambda n=n: n, uri, options=RegisterOptions(match=match)))
    cases = {
        "a1.b2.c3.d4.e55": 1,
        "a1.b2.c3.d98.e74": 2,
        "a1.b2.c3.d4.e325": 3,
        "a1.b2.c55.d4.e5": 4,
        "a1.b2.x33.d4.e5": 5,
        "a1.b2.c88.d4.e5.f6.g7": 6,
    }
    got = {tail: await w(caller.call(f"{b}.{tail}")) for tail in cases}
    assert got == cases
    await expect_error(caller.call(f"{b}.a2.b2.c2.d2.e2"), "wamp.error.no_such_procedure")


async def test_routing_follows_registration_changes(ac):
    """Calls are routed by the best registration at the time of the call: a more specific
    registration made after calls went to a pattern takes them over at once, and when it goes
    the pattern gets them back (the dealer remembers routes per procedure; any registration
    change must reset that)."""
    callee = await ac("websocket", "msgpack")
    other = await ac("websocket", "json")
    caller = await ac("websocket", "msgpack")
    b = f"com.adv.route{uid()}"
    proc = f"{b}.x.echo"
    await w(callee.register(lambda: "wildcard", f"{b}..echo", options=RegisterOptions(match="wildcard")))
    assert [await w(caller.call(proc)) for _ in range(3)] == ["wildcard"] * 3
    prefix = await w(callee.register(lambda: "prefix", f"{b}.x.", options=RegisterOptions(match="prefix")))
    assert await w(caller.call(proc)) == "prefix"
    exact = await w(other.register(lambda: "exact", proc))
    assert await w(caller.call(proc)) == "exact"
    await w(exact.unregister())
    assert await w(caller.call(proc)) == "prefix"
    await w(prefix.unregister())
    assert await w(caller.call(proc)) == "wildcard"
    # the exact callee's session goes away with a new registration: routes follow too
    await w(other.register(lambda: "exact again", proc))
    assert await w(caller.call(proc)) == "exact again"
    other.leave()
    for _ in range(50):
        if await w(caller.call(proc)) == "wildcard":
            break
        await asyncio.sleep(0.02)
    assert await w(caller.call(proc)) == "wildcard"
    await expect_error(caller.call(f"{b}.x.echo.more"), "wamp.error.no_such_procedure")


# ===========================================================================
# Shared registrations (rpc_shared_registration.md)


async def _callees(ac, n, proc, invoke, transport="websocket", serializer="json"):
    out = []
    for i in range(n):
        s = await ac(transport, serializer)
        await w(s.register(lambda i=i: i, proc, options=RegisterOptions(invoke=invoke)))
        out.append(s)
    return out


async def test_shared_registration_single_and_policy_mismatch(ac):
    a = await ac("websocket", "json")
    b = await ac("rawsocket-tcp", "msgpack")
    proc = f"com.adv.shared.single.{uid()}"
    await w(a.register(lambda: "a", proc))  # default invoke=single
    await expect_error(b.register(lambda: "b", proc), "wamp.error.procedure_already_exists")
    await expect_error(b.register(lambda: "b", proc, options=RegisterOptions(invoke="roundrobin")),
                       "wamp.error.procedure_already_exists")
    proc2 = f"com.adv.shared.mismatch.{uid()}"
    await w(a.register(lambda: "a", proc2, options=RegisterOptions(invoke="roundrobin")))
    for policy in ("single", "first", "last", "random"):
        await expect_error(b.register(lambda: "b", proc2, options=RegisterOptions(invoke=policy)),
                           "wamp.error.procedure_already_exists")
    await w(b.register(lambda: "b", proc2, options=RegisterOptions(invoke="roundrobin")))


async def test_shared_registration_roundrobin(ac):
    proc = f"com.adv.shared.rr.{uid()}"
    await _callees(ac, 3, proc, "roundrobin")
    caller = await ac("rawsocket-tcp", "msgpack")
    got = [await w(caller.call(proc)) for _ in range(9)]
    assert got == [0, 1, 2] * 3


@pytest.mark.parametrize("invoke,expected", [("first", 0), ("last", 2)])
async def test_shared_registration_first_last_hot_standby(ac, invoke, expected):
    proc = f"com.adv.shared.{invoke}.{uid()}"
    callees = await _callees(ac, 3, proc, invoke)
    caller = await ac("rawsocket-tcp", "cbor")
    assert [await w(caller.call(proc)) for _ in range(4)] == [expected] * 4
    # the active callee goes away: the next one in registration order takes over
    await callees[expected].shutdown()
    standby = 1
    for _ in range(50):
        try:
            got = await w(caller.call(proc))
            break
        except ApplicationError:
            await asyncio.sleep(0.02)
    assert got == standby


async def test_shared_registration_random(ac):
    proc = f"com.adv.shared.random.{uid()}"
    await _callees(ac, 3, proc, "random")
    caller = await ac("websocket", "msgpack")
    counts = collections.Counter([await w(caller.call(proc)) for _ in range(90)])
    # P(some callee never picked in 90 calls) = 3 * (2/3)^90 ~ 4e-16
    assert set(counts) == {0, 1, 2}, counts
    assert all(c >= 10 for c in counts.values()), counts  # binomial(90, 1/3): mean 30, sd 4.5


async def test_shared_registration_force_reregister(ac, raw):
    proc = f"com.adv.shared.force.{uid()}"
    old = raw({"callee": ["registration_revocation", "shared_registration"]})
    old_reg = raw_register(old, proc)
    new = await ac("websocket", "json")
    reg = await w(new.register(lambda: "new", proc, options=RegisterOptions(force_reregister=True)))
    # the previous callee was kicked out: UNREGISTERED with request id 0 (registration revocation)
    m = await anxt(old)
    assert m[0] == UNREGISTERED and m[1] == 0 and m[2].get("registration") == old_reg, m
    caller = await ac("rawsocket-tcp", "msgpack")
    assert await w(caller.call(proc)) == "new"
    assert reg.id is not None


# ===========================================================================
# Registration revocation (rpc_registration_revocation.md)


async def test_registration_revocation(ac, raw):
    admin = await ac("websocket", "json")
    proc = f"com.adv.revoke.{uid()}"
    callee = raw({"callee": ["registration_revocation"]})
    reg = raw_register(callee, proc)
    await w(admin.call("wamp.registration.remove_callee", reg, callee.session_id, reason="moving endpoint"))
    m = await anxt(callee)
    assert m == [UNREGISTERED, 0, {"registration": reg, "reason": "moving endpoint"}], m
    await expect_error(admin.call(proc), "wamp.error.no_such_procedure")
    # the callee's session is alive and can register again
    reg2 = await asyncio.to_thread(raw_register, callee, proc)
    assert reg2 != 0


async def test_registration_revocation_without_callee_support(ac, raw):
    admin = await ac("websocket", "json")
    proc = f"com.adv.revoke.silent.{uid()}"
    callee = raw({})  # did not announce registration_revocation: no UNREGISTERED (spec MUST NOT)
    reg = raw_register(callee, proc)
    await w(admin.call("wamp.registration.remove_callee", reg, callee.session_id))
    await asilent(callee)
    await expect_error(admin.call(proc), "wamp.error.no_such_procedure")


async def test_registration_revocation_autobahn_callee(ac):
    """autobahn-python announces registration_revocation and accepts UNREGISTERED(0, {registration})."""
    admin = await ac("websocket", "json")
    callee = await ac("rawsocket-tcp", "msgpack")
    proc = f"com.adv.revoke.ab.{uid()}"
    reg = await w(callee.register(lambda: 1, proc))
    await w(admin.call("wamp.registration.remove_callee", reg.id, callee.session_id))
    await expect_error(admin.call(proc), "wamp.error.no_such_procedure")
    assert callee.is_attached()
    await w(callee.register(lambda: 2, proc))
    assert await w(admin.call(proc)) == 2
