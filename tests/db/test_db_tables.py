"""Tables, indexes, records and transactions of wampfabric.db on real LMDB files."""

from __future__ import annotations

import os
import uuid

import cbor2
import lmdb
import pytest

from wampfabric.db import (CborValue, Database, DatabaseError, DatabaseFull, DuplicateKey, InvalidValue,
                           Record, RecordValue, StrKey, Table, TimestampKey, TupleKey, UuidKey)


class Person(Record):
    FIELDS = {"oid": "uuid", "email": "str", "pubkey": "str", "age": "int", "blob": "bytes", "tags": "list"}


def make(db):
    people = Table(db, "people", UuidKey(), RecordValue(Person))
    by_email = people.add_index("by_email", StrKey(), lambda p: p.email)
    by_pubkey = people.add_index("by_pubkey", StrKey(), lambda p: p.pubkey)
    return people, by_email, by_pubkey


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "db", maxsize=16 * 2**20)
    yield d
    d.close()


def person(email, pubkey=None, **kw):
    return Person(oid=uuid.uuid4(), email=email, pubkey=pubkey, **kw)


def test_insert_get_put_delete(db):
    people, by_email, _ = make(db)
    alice = person("alice@x", age=30)
    with db.begin(write=True) as txn:
        people.insert(txn, alice.oid, alice)
    with db.begin() as txn:
        assert people.get(txn, alice.oid) == alice
        assert people.get(txn, str(alice.oid)) == alice
        assert people.has(txn, alice.oid)
        assert people.get(txn, uuid.uuid4()) is None
        assert people.count(txn) == 1
    with db.begin(write=True) as txn:
        with pytest.raises(DuplicateKey, match="exists"):
            people.insert(txn, alice.oid, alice)
        alice.age = 31
        people.put(txn, alice.oid, alice)
    with db.begin() as txn:
        assert people.get(txn, alice.oid).age == 31
    with db.begin(write=True) as txn:
        assert people.delete(txn, alice.oid) is True
        assert people.delete(txn, alice.oid) is False
    with db.begin() as txn:
        assert people.count(txn) == 0
        assert by_email.count(txn) == 0


def test_unique_index_refuses_a_duplicate_and_writes_nothing_of_it(db):
    people, by_email, by_pubkey = make(db)
    alice, bob = person("alice@x", "aa"), person("bob@x", "bb")
    with db.begin(write=True) as txn:
        people.insert(txn, alice.oid, alice)
        people.insert(txn, bob.oid, bob)
    with db.begin(write=True) as txn:
        mallory = person("alice@x", "cc")
        with pytest.raises(DuplicateKey, match=f"by_email 'alice@x' is already used by key .*{alice.oid}"):
            people.insert(txn, mallory.oid, mallory)
        # changing bob's pubkey to alice's is refused too, bob stays as he was
        with pytest.raises(DuplicateKey, match="by_pubkey 'aa'"):
            people.put(txn, bob.oid, Person(oid=bob.oid, email="bob@x", pubkey="aa"))
    with db.begin() as txn:
        assert people.count(txn) == 2
        assert not people.has(txn, mallory.oid)
        assert by_pubkey.get(txn, "aa") == alice.oid
        assert by_pubkey.get(txn, "cc") is None
        assert by_email.get_record(txn, "bob@x") == bob
        assert people.check_indexes(txn) == []


def test_index_follows_updates_and_deletes(db):
    people, by_email, by_pubkey = make(db)
    alice = person("alice@x")  # no pubkey: not in by_pubkey
    with db.begin(write=True) as txn:
        people.insert(txn, alice.oid, alice)
    with db.begin() as txn:
        assert by_pubkey.count(txn) == 0
        assert by_email.get(txn, "alice@x") == alice.oid
    with db.begin(write=True) as txn:
        people.put(txn, alice.oid, Person(oid=alice.oid, email="alice@y", pubkey="aa"))
    with db.begin() as txn:
        assert by_email.get(txn, "alice@x") is None
        assert by_email.get(txn, "alice@y") == alice.oid
        assert by_pubkey.get(txn, "aa") == alice.oid
        assert people.check_indexes(txn) == []
    # the freed email is usable by another record now
    bob = person("alice@x")
    with db.begin(write=True) as txn:
        people.insert(txn, bob.oid, bob)
        people.delete(txn, alice.oid)
    with db.begin() as txn:
        assert by_email.get(txn, "alice@y") is None
        assert by_pubkey.count(txn) == 0
        assert by_email.get(txn, "alice@x") == bob.oid
        assert people.check_indexes(txn) == []


