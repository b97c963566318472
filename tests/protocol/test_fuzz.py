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


# ---------------------------------------------------------------------------
# nesting depth: any depth, at any position, before and after
# HELLO, is a parsed message or a SerializationError / ProtocolError with a short
# text -- never RecursionError (repr of a 1,000-deep list), ValueError (str of a
# CBOR bignum) or a crash; up to MAX_DEPTH every serializer can re-encode it.

import cbor2  # noqa: E402
import msgpack  # noqa: E402

from wampfabric.protocol.messages import short_repr  # noqa: E402
from wampfabric.protocol.serializers import MAX_DEPTH, SERIALIZERS_BY_NAME  # noqa: E402

_PH = "@@deep@@"
# (message template, level of the container holding the placeholder: the message list is level 1)
_TEMPLATES = [
    ([_PH], 1),  # the message type code itself
    ([1, "realm1", {"roles": {"caller": {}}, "authid": _PH}], 2),  # HELLO before a session
    ([1, "realm1", {"roles": {"caller": {}}, "authextra": {"x": _PH}}], 3),
    ([16, 1, {"acknowledge": _PH}, "a.b"], 2),
    ([16, 1, {}, "a.b", [_PH]], 2),
    ([48, 1, {}, "a.b", [], {"kw": _PH}], 2),
    ([48, _PH, {}, "a.b"], 1),
]


def _deep_bytes(ser: str, shape: list, leaf) -> bytes:
    """Containers nested len(shape) deep (True: a dict {"k": ...}, False: a list [...]), written
    without recursion, around the leaf."""
    if ser == "json":
        opens = [b'{"k":' if d else b"[" for d in shape]
        closes = [b"}" if d else b"]" for d in reversed(shape)]
        leaf_b = SERIALIZERS_BY_NAME["json"].serialize(leaf)
    elif ser == "msgpack":
        opens = [b"\x81\xa1k" if d else b"\x91" for d in shape]
        closes = []
        leaf_b = msgpack.packb(leaf, use_bin_type=True)
    else:
        opens = [b"\xa1\x61k" if d else b"\x81" for d in shape]
        closes = []
        leaf_b = b"\xf7" if leaf is None else cbor2.dumps(leaf)  # None: JavaScript's undefined
    return b"".join(opens) + leaf_b + b"".join(closes)


def _deep_message(ser: str, template, shape, leaf) -> bytes:
    s = SERIALIZERS_BY_NAME[ser]
    placeholder = s.serialize(_PH)
    data = s.serialize(template)
    assert data.count(placeholder) == 1
    return data.replace(placeholder, _deep_bytes(ser, shape, leaf))


