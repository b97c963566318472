"""The message type codes (protocol/codes.py) and the payload tail rule (protocol/payload.py),
each defined once, against the specification and against what the message classes do.

The codes are written out literally here, as the spec's tables list them (basic/messages
"Message Codes and Direction", advanced/messages), so that a wrong constant cannot pass by
being compared with itself.
"""

from __future__ import annotations

import pytest

from wampfabric.protocol import codes
from wampfabric.protocol.messages import (MESSAGE_CLASSES, Abort, Call, Error, Event, Invocation, Publish, Result,
                                          Yield, parse)
from wampfabric.protocol.payload import ENC_KEYS, PPT_KEYS, args_tail, passthru_tail, payload_tail

SPEC_CODES = {
    "HELLO": 1, "WELCOME": 2, "ABORT": 3, "CHALLENGE": 4, "AUTHENTICATE": 5, "GOODBYE": 6, "ERROR": 8,
    "PUBLISH": 16, "PUBLISHED": 17, "SUBSCRIBE": 32, "SUBSCRIBED": 33, "UNSUBSCRIBE": 34, "UNSUBSCRIBED": 35,
    "EVENT": 36, "CALL": 48, "CANCEL": 49, "RESULT": 50, "REGISTER": 64, "REGISTERED": 65, "UNREGISTER": 66,
    "UNREGISTERED": 67, "INVOCATION": 68, "INTERRUPT": 69, "YIELD": 70,
    "EVENT_RECEIVED": 337,  # acknowledged event delivery: Autobahn's and the test vectors' provisional code
}


def test_codes_are_the_spec_codes():
    assert {name: getattr(codes, name) for name in SPEC_CODES} == SPEC_CODES
    assert codes.NAMES == {code: name for name, code in SPEC_CODES.items()}


def test_message_classes_use_the_codes():
    assert {code: cls.NAME for code, cls in MESSAGE_CLASSES.items()} == codes.NAMES


@pytest.mark.parametrize("args,kwargs,tail", [
    (None, None, []),
    ([], None, []),
    ([], {}, []),
    (None, {}, []),
    ([1], None, [[1]]),
    ([1], {}, [[1]]),
    (None, {"a": 1}, [[], {"a": 1}]),
    ([], {"a": 1}, [[], {"a": 1}]),
    ([1], {"a": 1}, [[1], {"a": 1}]),
])
def test_args_tail_omits_empty_elements(args, kwargs, tail):
    assert args_tail(args, kwargs) == tail
    assert payload_tail(args, kwargs, None, {}) == tail


def test_passthru_tail_layouts():
    # spec layout: [Payload] when ppt_scheme is set; Autobahn's layout: the bare payload
    assert passthru_tail(b"p", {"ppt_scheme": "x"}) == [[b"p"]]
    assert passthru_tail(b"p", {"enc_algo": "cryptobox"}) == [b"p"]
    assert passthru_tail(b"p", {"ppt_scheme": ""}) == [b"p"]  # an empty scheme is no scheme
    assert payload_tail([1], {"a": 1}, b"p", {"ppt_scheme": "x"}) == [[b"p"]]  # the payload wins


def test_passthru_tail_copies_the_attributes_of_its_layout():
    meta = {"ppt_scheme": "x", "ppt_serializer": "s", "ppt_cipher": "c", "ppt_keyid": "k",
            "enc_algo": "cryptobox", "acknowledge": True}
    details = {"caller": 7}
    passthru_tail(b"p", meta, details)
    assert details == {"caller": 7, **{k: meta[k] for k in PPT_KEYS}}
    meta = {"enc_algo": "cryptobox", "enc_serializer": "json", "enc_key": "k", "ppt_cipher": "c", "timeout": 5}
    details = {}
    passthru_tail(b"p", meta, details)
    assert details == {k: meta[k] for k in ENC_KEYS}
    details = {}
    payload_tail(None, None, b"p", meta, details)
    assert details == {k: meta[k] for k in ENC_KEYS}
    payload_tail([1], None, None, meta, details := {})
    assert details == {}  # no transparent payload: nothing copied


@pytest.mark.parametrize("msg,wire", [
    (Call(1, "p", {}, [], {}), [48, 1, {}, "p"]),
    (Call(1, "p", {}, [], {"a": 1}), [48, 1, {}, "p", [], {"a": 1}]),
    (Call(1, "p", {"ppt_scheme": "x"}, payload=b"z"), [48, 1, {"ppt_scheme": "x"}, "p", [b"z"]]),
    (Call(1, "p", {"enc_algo": "cryptobox"}, payload=b"z"), [48, 1, {"enc_algo": "cryptobox"}, "p", b"z"]),
    (Publish(2, "t", {}, [1]), [16, 2, {}, "t", [1]]),
    (Event(3, 4, {}, None, {"a": 1}), [36, 3, 4, {}, [], {"a": 1}]),
    (Invocation(5, 6, {}, [1], {}), [68, 5, 6, {}, [1]]),
    (Yield(7, {}, []), [70, 7, {}]),
    (Result(8, {"ppt_scheme": "x"}, payload=b"z"), [50, 8, {"ppt_scheme": "x"}, [b"z"]]),
    (Error(48, 9, {}, "e", [], {}), [8, 48, 9, {}, "e"]),
    (Abort({}, "r", None, {"a": 1}), [3, {}, "r", [], {"a": 1}]),
    (Abort({}, "r", [], {}), [3, {}, "r"]),
])
def test_marshal_writes_the_tail_rule(msg, wire):
    assert msg.marshal() == wire
    assert parse(wire).marshal() == wire
