"""The HTTP front under attack: oversized request lines, headers and bodies, slow clients
(slowloris, slow bodies, idle keep-alive, clients that do not read), malformed chunking,
request smuggling and path traversal.  Each gets a clear HTTP error (or a closed
connection), and the worker goes on serving others.  Limits of the test node:
httpfront.WEB_OPTIONS."""

from __future__ import annotations

import socket
import time

import pytest

from httpfront import BIG_SIZE, Raw, get


def refused(port: int, request: bytes, status: int) -> bytes:
    """Send ``request``; the answer must be ``status`` with Connection: close, then EOF."""
    c = Raw(port)
    try:
        c.send(request)
        got, headers, body = c.response()
        assert got == status, (got, body)
        assert headers["connection"] == "close" and headers["content-type"].startswith("text/plain")
        assert c.closed_by_peer()
        return body
    finally:
        c.close()


def still_serving(node) -> None:
    node.assert_alive()
    assert get(node.ports["web"], "/a.txt")[2] == b"file a"


def test_long_request_line_is_414(wnode):
    body = refused(wnode.ports["web"], b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
    assert b"request line" in body
    still_serving(wnode)


def test_large_header_block_is_431(wnode):
    big = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"v" * 300) for i in range(20))
    refused(wnode.ports["web"], b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n", 431)
    # one endless header value, sent in pieces: refused before it ends
    c = Raw(wnode.ports["web"])
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ")
        try:
            for _ in range(40):
                c.send(b"v" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, _ = c.response()
        assert status == 431
    except ConnectionResetError:
        pass  # refused while we were still sending: the close came before the answer was read
    finally:
        c.close()
    still_serving(wnode)


def test_too_many_headers_is_431(wnode):
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(60))
    assert b"too many" in refused(wnode.ports["web"], b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", 431)
    still_serving(wnode)


def test_body_above_the_service_limit_is_413_before_it_is_read(wnode):
    # Content-Length over the limit: answered with only the headers sent
    refused(wnode.ports["web"], b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", 413)
    # a chunked body growing over the limit
    c = Raw(wnode.ports["web"])
    try:
        c.send(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(10):
                c.send(b"400\r\n" + b"z" * 1024 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.response()[0] == 413
    finally:
        c.close()
    # the default limit (1 MiB) applies to services that do not set their own
    refused(wnode.ports["web"], b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413)
    still_serving(wnode)


@pytest.mark.parametrize("request_bytes", [
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
], ids=["bad-size", "size-mismatch", "negative"])
def test_malformed_chunking_is_400(wnode, request_bytes):
    refused(wnode.ports["web"], request_bytes, 400)
    still_serving(wnode)


@pytest.mark.parametrize("request_bytes", [
    # CL.TE: a front that trusted Content-Length would pass "GET /secret" on as a second request
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /secret HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
], ids=["cl-te", "te-cl", "two-cl", "cl-list", "te-not-last-chunked"])
def test_request_smuggling_is_refused(wnode, request_bytes):
    refused(wnode.ports["web"], request_bytes, 400)
    still_serving(wnode)


def test_transfer_codings_other_than_chunked_are_501(wnode):
    refused(wnode.ports["web"],
            b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501)
    still_serving(wnode)


def test_slowloris_is_dropped_after_the_header_timeout(wnode):
    """Headers trickling in, a byte at a time: 408 after header_timeout (1.5 s) from the
    request's first byte, while other clients are served all along."""
    c = Raw(wnode.ports["web"])
    start = time.monotonic()
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answered = None
        for i in range(60):
            try:
                c.send(b"X-Slow-%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                break
            assert get(wnode.ports["web"], "/b.txt")[2] == b"file b"
            c.s.settimeout(0.1)
            try:
                chunk = c.s.recv(65536)
            except socket.timeout:
                continue
            answered = chunk
            break
        elapsed = time.monotonic() - start
        assert answered is not None and answered.startswith(b"HTTP/1.1 408"), answered
        assert 1.3 < elapsed < 4.0, elapsed
        assert c.closed_by_peer()
    finally:
        c.close()
    still_serving(wnode)


def test_slow_body_is_dropped_after_the_body_timeout(wnode):
    c = Raw(wnode.ports["web"])
    start = time.monotonic()
    try:
        c.send(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(40):
                c.send(b"z")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = c.response()
        assert status == 408 and b"body" in body
        assert time.monotonic() - start < 4.0
    finally:
        c.close()
    still_serving(wnode)


def test_idle_connections_are_closed(wnode):
    """A connection that sends nothing is closed after header_timeout (1.5 s), an idle keep-alive
    connection after keepalive_timeout (2.5 s)."""
    for first, low, high in ((None, 1.3, 2.4), (b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", 2.3, 4.5)):
        c = Raw(wnode.ports["web"])
        start = time.monotonic()
        try:
            if first:
                c.send(first)
                assert c.response()[2] == b"file a"
            assert c.closed_by_peer(timeout=6.0)
            assert low < time.monotonic() - start < high
        finally:
            c.close()


def test_a_client_that_does_not_read_is_dropped(wnode):
    """Pipelined requests for a 3 MB file, none of the answers read: reading pauses while the
    write buffer is full, and after write_timeout (2 s) the connection is dropped."""
    c = Raw(wnode.ports["web"])
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        time.sleep(0.3)
        assert get(wnode.ports["web"], "/a.txt")[2] == b"file a"
        time.sleep(3.5)  # write_timeout (2 s) and the sweep after it
        c.s.settimeout(5)
        got = 0
        with pytest.raises(ConnectionResetError):
            while True:  # whatever was still in flight before the reset
                chunk = c.s.recv(1 << 20)
                assert chunk, "closed without a reset"
                got += len(chunk)
        assert got < 2 * BIG_SIZE  # far from the 20 answers asked for
    finally:
        c.close()
    still_serving(wnode)


@pytest.mark.parametrize("path", [
    "/../outside.txt", "/%2e%2e/outside.txt", "/%2E%2E%2Foutside.txt", "/sub/..%2F..%2Foutside.txt",
    "/sub/%2e%2e/%2e%2e/outside.txt", "/escape.txt", "/escape_dir/outside.txt", "/..%5Coutside.txt",
    "/arc/../outside.txt", "/arc/%2e%2e/outside.txt", "/arc/../../evil.txt", "/arc/..%2Fsecret.txt",
    "/tar/../evil.txt", "/tar/passwd", "/tar/%2e%2e%2fevil.txt",
])
def test_path_traversal_is_404(wnode, path):
    status, _, body = get(wnode.ports["web"], path)
    assert status == 404, (path, status, body)
    assert b"secret" not in body and b"evil" not in body and b"root:" not in body
    still_serving(wnode)


@pytest.mark.parametrize("path", ["/%00", "/a.txt%00.html", "/arc/app.js%00", "/tar/%00/x"])
def test_nul_in_a_path_is_400(wnode, path):
    status, _, body = get(wnode.ports["web"], path)
    assert status == 400 and b"NUL" in body
    still_serving(wnode)


def test_many_connections_each_with_a_bad_request_leave_the_worker_serving(wnode):
    junk = [b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"GET\r\n\r\n", b"\x16\x03\x01\x02\x00",
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"]
    for i in range(50):
        c = Raw(wnode.ports["web"])
        try:
            c.send(junk[i % len(junk)])
            assert c.closed_by_peer()
        finally:
            c.close()
    still_serving(wnode)
