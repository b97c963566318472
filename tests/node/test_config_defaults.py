"""The defaults of config options are defined once, in wampfabric.config.defaults, beside the
checkers of the same options: every default passes its option's check, and the transports,
the realm (its dealer and store), the cookie store, busy polling and the node take theirs from
there rather than from a copy."""

from __future__ import annotations

import copy

from wampfabric.config import defaults
from wampfabric.config.check import check_config
from wampfabric.node import node as node_mod
from wampfabric.personality import Personality
from wampfabric.router import auth as router_auth
from wampfabric.router.realm import Router
from wampfabric.transport import busypoll
from wampfabric.transport.cookies import CookieStore
from wampfabric.transport.rawsocket import RawSocketServerFactory
from wampfabric.transport.websocket import WebSocketServerFactory

ENDPOINT = {"type": "tcp", "port": 8080}


def _config_of_defaults() -> dict:
    """A node config setting every option that has a default to that default."""
    ws_options = {
        "max_message_size": defaults.MAX_MESSAGE_SIZE, "max_outgoing_buffer": defaults.MAX_OUTGOING_BUFFER,
        "hello_timeout": defaults.HELLO_TIMEOUT_MS, "open_handshake_timeout": defaults.OPEN_HANDSHAKE_TIMEOUT_MS,
        "auto_ping_interval": defaults.AUTO_PING_INTERVAL_MS, "auto_ping_timeout": defaults.AUTO_PING_TIMEOUT_MS,
        "allow_null_origin": defaults.ALLOW_NULL_ORIGIN,
    }
    rs_options = {"max_message_size": defaults.MAX_MESSAGE_SIZE, "max_outgoing_buffer": defaults.MAX_OUTGOING_BUFFER,
                  "hello_timeout": defaults.HELLO_TIMEOUT_MS}
    cookie = {"name": defaults.COOKIE_NAME, "length": defaults.COOKIE_LENGTH, "max_age": defaults.COOKIE_MAX_AGE}
    realm = {
        "name": "realm1",
        "options": {"uri_check": defaults.URI_CHECK, "enable_meta_api": defaults.ENABLE_META_API,
                    "max_uri_length": defaults.MAX_URI_LENGTH, "max_pending_calls": defaults.MAX_PENDING_CALLS,
                    "max_pending_invocations": defaults.MAX_PENDING_INVOCATIONS,
                    "default_call_timeout": defaults.DEFAULT_CALL_TIMEOUT,
                    "max_retained_bytes": defaults.MAX_RETAINED_BYTES,
                    "max_history_bytes": defaults.MAX_HISTORY_BYTES},
        "store": {"type": "memory", "limit": defaults.HISTORY_LIMIT,
                  "event-history": [{"uri": "com.example.topic", "limit": defaults.HISTORY_LIMIT}]},
    }
    return {
        "version": 2,
        "controller": {"options": {"shutdown_timeout": defaults.SHUTDOWN_TIMEOUT}},
        "workers": [
            {"type": "router",
             "options": {"busy_poll_us": defaults.BUSY_POLL_US, "auth_throttle": dict(defaults.AUTH_THROTTLE),
                         "restart": defaults.RESTART},
             "realms": [realm],
             "transports": [
                 {"type": "websocket", "endpoint": ENDPOINT, "serializers": list(defaults.SERIALIZERS),
                  "options": ws_options, "cookie": cookie},
                 {"type": "rawsocket", "endpoint": dict(ENDPOINT, port=8081),
                  "serializers": list(defaults.SERIALIZERS), "options": rs_options},
             ]},
            {"type": "container", "options": {"shutdown": defaults.CONTAINER_SHUTDOWN, "restart": defaults.RESTART}},
        ],
    }


def test_every_default_passes_the_check_of_its_option():
    config = _config_of_defaults()
    assert check_config(copy.deepcopy(config), Personality()) == config


async def test_transports_take_their_defaults_from_config_defaults(monkeypatch):
    # the factories read the defaults when they are built: a changed default is what they use
    monkeypatch.setattr(defaults, "MAX_OUTGOING_BUFFER", 12345)
    monkeypatch.setattr(defaults, "HELLO_TIMEOUT_MS", 4321)
    monkeypatch.setattr(defaults, "SERIALIZERS", ("json",))
    monkeypatch.setattr(defaults, "OPEN_HANDSHAKE_TIMEOUT_MS", 2500)
    rs = RawSocketServerFactory(None, {})
    ws = WebSocketServerFactory(None, {})
    for factory in (rs, ws):
        assert factory.max_outgoing_buffer == 12345
        assert factory.hello_timeout == 4.321
    assert [s.NAME for s in rs.serializers.values()] == ["json"]
    assert {s.NAME for s in ws.subprotocols.values()} == {"json"}
    assert ws.open_handshake_timeout == 2.5
    monkeypatch.undo()
    # the message size default is the RawSocket protocol's frame limit, for both transports
    assert RawSocketServerFactory(None, {}).max_message_size == defaults.MAX_MESSAGE_SIZE == 16 * 1024 * 1024
    assert WebSocketServerFactory(None, {}).max_message_size == defaults.MAX_MESSAGE_SIZE


def test_router_cookie_busy_poll_and_node_defaults_are_the_same_objects():
    # identity, not equality: a copy of a default elsewhere would be another object
    realm = Router().start_realm({"name": "realm1"})
    assert realm.dealer.max_pending_calls is defaults.MAX_PENDING_CALLS
    assert realm.dealer.max_pending_invocations is defaults.MAX_PENDING_INVOCATIONS
    assert realm.store.max_retained_bytes is defaults.MAX_RETAINED_BYTES
    assert realm.store.max_history_bytes is defaults.MAX_HISTORY_BYTES
    assert realm.max_uri_length is defaults.MAX_URI_LENGTH
    assert router_auth.THROTTLE_DEFAULTS is defaults.AUTH_THROTTLE
    assert busypoll.DEFAULT_MAX_US is defaults.BUSY_POLL_US
    assert node_mod.DEFAULT_WORKER_STOP_TIMEOUT is defaults.SHUTDOWN_TIMEOUT
    store = CookieStore({})
    assert (store.name, store.length, store.max_age) == (defaults.COOKIE_NAME, defaults.COOKIE_LENGTH,
                                                          defaults.COOKIE_MAX_AGE)
