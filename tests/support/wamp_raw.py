"""Tiny raw WAMP peers for tests: no WAMP library, just sockets and codecs.

Used where a real WAMP client library would refuse (or check client-side)
what a test wants to put on the wire: invalid URIs, unknown subscription ids,
protocol violations, broken handshakes, oversized frames ...

* :class:`RawSocketPeer` speaks WAMP-over-RawSocket over TCP or a Unix socket
  (handshake and 4-octet framing written out by hand).
* :class:`WebSocketPeer` speaks WAMP-over-WebSocket via the ``websockets``
  sync client.

Both are synchronous and expose the same small API: ``send(msg)``,
``send_bytes(payload)``, ``recv(timeout)`` (``None`` once the router closed
the connection), ``hello(realm)``, ``request(msg)`` and ``close()``.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

import cbor2
import msgpack

# WAMP message type codes (basic + advanced profile subset)
HELLO = 1
WELCOME = 2
ABORT = 3
GOODBYE = 6
ERROR = 8
PUBLISH = 16
PUBLISHED = 17
SUBSCRIBE = 32
SUBSCRIBED = 33
UNSUBSCRIBE = 34
UNSUBSCRIBED = 35
EVENT = 36
CALL = 48
RESULT = 50
REGISTER = 64
REGISTERED = 65
UNREGISTER = 66
UNREGISTERED = 67
INVOCATION = 68
YIELD = 70

# RawSocket serializer ids (lower nibble of the 2nd handshake octet)
RAWSOCKET_SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3}

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
# serializers (binary in JSON per WAMP spec: "\0" + base64, not needed here)


def encode(serializer: str, msg: Any) -> bytes:
    if serializer == "json":
        return json.dumps(msg, separators=(",", ":")).encode("utf8")
    if serializer == "msgpack":
        return msgpack.packb(msg, use_bin_type=True)
    if serializer == "cbor":
        return cbor2.dumps(msg)
    raise ValueError(serializer)


def decode(serializer: str, data: bytes | str) -> Any:
    if serializer == "json":
        if isinstance(data, bytes):
            data = data.decode("utf8")
        return json.loads(data)
    if serializer == "msgpack":
        return msgpack.unpackb(data, raw=False)
    if serializer == "cbor":
        return cbor2.loads(data)
    raise ValueError(serializer)


# --------------------------------------------------------------------------
# common peer behaviour


class _Peer:
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


# --------------------------------------------------------------------------
# RawSocket


def rawsocket_handshake_bytes(serializer_id: int, length_exp: int = 15, magic: int = 0x7F, reserved: int = 0) -> bytes:
    return bytes([magic, ((length_exp & 0x0F) << 4) | (serializer_id & 0x0F)]) + struct.pack(">H", reserved)


def open_socket(tcp_port: int | None = None, unix_path: str | None = None, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    if unix_path is not None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(unix_path)
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


class RawSocketPeer(_Peer):
    """WAMP-over-RawSocket over TCP (``port``) or a Unix socket (``path``)."""

    def __init__(self, port: int | None = None, path: str | None = None, serializer: str = "json", length_exp: int = 15, handshake: bool = True):
        super().__init__()
        self.serializer = serializer
        self.sock = open_socket(port, path)
        self.router_max_len: int | None = None
        if handshake:
            self.sock.sendall(rawsocket_handshake_bytes(RAWSOCKET_SERIALIZER_IDS[serializer], length_exp))
            reply = recv_exactly(self.sock, 4)
            if len(reply) != 4 or reply[0] != 0x7F or (reply[1] & 0x0F) != RAWSOCKET_SERIALIZER_IDS[serializer]:
                self.close()
                raise ConnectionError(f"RawSocket handshake failed: {reply!r}")
            self.router_max_len = 2 ** ((reply[1] >> 4) + 9)

    def send_bytes(self, payload: bytes, msg_type: int = 0) -> None:
        self.sock.sendall(struct.pack(">I", (msg_type << 24) | len(payload)) + payload)

    def recv_frame(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, bytes] | None:
        header = recv_exactly(self.sock, 4, timeout)
        if len(header) < 4:
            return None
        (h,) = struct.unpack(">I", header)
        msg_type = (h >> 24) & 0x07
        length = h & 0xFFFFFF
        if h & 0x08000000:
            length = 2**24
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
            if msg_type == 0:
                return payload
            if msg_type == 1:  # PING -> PONG
                self.send_bytes(payload, msg_type=2)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# WebSocket


class WebSocketPeer(_Peer):
    """WAMP-over-WebSocket using the ``websockets`` sync client."""

    def __init__(self, url: str, serializer: str = "json", subprotocols: list[str] | None = None):
        super().__init__()
        from websockets.sync.client import connect

        self.serializer = serializer
        # ``connect(...).__enter__()``: a connection without the ``with`` block, on websockets
        # versions where connect() returns the connection and on those where it is a context manager
        self.ws = connect(
            url,
            subprotocols=subprotocols or [f"wamp.2.{serializer}"],
            proxy=None,
            compression=None,
            max_size=None,
            open_timeout=DEFAULT_TIMEOUT,
            close_timeout=1,
            ping_interval=None,
        ).__enter__()

    def send_bytes(self, payload: bytes) -> None:
        # WAMP-over-WebSocket: JSON goes in text frames, binary serializers in binary frames
        if self.serializer == "json":
            self.ws.send(payload.decode("utf8"))
        else:
            self.ws.send(payload)

    def send_frame(self, payload: bytes | str) -> None:
        """Send *payload* as is (``str`` -> text frame, ``bytes`` -> binary frame)."""
        self.ws.send(payload)

    def recv_bytes(self, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        from websockets.exceptions import ConnectionClosed

        try:
            data = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            return None
        except TimeoutError:
            raise TimeoutError(f"nothing received within {timeout}s") from None
        return data.encode("utf8") if isinstance(data, str) else data

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass



# --------------------------------------------------------------------------
# hand-made WebSocket (for broken / half-done handshakes)


def ws_upgrade_request(host: str, port: int, path: str = "/ws", subprotocol: str | None = "wamp.2.json", key: str = "dGhlIHNhbXBsZSBub25jZQ==") -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def ws_frame(payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bytes = b"\x11\x22\x33\x44", rsv: int = 0) -> bytes:
    """A client-to-server WebSocket frame (masked unless *mask* is empty)."""
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return head + mask + payload
    return head + payload


def ws_handshake_socket(port: int, path: str = "/ws", subprotocol: str = "wamp.2.json", host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket on which the WebSocket opening handshake has completed (101 read)."""
    s = open_socket(port, host=host)
    s.sendall(ws_upgrade_request(host, port, path, subprotocol))
    buf = b""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("no WebSocket handshake response")
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during WebSocket handshake: {buf!r}")
        buf += chunk
    status = buf.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        s.close()
        raise ConnectionError(f"WebSocket handshake refused: {status!r}")
    return s


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
