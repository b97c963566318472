"""The realm store interface (router/store.py) through the memory store, in-process: event
histories and retained events kept per realm, created from the realm's ``store`` config (Crossbar.io's
format), bounded by the realm's byte budgets; and the broker asking whatever store the config names.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from wampfabric.common.logs import RateLimitedLog
from wampfabric.router import store as store_mod
from wampfabric.router.realm import Router
from wampfabric.router.store import Filters, MemoryRealmStore, RealmStore, create_store
from wampfabric.transport.local import connect_local

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
ROLES = [{"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": ALL}]}]


def peer(session_id, authid="alice", authrole="user"):
    """What a store reads of a session."""
    return SimpleNamespace(session_id=session_id, authid=authid, authrole=authrole)


def memory_store(store=None, **options) -> MemoryRealmStore:
    cfg = {"name": "realm1", "options": options}
    if store is not None:
        cfg["store"] = store
    s = create_store(cfg)
    assert isinstance(s, MemoryRealmStore) and s.type == "memory"
    return s


def history_store(limit=100, **options):
    s = memory_store({"type": "memory", "event-history": [{"uri": "com.h", "limit": limit}]}, **options)
    return s, s.histories()[0]


def keep(s, h, publication, *tail, topic="com.h", filters=None):
    s.keep_event(h, topic, publication, {}, list(tail), filters)


# -- created from the realm config ------------------------------------------------------------

def test_a_realm_without_store_config_gets_a_memory_store_without_histories():
    s = memory_store()
    assert s.histories() == [] and not s.has_retained()
    assert s.max_retained_bytes == s.max_history_bytes == 64 * 2**20


def test_event_history_entries_as_crossbar_configures_them():
    s = memory_store({"type": "memory", "limit": 7, "event-history": [
        {"uri": "com.a"}, {"uri": "com.b.", "match": "prefix", "limit": 3}]})
    assert [(h.uri, h.match, h.limit) for h in s.histories()] == [("com.a", "exact", 7), ("com.b.", "prefix", 3)]
    s = memory_store({"type": "memory", "event-history": [{"uri": "com.a"}]})
    assert s.histories()[0].limit == 100  # Crossbar.io's default


def test_the_byte_budgets_come_from_the_realm_options():
    s = memory_store(max_retained_bytes=123, max_history_bytes=456)
    assert (s.max_retained_bytes, s.max_history_bytes) == (123, 456)


def test_an_unknown_store_type_is_refused():
    with pytest.raises(ValueError, match="unsupported realm store type 'lmdb' \\(supported: memory\\)"):
        create_store({"name": "r", "store": {"type": "lmdb"}})


def test_the_interface_is_abstract():
    with pytest.raises(TypeError):
        RealmStore({}, {})


# -- event history ----------------------------------------------------------------------------

def test_history_keeps_at_most_its_limit_and_returns_payloads_as_kept():
    s, h = history_store(limit=3)
    keep(s, h, 1)
    keep(s, h, 2, ["a"])
    keep(s, h, 3, [1, 2], {"k": {5: b"\x00"}})
    keep(s, h, 4, [{"x": 2**70}])
    events = s.get_events(h, 99)
    assert [e["publication"] for e in events] == [2, 3, 4]
    assert [(e.get("args"), e.get("kwargs")) for e in events] == [
        (["a"], None), ([1, 2], {"k": {5: b"\x00"}}), ([{"x": 2**70}], None)]
    assert all(e["subscription"] == 99 and e["details"] == {} for e in events)
    assert events[0]["timestamp"].endswith("Z")
    assert s.history_bytes == sum(e[7] for e in h.events)


def test_history_order_limit_topic_and_publication_bounds():
    s, h = history_store()
    for p in range(1, 7):
        keep(s, h, p, [p], topic="com.h" if p % 2 else "com.other")

    def pubs(**kw):
        return [e["publication"] for e in s.get_events(h, 1, **kw)]

    assert pubs() == [1, 2, 3, 4, 5, 6]
    assert pubs(reverse=True, limit=2) == [6, 5]
    assert pubs(topic="com.other") == [2, 4, 6]
    assert pubs(after_publication=2, limit=2) == [3, 4]
    assert pubs(from_publication=2, until_publication=4) == [2, 3, 4]
    assert pubs(before_publication=3) == [1, 2]
    assert pubs(after_publication=12345) == []  # an unknown publication: nothing


def test_history_time_bounds():
    s, h = history_store()
    keep(s, h, 1)
    assert [e["publication"] for e in s.get_events(h, 1, from_time="2000-01-01T00:00:00Z")] == [1]
    assert s.get_events(h, 1, until_time="2000-01-01T00:00:00+00:00") == []
    with pytest.raises(ValueError):
        s.get_events(h, 1, after_time="yesterday")
    with pytest.raises(ValueError):
        s.get_events(h, 1, before_time=5)


def test_history_applies_the_kept_lists_to_the_caller():
    s, h = history_store()
    keep(s, h, 1, ["all"])
    keep(s, h, 2, ["not bob"], filters=Filters({"exclude_authid": ["bob"]}))
    keep(s, h, 3, ["admins"], filters=Filters({"eligible_authrole": ["admin"]}))
    got = {who.authid: [e["args"] for e in s.get_events(h, 1, who)]
           for who in (peer(1, "alice"), peer(2, "bob"), peer(3, "carol", "admin"))}
    assert got == {"alice": [["all"], ["not bob"]], "bob": [["all"]], "carol": [["all"], ["not bob"], ["admins"]]}
    assert len(s.get_events(h, 1)) == 3  # no caller (the router itself): everything


def test_histories_share_the_byte_budget_and_the_oldest_event_goes_first():
    s = memory_store({"type": "memory", "event-history": [{"uri": "com.a"}, {"uri": "com.b"}]},
                     max_history_bytes=4000)  # three of these events (1102 bytes each)
    a, b = s.histories()
    keep(s, a, 1, ["x" * 500], topic="com.a")
    keep(s, b, 2, ["x" * 500], topic="com.b")
    keep(s, a, 3, ["x" * 500], topic="com.a")
    keep(s, b, 4, ["x" * 500], topic="com.b")  # over the budget: event 1 (of the other history) goes
    assert [e["publication"] for e in s.get_events(a, 1)] == [3]
    assert [e["publication"] for e in s.get_events(b, 2)] == [2, 4]
    assert 0 < s.history_bytes <= 4000


@pytest.fixture
def not_kept_log(monkeypatch, caplog):
    """The store's "not kept" lines (rate-limited: a line a second), captured afresh."""
    monkeypatch.setattr(store_mod, "_not_kept_log", RateLimitedLog(store_mod.log))
    with caplog.at_level(logging.WARNING, logger=store_mod.log.name):
        yield caplog


