"""What a client's URIs can make the router keep is bounded.

* A URI longer than the realm's ``max_uri_length`` (default 4096 characters) is
  ``wamp.error.invalid_uri`` and is never cached; the error text does not echo it.
* Every cache keyed by URIs is bounded by entries *and* by the bytes of the URIs it
  keeps alive (``router/urimap.py`` ``UriCache``): URI validity per realm, static
  role answers, dynamic authorizer answers per session, the dealer's route memory.
* End to end: a client publishing (without acknowledgement) to hundreds of distinct
  500 KB topic URIs leaves the router worker's RSS where it was, during and after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from support import wamp_raw
from support.nodes import FULL_PERMS, router_worker, start_node, stop_node
from wampfabric.client import ApplicationError
from wampfabric.protocol.uri import MAX_URI_LENGTH
from wampfabric.router import authorization as authorization_mod
from wampfabric.router import realm as realm_mod
from wampfabric.router import session as session_mod
from wampfabric.router.dealer import MAX_CACHED_ROUTE_BYTES
from wampfabric.router.realm import Router
from wampfabric.router.urimap import UriCache
from wampfabric.transport.local import connect_local

MB = 1024 * 1024
ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


def key_bytes(cache: dict) -> int:
    """Memory of the URI strings a cache's keys keep alive (keys: URIs or (URI, action))."""
    return sum(sys.getsizeof(k if isinstance(k, str) else k[0]) for k in cache)


# -- UriCache ------------------------------------------------------------------------


def test_uri_cache_bounded_by_entries_and_bytes():
    c = UriCache(max_entries=5, max_bytes=10_000)
    for i in range(5):
        c.put(f"com.a{i}", i, f"com.a{i}")
    assert len(c) == 5 and c.map.get("com.a0") == 0
    c.put("com.a5", 5, "com.a5")  # over the entry bound: starts again
    assert c.map == {"com.a5": 5}
    c.clear()
    big = "x" * 3000
    for i in range(10):
        c.put(big + str(i), i, big + str(i))
        assert key_bytes(c.map) <= 10_000 and c.nbytes <= 10_000
        assert c.map[big + str(i)] == i  # what was just put is there
    c.discard(big + "9", big + "9")
    assert c.nbytes == 0 and not c
    # its owner may empty the dict itself (the dealer does when registrations change)
    c.put("com.b", 1, "com.b")
    c.map.clear()
    c.put("com.c", 1, "com.c")
    assert c.nbytes == sys.getsizeof("com.c") + 64
    # an entry bigger than the whole budget is still there right after put (callers rely on it)
    c.put("y" * 20_000, 1, "y" * 20_000)
    assert len(c) == 1


# -- the caches of an in-process router -----------------------------------------------


