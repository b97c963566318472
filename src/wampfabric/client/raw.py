"""A raw WAMP peer that sends exactly what it is told, no validation: for load generation,
tests and protocol debugging.

Nothing here checks a message before it goes out (invalid URIs, unknown ids, protocol
violations, broken handshakes and oversized frames are all sent as given), and incoming
messages are decoded, never validated: the point is to put any bytes on the wire and see
what a router does with them.  ``ClientSession`` (client/session.py) is the client that
keeps to the protocol.

What is here, from the bytes up:

* message type codes (``protocol.codes``, re-exported) and ``CLIENT_ROLES``;
* serializers of raw lists: ``encode``/``decode`` and ``Serializer`` (json, msgpack,
  cbor; JSON through the standard library, so any int and NaN go out as given, or
  orjson with ``fast=True``; binary values are not converted to WAMP's JSON form);
* RawSocket: the client handshake (any magic, length, reserved bits), frame headers;
* WebSocket: the upgrade request, the ``Sec-WebSocket-Accept`` check, client frames
  (masked, any opcode/FIN/RSV), and a reader of server frames;
* blocking sockets: ``open_socket``, ``recv_exactly``, ``wait_closed``, ``abort_socket``,
  ``ws_handshake_socket``, and the synchronous ``RawSocketPeer`` (``send``,
  ``send_bytes``, ``recv``, ``hello``, ``request``, ``goodbye``, ``close``).

The load generator (bench/loadgen) builds its asyncio clients on these pieces; its hot
loop calls ``ws_client_frame`` and ``mask_key`` once per message, so they stay plain
functions without options.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
import struct
import time
from typing import Any

import cbor2
import msgpack

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency of wampfabric
    orjson = None

from ..protocol.codes import (  # noqa: F401  (re-exported: the raw peer's vocabulary)
    ABORT,
    AUTHENTICATE,
    CALL,
    CANCEL,
    CHALLENGE,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INTERRUPT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTER,
    UNREGISTERED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    WELCOME,
    YIELD,
)
from ..protocol.rawsocket import FRAME_PING, FRAME_PONG, FRAME_WAMP, MAGIC, MAX_FRAME_LENGTH

#: the roles a raw peer announces in HELLO (no features: it claims nothing it does not do)
CLIENT_ROLES = {
    "caller": {"features": {}},
    "callee": {"features": {}},
    "publisher": {"features": {}},
    "subscriber": {"features": {}},
}

DEFAULT_TIMEOUT = 5.0


class Closed(Exception):
    """The router closed the connection."""


# --------------------------------------------------------------------------
# serializers (binary values in JSON: WAMP's "\0" + base64 form is not applied)


def _json_dumps(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode("utf8")


def _json_loads(data) -> Any:
    if not isinstance(data, str):
        data = bytes(data).decode("utf8")
    return json.loads(data)


def _msgpack_packb(msg: Any) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


_ENCODERS = {"json": _json_dumps, "msgpack": _msgpack_packb, "cbor": cbor2.dumps}
_DECODERS = {"json": _json_loads, "msgpack": msgpack.unpackb, "cbor": cbor2.loads}

#: RawSocket serializer ids (lower nibble of the 2nd handshake octet)
RAWSOCKET_SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3}

# WebSocket opcodes
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def encode(serializer: str, msg: Any) -> bytes:
    """*msg* (any value, usually a WAMP message list) in *serializer*'s bytes."""
    try:
        enc = _ENCODERS[serializer]
    except KeyError:
        raise ValueError(serializer) from None
    return enc(msg)


def decode(serializer: str, data: bytes | str) -> Any:
    try:
        dec = _DECODERS[serializer]
    except KeyError:
        raise ValueError(serializer) from None
    return dec(data)


class Serializer:
    """One serializer by name: ``dumps(obj) -> bytes``, ``loads(bytes | memoryview) -> obj``,
    its WebSocket subprotocol and frame opcode (JSON in text frames, the others binary) and
    its RawSocket id.

    ``fast=True`` (the load generator) encodes JSON with orjson (64-bit ints only, NaN as
    null) and MessagePack with one reusable packer per instance (not thread-safe)."""

    __slots__ = ("name", "subprotocol", "ws_opcode", "rawsocket_id", "dumps", "loads")

    def __init__(self, name: str, fast: bool = False):
        if name not in _ENCODERS:
            raise ValueError(f"unknown serializer {name!r}")
        self.name = name
        self.subprotocol = f"wamp.2.{name}"
        self.ws_opcode = OP_TEXT if name == "json" else OP_BINARY
        self.rawsocket_id = RAWSOCKET_SERIALIZER_IDS[name]
        self.dumps = _ENCODERS[name]
        self.loads = _DECODERS[name]  # msgpack: raw=False, use_list=True by default
        if fast:
            if name == "msgpack":
                self.dumps = msgpack.Packer(use_bin_type=True).pack
            elif name == "json" and orjson is not None:
                self.dumps = orjson.dumps
                self.loads = orjson.loads


