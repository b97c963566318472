"""WAMP serializers: JSON, MessagePack and CBOR, plain and batched.

Each serializer turns one WAMP message (a ``list``) into ``bytes`` and back.
The batched variants ("Message Batching", Advanced Profile) frame messages:

* ``wamp.2.json.batched``: every serialized message is followed by the record
  separator octet ``0x1e``.  A raw ``0x1e`` can never occur inside JSON text
  (control characters must be escaped in strings), so splitting is safe.
* ``wamp.2.msgpack.batched`` / ``wamp.2.cbor.batched``: every message is
  prefixed with its length as a big-endian uint32.  The spec text only
  describes MessagePack; CBOR uses the same framing (that is what Crossbar.io
  and its ``crossbar shell``, which negotiates ``wamp.2.cbor.batched``, do).

A batch with zero messages is illegal ("a Peer MUST fail the transport").

Binary in JSON ("Binary support in JSON")
-----------------------------------------
``bytes`` travel as the string ``"\\0" + base64(data)`` (standard base64
with padding), at any nesting depth.  A NUL character has to be escaped as
``\\u0000`` in JSON text, so the decoded structure is only walked (to turn
such strings back into ``bytes``) when the raw input contains ``b"\\\\u0000"``;
messages without binaries pay one ``memchr``-speed substring search.

Instances are stateless apart from the MessagePack serializer's reusable
``msgpack.Packer`` (faster than ``msgpack.packb``, which builds a new
Packer per call); the router runs on one event-loop thread, so sharing the
registry instances is fine, but do not use one instance from several threads.

Nesting depth (``MAX_DEPTH`` = 1024)
------------------------------------
A message may nest containers (lists, dicts; CBOR tags count too) at most
1024 levels deep, counting the message list itself: ``[[[...]]]`` with 1024
``[`` passes, 1025 do not.  Deeper input is a :class:`SerializationError`
"nested deeper than 1024 levels" (the session answers ABORT
``wamp.error.protocol_violation``).  The limit is what orjson and msgpack
enforce themselves (neither can be changed) and what cbor2 is told
(``max_depth``; its default is 400), so it costs nothing per message and is
the same for all serializers.  Whatever one serializer accepts, the others
can encode: msgpack writes up to 1024 levels; orjson writes only 254, so
:func:`_json_encode` falls back to an iterative writer (:func:`_json_encode_deep`)
for deeper messages -- only on that error path.  cbor2 writes any depth (it
crashes the process somewhere above 5,000 levels: it never sees such input
from a peer, as no decoder produces it).  Code that walks decoded messages
(``_unbinary``, ``_undefined_to_none``, error texts, ``messages.short_repr``)
is iterative: Python's recursion limit (1000) is lower than the depth allowed.

CBOR shared references (tags 28/29, "value sharing") are refused: they let a
few hundred bytes decode to a structure that is exponentially large when
written out again (each level referring twice to the one below) or cyclic.
WAMP has no use for them.

Decoding limits of the libraries used
-------------------------------------
* orjson rejects trailing data, NaN/Infinity and invalid UTF-8.  Integers
  beyond 64 bit decode to float (and thus fail id checks in ``messages``).
* msgpack: ``raw=False`` (str stays str, bin is bytes), ``strict_map_key=True``
  (only str/bytes map keys: WAMP dict keys must be strings, and arbitrary
  hashable keys would allow hash-collision attacks).  Trailing data raises.
* cbor2: ``strict_hashable_types=True`` for the same reason.  ``cbor2.loads``
  decodes the first data item and silently ignores trailing bytes; detecting
  them needs the stream decoder, which is markedly slower on every message,
  so this leniency is accepted.

JavaScript peculiarities (MessagePack / CBOR)
---------------------------------------------
JavaScript clients send values that have no WAMP meaning but must not break
a session:

* ``undefined``.  wampy (8.x), for one, always puts ``match`` and
  ``get_retained`` into SUBSCRIBE.Options, set to ``undefined`` unless the
  user gave them.  msgpackr encodes ``undefined`` as ext type 0 with the
  single data byte 0 (``d4 00 00``); cbor-x and the npm ``cbor`` package use
  the CBOR simple value 23 (``f7``).  Both decode to ``None`` here, at any
  nesting depth, so they reach JSON/MessagePack peers as ``null`` (and
  :mod:`.messages` treats a ``None`` Options/Details attribute as absent).
  MessagePack: an ``ext_hook`` maps exactly ``ExtType(0, b"\\x00")``; other
  ext types stay :class:`msgpack.ExtType` as before.  CBOR: cbor2 has no hook
  for simple values, so the decoded message is walked (replacing
  ``cbor2.undefined`` in place) only when the raw input contains the octet
  ``0xf7`` -- one ``memchr`` per message.  False positives (``0xf7`` inside
  an integer, float or binary; never in text, UTF-8 has no such octet) cost
  one walk over the containers, not over the bytes.
* typed arrays.  cbor-x and npm ``cbor`` encode a ``Uint8Array`` as tag 64
  ("uint8 typed array", RFC 8746) around a byte string rather than as a plain
  byte string.  A ``tag_hook`` (called by cbor2 only for tags it has no
  decoder of its own for) turns it into ``bytes``; tag 64 around anything but
  a byte string is invalid CBOR.  Other unknown tags stay ``CBORTag``.
"""

