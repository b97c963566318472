"""The metering store on both backends (SQLite and a real PostgreSQL server): keys, the outcome
of every submission, the hourly sums kept in the record's transaction, nonce purging, reads."""

from __future__ import annotations

import threading
import time

import pytest

from meteringsvc import BASE_HOUR, HOUR, PERIOD, Master, counters, mrealm
from wampfabric.metering.store import open_store
from wampfabric.protocol.metering import COUNTER_FIELDS, record_digest, verify_submission

SKEW = 900 * 10**9


@pytest.fixture
def store(target):
    s = open_store(target)
    yield s
    s.close()


def _submit(store, master, record, sent=None, nonce=None, now=None):
    sub = verify_submission(master.sign(record, sent, nonce))
    return store.submit(sub, record_digest(record), now or time.time_ns(), SKEW)


def test_keys(store):
    a, b = Master(), Master()
    assert store.key_add(a.pub, "acme") is True
    assert store.key_add(a.pub, "other") is False
    assert store.key_add(b.pub, "beta") is True
    assert store.key_revoke(b.pub) is True
    assert store.key_revoke(b.pub) is False
    assert store.key_revoke("00" * 32) is False
    rows = {r["pubkey"]: r for r in store.key_list()}
    assert rows[a.pub]["customer"] == "acme" and rows[a.pub]["revoked"] is None
    assert rows[b.pub]["revoked"] is not None
    # revocation is final: adding the key again does not bring it back
    assert store.key_add(b.pub, "beta") is False


def test_accepted_and_hourly_sums(store):
    m = Master()
    store.key_add(m.pub, "acme")
    realm = mrealm()
    ids = []
    # 12 records in the first hour, 3 in the second
    for i in range(15):
        outcome, mid = _submit(store, m, m.record(realm, BASE_HOUR + i * PERIOD, seq=i, **counters(i)))
        assert outcome == "accepted"
        ids.append(mid)
    assert len(set(ids)) == 15
    hourly = store.hourly(pubkey=m.pub)
    assert [(h["hour"], h["records"]) for h in hourly] == [(BASE_HOUR, 12), (BASE_HOUR + HOUR, 3)]
    for h, rng in zip(hourly, (range(12), range(12, 15))):
        for c in COUNTER_FIELDS:
            assert h[c] == sum(counters(i)[c] for i in rng), c
        assert h["customer"] == "acme"
    recs = store.records(customer="acme")
    assert [r["metering_id"] for r in recs] == ids
    assert recs[3]["record"] == m.record(realm, BASE_HOUR + 3 * PERIOD, seq=3, **counters(3))
    assert store.records(customer="nobody") == []
    assert len(store.records(pubkey=m.pub, from_ns=BASE_HOUR + HOUR)) == 3
    assert len(store.records(pubkey=m.pub, until_ns=BASE_HOUR + PERIOD)) == 1
    assert len(store.records(pubkey=m.pub, limit=5)) == 5
    assert store.hourly(customer="acme", from_ns=BASE_HOUR + 1) == hourly[1:]


def test_duplicate_replay_conflict(store):
    m = Master()
    store.key_add(m.pub, "acme")
    rec = m.record(mrealm(), BASE_HOUR, **counters(1))
    body = m.sign(rec)
    sub = verify_submission(body)
    now = time.time_ns()
    outcome, mid = store.submit(sub, record_digest(rec), now, SKEW)
    assert outcome == "accepted"
    # the same POST again: replayed
    assert store.submit(sub, record_digest(rec), now, SKEW) == ("replayed", None)
    # a retry (new nonce, same record): the first id, not counted again
    assert _submit(store, m, rec) == ("duplicate", mid)
    # a different record under the same key: conflict
    other = dict(rec, count=rec["count"] + 1)
    assert _submit(store, m, other) == ("conflict", None)
    h = store.hourly(pubkey=m.pub)
    assert len(h) == 1 and h[0]["records"] == 1 and h[0]["count"] == rec["count"]
    assert len(store.records(pubkey=m.pub)) == 1
    # the same interval of another realm is another record
    assert _submit(store, m, m.record(mrealm(), BASE_HOUR))[0] == "accepted"
    assert store.hourly(pubkey=m.pub)[0]["records"] == 2


def test_refusals(store):
    m, revoked, stranger = Master(), Master(), Master()
    store.key_add(m.pub, "acme")
    store.key_add(revoked.pub, "old")
    store.key_revoke(revoked.pub)
    now = time.time_ns()
    assert _submit(store, stranger, stranger.record(mrealm(), BASE_HOUR)) == ("unknown_key", None)
    assert _submit(store, revoked, revoked.record(mrealm(), BASE_HOUR)) == ("revoked", None)
    rec = m.record(mrealm(), BASE_HOUR)
    assert _submit(store, m, rec, sent=now - SKEW - 10**9, now=now) == ("stale", None)
    assert _submit(store, m, rec, sent=now + SKEW + 10**9, now=now) == ("stale", None)
    assert _submit(store, m, rec, sent=now - SKEW + 10**9, now=now)[0] == "accepted"
    assert store.records() == [r for r in store.records() if r["pubkey"] == m.pub]
    assert store.hourly(pubkey=revoked.pub) == [] and store.hourly(pubkey=stranger.pub) == []


def test_nonce_purge(store):
    m = Master()
    store.key_add(m.pub, "acme")
    now = time.time_ns()
    old = m.sign(m.record(mrealm(), BASE_HOUR), sent=now - SKEW + 10**9, nonce="aa" * 16)
    sub = verify_submission(old)
    assert store.submit(sub, record_digest(sub.record), now, SKEW)[0] == "accepted"
    assert store.submit(sub, record_digest(sub.record), now, SKEW)[0] == "replayed"
    assert store.purge_nonces(now - SKEW + 2 * 10**9) == 1
    # forgotten, but by now outside the window: stale, never accepted twice
    later = now + 2 * 10**9
    assert store.submit(sub, record_digest(sub.record), later, SKEW)[0] == "stale"


def test_concurrent_same_record(target):
    """Eight connections submit the same record at once (new nonces): one is accepted, the others
    are duplicates with its id, and the hourly row counts it once."""
    setup = open_store(target)
    m = Master()
    setup.key_add(m.pub, "acme")
    rec = m.record(mrealm(), BASE_HOUR, **counters(2))
    subs = [verify_submission(m.sign(rec)) for _ in range(8)]
    results, barrier = [None] * 8, threading.Barrier(8)

    def run(i):
        s = open_store(target, create=False)
        try:
            barrier.wait()
            results[i] = s.submit(subs[i], record_digest(rec), time.time_ns(), SKEW)
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(r[0] for r in results)
    assert outcomes == ["accepted"] + ["duplicate"] * 7
    assert len({r[1] for r in results}) == 1
    h = setup.hourly(pubkey=m.pub)
    assert h[0]["records"] == 1 and h[0]["count"] == rec["count"]
    setup.close()


def test_schema_version_checked(target):
    s = open_store(target)
    with s._tx() as ex:
        ex("UPDATE meta SET value = '99' WHERE name = 'schema_version'", ())
    s.close()
    from wampfabric.metering.store import StoreError

    with pytest.raises(StoreError, match="schema version 99"):
        open_store(target)