# --------------------------------------------------------------------------
# RawSocket


def rawsocket_handshake_bytes(serializer_id: int, length_exp: int = 15, magic: int = MAGIC, reserved: int = 0) -> bytes:
    """A client handshake with whatever values are given (protocol/rawsocket.py builds valid ones)."""
    return bytes([magic, ((length_exp & 0x0F) << 4) | (serializer_id & 0x0F)]) + struct.pack(">H", reserved)


def rawsocket_frame(payload: bytes, msg_type: int = FRAME_WAMP) -> bytes:
    """Header + payload; the length field is the payload's length, whatever it is (24 bits)."""
    return struct.pack(">I", (msg_type << 24) | len(payload)) + payload


def rawsocket_header(header: bytes) -> tuple[int, int]:
    """(frame type, payload length) of a 4-octet frame header (the X bit means 2**24)."""
    (h,) = struct.unpack(">I", header)
    length = MAX_FRAME_LENGTH if h & 0x08000000 else h & 0xFFFFFF
    return (h >> 24) & 0x07, length


# --------------------------------------------------------------------------
# WebSocket (client side: masked frames out, unmasked frames in)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's sample nonce
DEFAULT_MASK = b"\x11\x22\x33\x44"
_NO_MASK = b"\0\0\0\0"


def ws_upgrade_head(host_header: str, path: str = "/ws", subprotocol: str | None = "wamp.2.json") -> bytes:
    """The HTTP upgrade request up to ``Sec-WebSocket-Key: ``: the key and the blank line follow."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    lines.append("Sec-WebSocket-Key: ")
    return "\r\n".join(lines).encode("ascii")


def ws_upgrade_request(host: str, port: int | None = None, path: str = "/ws", subprotocol: str | None = "wamp.2.json",
                       key: str = DEFAULT_WS_KEY) -> bytes:
    """A complete upgrade request (``Host: host:port``, or ``host`` alone without a port)."""
    host_header = host if port is None else f"{host}:{port}"
    return ws_upgrade_head(host_header, path, subprotocol) + key.encode("ascii") + b"\r\n\r\n"


def ws_new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key`` (base64 of 16 random octets; not a secret here)."""
    return base64.b64encode(random.getrandbits(128).to_bytes(16, "big"))


def ws_accept(key: bytes) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to *key*."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode("ascii")


def ws_response(head: bytes) -> tuple[str, dict]:
    """(status line, headers with lower-case names) of an HTTP response head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def ws_handshake_error(head: bytes, key: bytes, subprotocol: str | None) -> str | None:
    """Why the response *head* does not complete the upgrade asked with *key* and
    *subprotocol* (101, Upgrade/Connection, the subprotocol, Sec-WebSocket-Accept), or None."""
    status, headers = ws_response(head)
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "101":
        return f"WebSocket upgrade refused: {status!r}"
    proto = headers.get("sec-websocket-protocol")
    if proto != subprotocol:
        return f"router did not select subprotocol {subprotocol!r} (got {proto!r})"
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        return "WebSocket handshake response without 'Upgrade: websocket' and 'Connection: Upgrade'"
    accept = headers.get("sec-websocket-accept")
    expected = ws_accept(key)
    if accept != expected:
        return f"wrong Sec-WebSocket-Accept {accept!r} (expected {expected!r})"
    return None


def ws_header(opcode: int, n: int, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """The first octets of a frame: FIN, RSV, opcode; MASK bit and payload length (7, 16 or 64 bit)."""
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    m = 0x80 if masked else 0
    if n < 126:
        return bytes((b0, m | n))
    if n < 65536:
        return bytes((b0, m | 126)) + n.to_bytes(2, "big")
    return bytes((b0, m | 127)) + n.to_bytes(8, "big")


def ws_mask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 masking (XOR with the 4-octet key, repeated): one big-int XOR."""
    n = len(payload)
    if not n:
        return payload
    k = (key * ((n + 3) >> 2))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


