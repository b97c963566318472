"""Unit tests for the sans-I/O protocol layer: messages, URIs, serializers, RawSocket."""

import struct
import time

import cbor2
import msgpack
import pytest

from wampfabric.protocol import errors, messages, rawsocket, uri
from wampfabric.protocol.errors import ProtocolError, SerializationError
from wampfabric.protocol.messages import MAX_ID, is_valid_id, parse
from wampfabric.protocol.serializers import (
    SERIALIZERS_BY_NAME,
    SERIALIZERS_BY_RAWSOCKET_ID,
    SERIALIZERS_BY_SUBPROTOCOL,
    create_serializer,
)

# ---------------------------------------------------------------------------
# one valid wire message per type, and the positions holding ids / dicts /
# strings, used to generate the negative tests
# ---------------------------------------------------------------------------

VALID = {
    "HELLO": [1, "realm1", {"roles": {"caller": {}}}],
    "WELCOME": [2, 123, {"roles": {"dealer": {}}}],
    "ABORT": [3, {}, "wamp.error.no_such_realm"],
    "CHALLENGE": [4, "ticket", {}],
    "AUTHENTICATE": [5, "secret", {}],
    "GOODBYE": [6, {}, "wamp.close.normal"],
    "ERROR": [8, 48, 7, {}, "com.err", [1], {"a": 1}],
    "PUBLISH": [16, 1, {}, "com.topic", [1], {"a": 1}],
    "PUBLISHED": [17, 1, 2],
    "SUBSCRIBE": [32, 1, {}, "com.topic"],
    "SUBSCRIBED": [33, 1, 2],
    "UNSUBSCRIBE": [34, 1, 2],
    "UNSUBSCRIBED": [35, 1],
    "EVENT": [36, 1, 2, {}, [1], {"a": 1}],
    "EVENT_RECEIVED": [337, 5],
    "CALL": [48, 1, {}, "com.proc", [1], {"a": 1}],
    "CANCEL": [49, 1, {}],
    "RESULT": [50, 1, {}, [1], {"a": 1}],
    "REGISTER": [64, 1, {}, "com.proc"],
    "REGISTERED": [65, 1, 2],
    "UNREGISTER": [66, 1, 2],
    "UNREGISTERED": [67, 1],
    "INVOCATION": [68, 1, 2, {}, [1], {"a": 1}],
    "INTERRUPT": [69, 1, {}],
    "YIELD": [70, 1, {}, [1], {"a": 1}],
}

# (min length, max length)
LENGTHS = {
    "HELLO": (3, 3), "WELCOME": (3, 3), "ABORT": (3, 5), "CHALLENGE": (3, 3),
    "AUTHENTICATE": (3, 3), "GOODBYE": (3, 3), "ERROR": (5, 7), "PUBLISH": (4, 6),
    "PUBLISHED": (3, 3), "SUBSCRIBE": (4, 4), "SUBSCRIBED": (3, 3), "UNSUBSCRIBE": (3, 4),
    "UNSUBSCRIBED": (2, 3), "EVENT": (4, 6), "EVENT_RECEIVED": (2, 2), "CALL": (4, 6),
    "CANCEL": (3, 3), "RESULT": (3, 5), "REGISTER": (4, 4), "REGISTERED": (3, 3),
    "UNREGISTER": (3, 4), "UNREGISTERED": (2, 3), "INVOCATION": (4, 6), "INTERRUPT": (3, 3),
    "YIELD": (3, 5),
}

ID_POSITIONS = {
    "WELCOME": [1], "ERROR": [2], "PUBLISH": [1], "PUBLISHED": [1, 2], "SUBSCRIBE": [1],
    "SUBSCRIBED": [1, 2], "UNSUBSCRIBE": [1, 2], "UNSUBSCRIBED": [1], "EVENT": [1, 2],
    "EVENT_RECEIVED": [1], "CALL": [1], "CANCEL": [1], "RESULT": [1], "REGISTER": [1],
    "REGISTERED": [1, 2], "UNREGISTER": [1, 2], "UNREGISTERED": [1], "INVOCATION": [1, 2],
    "INTERRUPT": [1], "YIELD": [1],
}

DICT_POSITIONS = {
    "HELLO": [2], "WELCOME": [2], "ABORT": [1], "CHALLENGE": [2], "AUTHENTICATE": [2],
    "GOODBYE": [1], "ERROR": [3, 6], "PUBLISH": [2, 5], "SUBSCRIBE": [2], "EVENT": [3, 5],
    "CALL": [2, 5], "CANCEL": [2], "RESULT": [2, 4], "REGISTER": [2], "INVOCATION": [3, 5],
    "INTERRUPT": [2], "YIELD": [2, 4],
}

STR_POSITIONS = {
    "HELLO": [1], "ABORT": [2], "CHALLENGE": [1], "AUTHENTICATE": [1], "GOODBYE": [2],
    "ERROR": [4], "PUBLISH": [3], "SUBSCRIBE": [3], "CALL": [3], "REGISTER": [3],
}

ARGS_POSITIONS = {"ERROR": 5, "PUBLISH": 4, "EVENT": 4, "CALL": 4, "RESULT": 3, "INVOCATION": 4, "YIELD": 3}


def _with(wmsg, pos, value):
    m = list(wmsg)
    m[pos] = value
    return m