@pytest.fixture
async def router():
    r = Router()
    r.start_realm({"name": "realm1", "roles": [
        {"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]},
        {"name": "dyn", "authorizer": "com.authz.authorize"},
    ]})
    return r


def long_uri(i: int, n: int = 4000) -> str:
    head = f"com.app.t{i}."
    return head + "x" * (n - len(head))


async def test_uri_validity_and_role_caches_are_bounded_by_bytes(router):
    """1,500 distinct 4,000-character topics (6 MB of URIs) published by one session:
    the realm's URI-validity cache and the role's answer cache keep at most their byte budget."""
    pub = await connect_local(router, "realm1", role="user")
    for i in range(1500):
        await pub.publish(long_uri(i), options={"acknowledge": True})
    realm = router.realms["realm1"]
    assert 0 < key_bytes(realm._valid_uris) <= realm_mod.VALID_URIS_BYTES
    role = realm.roles["user"]
    assert 0 < key_bytes(role._cache) <= authorization_mod.RouterRole.CACHE_BYTES
    # and they still answer right
    await pub.publish(long_uri(1), options={"acknowledge": True})


async def test_dealer_route_memory_is_bounded_by_bytes(router):
    callee = await connect_local(router, "realm1", role="user")
    caller = await connect_local(router, "realm1", role="user")
    await callee.register("com.app.", lambda: 1, options={"match": "prefix"})
    for i in range(700):  # 2.8 MB of procedure URIs
        assert await caller.call(long_uri(i)) == 1
    routes = router.realms["realm1"].dealer._routes
    assert 0 < key_bytes(routes) <= MAX_CACHED_ROUTE_BYTES


async def test_authorizer_answer_cache_is_bounded_by_bytes(router):
    backend = await connect_local(router, "realm1", role="user")
    await backend.register("com.authz.authorize", lambda s, uri, action, opts: {"allow": True, "cache": True})
    user = await connect_local(router, "realm1", role="dyn")
    for i in range(400):  # 1.6 MB of answers worth caching
        await user.publish(long_uri(i), options={"acknowledge": True})
    s = next(s for s in router.realms["realm1"].sessions.values() if s.authrole == "dyn")
    assert 0 < key_bytes(s.authz_cache.map) <= session_mod.MAX_CACHED_ANSWER_BYTES


async def test_over_long_uris_are_invalid_and_not_cached(router):
    s = await connect_local(router, "realm1", role="user")
    ok = "com.app." + "x" * (MAX_URI_LENGTH - 8)
    too_long = ok + "y"
    await s.publish(ok, options={"acknowledge": True})
    calls = [
        s.publish(too_long, options={"acknowledge": True}),
        s.subscribe(too_long, lambda: None),
        s.subscribe(too_long[:-1] + ".", lambda: None, options={"match": "prefix"}),
        s.register(too_long, lambda: None),
        s.call(too_long),
        s.call("wamp.session.add_testament", too_long, [], {}),
    ]
    for aw in calls:
        with pytest.raises(ApplicationError) as e:
            await aw
        assert e.value.error == "wamp.error.invalid_uri", e.value
        text = " ".join(map(str, e.value.args))
        assert len(text) < 400 and "x" * 200 not in text, text
        assert str(len(too_long)) in text, text  # says how long it was
    realm = router.realms["realm1"]
    assert too_long not in realm._valid_uris and ok in realm._valid_uris


async def test_max_uri_length_realm_option():
    r = Router()
    r.start_realm({"name": "short", "options": {"max_uri_length": 200},
                   "roles": [{"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]}]})
    s = await connect_local(r, "short", role="user")
    uri = "com.app." + "x" * 192
    await s.register(uri, lambda: "ok")
    assert await s.call(uri) == "ok"
    with pytest.raises(ApplicationError) as e:
        await s.call(uri + "y")
    assert e.value.error == "wamp.error.invalid_uri"
    assert "max_uri_length 200" in " ".join(map(str, e.value.args))
    # the meta API of that realm still works
    assert await s.call("wamp.session.count") >= 1


@pytest.mark.parametrize("value,ok", [(4096, True), (128, True), (100, False), (2_000_000, False), ("long", False)])
def test_check_documents_max_uri_length(tmp_path, value, ok):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "workers": [{"type": "router", "realms": [
        {"name": "realm1", "options": {"max_uri_length": value, "uri_check": "loose"}}]}]}))
    r = subprocess.run([sys.executable, "-m", "wampfabric", "check", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1
        assert "$.workers[0].realms[0].options.max_uri_length" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_check_documents_uri_check(tmp_path):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "config.json").write_text(json.dumps({"version": 2, "workers": [{"type": "router", "realms": [
        {"name": "realm1", "options": {"uri_check": "lenient"}}]}]}))
    r = subprocess.run([sys.executable, "-m", "wampfabric", "check", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "$.workers[0].realms[0].options.uri_check" in r.stderr
    assert "'loose' (the default" in r.stderr and "'strict'" in r.stderr, r.stderr


# -- end to end: router worker memory --------------------------------------------------


def one_realm_config(ports, rs_path) -> dict:
    big = 2 * MB
    return {
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}],
            "transports": [
                {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": p},
                 "serializers": ["json", "msgpack"], "options": {"max_message_size": big}}
                for p in (ports["web"], ports["rawsocket"], ports["restricted"])
            ],
        }],
    }


def rss_settled(proc: psutil.Process, limit: int, timeout: float = 10.0) -> int:
    """The RSS once it is at most ``limit`` (or the last reading after ``timeout``): freed memory
    may take a moment to be given back."""
    deadline = time.monotonic() + timeout
    while True:
        rss = proc.memory_info().rss
        if rss <= limit or time.monotonic() > deadline:
            return rss
        time.sleep(0.2)


@pytest.fixture(scope="module")
def bnode():
    n = start_node(one_realm_config)
    yield n
    stop_node(n)


def test_huge_distinct_topics_do_not_grow_router_memory(bnode):
    """An untrusted client: anonymous, publishing without acknowledgement to distinct 500 KB topic
    URIs (before: +496 MB for 1,000 of them, kept after it left)."""
    worker = router_worker(bnode)
    with wamp_raw.RawSocketPeer(port=bnode.ports["rawsocket"], serializer="json") as warm:
        assert warm.hello()[0] == wamp_raw.WELCOME
        warm.request([wamp_raw.PUBLISH, warm.next_id(), {"acknowledge": True}, "com.warm.up", []])
    before = worker.memory_info().rss
    n, size = 300, 500 * 1024
    with wamp_raw.RawSocketPeer(port=bnode.ports["rawsocket"], serializer="json") as p:
        assert p.hello()[0] == wamp_raw.WELCOME
        p.sock.settimeout(60)
        for i in range(n):
            p.send([wamp_raw.PUBLISH, p.next_id(), {}, f"com.flood.{i:06d}." + "x" * size, [i]])
        # one acknowledged publish: its answer comes after all of the above were handled
        r = p.request([wamp_raw.PUBLISH, p.next_id(), {"acknowledge": True}, "com.sync", []], timeout=60)
        assert r[0] == wamp_raw.PUBLISHED, r
        during = rss_settled(worker, before + 40 * MB)
        print(f"router RSS: before {before / MB:.1f} MB, during {during / MB:.1f} MB "
              f"({n} topics of {size // 1024} KB sent)")
        assert during - before < 40 * MB, (before, during)
        # the client is told, without its URI echoed back
        req = p.next_id()
        r = p.request([wamp_raw.PUBLISH, req, {"acknowledge": True}, "com.flood.acked." + "y" * size, []])
        assert r[:3] == [wamp_raw.ERROR, wamp_raw.PUBLISH, req] and r[4] == "wamp.error.invalid_uri", r[:5]
        text = r[5][0]
        assert "y" * 200 not in text and len(text) < 400, text[:500]
        assert "max_uri_length 4096" in text, text
    after = rss_settled(worker, before + 20 * MB)
    bnode.assert_alive()
    print(f"router RSS after the client left: {after / MB:.1f} MB")
    assert after - before < 20 * MB, (before, after)


def test_huge_realm_name_and_violation_texts_are_not_echoed(bnode):
    """HELLO for a huge (non-existent) realm name, and a protocol violation quoting a huge
    client value: the ABORT's message stays short."""
    with wamp_raw.RawSocketPeer(port=bnode.ports["rawsocket"], serializer="json") as p:
        r = p.hello(realm="com.realm." + "z" * 500_000)
        assert r[0] == wamp_raw.ABORT and r[2] == "wamp.error.no_such_realm", r[:3]
        assert len(r[1]["message"]) < 400 and "z" * 200 not in r[1]["message"], r[1]["message"][:500]
    with wamp_raw.RawSocketPeer(port=bnode.ports["rawsocket"], serializer="json") as p:
        r = p.hello(details={"roles": {"q" * 500_000: {}}})
        assert r[0] == wamp_raw.ABORT and r[2] == "wamp.error.protocol_violation", r[:3]
        assert len(r[1]["message"]) < 1000 and "q" * 600 not in r[1]["message"], len(r[1]["message"])
    assert "q" * 600 not in bnode.log() and "z" * 200 not in bnode.log()
    bnode.assert_alive()


async def test_testament_topic_of_wrong_type_is_invalid_uri(router):
    s = await connect_local(router, "realm1", role="user")
    for topic in (["com.a"], {"a": 1}, 5):
        with pytest.raises(ApplicationError) as e:
            await s.call("wamp.session.add_testament", topic, [], {})
        assert e.value.error == "wamp.error.invalid_uri", e.value
