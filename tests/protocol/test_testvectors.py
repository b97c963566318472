"""Check the protocol layer against the WAMP test vectors (singlemessage/*).

The vectors are vendored in ``tests/vectors/wamp-testvectors`` (unmodified, CC BY-SA 3.0,
see ATTRIBUTION.md there; their README.md / SCHEMA.json describe the format), so the codec is
checked on any clone of the repository.  Every sample of every
file becomes test cases:

* a *serialization sample* yields one case per serializer it lists:

  - every byte variant must decode (json/msgpack/cbor are standard encodings;
    the README's "skip variants you cannot decode" rule is meant for backends
    such as the two incompatible ubjson ones) to a message whose attributes
    equal ``expected_attributes``;
  - re-encoding ``marshal()`` must give *exactly* one of the listed byte
    variants.  That holds for all three serializers here because parsing
    keeps dict order, orjson writes the compact form the vectors list as
    "Compact (no spaces)", and msgpack/cbor2 both use the shortest integer
    and length encodings, as the vectors do.  In addition the round trip
    ``parse(unserialize(serialize(marshal())))`` must equal the message;
  - ubjson and flatbuffers are not implemented by wampfabric: those cases are
    skipped with that reason.

* each such case is also run through the batched variant of the serializer
  (``<name>.batched``): the variant bytes framed as a batch of one must decode
  to the same message, and a batch of two must yield two equal messages.

* a *validation sample* (raw ``wmsg`` with optional ``expected_error``) must
  parse, or raise :class:`ProtocolError` whose text contains the expected
  substring.

The per-implementation ``validation`` code blocks are written against the
autobahn-python / autobahn-js / wampy APIs and are not executed; the
``expected_attributes`` carry the same information.
"""

import base64
import binascii
import json
from pathlib import Path

import pytest

from wampfabric.protocol import messages
from wampfabric.protocol.errors import ProtocolError
from wampfabric.protocol.serializers import SERIALIZERS_BY_NAME, create_serializer

VECTOR_ROOT = Path(__file__).resolve().parents[1] / "vectors" / "wamp-testvectors"
SINGLEMESSAGE = VECTOR_ROOT / "singlemessage"

# test-vector attribute names that differ from our attribute names
_ATTR_NAMES = {
    "request_id": "request",
    "subscription_id": "subscription",
    "registration_id": "registration",
    "publication_id": "publication",
    "session_id": "session",
}

# where Options/Details and the Arguments slot are, per message type (for
# validation samples carrying a passthru payload, see _fix_payload)
_META_AND_ARGS = {8: (3, 5), 16: (2, 4), 36: (3, 4), 48: (2, 4), 50: (2, 3), 68: (3, 4), 70: (2, 3)}


def _vector_files():
    if not SINGLEMESSAGE.is_dir():
        return []
    return sorted(SINGLEMESSAGE.rglob("*.json"))


def _collect():
    ser_cases, val_cases = [], []
    for path in _vector_files():
        rel = path.relative_to(SINGLEMESSAGE).as_posix()
        vector = json.loads(path.read_text(encoding="utf-8"))
        for i, sample in enumerate(vector["samples"]):
            if "wmsg" in sample:
                val_cases.append(pytest.param(sample, id=f"{rel}#{i}"))
                continue
            for ser_name, variants in sample["serializers"].items():
                ser_cases.append(pytest.param(sample, ser_name, variants, id=f"{rel}#{i}-{ser_name}"))
    return ser_cases, val_cases


SER_CASES, VAL_CASES = _collect()


def _variant_bytes(variant: dict) -> bytes:
    if "bytes_hex" in variant:
        return binascii.unhexlify(variant["bytes_hex"])
    if "bytes_base64" in variant:
        return base64.b64decode(variant["bytes_base64"])
    return variant["bytes"].encode("utf-8")


def _check_attributes(msg, expected: dict) -> None:
    for key, value in expected.items():
        if key == "message_type":
            assert msg.MESSAGE_TYPE == value
        elif key == "roles":
            # HELLO/WELCOME: roles are a Details attribute
            assert msg.details["roles"] == value
        elif key == "payload":
            # the vectors give the passthru payload as hex
            assert msg.payload == (None if value is None else bytes.fromhex(value))
        else:
            # an unknown key fails here with AttributeError, never passes silently
            assert getattr(msg, _ATTR_NAMES.get(key, key)) == value, key