_getrandbits = random.getrandbits


def mask_key() -> bytes:
    """A fresh masking key per frame (RFC 6455 5.3); not a secret here, so not from the OS."""
    return _getrandbits(32).to_bytes(4, "big")


def _final_masked_header(opcode: int, n: int) -> bytes:
    """``ws_header(opcode, n)`` without its options: FIN + opcode, MASK bit + length."""
    if n < 126:
        return bytes((0x80 | opcode, 0x80 | n))
    if n < 65536:
        return bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    return bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")


def ws_client_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One complete, final, masked client frame (the load generator's per-message path)."""
    return _final_masked_header(opcode, len(payload)) + key + ws_mask(payload, key)


def ws_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True, mask: bytes = DEFAULT_MASK, rsv: int = 0) -> bytes:
    """A client-to-server frame with any FIN/RSV/opcode, masked with *mask* (unmasked if empty)."""
    head = ws_header(opcode, len(payload), fin, rsv, masked=bool(mask))
    if not mask:
        return head + payload
    return head + mask + (payload if mask == _NO_MASK else ws_mask(payload, mask))


def ws_frames(data) -> tuple[list, int]:
    """The complete frames at the start of *data*: ``([(b0, masked, payload), ...], end)``
    where ``b0`` is the first octet (FIN, RSV, opcode), ``masked`` the MASK bit (a server
    must not set it; the payload is returned as it came) and ``end`` the offset after the
    last complete frame."""
    frames = []
    n = len(data)
    pos = 0
    while n - pos >= 2:
        b1 = data[pos + 1]
        ln = b1 & 0x7F
        if ln < 126:
            start = pos + 2
        elif ln == 126:
            if n - pos < 4:
                break
            ln = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        else:
            if n - pos < 10:
                break
            ln = int.from_bytes(data[pos + 2:pos + 10], "big")
            start = pos + 10
        if b1 & 0x80:
            start += 4  # a masking key (a client's frame)
        end = start + ln
        if end > n:
            break
        frames.append((data[pos], b1 & 0x80, data[start:end]))
        pos = end
    return frames, pos


# --------------------------------------------------------------------------
# blocking sockets


