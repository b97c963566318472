"""The payload tail of forwarded messages: CALL -> INVOCATION, YIELD -> RESULT, ERROR -> ERROR and
PUBLISH -> EVENT end exactly as ``protocol.payload.payload_tail`` writes a message's tail (empty
Arguments/ArgumentsKw omitted, transparent payloads in the layout their attributes announce, with
the ``ppt_*``/``enc_*`` attributes copied into the forwarded Details).  The dealer writes the
Arguments case inline on its per-message paths; this keeps those copies and the rule in step.

Real node; raw RawSocket peers (MessagePack, so transparent payloads are binary on the wire).
"""

from __future__ import annotations

import itertools

import pytest

from support import wamp_raw
from wampfabric.protocol.codes import (CALL, ERROR, EVENT, INVOCATION, PUBLISH, PUBLISHED, REGISTER, REGISTERED,
                                       RESULT, SUBSCRIBE, SUBSCRIBED, WELCOME, YIELD)
from wampfabric.protocol.payload import ENC_KEYS, PPT_KEYS, payload_tail

PPT = {"ppt_scheme": "x_custom", "ppt_serializer": "native", "ppt_cipher": "none", "ppt_keyid": "k1"}
ENC = {"enc_algo": "cryptobox", "enc_serializer": "json", "enc_key": "k2"}

# (meta attributes, the message's tail as sent)
TAILS = [
    pytest.param({}, [], id="none"),
    pytest.param({}, [[]], id="empty-args"),
    pytest.param({}, [[], {}], id="empty-args-kwargs"),
    pytest.param({}, [[1, "a"]], id="args"),
    pytest.param({}, [[1, "a"], {}], id="args-empty-kwargs"),
    pytest.param({}, [[], {"k": 1}], id="kwargs"),
    pytest.param({}, [[1], {"k": 1}], id="args-kwargs"),
    pytest.param(PPT, [[b"\x00sealed"]], id="ppt-spec-layout"),
    pytest.param(ENC, [b"\x00sealed"], id="enc-autobahn-layout"),
]

_seq = itertools.count()
FEATURES = {"payload_passthru_mode": True}
ROLES = {r: {"features": FEATURES} for r in ("caller", "callee", "publisher", "subscriber")}


def peer(node):
    p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer="msgpack")
    reply = p.hello(node.realm, {"roles": ROLES})
    assert reply[0] == WELCOME, reply
    return p


def expected(meta: dict, tail: list, details_before: dict) -> tuple[list, dict]:
    """What payload_tail writes for a message with Options/Details ``meta`` ending in ``tail``,
    and the forwarded Details (``details_before`` plus the copied passthru attributes)."""
    args = kwargs = payload = None
    if meta:
        payload = tail[0][0] if meta.get("ppt_scheme") else tail[0]
    elif tail:
        args = tail[0]
        kwargs = tail[1] if len(tail) > 1 else None
    details = dict(details_before)
    out = payload_tail(args, kwargs, payload, meta, details)
    return out, details


def passthru_attrs(meta: dict) -> dict:
    keys = PPT_KEYS if meta.get("ppt_scheme") else ENC_KEYS
    return {k: meta[k] for k in keys if k in meta}


@pytest.fixture(scope="module")
def pair(node):
    a, b = peer(node), peer(node)
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("meta,tail", TAILS)
def test_call_yield_error_tails(pair, meta, tail):
    caller, callee = pair
    proc = f"com.payloadfwd.p{next(_seq)}"
    r = callee.request([REGISTER, callee.next_id(), {}, proc])
    assert r[0] == REGISTERED, r

    # CALL -> INVOCATION
    req = caller.next_id()
    caller.send([CALL, req, dict(meta), proc, *tail])
    inv = callee.recv()
    assert inv[0] == INVOCATION, inv
    want_tail, want_details = expected(meta, tail, {})
    assert inv[4:] == want_tail
    assert {k: v for k, v in inv[3].items() if k in PPT or k in ENC} == passthru_attrs(meta)
    assert want_details == {**passthru_attrs(meta)}

    # YIELD -> RESULT
    callee.send([YIELD, inv[1], dict(meta), *tail])
    res = caller.recv()
    assert res[:2] == [RESULT, req], res
    want_tail, want_details = expected(meta, tail, {})
    assert res[3:] == want_tail
    assert res[2] == want_details

    # ERROR -> ERROR
    req = caller.next_id()
    caller.send([CALL, req, {}, proc])
    inv = callee.recv()
    callee.send([ERROR, INVOCATION, inv[1], dict(meta), "com.payloadfwd.failed", *tail])
    err = caller.recv()
    assert err[:3] == [ERROR, CALL, req] and err[4] == "com.payloadfwd.failed", err
    want_tail, want_details = expected(meta, tail, {})
    assert err[5:] == want_tail
    if meta:
        assert err[3] == want_details


@pytest.mark.parametrize("meta,tail", TAILS)
def test_publish_event_tail(pair, meta, tail):
    publisher, subscriber = pair
    topic = f"com.payloadfwd.t{next(_seq)}"
    r = subscriber.request([SUBSCRIBE, subscriber.next_id(), {}, topic])
    assert r[0] == SUBSCRIBED, r
    r = publisher.request([PUBLISH, publisher.next_id(), {**meta, "acknowledge": True}, topic, *tail])
    assert r[0] == PUBLISHED, r
    ev = subscriber.recv()
    assert ev[0] == EVENT, ev
    want_tail, want_details = expected(meta, tail, {})
    assert ev[4:] == want_tail
    assert {k: v for k, v in ev[3].items() if k in PPT or k in ENC} == want_details
