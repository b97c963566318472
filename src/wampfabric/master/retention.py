"""Heartbeat retention of an mrealm: old node and worker heartbeat records are deleted.

At 1,000 nodes with 4 workers each and the default 10 s period the master stores 500 heartbeat
records a second (~30 GB a day at ~690 bytes a record): an mrealm database of the default 1 GiB is
full within an hour, and from then on new heartbeats are dropped.  This part of the mrealm
controller (``master/mrealm.py``'s ``PARTS``, after the heartbeat storage, whose database it
uses) prunes them:

- **by age**: every ``prune_interval`` seconds (default 60) the records of ``mnode_logs`` and
  ``mworker_logs`` whose receive time is older than ``retention`` seconds (default 86,400: 24 h)
  are deleted;
- **by space**: when the tables' pages reach ``HIGH_WATER`` (75 %) of the database's maxsize, the
  oldest records are deleted until they are below ``LOW_WATER`` (60 %), even if younger than
  ``retention`` (a warning says so, with what to change): the newest heartbeats are worth more
  than the oldest, and a full database would drop the newest.

Pruning by age never deletes what usage metering has not aggregated yet (records received after
the end of the realm's newest ``usage`` record, master/metering.py): a master that was down
catches up first.  Neither ever deletes a record younger than ``MIN_RETENTION`` (600 s: two metering intervals of 5
minutes, the aggregation of ``usage`` that the design document's metering service reads from
these records; ``retention`` below it is raised to it).

Deletes run in bounded write transactions (``Table.delete_range(txn, to_key=(cutoff_ns,),
limit=BATCH)``, at most ``BATCH`` records each, one per executor call) in a thread of their own:
the event loop keeps routing, and the heartbeat writer's transactions interleave with them (LMDB
serializes write transactions; a heartbeat batch waits for one prune transaction at most).  LMDB
reuses the freed pages, so a database pruned like this stops growing.  Each pass that deleted
something logs one line: how many node and worker records, older than when, how long it took.

Settings: ``controller.fabric-center.heartbeats`` of the master's config, which the node hands
to its router worker as the option ``fabric_center`` (master/personality.py):
``{"retention": <seconds>, "prune_interval": <seconds>}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("wampfabric.master.retention")

DEFAULT_RETENTION = 86_400  # seconds
DEFAULT_PRUNE_INTERVAL = 60  # seconds
METERING_INTERVAL = 300  # seconds: the usage aggregation's interval (design document, "Metering Service")
MIN_RETENTION = 2 * METERING_INTERVAL
BATCH = 5_000  # records per write transaction
HIGH_WATER = 0.75  # of maxsize: prune by space above this ...
LOW_WATER = 0.60  # ... down to this

SETTINGS_KEY = "heartbeats"  # controller.fabric-center.heartbeats
HEARTBEAT_SETTINGS = {"retention": DEFAULT_RETENTION, "prune_interval": DEFAULT_PRUNE_INTERVAL}


def check_settings(section, path: str = "controller.fabric-center.heartbeats") -> dict:
    """``controller.fabric-center.heartbeats`` with the defaults filled in; ValueError naming the
    path and the reason for anything else than integer seconds (retention >= 600, prune_interval
    1..86400)."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: must be a dict, not {type(section).__name__}")
    unknown = set(section) - set(HEARTBEAT_SETTINGS)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(known: {', '.join(HEARTBEAT_SETTINGS)})")
    out = dict(HEARTBEAT_SETTINGS, **section)
    for key, lo, hi in (("retention", MIN_RETENTION, 10 * 365 * 86_400), ("prune_interval", 1, 86_400)):
        v = out[key]
        if type(v) is not int or not lo <= v <= hi:
            raise ValueError(f"{path}.{key}: must be an integer number of seconds from {lo} to {hi}, not {v!r}")
    return out


def settings_of(master) -> dict:
    """The retention settings the master's router worker was given (defaults when none)."""
    worker = getattr(master, "worker", None)
    options = getattr(worker, "options", None) or {}
    fc = options.get("fabric_center") or {}
    return check_settings(fc.get(SETTINGS_KEY))


