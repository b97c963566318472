"""Values JavaScript WAMP clients put on the wire that must not break a session.

* wampy 8.x always sends ``match`` and ``get_retained`` in SUBSCRIBE.Options,
  as JavaScript ``undefined`` when the user did not set them.  msgpackr
  encodes ``undefined`` as fixext1 type 0 data 0 (``d4 00 00``), cbor-x as
  the CBOR simple value 23 (``f7``).
* cbor-x and the npm ``cbor`` package encode a ``Uint8Array`` as CBOR tag 64
  (RFC 8746 uint8 typed array, ``d8 40``) around a byte string.

The byte sequences below are written out by hand, the way those libraries
produce them, rather than generated with the Python libraries;
``WAMPY_802_BYTES`` are captured from wampy 8.0.2's own serializers.
"""

import cbor2
import msgpack
import pytest

from wampfabric.protocol import messages
from wampfabric.protocol.errors import ProtocolError, SerializationError
from wampfabric.protocol.messages import parse
from wampfabric.protocol.serializers import SERIALIZERS_BY_NAME, create_serializer

MSGPACK_UNDEFINED = b"\xd4\x00\x00"  # fixext1, ext type 0, data 0x00 (msgpackr)
CBOR_UNDEFINED = b"\xf7"  # simple value 23 (cbor-x, npm cbor)


def _mp_str(s: str) -> bytes:
    b = s.encode()
    assert len(b) < 32
    return bytes([0xA0 | len(b)]) + b


def _cbor_str(s: str) -> bytes:
    b = s.encode()
    assert len(b) < 24
    return bytes([0x60 | len(b)]) + b


def _mp_subscribe(match: bytes, get_retained: bytes, request=1, topic="com.myapp.topic1") -> bytes:
    # [32, request, {"match": ..., "get_retained": ...}, topic]
    return (
        b"\x94\x20" + bytes([request])
        + b"\x82" + _mp_str("match") + match + _mp_str("get_retained") + get_retained
        + _mp_str(topic)
    )


def _cbor_subscribe(match: bytes, get_retained: bytes, request=1, topic="com.myapp.topic1") -> bytes:
    # [32, request, {"match": ..., "get_retained": ...}, topic]
    return (
        b"\x84\x18\x20" + bytes([request])
        + b"\xa2" + _cbor_str("match") + match + _cbor_str("get_retained") + get_retained
        + _cbor_str(topic)
    )


WAMPY_SUBSCRIBE = {
    "msgpack": _mp_subscribe(MSGPACK_UNDEFINED, MSGPACK_UNDEFINED),
    "cbor": _cbor_subscribe(CBOR_UNDEFINED, CBOR_UNDEFINED),
}


# The same messages exactly as wampy 8.0.2's own MsgpackSerializer (msgpackr)
# and CborSerializer (cbor-x, wampy's default options) encode them; note the
# non-minimal map headers (msgpack map16 ``de 0002``, CBOR ``b9 0002``).
WAMPY_802_BYTES = {
    # [32, 1, {match: undefined, get_retained: undefined}, "com.myapp.topic1"]
    ("msgpack", "subscribe"): bytes.fromhex(
        "942001de0002a56d61746368d40000ac6765745f72657461696e6564d40000"
        "b0636f6d2e6d796170702e746f70696331"
    ),
    ("cbor", "subscribe"): bytes.fromhex(
        "84182001b90002656d61746368f76c6765745f72657461696e6564f7"
        "70636f6d2e6d796170702e746f70696331"
    ),
    # [16, 1, {}, "com.myapp.topic1", [new Uint8Array([0, 1, 255])]]
    ("msgpack", "publish"): bytes.fromhex("951001de0000b0636f6d2e6d796170702e746f7069633191c4030001ff"),
    ("cbor", "publish"): bytes.fromhex("851001b9000070636f6d2e6d796170702e746f7069633181d840430001ff"),
}


