"""URIs that real applications use: camelCase, hyphens, uppercase,
digits, non-ASCII ... are valid under the loose URI rule, which is a realm's default
(as in Crossbar.io); only a realm configured with ``"uri_check": "strict"`` applies
the strict rule (components ``[0-9a-z_]+``).

Every test runs autobahn-python against a real node started from a Crossbar.io
config (tests/conftest.py), so it can also run against Crossbar.io itself
(``WAMPFABRIC_TEST_AGAINST=crossbar``).
"""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from support import wamp_raw
from support.nodes import node_config, start_node, stop_node
from support.autobahn_client import closing_sessions, connect, expect_error, uid, w

STRICT_REALM = "strictrealm"


def loose_and_strict_config(ports, rs_path) -> dict:
    cfg = node_config(ports, rs_path)
    realms = cfg["workers"][0]["realms"]
    anonymous = realms[0]["roles"][0]
    realms.append({"name": STRICT_REALM, "roles": [anonymous], "options": {"uri_check": "strict"}})
    return cfg


@pytest.fixture(scope="module")
def unode():
    n = start_node(loose_and_strict_config)
    yield n
    stop_node(n)


@pytest.fixture
async def session(unode):
    async def _connect(transport="websocket", serializer="json", realm=None):
        return await connect(unode, transport, serializer, realm=realm)

    async for connect_ in closing_sessions(unode, _connect):
        yield connect_


# URI components every app uses; each is valid under the loose rule, invalid under the strict one
APP_COMPONENTS = {
    "camelCase": "getUser",
    "hyphen": "on-update",
    "uppercase": "USER_EVENTS",
    "leading-digit": "1st",
    "non-ascii": "grüße",
    "punctuation": "user@host:8080/x",
}


@pytest.mark.parametrize("comp", list(APP_COMPONENTS.values()), ids=list(APP_COMPONENTS))
async def test_register_and_call_app_uris(session, comp):
    callee = await session("websocket", "json")
    caller = await session("rawsocket-tcp", "msgpack")
    proc = f"com.myApp.{uid()}.{comp}"
    await w(callee.register(lambda x: f"hello {x}", proc))
    assert await w(caller.call(proc, "alice")) == "hello alice"


