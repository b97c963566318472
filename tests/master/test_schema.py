"""The master's schema: the global and per-mrealm databases as the design document's examples use
them, their indexes, key orders and records."""

from __future__ import annotations

import time
import uuid

import cbor2
import pytest

from wampfabric.db import DatabaseError, DuplicateKey
from wampfabric.master.schema import (
    GLOBAL_DB_MAXSIZE, MREALM_DB_MAXSIZE, ROLE_OWNER, ROLE_USER, ActivationToken, GlobalSchema,
    ManagementRealm, MasterNodeUsage, MNodeLog, MrealmSchema, MWorkerLog, Node, User, UserMrealmRole,
    find_mrealm_dbs, open_global_db, open_mrealm_db)

NS = 10**9


def worker_log(ts: int, node: uuid.UUID, mrealm: uuid.UUID, worker: str = "rw1", seq: int = 1) -> MWorkerLog:
    """A router worker heartbeat as the protocol reference shows it (one schema for all workers)."""
    process = {"pid": 19484, "status": "sleeping", "num_fds": 12, "num_threads": 3,
               "num_ctx_switches_voluntary": 1670, "num_ctx_switches_involuntary": 12,
               "cpu_user": 2.52, "cpu_system": 0.25, "read_ios": 4234, "write_ios": 100,
               "read_bytes": 520192, "write_bytes": 40960, "cpu_user_per_sec": 0.01,
               "cpu_system_per_sec": 0.0, "read_ios_per_sec": 0.0, "write_ios_per_sec": 0.1}
    router = {"sessions": 3, "roles": 2, "messages": {
        m: 100 + i for i, m in enumerate(("call", "yield", "invocation", "result", "error", "publish",
                                          "published", "event", "register", "registered", "subscribe",
                                          "subscribed"))}}
    return MWorkerLog(timestamp=ts, node_id=node, worker_id=worker, mrealm_id=mrealm, period=10, type="router",
                      state=1, sent=ts - 3_000_000, seq=seq, process=process, router=router)


@pytest.fixture
def gdb(tmp_path):
    db = open_global_db(tmp_path)
    yield db
    db.close()


def test_design_document_examples(tmp_path):
    cbdir = tmp_path
    gdb = open_global_db(cbdir)
    gschema = GlobalSchema.attach(gdb)
    with gdb.begin() as txn:
        assert gschema.usage.count(txn) == 0
    oid = uuid.uuid4()
    mdb = open_mrealm_db(cbdir, oid)
    ms = MrealmSchema.attach(mdb)
    node = uuid.uuid4()
    with mdb.begin(write=True) as txn:
        for i in range(5):
            for w in ("controller", "rw1"):
                ms.mworker_logs.insert(txn, (i * 10 * NS, node, w), worker_log(i * 10 * NS, node, oid, w, i))
            ms.mnode_logs.insert(txn, (i * 10 * NS, node), MNodeLog(timestamp=i * 10 * NS, node_id=node, seq=i))
    with mdb.begin() as txn:
        assert ms.mnode_logs.count(txn) == 5
        last = list(ms.mworker_logs.select(txn, return_keys=True, reverse=True, limit=1))
    assert [k for k, _ in last] == [(40 * NS, node, "rw1")]
    assert last[0][1].seq == 4 and last[0][1].router["sessions"] == 3
    assert gdb.path == cbdir / ".db-controller" and gdb.maxsize == GLOBAL_DB_MAXSIZE == 128 * 2**20
    assert mdb.path == cbdir / f".db-mrealm-{oid}" and mdb.maxsize == MREALM_DB_MAXSIZE == 2**30
    assert find_mrealm_dbs(cbdir) == [(oid, cbdir / f".db-mrealm-{oid}")]
    gdb.close()
    mdb.close()


def test_maxsize_is_configurable(tmp_path):
    db = open_global_db(tmp_path, maxsize=8 * 2**20)
    assert db.maxsize == 8 * 2**20
    db.close()
    with pytest.raises(DatabaseError, match="maxsize must be a positive int"):
        open_mrealm_db(tmp_path, uuid.uuid4(), maxsize=-1)


def test_users_unique_by_email_and_pubkey(gdb):
    gs = GlobalSchema.attach(gdb)
    alice = User(oid=uuid.uuid4(), email="alice@localhost", pubkey="9b" * 32, registered=time.time_ns())
    su = User(oid=uuid.uuid4(), email="superuser")  # no pubkey: not in the pubkey index
    with gdb.begin(write=True) as txn:
        gs.users.insert(txn, alice.oid, alice)
        gs.users.insert(txn, su.oid, su)
    with gdb.begin(write=True) as txn:
        with pytest.raises(DuplicateKey, match="by_email 'alice@localhost'"):
            gs.users.insert(txn, uuid.uuid4(), User(oid=uuid.uuid4(), email="alice@localhost"))
        with pytest.raises(DuplicateKey, match="by_pubkey"):
            gs.users.insert(txn, uuid.uuid4(), User(oid=uuid.uuid4(), email="eve@x", pubkey="9b" * 32))
    with gdb.begin() as txn:
        assert gs.idx_users_by_email.get(txn, "superuser") == su.oid
        assert gs.idx_users_by_pubkey.get_record(txn, "9b" * 32) == alice
        assert gs.idx_users_by_pubkey.count(txn) == 1
        assert gs.users.count(txn) == 2