def _batch_of_one(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _decode(name: str, data: bytes, batched: bool) -> list:
    if batched:
        return create_serializer(name + ".batched").unserialize_one(_batch_of_one(data))
    return SERIALIZERS_BY_NAME[name].unserialize_one(data)


def _assert_exact_subscription(msg):
    assert isinstance(msg, messages.Subscribe)
    assert msg.request == 1 and msg.topic == "com.myapp.topic1"
    # undefined options are absent: what the broker reads with its defaults
    assert msg.options == {}
    assert msg.options.get("match", "exact") == "exact"
    assert not msg.options.get("get_retained", False)
    assert msg.marshal() == [32, 1, {}, "com.myapp.topic1"]


# ---------------------------------------------------------------------------
# undefined
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("batched", [False, True], ids=["plain", "batched"])
@pytest.mark.parametrize("name", ["msgpack", "cbor"])
def test_wampy_subscribe_with_undefined_options_is_exact(name, batched):
    wmsg = _decode(name, WAMPY_SUBSCRIBE[name], batched)
    assert wmsg == [32, 1, {"match": None, "get_retained": None}, "com.myapp.topic1"]
    _assert_exact_subscription(parse(wmsg))


@pytest.mark.parametrize("name", ["msgpack", "cbor"])
def test_wampy_802_wire_bytes(name):
    s = SERIALIZERS_BY_NAME[name]
    _assert_exact_subscription(parse(s.unserialize_one(WAMPY_802_BYTES[name, "subscribe"])))
    msg = parse(s.unserialize_one(WAMPY_802_BYTES[name, "publish"]))
    assert isinstance(msg, messages.Publish)
    assert msg.args == [b"\x00\x01\xff"] and type(msg.args[0]) is bytes
    assert SERIALIZERS_BY_NAME["json"].serialize(msg.marshal()) == b'[16,1,{},"com.myapp.topic1",["\\u0000AAH/"]]'


@pytest.mark.parametrize("name", ["msgpack", "cbor"])
def test_wampy_subscribe_from_memoryview_and_bytearray(name):
    s = SERIALIZERS_BY_NAME[name]
    data = WAMPY_SUBSCRIBE[name]
    for buf in (bytearray(data), memoryview(data)):
        _assert_exact_subscription(parse(s.unserialize_one(buf)))


def test_undefined_match_with_retained_set():
    data = _mp_subscribe(MSGPACK_UNDEFINED, b"\xc3")  # get_retained: true
    msg = parse(SERIALIZERS_BY_NAME["msgpack"].unserialize_one(data))
    assert msg.options == {"get_retained": True}
    data = _cbor_subscribe(_cbor_str("prefix"), CBOR_UNDEFINED)
    msg = parse(SERIALIZERS_BY_NAME["cbor"].unserialize_one(data))
    assert msg.options == {"match": "prefix"}


def test_json_null_options_are_absent_too():
    # JSON.stringify drops undefined object members, but a client may send null
    data = b'[32,1,{"match":null,"get_retained":null},"com.myapp.topic1"]'
    _assert_exact_subscription(parse(SERIALIZERS_BY_NAME["json"].unserialize_one(data)))


def test_undefined_in_payload_becomes_none_and_reencodes():
    # [16, 1, {}, "t", [1, undefined, {"k": undefined, "l": [undefined]}]]
    mp = (
        b"\x95\x10\x01\x80" + _mp_str("t")
        + b"\x93\x01" + MSGPACK_UNDEFINED
        + b"\x82" + _mp_str("k") + MSGPACK_UNDEFINED + _mp_str("l") + b"\x91" + MSGPACK_UNDEFINED
    )
    cb = (
        b"\x85\x10\x01\xa0" + _cbor_str("t")
        + b"\x83\x01" + CBOR_UNDEFINED
        + b"\xa2" + _cbor_str("k") + CBOR_UNDEFINED + _cbor_str("l") + b"\x81" + CBOR_UNDEFINED
    )
    expected = [16, 1, {}, "t", [1, None, {"k": None, "l": [None]}]]
    for name, data in (("msgpack", mp), ("cbor", cb)):
        wmsg = SERIALIZERS_BY_NAME[name].unserialize_one(data)
        assert wmsg == expected, name
        msg = parse(wmsg)
        assert msg.args == [1, None, {"k": None, "l": [None]}]
        # every peer can receive it
        for out in ("json", "msgpack", "cbor"):
            s = SERIALIZERS_BY_NAME[out]
            assert s.unserialize_one(s.serialize(msg.marshal())) == expected


def test_other_msgpack_ext_types_are_untouched():
    s = SERIALIZERS_BY_NAME["msgpack"]
    # fixext1 type 0 with another data byte, fixext2 type 0 data 00 00, fixext1 type 5
    data = b"\x93\xd4\x00\x01\xd5\x00\x00\x00\xd4\x05\x00"
    assert s.unserialize_one(data) == [
        msgpack.ExtType(0, b"\x01"),
        msgpack.ExtType(0, b"\x00\x00"),
        msgpack.ExtType(5, b"\x00"),
    ]
    # msgpack timestamps (ext -1) keep their default decoding
    ts = msgpack.Timestamp(1, 0)
    assert s.unserialize_one(msgpack.packb([ts])) == [ts]


def test_cbor_0xf7_octets_that_are_not_undefined():
    # 0xf7 inside an integer, a float, a string and a byte string: the walk
    # (triggered by the octet) must leave everything as decoded.
    s = SERIALIZERS_BY_NAME["cbor"]
    data = (
        b"\x86\x18\x30\x18\xf7\xa0" + _cbor_str("p")  # [48, 247, {}, "p",
        + b"\x83\xfb\x3f\xf7\x00\x00\x00\x00\x00\x00"  # [1.4375 (0x3ff7...),
        + b"\x62\xc3\xb7"  # "÷" (U+00F7, UTF-8 c3 b7) - no f7 octet, see below
        + b"\x42\xf7\xf7"  # h'f7f7'],
        + b"\xa1" + _cbor_str("\u00f7") + b"\x41\xf7"  # {"÷": h'f7'}]
    )
    wmsg = s.unserialize_one(data)
    assert wmsg == [48, 247, {}, "p", [1.4375, "\u00f7", b"\xf7\xf7"], {"\u00f7": b"\xf7"}]
    msg = parse(wmsg)
    assert msg.request == 247 and msg.kwargs == {"\u00f7": b"\xf7"}


def test_cbor_undefined_is_not_kept_anywhere_in_a_nested_message():
    s = SERIALIZERS_BY_NAME["cbor"]
    # a deep but decodable nesting (400 levels: the limit of cbor2 6): [[[...[undefined]...]]]
    depth = 400
    data = b"\x81" * depth + CBOR_UNDEFINED
    wmsg = s.unserialize_one(data)
    for _ in range(depth - 1):
        (wmsg,) = wmsg
    assert wmsg == [None]


# ---------------------------------------------------------------------------
# CBOR tag 64 (Uint8Array)
# ---------------------------------------------------------------------------


def test_cbor_tag64_decodes_to_bytes_and_reaches_other_peers():
    # [16, 1, {}, "com.myapp.topic1", [h'0001ff' as Uint8Array], {"b": <Uint8Array h''>}]
    data = (
        b"\x86\x10\x01\xa0" + _cbor_str("com.myapp.topic1")
        + b"\x81\xd8\x40\x43\x00\x01\xff"
        + b"\xa1" + _cbor_str("b") + b"\xd8\x40\x40"
    )
    wmsg = SERIALIZERS_BY_NAME["cbor"].unserialize_one(data)
    assert wmsg == [16, 1, {}, "com.myapp.topic1", [b"\x00\x01\xff"], {"b": b""}]
    assert type(wmsg[4][0]) is bytes and type(wmsg[5]["b"]) is bytes
    msg = parse(wmsg)
    out = msg.marshal()
    # MessagePack peers get bin, JSON peers the "\0"+base64 string, CBOR peers a plain byte string
    assert msgpack.unpackb(SERIALIZERS_BY_NAME["msgpack"].serialize(out), raw=False) == out
    js = SERIALIZERS_BY_NAME["json"].serialize(out)
    assert b'["\\u0000AAH/"]' in js
    assert SERIALIZERS_BY_NAME["json"].unserialize_one(js) == out
    cb = SERIALIZERS_BY_NAME["cbor"].serialize(out)
    assert b"\xd8\x40" not in cb and b"\x43\x00\x01\xff" in cb


def test_cbor_tag64_batched():
    data = b"\x84\x18\x46\x01\xa0\x81\xd8\x40\x42\xf7\x00"  # [70, 1, {}, [Uint8Array h'f700']]
    wmsg = create_serializer("cbor.batched").unserialize_one(_batch_of_one(data))
    assert wmsg == [70, 1, {}, [b"\xf7\x00"]]


def test_cbor_tag64_passthru_payload():
    # payload passthru: [CALL, 1, {ppt_scheme: "x"}, "p", [<Uint8Array>]]
    data = (
        b"\x85\x18\x30\x01\xa1" + _cbor_str("ppt_scheme") + _cbor_str("x")
        + _cbor_str("p") + b"\x81\xd8\x40\x42\xab\xcd"
    )
    msg = parse(SERIALIZERS_BY_NAME["cbor"].unserialize_one(data))
    assert msg.payload == b"\xab\xcd" and msg.args is None


@pytest.mark.parametrize(
    "content",
    [b"\x01", b"\x61a", b"\x80", b"\xf6"],  # int, text string, array, null
    ids=["int", "text", "array", "null"],
)
def test_cbor_tag64_must_wrap_a_byte_string(content):
    with pytest.raises(SerializationError, match="invalid CBOR"):
        SERIALIZERS_BY_NAME["cbor"].unserialize_one(b"\x82\x01\xd8\x40" + content)


def test_other_cbor_tags_are_untouched():
    s = SERIALIZERS_BY_NAME["cbor"]
    # tag 72 (sint8 typed array) and tag 4711 (unassigned) stay CBORTag
    data = b"\x82\xd8\x48\x41\xff\xd9\x12\x67\x01"
    assert s.unserialize_one(data) == [cbor2.CBORTag(72, b"\xff"), cbor2.CBORTag(4711, 1)]


# ---------------------------------------------------------------------------
# strict validation is unchanged for anything but None
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,match,fragment",
    [
        ("msgpack", _mp_str("regex"), "Options.match must be one of"),
        ("msgpack", b"\x05", "Options.match must be one of"),
        ("cbor", _cbor_str("regex"), "Options.match must be one of"),
        ("cbor", b"\x05", "Options.match must be one of"),
        ("cbor", b"\xf5", "Options.match must be one of"),  # true
    ],
)
def test_bad_match_is_still_rejected(name, match, fragment):
    data = (_mp_subscribe if name == "msgpack" else _cbor_subscribe)(
        match, MSGPACK_UNDEFINED if name == "msgpack" else CBOR_UNDEFINED
    )
    wmsg = SERIALIZERS_BY_NAME[name].unserialize_one(data)
    with pytest.raises(ProtocolError, match=fragment):
        parse(wmsg)