def test_select_ranges_order_limit_and_prefix(db):
    logs = Table(db, "logs", TupleKey(TimestampKey(), UuidKey(), StrKey()), CborValue())
    nodes = sorted(uuid.uuid4() for _ in range(3))
    keys = [(ts, n, w) for ts in (100, 200, 300) for n in nodes for w in ("controller", "rw1")]
    with db.begin(write=True) as txn:
        for i, k in enumerate(reversed(keys)):
            logs.insert(txn, k, {"i": i})
    with db.begin() as txn:
        assert list(logs.select(txn, return_keys=True, return_values=False)) == keys
        assert list(logs.select(txn, return_keys=True, return_values=False, reverse=True)) == keys[::-1]
        last = list(logs.select(txn, return_keys=True, reverse=True, limit=1))
        assert last == [(keys[-1], {"i": 0})]
        # partial keys: [200, 300) -> every key with ts 200
        mid = list(logs.select(txn, from_key=(200,), to_key=(300,), return_keys=True, return_values=False))
        assert mid == [k for k in keys if k[0] == 200]
        back = list(logs.select(txn, from_key=(200,), to_key=(300,), reverse=True, return_keys=True,
                                return_values=False))
        assert back == mid[::-1]
        assert list(logs.select(txn, from_key=(300,), to_key=(300,))) == []
        assert logs.count(txn) == len(keys)
        assert logs.count(txn, prefix=(100,)) == 6
        assert logs.count(txn, prefix=(100, nodes[1])) == 2
        assert logs.count(txn, prefix=(100, nodes[1], "rw")) == 1
        assert logs.count(txn, prefix=(400,)) == 0
        assert list(logs.select(txn, prefix=(300, nodes[0]))) == [{"i": 5}, {"i": 4}]  # inserted in reverse
        assert list(logs.select(txn, limit=0)) == []
        with pytest.raises(ValueError):
            list(logs.select(txn, return_values=False))


def test_unknown_fields_of_a_newer_writer_survive(db, tmp_path):
    people, *_ = make(db)
    oid = uuid.uuid4()
    # a newer writer stored a field this version does not know
    with db.begin(write=True) as txn:
        txn.txn.put(oid.bytes, cbor2.dumps({"oid": oid, "email": "a@x", "shoe_size": 44}),
                    db=db.env.open_db(b"people", txn=txn.txn))
    with db.begin(write=True) as txn:
        p = people.get(txn, oid)
        assert p.email == "a@x" and p.extra == {"shoe_size": 44}
        p.age = 5
        people.put(txn, oid, p)
    with db.begin() as txn:
        raw = cbor2.loads(txn.txn.get(oid.bytes, db=db.env.open_db(b"people", txn=txn.txn)))
    assert raw["shoe_size"] == 44 and raw["age"] == 5


def test_files_are_readable_with_plain_lmdb_and_cbor2(tmp_path):
    """The docstring's recipe: named sub-databases, UUID keys as 16 bytes, CBOR maps, UUIDs as tag 37."""
    db = Database(tmp_path / "db", maxsize=2**20)
    people, *_ = make(db)
    alice = person("alice@x", "aa", blob=b"\x01\x02", tags=["t"])
    with db.begin(write=True) as txn:
        people.insert(txn, alice.oid, alice)
    db.close()
    env = lmdb.open(str(tmp_path / "db"), readonly=True, max_dbs=64, map_size=0)
    try:
        with env.begin() as txn:
            names = [bytes(k) for k in txn.cursor().iternext(values=False)]
            assert names == [b"people", b"people/by_email", b"people/by_pubkey"]
            rows = list(txn.cursor(db=env.open_db(b"people", txn=txn, create=False)))
            idx = list(txn.cursor(db=env.open_db(b"people/by_email", txn=txn, create=False)))
    finally:
        env.close()
    assert [(uuid.UUID(bytes=k), cbor2.loads(v)) for k, v in rows] == [
        (alice.oid, {"oid": alice.oid, "email": "alice@x", "pubkey": "aa", "age": None,
                     "blob": b"\x01\x02", "tags": ["t"]})]
    assert idx == [(b"alice@x", alice.oid.bytes)]
    assert b"\xd8\x25\x50" + alice.oid.bytes in rows[0][1]  # tag 37, byte string of 16


def test_transaction_aborts_on_exception_and_commits_on_success(db):
    people, *_ = make(db)
    a, b = person("a@x"), person("b@x")
    with pytest.raises(RuntimeError):
        with db.begin(write=True) as txn:
            people.insert(txn, a.oid, a)
            raise RuntimeError("boom")
    with db.begin(write=True) as txn:
        people.insert(txn, b.oid, b)
    with db.begin() as txn:
        assert [p.email for p in people.select(txn)] == ["b@x"]
        with pytest.raises(DatabaseError, match="write transaction"):
            people.put(txn, a.oid, a)
    with pytest.raises(DatabaseError, match="finished"):
        people.get(txn, a.oid)