def _raises(wmsg, name, fragment=None):
    with pytest.raises(ProtocolError) as info:
        parse(wmsg)
    text = str(info.value)
    assert text.startswith(name + ":"), text
    if fragment:
        assert fragment in text, text
    return text


# ---------------------------------------------------------------------------
# basic round trips
# ---------------------------------------------------------------------------


def test_every_message_type_is_covered():
    assert {c.NAME for c in messages.MESSAGE_CLASSES.values()} == set(VALID)
    for code, cls in messages.MESSAGE_CLASSES.items():
        assert cls.MESSAGE_TYPE == code
        assert not hasattr(cls(*([None] * _n_required(cls))), "__dict__")


def _n_required(cls):
    code = cls.__init__.__code__
    return code.co_argcount - 1 - len(cls.__init__.__defaults__ or ())


@pytest.mark.parametrize("name", sorted(VALID))
def test_parse_marshal_roundtrip(name):
    wmsg = VALID[name]
    msg = parse(wmsg)
    assert msg.NAME == name
    assert msg.marshal() == wmsg
    assert parse(msg.marshal()) == msg
    assert name in repr(msg) or type(msg).__name__ in repr(msg)


@pytest.mark.parametrize("name", sorted(LENGTHS))
def test_wrong_length(name):
    lo, hi = LENGTHS[name]
    wmsg = VALID[name]
    _raises(wmsg[: lo - 1], name, "length")
    longer = list(wmsg) + [{}] * (hi + 1 - len(wmsg))
    _raises(longer, name, "length")


@pytest.mark.parametrize("name", sorted(ID_POSITIONS))
@pytest.mark.parametrize("bad", [0, MAX_ID + 1, -1, True, False, 1.0, "1", None])
def test_invalid_ids(name, bad):
    for pos in ID_POSITIONS[name]:
        _raises(_with(VALID[name], pos, bad), name, "id")


@pytest.mark.parametrize("name", sorted(ID_POSITIONS))
def test_id_bounds_accepted(name):
    for pos in ID_POSITIONS[name]:
        for good in (1, MAX_ID):
            assert parse(_with(VALID[name], pos, good)).marshal()[pos] == good


@pytest.mark.parametrize("name", sorted(DICT_POSITIONS))
@pytest.mark.parametrize("bad", [[], "x", None, 1, ({},)])
def test_invalid_dicts(name, bad):
    for pos in DICT_POSITIONS[name]:
        if pos < len(VALID[name]):
            _raises(_with(VALID[name], pos, bad), name)


@pytest.mark.parametrize("name", sorted(DICT_POSITIONS))
def test_dict_keys_must_be_strings(name):
    for pos in DICT_POSITIONS[name]:
        if pos < len(VALID[name]):
            d = dict(VALID[name][pos])
            d[1] = "x"
            _raises(_with(VALID[name], pos, d), name, "keys must be strings")


@pytest.mark.parametrize("name", sorted(STR_POSITIONS))
@pytest.mark.parametrize("bad", [1, b"com.x", ["a"], True])
def test_invalid_strings(name, bad):
    for pos in STR_POSITIONS[name]:
        _raises(_with(VALID[name], pos, bad), name)


@pytest.mark.parametrize("name", sorted(ARGS_POSITIONS))
def test_invalid_args(name):
    pos = ARGS_POSITIONS[name]
    for bad in ({}, "x", 1, None, b"raw"):  # bytes only with a passthru attribute
        _raises(_with(VALID[name], pos, bad), name, "Arguments")


def test_uri_syntax_is_not_checked_by_parse():
    # the router answers wamp.error.invalid_uri for these, so parse accepts them
    assert parse([48, 1, {}, "bad uri..#"]).procedure == "bad uri..#"
    assert parse([32, 1, {}, ""]).topic == ""


def test_is_valid_id():
    assert is_valid_id(1) and is_valid_id(2**53)
    for bad in (0, 2**53 + 1, -5, True, 1.0, "1", None):
        assert not is_valid_id(bad)


# ---------------------------------------------------------------------------
# message specific rules
# ---------------------------------------------------------------------------


def test_dispatch_errors():
    for bad in ((48, 1, {}, "a"), {}, "x", None, b"[]"):
        with pytest.raises(ProtocolError, match="expected a list"):
            parse(bad)
    with pytest.raises(ProtocolError, match="empty"):
        parse([])
    for bad in (True, 48.0, "48", None):
        with pytest.raises(ProtocolError, match="invalid message type"):
            parse([bad, 1, {}, "a"])
    for bad in (0, 7, 99, 37, 1024, -1):
        with pytest.raises(ProtocolError, match="unknown message type"):
            parse([bad, 1, {}])


def test_hello():
    assert parse([1, None, {"roles": {"caller": {}}}]).realm is None  # Crossbar fabric
    _raises([1, "r", {}], "HELLO", "roles")
    _raises([1, "r", {"roles": {}}], "HELLO", "roles")
    _raises([1, "r", {"roles": {"caller": True}}], "HELLO", "roles")
    _raises([1, "r", {"roles": {"caller": {}}, "authmethods": "ticket"}], "HELLO", "authmethods")
    h = parse([1, "r", {"roles": {"caller": {}}, "authid": None, "authextra": {"pubkey": "ab"}}])
    assert h.details["authextra"] == {"pubkey": "ab"}
    assert messages.Hello("r").details == {}


