"""Usage metering records on the wire: what a master submits to a metering service, how it is
encoded and signed, and how the service checks it.  Sans-I/O: no sockets, no clock of its own.

A submission is one HTTP POST whose body is a JSON object::

    {"signed": {"type": "wampfabric.metering.usage", "version": 1,
                "pubkey": "<master's Ed25519 public key, 64 hex>",
                "nonce": "<32 hex: 16 random bytes, new for every POST>",
                "sent": <ns since the epoch, when the master sent it>,
                "record": {<USAGE_FIELDS: the aggregated usage of one mrealm in one interval>}},
     "signature": "<128 hex: Ed25519 signature of canonical(signed)>"}

``canonical(obj)`` is the JSON text of ``obj`` with the keys of every object sorted, no
whitespace (separators ``,`` and ``:``), ASCII only (``\\uXXXX`` escapes), as UTF-8 bytes; the
values are integers, strings and null only (no floats, no booleans), so the text is unique.
Anyone holding a record, its nonce, sent time and signature can rebuild the signed text and check
it against the master's public key (docs/metering.md shows the five lines of Python).

The service answers 200 with ``{"metering_id": "<uuid>", "duplicate": false|true}``: a record
it already holds under the same idempotency key ``(pubkey, mrealm_id, timestamp)`` and with the
same content gets the same ``metering_id`` back (``duplicate: true``) and is not counted again;
a *different* record under a key it holds is a conflict (409).  The nonce makes every POST unique:
the same POST seen twice (a replay) is refused, and a POST whose ``sent`` is further than the
service's allowed skew from its clock is refused as stale.
"""

from __future__ import annotations

import binascii
import json
import secrets
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "USAGE_TYPE", "USAGE_VERSION", "MSG_TYPES", "WORKER_TYPE_FIELDS", "WORKER_FIELDS", "USAGE_FIELDS",
    "COUNTER_FIELDS", "MAX_COUNTER", "MAX_SUBMISSION_BYTES", "MeteringError", "canonical", "check_record",
    "sign_submission", "verify_submission", "Submission", "receipt", "parse_receipt", "record_digest",
]

USAGE_TYPE = "wampfabric.metering.usage"
USAGE_VERSION = 1

#: the WAMP message types counted per interval (``msgs_<type>``)
MSG_TYPES = ("call", "yield", "invocation", "result", "error", "publish", "published", "event",
             "register", "registered", "subscribe", "subscribed")

#: worker type (as worker heartbeats name it) -> the record's worker-seconds field
WORKER_TYPE_FIELDS = {"controller": "controllers", "router": "routers", "container": "containers",
                      "guest": "guests", "proxy": "proxies", "hostmonitor": "hostmonitors",
                      "marketmaker": "marketmakers", "xbrmm": "marketmakers"}
WORKER_FIELDS = ("controllers", "routers", "containers", "guests", "proxies", "hostmonitors", "marketmakers")

#: the counters of a record: all integers >= 0 (seconds or message counts)
COUNTER_FIELDS = ("count", "nodes", *WORKER_FIELDS, "sessions", *(f"msgs_{m}" for m in MSG_TYPES))

#: the fields of a submitted usage record and their kinds ("ns": int nanoseconds since the epoch)
USAGE_FIELDS = {
    "timestamp_from": "ns",  # the interval's start (inclusive)
    "timestamp": "ns",  # the interval's end (exclusive)
    "mrealm_id": "uuid",  # the management realm
    "pubkey": "hex",  # the master's public key (64 hex)
    "seq": "int",  # the master's heartbeat loop iteration that aggregated it
    **{name: "int" for name in COUNTER_FIELDS},
    "processed": "ns",  # when the master aggregated it
}

#: the largest submission body a service need accept (a record is ~900 bytes)
MAX_SUBMISSION_BYTES = 16 * 1024

_MAX_INT = 2**63 - 1
#: the largest counter a record may carry (about 10^12: 3.6 billion messages a second for 5
#: minutes): sums of counters over many records and hours stay far inside 64-bit integers
MAX_COUNTER = 2**40 - 1


