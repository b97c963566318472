"""Key codecs: Python key values <-> LMDB key bytes whose byte order is the values' order.

LMDB orders keys by plain byte comparison (memcmp, shorter first on a common prefix), so every
codec here maps a < b to encode(a) < encode(b) (tests/db/test_keys.py checks it with hypothesis):

==================  ====================================================================
codec               bytes
==================  ====================================================================
``UuidKey``         the 16 bytes of the UUID (``uuid.UUID.bytes``, RFC 4122 order)
``StrKey``          the UTF-8 bytes (UTF-8 byte order is code point order = ``str`` order)
``TimestampKey``    an int (nanoseconds since the Unix epoch) as 8 bytes big-endian unsigned
``BytesKey``        the bytes themselves (optionally of one fixed length)
``TupleKey``        the parts' encodings concatenated; a variable-length part (str, bytes
                    without fixed length) that is not the last part is *terminated*: each 0x00
                    byte in it is written as 0x00 0xFF and the part ends with 0x00 0x00.  This
                    keeps the order (a part that is a prefix of another sorts first) where a
                    length prefix would not ("b" < "aa" but len 1 < len 2 would agree only by
                    chance).  The last part is written as is.
==================  ====================================================================

Prefixes (``Table.count(txn, prefix)``, ``select(from_key=, to_key=)``): a tuple shorter than the
key is encoded part by part with the same rules, so ``(ts,)`` is the first 8 bytes of every key
``(ts, ...)``; a full key used as a prefix also matches longer last string parts.
"""

from __future__ import annotations

import uuid
from typing import Any

from .errors import InvalidKey

__all__ = ["KeyCodec", "UuidKey", "StrKey", "TimestampKey", "BytesKey", "TupleKey", "MAX_KEY_BYTES"]

# LMDB's compile-time limit (mdb_env_get_maxkeysize with the default MDB_MAXKEYSIZE)
MAX_KEY_BYTES = 511
_U64 = 1 << 64


class KeyCodec:
    """Encodes one kind of key.  ``fixed`` is the encoded length when it is always the same."""

    fixed: int | None = None
    name = "key"

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    def prefix(self, partial: Any) -> bytes:
        """The bytes every key starting with ``partial`` starts with."""
        return self.encode(partial)

    def to_json(self, value: Any) -> Any:
        """The key as JSON (``wampfabric master db export``)."""
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class UuidKey(KeyCodec):
    fixed = 16
    name = "uuid"

    def encode(self, value: Any) -> bytes:
        if isinstance(value, uuid.UUID):
            return value.bytes
        if isinstance(value, str):
            try:
                return uuid.UUID(value).bytes
            except ValueError:
                raise InvalidKey(f"not a UUID: {value[:64]!r}") from None
        raise InvalidKey(f"a UUID key must be a uuid.UUID or its string, not {type(value).__name__}")

    def decode(self, data: bytes) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(data))

    def to_json(self, value: uuid.UUID) -> str:
        return str(value)


class StrKey(KeyCodec):
    name = "str"

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise InvalidKey(f"a string key must be a str, not {type(value).__name__}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidKey(f"string key {value[:64]!r} is not encodable as UTF-8") from None

    def decode(self, data: bytes) -> str:
        return bytes(data).decode("utf-8")


class TimestampKey(KeyCodec):
    fixed = 8
    name = "timestamp"

    def encode(self, value: Any) -> bytes:
        if type(value) is not int:  # bool is an int: refuse it too
            raise InvalidKey(f"a timestamp key must be an int (ns since the epoch), not {type(value).__name__}")
        if not 0 <= value < _U64:
            raise InvalidKey(f"timestamp key {value} is outside 0 .. 2**64-1")
        return value.to_bytes(8, "big")

    def decode(self, data: bytes) -> int:
        return int.from_bytes(data, "big")


class BytesKey(KeyCodec):
    name = "bytes"

    def __init__(self, length: int | None = None):
        self.fixed = length

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidKey(f"a bytes key must be bytes, not {type(value).__name__}")
        value = bytes(value)
        if self.fixed is not None and len(value) != self.fixed:
            raise InvalidKey(f"a bytes key must have {self.fixed} bytes, not {len(value)}")
        return value

    def decode(self, data: bytes) -> bytes:
        return bytes(data)

    def to_json(self, value: bytes) -> str:
        return value.hex()

    def __repr__(self) -> str:
        return f"BytesKey({self.fixed})" if self.fixed is not None else "BytesKey()"


def _terminate(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _unterminate(data: bytes, pos: int) -> tuple[bytes, int]:
    """The escaped part starting at ``pos`` and the position after its terminator."""
    out = bytearray()
    while True:
        end = data.find(b"\x00", pos)
        if end < 0 or end + 1 >= len(data):
            raise InvalidKey("malformed key: an unterminated variable-length part")
        out += data[pos:end]
        marker = data[end + 1]
        if marker == 0x00:
            return bytes(out), end + 2
        if marker != 0xFF:
            raise InvalidKey("malformed key: a bad escape in a variable-length part")
        out.append(0)
        pos = end + 2


class TupleKey(KeyCodec):
    """A composite key of the given parts (``TupleKey(TimestampKey(), UuidKey(), StrKey())``)."""

    name = "tuple"

    def __init__(self, *parts: KeyCodec):
        if len(parts) < 2:
            raise ValueError("a TupleKey needs at least two parts")
        if any(isinstance(p, TupleKey) for p in parts):
            raise ValueError("TupleKey parts cannot be tuples themselves")
        self.parts = parts
        lengths = [p.fixed for p in parts]
        self.fixed = None if None in lengths else sum(lengths)

    def _encode_parts(self, values: tuple) -> bytes:
        last = len(self.parts) - 1
        out = []
        for i, (codec, v) in enumerate(zip(self.parts, values)):
            b = codec.encode(v)
            out.append(_terminate(b) if codec.fixed is None and i < last else b)
        return b"".join(out)

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (tuple, list)) or len(value) != len(self.parts):
            raise InvalidKey(f"this key is a tuple of {len(self.parts)} parts "
                             f"({', '.join(p.name for p in self.parts)}), not {_short(value)}")
        return self._encode_parts(tuple(value))

    def prefix(self, partial: Any) -> bytes:
        if not isinstance(partial, (tuple, list)) or len(partial) > len(self.parts):
            raise InvalidKey(f"a prefix of this key is a tuple of at most {len(self.parts)} parts "
                             f"({', '.join(p.name for p in self.parts)}), not {_short(partial)}")
        return self._encode_parts(tuple(partial))

    def decode(self, data: bytes) -> tuple:
        data = bytes(data)
        pos = 0
        last = len(self.parts) - 1
        out = []
        for i, codec in enumerate(self.parts):
            if i == last:
                chunk = data[pos:]
            elif codec.fixed is not None:
                chunk = data[pos:pos + codec.fixed]
                if len(chunk) != codec.fixed:
                    raise InvalidKey("malformed key: too short")
                pos += codec.fixed
            else:
                chunk, pos = _unterminate(data, pos)
            out.append(codec.decode(chunk))
        return tuple(out)

    def to_json(self, value: tuple) -> list:
        return [codec.to_json(v) for codec, v in zip(self.parts, value)]

    def __repr__(self) -> str:
        return f"TupleKey({', '.join(map(repr, self.parts))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
