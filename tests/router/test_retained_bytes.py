"""Events the router keeps after their publisher left (retained events, event history) are bounded
in bytes per realm, not only in count (memory an untrusted peer can make the router hold): realm
options ``max_retained_bytes`` and ``max_history_bytes`` (default 64 MiB each); over
a budget the oldest kept events go first.  Kept payloads are stored serialized, so a payload of
many small items costs its encoded size, not many times that as Python objects.  The event-history
entries' ``limit`` defaults to the store's ``limit`` (as Crossbar.io).

Real node, autobahn-python clients; the router worker's RSS is read with psutil.  The in-process
router covers what needs no node: the bookkeeping rules.
"""

from __future__ import annotations

import asyncio
import copy

import pytest
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from support.nodes import FULL_PERMS, free_port, node_config, router_worker, start_node, stop_node
from support.autobahn_client import closing_sessions, connect, uid, w
from support.nodecli import config, error_lines, router, run_cli, write, ws
from wampfabric.router import store as store_mod
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local

MiB = 2**20
BUDGET = 8 * MiB
BIG = 1_000_000  # characters of one big payload (the node's transports take messages up to 2 MiB)
COUNT = 60  # big events published: 60 MB in all, 7.5 times a budget
GROWTH_LIMIT = 30 * MiB  # RSS growth allowed: a budget plus transient buffers (60+ MB when unbounded)
ROLES = [{"name": "anonymous", "permissions": [FULL_PERMS]}]


def budget_config(ports: dict, rs_path: str) -> dict:
    cfg = copy.deepcopy(node_config(ports, rs_path))
    cfg["workers"][0]["realms"] += [
        {"name": "retained", "roles": copy.deepcopy(ROLES), "options": {"max_retained_bytes": BUDGET}},
        {"name": "retained_small", "roles": copy.deepcopy(ROLES), "options": {"max_retained_bytes": BUDGET}},
        {"name": "history", "roles": copy.deepcopy(ROLES), "options": {"max_history_bytes": BUDGET},
         "store": {"type": "memory", "event-history": [{"uri": "com.hist.", "match": "prefix", "limit": 1000}]}},
        {"name": "storelimit", "roles": copy.deepcopy(ROLES),
         "store": {"type": "memory", "limit": 3, "event-history": [{"uri": "com.sl.topic"}]}},
    ]
    return cfg


@pytest.fixture(scope="module")
def rnode():
    n = start_node(budget_config)
    yield n
    stop_node(n)


@pytest.fixture
async def sessions(rnode):
    async def _connect(realm, transport="rawsocket-tcp", serializer="msgpack"):
        return await connect(rnode, transport, serializer, realm=realm)

    async for connect_ in closing_sessions(rnode, _connect):
        yield connect_


async def warm_up(pub, topic: str) -> None:
    """Let the router worker allocate its buffers for big messages before RSS is first read."""
    for i in range(3):
        await w(pub.publish(f"{topic}.{i}", "w" * BIG, options=PublishOptions(acknowledge=True)))


async def retained_under(session, prefix: str) -> dict:
    """topic -> payload of the retained events a new prefix subscriber gets."""
    got = {}

    def on_event(payload, details):
        assert details.retained is True
        got[details.topic] = payload

    await w(session.subscribe(on_event, prefix, options=SubscribeOptions(match="prefix", get_retained=True,
                                                                          details_arg="details")))
    # the retained events come right after SUBSCRIBED, on the same connection: a round trip later
    # they are all here
    await w(session.call("wamp.session.count"))
    return got


def kept_suffix(kept: list, published: list) -> int:
    """How many of the newest ``published`` are ``kept`` (which must be exactly the newest ones)."""
    n = len(kept)
    assert kept == published[len(published) - n:], f"kept {n} events that are not the newest ones"
    return n


async def test_retained_events_bounded_in_bytes_newest_kept(sessions, rnode):
    pub = await sessions("retained")
    await warm_up(pub, f"com.warm.{uid()}")
    proc = router_worker(rnode)
    before = proc.memory_info().rss
    prefix = f"com.ret.{uid()}."
    topics = [f"{prefix}{i:03d}" for i in range(COUNT)]
    for i, topic in enumerate(topics):
        await w(pub.publish(topic, f"{i:03d}" + "x" * BIG, options=PublishOptions(acknowledge=True, retain=True)))
    await pub.shutdown()  # the publisher leaves: what it retained stays, within the budget
    growth = proc.memory_info().rss - before
    assert growth < GROWTH_LIMIT, f"router worker RSS grew by {growth / MiB:.1f} MiB"
    got = await retained_under(await sessions("retained", "websocket", "json"), prefix)
    n = kept_suffix(sorted(got), topics)
    assert 6 <= n <= 8, n  # 8 MiB hold 8 events of 1 MB and a bit, minus what each costs besides
    for topic, payload in got.items():
        assert payload == topic[-3:] + "x" * BIG
    rnode.assert_alive()


