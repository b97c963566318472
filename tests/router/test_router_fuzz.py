"""Property test: random (but well-formed enough to pass the codec) messages from a
joined session never hit the router's "internal router error" path -- every
problem is a protocol violation or a WAMP error reply."""

from __future__ import annotations

import asyncio
import logging

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wampfabric.protocol.codes import (
    ABORT, AUTHENTICATE, CALL, CANCEL, CHALLENGE, ERROR, EVENT, GOODBYE, HELLO, INTERRUPT, INVOCATION, PUBLISH,
    PUBLISHED, REGISTER, REGISTERED, RESULT, SUBSCRIBE, SUBSCRIBED, UNREGISTER, UNREGISTERED, UNSUBSCRIBE, WELCOME,
    YIELD,
)
from wampfabric.protocol.serializers import SERIALIZERS_BY_NAME
from wampfabric.router.realm import Router
from wampfabric.router.session import RouterSession

OPTION_KEYS = ["match", "acknowledge", "exclude", "eligible", "exclude_authid", "eligible_authrole", "disclose_me",
               "receive_progress", "timeout", "progress", "ppt_scheme", "ppt_serializer", "get_retained", "invoke",
               "mode", "retain", "exclude_me", "force_reregister", "disclose_caller", "enc_algo"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-3, max_value=2**53 + 2), st.text(max_size=8),
                    st.binary(max_size=8), st.floats(allow_nan=False))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), c, max_size=3)),
                      max_leaves=8)
options = st.dictionaries(st.sampled_from(OPTION_KEYS), values, max_size=4)
uris = st.sampled_from(["com.a", "com.a.b", "com..b", "com.", "", "wamp.session.count", "com.a b", "a.b.c.d",
                        "wamp.subscription.get_events", "wamp.registration.list"])
ids = st.one_of(st.integers(min_value=1, max_value=50), st.integers(min_value=-2, max_value=2**53 + 2))
messages = st.one_of(
    st.tuples(st.just(PUBLISH), ids, options, uris, st.lists(values, max_size=2)),
    st.tuples(st.just(SUBSCRIBE), ids, options, uris),
    st.tuples(st.just(UNSUBSCRIBE), ids, ids),
    st.tuples(st.just(CALL), ids, options, uris, st.lists(values, max_size=2)),
    st.tuples(st.just(CANCEL), ids, options),
    st.tuples(st.just(REGISTER), ids, options, uris),
    st.tuples(st.just(UNREGISTER), ids, ids),
    st.tuples(st.just(YIELD), ids, options, st.lists(values, max_size=2)),
    st.tuples(st.just(ERROR), st.sampled_from([INVOCATION, CALL, PUBLISH]), ids, options, uris),
    st.tuples(st.sampled_from([HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, PUBLISHED, SUBSCRIBED, EVENT,
                               RESULT, REGISTERED, UNREGISTERED, INVOCATION, INTERRUPT,
                               99]), ids, options),  # 99: no such message
)


class Capture:
    serializer = SERIALIZERS_BY_NAME["msgpack"]
    auth_config = None
    peer = "fuzz"

    def __init__(self):
        self.sent = []
        self.closed = False

    def send(self, data):
        self.sent.append(msgpack.unpackb(data, strict_map_key=False))

    def close(self):
        self.closed = True


class _NoInternalErrors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=12))
def test_random_messages_never_cause_internal_errors(seq):
    handler = _NoInternalErrors()
    root = logging.getLogger("wampfabric")
    root.addHandler(handler)
    try:
        asyncio.run(_drive(seq))
    finally:
        root.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


async def _drive(seq):
    router = Router()
    router.start_realm({"name": "realm1", "store": {"type": "memory", "event-history": [
        {"uri": "com.a", "match": "exact", "limit": 5}]}, "roles": [
        {"name": "anonymous", "permissions": [{"uri": "", "match": "prefix", "allow": {
            "call": True, "register": True, "publish": True, "subscribe": True}}]}]})
    feats = {"features": {"call_canceling": True, "progressive_call_results": True,
                          "progressive_call_invocations": True, "payload_passthru_mode": True,
                          "subscription_revocation": True, "registration_revocation": True}}
    t = Capture()
    s = RouterSession(router, t)
    s.on_message(msgpack.packb([HELLO, "realm1", {"roles": {"caller": feats, "callee": feats, "publisher": feats,
                                                              "subscriber": feats}}]))
    assert t.sent[0][0] == WELCOME
    for m in seq:
        if t.closed:
            break
        s.on_message(msgpack.packb(list(m), use_bin_type=True))
        await asyncio.sleep(0)  # let the meta API agent answer meta calls
    await asyncio.sleep(0.01)
    aborts = [m for m in t.sent if m[0] == ABORT]
    for a in aborts:
        assert a[2] != "wamp.error.runtime_error", a
    s.on_close()