def open_socket(tcp_port: int | None = None, unix_path: str | None = None, host: str = "127.0.0.1",
                timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None) -> socket.socket:
    """A connected Unix or TCP socket (TCP_NODELAY); *rcvbuf*: SO_RCVBUF, set before connecting."""
    if unix_path is not None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(unix_path)
        return s
    if rcvbuf:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(timeout)
            s.connect((host, tcp_port))
        except BaseException:
            s.close()
            raise
    else:
        s = socket.create_connection((host, tcp_port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(sock: socket.socket, n: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Read exactly *n* bytes; returns fewer only if the peer closed the connection."""
    deadline = time.monotonic() + timeout
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(buf)} of {n} bytes within {timeout}s")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except (ConnectionResetError, BrokenPipeError):
            return buf
        except socket.timeout:
            raise TimeoutError(f"got {len(buf)} of {n} bytes within {timeout}s") from None
        if not chunk:
            return buf
        buf += chunk
    return buf


def wait_closed(sock: socket.socket, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Drain *sock* until the peer closes it; returns everything read.

    Raises ``TimeoutError`` if the peer keeps the connection open.
    """
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"connection still open after {timeout}s (read {buf[:200]!r})")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return buf
        except socket.timeout:
            continue
        if not chunk:
            return buf
        buf += chunk


def abort_socket(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER 0), where supported."""
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def ws_handshake_socket(port: int, path: str = "/ws", subprotocol: str | None = "wamp.2.json", host: str = "127.0.0.1",
                        timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None) -> socket.socket:
    """A TCP socket on which the WebSocket opening handshake has completed (101 read; nothing
    else of the answer is checked)."""
    s = open_socket(port, host=host, timeout=timeout, rcvbuf=rcvbuf)
    try:
        s.sendall(ws_upgrade_request(host, port, path, subprotocol))
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no WebSocket handshake response")
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during WebSocket handshake: {buf!r}")
            buf += chunk
        status = buf.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")
    except BaseException:
        s.close()
        raise
    return s


# --------------------------------------------------------------------------
# synchronous peers


class Peer:
    """What every synchronous raw peer does on top of ``send_bytes``/``recv_bytes``/``close``."""

    serializer: str

    def __init__(self):
        self._next_id = 0
        self.session_id: int | None = None

    # subclasses implement these three
    def send_bytes(self, payload: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def recv_bytes(self, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------
    def next_id(self) -> int:
        """Session-scope request ids must be sequential (1, 2, 3 ...)."""
        self._next_id += 1
        return self._next_id

    def send(self, msg: list) -> None:
        self.send_bytes(encode(self.serializer, msg))

    def recv(self, timeout: float = DEFAULT_TIMEOUT) -> list | None:
        """Next WAMP message, or ``None`` when the connection was closed.

        Raises ``TimeoutError`` when nothing arrives within *timeout*.
        """
        data = self.recv_bytes(timeout)
        if data is None:
            return None
        return decode(self.serializer, data)

    def recv_until_closed(self, timeout: float = DEFAULT_TIMEOUT) -> list[list]:
        """Collect all messages until the router closes the connection.

        Raises ``TimeoutError`` if the connection is still open after *timeout*.
        """
        deadline = time.monotonic() + timeout
        msgs = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"connection still open after {timeout}s; got {msgs!r}")
            try:
                msg = self.recv(left)
            except TimeoutError:
                raise TimeoutError(f"connection still open after {timeout}s; got {msgs!r}") from None
            if msg is None:
                return msgs
            msgs.append(msg)

    def hello(self, realm: str = "realm1", details: dict | None = None) -> list:
        d = {"roles": CLIENT_ROLES}
        if details:
            d.update(details)
        self.send([HELLO, realm, d])
        reply = self.recv()
        if reply is not None and reply[0] == WELCOME:
            self.session_id = reply[1]
        return reply

    def request(self, msg: list, timeout: float = DEFAULT_TIMEOUT) -> list:
        """Send *msg* (whose 2nd element is a request id) and return the reply
        that refers to that request id (skipping unrelated messages)."""
        self.send(msg)
        req_type, req_id = msg[0], msg[1]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg!r}")
            reply = self.recv(left)
            if reply is None:
                raise Closed(f"connection closed while waiting for reply to {msg!r}")
            if reply[0] == ERROR and reply[1] == req_type and reply[2] == req_id:
                return reply
            if reply[0] in (SUBSCRIBED, UNSUBSCRIBED, PUBLISHED, RESULT, REGISTERED, UNREGISTERED) and reply[1] == req_id:
                return reply
            if reply[0] in (ABORT, GOODBYE):
                return reply

    def goodbye(self, reason: str = "wamp.close.close_realm") -> list | None:
        self.send([GOODBYE, {}, reason])
        while True:
            msg = self.recv()
            if msg is None or msg[0] in (GOODBYE, ABORT):
                return msg

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawSocketPeer(Peer):
    """WAMP-over-RawSocket over TCP (``port``) or a Unix socket (``path``)."""

    def __init__(self, port: int | None = None, path: str | None = None, serializer: str = "json", length_exp: int = 15,
                 handshake: bool = True):
        super().__init__()
        self.serializer = serializer
        self.sock = open_socket(port, path)
        self.router_max_len: int | None = None
        if handshake:
            ser_id = RAWSOCKET_SERIALIZER_IDS[serializer]
            self.sock.sendall(rawsocket_handshake_bytes(ser_id, length_exp))
            reply = recv_exactly(self.sock, 4)
            if len(reply) != 4 or reply[0] != MAGIC or (reply[1] & 0x0F) != ser_id:
                self.close()
                raise ConnectionError(f"RawSocket handshake failed: {reply!r}")
            self.router_max_len = 2 ** ((reply[1] >> 4) + 9)

    def send_bytes(self, payload: bytes, msg_type: int = FRAME_WAMP) -> None:
        self.sock.sendall(rawsocket_frame(payload, msg_type))

    def recv_frame(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, bytes] | None:
        header = recv_exactly(self.sock, 4, timeout)
        if len(header) < 4:
            return None
        msg_type, length = rawsocket_header(header)
        payload = recv_exactly(self.sock, length, timeout)
        if len(payload) < length:
            return None
        return msg_type, payload

    def recv_bytes(self, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame is None:
                return None
            msg_type, payload = frame
            if msg_type == FRAME_WAMP:
                return payload
            if msg_type == FRAME_PING:
                self.send_bytes(payload, msg_type=FRAME_PONG)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