import binascii
import struct

import cbor2
import msgpack
import orjson
from msgpack.exceptions import StackError as _MsgpackStackError

from .errors import SerializationError

__all__ = [
    "MAX_DEPTH",
    "Serializer",
    "JsonSerializer",
    "MsgpackSerializer",
    "CborSerializer",
    "JsonBatchedSerializer",
    "MsgpackBatchedSerializer",
    "CborBatchedSerializer",
    "SERIALIZERS_BY_SUBPROTOCOL",
    "SERIALIZERS_BY_RAWSOCKET_ID",
    "SERIALIZERS_BY_NAME",
    "create_serializer",
]


#: Deepest nesting of containers in a message, the message list counting as level 1
#: (module docstring "Nesting depth").  orjson and msgpack have exactly this limit built in.
MAX_DEPTH = 1024
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


class Serializer:
    """Interface of all serializers (see module docstring)."""

    NAME: str = ""
    SUBPROTOCOL: str = ""
    #: serializer id in the RawSocket handshake; None for batched variants
    RAWSOCKET_ID = None
    #: WebSocket frames are binary (msgpack, cbor) rather than text (json)
    BINARY: bool = True
    BATCHED: bool = False

    def serialize(self, msg: list) -> bytes:
        """Encode one WAMP message (batched: as a batch of one)."""
        raise NotImplementedError

    def serialize_batch(self, msgs: list) -> bytes:
        """Encode several messages into one transport message (batched only)."""
        raise NotImplementedError(f"{self.SUBPROTOCOL} is not a batched serializer")

    def unserialize(self, data) -> list:
        """Decode one transport message into a list of WAMP messages."""
        return [self.unserialize_one(data)]

    def unserialize_one(self, data) -> list:
        """Decode one transport message holding exactly one WAMP message."""
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.SUBPROTOCOL}>"


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------

_b2a = binascii.b2a_base64
_a2b = binascii.a2b_base64
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_NUL_ESC = b"\\u0000"
_NUL_ESC_STR = "\\u0000"