def test_an_event_larger_than_the_history_budget_is_not_kept(not_kept_log):
    s, h = history_store(max_history_bytes=1000)
    keep(s, h, 1, ["small"])
    keep(s, h, 2, ["x" * 2000])
    assert [e["publication"] for e in s.get_events(h, 1)] == [1]
    assert "event 2 on topic 'com.h' (history) not kept" in not_kept_log.text
    assert "more than the realm's max_history_bytes 1000" in not_kept_log.text


# -- retained events --------------------------------------------------------------------------

def retain(s, topic, publication, *tail, filters=None, exclude_me=None, disclose=None, ppt=None):
    s.retain(topic, publication, 7, disclose, list(tail), ppt, filters, exclude_me)


def latest(s, uri, receiver, match="exact"):
    return [(topic, ev.publication, ev.payload()) for topic, ev in s.retained_for(uri, match, receiver)]


def test_the_latest_retained_event_per_topic():
    s = memory_store()
    assert latest(s, "com.t", peer(1)) == []
    retain(s, "com.t", 1, ["old"])
    retain(s, "com.t", 2, ["new"], {"k": 1})
    assert s.has_retained()
    assert latest(s, "com.t", peer(1)) == [("com.t", 2, [["new"], {"k": 1}])]
    ev = s.retained_for("com.t", "exact", peer(1))[0][1]
    assert (ev.disclose, ev.ppt) == (None, None)


def test_retained_events_under_a_pattern():
    s = memory_store()
    retain(s, "com.a.x", 1, [1])
    retain(s, "com.a.y", 2, [2])
    retain(s, "com.b.x", 3, [3])
    assert sorted(latest(s, "com.a.", peer(1), "prefix")) == [("com.a.x", 1, [[1]]), ("com.a.y", 2, [[2]])]
    assert sorted(latest(s, "com..x", peer(1), "wildcard")) == [("com.a.x", 1, [[1]]), ("com.b.x", 3, [[3]])]


def test_a_receiver_gets_the_latest_event_it_would_have_received():
    s = memory_store()
    retain(s, "com.t", 1, ["everyone"])
    retain(s, "com.t", 2, ["not alice, not its publisher"], filters=Filters({"exclude_authid": ["alice"]}),
           exclude_me=42)
    assert latest(s, "com.t", peer(1, "alice")) == [("com.t", 1, [["everyone"]])]
    assert latest(s, "com.t", peer(42, "bob")) == [("com.t", 1, [["everyone"]])]
    assert latest(s, "com.t", peer(5, "bob")) == [("com.t", 2, [["not alice, not its publisher"]])]
    retain(s, "com.t", 3, ["not its publisher"], exclude_me=42)  # no lists: supersedes both
    assert latest(s, "com.t", peer(42, "bob")) == []
    assert latest(s, "com.t", peer(1, "alice")) == [("com.t", 3, [["not its publisher"]])]


def test_an_event_without_lists_supersedes_the_topics_events_with_lists():
    s = memory_store()
    for p in range(1, 4):
        retain(s, "com.t", p, [p], filters=Filters({"eligible_authid": ["bob"]}))
    retain(s, "com.t", 4, [4])
    assert latest(s, "com.t", peer(1, "bob")) == [("com.t", 4, [[4]])]
    slot = s._retained["com.t"]
    assert slot[1] is None and s.retained_bytes == slot[0].size


