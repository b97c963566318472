"""Value codecs and records: a stored value is the CBOR (RFC 8949, cbor2) of a record's dict.

A record is a small class listing its fields and their kinds.  ``marshal()`` gives the dict that is
stored, ``parse(dict)`` makes the record back.  Fields a record class does not know (written by a
newer version) are kept in ``record.extra`` and written back by ``marshal()``, so an older writer
does not drop a newer writer's fields.

Field kinds and how they are stored in CBOR:

=========  ================================================================================
kind       CBOR
=========  ================================================================================
uuid       tag 37 + 16-byte string (RFC 9562; cbor2 encodes and decodes ``uuid.UUID`` so)
str        text string
int        integer (timestamps: nanoseconds since the Unix epoch)
float      float or integer
bool       true / false
bytes      byte string
dict       map (string keys), any nesting
list       array
any        whatever the value is
=========  ================================================================================

Every field may be null (None).  A marshalled record is a CBOR map of field name to value.
"""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any, ClassVar

import cbor2

from .errors import InvalidValue

__all__ = ["Record", "ValueCodec", "CborValue", "RecordValue", "to_json"]

# CBOR nesting allowed when reading a value back (records are shallow; this bounds a corrupt value)
_MAX_DEPTH = 64

_KINDS = {
    "uuid": (uuid.UUID,),
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "bytes": (bytes,),
    "dict": (dict,),
    "list": (list, tuple),
    "any": (object,),
}

# the types a field of each kind may hold as they are (exact types: ``type(v) in``); any other
# value goes through ``_check`` (an int subclass, a str for a uuid field, a tuple for a list ...)
_PLAIN = {
    "uuid": frozenset((uuid.UUID,)),
    "str": frozenset((str,)),
    "int": frozenset((int,)),
    "float": frozenset((int, float)),
    "bool": frozenset((bool,)),
    "bytes": frozenset((bytes,)),
    "dict": frozenset((dict,)),
    "list": frozenset((list,)),
    "any": None,  # replaced below: every value is plain
}


class _Every:
    """Holds every type (the kind ``any``)."""

    def __contains__(self, item) -> bool:
        return True


_PLAIN["any"] = _Every()

# defaults that need no copy per record
_IMMUTABLE = (int, float, bool, str, bytes, tuple, frozenset, uuid.UUID)


