"""Usage metering on the master: the heartbeat loop, aggregation into ``usage`` records, and
their signed submission to a metering service (design document, "Metering Service";
docs/metering.md).

**Aggregation.**  Time is cut into intervals of ``period`` seconds (default 300) on a fixed grid
(multiples of the period since the Unix epoch, so twelve 5-minute intervals make exactly one
hour).  For every management realm and every interval that has ended (``grace`` seconds ago, for
heartbeats still in the writer's batch) and holds heartbeats, one ``MasterNodeUsage`` record is
written to the global table ``usage`` under ``(end of interval, mrealm oid)``:

- ``nodes``: node-seconds: the ``period`` of every node heartbeat (``mnode_logs``) in it;
- ``count``: the worker heartbeats (``mworker_logs``) in it; ``controllers``, ``routers``,
  ``containers``, ``guests``, ``proxies``, ``hostmonitors``, ``marketmakers``: worker-seconds,
  the ``period`` of each worker heartbeat of that type;
- ``sessions``: session-seconds: ``router.sessions x period`` of each router worker heartbeat;
- ``msgs_<type>``: the messages routed in the interval (router heartbeats carry the counts since
  the previous heartbeat, edge/heartbeat.py).

Heartbeats are keyed by the master's receive time, so an interval's content is final once it has
ended; an interval without heartbeats gives no record.  The next interval to aggregate for a realm
follows its newest record (the index ``usage/by_mrealm``), so intervals missed while the master
was down are caught up at the next start, and aggregating twice writes nothing twice (a record
that exists is never overwritten).  The reads run in a thread (the realm's heartbeat writer's
thread, which also closes its database only after them); the writes to the global database are
small and run on the event loop.  The databases of deleted realms (``.db-mrealm-<oid>.deleted-*``)
are aggregated to their end and then removed.

**Submission.**  With a URL (``controller.fabric-center.metering.submit.url`` or
``CROSSBAR_METERING_URL``) every record with status 1 (index ``usage/pending``) is POSTed, signed
with the master's key (wampfabric.protocol.metering); a receipt sets status 2, its
``metering_id`` and ``sent``.  A service that cannot be reached or answers an error leaves the
record at status 1 with ``status_message``; the next round comes after a backoff (2, 4, 8 ... s, at
most ``submit.period``); ``submit.maxerrors`` failed records end a round.  A 409 ``conflict`` (the
service holds a different record under this record's key: retrying cannot help) sets status 3.
The service answers a record it already holds with its first ``metering_id`` (``duplicate``), so
a master killed between the POST and the status update submits it again without counting it twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pprint
import random
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config.base import ConfigError
from ..config.controller import check_metering, check_metering_url
from ..db import Database, DatabaseError
from ..protocol.metering import (COUNTER_FIELDS, MSG_TYPES, USAGE_FIELDS, WORKER_TYPE_FIELDS, MeteringError,
                                 parse_receipt, sign_submission)
from .schema import MREALM_DB_PREFIX, MasterNodeUsage, MrealmSchema

log = logging.getLogger("wampfabric.master.metering")

URL_ENV = "CROSSBAR_METERING_URL"
SETTINGS_KEY = "metering"  # controller.fabric-center.metering
MAX_INTERVALS_PER_PASS = 2016  # a week of 5-minute intervals per realm and pass; the rest next pass
MAX_SUBMIT_PER_ROUND = 500
RECEIPT_MAX_BYTES = 64 * 1024


# -- settings ----------------------------------------------------------------------------------------

def check_settings(section, path: str = "controller.fabric-center.metering") -> dict:
    """``controller.fabric-center.metering`` with the defaults filled in (config/controller.py
    checks it) and the URL from ``CROSSBAR_METERING_URL`` when the config names none; ValueError
    naming the path and the reason otherwise."""
    try:
        out = check_metering({} if section is None else section, path)
        if out["submit"]["url"] is None and os.environ.get(URL_ENV):
            out["submit"]["url"] = os.environ[URL_ENV]
            check_metering_url(out["submit"]["url"], URL_ENV)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return out


def settings_of(master) -> dict:
    options = getattr(getattr(master, "worker", None), "options", None) or {}
    fc = options.get("fabric_center") or {}
    return check_settings(fc.get(SETTINGS_KEY))


# -- formats ----------------------------------------------------------------------------------------

def ns_iso(ns: int) -> str:
    """``2019-06-26T12:01:00.000000000`` (UTC, nanoseconds), as the design document's log lines."""
    s, frac = divmod(int(ns), 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}"


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def wire_record(rec: MasterNodeUsage) -> dict:
    """The submitted fields of a stored record (USAGE_FIELDS): ``pubkey`` as hex, ``mrealm_id``
    as a UUID string."""
    out = {}
    for name in USAGE_FIELDS:
        v = getattr(rec, name)
        if name == "pubkey":
            v = v.hex() if isinstance(v, (bytes, bytearray)) else v
        elif name == "mrealm_id":
            v = str(v)
        elif v is None:
            v = 0
        out[name] = v
    return out