def test_bad_values_are_refused_clearly(db):
    people, *_ = make(db)
    with db.begin(write=True) as txn:
        with pytest.raises(InvalidValue, match="holds Person records, not dict"):
            people.insert(txn, uuid.uuid4(), {"email": "x"})
        with pytest.raises(InvalidValue, match=r"Person\.age must be int, not str"):
            people.insert(txn, uuid.uuid4(), person("x@x", age="old"))
        with pytest.raises(InvalidValue, match=r"Person\.oid must be a UUID"):
            people.insert(txn, uuid.uuid4(), Person(oid="nope"))
        with pytest.raises(TypeError, match="has no field"):
            Person(shoe_size=44)
    with db.begin() as txn:
        assert people.count(txn) == 0


def test_readonly_and_double_open(tmp_path):
    with pytest.raises(DatabaseError, match="no database at"):
        Database(tmp_path / "missing", maxsize=2**20, readonly=True)
    db = Database(tmp_path / "db", maxsize=2**20)
    try:
        with pytest.raises(DatabaseError, match="already open in this process"):
            Database(tmp_path / "db", maxsize=2**20)
    finally:
        db.close()
    ro = Database(tmp_path / "db", maxsize=1, readonly=True)
    try:
        assert ro.maxsize == 2**20  # the writer's
        people, *_ = make(ro)  # tables that do not exist yet read as empty
        with ro.begin() as txn:
            assert people.count(txn) == 0 and list(people.select(txn)) == []
        with pytest.raises(DatabaseError, match="read-only"):
            ro.begin(write=True)
    finally:
        ro.close()
    assert oct(os.stat(tmp_path / "db").st_mode & 0o777) == "0o700"
    assert oct(os.stat(tmp_path / "db" / "data.mdb").st_mode & 0o777) == "0o600"


def test_readonly_tables_stay_usable_across_transactions(tmp_path):
    """A reader's table handle outlives the read transaction that first needed it (LMDB closes a
    handle opened inside a transaction that is aborted, as read transactions end)."""
    db = Database(tmp_path / "db", maxsize=2**20)
    people, *_ = make(db)
    with db.begin(write=True) as txn:
        for i in range(3):
            p = person(f"r{i}@x")
            people.insert(txn, p.oid, p)
    db.close()
    ro = Database(tmp_path / "db", maxsize=2**20, readonly=True)
    try:
        rpeople, *_ = make(ro)
        with ro.begin() as txn:
            assert rpeople.count(txn) == 3
        for _ in range(3):
            with ro.begin() as txn:
                assert len(list(rpeople.select(txn))) == 3 and rpeople.count(txn) == 3
    finally:
        ro.close()


def test_stats(db):
    people, *_ = make(db)
    with db.begin(write=True) as txn:
        for i in range(100):
            p = person(f"p{i}@x")
            people.insert(txn, p.oid, p)
    s = db.stats()
    assert s["maxsize"] == 16 * 2**20
    assert 0 < s["used"] < s["maxsize"]
    assert 99 < s["free_pct"] < 100
    assert s["tables"]["people"]["entries"] == 100
    assert s["tables"]["people/by_email"]["entries"] == 100
    assert s["tables"]["people/by_pubkey"]["entries"] == 0
    assert s["tables"]["people"]["bytes"] >= 100 * 40


# -- a full database ---------------------------------------------------------------------------

def _fill(db, people, size=400):
    """Transactions of 10 records until one does not fit; the oids stored."""
    stored = []
    while True:
        batch = [person(f"{uuid.uuid4()}@x", blob=os.urandom(size)) for _ in range(10)]
        try:
            with db.begin(write=True) as txn:
                for p in batch:
                    people.insert(txn, p.oid, p)
        except DatabaseFull as e:
            return stored, batch, e
        stored += [p.oid for p in batch]


def test_full_database_aborts_the_transaction_and_stays_usable(tmp_path):
    path = tmp_path / "small"
    db = Database(path, maxsize=8 * 2**20)
    people, by_email, _ = make(db)
    stored, lost, err = _fill(db, people, size=1000)
    assert str(path) in str(err) and "maxsize 8388608" in str(err) and "'people" in str(err)
    assert err.path == str(path) and err.maxsize == 8 * 2**20 and err.table.startswith("people")
    assert db.stats()["free_pct"] < 15
    with db.begin() as txn:  # reads work; nothing of the failed transaction is there
        assert people.count(txn) == len(stored) == by_email.count(txn)
        assert not any(people.has(txn, p.oid) for p in lost)
        assert people.check_indexes(txn) == []
    gone = len(stored) // 5
    for i in range(0, gone, 20):  # deletes work (random keys: each touches its own pages)
        with db.begin(write=True) as txn:
            for oid in stored[i:min(i + 20, gone)]:
                assert people.delete(txn, oid)
    small = person("small@x")
    with db.begin(write=True) as txn:  # and, with the space freed, writes again
        people.insert(txn, small.oid, small)
    with db.begin() as txn:
        assert people.get(txn, small.oid) == small
        assert people.count(txn) == len(stored) - gone + 1
        assert people.check_indexes(txn) == []
    db.close()


