"""``wampfabric master db stats|export`` as a user runs it, beside a process that keeps writing the
databases (as a running master does): read-only, no lock trouble, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

WAMPFABRIC = str(Path(sys.executable).with_name("wampfabric"))

# The writer: a global database with two users, an mrealm with a node, and then heartbeat batches
# into the mrealm database (and a usage record now and then) until it is killed.
WRITER = textwrap.dedent('''
    import sys, time, uuid
    from wampfabric.master.schema import *
    cbdir, m_oid, n_oid = sys.argv[1], uuid.UUID(sys.argv[2]), uuid.UUID(sys.argv[3])
    gdb = open_global_db(cbdir); gs = GlobalSchema.attach(gdb)
    mdb = open_mrealm_db(cbdir, m_oid); ms = MrealmSchema.attach(mdb)
    su, alice = uuid.UUID(int=1), uuid.UUID(int=2)
    with gdb.begin(write=True) as txn:
        gs.users.put(txn, su, User(oid=su, email="superuser", registered=1))
        gs.users.put(txn, alice, User(oid=alice, email="alice@localhost", pubkey="9b" * 32, registered=2))
        gs.mrealms.put(txn, m_oid, ManagementRealm(oid=m_oid, name="mrealm1", owner=su, created=3))
        gs.users_mrealm_roles.put(txn, (su, m_oid), UserMrealmRole(roles=[1]))
        gs.nodes.put(txn, n_oid, Node(oid=n_oid, pubkey="65" * 32, mrealm_oid=m_oid, authid="edge1",
                                      owner_oid=su, authextra={"note": "example"}))
    ts = 1_000_000_000_000_000_000
    print("ready", flush=True)
    while True:
        with mdb.begin(write=True) as txn:
            for w in ("controller", "rw1"):
                ms.mworker_logs.insert(txn, (ts, n_oid, w), MWorkerLog(
                    timestamp=ts, node_id=n_oid, worker_id=w, mrealm_id=m_oid, type="router", seq=ts,
                    process={"cpu_user": 1.5}, router={"sessions": 1, "messages": {"call": 2}}))
            ms.mnode_logs.insert(txn, (ts, n_oid), MNodeLog(timestamp=ts, node_id=n_oid, mrealm_id=m_oid, seq=ts))
        if ts % 10 == 0:
            with gdb.begin(write=True) as txn:
                gs.usage.insert(txn, (ts, m_oid), MasterNodeUsage(timestamp=ts, timestamp_from=ts - 300,
                                mrealm_id=m_oid, pubkey=b"\\xf4" * 32, count=2, status=1))
        ts += 1
        time.sleep(0.002)
''')


def db(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([WAMPFABRIC, "master", "db", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def master_dir(tmp_path):
    """A master node directory whose databases a separate process keeps writing."""
    m_oid, n_oid = uuid.uuid4(), uuid.uuid4()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(m_oid), str(n_oid)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield tmp_path, m_oid, n_oid
        assert proc.poll() is None, "the writer died while the command read its databases"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def test_stats_beside_a_writer(master_dir):
    cbdir, m_oid, _ = master_dir
    r = db("--cbdir", str(cbdir), "stats")
    _no_traceback(r)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"global database: {cbdir / '.db-controller'}" in out
    assert f"mrealm 'mrealm1' ({m_oid}): {cbdir / f'.db-mrealm-{m_oid}'}" in out
    assert "of 128.0 MiB" in out and "of 1.0 GiB" in out and "% free)" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ") and
            len(line.split()) == 3}
    assert rows["users"][0] == "2" and rows["nodes"][0] == "1" and rows["mrealms"][0] == "1"
    assert rows["users/by_email"][0] == "2" and rows["users/by_pubkey"][0] == "1"
    assert int(rows["mworker_logs"][0]) >= 2 and int(rows["mworker_logs"][1]) > 0
    # the option after the subcommand works as well; the writer keeps going meanwhile
    r2 = db("stats", "--cbdir", str(cbdir))
    assert r2.returncode == 0 and int(r2.stdout.split("mworker_logs")[1].split()[0]) >= int(rows["mworker_logs"][0])


def test_export_global_tables_as_json_lines(master_dir):
    cbdir, m_oid, n_oid = master_dir
    r = db("--cbdir", str(cbdir), "export", "users")
    _no_traceback(r)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines == [
        {"key": str(uuid.UUID(int=1)), "value": {"oid": str(uuid.UUID(int=1)), "label": None, "description": None,
                                                 "tags": None, "email": "superuser", "registered": 1, "pubkey": None}},
        {"key": str(uuid.UUID(int=2)), "value": {"oid": str(uuid.UUID(int=2)), "label": None, "description": None,
                                                 "tags": None, "email": "alice@localhost", "registered": 2,
                                                 "pubkey": "9b" * 32}},
    ]
    nodes = [json.loads(line) for line in db("--cbdir", str(cbdir), "export", "nodes").stdout.splitlines()]
    assert nodes[0]["key"] == str(n_oid) and nodes[0]["value"]["authextra"] == {"note": "example"}
    roles = [json.loads(line) for line in db("--cbdir", str(cbdir), "export", "users_mrealm_roles").stdout.splitlines()]
    assert roles == [{"key": [str(uuid.UUID(int=1)), str(m_oid)], "value": {"roles": [1]}}]
    usage = [json.loads(line) for line in db("--cbdir", str(cbdir), "export", "usage").stdout.splitlines()]
    assert usage, "no usage record exported"
    assert usage[0]["key"] == [usage[0]["value"]["timestamp"], str(m_oid)]
    assert usage[0]["value"]["pubkey"] == "f4" * 32  # bytes as hex
    assert isinstance(usage[0]["value"]["timestamp"], int)


def test_export_mrealm_table_by_name_or_oid_while_written(master_dir, tmp_path):
    cbdir, m_oid, n_oid = master_dir
    r = db("--cbdir", str(cbdir), "export", "mworker_logs", "--mrealm", "mrealm1")
    _no_traceback(r)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 2
    keys = [tuple(row["key"]) for row in rows]
    assert keys == sorted(keys)
    ts, node, worker = rows[-1]["key"]
    assert node == str(n_oid) and worker in ("controller", "rw1") and isinstance(ts, int)
    assert rows[-1]["value"]["router"] == {"sessions": 1, "messages": {"call": 2}}
    # by oid, into a file (private: exports hold keys and codes)
    out = tmp_path / "export" / "nodelogs.jsonl"
    out.parent.mkdir()
    r = db("--cbdir", str(cbdir), "export", "mnode_logs", "--mrealm", str(m_oid), "--output", str(out))
    assert r.returncode == 0, r.stderr
    n = len(out.read_text().splitlines())
    assert n >= 1 and f"{n} records of mnode_logs written to {out}" in r.stderr
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"


def test_export_through_a_closed_pipe_is_quiet(master_dir):
    cbdir, *_ = master_dir
    r = subprocess.run(f"{WAMPFABRIC} master db --cbdir {cbdir} export mworker_logs --mrealm mrealm1 | head -1",
                       shell=True, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1
    assert r.stderr == ""


@pytest.mark.parametrize("args,message", [
    (["export", "nosuch"], "no such table 'nosuch' (tables: users, mrealms"),
    (["export", "mworker_logs", "--mrealm", "nosuch"], "unknown mrealm 'nosuch'"),
    (["export", "mworker_logs", "--mrealm", str(uuid.UUID(int=7))], "no database for mrealm"),
    (["export", "mnode_logs"], "table 'mnode_logs' is kept per mrealm: give --mrealm NAME|OID"),
    (["export", "users", "--mrealm", "mrealm1"], "table 'users' is in the global database"),
])
def test_errors_are_one_line(master_dir, args, message):
    cbdir, *_ = master_dir
    r = db("--cbdir", str(cbdir), *args)
    _no_traceback(r)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_errors_without_a_master_directory(tmp_path):
    for args, message in [
        (["--cbdir", str(tmp_path / "missing"), "stats"], f"master node directory {tmp_path / 'missing'} does not exist"),
        (["--cbdir", str(tmp_path), "stats"], f"no master database in {tmp_path}"),
        (["--cbdir", str(tmp_path), "export", "users"], f"no global database at {tmp_path / '.db-controller'}"),
    ]:
        r = db(*args)
        _no_traceback(r)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    # the default node directory: ./.crossbar
    r = db("stats", cwd=tmp_path)
    assert r.returncode == 1 and f"{tmp_path / '.crossbar'} does not exist" in r.stderr