def usage_api(rec: MasterNodeUsage) -> dict:
    """A usage record as the API, the events and ``master usage --output json`` give it: UUIDs as
    strings, ``pubkey`` as hex."""
    out = {}
    for k, v in rec.marshal().items():
        if isinstance(v, uuid.UUID):
            v = str(v)
        elif isinstance(v, (bytes, bytearray)):
            v = v.hex()
        out[k] = v
    return out


# -- aggregation (sans loop: runs in a thread) ------------------------------------------------------

_MSG_KEYS = tuple((m, f"msgs_{m}") for m in MSG_TYPES)


def aggregate_interval(schema: MrealmSchema, txn, t_from: int, t_until: int) -> dict | None:
    """The counters (COUNTER_FIELDS) of the heartbeats received in ``[t_from, t_until)`` (ns), or
    None when there are none.  See the module docstring for the rules."""
    out = dict.fromkeys(COUNTER_FIELDS, 0)
    found = False
    nodes = 0
    for rec in schema.mnode_logs.select(txn, from_key=(t_from,), to_key=(t_until,)):
        found = True
        nodes += rec.period or 0
    out["nodes"] = nodes
    count = sessions = 0
    for rec in schema.mworker_logs.select(txn, from_key=(t_from,), to_key=(t_until,)):
        found = True
        count += 1
        period = rec.period or 0
        field = WORKER_TYPE_FIELDS.get(rec.type)
        if field is not None:
            out[field] += period
        router = rec.router
        if router:
            s = router.get("sessions")
            if type(s) is int and s > 0:
                sessions += s * period
            msgs = router.get("messages")
            if msgs:
                for m, f in _MSG_KEYS:
                    n = msgs.get(m)
                    if type(n) is int and n > 0:
                        out[f] += n
    out["count"] = count
    out["sessions"] = sessions
    return out if found else None


def _first_ts(schema: MrealmSchema, txn, from_ns: int) -> int | None:
    """The receive time of the first heartbeat (node or worker) at or after ``from_ns``."""
    first = None
    for table in (schema.mnode_logs, schema.mworker_logs):
        for key in table.select(txn, from_key=(from_ns,), return_keys=True, return_values=False, limit=1):
            first = key[0] if first is None else min(first, key[0])
    return first