async def test_retained_payload_of_many_small_items_costs_its_encoded_size(sessions, rnode):
    """150,000 integers: ~0.6 MB as MessagePack, ~5 MB as Python objects; 12 of them fit the 8 MiB
    budget as kept (serialized), and would hold 60+ MB as objects."""
    pub = await sessions("retained_small")
    items = list(range(65536, 65536 + 150_000))
    await w(pub.publish(f"com.warm.{uid()}", items, options=PublishOptions(acknowledge=True)))
    proc = router_worker(rnode)
    before = proc.memory_info().rss
    prefix = f"com.small.{uid()}."
    topics = [f"{prefix}{i:03d}" for i in range(12)]
    for i, topic in enumerate(topics):
        await w(pub.publish(topic, i, items, options=PublishOptions(acknowledge=True, retain=True)))
    await pub.shutdown()
    growth = proc.memory_info().rss - before
    assert growth < GROWTH_LIMIT, f"router worker RSS grew by {growth / MiB:.1f} MiB"
    got = {}

    def on_event(i, payload, details):
        got[details.topic] = (i, payload)

    sub = await sessions("retained_small", "websocket", "cbor")
    await w(sub.subscribe(on_event, prefix, options=SubscribeOptions(match="prefix", get_retained=True,
                                                                      details_arg="details")))
    await w(sub.call("wamp.session.count"))
    assert kept_suffix(sorted(got), topics) >= 11  # 12 x ~0.7 MB: all (or all but the oldest) kept
    for topic, (i, payload) in got.items():
        assert topic == topics[i] and payload == items


async def test_event_history_bounded_in_bytes_newest_kept(sessions, rnode):
    pub = await sessions("history")
    await warm_up(pub, f"com.warm.{uid()}")
    proc = router_worker(rnode)
    before = proc.memory_info().rss
    published = []
    for i in range(COUNT):
        p = await w(pub.publish(f"com.hist.{i:03d}", f"{i:03d}" + "h" * BIG, options=PublishOptions(acknowledge=True)))
        published.append(p.id)
    growth = proc.memory_info().rss - before
    assert growth < GROWTH_LIMIT, f"router worker RSS grew by {growth / MiB:.1f} MiB"
    admin = await sessions("history", "websocket", "json")
    sub_id = await w(admin.call("wamp.subscription.lookup", "com.hist.", {"match": "prefix"}))
    events = await w(admin.call("wamp.subscription.get_events", sub_id))
    n = kept_suffix([e["publication"] for e in events], published)
    assert 6 <= n <= 8, n
    for e in events:
        i = published.index(e["publication"])
        assert e["args"] == [f"{i:03d}" + "h" * BIG] and e["details"]["topic"] == f"com.hist.{i:03d}"


async def test_event_history_limit_defaults_to_the_store_limit(sessions):
    """Crossbar.io: the store's ``limit`` is the default of its event-history entries' ``limit``."""
    pub = await sessions("storelimit")
    ids = [(await w(pub.publish("com.sl.topic", i, options=PublishOptions(acknowledge=True)))).id for i in range(6)]
    sub_id = await w(pub.call("wamp.subscription.lookup", "com.sl.topic"))
    events = await w(pub.call("wamp.subscription.get_events", sub_id))
    assert [e["publication"] for e in events] == ids[-3:]
    assert [e["args"] for e in events] == [[3], [4], [5]]


# -- the bookkeeping, in-process ----------------------------------------------------------------

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