def test_a_transaction_too_big_fails_and_a_smaller_one_fits(tmp_path):
    db = Database(tmp_path / "db", maxsize=4 * 2**20)
    people, *_ = make(db)
    big = [person(f"{i}@big", blob=os.urandom(5000)) for i in range(1000)]  # 5 MB > 4 MiB
    with pytest.raises(DatabaseFull, match="writing table 'people"):
        with db.begin(write=True) as txn:
            for p in big:
                people.insert(txn, p.oid, p)
    smaller = big[:300]  # 1.5 MB
    with db.begin(write=True) as txn:
        for p in smaller:
            people.insert(txn, p.oid, p)
    with db.begin() as txn:
        assert people.count(txn) == 300
        assert people.get(txn, big[299].oid) == big[299]
    db.close()


def test_a_swallowed_database_full_does_not_commit_half(tmp_path):
    db = Database(tmp_path / "small", maxsize=2**20)
    people, *_ = make(db)
    stored, _, _ = _fill(db, people)
    big = [person(f"{i}@big", blob=os.urandom(3000)) for i in range(400)]
    with pytest.raises(DatabaseError, match="aborted .*cannot be committed"):
        with db.begin(write=True) as txn:
            try:
                for p in big:
                    people.insert(txn, p.oid, p)
            except DatabaseFull:
                pass  # a careless caller goes on: the commit must not pretend success
    with db.begin() as txn:
        assert people.count(txn) == len(stored)
    db.close()


def test_to_json_of_stored_values():
    from wampfabric.db import to_json

    oid = uuid.UUID(int=3)
    p = Person(oid=oid, email="jörg@x", blob=b"\x01\xff", tags=["a"])
    p.extra = {"load": float("inf"), "ratio": float("nan"), "pair": (1, 2)}
    assert to_json(p) == {"oid": str(oid), "email": "jörg@x", "pubkey": None, "age": None, "blob": "01ff",
                          "tags": ["a"], "load": None, "ratio": None, "pair": [1, 2]}


def test_sequential_table_packs_ascending_keys_and_takes_any_order(db):
    seq = Table(db, "seq", TimestampKey(), CborValue(), sequential=True)
    plain = Table(db, "plain", TimestampKey(), CborValue())
    blob = os.urandom(600)
    for table in (seq, plain):
        for start in range(0, 5000, 100):
            with db.begin(write=True) as txn:
                for ts in range(start, start + 100):
                    table.insert(txn, ts * 10, blob)
    # out of order, equal and duplicate keys behave as in any table
    with db.begin(write=True) as txn:
        seq.insert(txn, 5, b"between")
        seq.put(txn, 49990, b"replaced last")
        with pytest.raises(DuplicateKey):
            seq.insert(txn, 49990, b"again")
        with pytest.raises(DuplicateKey):
            seq.insert(txn, 10, b"again")
    with db.begin() as txn:
        keys = list(seq.select(txn, return_keys=True, return_values=False))
        assert keys == sorted([ts * 10 for ts in range(5000)] + [5])
        assert seq.get(txn, 5) == b"between" and seq.get(txn, 49990) == b"replaced last"
        assert seq.get(txn, 10) == blob
    tables = db.stats()["tables"]
    assert tables["seq"]["bytes"] < 0.9 * tables["plain"]["bytes"]


def test_delete_range_prunes_old_entries_in_steps(db):
    logs = Table(db, "logs", TupleKey(TimestampKey(), UuidKey()), CborValue(), sequential=True)
    people, by_email, _ = make(db)
    node = uuid.uuid4()
    with db.begin(write=True) as txn:
        for ts in range(1000):
            logs.insert(txn, (ts, node), {"ts": ts})
        for i in range(10):
            p = person(f"{i}@x")
            people.insert(txn, p.oid, p)
    deleted = []
    while True:
        with db.begin(write=True) as txn:
            n = logs.delete_range(txn, to_key=(600,), limit=250)
        deleted.append(n)
        if n < 250:
            break
    assert deleted == [250, 250, 100]
    with db.begin() as txn:
        assert logs.count(txn) == 400
        assert next(logs.select(txn, return_keys=True, return_values=False)) == (600, node)
    with db.begin(write=True) as txn:
        assert logs.delete_range(txn, from_key=(900,)) == 100
        assert people.delete_range(txn, limit=4) == 4  # index entries go too
    with db.begin() as txn:
        assert logs.count(txn) == 300 and people.count(txn) == 6 and by_email.count(txn) == 6
        assert people.check_indexes(txn) == []