def pending_intervals(db: Database, start: int | None, now_ns: int, period: int, grace: int,
                      limit: int = MAX_INTERVALS_PER_PASS) -> tuple[list, bool]:
    """``([(t_from, t_until, counters), ...], more)``: the intervals of one realm database not
    aggregated yet (from ``start``, the end of the realm's newest record, or from its first
    heartbeat), ended at least ``grace`` s before ``now_ns``; ``more`` when ``limit`` stopped it.
    Empty intervals are skipped by seeking the next heartbeat."""
    p = period * 10**9
    horizon = now_ns - grace * 10**9
    schema = MrealmSchema.attach(db)
    out = []
    pos = start or 0
    with db.begin() as txn:
        while True:
            nxt = _first_ts(schema, txn, pos)
            if nxt is None:
                return out, False
            t_from = max(pos, (nxt // p) * p)
            t_until = (t_from // p + 1) * p
            if t_until > horizon:
                return out, False
            if len(out) >= limit:
                return out, True
            counters = aggregate_interval(schema, txn, t_from, t_until)
            if counters is not None:
                out.append((t_from, t_until, counters))
            pos = t_until


def _has_heartbeats_from(db: Database, from_ns: int) -> bool:
    with db.begin() as txn:
        return _first_ts(MrealmSchema.attach(db), txn, from_ns) is not None


# -- the loop ---------------------------------------------------------------------------------------

class Metering:
    """The master heartbeat loop (aggregation) and the submitter; one per master, started by the
    domain controller.  ``clock`` (ns) can be replaced by tests."""

    clock = staticmethod(time.time_ns)
    on_written = None  # callable(list of MasterNodeUsage): after new records are stored

    def __init__(self, master, settings: dict | None = None, signing_key=None):
        self.master = master
        self.settings = settings or settings_of(master)
        self.period = self.settings["period"]
        self.grace = self.settings["grace"]
        self.submit_settings = self.settings["submit"]
        self.url = self.submit_settings["url"]
        self.key = signing_key  # Ed25519PrivateKey: the master's node key
        self.pubkey = signing_key.public_key().public_bytes_raw() if signing_key is not None else None
        self.iteration = 0
        self.counters = {"iterations": 0, "intervals": 0, "submitted": 0, "duplicates": 0, "failed": 0,
                         "conflicts": 0, "retired_dbs": 0}
        self._task: asyncio.Task | None = None
        self._submitter: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._http = None
        self._failed_rounds = 0
        self.last_error: str | None = None

    # -- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering")
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._submitter = loop.create_task(self._submit_loop())
        where = self.url or "nowhere (no CROSSBAR_METERING_URL: records stay local)"
        log.info("Metering: usage aggregated every %d s, submitted to %s", self.period, where)

    async def stop(self) -> None:
        for task in (self._task, self._submitter):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._task = self._submitter = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def stop_soon(self) -> None:
        """Stop from synchronous code (a session's onLeave): the tasks are cancelled now, the HTTP
        session and the thread are closed in the background."""
        for task in (self._task, self._submitter):
            if task is not None:
                task.cancel()
        self._task = self._submitter = None
        http, self._http = self._http, None
        if http is not None:
            asyncio.ensure_future(http.close())
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def status(self) -> dict:
        return dict(self.counters, period=self.period, url=self.url, iteration=self.iteration,
                    last_error=self.last_error, failed_rounds=self._failed_rounds)

    # -- heartbeat loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            more = False
            try:
                more = await self.iterate()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Master heartbeat loop iteration %d failed", self.iteration)
            if more:
                await asyncio.sleep(0)
                continue
            # the next run: just after the next interval ends (plus the grace for its heartbeats)
            p = self.period * 10**9
            now = self.clock()
            due = (now // p + 1) * p + self.grace * 10**9
            await asyncio.sleep(max(0.05, (due - now) / 1e9))

    async def iterate(self) -> bool:
        """One heartbeat loop iteration: aggregate what has ended, then wake the submitter.
        True when there is more to catch up at once."""
        self.iteration += 1
        self.counters["iterations"] += 1
        n = self.iteration
        t0 = time.monotonic()
        store = self.master.store
        db = store.db
        used = db.used_bytes()
        log.info("Master heartbeat loop iteration %d started .. (global database: %s used, %.2f%% free)", n,
                 human_bytes(used), 100.0 * (1 - used / db.maxsize))
        log.info("  Metering: aggregating heartbeat records .. [started=\"%s\", thread_id=%d]",
                 ns_iso(self.clock()), threading.get_ident())
        last = store.last_usage_timestamp()
        if last is None:
            log.info("  Metering: no metering record stored yet")
        else:
            log.info("  Metering: last metering timestamp stored is \"%s\"", ns_iso(last))
        written, more = await self._aggregate_all(n)
        if written == 0:
            log.info("  Metering: no new intervals to aggregate.")
        log.info("  Metering: finished aggregating [%d intervals]", written)
        if written:
            self._wake.set()
        log.info("Master heartbeat loop iteration %d finished: in %d ms", n, int(1000 * (time.monotonic() - t0)))
        return more

    async def _aggregate_all(self, seq: int) -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        now = self.clock()
        written = 0
        more = False
        store = self.master.store
        for mrealm in store.mrealms():
            hb = self._heartbeat_store(mrealm.name)
            if hb is None:
                continue  # not running: aggregated once it runs (nothing arrives while it does not)
            start = store.last_usage_timestamp(mrealm.oid)
            try:
                found, m = await hb.read(pending_intervals, start, now, self.period, self.grace)
            except RuntimeError:
                continue  # its controller stopped meanwhile (the executor is shut down)
            written += self._write(mrealm.oid, found, seq)
            more = more or m
        w, m = await self._aggregate_deleted(loop, now, seq)
        return written + w, more or m

    def _heartbeat_store(self, name: str):
        controller = self.master.mrealms.get(name)
        return getattr(controller, "heartbeats", None)

    async def _aggregate_deleted(self, loop, now: int, seq: int) -> tuple[int, bool]:
        """The databases of deleted realms: aggregated to their end, then removed."""
        written = 0
        more = False
        store = self.master.store
        for oid, path in find_deleted_mrealm_dbs(self.master.cbdir):
            start = store.last_usage_timestamp(oid)
            try:
                found, m, done = await loop.run_in_executor(self._executor, self._drain_deleted, path, start, now)
            except DatabaseError as e:
                log.error("  Metering: the database of deleted mrealm %s (%s) cannot be read: %s", oid, path, e)
                continue
            written += self._write(oid, found, seq)
            more = more or m
            if done:
                shutil.rmtree(path, ignore_errors=True)
                self.counters["retired_dbs"] += 1
                log.info("  Metering: deleted mrealm %s aggregated to its last heartbeat: its database %s removed",
                         oid, path.name)
        return written, more

    def _drain_deleted(self, path: Path, start, now: int):
        db = Database(path, 2**20, readonly=True)
        try:
            found, more = pending_intervals(db, start, now, self.period, self.grace)
            end = found[-1][1] if found else (start or 0)
            done = not more and not _has_heartbeats_from(db, end)
            return found, more, done
        finally:
            db.close()

    def _write(self, mrealm_oid, found: list, seq: int) -> int:
        if not found:
            return 0
        store = self.master.store
        processed = self.clock()
        records = []
        for t_from, t_until, counters in found:
            records.append(MasterNodeUsage(
                timestamp=t_until, timestamp_from=t_from, mrealm_id=mrealm_oid, pubkey=self.pubkey, seq=seq,
                processed=processed, sent=None, status=MasterNodeUsage.RECEIVED, status_message=None,
                metering_id=None, **counters))
        added = store.add_usage(records)
        self.counters["intervals"] += len(added)
        if added and self.on_written is not None:
            try:
                self.on_written(added)
            except Exception:
                log.exception("  Metering: publishing new usage records failed")
        return len(added)

    def safe_prune_before(self, mrealm_oid) -> int | None:
        """Heartbeats received before this (ns) are aggregated: retention may delete them.  None when
        nothing of the realm is aggregated yet."""
        return self.master.store.last_usage_timestamp(mrealm_oid)

    # -- submission ---------------------------------------------------------------------------------

    async def _submit_loop(self) -> None:
        if self.url is None or self.key is None:
            return
        self._wake.set()  # at start: what is pending from before
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                ok = await self.submit_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("  Metering: submission round failed")
                ok = False
            if ok:
                self._failed_rounds = 0
                continue
            self._failed_rounds += 1
            delay = min(self.submit_settings["period"], 2 ** min(self._failed_rounds, 16))
            delay *= random.uniform(0.8, 1.0)
            log.info("  Metering: submission retried in %.0f s", delay)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._wake.set()

    async def submit_pending(self) -> bool:
        """Submit every record with status 1 (oldest first); True if none failed."""
        import aiohttp

        store = self.master.store
        pending = store.pending_usage(MAX_SUBMIT_PER_ROUND)
        if not pending:
            return True
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.submit_settings["timeout"]))
        errors = 0
        for rec in pending:
            if errors >= self.submit_settings["maxerrors"]:
                break
            outcome = await self._submit_one(rec)
            if outcome == "unreachable":
                return False
            if outcome != "ok":
                errors += 1
        if len(pending) == MAX_SUBMIT_PER_ROUND and errors == 0:
            self._wake.set()
        return errors == 0

    async def _submit_one(self, rec: MasterNodeUsage) -> str:
        import aiohttp

        store = self.master.store
        wire = wire_record(rec)
        shown = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in sorted(rec.marshal().items())}
        log.info("  Metering: submitting metering record\n%s", pprint.pformat(shown, width=100))
        key = (rec.timestamp, rec.mrealm_id)
        try:
            body = sign_submission(wire, self.key, sent=self.clock())
        except MeteringError as e:  # e.g. a counter beyond what the wire allows: never submittable
            store.update_usage(key, status=MasterNodeUsage.FAILED, status_message=f"not submittable: {e}")
            log.error("  Metering: metering record for \"%s\" of mrealm %s cannot be submitted: %s",
                      ns_iso(rec.timestamp), rec.mrealm_id, e)
            return "error"
        try:
            async with self._http.post(self.url, data=body, headers={"Content-Type": "application/json"}) as resp:
                data = await resp.content.read(RECEIPT_MAX_BYTES)
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            msg = f"{self.url}: {type(e).__name__}: {e}".rstrip(": ")
            self._failed(key, msg)
            return "unreachable"
        if status == 200:
            try:
                metering_id, duplicate = parse_receipt(data)
            except ValueError as e:
                self._failed(key, f"{self.url}: HTTP 200 but {e}")
                return "error"
            store.update_usage(key, status=MasterNodeUsage.SUBMITTED, metering_id=metering_id, sent=self.clock(),
                               status_message=None)
            self.counters["submitted"] += 1
            if duplicate:
                self.counters["duplicates"] += 1
            self.last_error = None
            log.info("  Metering: metering record for \"%s\" processed with new status %d [metering_id=\"%s\"].",
                     ns_iso(rec.timestamp), MasterNodeUsage.SUBMITTED, metering_id)
            return "ok"
        message = _error_text(data)
        if status == 409 and message.startswith("conflict"):
            store.update_usage(key, status=MasterNodeUsage.FAILED, status_message=f"HTTP 409: {message}")
            self.counters["conflicts"] += 1
            log.error("  Metering: metering record for \"%s\" of mrealm %s refused for good (status %d): HTTP 409 %s",
                      ns_iso(rec.timestamp), rec.mrealm_id, MasterNodeUsage.FAILED, message)
            return "error"
        self._failed(key, f"{self.url}: HTTP {status}: {message}")
        return "error"

    def _failed(self, key, message: str) -> None:
        self.counters["failed"] += 1
        self.last_error = message
        self.master.store.update_usage(key, status_message=message[:500])
        log.warning("  Metering: metering record for \"%s\" not submitted (stays at status 1): %s", ns_iso(key[0]),
                    message)


def _error_text(data: bytes) -> str:
    import json

    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and "error" in doc:
            return f"{doc['error']}: {doc.get('message', '')}".strip()
    except ValueError:
        pass
    return data[:200].decode("utf-8", "replace").strip() or "(no body)"


def find_deleted_mrealm_dbs(cbdir) -> list[tuple[uuid.UUID, Path]]:
    """(mrealm oid, path) of the kept databases of deleted realms (``.db-mrealm-<oid>.deleted-*``)."""
    found = []
    try:
        entries = list(Path(cbdir).iterdir())
    except OSError:
        return found
    for entry in entries:
        name = entry.name
        if not name.startswith(MREALM_DB_PREFIX) or ".deleted-" not in name or not entry.is_dir():
            continue
        try:
            oid = uuid.UUID(name[len(MREALM_DB_PREFIX):].split(".deleted-", 1)[0])
        except ValueError:
            continue
        found.append((oid, entry))
    return sorted(found)