async def local_router(**options):
    r = Router()
    r.start_realm({"name": "realm1", "options": options,
                   "roles": [{"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]}]})
    return r, r.realms["realm1"].broker


async def retained_of(router, topic):
    sub = await connect_local(router, "realm1", role="user")
    got = []
    await sub.subscribe(topic, lambda *a, **kw: got.append(a), options={"get_retained": True})
    await asyncio.sleep(0.05)
    return got


async def test_an_event_larger_than_the_budget_is_not_kept_and_supersedes_older_ones():
    router, broker = await local_router(max_retained_bytes=10_000)
    pub = await connect_local(router, "realm1", role="user")
    await pub.publish("com.t", "small", options={"retain": True, "acknowledge": True})
    assert await retained_of(router, "com.t") == [("small",)]
    await pub.publish("com.t", "x" * 20_000, options={"retain": True, "acknowledge": True})
    # the newest is too large to keep; the older one is not the latest any more: none is retained
    assert await retained_of(router, "com.t") == []
    assert broker.store.retained_bytes == 0


async def test_budget_accounting_and_zero_keeps_none():
    router, broker = await local_router(max_retained_bytes=50_000)
    pub = await connect_local(router, "realm1", role="user")
    for i in range(100):
        await pub.publish(f"com.b{i % 7}", "y" * 3000, options={"retain": True, "acknowledge": True})
        await pub.publish(f"com.b{i % 7}", "z" * 1000, options={"retain": True, "acknowledge": True,
                                                               "exclude_authid": ["nobody"]})
    assert 0 < broker.store.retained_bytes <= 50_000
    assert broker.store.retained_bytes == sum(r.size for slot in broker.store._retained.values()
                                        for r in (slot[0], *(slot[1] or ())) if r is not None)
    router0, broker0 = await local_router(max_retained_bytes=0)
    pub0 = await connect_local(router0, "realm1", role="user")
    await pub0.publish("com.t", 1, options={"retain": True, "acknowledge": True})
    assert await retained_of(router0, "com.t") == [] and broker0.store.retained_bytes == 0


async def test_a_topic_retained_again_is_the_newest(monkeypatch):
    """The topic dropped first is the one whose latest retention is the oldest, not the one that
    was retained first (a topic updated all the time must not be the first to lose its event)."""
    monkeypatch.setattr(store_mod, "RETAINED_TOPICS_KEPT", 3)
    router, _ = await local_router()
    pub = await connect_local(router, "realm1", role="user")
    for t in ("com.r0", "com.r1", "com.r2", "com.r0", "com.r3"):
        await pub.publish(t, t, options={"retain": True, "acknowledge": True})
    assert await retained_of(router, "com.r0") == [("com.r0",)]
    assert await retained_of(router, "com.r1") == []


# -- the config check ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["max_retained_bytes", "max_history_bytes"])
def test_check_realm_byte_budgets(tmp_path, key):
    good = router(ws(free_port()))
    good["realms"][0]["options"] = {key: 0}
    cbdir = write(tmp_path, config(good))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    bad = router(ws(free_port()))
    bad["realms"][0]["options"] = {key: -1}
    bad["realms"][0]["store"] = {"type": "memory", "limit": 0}
    cbdir = write(tmp_path, config(bad))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].realms[0].options.{key}: "
        "must be >= 0 (bytes of kept events in the realm; 0 keeps none; default 64 MiB)"], r.stderr
    del bad["realms"][0]["options"]
    cbdir = write(tmp_path, config(bad))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].realms[0].store.limit: "
        "must be a positive integer (events kept per event-history entry)"], r.stderr


async def test_kept_payloads_come_back_as_published():
    """Stored serialized, kept payloads decode to what was published: maps with integer keys (CBOR
    has them), bytes, floats, nesting; one neither MessagePack nor CBOR can encode is kept as is."""
    router, broker = await local_router()
    pub = await connect_local(router, "realm1", role="user")
    payload = [{1: "one", "b": b"\x00\xff", "f": 1.5, "n": None, "deep": [[[[{"x": [1, 2]}]]]]}, 2**70]
    await pub.publish("com.kept", *payload, k={2: "two"}, options={"retain": True, "acknowledge": True})
    odd = object()
    await pub.publish("com.odd", odd, options={"retain": True, "acknowledge": True})
    sub = await connect_local(router, "realm1", role="user")
    got = []
    await sub.subscribe("com.kept", lambda *a, **kw: got.append((list(a), kw)), options={"get_retained": True})
    await sub.subscribe("com.odd", lambda *a, **kw: got.append((list(a), kw)), options={"get_retained": True})
    await asyncio.sleep(0.05)
    assert got == [(payload, {"k": {2: "two"}}), ([odd], {})]
    assert broker.store.retained_bytes >= store_mod.UNPACKABLE_PAYLOAD_COST
