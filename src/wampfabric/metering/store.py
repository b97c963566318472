"""The metering service's storage: one interface (``Store``), two backends chosen by a target
string: SQLite (stdlib ``sqlite3``; a file path, or ``sqlite:<path>``) and PostgreSQL (psycopg 3;
``postgresql://...`` or ``postgres://...``).

Tables (created on first open; ``meta`` holds the schema version):

- ``keys(pubkey PK, customer, added, revoked)``: the registered master keys;
- ``records(metering_id PK, pubkey, mrealm_id, timestamp, timestamp_from, digest, record, nonce,
  sent, signature, received; UNIQUE(pubkey, mrealm_id, timestamp))``: the accepted usage records;
  ``record`` is the canonical JSON of the record, so with ``nonce``, ``sent`` and ``signature`` the
  signed text can be rebuilt and checked against ``pubkey``;
- ``nonces(pubkey, nonce, sent; PK(pubkey, nonce))``: the nonces seen, purged once ``sent`` is
  older than the skew window (a replay is then refused as stale);
- ``hourly(pubkey, hour, records, <every COUNTER_FIELDS field>; PK(pubkey, hour))``: per master key
  and hour (of ``timestamp_from``), the number of records and the sum of every counter, updated in
  the transaction that inserts the record (a record is counted exactly once).

Every time is an integer: nanoseconds since the Unix epoch.  The methods are synchronous; the
service runs them in worker threads (``AsyncStore``): one for SQLite, a few for PostgreSQL, each
thread with its own connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..protocol.metering import COUNTER_FIELDS, canonical

__all__ = ["SCHEMA_VERSION", "HOUR_NS", "StoreError", "Store", "SqliteStore", "PostgresStore", "open_store",
           "is_postgres", "describe_target", "AsyncStore", "hour_of"]

SCHEMA_VERSION = 1
HOUR_NS = 3600 * 10**9
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000

PG_INSTALL_HINT = "pip install 'wampfabric[postgres]'"


class StoreError(Exception):
    """Storage that cannot be opened or used; ``str()`` is one line for the user."""


def hour_of(ns: int) -> int:
    """The start of the hour (ns) that ``ns`` falls in."""
    return ns - ns % HOUR_NS


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://")) or (
        "=" in target and not target.startswith("sqlite:") and ("dbname" in target or "host" in target))


def describe_target(target: str) -> str:
    """``sqlite:<path>`` or ``postgresql://<host>/<db>`` (no user, no password)."""
    if not is_postgres(target):
        return f"sqlite:{_sqlite_path(target)}"
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(target)
    except Exception:  # noqa: BLE001 - a description, never an error
        return "postgresql://?/?"
    host = d.get("host") or "localhost"
    if "port" in d and d.get("port"):
        host = f"{host}:{d['port']}"
    return f"postgresql://{host}/{d.get('dbname') or ''}"


def _sqlite_path(target: str) -> Path:
    return Path(target[len("sqlite:"):] if target.startswith("sqlite:") else target).resolve()


_COUNTER_COLS = ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in COUNTER_FIELDS)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys (pubkey TEXT PRIMARY KEY, customer TEXT NOT NULL, added BIGINT NOT NULL, "
    "revoked BIGINT)",
    "CREATE INDEX IF NOT EXISTS keys_customer ON keys (customer)",
    "CREATE TABLE IF NOT EXISTS records (metering_id {uuid} PRIMARY KEY, pubkey TEXT NOT NULL, "
    "mrealm_id {uuid} NOT NULL, timestamp BIGINT NOT NULL, timestamp_from BIGINT NOT NULL, digest TEXT NOT NULL, "
    "record TEXT NOT NULL, nonce TEXT NOT NULL, sent BIGINT NOT NULL, signature TEXT NOT NULL, "
    "received BIGINT NOT NULL, UNIQUE (pubkey, mrealm_id, timestamp))",
    "CREATE INDEX IF NOT EXISTS records_by_time ON records (pubkey, timestamp_from)",
    "CREATE TABLE IF NOT EXISTS nonces (pubkey TEXT NOT NULL, nonce TEXT NOT NULL, sent BIGINT NOT NULL, "
    "PRIMARY KEY (pubkey, nonce))",
    "CREATE INDEX IF NOT EXISTS nonces_by_sent ON nonces (sent)",
    f"CREATE TABLE IF NOT EXISTS hourly (pubkey TEXT NOT NULL, hour BIGINT NOT NULL, records BIGINT NOT NULL, "
    f"{_COUNTER_COLS}, PRIMARY KEY (pubkey, hour))",
]

