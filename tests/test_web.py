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
        s.sendall(b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n")
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
