"""``wamp.session.get`` and ``wamp.session.on_join`` describe a session as Crossbar.io 26.10 does
(Autobahn's SessionDetails with a full TransportDetails), seen by autobahn-python clients on
WebSocket and RawSocket.  The shapes were read from Crossbar.io's answers in ``make compat``."""

from __future__ import annotations

import pytest

from support.autobahn_client import subscribe, until, w

SESSION_KEYS = {"realm", "session", "authid", "authrole", "authmethod", "authprovider", "authextra", "serializer",
                "transport", "resumed", "resumable", "resume_token"}
TRANSPORT_KEYS = {"channel_type", "channel_framing", "channel_serializer", "own", "peer", "is_server", "own_pid",
                  "own_tid", "own_fd", "is_secure", "channel_id", "peer_cert", "websocket_protocol",
                  "websocket_extensions_in_use", "http_headers_received", "http_headers_sent", "http_cbtid"}


def check_websocket(d: dict, serializer: str) -> None:
    assert set(d) == SESSION_KEYS, sorted(d)
    assert d["serializer"] is None and (d["resumed"], d["resumable"], d["resume_token"]) == (False, False, None)
    t = d["transport"]
    assert set(t) == TRANSPORT_KEYS, sorted(t)
    assert (t["channel_type"], t["channel_framing"], t["channel_serializer"]) == ("tcp", "websocket", None), t
    assert t["websocket_protocol"] == f"wamp.2.{serializer}" and t["websocket_extensions_in_use"] == []
    assert t["is_server"] is True and t["is_secure"] is False and t["channel_id"] == {} and t["peer_cert"] is None
    assert t["peer"].startswith("tcp4:127.0.0.1:") and isinstance(t["own_pid"], int) and t["own_fd"] == -1
    headers = t["http_headers_received"]
    assert headers["sec-websocket-protocol"].startswith(f"wamp.2.{serializer}"), headers
    assert headers["user-agent"].startswith("AutobahnPython"), headers
    assert t["http_headers_sent"] == {} and t["http_cbtid"] is None  # no cookie tracking on this transport


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_session_get_websocket(ac, anode, serializer):
    s = await ac("websocket", serializer)
    d = await w(s.call("wamp.session.get", s.session_id))
    check_websocket(d, serializer)
    assert d["realm"] == anode.realm and d["session"] == s.session_id


@pytest.mark.parametrize("serializer,ser_id", [("json", 1), ("msgpack", 2), ("cbor", 3)])
async def test_session_get_rawsocket(ac, anode, serializer, ser_id):
    s = await ac("rawsocket-tcp", serializer)
    d = await w(s.call("wamp.session.get", s.session_id))
    assert set(d) == SESSION_KEYS, sorted(d)
    assert d["serializer"] == ser_id and d["realm"] == anode.realm
    t = d["transport"]
    assert set(t) == TRANSPORT_KEYS, sorted(t)
    # Crossbar.io: channel_serializer and the "websocket_protocol" are set on RawSocket, HTTP fields are None
    assert (t["channel_type"], t["channel_framing"], t["channel_serializer"]) == ("tcp", "rawsocket", serializer)
    assert t["websocket_protocol"] == f"wamp.2.{serializer}"
    assert t["http_headers_received"] is None and t["http_headers_sent"] is None
    assert t["websocket_extensions_in_use"] is None and t["http_cbtid"] is None


async def test_on_join_details_are_session_get(ac):
    obs = await ac("websocket", "json")
    joins, _ = await subscribe(obs, "wamp.session.on_join")
    s = await ac("websocket", "cbor")
    (args, _, _), = await until(lambda: [e for e in joins.items if e[0][0]["session"] == s.session_id])
    check_websocket(args[0], "cbor")