def test_welcome_requires_roles():
    _raises([2, 5, {}], "WELCOME", "roles")


def test_abort_with_args():
    m = parse([3, {"message": "x"}, "wamp.error.no_such_realm", ["why"], {"k": 1}])
    assert (m.args, m.kwargs) == (["why"], {"k": 1})
    assert m.marshal() == [3, {"message": "x"}, "wamp.error.no_such_realm", ["why"], {"k": 1}]
    assert messages.Abort({}, "r", kwargs={"a": 1}).marshal() == [3, {}, "r", [], {"a": 1}]


def test_error_request_type():
    for rt in (16, 32, 34, 48, 64, 66, 68):
        assert parse([8, rt, 1, {}, "e"]).request_type == rt
    for rt in (0, 1, 8, 49, 70, True, "48"):
        _raises([8, rt, 1, {}, "e"], "ERROR", "REQUEST.Type")


def test_revocation_request_zero():
    assert parse([35, 0, {"subscription": 5, "reason": "gone"}]).request == 0
    assert parse([67, 0, {"registration": 5}]).marshal() == [67, 0, {"registration": 5}]
    _raises([35, 0], "UNSUBSCRIBED", "Request")
    _raises([67, 0], "UNREGISTERED", "Request")
    _raises([35, 0, {"subscription": "x"}], "UNSUBSCRIBED", "subscription")
    assert messages.Unsubscribed(4).marshal() == [35, 4]


def test_unsubscribe_unregister_options():
    m = parse([34, 1, 2, {"forward_for": []}])
    assert m.options == {"forward_for": []}
    assert m.marshal() == [34, 1, 2, {"forward_for": []}]
    assert parse([34, 1, 2, {}]).marshal() == [34, 1, 2]  # empty Options omitted
    assert messages.Unregister(1, 2).marshal() == [66, 1, 2]
    _raises([34, 1, 2, {"forward_for": "x"}], "UNSUBSCRIBE", "forward_for")
    assert parse([66, 1, 2, {"forward_for": [{"session": 1}]}]).marshal() == [66, 1, 2, {"forward_for": [{"session": 1}]}]


@pytest.mark.parametrize(
    "wmsg, fragment",
    [
        ([16, 1, {"acknowledge": 1}, "t"], "acknowledge"),
        ([16, 1, {"exclude": [True]}, "t"], "exclude"),
        ([16, 1, {"exclude": [0]}, "t"], "exclude"),
        ([16, 1, {"eligible_authrole": "x"}, "t"], "eligible_authrole"),
        ([32, 1, {"match": "regex"}, "t"], "match"),
        ([64, 1, {"match": "prefixx"}, "p"], "match"),
        ([64, 1, {"invoke": "all"}, "p"], "invoke"),
        ([64, 1, {"concurrency": 0}, "p"], "concurrency"),
        ([48, 1, {"timeout": -1}, "p"], "timeout"),
        ([48, 1, {"timeout": 1.5}, "p"], "timeout"),
        ([48, 1, {"receive_progress": "yes"}, "p"], "receive_progress"),
        ([48, 1, {"ppt_scheme": 1}, "p"], "ppt_scheme"),
        ([49, 1, {"mode": "abort"}], "mode"),
        ([69, 1, {"mode": "skip"}], "mode"),
        ([70, 1, {"progress": 1}], "progress"),
        ([50, 1, {"progress": "true"}], "progress"),
        ([68, 1, 2, {"caller": 0}], "caller"),
        ([36, 1, 2, {"publisher": True}], "publisher"),
        ([36, 1, 2, {"enc_serializer": "yaml"}], "enc_serializer"),
    ],
)
def test_option_validation(wmsg, fragment):
    _raises(wmsg, messages.MESSAGE_CLASSES[wmsg[0]].NAME, fragment)


def test_unknown_options_are_ignored():
    m = parse([48, 1, {"_x_custom": object, "future_option": [1]}, "p"])
    assert m.options["future_option"] == [1]
    assert parse([64, 1, {"match": "wildcard", "invoke": "roundrobin", "concurrency": 2}, "a..b"])


def test_marshal_omits_empty_payload():
    # spec "Empty Arguments and Keyword Arguments"
    assert messages.Call(1, "p").marshal() == [48, 1, {}, "p"]
    assert messages.Call(1, "p", args=[]).marshal() == [48, 1, {}, "p"]
    assert messages.Call(1, "p", args=[], kwargs={}).marshal() == [48, 1, {}, "p"]
    assert messages.Call(1, "p", args=[1], kwargs={}).marshal() == [48, 1, {}, "p", [1]]
    assert messages.Call(1, "p", kwargs={"a": 1}).marshal() == [48, 1, {}, "p", [], {"a": 1}]
    assert messages.Yield(1, args=(1, 2)).marshal() == [70, 1, {}, (1, 2)]
    assert messages.Error(48, 1, None, "e", kwargs={"a": 1}).marshal() == [8, 48, 1, {}, "e", [], {"a": 1}]
    # parsing keeps what was sent
    assert parse([48, 1, {}, "p", []]).args == []


