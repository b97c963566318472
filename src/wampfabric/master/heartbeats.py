"""Heartbeat storage of an mrealm: every accepted node and worker heartbeat becomes one record of
the mrealm database (``.db-mrealm-<oid>``, master/schema.py: ``mnode_logs``, ``mworker_logs``).

A part of the mrealm controller (``master/mrealm.py``). It receives on the controller's in-process
session (``LocalTransport``: the EVENT lists as the broker built them, no serialization)

- ``crossbarfabriccenter.node.on_heartbeat(node_id, hb)`` and
- ``crossbarfabriccenter.node.on_worker_heartbeat(node_id, worker_id, hb)``.

A heartbeat is accepted only when (checked in this order, a refusal is counted per reason):

1. ``foreign``: its publisher (disclosed by the node role) has role ``node`` and authid = ``node_id``
   (a node cannot post another node's heartbeats; users and the master cannot publish them);
2. ``unpaired``: the publishing session is the joined session of a node of this mrealm that the
   node view knows (``master/nodes.py``);
3. ``malformed``: ``hb`` is a map whose ``seq`` is an integer (``timestamp`` an integer or absent,
   worker id a string);
4. ``replayed``: ``seq`` is above the last one accepted from that node (per worker for worker
   heartbeats) within this session (a node started again starts at 1; its new session does too);
5. ``pubkey``: a ``pubkey`` it carries is the paired key (Crossbar.io's edge sends none: its
   heartbeats are identified by the session alone, D3).

Records (one schema whatever the edge, D4): MNodeLog ``timestamp`` = master receive time (ns, made
strictly increasing per mrealm so keys never collide and append in order), ``sent`` = the
node's ``timestamp``, ``mrealm_id`` = the mrealm oid, ``session`` = the node's session id,
``workers``, ``cpu``/``memory``/``network``/``disk`` from ``system``; MWorkerLog: ``type``,
``process`` (nested as our edge sends it, or the flat fields of Crossbar.io's controller heartbeat
gathered), ``router``. Fields of a wrong type are stored as null.

Writes are batched: what arrives within ``FLUSH_INTERVAL`` (100 ms), at most ``BATCH_MAX`` records,
goes into ONE write transaction, run in a single writer thread (LMDB releases the GIL during
the commit's fsync; the event loop keeps routing). A full database aborts that batch: its
records are counted as ``dropped`` and one error line per ``FULL_LOG_INTERVAL`` says so; the
master goes on. ``stop()`` writes what is pending (nothing accepted is lost on a clean stop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ..common.logs import RateLimitedLog
from ..db.errors import DatabaseError, DatabaseFull, InvalidValue
from .schema import MREALM_DB_MAXSIZE, MNodeLog, MrealmSchema, MWorkerLog, open_mrealm_db

log = logging.getLogger("wampfabric.master.heartbeats")

NODE_HEARTBEAT = "crossbarfabriccenter.node.on_heartbeat"
WORKER_HEARTBEAT = "crossbarfabriccenter.node.on_worker_heartbeat"

FLUSH_INTERVAL = 0.1  # seconds: at most this long between a heartbeat's arrival and its transaction
BATCH_MAX = 2000  # records in one transaction at most (a burst is written in several)
FULL_LOG_INTERVAL = 60.0  # seconds between two "database full" error lines

REFUSALS = ("foreign", "unpaired", "malformed", "replayed", "pubkey")

# the fields of a worker heartbeat that are not process figures (Crossbar.io's controller
# heartbeat is flat: everything else of it is the process)
_WORKER_FIELDS = frozenset(("type", "timestamp", "period", "mrealm_id", "seq", "state", "router", "process"))


def node_record(hb: dict, recv_ns: int, node_oid, mrealm_oid, session_id) -> MNodeLog:
    """The MNodeLog of an accepted node heartbeat (ours or Crossbar.io 26.10's)."""
    # (written out rather than through helper functions: this runs for every heartbeat)
    get = hb.get
    system = get("system")
    if type(system) is not dict:
        system = _EMPTY
    sget = system.get
    period, state, sent, workers = get("period"), get("state"), get("timestamp"), get("workers")
    cpu, memory, network, disk = sget("cpu"), sget("memory"), sget("network"), sget("disk")
    return MNodeLog(timestamp=recv_ns, node_id=node_oid, mrealm_id=mrealm_oid,
                    period=period if type(period) is int else None,
                    state=state if type(state) is int else None, session=session_id,
                    sent=sent if type(sent) is int else None, seq=hb["seq"],
                    workers=workers if type(workers) is dict else None,
                    cpu=cpu if type(cpu) is dict else None, memory=memory if type(memory) is dict else None,
                    network=network if type(network) is dict else None,
                    disk=disk if type(disk) is dict else None)


def worker_record(hb: dict, recv_ns: int, node_oid, mrealm_oid, worker_id: str) -> MWorkerLog:
    """The MWorkerLog of an accepted worker heartbeat: ``process`` nested as our edge sends it, or
    gathered from the flat fields of Crossbar.io's controller heartbeat (D4)."""
    get = hb.get
    process = get("process")
    if process is None:
        process = {k: v for k, v in hb.items() if k not in _WORKER_FIELDS} or None
    elif type(process) is not dict:
        process = None
    wtype, period, state, sent, router = get("type"), get("period"), get("state"), get("timestamp"), get("router")
    return MWorkerLog(timestamp=recv_ns, node_id=node_oid, worker_id=worker_id, mrealm_id=mrealm_oid,
                      period=period if type(period) is int else None, type=wtype if type(wtype) is str else None,
                      state=state if type(state) is int else None, sent=sent if type(sent) is int else None,
                      seq=hb["seq"], process=process, router=router if type(router) is dict else None)


_EMPTY: dict = {}


class HeartbeatStore:
    """The heartbeat part of an mrealm controller (see the module docstring)."""

    maxsize = MREALM_DB_MAXSIZE  # of the mrealm database this part opens

    def __init__(self):
        self.counters = {"node_accepted": 0, "worker_accepted": 0, "stored": 0, "dropped": 0,
                         **{f"refused_{r}": 0 for r in REFUSALS}}
        self._pending: list = []
        self._added = self._done = self._in_flight = 0  # records received, written (or dropped), in the batch
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future | None = None
        self._last_ns = 0
        self._full_logged = float("-inf")  # monotonic time starts near 0 at boot
        self._subs: list = []
        self.db = None
        self._executor: ThreadPoolExecutor | None = None
        self._refused_log = RateLimitedLog(log)

    # -- life ------------------------------------------------------------------------------------

    async def start(self, controller) -> None:
        self.controller = controller
        self.view = controller.nodes
        self.mrealm_oid = controller.mrealm_oid
        self.db = open_mrealm_db(controller.master.cbdir, controller.mrealm_oid, maxsize=self.maxsize)
        self.schema = MrealmSchema.attach(self.db)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hb-{controller.name}")
        self._loop = asyncio.get_running_loop()
        controller.heartbeats = self
        local = controller.local
        self._subs = [await local.subscribe(NODE_HEARTBEAT, self.on_node_heartbeat, details=True),
                      await local.subscribe(WORKER_HEARTBEAT, self.on_worker_heartbeat, details=True)]

    async def stop(self) -> None:
        """Write what is pending, then close the database."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._writing is not None:
            await asyncio.shield(self._writing)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            batch, self._pending = self._pending, []
            await self._loop.run_in_executor(self._executor, self._write, batch)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self.db is not None:
            self.db.close()
            self.db = None

    def status(self) -> dict:
        return dict(self.counters, pending=len(self._pending))

    async def read(self, fn, *args):
        """``fn(db, *args)`` in the writer's thread, where the database stays open until it returns
        (``stop`` closes it only after the thread's last job), after every heartbeat received
        before the call is written; RuntimeError once stopped."""
        if self._executor is None or self.db is None:
            raise RuntimeError("the heartbeat storage has stopped")
        # the heartbeats received before this call are written before fn reads (not those after)
        target = self._added
        while self._done < target and self._executor is not None:
            if self._writing is None:
                self._flush()
            if self._writing is None:
                break
            await asyncio.shield(self._writing)
        if self._executor is None or self.db is None:
            raise RuntimeError("the heartbeat storage has stopped")
        return await self._loop.run_in_executor(self._executor, fn, self.db, *args)

    # -- receiving -------------------------------------------------------------------------------

    def _refuse(self, reason: str, node_id, details) -> None:
        self.counters["refused_" + reason] += 1
        self._refused_log.warning("mrealm '%s': heartbeat refused (%s): node %r, publisher %r (%s) session %s",
                                  self.controller.name, reason, node_id, details.get("publisher_authid"),
                                  details.get("publisher_authrole"), details.get("publisher"))

    def _check(self, node_id, hb, details):
        """The node's state in the view when the heartbeat is acceptable so far, else None (refused)."""
        if details.get("publisher_authid") != node_id or details.get("publisher_authrole") != "node":
            self._refuse("foreign" if type(node_id) is str else "malformed", node_id, details)
            return None
        st = self.view.by_name.get(node_id)
        if st is None or st.session is None or st.session != details.get("publisher"):
            self._refuse("unpaired", node_id, details)
            return None
        if type(hb) is not dict or type(hb.get("seq")) is not int or type(hb.get("timestamp", 0)) is not int:
            self._refuse("malformed", node_id, details)
            return None
        return st

    def _recv_ns(self) -> int:
        ns = time.time_ns()
        if ns <= self._last_ns:
            ns = self._last_ns + 1
        self._last_ns = ns
        return ns

    def on_node_heartbeat(self, node_id=None, hb=None, *rest, details=None, **kw) -> None:
        st = self._check(node_id, hb, details)
        if st is None:
            return
        seq = hb["seq"]
        if seq <= st.hb_seq:
            self._refuse("replayed", node_id, details)
            return
        pubkey = hb.get("pubkey")
        if pubkey is not None and pubkey != st.pubkey:
            self._refuse("pubkey", node_id, details)
            return
        ns = self._recv_ns()
        self.counters["node_accepted"] += 1
        self.view.heartbeat(st, hb, seq, ns)
        self._add(self.schema.mnode_logs, (ns, st.oid),
                  node_record(hb, ns, st.oid, self.mrealm_oid, st.session))

    def on_worker_heartbeat(self, node_id=None, worker_id=None, hb=None, *rest, details=None, **kw) -> None:
        st = self._check(node_id, hb, details)
        if st is None:
            return
        if type(worker_id) is not str or not worker_id:
            self._refuse("malformed", node_id, details)
            return
        seq = hb["seq"]
        last = st.worker_seq.get(worker_id, 0)
        if seq <= last:
            self._refuse("replayed", node_id, details)
            return
        st.worker_seq[worker_id] = seq
        ns = self._recv_ns()
        self.counters["worker_accepted"] += 1
        self.view.worker_heartbeat(st, worker_id, hb, ns)
        self._add(self.schema.mworker_logs, (ns, st.oid, worker_id),
                  worker_record(hb, ns, st.oid, self.mrealm_oid, worker_id))

    # -- writing -----------------------------------------------------------------------------------

    def _add(self, table, key, record) -> None:
        self._added += 1
        self._pending.append((table, key, record))
        if len(self._pending) >= BATCH_MAX:
            self._flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(FLUSH_INTERVAL, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None or not self._pending or self._executor is None:
            return  # the write in progress flushes again when it is done
        batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
        self._in_flight = len(batch)
        self._writing = self._loop.run_in_executor(self._executor, self._write, batch)
        self._writing.add_done_callback(self._written)

    def _written(self, fut) -> None:
        self._done += self._in_flight
        self._in_flight = 0
        self._writing = None
        if self._pending and self._timer is None and self._executor is not None:
            self._timer = self._loop.call_later(FLUSH_INTERVAL, self._flush)

    def _write(self, batch: list) -> None:
        """One write transaction (the writer thread); counts stored and dropped records."""
        stored = bad = 0
        try:
            with self.db.begin(write=True) as txn:
                for table, key, record in batch:
                    try:
                        table.put(txn, key, record)
                        stored += 1
                    except InvalidValue as e:
                        bad += 1
                        log.warning("mrealm '%s': heartbeat record not stored: %s", self.controller.name, e)
        except DatabaseFull as e:
            self.counters["dropped"] += len(batch)
            now = time.monotonic()
            if now - self._full_logged >= FULL_LOG_INTERVAL:
                self._full_logged = now
                log.error("mrealm '%s': %s: heartbeats are not stored (%d dropped so far); prune old "
                          "heartbeats or give the mrealm database more space", self.controller.name, e,
                          self.counters["dropped"])
            return
        except DatabaseError as e:
            self.counters["dropped"] += len(batch)
            log.error("mrealm '%s': %d heartbeat records not stored: %s", self.controller.name, len(batch), e)
            return
        self.counters["stored"] += stored
        self.counters["dropped"] += bad
