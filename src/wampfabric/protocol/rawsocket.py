"""Sans-I/O WAMP-over-RawSocket framing (Advanced Profile, "RawSocket Transport").

Handshake (4 octets, both directions)::

    0111 1111  LLLL SSSS  RRRR RRRR  RRRR RRRR
    magic 0x7F  |    |     reserved, must be zero
                |    serializer id (1 json, 2 msgpack, 3 cbor, 4 ubjson, 5 flatbuffers)
                max message length the sender is willing to *receive*: 2**(9+L)

Error reply (router to client)::

    0111 1111  EEEE 0000  0000 0000  0000 0000

Frame header (4 octets, big endian) in front of every message::

    RRRR XTTT  LLLL LLLL  LLLL LLLL  LLLL LLLL

``TTT`` is the frame type (0 WAMP message, 1 PING, 2 PONG), ``L`` the 24 bit
payload length and ``X`` a 25th length bit that is set only for a payload of
exactly 2**24 octets (with all ``L`` bits zero).

Typical router use::

    try:
        exp, ser_id = parse_handshake(first4, supported=SERIALIZERS_BY_RAWSOCKET_ID)
    except RawSocketHandshakeError as e:
        if e.code is not None:
            write(build_error_reply(e.code))
        close()
    write(build_handshake_reply(length_exponent(our_limit), ser_id))
    reader = FrameReader(max_length=max_length(length_exponent(our_limit)))
    ... for frame_type, payload in reader.feed(data): ...
    # and never send the client frames longer than max_length(exp)

Note that the 4 handshake octets may arrive together with the first frame:
feed whatever follows them to the :class:`FrameReader`.
"""

import struct

from .errors import ProtocolError

__all__ = [
    "MAGIC",
    "FRAME_WAMP",
    "FRAME_PING",
    "FRAME_PONG",
    "ERROR_SERIALIZER_UNSUPPORTED",
    "ERROR_MAX_LENGTH_UNACCEPTABLE",
    "ERROR_RESERVED_BITS",
    "ERROR_MAX_CONNECTIONS",
    "ERROR_MESSAGES",
    "MAX_FRAME_LENGTH",
    "RawSocketHandshakeError",
    "max_length",
    "length_exponent",
    "parse_handshake",
    "build_handshake_reply",
    "build_error_reply",
    "build_client_handshake",
    "parse_handshake_reply",
    "frame_header",
    "encode_frame",
    "FrameReader",
]

MAGIC = 0x7F

FRAME_WAMP = 0
FRAME_PING = 1
FRAME_PONG = 2

ERROR_SERIALIZER_UNSUPPORTED = 1
ERROR_MAX_LENGTH_UNACCEPTABLE = 2
ERROR_RESERVED_BITS = 3
ERROR_MAX_CONNECTIONS = 4

ERROR_MESSAGES = {
    ERROR_SERIALIZER_UNSUPPORTED: "serializer unsupported",
    ERROR_MAX_LENGTH_UNACCEPTABLE: "maximum message length unacceptable",
    ERROR_RESERVED_BITS: "use of reserved bits (unsupported feature)",
    ERROR_MAX_CONNECTIONS: "maximum connection count reached",
}

#: largest payload a frame header can describe (uses the X bit)
MAX_FRAME_LENGTH = 1 << 24

_HEADER = struct.Struct(">I")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
_X_BIT = 1 << 27


class RawSocketHandshakeError(ProtocolError):
    """A RawSocket handshake is invalid or was refused.

    ``code`` is the error code of the spec (1..4) that a router should send
    back with :func:`build_error_reply` before closing, or ``None`` when no
    reply is appropriate (not a RawSocket peer at all: wrong magic octet).
    When raised by :func:`parse_handshake_reply` it is the code the router
    sent (or None for a malformed reply).
    """

    def __init__(self, code, message=None):
        self.code = code
        if message is None:
            message = ERROR_MESSAGES.get(code, f"handshake error {code}")
        super().__init__(message)


