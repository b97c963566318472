"""The ``web`` transport: static files, directory listing, node info, and the
WebSocket path answering plain HTTP."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_static_index(node):
    status, headers, body = get(node.web_url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"hello from static" in body


def test_static_file_and_404(node):
    (node.root / "web" / "data.json").write_text('{"a": 1}')
    status, headers, body = get(node.web_url + "/data.json")
    assert status == 200 and body == b'{"a": 1}'
    assert headers["Content-Type"].startswith("application/json")
    assert get(node.web_url + "/missing.txt")[0] == 404


def test_directory_listing(node):
    sub = node.root / "web" / "sub"
    sub.mkdir(exist_ok=True)
    (sub / "a.txt").write_text("A")
    status, _, body = get(node.web_url + "/sub/")
    assert status == 200
    assert b"a.txt" in body and b"Index of /sub" in body


def test_path_traversal_is_refused(node):
    (node.root / "secret.txt").write_text("top secret")
    with socket.create_connection(("127.0.0.1", node.ports["web"]), timeout=5) as s:
        s.sendall(b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert b"top secret" not in data
    assert data.startswith(b"HTTP/1.1 404")
    assert get(node.web_url + "/%2e%2e/secret.txt")[0] == 404


def test_nodeinfo(node):
    status, headers, body = get(node.web_url + "/info")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"realm1" in body


def test_websocket_path_answers_plain_http_with_426(node):
    status, headers, body = get(node.ws_url.replace("ws://", "http://"))
    assert status == 426
    assert b"WebSocket" in body
    node.assert_alive()


def _upgrade(node, subprotocol):
    import base64
    import hashlib

    from support import wamp_raw

    port = node.ports["web"]
    key = base64.b64encode(b"sixteen byte key").decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(wamp_raw.ws_upgrade_request("127.0.0.1", port, "/ws", subprotocol, key=key))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, buf
            buf += chunk
    finally:
        s.close()
    status, *lines = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        k, v = line.split(":", 1)
        assert k.lower() not in headers, f"header {k} twice"
        headers[k.lower()] = v.strip()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    return status, headers, accept


def test_websocket_upgrade_response_is_rfc6455(node):
    """The 101 answer (prebuilt per subprotocol): status line, Upgrade, Connection, the chosen
    subprotocol and the Sec-WebSocket-Accept of RFC 6455 4.2.2, each once."""
    status, headers, accept = _upgrade(node, "wamp.2.cbor")
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert headers["upgrade"].lower() == "websocket" and headers["connection"].lower() == "upgrade"
    assert headers["sec-websocket-protocol"] == "wamp.2.cbor"
    assert headers["sec-websocket-accept"] == accept
    # a legacy client offering no subprotocol gets none back (and JSON)
    status, headers, accept = _upgrade(node, None)
    assert status.startswith("HTTP/1.1 101") and "sec-websocket-protocol" not in headers
    assert headers["sec-websocket-accept"] == accept
    node.assert_alive()
