"""Heartbeats of an edge node to its master (design document, "Edge Nodes"; protocol §5).

After ``startup_delay`` seconds, then every ``heartbeat_period`` seconds while the uplink is
joined, the edge publishes (``acknowledge=true``)

- ``crossbarfabriccenter.node.on_heartbeat(node_id, status)``: ``timestamp`` (ns), ``period``,
  ``mrealm_id`` (the mrealm's name, as WELCOME gave it), ``seq``, ``workers`` (count per worker
  type, ``controller`` included), ``state`` 1, ``pubkey`` (the node's public key, hex: the
  master stores a node heartbeat only when it matches the paired key; Crossbar.io's edge omits
  it, D3) and, with ``include_system_stats``, ``system`` (``crossbar.get_system_stats``: cpu
  with ``iowait``, memory, network with ``connection`` counts, disk);
- with ``send_workers_heartbeats``, ``crossbarfabriccenter.node.on_worker_heartbeat(node_id,
  worker_id, status)`` for every worker, the controller included, all in ONE schema (Crossbar.io
  sends the controller's flat, D4): ``type``, ``process`` (``get_process_monitor`` of that
  process: ``pid``, ``status``, ``num_fds``, ``num_threads``, ``cpu_user``, ``cpu_system``,
  ``mem_rss``, ``read_ios`` ... and their ``*_per_sec`` rates), ``timestamp``, ``period``,
  ``mrealm_id``, ``seq``, ``state`` 1; a router worker adds ``router``.

``router`` (from ``crossbar.worker.<id>.get_router_realm_stats``) with
``aggregate_workers_heartbeats`` (default) is ``{"sessions", "roles", "messages"}`` summed over
the worker's realms; without it, the same three per realm ID.  ``sessions`` and ``roles`` are
the current numbers; ``messages`` (``call``, ``yield``, ``invocation``, ``result``, ``publish``,
``published``, ``event``, ``register``, ``registered``, ``subscribe``, ``subscribed``,
``error``) are counted **since the previous heartbeat that was sent** (Crossbar.io sends its
router's cumulative counters): a metering aggregator sums the records of an interval, and a sum
of cumulative counters means nothing.  The baseline moves only when the master has acknowledged
the heartbeat, so messages routed while the uplink is down are reported by the first heartbeat
after it is back; a worker or realm started again (its counters are smaller than the baseline)
counts from zero.  The sum of all heartbeats of a worker is every message it routed.

``seq`` increases by one per heartbeat round for the life of the node process (it does not
start again after a reconnect); a node started again starts again at 1.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..config.controller import HEARTBEAT_DEFAULTS

log = logging.getLogger("wampfabric.edge")

NODE_HEARTBEAT = "crossbarfabriccenter.node.on_heartbeat"
WORKER_HEARTBEAT = "crossbarfabriccenter.node.on_worker_heartbeat"

#: the message counters of a router worker's heartbeat (Crossbar.io's names, cfxdb's MWorkerLog reads them)
MESSAGE_KEYS = ("call", "yield", "invocation", "result", "publish", "published", "event", "register",
                "registered", "subscribe", "subscribed", "error")

#: MWorkerState / MNodeState "online and fully operational"
STATE_ONLINE = 1

# what a process monitor reading has that a heartbeat does not repeat (the heartbeat has its own
# timestamp and type; the monitor's seq counts polls, not heartbeats)
_PROCESS_DROP = ("type", "seq", "timestamp", "ts", "user", "name", "cmdline", "created")


def heartbeat_settings(controller_config: dict | None) -> dict:
    """``controller.fabric.heartbeat`` with the defaults filled in."""
    fabric = (controller_config or {}).get("fabric") or {}
    return {**HEARTBEAT_DEFAULTS, **(fabric.get("heartbeat") or {})}


def process_section(monitor: dict) -> dict:
    """A ``get_process_monitor`` reading as a heartbeat's ``process``: without what the heartbeat
    says itself, without figures the process could not read (None), and with the types the
    master's record has (cfxdb's MWorkerLog): CPU seconds (``cpu_*``) are numbers, every other
    figure -- counts, bytes and their rates -- an integer (a master storing the record in a
    fixed-width integer field refuses a fraction)."""
    out = {}
    for k, v in monitor.items():
        if k in _PROCESS_DROP or v is None:
            continue
        if isinstance(v, float) and not k.startswith("cpu_"):
            v = int(round(v))
        out[k] = v
    return out


def node_heartbeat(*, timestamp: int, period: int, mrealm: str, seq: int, workers_by_type: dict, pubkey: str,
                   system: dict | None = None) -> dict:
    workers = {str(k): int(v) for k, v in (workers_by_type or {}).items()}
    workers["controller"] = 1
    hb = {"timestamp": timestamp, "period": period, "mrealm_id": mrealm, "seq": seq, "workers": workers,
          "state": STATE_ONLINE, "pubkey": pubkey}
    if system is not None:
        hb["system"] = system
    return hb


def worker_heartbeat(*, worker_type: str, monitor: dict, timestamp: int, period: int, mrealm: str, seq: int,
                     router: dict | None = None) -> dict:
    hb = {"type": worker_type, "process": process_section(monitor), "timestamp": timestamp, "period": period,
          "mrealm_id": mrealm, "seq": seq, "state": STATE_ONLINE}
    if router is not None:
        hb["router"] = router
    return hb


def _messages(counts: dict) -> dict:
    return {k: int(counts.get(k, 0) or 0) for k in MESSAGE_KEYS}


class MessageCounters:
    """Cumulative per-realm counters in, counts since the last acknowledged heartbeat out."""

    def __init__(self):
        self._base: dict[tuple, dict] = {}  # (worker_id, realm_id) -> counters at the last sent heartbeat

    def deltas(self, worker_id: str, realm_stats: dict) -> tuple[dict, dict]:
        """``(per realm {sessions, roles, messages}, new baseline)`` for one router worker's
        ``get_router_realm_stats`` answer; ``commit(baseline)`` once the heartbeat was sent."""
        out, base = {}, {}
        for realm_id, st in (realm_stats or {}).items():
            cur = _messages((st or {}).get("messages") or {})
            prev = self._base.get((worker_id, realm_id))
            if prev is None or any(cur[k] < prev.get(k, 0) for k in MESSAGE_KEYS):
                prev = {}  # new, or started again: everything it counted is new
            out[realm_id] = {"sessions": int(st.get("sessions", 0) or 0), "roles": int(st.get("roles", 0) or 0),
                             "messages": {k: cur[k] - prev.get(k, 0) for k in MESSAGE_KEYS}}
            base[(worker_id, realm_id)] = cur
        return out, base

    def commit(self, worker_id: str, base: dict) -> None:
        for key in [k for k in self._base if k[0] == worker_id]:
            if key not in base:
                del self._base[key]
        self._base.update(base)

    def forget_others(self, worker_ids) -> None:
        """Drop the baselines of workers that are gone."""
        keep = set(worker_ids)
        for key in [k for k in self._base if k[0] not in keep]:
            del self._base[key]


def aggregate(per_realm: dict) -> dict:
    """``{"sessions", "roles", "messages"}`` summed over a worker's realms."""
    total = {"sessions": 0, "roles": 0, "messages": dict.fromkeys(MESSAGE_KEYS, 0)}
    for st in per_realm.values():
        total["sessions"] += st["sessions"]
        total["roles"] += st["roles"]
        for k in MESSAGE_KEYS:
            total["messages"][k] += st["messages"][k]
    return total