def test_constructor_defaults():
    for m in (messages.Publish(1, "t"), messages.Call(1, "p"), messages.Subscribe(1, "t"),
              messages.Register(1, "p"), messages.Cancel(1), messages.Interrupt(1), messages.Yield(1)):
        assert m.options == {}
    for m in (messages.Event(1, 2), messages.Result(1), messages.Invocation(1, 2),
              messages.Unsubscribed(1), messages.Unregistered(1), messages.Welcome(1)):
        assert m.details == {}
    assert messages.Call(request=3, procedure="p", options=None, args=[1]).args == [1]


def test_equality():
    a = parse([48, 1, {}, "p", [1]])
    assert a == parse([48, 1, {}, "p", [1]])
    assert a != parse([48, 2, {}, "p", [1]])
    assert a != parse([16, 1, {}, "p", [1]])
    assert (a == [48, 1, {}, "p", [1]]) is False


# ---------------------------------------------------------------------------
# payload passthru mode
# ---------------------------------------------------------------------------


def test_passthru_spec_layout():
    # "Payload Passthru Mode": [Payload|binary] in the Arguments position
    opts = {"ppt_scheme": "wamp", "ppt_serializer": "cbor", "ppt_cipher": "xsalsa20poly1305"}
    m = parse([48, 25471, opts, "com.myapp.rpc", [b"\x01\x02"]])
    assert (m.args, m.kwargs, m.payload) == (None, None, b"\x01\x02")
    assert m.marshal() == [48, 25471, opts, "com.myapp.rpc", [b"\x01\x02"]]
    assert parse([48, 1, opts, "p", [b"x"], {}]).marshal() == [48, 1, opts, "p", [b"x"]]
    # router forwarding keeps the layout because it copies ppt_* into Details
    inv = messages.Invocation(9, 8, details={"ppt_scheme": "wamp"}, payload=m.payload)
    assert inv.marshal() == [68, 9, 8, {"ppt_scheme": "wamp"}, [b"\x01\x02"]]
    for name, wmsg in [
        ("YIELD", [70, 1, {"ppt_scheme": "mqtt"}, [b"x"]]),
        ("RESULT", [50, 1, {"ppt_scheme": "mqtt"}, [b"x"]]),
        ("EVENT", [36, 1, 2, {"ppt_scheme": "mqtt"}, [b"x"]]),
        ("PUBLISH", [16, 1, {"ppt_scheme": "mqtt"}, "t", [b"x"]]),
        ("ERROR", [8, 68, 1, {"ppt_scheme": "mqtt"}, "e", [b"x"]]),
        ("INVOCATION", [68, 1, 2, {"ppt_scheme": "mqtt"}, [b"x"]]),
    ]:
        msg = parse(wmsg)
        assert msg.payload == b"x" and msg.args is None, name
        assert msg.marshal() == wmsg, name


def test_passthru_autobahn_layout():
    # Autobahn / test vectors: enc_algo and the binary directly in the slot
    d = {"enc_algo": "cryptobox", "enc_serializer": "msgpack"}
    m = parse([36, 1, 2, d, b"\x00raw"])
    assert (m.args, m.kwargs, m.payload) == (None, None, b"\x00raw")
    assert m.marshal() == [36, 1, 2, d, b"\x00raw"]
    assert parse([16, 1, {"enc_algo": "x_custom"}, "t", b"p"]).payload == b"p"


def test_passthru_errors():
    p = {"ppt_scheme": "wamp"}
    _raises([48, 1, p, "p", [b"a", b"b"]], "CALL", "passthru")
    _raises([48, 1, p, "p", ["not binary"]], "CALL", "passthru")
    _raises([48, 1, p, "p", []], "CALL", "passthru")
    _raises([48, 1, p, "p", [b"a"], {"k": 1}], "CALL", "ArgumentsKw")
    _raises([48, 1, {"enc_algo": "cryptobox"}, "p", b"a", {"k": 1}], "CALL", "ArgumentsKw")
    # bare bytes need a passthru attribute
    _raises([48, 1, {}, "p", b"a"], "CALL", "Arguments")
    # an empty ppt_scheme does not switch passthru mode on (spec: "non-empty value")
    assert parse([48, 1, {"ppt_scheme": ""}, "p", [1, 2]]).args == [1, 2]


# ---------------------------------------------------------------------------
# URIs
# ---------------------------------------------------------------------------

LOOSE_OK = ["com.myapp.topic1", "a", "com.MyApp.Topic-1", "wamp.error.x", "a-b.c:d", "ünï.cödé"]
LOOSE_BAD = ["", ".", "a.", ".a", "a..b", "a b", "a.b#c", "a\tb", "a.b\n", "a\u00a0b"]
STRICT_OK = ["com.myapp.topic1", "a", "a_b.c_1", "0.1"]
STRICT_BAD = LOOSE_BAD + ["com.MyApp", "a-b", "a:b", "ünï"]


@pytest.mark.parametrize("u", LOOSE_OK)
def test_uri_loose_ok(u):
    assert uri.check_uri(u, False)
    assert uri.check_pattern(u, "exact", False)


@pytest.mark.parametrize("u", LOOSE_BAD)
def test_uri_loose_bad(u):
    assert not uri.check_uri(u, False)