_RECORD_COLS = ("metering_id", "pubkey", "mrealm_id", "timestamp", "timestamp_from", "digest", "record", "nonce",
                "sent", "signature", "received")
_HOURLY_INSERT = (
    f"INSERT INTO hourly (pubkey, hour, records, {', '.join(COUNTER_FIELDS)}) "
    f"VALUES (?, ?, 1, {', '.join('?' for _ in COUNTER_FIELDS)}) "
    f"ON CONFLICT (pubkey, hour) DO UPDATE SET records = hourly.records + 1, "
    + ", ".join(f"{c} = hourly.{c} + excluded.{c}" for c in COUNTER_FIELDS))


class Store:
    """The storage interface; subclasses supply the connection and the SQL dialect."""

    target: str
    #: the parameter marker of the driver
    _mark = "?"

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return describe_target(self.target)

    # -- the dialect -------------------------------------------------------------------------
    def _tx(self):
        """A context manager: one transaction (commit at the end, rollback on an exception),
        yielding ``execute(sql, params) -> cursor``."""
        raise NotImplementedError

    def _create_schema(self) -> None:
        with self._tx() as ex:
            self._lock_schema(ex)
            for stmt in _SCHEMA:
                ex(stmt.format(uuid=self._uuid_type), ())
            row = ex("SELECT value FROM meta WHERE name = 'schema_version'", ()).fetchone()
            if row is None:
                ex("INSERT INTO meta (name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(f"{self.describe()}: schema version {row[0]}, this wampfabric knows {SCHEMA_VERSION}")

    _uuid_type = "TEXT"

    def _lock_schema(self, ex) -> None:
        pass

    # -- keys --------------------------------------------------------------------------------
    def key_add(self, pubkey: str, customer: str) -> bool:
        """Register ``pubkey`` for ``customer``; False if it is registered already (a revoked key
        stays revoked: revocation is final)."""
        with self._tx() as ex:
            cur = ex("INSERT INTO keys (pubkey, customer, added, revoked) VALUES (?, ?, ?, NULL) "
                     "ON CONFLICT (pubkey) DO NOTHING", (pubkey, customer, time.time_ns()))
            return cur.rowcount == 1

    def key_revoke(self, pubkey: str) -> bool:
        """Revoke ``pubkey``; False if it is not registered or already revoked."""
        with self._tx() as ex:
            cur = ex("UPDATE keys SET revoked = ? WHERE pubkey = ? AND revoked IS NULL", (time.time_ns(), pubkey))
            return cur.rowcount == 1

    def key_list(self) -> list[dict]:
        with self._tx() as ex:
            rows = ex("SELECT pubkey, customer, added, revoked FROM keys ORDER BY customer, added", ()).fetchall()
        return [{"pubkey": r[0], "customer": r[1], "added": r[2], "revoked": r[3]} for r in rows]

    # -- submissions -------------------------------------------------------------------------
    def submit(self, sub, digest: str, now_ns: int, max_skew_ns: int) -> tuple[str, str | None]:
        """Check and store a verified submission (``protocol.metering.Submission``) in one
        transaction.  Returns (outcome, metering_id): ``accepted`` / ``duplicate`` with the id,
        or ``unknown_key``, ``revoked``, ``stale``, ``replayed``, ``conflict`` with None."""
        try:
            return self._submit(sub, digest, now_ns, max_skew_ns)
        except _Rollback as r:
            return r.outcome, None

    def _submit(self, sub, digest, now_ns, max_skew_ns):
        rec = sub.record
        with self._tx() as ex:
            row = ex("SELECT revoked FROM keys WHERE pubkey = ?", (sub.pubkey,)).fetchone()
            if row is None:
                return "unknown_key", None
            if row[0] is not None:
                return "revoked", None
            if abs(sub.sent - now_ns) > max_skew_ns:
                return "stale", None
            cur = ex("INSERT INTO nonces (pubkey, nonce, sent) VALUES (?, ?, ?) ON CONFLICT (pubkey, nonce) DO NOTHING",
                     (sub.pubkey, sub.nonce, sub.sent))
            if cur.rowcount != 1:
                raise _Rollback("replayed")
            mid = str(uuid.uuid4())
            cur = ex("INSERT INTO records (metering_id, pubkey, mrealm_id, timestamp, timestamp_from, digest, record, "
                     "nonce, sent, signature, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (pubkey, mrealm_id, timestamp) DO NOTHING",
                     (mid, sub.pubkey, rec["mrealm_id"], rec["timestamp"], rec["timestamp_from"], digest,
                      canonical(rec).decode("ascii"), sub.nonce, sub.sent, sub.signature, now_ns))
            if cur.rowcount != 1:
                held = ex("SELECT metering_id, digest FROM records WHERE pubkey = ? AND mrealm_id = ? AND timestamp = ?",
                          (sub.pubkey, rec["mrealm_id"], rec["timestamp"])).fetchone()
                if held is None:  # cannot happen: the conflicting row is committed (it was waited for)
                    raise StoreError("idempotency key conflict without a stored record")
                if held[1] != digest:
                    # the nonce stays remembered: this very POST cannot become acceptable later
                    return "conflict", None
                return "duplicate", str(held[0])
            ex(_HOURLY_INSERT, (sub.pubkey, hour_of(rec["timestamp_from"]), *(rec[c] for c in COUNTER_FIELDS)))
            return "accepted", mid

    def purge_nonces(self, before_ns: int) -> int:
        """Forget the nonces whose ``sent`` is before ``before_ns``; how many."""
        with self._tx() as ex:
            return ex("DELETE FROM nonces WHERE sent < ?", (before_ns,)).rowcount

    # -- reading -----------------------------------------------------------------------------
    @staticmethod
    def _where(customer, pubkey, from_ns, until_ns, col) -> tuple[str, list]:
        cond, params = [], []
        if customer is not None:
            cond.append("k.customer = ?")
            params.append(customer)
        if pubkey is not None:
            cond.append("t.pubkey = ?")
            params.append(pubkey)
        if from_ns is not None:
            cond.append(f"t.{col} >= ?")
            params.append(from_ns)
        if until_ns is not None:
            cond.append(f"t.{col} < ?")
            params.append(until_ns)
        return (" WHERE " + " AND ".join(cond)) if cond else "", params

    def records(self, customer=None, pubkey=None, from_ns=None, until_ns=None, limit=DEFAULT_LIMIT) -> list[dict]:
        """Accepted records, oldest interval first; ``from``/``until`` bound ``timestamp_from``
        (from inclusive, until exclusive)."""
        where, params = self._where(customer, pubkey, from_ns, until_ns, "timestamp_from")
        cols = ", ".join(f"t.{c}" for c in _RECORD_COLS)
        sql = (f"SELECT k.customer, {cols} FROM records t LEFT JOIN keys k ON k.pubkey = t.pubkey{where} "
               f"ORDER BY t.timestamp_from, t.pubkey, t.mrealm_id LIMIT ?")
        with self._tx() as ex:
            rows = ex(sql, (*params, limit)).fetchall()
        out = []
        for r in rows:
            d = {"customer": r[0], **dict(zip(_RECORD_COLS, r[1:]))}
            d["metering_id"], d["mrealm_id"] = str(d["metering_id"]), str(d["mrealm_id"])
            d["record"] = json.loads(d["record"])
            out.append(d)
        return out

    def hourly(self, customer=None, pubkey=None, from_ns=None, until_ns=None, limit=DEFAULT_LIMIT) -> list[dict]:
        """The hourly sums, oldest hour first; ``from``/``until`` bound ``hour``."""
        where, params = self._where(customer, pubkey, from_ns, until_ns, "hour")
        cols = ", ".join(f"t.{c}" for c in ("pubkey", "hour", "records", *COUNTER_FIELDS))
        sql = (f"SELECT k.customer, {cols} FROM hourly t LEFT JOIN keys k ON k.pubkey = t.pubkey{where} "
               f"ORDER BY t.hour, k.customer, t.pubkey LIMIT ?")
        with self._tx() as ex:
            rows = ex(sql, (*params, limit)).fetchall()
        names = ("customer", "pubkey", "hour", "records", *COUNTER_FIELDS)
        return [dict(zip(names, (r[0], r[1], *(int(x) for x in r[2:])))) for r in rows]


class _Rollback(Exception):
    """Raised inside a transaction to roll it back and answer ``outcome``."""

    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


class _Tx:
    def __init__(self, begin, commit, rollback, execute):
        self._begin, self._commit, self._rollback, self._execute = begin, commit, rollback, execute

    def __enter__(self):
        self._begin()
        return self._execute

    def __exit__(self, et, ev, tb):
        if et is None:
            self._commit()
        else:
            self._rollback()
        return False


class SqliteStore(Store):
    """SQLite in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns, so an
    accepted record survives a kill -9 (and a power cut)."""

    def __init__(self, target: str, create: bool = True):
        import sqlite3

        self.target = target
        path = _sqlite_path(target)
        if not create and not path.exists():
            raise StoreError(f"no metering database at {path} (start the service once, or give --dir)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not path.exists()
            if fresh:  # the database holds the customers' usage: not world-readable
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            if create:
                self._create_schema()
        except sqlite3.Error as e:
            raise StoreError(f"{self.describe()}: {e}") from None
        except OSError as e:
            raise StoreError(f"{self.describe()}: {e.strerror or e}") from None

    def close(self) -> None:
        self._db.close()

    def _tx(self):
        db = self._db

        def execute(sql, params):
            return db.execute(sql, params)

        return _SqliteTx(db, execute)


class _SqliteTx(_Tx):
    def __init__(self, db, execute):
        super().__init__(lambda: db.execute("BEGIN IMMEDIATE"), lambda: db.execute("COMMIT"),
                         lambda: db.execute("ROLLBACK"), execute)


class PostgresStore(Store):
    """PostgreSQL through psycopg 3 (default ``synchronous_commit``: a commit is durable)."""

    _mark = "%s"
    _uuid_type = "UUID"

    def __init__(self, target: str, create: bool = True):
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"PostgreSQL storage needs psycopg 3: {PG_INSTALL_HINT}") from None
        self.target = target
        self._psycopg = psycopg
        try:
            self._db = psycopg.connect(target, autocommit=False, connect_timeout=10)
            if create:
                self._create_schema()
        except psycopg.Error as e:
            raise StoreError(f"{self.describe()}: {_first_line(e)}") from None

    def close(self) -> None:
        self._db.close()

    def _lock_schema(self, ex) -> None:
        # two processes creating the schema at once would collide in the catalog
        ex("SELECT pg_advisory_xact_lock(7417465741)", ())

    def _tx(self):
        db, mark = self._db, self._mark

        def execute(sql, params):
            return db.execute(sql.replace("?", mark) if mark != "?" else sql, params)

        def commit():
            db.commit()

        def rollback():
            db.rollback()

        return _Tx(lambda: None, commit, rollback, execute)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def open_store(target: str, create: bool = True) -> Store:
    """The store of ``target`` (a PostgreSQL URL or conninfo, else an SQLite path)."""
    return PostgresStore(target, create) if is_postgres(target) else SqliteStore(target, create)


class AsyncStore:
    """A store used from the event loop: every call runs in a worker thread that owns its own
    connection (SQLite: one thread; PostgreSQL: ``workers`` threads)."""

    def __init__(self, target: str, workers: int | None = None):
        self.target = target
        first = open_store(target, create=True)  # creates the schema, checks the version
        self.description = first.describe()
        first.close()
        n = workers or (4 if is_postgres(target) else 1)
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="metering-store")

    def _store(self) -> Store:
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = open_store(self.target, create=False)
            with self._lock:
                self._all.append(s)
        return s

    async def _run(self, name: str, *args, **kw):
        loop = asyncio.get_running_loop()

        def call():
            return getattr(self._store(), name)(*args, **kw)

        return await loop.run_in_executor(self._pool, call)

    async def submit(self, sub, digest, now_ns, max_skew_ns):
        return await self._run("submit", sub, digest, now_ns, max_skew_ns)

    async def purge_nonces(self, before_ns):
        return await self._run("purge_nonces", before_ns)

    async def records(self, **kw):
        return await self._run("records", **kw)

    async def hourly(self, **kw):
        return await self._run("hourly", **kw)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for s in self._all:
                try:
                    s.close()
                except Exception:  # noqa: BLE001 - closing at exit
                    pass
            self._all.clear()
