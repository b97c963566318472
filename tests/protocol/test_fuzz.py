"""Property tests: whatever a peer sends, the protocol layer answers with a parsed
message or a ProtocolError / SerializationError -- never any other exception
(which would end a session with 'internal router error' instead of a clean
protocol violation, or worse)."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wampfabric.protocol import rawsocket as rs
from wampfabric.protocol.errors import ProtocolError, SerializationError
from wampfabric.protocol.messages import MESSAGE_CLASSES, parse
from wampfabric.protocol.serializers import SERIALIZERS_BY_SUBPROTOCOL

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64), st.floats(allow_nan=True),
    st.text(max_size=20), st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=10), children, max_size=5)),
    max_leaves=20,
)
codes = st.one_of(st.sampled_from(sorted(MESSAGE_CLASSES)), st.integers(min_value=-5, max_value=400), values)


@SETTINGS
@given(st.lists(values, max_size=8), codes)
def test_parse_raises_only_protocol_errors(tail, code):
    wmsg = [code, *tail]
    try:
        msg = parse(wmsg)
    except ProtocolError:
        return
    # whatever was accepted can be marshalled back
    assert isinstance(msg.marshal(), list)


def _near_valid():
    """Messages that are valid but for one element: the validators' edge cases."""
    ids = st.one_of(st.integers(min_value=-1, max_value=2**53 + 1), st.booleans(), st.floats(), st.none())
    dicts = st.one_of(st.dictionaries(st.sampled_from(
        ["match", "acknowledge", "exclude", "eligible", "disclose_me", "receive_progress", "timeout", "progress",
         "ppt_scheme", "get_retained", "invoke", "mode", "retain", "exclude_me", "eligible_authid"]),
        values, max_size=4), values)
    return st.tuples(st.sampled_from([16, 32, 48, 64, 70, 8, 49, 34, 66, 1, 5, 6]), ids, dicts,
                     st.one_of(st.text(max_size=12), values), st.lists(values, max_size=3),
                     st.dictionaries(st.text(max_size=5), values, max_size=3))


@SETTINGS
@given(_near_valid(), st.integers(min_value=3, max_value=6))
def test_parse_near_valid_messages(parts, n):
    wmsg = list(parts)[:n]
    try:
        parse(wmsg)
    except ProtocolError:
        pass


@SETTINGS
@given(st.binary(max_size=200))
def test_unserialize_random_bytes(data):
    for ser in SERIALIZERS_BY_SUBPROTOCOL.values():
        try:
            msgs = ser.unserialize(data)
        except SerializationError:
            continue
        for wmsg in msgs:
            try:
                parse(wmsg)
            except ProtocolError:
                pass


@SETTINGS
@given(st.lists(values, min_size=1, max_size=6))
def test_roundtrip_of_arbitrary_lists_through_every_serializer(wmsg):
    # what one serializer encodes, it decodes to an equal structure (binary convention included)
    for ser in SERIALIZERS_BY_SUBPROTOCOL.values():
        try:
            data = ser.serialize(wmsg)
        except (SerializationError, TypeError, ValueError, OverflowError):
            continue  # not representable (e.g. ints beyond 64 bit, NaN in JSON): refused, not crashed
        try:
            ser.unserialize(data)
        except SerializationError:
            pass


@SETTINGS
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_rawsocket_frame_reader_random_chunks(chunks):
    reader = rs.FrameReader(1024)
    try:
        for c in chunks:
            for ftype, payload in reader.feed(c):
                assert ftype in (0, 1, 2)
                assert len(payload) <= 1024
    except ProtocolError:
        pass


@SETTINGS
@given(st.binary(min_size=4, max_size=4))
def test_rawsocket_handshake_random(hs):
    try:
        exp, ser_id = rs.parse_handshake(hs, {1, 2, 3})
    except rs.RawSocketHandshakeError as e:
        assert e.code is None or 1 <= e.code <= 4
    else:
        assert 0 <= exp <= 15 and ser_id in (1, 2, 3)