@pytest.mark.parametrize("u", STRICT_OK)
def test_uri_strict_ok(u):
    assert uri.check_uri(u, True)


@pytest.mark.parametrize("u", STRICT_BAD)
def test_uri_strict_bad(u):
    assert not uri.check_uri(u, True)


def test_uri_non_string():
    for bad in (None, 1, b"a.b", ["a"]):
        assert not uri.check_uri(bad, False)
        assert not uri.check_pattern(bad, "exact", False)


def test_uri_empty_components():
    for u in ("com.myapp..userevent", "..", ".a", "a.", "", "a"):
        assert uri.check_uri(u, False, allow_empty=True)
        assert uri.check_uri(u, True, allow_empty=True)
        assert uri.check_pattern(u, "wildcard", True)
    for u in ("a..b c", "a.#.b", "a. .b"):
        assert not uri.check_uri(u, False, allow_empty=True)
        assert not uri.check_pattern(u, "wildcard", False)
    assert not uri.check_uri("a..B", True, allow_empty=True)


def test_uri_prefix_patterns():
    # "Prefix Matching": a string prefix; only the last component may be empty
    for u in ("com.myapp.topic.emergency", "com.myapp.", "com", ""):
        assert uri.check_pattern(u, "prefix", True)
        assert uri.check_pattern(u, "prefix", False)
    for u in ("com..x", ".com", "..", "com..", "a b."):
        assert not uri.check_pattern(u, "prefix", False)
    assert not uri.check_pattern("Com.", "prefix", True)
    assert not uri.check_pattern("a..b", "exact", False)
    assert not uri.check_pattern("a.b", "regex", False)


# ---------------------------------------------------------------------------
# serializers
# ---------------------------------------------------------------------------


def test_registry():
    assert set(SERIALIZERS_BY_SUBPROTOCOL) == {
        "wamp.2.json", "wamp.2.msgpack", "wamp.2.cbor",
        "wamp.2.json.batched", "wamp.2.msgpack.batched", "wamp.2.cbor.batched",
    }
    assert {k: s.NAME for k, s in SERIALIZERS_BY_RAWSOCKET_ID.items()} == {1: "json", 2: "msgpack", 3: "cbor"}
    assert set(SERIALIZERS_BY_NAME) == {"json", "msgpack", "cbor"}
    for sub, s in SERIALIZERS_BY_SUBPROTOCOL.items():
        assert s.SUBPROTOCOL == sub
        assert s.BATCHED == sub.endswith(".batched")
        assert s.BINARY == (s.NAME != "json")
        assert (s.RAWSOCKET_ID is None) == s.BATCHED
    s = create_serializer("cbor.batched")
    assert s.SUBPROTOCOL == "wamp.2.cbor.batched" and s is not SERIALIZERS_BY_SUBPROTOCOL[s.SUBPROTOCOL]
    assert create_serializer("wamp.2.json").SUBPROTOCOL == "wamp.2.json"
    with pytest.raises(ValueError):
        create_serializer("ubjson")


SAMPLE = [48, 7814135, {"timeout": 10}, "com.p", ["Hello", 1, 2.5, None, True, {"x": [b"\x00\xff"]}], {"b": b"bin"}]


@pytest.mark.parametrize("name", sorted(SERIALIZERS_BY_SUBPROTOCOL))
def test_serializer_roundtrip(name):
    s = SERIALIZERS_BY_SUBPROTOCOL[name]
    data = s.serialize(SAMPLE)
    assert isinstance(data, bytes)
    assert s.unserialize(data) == [SAMPLE]
    assert s.unserialize_one(data) == SAMPLE
    assert s.unserialize_one(bytearray(data)) == SAMPLE
    assert s.unserialize_one(memoryview(data)) == SAMPLE


@pytest.mark.parametrize("name", sorted(SERIALIZERS_BY_SUBPROTOCOL))
@pytest.mark.parametrize("value", [{"a": 1}, 1, "x", None])
def test_serializer_rejects_non_list(name, value):
    s = SERIALIZERS_BY_SUBPROTOCOL[name]
    base = SERIALIZERS_BY_NAME[s.NAME]
    data = base.serialize(value)
    if s.BATCHED:
        data = s.serialize_batch([value])
    with pytest.raises(SerializationError, match="must be a list"):
        s.unserialize(data)


@pytest.mark.parametrize("name", ["json", "msgpack", "cbor"])
def test_serializer_rejects_garbage(name):
    s = SERIALIZERS_BY_NAME[name]
    for junk in (b"", b"\xc1\xff\xfe", b"[1, 2", b"\x93\x01"):
        with pytest.raises(SerializationError):
            s.unserialize_one(junk)
    with pytest.raises(SerializationError):
        s.serialize([object()])


def test_serialization_error_is_protocol_error():
    assert issubclass(SerializationError, ProtocolError)


def test_msgpack_rejects_non_string_map_keys():
    with pytest.raises(SerializationError):
        SERIALIZERS_BY_NAME["msgpack"].unserialize_one(msgpack.packb([1, {1: 2}]))
    with pytest.raises(SerializationError):
        SERIALIZERS_BY_NAME["msgpack"].serialize([1, 2**64])
    # bin and str stay distinct
    assert SERIALIZERS_BY_NAME["msgpack"].unserialize_one(msgpack.packb([b"x", "x"], use_bin_type=True)) == [b"x", "x"]