class MeteringError(Exception):
    """A submission that cannot be accepted. ``reason`` is one of ``malformed``, ``unsigned``,
    ``bad_signature``, ``too_large`` (what the service maps to HTTP statuses); ``str()`` says
    what is wrong in one line."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def canonical(obj) -> bytes:
    """The canonical encoding (module docstring); TypeError for floats and booleans."""
    _check_canonical_value(obj, 0)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _check_canonical_value(v, depth: int) -> None:
    if depth > 8:
        raise TypeError("nested too deep")
    if v is None or type(v) is str:
        return
    if type(v) is int:
        if not -_MAX_INT - 1 <= v <= _MAX_INT:
            raise TypeError("integer out of the 64-bit range")
        return
    if type(v) is dict:
        for k, x in v.items():
            if type(k) is not str:
                raise TypeError("object keys must be strings")
            _check_canonical_value(x, depth + 1)
        return
    if type(v) is list:
        for x in v:
            _check_canonical_value(x, depth + 1)
        return
    raise TypeError(f"{type(v).__name__} values are not allowed")


def _is_hex(value, nbytes: int) -> bool:
    return (type(value) is str and len(value) == 2 * nbytes
            and all(c in "0123456789abcdef" for c in value))


def check_record(record) -> dict:
    """The record if it has exactly USAGE_FIELDS with the right kinds and consistent values, else
    MeteringError("malformed", ...) naming the first problem."""
    if type(record) is not dict:
        raise MeteringError("malformed", "record: must be an object")
    missing = [k for k in USAGE_FIELDS if k not in record]
    if missing:
        raise MeteringError("malformed", f"record: missing field(s) {', '.join(missing)}")
    unknown = sorted(k for k in record if k not in USAGE_FIELDS)
    if unknown:
        raise MeteringError("malformed", f"record: unknown field(s) {', '.join(unknown)}")
    for name, kind in USAGE_FIELDS.items():
        v = record[name]
        if kind in ("int", "ns"):
            hi, text = (_MAX_INT, "2^63-1") if kind == "ns" else (MAX_COUNTER, "2^40-1")
            if type(v) is not int or not 0 <= v <= hi:
                raise MeteringError("malformed", f"record.{name}: must be an integer from 0 to {text}, not {v!r}")
        elif kind == "uuid":
            try:
                ok = type(v) is str and str(uuid.UUID(v)) == v
            except ValueError:
                ok = False
            if not ok:
                raise MeteringError("malformed", f"record.{name}: must be a UUID in canonical form")
        elif kind == "hex" and not _is_hex(v, 32):
            raise MeteringError("malformed", f"record.{name}: must be 64 lower-case hex digits")
    if record["timestamp"] <= record["timestamp_from"]:
        raise MeteringError("malformed", "record: timestamp must be after timestamp_from")
    return record


def _signed_doc(record: dict, pubkey_hex: str, nonce: str, sent: int) -> dict:
    return {"type": USAGE_TYPE, "version": USAGE_VERSION, "pubkey": pubkey_hex, "nonce": nonce, "sent": sent,
            "record": record}


def sign_submission(record: dict, key: Ed25519PrivateKey, sent: int, nonce: str | None = None) -> bytes:
    """The body of the POST that submits ``record`` (USAGE_FIELDS, ``pubkey`` = ``key``'s),
    signed with ``key``; ``sent`` in ns; a fresh random nonce unless one is given."""
    check_record(record)
    pub = key.public_key().public_bytes_raw().hex()
    if record["pubkey"] != pub:
        raise ValueError("record.pubkey is not the signing key's public key")
    signed = _signed_doc(record, pub, nonce or secrets.token_hex(16), sent)
    signature = key.sign(canonical(signed))
    return json.dumps({"signed": signed, "signature": signature.hex()}, separators=(",", ":")).encode("ascii")


class Submission:
    """A verified submission: ``pubkey`` (hex), ``nonce``, ``sent`` (ns), ``record`` (dict),
    ``signature`` (hex), ``signed`` (the exact bytes the signature covers)."""

    __slots__ = ("pubkey", "nonce", "sent", "record", "signature", "signed")

    def __init__(self, pubkey, nonce, sent, record, signature, signed):
        self.pubkey, self.nonce, self.sent, self.record = pubkey, nonce, sent, record
        self.signature, self.signed = signature, signed


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise MeteringError("malformed", f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_floats(text):
    raise MeteringError("malformed", f"numbers must be integers, not {text}")


def verify_submission(body: bytes, max_bytes: int = MAX_SUBMISSION_BYTES) -> Submission:
    """Parse and check a submission body: size, JSON, shape, record fields, and the Ed25519
    signature against the ``pubkey`` it names.  MeteringError on anything wrong.  It does not
    check whether the key is registered, the clock skew or replays: that is the service's state."""
    if len(body) > max_bytes:
        raise MeteringError("too_large", f"submission of {len(body)} bytes: the limit is {max_bytes}")
    try:
        doc = json.loads(body, object_pairs_hook=_no_duplicate_keys, parse_float=_no_floats,
                         parse_constant=_no_floats)
    except MeteringError:
        raise
    except (ValueError, RecursionError) as e:
        raise MeteringError("malformed", f"not JSON: {e}") from None
    if type(doc) is not dict:
        raise MeteringError("malformed", "the body must be a JSON object")
    if "signature" not in doc or doc.get("signature") in (None, ""):
        raise MeteringError("unsigned", "no signature")
    if set(doc) != {"signed", "signature"}:
        raise MeteringError("malformed", "the body must have exactly 'signed' and 'signature'")
    signed, signature = doc["signed"], doc["signature"]
    if not _is_hex(signature, 64):
        raise MeteringError("malformed", "signature: must be 128 lower-case hex digits")
    if type(signed) is not dict:
        raise MeteringError("malformed", "signed: must be an object")
    want = {"type", "version", "pubkey", "nonce", "sent", "record"}
    if set(signed) != want:
        raise MeteringError("malformed", f"signed: must have exactly {', '.join(sorted(want))}")
    if signed["type"] != USAGE_TYPE or signed["version"] != USAGE_VERSION:
        raise MeteringError("malformed", f"signed: type/version must be {USAGE_TYPE!r}/{USAGE_VERSION}")
    pub = signed["pubkey"]
    if not _is_hex(pub, 32):
        raise MeteringError("malformed", "signed.pubkey: must be 64 lower-case hex digits")
    if not _is_hex(signed["nonce"], 16):
        raise MeteringError("malformed", "signed.nonce: must be 32 lower-case hex digits")
    if type(signed["sent"]) is not int or not 0 <= signed["sent"] <= _MAX_INT:
        raise MeteringError("malformed", "signed.sent: must be an integer (ns since the epoch)")
    record = check_record(signed["record"])
    if record["pubkey"] != pub:
        raise MeteringError("malformed", "signed.record.pubkey differs from signed.pubkey")
    try:
        message = canonical(signed)
    except TypeError as e:
        raise MeteringError("malformed", f"signed: {e}") from None
    try:
        Ed25519PublicKey.from_public_bytes(binascii.a2b_hex(pub)).verify(binascii.a2b_hex(signature), message)
    except (InvalidSignature, ValueError):
        raise MeteringError("bad_signature", "the signature does not match the signed content and pubkey") from None
    return Submission(pub, signed["nonce"], signed["sent"], record, signature, message)


def record_digest(record: dict) -> str:
    """SHA-256 (hex) of canonical(record): what "the same content" means for idempotency."""
    import hashlib

    return hashlib.sha256(canonical(record)).hexdigest()


def receipt(metering_id: uuid.UUID | str, duplicate: bool) -> bytes:
    """The service's 200 answer body."""
    return json.dumps({"metering_id": str(metering_id), "duplicate": bool(duplicate)}).encode()


def parse_receipt(body: bytes) -> tuple[uuid.UUID, bool]:
    """(metering_id, duplicate) of a 200 answer; ValueError if it is not one."""
    try:
        doc = json.loads(body)
        return uuid.UUID(doc["metering_id"]), bool(doc.get("duplicate", False))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"not a metering receipt: {e}") from None