class Record:
    """Base class of stored records.

    A subclass sets ``FIELDS`` (name -> kind, see the module docstring) and may set ``DEFAULTS``
    (name -> default, copied per record; otherwise None)::

        class User(Record):
            FIELDS = {"oid": "uuid", "email": "str", "registered": "int"}
    """

    FIELDS: ClassVar[dict[str, str]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name, kind in cls.FIELDS.items():
            if kind not in _KINDS:
                raise TypeError(f"{cls.__name__}.{name}: unknown field kind {kind!r}")
        unknown = set(cls.DEFAULTS) - set(cls.FIELDS)
        if unknown:
            raise TypeError(f"{cls.__name__}: defaults for unknown fields {sorted(unknown)}")
        # prepared once per class, so that making and marshalling a record costs two dict updates
        # and one type look-up per field instead of a setattr and a kind check per field
        cls._field_names = frozenset(cls.FIELDS)
        cls._initial = {name: None for name in cls.FIELDS}
        copied = []
        for name, value in cls.DEFAULTS.items():
            if value is None or type(value) in _IMMUTABLE:
                cls._initial[name] = value
            else:
                copied.append((name, value))  # copied per record (a default list is not shared)
        cls._copied = tuple(copied)
        cls._plain = tuple((name, _PLAIN[kind]) for name, kind in cls.FIELDS.items())

    def __init__(self, **fields: Any):
        if not fields.keys() <= self._field_names:
            unknown = set(fields) - self._field_names
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(sorted(unknown))} "
                            f"(fields: {', '.join(self.FIELDS)})")
        d = self.__dict__
        d.update(self._initial)
        for name, value in self._copied:
            if name not in fields:
                d[name] = copy.copy(value)
        d.update(fields)
        self.extra: dict[str, Any] = {}

    def marshal(self) -> dict[str, Any]:
        """The dict that is stored: known fields (checked against their kinds) and ``extra``."""
        out = dict(self.extra)
        d = self.__dict__
        for name, plain in self._plain:
            value = d[name]
            if value is not None and type(value) not in plain:
                # not exactly one of the kind's types: the full check (subclasses, UUIDs given
                # as strings, tuples for lists ...), which converts or raises InvalidValue
                value = _check(type(self).__name__, name, self.FIELDS[name], value)
            out[name] = value
        return out

    @classmethod
    def parse(cls, data: dict[str, Any]):
        """The record of a marshalled dict; unknown fields go to ``extra``."""
        if not isinstance(data, dict):
            raise InvalidValue(f"a {cls.__name__} record is a map, not {type(data).__name__}")
        obj = cls.__new__(cls)
        fields = cls.FIELDS
        for name, kind in fields.items():
            value = data.get(name)
            if value is not None:
                value = _check(cls.__name__, name, kind, value)
            elif name not in data and name in cls.DEFAULTS:
                value = copy.copy(cls.DEFAULTS[name])
            setattr(obj, name, value)
        obj.extra = {k: v for k, v in data.items() if k not in fields}
        return obj

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.marshal() == other.marshal()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS if getattr(self, n) is not None)
        return f"{type(self).__name__}({shown})"


def _check(cls: str, name: str, kind: str, value: Any) -> Any:
    if kind == "uuid":
        if isinstance(value, uuid.UUID):
            return value
        try:
            if isinstance(value, str):
                return uuid.UUID(value)
            if isinstance(value, bytes) and len(value) == 16:
                return uuid.UUID(bytes=value)
        except ValueError:
            pass
        raise InvalidValue(f"{cls}.{name} must be a UUID, not {_short(value)}")
    types = _KINDS[kind]
    if not isinstance(value, types) or (kind in ("int", "float") and isinstance(value, bool)):
        raise InvalidValue(f"{cls}.{name} must be {kind}, not {type(value).__name__} {_short(value)}")
    if kind == "list" and isinstance(value, tuple):
        return list(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ValueCodec:
    """Encodes the values of one table."""

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


def _dumps(obj: Any) -> bytes:
    try:
        return cbor2.dumps(obj)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as e:
        raise InvalidValue(f"value not encodable as CBOR: {e}") from None


def _loads(data: bytes) -> Any:
    try:
        return cbor2.loads(data, max_depth=_MAX_DEPTH)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as e:
        raise InvalidValue(f"stored value is not valid CBOR: {e}") from None


class CborValue(ValueCodec):
    """Any CBOR-encodable value (dicts, lists, numbers, strings, bytes, UUIDs)."""

    def encode(self, value: Any) -> bytes:
        return _dumps(value)

    def decode(self, data: bytes) -> Any:
        return _loads(data)

    def __repr__(self) -> str:
        return "CborValue()"


class RecordValue(ValueCodec):
    """Records of one class: ``cbor2.dumps(record.marshal())``, back by ``cls.parse``."""

    def __init__(self, cls: type[Record]):
        self.cls = cls

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, self.cls):
            raise InvalidValue(f"this table holds {self.cls.__name__} records, not {type(value).__name__}")
        return _dumps(value.marshal())

    def decode(self, data: bytes) -> Record:
        return self.cls.parse(_loads(data))

    def __repr__(self) -> str:
        return f"RecordValue({self.cls.__name__})"


def to_json(value: Any) -> Any:
    """A stored value as JSON data: UUIDs as strings, bytes as hex, records as their dicts."""
    if isinstance(value, Record):
        value = value.marshal()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