def test_cbor_rejects_unhashable_keys():
    with pytest.raises(SerializationError):
        SERIALIZERS_BY_NAME["cbor"].unserialize_one(cbor2.dumps([1, {(1, 2): 3}]))


# -- JSON binary convention ("Binary support in JSON") ----------------------


def test_json_binary_spec_example():
    s = SERIALIZERS_BY_NAME["json"]
    data = bytes.fromhex("10e3ff9053075c526f5fc06d4fe37cdb")
    assert s.serialize([data]) == b'["\\u0000EOP/kFMHXFJvX8BtT+N82w=="]'
    assert s.unserialize_one(b'["\\u0000EOP/kFMHXFJvX8BtT+N82w=="]') == [data]


def test_json_binary_nested():
    s = SERIALIZERS_BY_NAME["json"]
    msg = [16, 1, {"k": b"\x01"}, "t", [b"", [b"\xfe", {"x": b"yz"}], "plain"], {"kw": {"deep": [b"\x00"]}}]
    text = s.serialize(msg)
    assert b"\\u0000" in text and b"plain" in text
    assert s.unserialize_one(text) == msg
    # str input (a WebSocket text frame)
    assert s.unserialize_one(text.decode()) == msg
    # bytearray / memoryview payloads are encoded as binary too
    assert s.unserialize_one(s.serialize([bytearray(b"ab"), memoryview(b"cd")])) == [b"ab", b"cd"]


def test_json_without_binary_untouched():
    s = SERIALIZERS_BY_NAME["json"]
    assert s.unserialize_one(b'[1, "a\\\\u0000b", "\\u00e9"]') == [1, "a\\u0000b", "\u00e9"]


def test_json_invalid_base64():
    s = SERIALIZERS_BY_NAME["json"]
    for bad in (b'["\\u0000***"]', b'["\\u0000abc"]', b'[{"a": ["\\u0000\xc3\xa9"]}]'):
        with pytest.raises(SerializationError, match="base64"):
            s.unserialize_one(bad)


def test_json_big_int():
    s = SERIALIZERS_BY_NAME["json"]
    with pytest.raises(SerializationError):
        s.serialize([2**64])
    # beyond 64 bit orjson yields a float, which then fails the id check
    with pytest.raises(ProtocolError, match="id"):
        parse(s.unserialize_one(b"[17, 1, 18446744073709551616]"))


# -- batched transports ("Message Batching") -------------------------------


def test_json_batched_framing():
    s = create_serializer("json.batched")
    assert s.serialize([1, 2]) == b"[1,2]\x1e"
    assert s.serialize_batch([[1], [2, "x"]]) == b'[1]\x1e[2,"x"]\x1e'
    assert s.unserialize(b'[1]\x1e[2,"\\u0000AQ=="]\x1e') == [[1], [2, b"\x01"]]
    assert s.unserialize_one(b"[1]\x1e") == [1]
    with pytest.raises(SerializationError, match="terminated"):
        s.unserialize(b"[1]\x1e[2]")
    with pytest.raises(SerializationError, match="empty"):
        s.unserialize(b"")
    with pytest.raises(SerializationError):
        s.unserialize(b"\x1e")  # an empty message
    with pytest.raises(SerializationError, match="batch of 1"):
        s.unserialize_one(b"[1]\x1e[2]\x1e")
    with pytest.raises(SerializationError):
        s.serialize_batch([])


def test_json_batched_autobahn_separator():
    """autobahn-python (and Crossbar.io) terminate batched JSON with 0x18 (Python's b"\\30"), the
    spec with 0x1e: both are read, and the variant for a peer answers in its own."""
    from autobahn.wamp.serializer import JsonSerializer

    from wampfabric.protocol.serializers import JSON_BATCHED_AUTOBAHN, JSON_BATCHED_SPEC

    theirs = JsonSerializer(batched=True)
    s = create_serializer("json.batched")
    from autobahn.wamp.message import Hello
    from autobahn.wamp.role import RoleSubscriberFeatures

    data, _ = theirs.serialize(Hello("realm1", {"subscriber": RoleSubscriberFeatures()}))
    assert data.endswith(b"\x18")
    (hello,) = s.unserialize(data)
    assert hello[:2] == [1, "realm1"] and "subscriber" in hello[2]["roles"]
    assert s.variant_for(data) is JSON_BATCHED_AUTOBAHN and s.variant_for(b"[1]\x1e") is JSON_BATCHED_SPEC
    reply = JSON_BATCHED_AUTOBAHN.serialize_batch([[2, 1, {"roles": {"broker": {}}}], [36, 5, 6, {}, ["x"]]])
    assert [m.__class__.__name__ for m in theirs.unserialize(reply)] == ["Welcome", "Event"]
    with pytest.raises(SerializationError, match="terminated"):
        s.unserialize(b"[1]\x18[2]")