def _json_default(obj):
    # orjson does not serialize bytes itself (TypeError) and calls this hook.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "\0" + _b2a(obj, newline=False).decode("ascii")
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _from_nul_base64(v: str) -> bytes:
    try:
        return _a2b(v[1:], strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise SerializationError(f"invalid base64 in JSON binary string: {e}") from None


def _unbinary(msg: list) -> None:
    """Replace ``"\\0<base64>"`` strings by bytes in *msg*'s containers, in place.

    Iterative (an explicit stack), so any depth orjson decodes (1024) is fine."""
    stack = [msg]
    pop = stack.pop
    push = stack.append
    while stack:
        obj = pop()
        if type(obj) is list:
            for i, v in enumerate(obj):
                t = type(v)
                if t is str:
                    if v and v[0] == "\0":
                        obj[i] = _from_nul_base64(v)
                elif t is list or t is dict:
                    push(v)
        else:  # a dict: JSON has no other container
            for k, v in obj.items():
                t = type(v)
                if t is str:
                    if v and v[0] == "\0":
                        obj[k] = _from_nul_base64(v)  # replacing a value does not resize the dict
                elif t is list or t is dict:
                    push(v)


def _json_encode(msg) -> bytes:
    try:
        return _orjson_dumps(msg, default=_json_default)
    except TypeError as e:
        # orjson.JSONEncodeError subclasses TypeError
        if "Recursion limit" not in str(e):
            raise SerializationError(f"JSON encoding failed: {e}") from None
    # orjson writes at most 254 levels; the decoders accept up to MAX_DEPTH
    return _json_encode_deep(msg)


_END = object()


def _json_encode_deep(msg) -> bytes:
    """The JSON text orjson would write for *msg*, for any depth up to MAX_DEPTH.

    Iterative (an explicit stack of iterators); leaves (and dict keys) are written by
    orjson, so escaping and number formats are orjson's.  Only called for messages
    nested deeper than orjson writes, never on the usual path."""
    parts = []
    put = parts.append
    stack = []  # [iterator, is_dict, is_first]
    v = msg
    while True:
        t = type(v)
        if t is list or t is tuple:
            if len(stack) >= MAX_DEPTH:
                raise SerializationError(f"JSON encoding failed: {_TOO_DEEP}")
            put(b"[")
            stack.append([iter(v), False, True])
        elif t is dict:
            if len(stack) >= MAX_DEPTH:
                raise SerializationError(f"JSON encoding failed: {_TOO_DEEP}")
            put(b"{")
            stack.append([iter(v.items()), True, True])
        else:
            try:
                put(_orjson_dumps(v, default=_json_default))
            except TypeError as e:
                raise SerializationError(f"JSON encoding failed: {e}") from None
        # the next value to write, closing finished containers on the way
        while stack:
            frame = stack[-1]
            item = next(frame[0], _END)
            if item is _END:
                put(b"}" if frame[1] else b"]")
                stack.pop()
                continue
            if frame[2]:
                frame[2] = False
            else:
                put(b",")
            if frame[1]:
                k, v = item
                if type(k) is not str:
                    raise SerializationError("JSON encoding failed: Dict key must be str")
                put(_orjson_dumps(k))
                put(b":")
            else:
                v = item
            break
        else:
            return b"".join(parts)


def _json_decode(data) -> list:
    # data: bytes (usual), bytearray, str (a WebSocket text frame) or memoryview
    if type(data) is memoryview:
        data = data.tobytes()
    try:
        msg = _orjson_loads(data)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit exceeded"):  # orjson's limit: MAX_DEPTH
            raise SerializationError(f"invalid JSON: {_TOO_DEEP}") from None
        raise SerializationError(f"invalid JSON: {e}") from None
    if type(msg) is not list:
        raise SerializationError(f"WAMP message must be a list, got {type(msg).__name__}")
    # .find rather than `in`: bytes.__contains__ first tries the argument as
    # an int and clears the resulting exception, which makes it slower.
    if data.find(_NUL_ESC_STR if type(data) is str else _NUL_ESC) != -1:
        _unbinary(msg)
    return msg


class JsonSerializer(Serializer):
    """``wamp.2.json`` (WebSocket text frames, RawSocket id 1)."""

    NAME = "json"
    SUBPROTOCOL = "wamp.2.json"
    RAWSOCKET_ID = 1
    BINARY = False

    serialize = staticmethod(_json_encode)

    # hot path: the module function itself, no extra method frame
    unserialize_one = staticmethod(_json_decode)


class JsonBatchedSerializer(Serializer):
    """``wamp.2.json.batched``: each message followed by a separator octet.

    The spec's separator is ``0x1e`` (record separator); autobahn-python, and with it
    Crossbar.io, write ``b"\\30"`` in Python, which is ``0x18``.  A JSON text never holds a raw
    control octet, so a batch tells which one its sender uses by its last octet: both are read,
    and ``variant_for`` names the serializer that answers a peer in its own (the router switches
    a session to it at its first message; docs/decisions.md)."""

    NAME = "json"
    SUBPROTOCOL = "wamp.2.json.batched"
    BINARY = False
    BATCHED = True

    def __init__(self, sep: bytes = b"\x1e"):
        self.sep = sep

    def serialize(self, msg):
        return _json_encode(msg) + self.sep

    def serialize_batch(self, msgs):
        if not msgs:
            raise SerializationError("a batch must hold at least one message")
        sep = self.sep
        return b"".join([_json_encode(m) + sep for m in msgs])

    def variant_for(self, data) -> "JsonBatchedSerializer":
        """The serializer writing the separator ``data`` (a batch from the peer) ends with."""
        last = data[-1:] if type(data) is not str else data[-1:].encode()
        if last == b"\x18":
            return JSON_BATCHED_AUTOBAHN
        if last == b"\x1e":
            return JSON_BATCHED_SPEC
        return self

    def unserialize(self, data):
        if type(data) is str:
            data = data.encode("utf-8")
        elif type(data) is not bytes:
            data = bytes(data)
        if not data:
            raise SerializationError("batched JSON: empty batch")
        sep = data[-1:]
        if sep != b"\x1e" and sep != b"\x18":
            raise SerializationError("batched JSON: last message not terminated by 0x1e (or autobahn's 0x18)")
        chunks = data.split(sep)
        del chunks[-1]  # every message is terminated, so the last chunk is empty
        if not chunks:
            raise SerializationError("batched JSON: empty batch")
        return [_json_decode(c) for c in chunks]

    def unserialize_one(self, data):
        msgs = self.unserialize(data)
        if len(msgs) != 1:
            raise SerializationError(f"expected a batch of 1 message, got {len(msgs)}")
        return msgs[0]


# ---------------------------------------------------------------------------
# MessagePack / CBOR
# ---------------------------------------------------------------------------

_unpackb = msgpack.unpackb
_ExtType = msgpack.ExtType
_cbor_loads = cbor2.loads
_cbor_dumps = cbor2.dumps
_CBORTag = cbor2.CBORTag
_UNDEFINED = cbor2.undefined
_UNDEFINED_OCTET = 0xF7  # an int: `int in bytes` is a bare memchr, faster than .find
_LEN = struct.Struct(">I")
_pack_len = _LEN.pack
_unpack_len = _LEN.unpack_from


def _msgpack_ext_hook(code, data):
    # msgpackr's encoding of JavaScript `undefined` (fixext1, type 0, data 0)
    if code == 0 and data == b"\x00":
        return None
    return _ExtType(code, data)  # what msgpack returns without a hook


def _msgpack_decode(data) -> list:
    try:
        msg = _unpackb(data, raw=False, strict_map_key=True, ext_hook=_msgpack_ext_hook)
    except _MsgpackStackError:  # msgpack's fixed limit: MAX_DEPTH
        raise SerializationError(f"invalid MessagePack: {_TOO_DEEP}") from None
    except Exception as e:  # msgpack raises ValueError, ExtraData, FormatError, ...
        raise SerializationError(f"invalid MessagePack: {e}") from None
    if type(msg) is not list:
        raise SerializationError(f"WAMP message must be a list, got {type(msg).__name__}")
    return msg


def _cbor_tag_hook(a, b):
    # cbor2 >= 6 calls tag_hook(tag, immutable), cbor2 5.x tag_hook(decoder, tag).
    tag = a if type(a) is _CBORTag else b
    if tag.tag == 64:  # RFC 8746 uint8 typed array: a JavaScript Uint8Array
        value = tag.value
        if type(value) is not bytes:
            raise ValueError(f"tag 64 (uint8 typed array) must wrap a byte string, got {type(value).__name__}")
        return value
    return tag


def _undefined_to_none(msg: list) -> None:
    """Replace ``cbor2.undefined`` by None in *msg*'s lists and dicts, in place.

    Iterative (an explicit stack), so any depth cbor2 decodes (MAX_DEPTH) is fine;
    decoded CBOR has no cycles (shared references are refused)."""
    stack = [msg]
    pop = stack.pop
    push = stack.append
    while stack:
        obj = pop()
        if type(obj) is list:
            i = 0
            for v in obj:
                t = type(v)
                if t is list or t is dict:
                    push(v)
                elif v is _UNDEFINED:
                    obj[i] = None
                i += 1
        else:  # a dict: the only other container type pushed
            for k, v in obj.items():
                t = type(v)
                if t is list or t is dict:
                    push(v)
                elif v is _UNDEFINED:
                    obj[k] = None  # replacing a value does not resize the dict


def _cbor_no_shared_references(*args):
    raise ValueError("shared references (tags 28/29) are not allowed")


# decoder options besides strict_hashable_types and tag_hook: no value sharing
_CBOR_SEMANTIC_DECODERS = {28: _cbor_no_shared_references, 29: _cbor_no_shared_references}


def _cbor_decode(data) -> list:
    # cbor2.loads copies any non-bytes input into bytes itself, so doing it
    # here costs nothing extra (and a memoryview has no fast `in`).
    if type(data) is not bytes:
        data = bytes(data)
    try:
        msg = _cbor_loads(data, strict_hashable_types=True, tag_hook=_cbor_tag_hook, max_depth=MAX_DEPTH,
                          semantic_decoders=_CBOR_SEMANTIC_DECODERS)
    except Exception as e:  # CBORDecodeError (a ValueError), plus errors from tag decoders
        text = str(e)
        if text.startswith("maximum container nesting depth"):
            text = _TOO_DEEP
        elif e.__cause__ is not None and "shared references" in str(e.__cause__):
            text = str(e.__cause__)
        raise SerializationError(f"invalid CBOR: {text}") from None
    if type(msg) is not list:
        raise SerializationError(f"WAMP message must be a list, got {type(msg).__name__}")
    if _UNDEFINED_OCTET in data:
        _undefined_to_none(msg)
    return msg


def _cbor_encode(msg) -> bytes:
    try:
        return _cbor_dumps(msg)
    except Exception as e:  # CBOREncodeError and friends
        raise SerializationError(f"CBOR encoding failed: {e}") from None


def _split_length_prefixed(data, decode, what: str) -> list:
    """Decode a batch of uint32-length-prefixed messages."""
    total = len(data)
    if not total:
        raise SerializationError(f"batched {what}: empty batch")
    msgs = []
    pos = 0
    # release the view even on errors, so a bytearray passed in stays resizable
    with memoryview(data) as mv:
        while pos < total:
            if total - pos < 4:
                raise SerializationError(f"batched {what}: truncated length prefix")
            (length,) = _unpack_len(mv, pos)
            pos += 4
            end = pos + length
            if end > total:
                raise SerializationError(f"batched {what}: message length {length} exceeds batch")
            msgs.append(decode(mv[pos:end]))
            pos = end
    return msgs


class _MsgpackBase(Serializer):
    NAME = "msgpack"

    def __init__(self):
        # autoreset: pack() returns the bytes and clears the internal buffer
        # (also after an exception).
        self._pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    def _encode(self, msg) -> bytes:
        try:
            return self._pack(msg)
        except ValueError as e:
            # msgpack writes at most MAX_DEPTH levels ("recursion limit exceeded.")
            text = _TOO_DEEP if "recursion limit" in str(e) else e
            raise SerializationError(f"MessagePack encoding failed: {text}") from None
        except Exception as e:  # TypeError, OverflowError (int > 64 bit)
            raise SerializationError(f"MessagePack encoding failed: {e}") from None


class MsgpackSerializer(_MsgpackBase):
    """``wamp.2.msgpack`` (binary frames, RawSocket id 2)."""

    SUBPROTOCOL = "wamp.2.msgpack"
    RAWSOCKET_ID = 2

    def serialize(self, msg):
        return self._encode(msg)

    # hot path: the module function itself, no extra method frame
    unserialize_one = staticmethod(_msgpack_decode)


class MsgpackBatchedSerializer(_MsgpackBase):
    """``wamp.2.msgpack.batched``: each message prefixed by a uint32 length."""

    SUBPROTOCOL = "wamp.2.msgpack.batched"
    BATCHED = True

    def serialize(self, msg):
        b = self._encode(msg)
        return _pack_len(len(b)) + b

    def serialize_batch(self, msgs):
        if not msgs:
            raise SerializationError("a batch must hold at least one message")
        parts = []
        for m in msgs:
            b = self._encode(m)
            parts.append(_pack_len(len(b)))
            parts.append(b)
        return b"".join(parts)

    def unserialize(self, data):
        return _split_length_prefixed(data, _msgpack_decode, "MessagePack")

    def unserialize_one(self, data):
        msgs = self.unserialize(data)
        if len(msgs) != 1:
            raise SerializationError(f"expected a batch of 1 message, got {len(msgs)}")
        return msgs[0]


class CborSerializer(Serializer):
    """``wamp.2.cbor`` (binary frames, RawSocket id 3)."""

    NAME = "cbor"
    SUBPROTOCOL = "wamp.2.cbor"
    RAWSOCKET_ID = 3

    serialize = staticmethod(_cbor_encode)

    # hot path: the module function itself, no extra method frame
    unserialize_one = staticmethod(_cbor_decode)


class CborBatchedSerializer(Serializer):
    """``wamp.2.cbor.batched``: each message prefixed by a uint32 length."""

    NAME = "cbor"
    SUBPROTOCOL = "wamp.2.cbor.batched"
    BATCHED = True

    def serialize(self, msg):
        b = _cbor_encode(msg)
        return _pack_len(len(b)) + b

    def serialize_batch(self, msgs):
        if not msgs:
            raise SerializationError("a batch must hold at least one message")
        parts = []
        for m in msgs:
            b = _cbor_encode(m)
            parts.append(_pack_len(len(b)))
            parts.append(b)
        return b"".join(parts)

    def unserialize(self, data):
        return _split_length_prefixed(data, _cbor_decode, "CBOR")

    def unserialize_one(self, data):
        msgs = self.unserialize(data)
        if len(msgs) != 1:
            raise SerializationError(f"expected a batch of 1 message, got {len(msgs)}")
        return msgs[0]


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

_CLASSES = (
    JsonSerializer,
    MsgpackSerializer,
    CborSerializer,
    JsonBatchedSerializer,
    MsgpackBatchedSerializer,
    CborBatchedSerializer,
)

#: WebSocket subprotocol -> shared serializer instance
SERIALIZERS_BY_SUBPROTOCOL: dict = {c.SUBPROTOCOL: c() for c in _CLASSES}
#: wamp.2.json.batched as the spec writes it (0x1e) and as autobahn-python and Crossbar.io do (0x18)
JSON_BATCHED_SPEC = SERIALIZERS_BY_SUBPROTOCOL[JsonBatchedSerializer.SUBPROTOCOL]
JSON_BATCHED_AUTOBAHN = JsonBatchedSerializer(b"\x18")

#: RawSocket handshake serializer id -> shared (non-batched) instance
SERIALIZERS_BY_RAWSOCKET_ID: dict = {
    s.RAWSOCKET_ID: s for s in SERIALIZERS_BY_SUBPROTOCOL.values() if s.RAWSOCKET_ID is not None
}

#: "json" / "msgpack" / "cbor" -> shared (non-batched) instance
SERIALIZERS_BY_NAME: dict = {s.NAME: s for s in SERIALIZERS_BY_RAWSOCKET_ID.values()}


def create_serializer(name: str) -> Serializer:
    """Create a new serializer instance.

    *name* is a short name (``"json"``, ``"msgpack"``, ``"cbor"``), optionally
    with ``".batched"``, or a full subprotocol such as ``"wamp.2.cbor.batched"``.
    """
    sub = name if name.startswith("wamp.2.") else "wamp.2." + name
    for c in _CLASSES:
        if c.SUBPROTOCOL == sub:
            return c()
    raise ValueError(f"unknown serializer {name!r}")