def test_events_with_lists_per_topic_are_bounded():
    s = memory_store()
    n = store_mod.RETAINED_FILTERED_KEPT
    for p in range(n + 5):
        retain(s, "com.t", p, [p], filters=Filters({"eligible": [p]}))
    assert [r.publication for r in s._retained["com.t"][1]] == list(range(5, n + 5))
    assert latest(s, "com.t", peer(0)) == []  # dropped: its event is gone
    assert latest(s, "com.t", peer(n + 4)) == [("com.t", n + 4, [[n + 4]])]
    assert s.retained_bytes == sum(r.size for r in s._retained["com.t"][1])


def test_retained_topics_are_bounded_and_the_least_recently_retained_goes(monkeypatch):
    monkeypatch.setattr(store_mod, "RETAINED_TOPICS_KEPT", 2)
    s = memory_store()
    retain(s, "com.a", 1, [1])
    retain(s, "com.b", 2, [2])
    retain(s, "com.a", 3, [3])
    retain(s, "com.c", 4, [4])
    assert list(s._retained) == ["com.a", "com.c"]


def test_the_retained_budget_holds_and_too_large_an_event_clears_its_topic(not_kept_log):
    s = memory_store(max_retained_bytes=5000)
    for p in range(20):
        retain(s, f"com.t{p % 4}", p, ["x" * 500])
    assert 0 < s.retained_bytes <= 5000
    assert s.retained_bytes == sum(slot[0].size for slot in s._retained.values())
    retain(s, "com.t3", 99, ["x" * 6000])
    assert "retained event 99 on topic 'com.t3' not kept" in not_kept_log.text
    assert latest(s, "com.t3", peer(1)) == []  # the older one is not the latest any more


def test_unpackable_payloads_are_kept_as_objects():
    s = memory_store()
    odd = object()
    retain(s, "com.odd", 1, [odd])
    assert latest(s, "com.odd", peer(1)) == [("com.odd", 1, [[odd]])]
    assert s.retained_bytes >= store_mod.UNPACKABLE_PAYLOAD_COST


def test_filters_round_trip_through_their_lists():
    f = Filters({"eligible": [1, 2], "exclude_authrole": ["guest"], "retain": True})
    assert Filters(f.lists()).lists() == f.lists() == {"eligible": [1, 2], "exclude_authrole": ["guest"]}


# -- the broker asks the realm's store ---------------------------------------------------------

class RecordingStore(RealmStore):
    """A store of another type (as a persistent one would be): it keeps what it is given as is."""

    type = "recording"

    def __init__(self, config, options):
        super().__init__(config, options)
        self.kept = []
        self.retained = {}
        self._histories = [SimpleNamespace(uri=e["uri"], match=e.get("match", "exact"), limit=5)
                           for e in config.get("event-history", [])]

    def histories(self):
        return self._histories

    def keep_event(self, history, topic, publication, details, tail, filters):
        self.kept.append((history.uri, topic, publication, tail))

    def get_events(self, history, subscription_id, caller=None, limit=None, reverse=False, topic=None, **bounds):
        return [{"subscription": subscription_id, "publication": p, "args": t[0]}
                for _, _, p, t in self.kept]

    def retain(self, topic, publication, publisher, disclose, tail, ppt, filters, exclude_me):
        self.retained[topic] = SimpleNamespace(publication=publication, disclose=disclose, ppt=ppt,
                                               payload=lambda: tail)

    def has_retained(self):
        return bool(self.retained)

    def retained_for(self, uri, match, receiver):
        return [(uri, self.retained[uri])] if uri in self.retained else []


async def test_the_realm_creates_the_store_its_config_names_and_the_broker_uses_it(monkeypatch):
    monkeypatch.setitem(store_mod.STORE_TYPES, "recording", RecordingStore)
    router = Router()
    realm = router.start_realm({"name": "realm1", "roles": ROLES,
                                "store": {"type": "recording", "event-history": [{"uri": "com.h"}]}})
    store = realm.store
    assert isinstance(store, RecordingStore) and realm.broker.store is store
    pub = await connect_local(router, "realm1", role="user")
    await pub.publish("com.h", 1, options={"acknowledge": True})
    await pub.publish("com.r", "kept", options={"retain": True, "acknowledge": True})
    assert [k[:2] + (k[3],) for k in store.kept] == [("com.h", "com.h", [[1]])]
    assert store.has_retained()
    sub = await connect_local(router, "realm1", role="user")
    got = []
    await sub.subscribe("com.r", lambda *a: got.append(a), options={"get_retained": True})
    await asyncio.sleep(0.05)
    assert got == [("kept",)]
    sub_id = realm.broker.lookup("com.h").id
    events = await pub.call("wamp.subscription.get_events", sub_id)
    assert [(e["subscription"], e["args"]) for e in events] == [(sub_id, [1])]