def test_vectors_present():
    """Guard against the whole suite silently collecting nothing (the vectors are vendored:
    missing ones are a failure, never a skip)."""
    assert SINGLEMESSAGE.is_dir(), f"WAMP test vectors not found at {SINGLEMESSAGE}"
    files = _vector_files()
    assert files, "no vector files found"
    assert SER_CASES, "no serialization samples collected"
    # every file contributes at least one case
    ids = {p.id.split("#")[0] for p in SER_CASES + VAL_CASES}
    assert ids == {p.relative_to(SINGLEMESSAGE).as_posix() for p in files}


@pytest.mark.parametrize("sample, ser_name, variants", SER_CASES)
def test_serialization_sample(sample, ser_name, variants):
    ser = SERIALIZERS_BY_NAME.get(ser_name)
    if ser is None:
        pytest.skip(f"serializer {ser_name!r} is not implemented by wampfabric")
    expected = sample["expected_attributes"]
    variant_bytes = [_variant_bytes(v) for v in variants]

    # bytes -> message, for every variant
    decoded = []
    for raw in variant_bytes:
        msg = messages.parse(ser.unserialize_one(raw))
        _check_attributes(msg, expected)
        decoded.append(msg)
    assert all(m == decoded[0] for m in decoded)
    msg = decoded[0]

    # message -> bytes: exactly one of the documented variants
    out = ser.serialize(msg.marshal())
    assert out in variant_bytes, f"{out!r} not among the vector's variants"

    # and the semantic round trip
    again = messages.parse(ser.unserialize_one(out))
    assert again == msg
    _check_attributes(again, expected)


@pytest.mark.parametrize("sample, ser_name, variants", SER_CASES)
def test_serialization_sample_batched(sample, ser_name, variants):
    if ser_name not in SERIALIZERS_BY_NAME:
        pytest.skip(f"serializer {ser_name!r} is not implemented by wampfabric")
    plain = SERIALIZERS_BY_NAME[ser_name]
    batched = create_serializer(ser_name + ".batched")
    expected = sample["expected_attributes"]
    for variant in variants:
        raw = _variant_bytes(variant)
        ref = messages.parse(plain.unserialize_one(raw))
        # frame the vector's own bytes the way the batched serializer does
        framed = batched.serialize_batch([plain.unserialize_one(raw)])
        (one,) = batched.unserialize(framed)
        assert messages.parse(one) == ref
        assert messages.parse(batched.unserialize_one(batched.serialize(ref.marshal()))) == ref
        two = batched.unserialize(framed + framed)
        assert len(two) == 2
        for m in two:
            msg = messages.parse(m)
            assert msg == ref
            _check_attributes(msg, expected)


def _fix_payload(wmsg: list) -> list:
    """Validation samples are plain JSON and cannot hold binary: their passthru
    payloads (``enc_algo`` set) are hex strings.  Turn them into the bytes a
    real deserializer would produce."""
    pos = _META_AND_ARGS.get(wmsg[0])
    if pos is None or len(wmsg) <= pos[1]:
        return wmsg
    meta = wmsg[pos[0]]
    if isinstance(meta, dict) and ("enc_algo" in meta or "ppt_scheme" in meta) and isinstance(wmsg[pos[1]], str):
        wmsg = list(wmsg)
        wmsg[pos[1]] = bytes.fromhex(wmsg[pos[1]])
    return wmsg


@pytest.mark.parametrize("sample", VAL_CASES)
def test_validation_sample(sample):
    wmsg = _fix_payload(sample["wmsg"])
    err = sample.get("expected_error")
    if err is None:
        msg = messages.parse(wmsg)
        assert msg.marshal() == wmsg
    else:
        assert err["type"] == "protocol_violation", f"unhandled expected_error type {err['type']!r}"
        with pytest.raises(ProtocolError) as info:
            messages.parse(wmsg)
        if "contains" in err:
            assert err["contains"] in str(info.value)