def max_length(exponent: int) -> int:
    """Maximum message length for a handshake ``LENGTH`` value: ``2**(9+exp)``."""
    if not 0 <= exponent <= 15:
        raise ValueError(f"length exponent must be in 0..15, got {exponent}")
    return 1 << (exponent + 9)


def length_exponent(limit: int) -> int:
    """Largest handshake ``LENGTH`` value whose maximum does not exceed *limit*.

    Limits below 512 map to 0 (512 octets, the smallest expressible limit),
    limits of 16M and above to 15.
    """
    exp = limit.bit_length() - 10  # 2**(exp+9) <= limit
    return 0 if exp < 0 else 15 if exp > 15 else exp


def _handshake(exponent: int, serializer_id: int) -> bytes:
    if not 0 <= exponent <= 15:
        raise ValueError(f"length exponent must be in 0..15, got {exponent}")
    if not 1 <= serializer_id <= 15:
        raise ValueError(f"serializer id must be in 1..15, got {serializer_id}")
    return bytes((MAGIC, (exponent << 4) | serializer_id, 0, 0))


def parse_handshake(data, supported=None) -> tuple:
    """Parse a client handshake request; return ``(max_len_exp, serializer_id)``.

    :param data: the first 4 octets received from the client.
    :param supported: optional container of serializer ids the router speaks;
        any other id raises with code 1 (serializer unsupported).
    :raises RawSocketHandshakeError: see its ``code`` for the reply to send.
    """
    if len(data) != 4:
        raise RawSocketHandshakeError(None, f"handshake must be 4 octets, got {len(data)}")
    if data[0] != MAGIC:
        raise RawSocketHandshakeError(None, f"not a RawSocket handshake (first octet 0x{data[0]:02x})")
    if data[2] or data[3]:
        raise RawSocketHandshakeError(ERROR_RESERVED_BITS)
    exponent = data[1] >> 4
    serializer_id = data[1] & 0x0F
    if serializer_id == 0:
        # 0 is "illegal"; answered as "serializer unsupported"
        raise RawSocketHandshakeError(ERROR_SERIALIZER_UNSUPPORTED, "illegal serializer id 0")
    if supported is not None and serializer_id not in supported:
        raise RawSocketHandshakeError(
            ERROR_SERIALIZER_UNSUPPORTED, f"serializer unsupported (id {serializer_id})"
        )
    return exponent, serializer_id


def build_handshake_reply(max_len_exp: int, serializer_id: int) -> bytes:
    """Router's success reply: echoes *serializer_id*, announces the router's
    receive limit ``2**(9+max_len_exp)``."""
    return _handshake(max_len_exp, serializer_id)


def build_error_reply(code: int) -> bytes:
    """Router's error reply for error *code* (1..15; 0 must not be used)."""
    if not 1 <= code <= 15:
        raise ValueError(f"error code must be in 1..15, got {code}")
    return bytes((MAGIC, code << 4, 0, 0))


def build_client_handshake(max_len_exp: int, serializer_id: int) -> bytes:
    """Client's handshake request (same layout as the success reply)."""
    return _handshake(max_len_exp, serializer_id)


def parse_handshake_reply(data, serializer_id: int) -> int:
    """Client side: parse the router's reply to our request for *serializer_id*.

    Returns the router's ``LENGTH`` exponent (we must not send messages longer
    than ``max_length(exponent)``).

    :raises RawSocketHandshakeError: the router refused (``code`` is the
        router's error code) or the reply is malformed (``code`` None).
    """
    if len(data) != 4:
        raise RawSocketHandshakeError(None, f"handshake reply must be 4 octets, got {len(data)}")
    if data[0] != MAGIC:
        raise RawSocketHandshakeError(None, f"invalid handshake reply (first octet 0x{data[0]:02x})")
    if data[2] or data[3]:
        raise RawSocketHandshakeError(None, "handshake reply uses reserved bits")
    ser = data[1] & 0x0F
    if ser == 0:
        code = data[1] >> 4
        raise RawSocketHandshakeError(code, f"router refused: {ERROR_MESSAGES.get(code, f'error {code}')}")
    if ser != serializer_id:
        raise RawSocketHandshakeError(None, f"router replied with serializer {ser}, requested {serializer_id}")
    return data[1] >> 4


