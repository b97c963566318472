"""Two per-session bounds of docs/security.md, shown from outside on a real node:

* **messages held while an authorizer is asked**: while a session's message waits for a dynamic
  authorizer, its later messages are held (in order); 1,000 of them are held and then processed, one
  more ABORTs the session with ``wamp.error.runtime_error`` (``session.MAX_HELD``).
* **completed progressive calls remembered**: a caller streaming a progressive call invocation may
  send a further chunk after the call has already finished (the callee answered early); the router
  remembers the request IDs of the caller's 64 most recently completed progressive calls and discards
  such late chunks silently.  A late chunk of an older call is no longer recognised: it is taken for a
  new CALL with that request ID, and the callee gets an INVOCATION (``dealer.COMPLETED_PROGRESSIVE_KEPT``).

The authorizer is a raw peer that the test answers when it wants to; the clients are the raw peers of
``wamp_raw`` (RawSocket, MessagePack).  A RawSocket PING is the barrier that shows the router has read
everything sent before it (frames of one connection are handled in order, the PONG after them).
"""

from __future__ import annotations

import copy
import json

import pytest

from support import wamp_raw
from support.advanced import silent
from support.nodes import free_port, node_config, start_node, stop_node
from wampfabric.protocol.codes import (
    ABORT, CALL, ERROR, HELLO, INVOCATION, PUBLISH, PUBLISHED, REGISTER, REGISTERED, RESULT, WELCOME, YIELD,
)

HELLO_ROLES = ("caller", "callee", "publisher", "subscriber")

HELD = 1000  # the documented bound (docs/security.md); the tests do not import the constant
PROGRESSIVE_KEPT = 64  # the documented bound
AUTHORIZER = "com.authz.authorize"


def held_config(ports: dict, rs_path: str) -> dict:
    cfg = copy.deepcopy(node_config(ports, rs_path))
    worker = cfg["workers"][0]
    worker["realms"][0]["roles"].append({"name": "dyn", "authorizer": AUTHORIZER})
    ports["dyn"] = free_port()  # start_node waits for every port in this dict
    worker["transports"].append({
        "type": "rawsocket",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["dyn"]},
        "serializers": ["json", "msgpack", "cbor"],
        "auth": {"anonymous": {"type": "static", "role": "dyn"}},
    })
    ports["dynws"] = free_port()
    worker["transports"].append({
        "type": "websocket",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["dynws"]},
        "serializers": ["json"],
        "auth": {"anonymous": {"type": "static", "role": "dyn"}},
    })
    return cfg


@pytest.fixture(scope="module")
def hnode():
    n = start_node(held_config)
    yield n
    stop_node(n)


@pytest.fixture
def peer(hnode):
    """``peer(features, port=None)`` -> a joined RawSocket/MessagePack peer, closed after the test."""
    peers = []

    def _make(features: dict | None = None, port: int | None = None):
        roles = {r: {"features": {f: True for f in (features or {}).get(r, ())}} for r in HELLO_ROLES}
        p = wamp_raw.RawSocketPeer(port=port or hnode.rawsocket_port, serializer="msgpack")
        peers.append(p)
        reply = p.hello(hnode.realm, {"roles": roles})
        assert reply is not None and reply[0] == WELCOME, reply
        return p

    yield _make
    for p in peers:
        p.close()
    hnode.assert_alive()


def nxt(p, timeout: float = 10.0) -> list:
    m = p.recv(timeout)
    assert m is not None, "router closed the connection"
    return m


def barrier(p: wamp_raw.RawSocketPeer) -> None:
    """Return once the router has handled every frame ``p`` sent before; no WAMP message may
    arrive meanwhile (the held session gets nothing, in particular no ABORT)."""
    p.send_bytes(b"barrier", msg_type=1)  # RawSocket PING
    frame = p.recv_frame(10.0)
    assert frame is not None, "router closed the connection"
    kind, payload = frame
    assert (kind, payload) == (2, b"barrier"), (kind, wamp_raw.decode("msgpack", payload) if kind == 0 else payload)


def register(p, proc: str) -> int:
    r = p.request([REGISTER, p.next_id(), {}, proc])
    assert r[0] == REGISTERED, r
    return r[2]


# ---------------------------------------------------------------------------
# messages held while an authorizer is asked


