"""Key codecs: encoded bytes sort like the values (LMDB compares keys as bytes), decode(encode(v))
is v, and bad keys are refused with a clear error."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wampfabric.db import BytesKey, InvalidKey, StrKey, TimestampKey, TupleKey, UuidKey

uuids = st.uuids()
# UTF-8 cannot encode lone surrogates; every other code point may appear, NUL included
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
stamps = st.integers(min_value=0, max_value=2**64 - 1)
blobs = st.binary(max_size=20)

CASES = [
    ("uuid", UuidKey(), uuids),
    ("str", StrKey(), texts),
    ("timestamp", TimestampKey(), stamps),
    ("bytes", BytesKey(), blobs),
    ("ts-uuid", TupleKey(TimestampKey(), UuidKey()), st.tuples(stamps, uuids)),
    ("ts-uuid-str", TupleKey(TimestampKey(), UuidKey(), StrKey()), st.tuples(stamps, uuids, texts)),
    ("uuid-str", TupleKey(UuidKey(), StrKey()), st.tuples(uuids, texts)),
    # variable-length parts before the last one: the terminated encoding
    ("str-str", TupleKey(StrKey(), StrKey()), st.tuples(texts, texts)),
    ("str-ts-bytes-str", TupleKey(StrKey(), TimestampKey(), BytesKey(), StrKey()),
     st.tuples(texts, stamps, blobs, texts)),
]


def _order_key(value):
    """Python's order of the values; UUIDs compare by their 128-bit int (= RFC 4122 byte order)."""
    if isinstance(value, tuple):
        return tuple(_order_key(v) for v in value)
    if isinstance(value, uuid.UUID):
        return value.int
    if isinstance(value, str):
        return [ord(c) for c in value]
    return value


@pytest.mark.parametrize("name,codec,strategy", CASES, ids=[c[0] for c in CASES])
def test_bytes_sort_like_values_and_round_trip(name, codec, strategy):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(strategy, min_size=2, max_size=12))
    def check(values):
        encoded = {}
        for v in values:
            b = codec.encode(v)
            assert codec.decode(b) == v
            if codec.fixed is not None:
                assert len(b) == codec.fixed
            encoded[b] = v
        by_bytes = [encoded[b] for b in sorted(encoded)]
        assert [_order_key(v) for v in by_bytes] == sorted(_order_key(v) for v in encoded.values())

    check()


@settings(max_examples=300, deadline=None)
@given(st.tuples(texts, texts, texts))
def test_tuple_prefix_is_a_prefix_of_the_key(value):
    codec = TupleKey(StrKey(), StrKey(), StrKey())
    full = codec.encode(value)
    assert full.startswith(codec.prefix(value[:1]))
    assert full.startswith(codec.prefix(value[:2]))
    assert codec.prefix(()) == b""


@settings(max_examples=200, deadline=None)
@given(texts, texts)
def test_a_terminated_prefix_matches_only_that_part(a, b):
    """The prefix (a,) of (str, str) keys matches (a, x) but never (a + more, x)."""
    codec = TupleKey(StrKey(), StrKey())
    assert codec.encode((a + "z", b)).startswith(codec.prefix((a,))) is False
    assert codec.encode((a, b)).startswith(codec.prefix((a,)))


def test_documented_layouts():
    oid = uuid.UUID("997b2bb2-0000-4000-8000-000000000001")
    assert TimestampKey().encode(1) == b"\x00" * 7 + b"\x01"
    assert UuidKey().encode(oid) == oid.bytes == UuidKey().encode(str(oid))
    assert TupleKey(TimestampKey(), UuidKey(), StrKey()).encode((2, oid, "rw1")) == \
        (2).to_bytes(8, "big") + oid.bytes + b"rw1"
    assert TupleKey(StrKey(), StrKey()).encode(("alice@x", "ab12")) == b"alice@x\x00\x00ab12"
    assert TupleKey(StrKey(), StrKey()).encode(("a\x00b", "c")) == b"a\x00\xffb\x00\x00c"


@pytest.mark.parametrize("codec,value,text", [
    (UuidKey(), "not-a-uuid", "not a UUID"),
    (UuidKey(), 5, "must be a uuid.UUID"),
    (StrKey(), b"bytes", "must be a str"),
    (StrKey(), "\ud800", "not encodable as UTF-8"),
    (TimestampKey(), -1, "outside 0 .. 2**64-1"),
    (TimestampKey(), 2**64, "outside 0 .. 2**64-1"),
    (TimestampKey(), 1.5, "must be an int"),
    (TimestampKey(), True, "must be an int"),
    (BytesKey(16), b"short", "must have 16 bytes"),
    (TupleKey(TimestampKey(), UuidKey()), (1,), "tuple of 2 parts"),
    (TupleKey(TimestampKey(), UuidKey()), "x", "tuple of 2 parts"),
])
def test_bad_keys_are_refused_clearly(codec, value, text):
    with pytest.raises(InvalidKey, match=text.replace("*", r"\*").replace(".", r"\.")):
        codec.encode(value)


def test_malformed_stored_key_is_an_error_not_a_crash():
    codec = TupleKey(StrKey(), StrKey())
    for raw in (b"abc", b"a\x00\x01b", b"a\x00"):
        with pytest.raises(InvalidKey, match="malformed key"):
            codec.decode(raw)