def test_mrealms_by_name_and_roles(gdb):
    gs = GlobalSchema.attach(gdb)
    owner = uuid.uuid4()
    m1 = ManagementRealm(oid=uuid.uuid4(), name="mrealm1", owner=owner, created=time.time_ns())
    with gdb.begin(write=True) as txn:
        gs.mrealms.insert(txn, m1.oid, m1)
        gs.users_mrealm_roles.put(txn, (owner, m1.oid), UserMrealmRole(roles=[ROLE_OWNER]))
        with pytest.raises(DuplicateKey, match="by_name 'mrealm1'"):
            gs.mrealms.insert(txn, uuid.uuid4(), ManagementRealm(oid=uuid.uuid4(), name="mrealm1"))
    with gdb.begin() as txn:
        assert gs.idx_mrealms_by_name.get(txn, "mrealm1") == m1.oid
        assert gs.users_mrealm_roles.get(txn, (owner, m1.oid)).roles == [ROLE_OWNER]
        assert gs.users_mrealm_roles.get(txn, (uuid.uuid4(), m1.oid)) is None
        # all roles of one user: a prefix of the (user, mrealm) key
        assert gs.users_mrealm_roles.count(txn, prefix=(owner,)) == 1
    assert UserMrealmRole().roles == [] and UserMrealmRole().roles is not UserMrealmRole().roles
    assert ROLE_USER == 3


def test_nodes_by_pubkey_and_by_mrealm_and_authid(gdb):
    gs = GlobalSchema.attach(gdb)
    m1, m2 = uuid.uuid4(), uuid.uuid4()
    edge1 = Node(oid=uuid.uuid4(), pubkey="65" * 32, mrealm_oid=m1, authid="edge1", owner_oid=uuid.uuid4(),
                 authextra={"note": "example", "on_start_apply_config": True})
    other = Node(oid=uuid.uuid4(), pubkey="66" * 32, mrealm_oid=m2, authid="edge1")  # same name, other mrealm
    with gdb.begin(write=True) as txn:
        gs.nodes.insert(txn, edge1.oid, edge1)
        gs.nodes.insert(txn, other.oid, other)
        with pytest.raises(DuplicateKey, match="by_authid"):
            gs.nodes.insert(txn, uuid.uuid4(), Node(oid=uuid.uuid4(), pubkey="67" * 32, mrealm_oid=m1, authid="edge1"))
        with pytest.raises(DuplicateKey, match="by_pubkey"):
            gs.nodes.insert(txn, uuid.uuid4(), Node(oid=uuid.uuid4(), pubkey="65" * 32, mrealm_oid=m2, authid="x"))
    with gdb.begin() as txn:
        assert gs.idx_nodes_by_pubkey.get_record(txn, "65" * 32) == edge1
        assert gs.idx_nodes_by_authid.get(txn, (m1, "edge1")) == edge1.oid
        assert gs.idx_nodes_by_authid.get(txn, (m2, "edge1")) == other.oid
        # the nodes of one mrealm: a prefix of the index key
        assert list(gs.idx_nodes_by_authid.select(txn, prefix=(m1,))) == [edge1.oid]
    # unpairing: delete frees the pubkey and the name
    with gdb.begin(write=True) as txn:
        assert gs.nodes.delete(txn, edge1.oid)
    with gdb.begin() as txn:
        assert gs.idx_nodes_by_pubkey.get(txn, "65" * 32) is None
        assert gs.idx_nodes_by_authid.get(txn, (m1, "edge1")) is None
        assert gs.nodes.check_indexes(txn) == []