def hold_session(hnode, peer, topic: str):
    """An authorizer the test answers, and a ``dyn`` session whose acknowledged PUBLISH to ``topic``
    waits for it.  Returns (authorizer peer, its INVOCATION, the session, the PUBLISH's request ID)."""
    authz = peer()
    register(authz, AUTHORIZER)
    user = peer(port=hnode.ports["dyn"])
    first = user.next_id()
    user.send([PUBLISH, first, {"acknowledge": True}, topic, ["first"]])
    inv = nxt(authz)
    assert inv[0] == INVOCATION and inv[4][1:3] == [topic, "publish"], inv
    return authz, inv, user, first


def test_held_messages_up_to_the_bound_are_kept_and_processed_in_order(hnode, peer):
    topic = "com.held.ok"
    authz, inv, user, first = hold_session(hnode, peer, topic)
    later = [user.next_id() for _ in range(HELD)]
    for i, req in enumerate(later):  # all held behind the first one
        user.send([PUBLISH, req, {"acknowledge": True}, topic, [i]])
    barrier(user)  # the router has read all 1,000: the session is still there, nothing answered yet
    silent(authz)  # asked once, not once per held message
    # the authorizer allows (cacheable): the first and then every held message is processed, in order
    authz.send([YIELD, inv[1], {}, [{"allow": True, "cache": True}]])
    got = [nxt(user) for _ in range(HELD + 1)]
    assert [m[:2] for m in got] == [[PUBLISHED, r] for r in [first, *later]], got[:3]
    # the session goes on as usual
    req = user.next_id()
    assert user.request([PUBLISH, req, {"acknowledge": True}, topic, []])[:2] == [PUBLISHED, req]
    silent(authz)


def test_one_message_more_than_the_bound_aborts_the_session(hnode, peer):
    topic = "com.held.over"
    authz, inv, user, first = hold_session(hnode, peer, topic)
    for i in range(HELD):
        user.send([PUBLISH, user.next_id(), {"acknowledge": True}, topic, [i]])
    barrier(user)  # 1,000 held: still fine
    user.send([PUBLISH, user.next_id(), {"acknowledge": True}, topic, ["one too many"]])
    msgs = user.recv_until_closed(10.0)
    assert msgs and msgs[-1][0] == ABORT and msgs[-1][2] == "wamp.error.runtime_error", msgs
    assert [m for m in msgs if m[0] == PUBLISHED] == [], msgs  # nothing of the held messages ran
    # the authorizer's late answer finds the session gone: nothing breaks, other sessions are served
    authz.send([YIELD, inv[1], {}, [{"allow": True, "cache": True}]])
    other = peer()
    req = other.next_id()
    assert other.request([PUBLISH, req, {"acknowledge": True}, topic, []])[:2] == [PUBLISHED, req]


def batched_session(hnode, peer):
    """An authorizer the test answers and a joined ``dyn`` session speaking ``wamp.2.json.batched``."""
    authz = peer()
    register(authz, AUTHORIZER)
    ws = wamp_raw.WebSocketPeer(f"ws://127.0.0.1:{hnode.ports['dynws']}/", "json",
                                subprotocols=["wamp.2.json.batched"])
    ws.send_frame(json.dumps([HELLO, hnode.realm, {"roles": {"publisher": {}}}]) + "\x1e")
    assert json.loads(ws.ws.recv(timeout=10).rstrip("\x1e"))[0] == WELCOME
    return authz, ws


def publish_batch(ws, topic: str, n: int) -> None:
    ws.send_frame("".join(json.dumps([PUBLISH, i + 1, {"acknowledge": True}, topic, [i]]) + "\x1e"
                          for i in range(n)))


@pytest.mark.parametrize("split", [False, True], ids=["one-batch", "two-batches"])
def test_batched_messages_count_one_by_one(hnode, peer, split):
    """With a batched serializer each WAMP message of a batch counts against the bound, whether the
    rest of the batch that holds the waiting message or later batches: 1 waiting + 1,000 held pass."""
    authz, ws = batched_session(hnode, peer)
    try:
        topic = f"com.held.batch.{int(split)}"
        n = HELD + 1
        if split:
            ws.send_frame(json.dumps([PUBLISH, 1, {"acknowledge": True}, topic, [0]]) + "\x1e")
            ws.send_frame("".join(json.dumps([PUBLISH, i + 1, {"acknowledge": True}, topic, [i]]) + "\x1e"
                                  for i in range(1, n)))
        else:
            publish_batch(ws, topic, n)
        inv = nxt(authz)
        assert inv[0] == INVOCATION and inv[4][1:3] == [topic, "publish"], inv
        assert ws.ws.ping().wait(10), "no PONG"  # the batch was read and the session is still there
        authz.send([YIELD, inv[1], {}, [{"allow": True, "cache": True}]])
        got = []
        while len(got) < n:
            got += [json.loads(m) for m in ws.ws.recv(timeout=10).split("\x1e") if m]
        assert [m[:2] for m in got] == [[PUBLISHED, i + 1] for i in range(n)], got[:3]
    finally:
        ws.close()