def frame_header(frame_type: int, length: int) -> bytes:
    """4-octet header for a frame of *frame_type* with a payload of *length* octets."""
    if not 0 <= frame_type <= 2:
        raise ValueError(f"invalid frame type {frame_type}")
    if length < MAX_FRAME_LENGTH:
        if length < 0:
            raise ValueError(f"invalid frame length {length}")
        return _pack_header((frame_type << 24) | length)
    if length == MAX_FRAME_LENGTH:
        # exactly 16M: X bit set, 24 length bits zero
        return _pack_header((frame_type << 24) | _X_BIT)
    raise ValueError(f"frame length {length} exceeds {MAX_FRAME_LENGTH}")


def encode_frame(payload: bytes, frame_type: int = FRAME_WAMP) -> bytes:
    """Header + payload in one bytes object (for small frames; for large ones
    write the header and payload separately to avoid the copy)."""
    return frame_header(frame_type, len(payload)) + payload


class FrameReader:
    """Incremental frame decoder for a byte stream.

    :param max_length: the largest payload accepted (our announced limit
        ``max_length(exp)``); longer frames raise :class:`ProtocolError`
        as soon as their header arrives ("If a message received during a
        connection exceeds the limit requested, a Peer MUST fail the
        connection").

    Data is appended to one ``bytearray``; complete frames are copied out once
    (via ``memoryview`` slices) and consumed bytes are dropped with a single
    ``del buf[:n]`` per :meth:`feed` (CPython makes deleting a bytearray's
    head cheap), so a large frame trickling in by small chunks costs O(total)
    rather than O(n**2).  When nothing is buffered, frames are cut straight
    out of the incoming chunk without copying it into the buffer first.
    """

    __slots__ = ("max_length", "_buf")

    def __init__(self, max_length: int = MAX_FRAME_LENGTH):
        if not 0 < max_length <= MAX_FRAME_LENGTH:
            raise ValueError(f"max_length must be in 1..{MAX_FRAME_LENGTH}")
        self.max_length = max_length
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Number of octets of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data) -> list:
        """Consume *data*; return the list of complete ``(frame_type, payload)``."""
        buf = self._buf
        if buf:
            buf += data
            src = buf
        else:
            src = data
        frames = []
        total = len(src)
        pos = 0
        limit = self.max_length
        with memoryview(src) as mv:
            while total - pos >= 4:
                (word,) = _unpack_header(mv, pos)
                top = word >> 24
                if top & 0xF0:
                    raise ProtocolError(f"RawSocket: reserved bits set in frame header (0x{word:08x})")
                frame_type = top & 0x07
                if frame_type > FRAME_PONG:
                    raise ProtocolError(f"RawSocket: invalid frame type {frame_type}")
                length = word & 0xFFFFFF
                if top & 0x08:
                    if length:
                        raise ProtocolError("RawSocket: invalid frame length (X bit with nonzero length)")
                    length = MAX_FRAME_LENGTH
                if length > limit:
                    raise ProtocolError(f"RawSocket: frame length {length} exceeds maximum {limit}")
                end = pos + 4 + length
                if end > total:
                    break
                frames.append((frame_type, bytes(mv[pos + 4 : end])))
                pos = end
            if src is buf:
                # the view must be released before the bytearray is resized
                mv.release()
                if pos:
                    del buf[:pos]
            elif pos < total:
                buf += mv[pos:]
        return frames
