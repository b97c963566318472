"""The usage record submission (wampfabric.protocol.metering): canonical encoding, Ed25519
signature, and every way a body can be refused."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wampfabric.protocol.metering import (MAX_SUBMISSION_BYTES, USAGE_FIELDS, MeteringError, canonical,
                                          parse_receipt, receipt, record_digest, sign_submission,
                                          verify_submission)

SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUB = KEY.public_key().public_bytes_raw().hex()
MREALM = "9210d186-10f2-4175-aa2c-aeb67824f345"


def record(**changes) -> dict:
    rec = {name: 0 for name in USAGE_FIELDS}
    rec.update(timestamp_from=1561550100 * 10**9, timestamp=1561550400 * 10**9, mrealm_id=MREALM, pubkey=PUB,
               seq=110, count=60, nodes=300, controllers=300, routers=300, sessions=900, msgs_call=290,
               processed=1561550464446683293)
    rec.update(changes)
    return rec


def test_canonical_encoding_is_sorted_compact_ascii():
    assert canonical({"b": 1, "a": [None, "é"], "c": {"z": 0, "y": -1}}) == \
        b'{"a":[null,"\\u00e9"],"b":1,"c":{"y":-1,"z":0}}'
    for bad in (1.0, True, {"a": 1.5}, {1: 2}, 2**63, b"x"):
        with pytest.raises(TypeError):
            canonical(bad)


def test_known_vector():
    """A fixed key, nonce and time give a fixed body: the wire format does not drift unnoticed
    (Ed25519 signatures are deterministic)."""
    body = sign_submission(record(), KEY, sent=1561550464500000000, nonce="00" * 16)
    doc = json.loads(body)
    signed = canonical(doc["signed"])
    assert hashlib.sha256(signed).hexdigest() == hashlib.sha256(
        b'{"nonce":"' + b"0" * 32 + b'","pubkey":"' + PUB.encode() + b'","record":' + canonical(record())
        + b',"sent":1561550464500000000,"type":"wampfabric.metering.usage","version":1}').hexdigest()
    # verifiable with nothing but the public key and a JSON library
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(doc["signed"]["pubkey"])).verify(
        bytes.fromhex(doc["signature"]), signed)
    assert doc["signature"] == KEY.sign(signed).hex()


def test_roundtrip():
    body = sign_submission(record(), KEY, sent=123)
    s = verify_submission(body)
    assert s.pubkey == PUB and s.sent == 123 and s.record == record() and len(s.nonce) == 32
    assert s.signed == canonical(json.loads(body)["signed"])
    # a new nonce every time
    assert verify_submission(sign_submission(record(), KEY, sent=123)).nonce != s.nonce


def _doc(**changes):
    doc = json.loads(sign_submission(record(), KEY, sent=123))
    doc.update(changes)
    return doc


def _refused(body, reason):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    with pytest.raises(MeteringError) as e:
        verify_submission(body)
    assert e.value.reason == reason, str(e.value)
    return str(e.value)


def test_tampered_and_wrong_key_refused():
    doc = _doc()
    doc["signed"]["record"]["nodes"] += 1
    _refused(doc, "bad_signature")
    other = Ed25519PrivateKey.generate()
    other_pub = other.public_key().public_bytes_raw().hex()
    doc = _doc()
    doc["signed"]["pubkey"] = doc["signed"]["record"]["pubkey"] = other_pub  # claims another key
    _refused(doc, "bad_signature")
    doc = json.loads(sign_submission(record(pubkey=other_pub), other, sent=1))
    doc["signature"] = _doc()["signature"]
    _refused(doc, "bad_signature")


def test_unsigned_and_malformed_refused():
    doc = _doc()
    del doc["signature"]
    _refused(doc, "unsigned")
    _refused(_doc(signature=""), "unsigned")
    _refused(_doc(signature="zz" * 64), "malformed")
    _refused(b"not json", "malformed")
    _refused(b"[]", "malformed")
    _refused(_doc(extra=1), "malformed")
    body = sign_submission(record(), KEY, sent=1)
    _refused(body.replace(b'"nodes":300', b'"nodes":300.0'), "malformed")  # floats
    _refused(body.replace(b'"nodes":300', b'"nodes":300,"nodes":301'), "malformed")  # duplicate keys
    _refused(body.replace(b'"nodes":300', b'"nodes":NaN'), "malformed")
    for change, where in (({"nodes": -1}, "record.nodes"), ({"nodes": "300"}, "record.nodes"),
                          ({"msgs_event": 2**40}, "record.msgs_event"), ({"timestamp": 2**63}, "record.timestamp"),
                          ({"mrealm_id": "x"}, "record.mrealm_id"), ({"pubkey": "AB" * 32}, "record.pubkey"),
                          ({"timestamp": 1561550100 * 10**9}, "timestamp must be after")):
        doc = _doc()
        doc["signed"]["record"].update(change)
        assert where in _refused(doc, "malformed")
    doc = _doc()
    del doc["signed"]["record"]["msgs_call"]
    assert "missing field(s) msgs_call" in _refused(doc, "malformed")
    doc = _doc()
    doc["signed"]["record"]["total"] = 0
    assert "unknown field(s) total" in _refused(doc, "malformed")
    doc = _doc()
    doc["signed"]["record"]["pubkey"] = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    assert "differs" in _refused(doc, "malformed")
    doc = _doc()
    doc["signed"]["version"] = 2
    _refused(doc, "malformed")


def test_size_limit():
    assert "limit" in _refused(b" " * (MAX_SUBMISSION_BYTES + 1), "too_large")
    deep = b"[" * 100_000 + b"]" * 100_000
    _refused(deep[:MAX_SUBMISSION_BYTES], "malformed")


def test_sign_checks_its_input():
    with pytest.raises(MeteringError):
        sign_submission(record(nodes=-5), KEY, sent=1)
    with pytest.raises(ValueError):
        sign_submission(record(pubkey="00" * 32), KEY, sent=1)


def test_receipt_and_digest():
    mid = uuid.uuid4()
    assert parse_receipt(receipt(mid, True)) == (mid, True)
    for bad in (b"", b"{}", b'{"metering_id": "x"}', b"[1]", mid.bytes):
        with pytest.raises(ValueError):
            parse_receipt(bad)
    assert record_digest(record()) == record_digest(dict(reversed(list(record().items()))))
    assert record_digest(record()) != record_digest(record(nodes=301))
