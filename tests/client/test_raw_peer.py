"""The raw WAMP peer (wampfabric.client.raw): framing, handshakes and serializers, byte for byte.

The load generator and the tests' raw peers put these bytes on the wire; here they are checked
against the specs (RFC 6455, WAMP RawSocket) without a router."""

from __future__ import annotations

import math

import msgpack
import pytest

from wampfabric.client import raw
from wampfabric.protocol import codes


def unmask(frame: bytes) -> tuple[int, bytes]:
    """(first octet, payload) of one masked client frame."""
    (b0, masked, payload), = raw.ws_frames(frame)[0]
    assert masked
    ln = frame[1] & 0x7F
    off = 2 if ln < 126 else 4 if ln == 126 else 10
    key = frame[off:off + 4]
    return b0, bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def test_message_codes_are_the_protocol_codes():
    for name in ("HELLO", "WELCOME", "ABORT", "GOODBYE", "ERROR", "PUBLISH", "EVENT", "CALL", "RESULT",
                 "REGISTER", "INVOCATION", "YIELD", "SUBSCRIBE", "UNSUBSCRIBED"):
        assert getattr(raw, name) == getattr(codes, name)


def test_websocket_accept_of_the_rfc_sample_key():
    assert raw.ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert len(raw.ws_new_key()) == 24 and raw.ws_new_key() != raw.ws_new_key()


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_client_frames_mask_every_length_form(size):
    payload = bytes(i % 251 for i in range(size))
    key = b"\x01\x02\x03\x04"
    frame = raw.ws_client_frame(raw.OP_BINARY, payload, key)
    assert frame == raw.ws_frame(payload, opcode=raw.OP_BINARY, mask=key)
    b0, got = unmask(frame)
    assert b0 == 0x80 | raw.OP_BINARY and got == payload


def test_frame_options_go_out_as_given():
    frame = raw.ws_frame(b"abc", opcode=raw.OP_TEXT, fin=False, rsv=5, mask=b"")
    assert frame == bytes((0x01 | 0x50, 3)) + b"abc"  # no FIN, RSV1+RSV3, unmasked
    zero = raw.ws_frame(b"abc", mask=b"\0\0\0\0")
    assert zero == bytes((0x81, 0x83)) + b"\0\0\0\0abc"


def test_server_frames_are_cut_at_the_last_complete_one():
    frames = bytes((0x82, 3)) + b"one" + bytes((0x81, 126)) + (300).to_bytes(2, "big") + b"t" * 300
    tail = bytes((0x82, 127)) + (70000).to_bytes(8, "big") + b"x" * 10
    got, end = raw.ws_frames(frames + tail)
    assert [(b0, masked, bytes(p)) for b0, masked, p in got] == [(0x82, 0, b"one"), (0x81, 0, b"t" * 300)]
    assert end == len(frames)
    assert raw.ws_frames(b"\x82") == ([], 0)


def test_upgrade_request_and_the_answer_it_needs():
    req = raw.ws_upgrade_request("127.0.0.1", 8080, "/ws", "wamp.2.msgpack", key="a2V5a2V5a2V5a2V5a2V5aw==")
    assert req.startswith(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n") and req.endswith(b"\r\n\r\n")
    assert b"Sec-WebSocket-Protocol: wamp.2.msgpack\r\n" in req
    assert b"Sec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==\r\n" in req
    assert b"Sec-WebSocket-Protocol" not in raw.ws_upgrade_request("h", None, "/", None)

    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    good = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: wamp.2.json")
    assert raw.ws_handshake_error(good, key, "wamp.2.json") is None
    assert "subprotocol 'wamp.2.cbor'" in raw.ws_handshake_error(good, key, "wamp.2.cbor")
    assert "Sec-WebSocket-Accept" in raw.ws_handshake_error(good, b"other-key", "wamp.2.json")
    assert "refused" in raw.ws_handshake_error(b"HTTP/1.1 400 Bad Request", key, "wamp.2.json")
    assert "Upgrade" in raw.ws_handshake_error(good.replace(b"Upgrade: websocket", b"Upgrade: h2c"), key,
                                               "wamp.2.json")


def test_rawsocket_handshake_and_frames_go_out_as_given():
    assert raw.rawsocket_handshake_bytes(2, 15) == b"\x7f\xf2\x00\x00"
    assert raw.rawsocket_handshake_bytes(1, magic=0x7E, reserved=1) == b"\x7e\xf1\x00\x01"
    frame = raw.rawsocket_frame(b"hello", 1)
    assert frame == b"\x01\x00\x00\x05hello"
    assert raw.rawsocket_header(frame[:4]) == (1, 5)
    assert raw.rawsocket_header(b"\x08\x00\x00\x00") == (0, 1 << 24)  # the X bit: exactly 16 MiB


def test_serializers_send_exactly_what_they_are_told():
    msg = [codes.CALL, 1, {}, "com.x", [2**70, math.nan, "é"]]
    out = raw.encode("json", msg)
    assert out == b'[48,1,{},"com.x",[1180591620717411303424,NaN,"\\u00e9"]]'  # stdlib json: any int, NaN
    back = raw.decode("json", out)
    assert back[:4] == msg[:4] and back[4][0] == 2**70 and math.isnan(back[4][1])
    assert raw.decode("json", memoryview(out))[4][0] == 2**70
    small = [codes.PUBLISH, 7, {"acknowledge": True}, "com.t", [b"\x00\x01", 1.5]]
    for name in ("msgpack", "cbor"):
        assert raw.decode(name, raw.encode(name, small)) == small
    fast = raw.Serializer("msgpack", fast=True)
    assert fast.dumps(small) == raw.encode("msgpack", small) == msgpack.packb(small, use_bin_type=True)
    assert (fast.subprotocol, fast.ws_opcode, fast.rawsocket_id) == ("wamp.2.msgpack", raw.OP_BINARY, 2)
    js = raw.Serializer("json", fast=True)
    hello = [codes.HELLO, "realm1", {}]
    assert js.ws_opcode == raw.OP_TEXT and js.loads(js.dumps(hello)) == hello
    with pytest.raises(ValueError):
        raw.encode("ubjson", msg)
    with pytest.raises(ValueError):
        raw.Serializer("ubjson")