@pytest.mark.parametrize("name", ["msgpack", "cbor"])
def test_length_prefixed_batched_framing(name):
    plain = SERIALIZERS_BY_NAME[name]
    s = create_serializer(name + ".batched")
    one, two = plain.serialize([1]), plain.serialize([2, "x"])
    assert s.serialize([1]) == struct.pack(">I", len(one)) + one
    batch = s.serialize_batch([[1], [2, "x"]])
    assert batch == struct.pack(">I", len(one)) + one + struct.pack(">I", len(two)) + two
    assert s.unserialize(batch) == [[1], [2, "x"]]
    assert s.unserialize(bytearray(batch)) == [[1], [2, "x"]]
    with pytest.raises(SerializationError, match="empty"):
        s.unserialize(b"")
    with pytest.raises(SerializationError, match="truncated"):
        s.unserialize(batch + b"\x00\x00")
    with pytest.raises(SerializationError, match="exceeds"):
        s.unserialize(batch[:-1])
    with pytest.raises(SerializationError):
        s.unserialize(struct.pack(">I", 0))
    with pytest.raises(SerializationError, match="batch of 1"):
        s.unserialize_one(batch)
    with pytest.raises(NotImplementedError):
        plain.serialize_batch([[1]])


def test_batched_decode_error_keeps_bytearray_resizable():
    s = create_serializer("msgpack.batched")
    buf = bytearray(struct.pack(">I", 2) + b"\xc1\xc1")
    with pytest.raises(SerializationError):
        s.unserialize(buf)
    buf += b"x"  # would raise BufferError if a memoryview were still exported


# ---------------------------------------------------------------------------
# RawSocket
# ---------------------------------------------------------------------------


def test_handshake_parse():
    assert rawsocket.parse_handshake(b"\x7f\xf2\x00\x00") == (15, 2)
    assert rawsocket.parse_handshake(bytearray(b"\x7f\x01\x00\x00")) == (0, 1)
    assert rawsocket.parse_handshake(b"\x7f\x33\x00\x00", supported={1, 2, 3}) == (3, 3)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"GET ", None),  # not RawSocket (e.g. HTTP on a shared port)
        (b"\x7f\xf2\x00", None),
        (b"\x7f\xf2\x00\x00\x00", None),
        (b"\x7f\xf2\x00\x01", rawsocket.ERROR_RESERVED_BITS),
        (b"\x7f\xf2\x80\x00", rawsocket.ERROR_RESERVED_BITS),
        (b"\x7f\xf0\x00\x00", rawsocket.ERROR_SERIALIZER_UNSUPPORTED),
        (b"\x7f\xf5\x00\x00", rawsocket.ERROR_SERIALIZER_UNSUPPORTED),  # flatbuffers, not in supported
    ],
)
def test_handshake_errors(data, code):
    with pytest.raises(rawsocket.RawSocketHandshakeError) as info:
        rawsocket.parse_handshake(data, supported=SERIALIZERS_BY_RAWSOCKET_ID)
    assert info.value.code == code
    assert isinstance(info.value, ProtocolError)


def test_handshake_replies():
    assert rawsocket.build_handshake_reply(15, 3) == b"\x7f\xf3\x00\x00"
    assert rawsocket.build_client_handshake(0, 1) == b"\x7f\x01\x00\x00"
    assert rawsocket.build_error_reply(rawsocket.ERROR_SERIALIZER_UNSUPPORTED) == b"\x7f\x10\x00\x00"
    assert rawsocket.build_error_reply(rawsocket.ERROR_MAX_LENGTH_UNACCEPTABLE) == b"\x7f\x20\x00\x00"
    assert rawsocket.build_error_reply(rawsocket.ERROR_RESERVED_BITS) == b"\x7f\x30\x00\x00"
    assert rawsocket.build_error_reply(rawsocket.ERROR_MAX_CONNECTIONS) == b"\x7f\x40\x00\x00"
    for bad in (0, 16, -1):
        with pytest.raises(ValueError):
            rawsocket.build_error_reply(bad)
    for exp, ser in ((16, 1), (-1, 1), (0, 0), (0, 16)):
        with pytest.raises(ValueError):
            rawsocket.build_handshake_reply(exp, ser)


def test_client_side_handshake():
    req = rawsocket.build_client_handshake(9, 3)
    exp, ser = rawsocket.parse_handshake(req)
    reply = rawsocket.build_handshake_reply(12, ser)
    assert rawsocket.parse_handshake_reply(reply, 3) == 12
    with pytest.raises(rawsocket.RawSocketHandshakeError) as info:
        rawsocket.parse_handshake_reply(rawsocket.build_error_reply(4), 3)
    assert info.value.code == 4 and "maximum connection count" in str(info.value)
    with pytest.raises(rawsocket.RawSocketHandshakeError) as info:
        rawsocket.parse_handshake_reply(rawsocket.build_handshake_reply(12, 2), 3)
    assert info.value.code is None
    for bad in (b"\x7e\xf3\x00\x00", b"\x7f\xf3\x00\x01", b"\x7f\xf3"):
        with pytest.raises(rawsocket.RawSocketHandshakeError):
            rawsocket.parse_handshake_reply(bad, 3)


def test_length_helpers():
    assert rawsocket.max_length(0) == 512 and rawsocket.max_length(15) == 2**24
    assert rawsocket.length_exponent(512) == 0
    assert rawsocket.length_exponent(1023) == 0
    assert rawsocket.length_exponent(1024) == 1
    assert rawsocket.length_exponent(2**24) == 15
    assert rawsocket.length_exponent(2**30) == 15
    assert rawsocket.length_exponent(10) == 0
    for e in range(16):
        assert rawsocket.length_exponent(rawsocket.max_length(e)) == e
    with pytest.raises(ValueError):
        rawsocket.max_length(16)


