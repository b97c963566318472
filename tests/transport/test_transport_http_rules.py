"""RFC 6455 / HTTP rules on the WebSocket and web transports, with raw sockets.

Before: frames with RSV1 set (no extension negotiated) were accepted, a handshake with
Sec-WebSocket-Version 8 was accepted, ``GET /%00`` was answered 500 without a log line and
``HEAD /`` got 400 (picows parses only GET)."""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest

from support.wamp_raw import ws_frame, ws_handshake_socket, ws_upgrade_request
from wampfabric.protocol.codes import HELLO


def http(port: int, request: bytes, timeout: float = 5.0) -> tuple[str, dict, bytes]:
    """Send a raw request, read the whole answer (up to its Content-Length, the end of the
    headers for HEAD, or until the router closes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, _, body = buf.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if request.startswith(b"HEAD ") or (length and len(body) >= length[0]):
                    break
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return status, headers, body


def wait_log(node, text: str, timeout: float = 5.0) -> bool:
    """Log lines reach the node log through the controller: wait for ``text``."""
    deadline = time.monotonic() + timeout
    while text not in node.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in node.log()


def read_close(s: socket.socket, timeout: float = 5.0) -> int | None:
    """Read server frames until a CLOSE; its status code (None: closed without one)."""
    s.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            opcode, payload, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bits_fail_the_connection_with_1002(node, rsv):
    s = ws_handshake_socket(node.ports["web"])
    try:
        hello = json.dumps([HELLO, "realm1", {"roles": {"subscriber": {}}}]).encode()
        s.sendall(ws_frame(hello, rsv=rsv))
        assert read_close(s) == 1002
    finally:
        s.close()
    assert wait_log(node, "reserved bits set")
    node.assert_alive()


def test_frames_without_reserved_bits_still_work(node):
    s = ws_handshake_socket(node.ports["web"])
    try:
        s.sendall(ws_frame(json.dumps([HELLO, "realm1", {"roles": {"subscriber": {}}}]).encode()))
        s.settimeout(5)
        data = s.recv(65536)
        assert data[0] == 0x81 and b"[2," in data  # WELCOME in a text frame
    finally:
        s.close()


@pytest.mark.parametrize("version", ["8", "7", "12", "14"])
def test_other_websocket_versions_get_426(node, version):
    for port, path in ((node.ports["web"], "/ws"), (node.ports["restricted"], "/")):
        req = ws_upgrade_request("127.0.0.1", port, path).replace(b"Sec-WebSocket-Version: 13",
                                                                   f"Sec-WebSocket-Version: {version}".encode())
        status, headers, _ = http(port, req)
        assert status.startswith("HTTP/1.1 426"), status
        assert headers["sec-websocket-version"] == "13"
    node.assert_alive()


def test_version_13_is_accepted(node):
    ws_handshake_socket(node.ports["web"]).close()  # raises unless 101


@pytest.mark.parametrize("path", ["/%00", "/index.html%00", "/sub/%00/x"])
def test_nul_in_a_static_path_is_400_with_a_log_line(node, path):
    status, _, _ = http(node.ports["web"], f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status.startswith("HTTP/1.1 400"), status
    assert wait_log(node, "NUL in the path")
    node.assert_alive()


@pytest.mark.parametrize("path,status", [("/", 200), ("/index.html", 200), ("/info", 200), ("/nothing", 404),
                                         ("/ws", 426)])
def test_head_gets_the_headers_of_get_without_body(node, path, status):
    """RFC 7231 4.3.2: HEAD is GET without a body (the same status and headers, Content-Length
    included).  A WebSocket path answers HEAD as it answers a plain GET: 426, not 405."""
    port = node.ports["web"]
    g_status, g_headers, g_body = http(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    h_status, h_headers, h_body = http(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert g_status.startswith(f"HTTP/1.1 {status}") and h_status == g_status
    assert h_body == b"" and g_body
    g_headers.pop("date"), h_headers.pop("date")  # the front's Date may tick between the two
    assert h_headers == g_headers and int(h_headers["content-length"]) == len(g_body)
    node.assert_alive()


def test_head_on_a_websocket_transport_and_joins_after(node):
    status, headers, body = http(node.ports["restricted"], b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.startswith("HTTP/1.1 426") and headers["upgrade"] == "websocket" and body == b""
    # a HEAD with Upgrade headers does not upgrade
    req = ws_upgrade_request("127.0.0.1", node.ports["web"], "/ws").replace(b"GET ", b"HEAD ", 1)
    status, _, body = http(node.ports["web"], req)
    assert status.startswith("HTTP/1.1 426") and body == b""
    # WebSocket sessions on both ports are not affected
    for port, path in ((node.ports["web"], "/ws"), (node.ports["restricted"], "/")):
        s = ws_handshake_socket(port, path)
        try:
            s.sendall(ws_frame(json.dumps([HELLO, "realm1", {"roles": {"subscriber": {}}}]).encode()))
            s.settimeout(5)
            assert b"[2," in s.recv(65536)
        finally:
            s.close()