def test_activation_tokens_by_email_and_pubkey(gdb):
    gs = GlobalSchema.attach(gdb)
    tok = ActivationToken(oid=uuid.uuid4(), atype=1, status=ActivationToken.PENDING, code="3MEW-QKUR-4SNN",
                          email="alice@localhost", pubkey="9b" * 32, created=time.time_ns())
    with gdb.begin(write=True) as txn:
        gs.activation_tokens.insert(txn, tok.oid, tok)
        # the same email with another key is another token
        gs.activation_tokens.insert(txn, uuid.uuid4(), ActivationToken(
            oid=uuid.uuid4(), email="alice@localhost", pubkey="9c" * 32))
        with pytest.raises(DuplicateKey, match="by_email_pubkey"):
            gs.activation_tokens.insert(txn, uuid.uuid4(), ActivationToken(
                oid=uuid.uuid4(), email="alice@localhost", pubkey="9b" * 32))
    with gdb.begin() as txn:
        assert gs.idx_activation_tokens_by_email_pubkey.get_record(txn, ("alice@localhost", "9b" * 32)) == tok
        assert gs.idx_activation_tokens_by_email_pubkey.count(txn, prefix=("alice@localhost",)) == 2
        assert gs.idx_activation_tokens_by_email_pubkey.count(txn, prefix=("alice@local",)) == 0


def test_usage_records_in_time_order(gdb):
    gs = GlobalSchema.attach(gdb)
    fields = set(MasterNodeUsage.FIELDS)
    assert {"timestamp_from", "timestamp", "mrealm_id", "pubkey", "seq", "count", "nodes", "controllers",
            "routers", "containers", "guests", "proxies", "hostmonitors", "marketmakers", "sessions",
            "processed", "sent", "status", "status_message", "metering_id"} <= fields
    assert {f for f in fields if f.startswith("msgs_")} == {
        f"msgs_{m}" for m in ("call", "yield", "invocation", "result", "error", "publish", "published", "event",
                              "register", "registered", "subscribe", "subscribed")}
    m1, m2 = sorted([uuid.uuid4(), uuid.uuid4()])
    t0 = 1561550160 * NS
    with gdb.begin(write=True) as txn:
        for i in (2, 0, 1):
            for m in (m2, m1):
                rec = MasterNodeUsage(timestamp_from=t0 + i * 300 * NS, timestamp=t0 + (i + 1) * 300 * NS,
                                      mrealm_id=m, pubkey=b"\xf4" * 32, count=60, nodes=300,
                                      status=MasterNodeUsage.RECEIVED)
                gs.usage.insert(txn, (rec.timestamp, m), rec)
    with gdb.begin() as txn:
        keys = list(gs.usage.select(txn, return_keys=True, return_values=False))
        assert keys == sorted(keys) and keys[0] == (t0 + 300 * NS, m1) and len(keys) == 6
        last = next(gs.usage.select(txn, reverse=True, limit=1))
        assert last.timestamp == t0 + 900 * NS and last.mrealm_id == m2
        assert last.msgs_call == 0 and last.routers == 0 and last.sent is None and last.metering_id is None
        # the intervals after a given time (catching up after a restart)
        assert gs.usage.count(txn) == 6
        assert len(list(gs.usage.select(txn, from_key=(t0 + 600 * NS,)))) == 4


def test_mrealm_logs_by_time_range_and_record_size(tmp_path):
    oid, node = uuid.uuid4(), uuid.uuid4()
    mdb = open_mrealm_db(tmp_path, oid)
    ms = MrealmSchema.attach(mdb)
    t0 = time.time_ns() // NS * NS
    with mdb.begin(write=True) as txn:
        for i in range(30):
            ts = t0 + i * 10 * NS
            ms.mnode_logs.insert(txn, (ts, node), MNodeLog(timestamp=ts, node_id=node, mrealm_id=oid, seq=i,
                                                           period=10, workers={"controller": 1, "router": 1}))
            ms.mworker_logs.insert(txn, (ts, node, "rw1"), worker_log(ts, node, oid, seq=i))
    with mdb.begin() as txn:
        # one 5-minute interval [t0, t0 + 300 s)
        window = list(ms.mworker_logs.select(txn, from_key=(t0,), to_key=(t0 + 300 * NS,)))
        assert [w.seq for w in window] == list(range(30))
        assert ms.mnode_logs.count(txn) == 30
        raw = txn.txn.get(t0.to_bytes(8, "big") + node.bytes + b"rw1",
                          db=mdb.env.open_db(b"mworker_logs", txn=txn.txn, create=False))
    mdb.close()
    # the heartbeat record the ingestion figures are measured with is realistic: ~600 bytes of CBOR
    assert 450 <= len(raw) <= 750
    assert cbor2.loads(raw)["router"]["messages"]["call"] == 100


def test_records_keep_unknown_fields():
    node = Node.parse({"oid": str(uuid.uuid4()), "authid": "edge1", "cluster_ip": None, "x_future": [1, 2]})
    assert isinstance(node.oid, uuid.UUID)
    assert node.extra == {"x_future": [1, 2]}
    assert node.marshal()["x_future"] == [1, 2]


def test_attach_twice_gives_the_same_schema(gdb):
    """The master's components attach to one shared Database each on their own."""
    assert GlobalSchema.attach(gdb) is GlobalSchema.attach(gdb)
    assert GlobalSchema.attach(gdb).users is GlobalSchema.attach(gdb).users