def test_frame_header():
    assert rawsocket.frame_header(0, 5) == b"\x00\x00\x00\x05"
    assert rawsocket.frame_header(1, 0) == b"\x01\x00\x00\x00"
    assert rawsocket.frame_header(2, 2**24 - 1) == b"\x02\xff\xff\xff"
    # exactly 16M: the X bit (0x08 in the first octet), length bits zero
    assert rawsocket.frame_header(0, 2**24) == b"\x08\x00\x00\x00"
    assert rawsocket.frame_header(2, 2**24) == b"\x0a\x00\x00\x00"
    for args in ((0, 2**24 + 1), (3, 1), (-1, 1), (0, -1)):
        with pytest.raises(ValueError):
            rawsocket.frame_header(*args)
    assert rawsocket.encode_frame(b"abc", rawsocket.FRAME_PING) == b"\x01\x00\x00\x03abc"


def _stream():
    frames = [(0, b"[1,2]"), (1, b"ping!"), (2, b""), (0, bytes(range(256)) * 3), (0, b"x")]
    return frames, b"".join(rawsocket.encode_frame(p, t) for t, p in frames)


def test_frame_reader_coalesced():
    frames, data = _stream()
    reader = rawsocket.FrameReader(max_length=1024)
    assert reader.feed(data) == frames
    assert reader.buffered == 0
    assert reader.feed(b"") == []


def test_frame_reader_split_everywhere():
    frames, data = _stream()
    for cut in range(len(data) + 1):
        reader = rawsocket.FrameReader(1024)
        got = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert got == frames, cut
        assert reader.buffered == 0


def test_frame_reader_byte_by_byte():
    frames, data = _stream()
    reader = rawsocket.FrameReader(1024)
    got = []
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
    assert got == frames


def test_frame_reader_accepts_bytes_like():
    frames, data = _stream()
    reader = rawsocket.FrameReader(1024)
    got = reader.feed(memoryview(data)[:7]) + reader.feed(bytearray(data[7:]))
    assert got == frames and all(type(p) is bytes for _, p in got)


def test_frame_reader_large_frame_in_small_chunks_is_linear():
    payload = b"z" * (4 * 2**20)
    data = rawsocket.encode_frame(payload)
    reader = rawsocket.FrameReader()
    t0 = time.perf_counter()
    got = []
    for i in range(0, len(data), 1024):
        got += reader.feed(data[i : i + 1024])
    elapsed = time.perf_counter() - t0
    assert got == [(0, payload)]
    # 4096 feeds; quadratic copying would move ~8 GB and take many seconds
    assert elapsed < 2.0


def test_frame_reader_16m_frame():
    reader = rawsocket.FrameReader()
    payload = bytes(2**24)
    assert reader.feed(rawsocket.frame_header(0, 2**24) + payload) == [(0, payload)]


@pytest.mark.parametrize(
    "header, fragment",
    [
        (b"\x03\x00\x00\x01", "frame type"),
        (b"\x07\x00\x00\x01", "frame type"),
        (b"\x10\x00\x00\x01", "reserved"),
        (b"\x80\x00\x00\x01", "reserved"),
        (b"\x08\x00\x00\x01", "X bit"),
    ],
)
def test_frame_reader_invalid_header(header, fragment):
    reader = rawsocket.FrameReader()
    with pytest.raises(ProtocolError, match=fragment):
        reader.feed(header)


def test_frame_reader_oversize_detected_from_header():
    reader = rawsocket.FrameReader(max_length=512)
    assert reader.feed(rawsocket.encode_frame(b"a" * 512)) == [(0, b"a" * 512)]
    # fails as soon as the header is in, before any payload is buffered
    with pytest.raises(ProtocolError, match="exceeds"):
        reader.feed(rawsocket.frame_header(0, 513))
    reader = rawsocket.FrameReader(max_length=512)
    header = rawsocket.frame_header(1, 100000)
    assert reader.feed(header[:2]) == []  # partial header: nothing to judge yet
    with pytest.raises(ProtocolError, match="exceeds"):
        reader.feed(header[2:])
    with pytest.raises(ValueError):
        rawsocket.FrameReader(max_length=2**24 + 1)


# ---------------------------------------------------------------------------
# error URIs
# ---------------------------------------------------------------------------


def test_error_uris():
    assert errors.NO_SUCH_PROCEDURE == "wamp.error.no_such_procedure"
    assert errors.CLOSE_REALM == "wamp.close.close_realm"
    assert errors.GOODBYE_AND_OUT == "wamp.close.goodbye_and_out"
    assert errors.SYSTEM_SHUTDOWN == "wamp.close.system_shutdown"
    assert errors.CLOSE_NORMAL == "wamp.close.normal"
    assert errors.KILLED == "wamp.close.killed"
    assert errors.OPTION_DISALLOWED_DISCLOSE_ME == "wamp.error.option_disallowed.disclose_me"
    for name in dir(errors):
        if name.isupper():
            value = getattr(errors, name)
            assert uri.check_uri(value, True), name
            assert value.startswith(("wamp.error.", "wamp.close.")), name