class HeartbeatRetention:
    """The retention part of an mrealm controller (see the module docstring).

    ``clock`` (ns since the epoch) can be replaced, e.g. by a test that writes records with
    receive times of its own."""

    clock = staticmethod(time.time_ns)

    def __init__(self, retention: int | None = None, prune_interval: float | None = None):
        self.retention = retention
        self.prune_interval = prune_interval
        self.counters = {"passes": 0, "pruned_node": 0, "pruned_worker": 0, "pruned_by_space": 0, "errors": 0}
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.store = None
        self.master = None
        self.mrealm_oid = None

    async def start(self, controller) -> None:
        self.name = controller.name
        self.master = getattr(controller, "master", None)
        self.mrealm_oid = getattr(controller, "mrealm_oid", None)
        self.store = controller.heartbeats  # the HeartbeatStore: its database and schema
        if self.store is None or self.store.db is None:
            raise RuntimeError("heartbeat retention needs the heartbeat storage part before it (PARTS)")
        settings = settings_of(controller.master)
        if self.retention is None:
            self.retention = settings["retention"]
        if self.prune_interval is None:
            self.prune_interval = settings["prune_interval"]
        self.retention = max(self.retention, MIN_RETENTION)
        controller.retention = self
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prune-{controller.name}")
        self._task = asyncio.get_running_loop().create_task(self._run())
        log.info("mrealm '%s': heartbeats kept %d s (pruned every %s s)", self.name, self.retention,
                 self.prune_interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # a transaction in progress finishes first
            self._executor = None

    def status(self) -> dict:
        return dict(self.counters, retention=self.retention, prune_interval=self.prune_interval)

    async def _run(self) -> None:
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters["errors"] += 1
                log.exception("mrealm '%s': pruning old heartbeats failed (tried again in %s s)", self.name,
                              self.prune_interval)
            await asyncio.sleep(self.prune_interval)

    # -- one pass ------------------------------------------------------------------------------------

    async def prune(self) -> dict:
        """One pass: by age, then by space; returns what it deleted."""
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        now = self.clock()
        floor = now - MIN_RETENTION * 10**9  # never at or after this
        cutoff = min(now - self.retention * 10**9, floor)
        # never by age what metering has not aggregated yet (a master that was down catches up)
        metering = getattr(self.master, "metering", None)
        if metering is not None:
            aggregated = metering.safe_prune_before(self.mrealm_oid)
            cutoff = min(cutoff, aggregated if aggregated is not None else 0)
        node, worker = await self._delete_before(loop, cutoff)
        by_space = 0
        used, maxsize = await loop.run_in_executor(self._executor, self._space)
        if used >= HIGH_WATER * maxsize:
            for _ in range(8):  # each round moves the cutoff by the share of space to free
                oldest = await loop.run_in_executor(self._executor, self._oldest)
                if oldest is None or oldest >= floor:
                    break
                share = min(1.0, max(0.05, (used - LOW_WATER * maxsize) / max(used, 1)))
                space_cutoff = min(floor, oldest + int((now - oldest) * share) + 1)
                n, w = await self._delete_before(loop, space_cutoff)
                node, worker, by_space = node + n, worker + w, by_space + n + w
                used, maxsize = await loop.run_in_executor(self._executor, self._space)
                if used < LOW_WATER * maxsize:
                    break
            if by_space:
                log.warning("mrealm '%s': the heartbeat tables used %d%% of the database's %d bytes: %d records "
                            "younger than the retention of %d s deleted (oldest kept from %s); give the mrealm "
                            "database more space (controller.fabric-center.database.mrealm_maxsize) or keep "
                            "heartbeats for less time (controller.fabric-center.heartbeats.retention)",
                            self.name, int(100 * HIGH_WATER), maxsize, by_space, self.retention,
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(space_cutoff / 1e9)))
        self.counters["passes"] += 1
        self.counters["pruned_node"] += node
        self.counters["pruned_worker"] += worker
        self.counters["pruned_by_space"] += by_space
        if node or worker:
            log.info("mrealm '%s': pruned %d node and %d worker heartbeats received before %s (retention %d s) "
                     "in %.0f ms", self.name, node, worker,
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cutoff / 1e9)), self.retention,
                     1000 * (time.monotonic() - t0))
        return {"node": node, "worker": worker, "by_space": by_space, "cutoff": cutoff}

    async def _delete_before(self, loop, cutoff: int) -> tuple[int, int]:
        schema = self.store.schema
        counts = []
        for table in (schema.mnode_logs, schema.mworker_logs):
            total = 0
            while True:  # bounded transactions, one executor call each
                n = await loop.run_in_executor(self._executor, self._delete_batch, table, cutoff)
                total += n
                if n < BATCH:
                    break
            counts.append(total)
        return counts[0], counts[1]

    def _delete_batch(self, table, cutoff: int) -> int:
        with self.store.db.begin(write=True) as txn:
            return table.delete_range(txn, to_key=(cutoff,), limit=BATCH)

    def _space(self) -> tuple[int, int]:
        db = self.store.db
        return db.used_bytes(), db.maxsize

    def _oldest(self) -> int | None:
        """The receive time (ns) of the oldest heartbeat record of either table."""
        schema = self.store.schema
        oldest = None
        with self.store.db.begin() as txn:
            for table in (schema.mnode_logs, schema.mworker_logs):
                for key in table.select(txn, return_keys=True, return_values=False, limit=1):
                    ts = key[0]
                    oldest = ts if oldest is None else min(oldest, ts)
        return oldest