_depths = st.one_of(st.integers(0, 30), st.integers(MAX_DEPTH - 6, MAX_DEPTH + 3),
                    st.sampled_from([100, 254, 255, 400, 401, 1000, 1023, 5000, 100_000]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(["json", "msgpack", "cbor"]), st.sampled_from(_TEMPLATES), _depths, st.data(),
       st.sampled_from([1, "s", b"\x00b", None, 2**70]))
def test_any_depth_is_a_message_or_a_clean_error(ser, template, depth, data, leaf):
    if ser != "cbor" and leaf == 2**70:
        leaf = -5  # only CBOR has bignums
    shape = data.draw(st.one_of(st.just([False] * depth), st.just([True] * depth),
                                st.lists(st.booleans(), min_size=depth, max_size=depth) if depth <= 2000
                                else st.just([i % 3 == 0 for i in range(depth)])))
    tmpl, level = template
    total = level + depth  # the deepest container's level
    if ser == "cbor" and leaf == 2**70:
        total += 1  # a CBOR bignum is a tag (2) around its bytes, and cbor2 counts a tag as a level
    raw = _deep_message(ser, tmpl, shape, leaf)
    for s in (SERIALIZERS_BY_NAME[ser], SERIALIZERS_BY_SUBPROTOCOL[f"wamp.2.{ser}.batched"]):
        payload = raw
        if s.BATCHED:
            payload = raw + b"\x1e" if ser == "json" else struct.pack(">I", len(raw)) + raw
        try:
            wmsg = s.unserialize_one(payload)
        except SerializationError as e:
            assert total > MAX_DEPTH, (total, str(e))
            assert f"nested deeper than {MAX_DEPTH} levels" in str(e)
            continue
        assert total <= MAX_DEPTH, total
        try:
            parse(wmsg)
        except ProtocolError as e:
            assert len(str(e)) < 300
        # whatever was accepted, every serializer writes (deeper than orjson's own 254 too)
        for out in SERIALIZERS_BY_NAME.values():
            if leaf == 2**70 and out.NAME != "cbor":
                continue  # a bignum is neither JSON (orjson) nor MessagePack: not a depth matter
            assert out.unserialize_one(out.serialize(wmsg)) is not None


def test_cbor_bignum_tag_counts_as_a_level():
    """The case hypothesis found: a bignum (tag 2) as the innermost value adds one level."""
    for depth, ok in ((MAX_DEPTH - 2, True), (MAX_DEPTH - 1, False)):
        raw = _deep_message("cbor", ["@@deep@@"], [False] * depth, 2**70)
        try:
            SERIALIZERS_BY_NAME["cbor"].unserialize_one(raw)
        except SerializationError as e:
            assert not ok and f"nested deeper than {MAX_DEPTH} levels" in str(e), (depth, e)
        else:
            assert ok, depth


def test_serializers_refuse_to_write_deeper_than_max_depth():
    x = 1
    for _ in range(MAX_DEPTH + 1):
        x = [x]
    for name in ("json", "msgpack"):
        try:
            SERIALIZERS_BY_NAME[name].serialize(x)
        except SerializationError as e:
            assert f"nested deeper than {MAX_DEPTH} levels" in str(e)
        else:
            raise AssertionError(f"{name} wrote a message nested {MAX_DEPTH + 1} deep")
    x = x[0]  # exactly MAX_DEPTH: all three write it, all three read it back
    for s in SERIALIZERS_BY_NAME.values():
        y = s.unserialize_one(s.serialize(x))
        for _ in range(MAX_DEPTH):
            y = y[0]
        assert y == 1


def test_cbor_shared_references_are_refused():
    # tag 28 around [tag 29(0), tag 29(0)]: a list holding itself twice
    cyclic = b"\xd8\x1c\x82\xd8\x1d\x00\xd8\x1d\x00"
    # 21 levels each referring twice to the one below: 195 bytes that write out as 6 MB
    levels = [b"\xd8\x1c\x81\x01"] + [b"\xd8\x1c\x82" + cbor2.dumps(cbor2.CBORTag(29, i)) * 2 for i in range(20)]
    dag = b"\x95" + b"".join(levels[:21])
    for data in (cyclic, dag):
        try:
            SERIALIZERS_BY_NAME["cbor"].unserialize_one(data)
        except SerializationError as e:
            assert "shared references" in str(e)
        else:
            raise AssertionError("a CBOR shared reference was accepted")


@SETTINGS
@given(values, st.integers(5, 200))
def test_short_repr_is_repr_cut_to_the_limit(v, limit):
    r = short_repr(v, limit)
    assert len(r) <= limit
    full = repr(v)
    if len(full) <= limit:
        assert r == full
    else:
        assert r.endswith("...")


def test_short_repr_any_depth_and_size():
    x, d = 1, {}
    for _ in range(100_000):
        x, d = [x], {"a": d}
    cyclic = []
    cyclic.append(cyclic)
    for v in (x, d, cyclic, 10**5000, "s" * 10**7, [b"b" * 10**7], (1,), object()):
        assert len(short_repr(v)) <= 60
    assert short_repr(10**5000) == "<int of 16610 bits>"