def test_a_batch_holding_more_than_the_bound_aborts_the_session(hnode, peer):
    """Before, a batch was counted as one held message: one WebSocket message could make the router
    hold any number of WAMP messages.  1 waiting + 1,001 held: ABORT, nothing of it ran."""
    authz, ws = batched_session(hnode, peer)
    try:
        publish_batch(ws, "com.held.batch.over", HELD + 2)
        inv = nxt(authz)
        assert inv[0] == INVOCATION, inv
        msgs = []
        try:
            while True:
                msgs += [json.loads(m) for m in ws.ws.recv(timeout=10).split("\x1e") if m]
        except Exception:  # closed
            pass
        assert msgs and msgs[-1][0] == ABORT and msgs[-1][2] == "wamp.error.runtime_error", msgs[-3:]
        assert [m for m in msgs if m[0] == PUBLISHED] == [], msgs[:3]
        authz.send([YIELD, inv[1], {}, [{"allow": True, "cache": True}]])
    finally:
        ws.close()


def test_held_bytes_are_bounded(hnode, peer):
    """Held messages are bounded by bytes too (32 MiB): two messages of ~15 MiB are held, a third
    ends the session (so 1,000 messages of the maximum size cannot make the router hold 16 GB)."""
    topic = "com.held.bytes"
    authz, inv, user, first = hold_session(hnode, peer, topic)
    big = "x" * (15 * 2**20)
    for _ in range(2):
        user.send([PUBLISH, user.next_id(), {}, topic, [big]])
    barrier(user)  # ~30 MiB held: still fine
    user.send([PUBLISH, user.next_id(), {}, topic, [big]])
    msgs = user.recv_until_closed(20.0)
    assert msgs and msgs[-1][0] == ABORT and msgs[-1][2] == "wamp.error.runtime_error", [m[:3] for m in msgs]
    authz.send([YIELD, inv[1], {}, [{"allow": True, "cache": True}]])


# ---------------------------------------------------------------------------
# completed progressive call invocations remembered

PCI = "progressive_call_invocations"
CALLER_PCI = {"caller": [PCI, "progressive_call_results", "call_canceling"]}
CALLEE_PCI = {"callee": [PCI, "call_canceling", "progressive_call_results"]}


def test_late_chunks_of_the_64_latest_completed_progressive_calls_are_discarded(peer):
    callee = peer(CALLEE_PCI)
    proc = "com.held.upload"
    register(callee, proc)
    caller = peer(CALLER_PCI)
    # 65 progressive call invocations, each ended by the callee after its first chunk
    reqs = []
    for i in range(PROGRESSIVE_KEPT + 1):
        req = caller.next_id()
        reqs.append(req)
        caller.send([CALL, req, {"progress": True}, proc, [i, "chunk0"]])
        inv = nxt(callee)
        assert inv[0] == INVOCATION and inv[3].get("progress") is True and inv[4] == [i, "chunk0"], inv
        callee.send([ERROR, INVOCATION, inv[1], {}, "com.myapp.enough"])
        err = nxt(caller)
        assert err[:3] == [ERROR, CALL, req] and err[4] == "com.myapp.enough", err
    # late chunks (the caller had not seen the ERROR yet) of the 64 latest: silently discarded
    for req in reqs[1:]:
        caller.send([CALL, req, {"progress": True}, proc, [req, "late"]])
    barrier(caller)
    silent(callee)
    silent(caller, 0.05)
    # the oldest one is forgotten: its late chunk is taken for a new call with that request ID
    old = reqs[0]
    caller.send([CALL, old, {"progress": True}, proc, [old, "late"]])
    inv = nxt(callee)
    assert inv[0] == INVOCATION and inv[4] == [old, "late"], inv
    callee.send([YIELD, inv[1], {}, ["fresh"]])
    assert nxt(caller) == [RESULT, old, {}, ["fresh"]]
    # and that call, now completed too, is remembered (its late chunk discarded again)
    caller.send([CALL, old, {"progress": True}, proc, [old, "later"]])
    barrier(caller)
    silent(callee)