class Heartbeats:
    """Sends the heartbeats of one joined uplink session.  ``local``: a session on the node
    management realm (to ask ``crossbar.*``); ``uplink``: the session on the master."""

    def __init__(self, settings: dict, node_id: str, mrealm: str, pubkey: str, counters: MessageCounters,
                 seq_start: int = 0):
        self.settings = settings
        self.node_id = node_id
        self.mrealm = mrealm
        self.pubkey = pubkey
        self.counters = counters
        self.seq = seq_start
        self._task: asyncio.Task | None = None
        self._skipped_workers: set = set()

    def start(self, local, uplink) -> None:
        self._task = asyncio.ensure_future(self._run(local, uplink))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self, local, uplink) -> None:
        period = self.settings["heartbeat_period"]
        await asyncio.sleep(self.settings["startup_delay"])
        log.info("Sending heartbeats to the master every %d s (node '%s', mrealm '%s')", period, self.node_id,
                 self.mrealm)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while uplink.is_attached:
            try:
                await self.send_once(local, uplink)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not uplink.is_attached:
                    return
                log.warning("Heartbeat %d could not be sent: %s: %s", self.seq, type(e).__name__, e)
            next_at += period
            now = loop.time()
            if next_at < now:  # a round took longer than a period: skip the missed ones
                next_at = now + period
            await asyncio.sleep(next_at - now)

    async def send_once(self, local, uplink) -> None:
        """One heartbeat round: the node heartbeat, then one per worker."""
        self.seq += 1
        seq, ts, period = self.seq, time.time_ns(), self.settings["heartbeat_period"]
        status = await local.call("crossbar.get_status")
        system = await local.call("crossbar.get_system_stats") if self.settings["include_system_stats"] else None
        hb = node_heartbeat(timestamp=ts, period=period, mrealm=self.mrealm, seq=seq,
                            workers_by_type=status.get("workers_by_type") or {}, pubkey=self.pubkey, system=system)
        await uplink.publish(NODE_HEARTBEAT, self.node_id, hb, options={"acknowledge": True})
        log.debug("Node heartbeat %d sent", seq)
        if not self.settings["send_workers_heartbeats"]:
            return
        common = {"timestamp": ts, "period": period, "mrealm": self.mrealm, "seq": seq}
        controller = await local.call("crossbar.get_process_monitor")
        await uplink.publish(WORKER_HEARTBEAT, self.node_id, "controller",
                             worker_heartbeat(worker_type="controller", monitor=controller, **common),
                             options={"acknowledge": True})
        worker_ids = await local.call("crossbar.get_workers")
        self.counters.forget_others(worker_ids)
        for worker_id in worker_ids:
            await self._send_worker(local, uplink, worker_id, common)

    async def _send_worker(self, local, uplink, worker_id: str, common: dict) -> None:
        prefix = f"crossbar.worker.{worker_id}"
        try:
            monitor = await local.call(f"{prefix}.get_process_monitor")
        except Exception as e:  # starting or stopping just now: it is in the next round
            if worker_id not in self._skipped_workers:
                log.info("No heartbeat for worker '%s' in round %d: %s", worker_id, common["seq"], e)
            self._skipped_workers.add(worker_id)
            return
        self._skipped_workers.discard(worker_id)
        wtype = monitor.get("type") or "worker"
        router, base = None, None
        if wtype == "router":
            stats = await local.call(f"{prefix}.get_router_realm_stats")
            per_realm, base = self.counters.deltas(worker_id, stats)
            router = aggregate(per_realm) if self.settings["aggregate_workers_heartbeats"] else per_realm
        hb = worker_heartbeat(worker_type=wtype, monitor=monitor, router=router, **common)
        await uplink.publish(WORKER_HEARTBEAT, self.node_id, worker_id, hb, options={"acknowledge": True})
        if base is not None:
            self.counters.commit(worker_id, base)