@pytest.mark.parametrize("comp", list(APP_COMPONENTS.values()), ids=list(APP_COMPONENTS))
async def test_subscribe_and_publish_app_uris(session, comp):
    sub = await session("websocket", "cbor")
    pub = await session("rawsocket-unix", "json")
    topic = f"com.myApp.{uid()}.{comp}"
    got: asyncio.Queue = asyncio.Queue()
    await w(sub.subscribe(lambda x: got.put_nowait(x), topic))
    await w(pub.publish(topic, "v1", options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == "v1"


async def test_camelcase_procedure_and_hyphenated_topic(session):
    """URIs as applications write them: com.myapp.getUser, com.myapp.on-update."""
    a = await session()
    b = await session("rawsocket-tcp", "cbor")
    await w(a.register(lambda: {"name": "alice"}, "com.myapp.getUser"))
    assert await w(b.call("com.myapp.getUser")) == {"name": "alice"}
    got: asyncio.Queue = asyncio.Queue()
    await w(a.subscribe(lambda x: got.put_nowait(x), "com.myapp.on-update"))
    await w(b.publish("com.myapp.on-update", 42, options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == 42


async def test_prefix_registration_matches_hyphenated_uri(session):
    """Prefix matching is string prefix matching (spec): ``com.example.myobject1``
    matches ``com.example.myobject1-mysubobject1``."""
    callee = await session()
    caller = await session("rawsocket-tcp", "json")
    base = f"com.example.{uid()}.myobject1"
    seen = []

    def handler(*args, **kwargs):
        seen.append(kwargs["details"].procedure)
        return "ok"

    await w(callee.register(handler, base, options=RegisterOptions(match="prefix", details_arg="details")))
    assert await w(caller.call(f"{base}-mysubobject1")) == "ok"
    assert await w(caller.call(f"{base}.MySubObject2")) == "ok"
    assert seen == [f"{base}-mysubobject1", f"{base}.MySubObject2"]


async def test_prefix_subscription_matches_hyphenated_uri(session):
    sub = await session()
    pub = await session("rawsocket-tcp", "msgpack")
    base = f"com.example.{uid()}.myobject1"
    got: asyncio.Queue = asyncio.Queue()

    def on_event(x, details=None):
        got.put_nowait((x, details.topic))

    await w(sub.subscribe(on_event, base, options=SubscribeOptions(match="prefix", details_arg="details")))
    await w(pub.publish(f"{base}-mysubobject1", 1, options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == (1, f"{base}-mysubobject1")


async def test_wildcard_subscription_with_app_uris(session):
    sub = await session()
    pub = await session("rawsocket-tcp", "json")
    app = f"com.myApp-{uid()}"
    got: asyncio.Queue = asyncio.Queue()

    def on_event(x, details=None):
        got.put_nowait((x, details.topic))

    await w(sub.subscribe(on_event, f"{app}..on-Update", options=SubscribeOptions(match="wildcard",
                                                                               details_arg="details")))
    await w(pub.publish(f"{app}.Device-7.on-Update", "x", options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == ("x", f"{app}.Device-7.on-Update")


# what the loose rule still refuses: empty components (outside patterns), whitespace, '#'.
# autobahn-python refuses most of these client-side, so they go on the wire raw.
# spec MUST (ERROR wamp.error.invalid_uri); Crossbar.io deviates: it drops the connection for most of
# them (autobahn's message parser raises), and it accepts "com.myapp.getUser\n" (its regexes end
# with "$", which matches before a trailing newline), which the spec's "no whitespace" forbids.
LOOSE_INVALID = {
    "hash": "com.myapp.a#b",
    "space": "com.myapp.get User",
    "tab": "com.myapp.get\tUser",
    "newline-end": "com.myapp.getUser\n",
    "empty-component": "com.myapp..getUser",
    "trailing-dot": "com.myapp.",
    "empty": "",
}


@pytest.mark.parametrize("uri", list(LOOSE_INVALID.values()), ids=list(LOOSE_INVALID))
@pytest.mark.parametrize("action", ["publish", "subscribe", "call", "register"])
def test_loose_rule_still_refuses(unode, action, uri):
    if uri == "com.myapp." and action == "subscribe":
        pytest.skip("covered by test_prefix_pattern_rules")
    with wamp_raw.WebSocketPeer(unode.ws_url, "json") as p:
        assert p.hello()[0] == wamp_raw.WELCOME
        req = p.next_id()
        msg = {
            "publish": [wamp_raw.PUBLISH, req, {"acknowledge": True}, uri, [1]],
            "subscribe": [wamp_raw.SUBSCRIBE, req, {}, uri],
            "call": [wamp_raw.CALL, req, {}, uri, [1]],
            "register": [wamp_raw.REGISTER, req, {}, uri],
        }[action]
        r = p.request(msg)
        assert r[:3] == [wamp_raw.ERROR, msg[0], req] and r[4] == "wamp.error.invalid_uri", r
    unode.assert_alive()


@pytest.mark.parametrize("pattern,match,ok", [
    ("com.myApp.", "prefix", True),
    ("com.myApp", "prefix", True),
    ("", "prefix", True),
    ("com..myApp", "prefix", False),
    ("com.my App.", "prefix", False),
    ("com..On-Update", "wildcard", True),
    ("..", "wildcard", True),
    ("com.#.x", "wildcard", False),
    ("com. .x", "wildcard", False),
])
@pytest.mark.parametrize("action", ["subscribe", "register"])
def test_pattern_rules(unode, action, pattern, match, ok):
    """Patterns follow the loose rule too; empty components only where the policy allows them.
    (spec MUST; Crossbar.io deviates: drops the connection instead of ERROR for whitespace and '#'.)"""
    if action == "register" and pattern in ("", ".."):
        pytest.skip("a catch-all registration would swallow other tests' calls")
    with wamp_raw.WebSocketPeer(unode.ws_url, "json") as p:
        assert p.hello()[0] == wamp_raw.WELCOME
        code = wamp_raw.SUBSCRIBE if action == "subscribe" else wamp_raw.REGISTER
        r = p.request([code, p.next_id(), {"match": match}, pattern])
        if ok:
            assert r[0] == code + 1, r
        else:
            assert r[0] == wamp_raw.ERROR and r[4] == "wamp.error.invalid_uri", r


# -- a realm with "uri_check": "strict" ----------------------------------------------


async def test_strict_realm_refuses_app_uris(session):
    s = await session(realm=STRICT_REALM)
    await expect_error(s.register(lambda: 1, "com.myapp.getUser"), "wamp.error.invalid_uri")
    await expect_error(s.subscribe(lambda: 1, "com.myapp.on-update"), "wamp.error.invalid_uri")
    await expect_error(s.call("com.myapp.getUser"), "wamp.error.invalid_uri")
    await expect_error(s.publish("com.myapp.on-update", options=PublishOptions(acknowledge=True)),
                       "wamp.error.invalid_uri")
    await expect_error(s.subscribe(lambda: 1, "com.example.myObject.", options=SubscribeOptions(match="prefix")),
                       "wamp.error.invalid_uri")
    # strict URIs work there
    proc = f"com.myapp.get_user_{uid()}"
    await w(s.register(lambda: "strict-ok", proc))
    assert await w(s.call(proc)) == "strict-ok"
    got: asyncio.Queue = asyncio.Queue()
    topic = f"com.myapp.on_update_{uid()}"
    await w(s.subscribe(lambda x: got.put_nowait(x), topic))
    other = await session("rawsocket-tcp", "json", realm=STRICT_REALM)
    await w(other.publish(topic, 7, options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == 7


async def test_meta_api_on_loose_realm(session):
    """The meta API (router-owned wamp.* procedures and topics) works with app URIs."""
    a = await session()
    topic = f"com.myApp.{uid()}.on-Update"
    sub = await w(a.subscribe(lambda *x: None, topic))
    assert await w(a.call("wamp.subscription.lookup", topic)) == sub.id
    assert sub.id in await w(a.call("wamp.subscription.match", topic))
    proc = f"com.myApp.{uid()}.getUser"
    reg = await w(a.register(lambda: 1, proc))
    assert await w(a.call("wamp.registration.lookup", proc)) == reg.id


# -- the node management realm ("crossbar") follows the same default ----------------------


def test_worker_ids_with_app_style_names():
    """Worker IDs are part of the management URIs (``crossbar.worker.<id>.get_status``): an ID
    such as ``Router-1``, fine for Crossbar.io, must not stop the node from starting."""

    def config(ports, rs_path):
        cfg = node_config(ports, rs_path)
        cfg["workers"][0]["id"] = "Router-1"
        return cfg

    n = start_node(config)
    try:
        with wamp_raw.RawSocketPeer(port=n.rawsocket_port, serializer="json") as p:
            assert p.hello()[0] == wamp_raw.WELCOME
            r = p.request([wamp_raw.CALL, p.next_id(), {}, "wamp.session.count", []])
            assert r[0] == wamp_raw.RESULT, r
        assert "Router-1" in n.log()
        n.assert_alive()
    finally:
        stop_node(n)