@pytest.mark.parametrize("bad", ["regex", 5, True, "", ["exact"]])
def test_bad_match_values_rejected(bad):
    with pytest.raises(ProtocolError, match="SUBSCRIBE: Options.match must be one of"):
        parse([32, 1, {"match": bad, "get_retained": None}, "t"])
    with pytest.raises(ProtocolError, match="REGISTER: Options.match must be one of"):
        parse([64, 1, {"match": bad}, "p"])


@pytest.mark.parametrize("bad", ["yes", 1, 0, {}])
def test_bad_get_retained_rejected(bad):
    with pytest.raises(ProtocolError, match="Options.get_retained must be a bool"):
        parse([32, 1, {"match": None, "get_retained": bad}, "t"])


def test_none_is_absent_for_other_options_and_details():
    m = parse([16, 1, {"acknowledge": None, "exclude_me": None, "eligible": None, "retain": True}, "t"])
    assert m.options == {"retain": True}
    m = parse([48, 1, {"timeout": None, "receive_progress": None, "disclose_me": None}, "p", [1]])
    assert m.options == {} and m.args == [1]
    m = parse([48, 1, {"ppt_scheme": None, "enc_algo": None}, "p", [b"x"]])
    assert m.options == {} and m.args == [b"x"] and m.payload is None
    m = parse([64, 1, {"match": None, "invoke": None, "concurrency": None}, "p"])
    assert m.options == {}
    m = parse([70, 1, {"progress": None}, [1]])
    assert m.options == {}
    m = parse([36, 1, 2, {"publisher": None, "topic": "t"}])
    assert m.details == {"topic": "t"}
    m = parse([49, 1, {"mode": None}])
    assert m.options == {}


def test_none_for_attributes_that_accept_null_is_kept():
    h = parse([1, "r", {"roles": {"caller": {}}, "authid": None, "authextra": None}])
    assert h.details == {"roles": {"caller": {}}, "authid": None, "authextra": None}


def test_none_for_unknown_attributes_is_kept():
    m = parse([32, 1, {"x_custom": None, "match": None}, "t"])
    assert m.options == {"x_custom": None}


def test_none_roles_is_missing_roles():
    with pytest.raises(ProtocolError, match="HELLO: Details.roles is missing"):
        parse([1, "r", {"roles": None}])
    with pytest.raises(ProtocolError, match="WELCOME: Details.roles is missing"):
        parse([2, 5, {"roles": None}])


def test_argumentskw_none_values_are_payload_and_kept():
    m = parse([3, {}, "wamp.error.x", [], {"a": None}])
    assert m.kwargs == {"a": None}
    m = parse([48, 1, {}, "p", [], {"timeout": None}])
    assert m.kwargs == {"timeout": None}
