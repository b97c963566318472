"""``wampfabric shell [--realm M] monitor [--once] [--json]``: a live view of an mrealm's nodes.

One line per node: status, workers by type, router sessions, messages per second and the age of
its last heartbeat; a header with the mrealm, the nodes online of all and the time.  The state
comes once from ``crossbarfabriccenter.mrealm.get_nodes`` / ``get_node``; after that ONLY from
the mrealm's events (nothing is polled):

- ``crossbarfabriccenter.node.on_heartbeat(node_id, hb)``: the node is alive now; ``hb.period``,
  ``hb.workers`` (count per type; the controller is not shown);
- ``crossbarfabriccenter.node.on_worker_heartbeat(node_id, worker_id, hb)``: a router worker's
  ``router`` section gives its sessions and its messages, counted since its previous heartbeat
  (edge/heartbeat.py), so messages per second = their sum / ``hb.period``; a worker silent for
  two of its periods no longer counts;
- ``crossbarfabriccenter.mrealm.on_node_ready(node_oid, node)`` / ``on_node_shutdown``;
- on the global realm, ``crossbarfabriccenter.mrealm.on_node_unpaired(node)``: the node's row goes.

A node whose last heartbeat is older than two periods is shown ``stale`` until the master says
it is offline (it does so itself after two periods of silence).  Ages tick locally every second.

Ctrl-C ends the view (exit 0; in the interactive shell: back to the prompt).  ``--once`` prints
one snapshot and exits: it listens for one heartbeat period of the online nodes first (at most
``ONCE_WAIT_MAX`` s), so that sessions and rates are known; ``--json`` prints that snapshot as
JSON (a list of nodes) instead of a table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from datetime import datetime, timezone

from .context import GLOBAL, ShellContext, ShellError

M = "crossbarfabriccenter.mrealm."
log = logging.getLogger("wampfabric.shell.monitor")
NODE_HEARTBEAT = "crossbarfabriccenter.node.on_heartbeat"
WORKER_HEARTBEAT = "crossbarfabriccenter.node.on_worker_heartbeat"
STALE_PERIODS = 2  # a heartbeat older than this many periods: stale (the master's own rule)
DEFAULT_PERIOD = 10.0  # the edges' default heartbeat_period, when nothing says otherwise
ONCE_WAIT_MAX = 15.0
USAGE = "usage: monitor [--once] [--json]"


class MonitorError(ShellError):
    pass


def _num(value, default=0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _utc_seconds(text) -> float | None:
    """Seconds since the epoch of a management API timestamp (``2026-12-05T12:00:00.123Z``)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class WorkerRate:
    __slots__ = ("type", "sessions", "rate", "seen", "period")

    def __init__(self, wtype, sessions: int, rate: float, seen: float, period: float):
        self.type, self.sessions, self.rate, self.seen, self.period = wtype, sessions, rate, seen, period


class NodeRow:
    """What the view knows of one node (times are ``time.monotonic()``)."""

    def __init__(self, name: str, oid: str | None = None):
        self.name = name
        self.oid = oid
        self.status = "offline"
        self.workers: dict[str, int] = {}
        self.router: dict[str, WorkerRate] = {}
        self.last_hb: float | None = None
        self.period = DEFAULT_PERIOD

    def from_record(self, node: dict, now: float) -> None:
        self.oid = str(node.get("oid") or self.oid or "") or None
        self.status = "online" if node.get("status") == "online" else "offline"
        counts: dict[str, int] = {}
        for w in (node.get("workers") or {}).values():
            if isinstance(w, dict) and w.get("type"):
                counts[str(w["type"])] = counts.get(str(w["type"]), 0) + 1
        self.workers = counts
        hb = node.get("last_heartbeat")
        if isinstance(hb, dict):
            self.period = _num(hb.get("period"), self.period) or self.period
            received = _utc_seconds(hb.get("received"))
            if received is not None:
                self.last_hb = now - max(0.0, time.time() - received)

    def heartbeat(self, hb: dict, now: float) -> None:
        self.status = "online"
        self.last_hb = now
        self.period = _num(hb.get("period"), self.period) or self.period
        workers = hb.get("workers")
        if isinstance(workers, dict):
            self.workers = {str(k): int(v) for k, v in workers.items()
                            if k != "controller" and isinstance(v, int) and not isinstance(v, bool)}

    def worker_heartbeat(self, worker_id: str, hb: dict, now: float) -> None:
        router = hb.get("router")
        if not isinstance(router, dict):
            return
        parts = [router] if "sessions" in router or "messages" in router else \
            [v for v in router.values() if isinstance(v, dict)]  # per realm (aggregate off)
        sessions = sum(int(_num(p.get("sessions"))) for p in parts)
        messages = sum(_num(v) for p in parts for v in (p.get("messages") or {}).values())
        period = _num(hb.get("period"), self.period) or self.period
        self.router[worker_id] = WorkerRate(hb.get("type"), sessions, messages / period, now, period)

    def age(self, now: float) -> float | None:
        return None if self.last_hb is None else max(0.0, now - self.last_hb)

    def shown_status(self, now: float) -> str:
        age = self.age(now)
        if self.status == "online" and age is not None and age > STALE_PERIODS * self.period:
            return "stale"
        return self.status

    def live_workers(self, now: float) -> list[WorkerRate]:
        if self.status != "online":
            return []
        return [w for w in self.router.values() if now - w.seen <= STALE_PERIODS * w.period]

    def snapshot(self, now: float) -> dict:
        live = self.live_workers(now)
        age = self.age(now)
        return {"node": self.name, "oid": self.oid, "status": self.shown_status(now), "workers": dict(self.workers),
                "sessions": sum(w.sessions for w in live) if live else None,
                "messages_per_second": round(sum(w.rate for w in live), 1) if live else None,
                "heartbeat_age": None if age is None else round(age, 1)}


class Monitor:
    """The rows of one mrealm, kept current by its events."""

    def __init__(self, ctx: ShellContext, realm: str):
        self.ctx = ctx
        self.realm = realm
        self.rows: dict[str, NodeRow] = {}
        self.changed = asyncio.Event()
        self._subs: list[tuple[int, object]] = []
        self._session = None
        self._global_sub = None

    # -- events (never raise: a strange payload is ignored) --------------------------------------

    def _row(self, name) -> NodeRow | None:
        if not isinstance(name, str) or not name:
            return None
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = NodeRow(name)
        return row

    def on_heartbeat(self, node_id=None, hb=None, *args, **kwargs) -> None:
        row = self._row(node_id)
        if row is not None and isinstance(hb, dict):
            was = row.status
            row.heartbeat(hb, time.monotonic())
            if was != row.status:
                self.changed.set()

    def on_worker_heartbeat(self, node_id=None, worker_id=None, hb=None, *args, **kwargs) -> None:
        row = self._row(node_id)
        if row is not None and isinstance(worker_id, str) and isinstance(hb, dict):
            row.worker_heartbeat(worker_id, hb, time.monotonic())

    def _node_event(self, node, online: bool) -> None:
        if not isinstance(node, dict):
            return
        row = self._row(node.get("authid"))
        if row is None:
            return
        row.from_record(node, time.monotonic())
        row.status = "online" if online else "offline"
        if not online:
            row.router.clear()
        self.changed.set()

    def on_node_ready(self, node_oid=None, node=None, *args, **kwargs) -> None:
        self._node_event(node, True)

    def on_node_shutdown(self, node_oid=None, node=None, *args, **kwargs) -> None:
        self._node_event(node, False)

    def on_node_unpaired(self, node=None, *args, **kwargs) -> None:
        """A node unpaired (an event of the global realm, for any mrealm): its row goes, if it is ours."""
        oid = node.get("oid") if isinstance(node, dict) else None
        for name, row in list(self.rows.items()):
            if oid is not None and row.oid == oid:
                del self.rows[name]
                self.changed.set()

    # -- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe first (nothing is missed between the snapshot and the events), then read the nodes."""
        self._session = s = await self.ctx.session(self.realm)
        try:
            for topic, handler in ((NODE_HEARTBEAT, self.on_heartbeat), (WORKER_HEARTBEAT, self.on_worker_heartbeat),
                                   (M + "on_node_ready", self.on_node_ready),
                                   (M + "on_node_shutdown", self.on_node_shutdown)):
                sub = await asyncio.wait_for(s.subscribe(topic, handler), self.ctx.timeout)
                self._subs.append((sub, handler))
        except Exception as e:
            raise MonitorError(f"cannot subscribe to the events of mrealm '{self.realm}': {_text(e)}") from None
        try:  # unpairing is announced on the global realm; without it, an unpaired node's row stays
            g = await self.ctx.session(GLOBAL)
            sub = await asyncio.wait_for(g.subscribe(M + "on_node_unpaired", self.on_node_unpaired), self.ctx.timeout)
            self._global_sub = (g, sub)
        except Exception as e:
            log.info("monitor: not following unpaired nodes: %s", _text(e))
        oids = await self.ctx.call(self.realm, M + "get_nodes")
        for oid in oids or []:
            node = await self.ctx.call(self.realm, M + "get_node", oid)
            row = self._row(node.get("authid")) if isinstance(node, dict) else None
            if row is not None and row.last_hb is None:  # an event may have come first: it is newer
                row.from_record(node, time.monotonic())

    async def stop(self) -> None:
        gsub, self._global_sub = self._global_sub, None
        if gsub is not None and gsub[0].is_attached:
            try:
                await asyncio.wait_for(gsub[0].unsubscribe(gsub[1], self.on_node_unpaired), 2)
            except Exception:
                pass
        s, subs, self._subs = self._session, self._subs, []
        if s is None or not s.is_attached:
            return
        for sub, handler in subs:
            try:
                await asyncio.wait_for(s.unsubscribe(sub, handler), 2)
            except Exception:
                pass

    def attached(self) -> bool:
        return self._session is not None and self._session.is_attached

    # -- output ----------------------------------------------------------------------------------

    def snapshot(self) -> list[dict]:
        now = time.monotonic()
        return [self.rows[n].snapshot(now) for n in sorted(self.rows)]

    def header(self, nodes: list[dict]) -> str:
        online = sum(1 for n in nodes if n["status"] == "online")
        clock = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"mrealm {self.realm}   nodes online {online}/{len(nodes)}   {clock}"

    def renderable(self, footer: str | None = None):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        nodes = self.snapshot()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col, justify in (("node", "left"), ("status", "left"), ("workers", "left"), ("sessions", "right"),
                             ("msgs/s", "right"), ("last heartbeat", "right")):
            table.add_column(col, justify=justify, no_wrap=True)
        style = {"online": "green", "stale": "yellow", "offline": "red"}
        for n in nodes:
            workers = ", ".join(f"{t} {c}" for t, c in sorted(n["workers"].items())) or "-"
            age = "-" if n["heartbeat_age"] is None else f"{n['heartbeat_age']:.0f}s ago"
            table.add_row(n["node"], Text(n["status"], style=style[n["status"]]), workers,
                          "-" if n["sessions"] is None else str(n["sessions"]),
                          "-" if n["messages_per_second"] is None else f"{n['messages_per_second']:.1f}", age)
        parts = [Text(self.header(nodes), style="bold"), table if nodes else Text("(no nodes paired)")]
        if footer:
            parts.append(Text(footer, style="dim"))
        return Group(*parts)

    def once_wait(self) -> float:
        periods = [r.period for r in self.rows.values() if r.status == "online"]
        return min(max(periods), ONCE_WAIT_MAX) + 0.5 if periods else 0.0


def _text(e: BaseException) -> str:
    return str(e) if isinstance(e, ShellError) else f"{type(e).__name__}: {e}"


def parse_words(words: list[str]) -> dict:
    opts = {"once": False, "json": False}
    for w in words:
        if w in ("--once", "--json"):
            opts[w[2:]] = True
        elif w in ("-h", "--help", "help"):
            raise MonitorError(USAGE + "  (a live view of the mrealm's nodes; Ctrl-C ends it)")
        else:
            raise MonitorError(f"monitor: unknown argument '{w}' ({USAGE})")
    return opts


async def monitor(ctx: ShellContext, words: list[str], console=None) -> int:
    """The monitor in a running loop (the interactive shell awaits it; cancelling the task ends it
    and leaves the last view on the screen).  ShellError for what the user must be told."""
    opts = parse_words(words)
    realm = ctx.need_realm()
    from rich.console import Console
    from rich.live import Live

    console = console or Console(highlight=False)
    mon = Monitor(ctx, realm)
    try:
        await mon.start()
        if opts["once"]:
            await asyncio.sleep(mon.once_wait())
            if opts["json"]:
                console.out(json.dumps(mon.snapshot(), indent=2, sort_keys=True), highlight=False)
            else:
                console.print(mon.renderable())
            return 0
        with Live(mon.renderable(), console=console, auto_refresh=False, transient=False) as live:
            loop = asyncio.get_running_loop()
            next_tick = loop.time() + 1.0
            while True:
                mon.changed.clear()
                try:
                    await asyncio.wait_for(mon.changed.wait(), max(0.05, next_tick - loop.time()))
                except asyncio.TimeoutError:
                    pass
                if loop.time() >= next_tick:
                    next_tick += 1.0
                if not mon.attached():
                    live.update(mon.renderable("the connection to the master was lost"), refresh=True)
                    raise MonitorError("the connection to the master was lost")
                live.update(mon.renderable("Ctrl-C ends the monitor"), refresh=True)
    finally:
        await mon.stop()


def run_monitor(ctx: ShellContext, words: list[str]) -> int:
    """``wampfabric shell monitor``: runs until Ctrl-C (exit 0); errors: one line, exit 1."""
    logging.getLogger("wampfabric").addHandler(logging.NullHandler())
    logging.getLogger("wampfabric").propagate = False

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        interrupted = []

        def interrupt():
            interrupted.append(True)
            task.cancel()

        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            return await monitor(ctx, words)
        except asyncio.CancelledError:
            if interrupted:
                return 0
            raise
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            await ctx.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # one line, never a traceback
        print(f"Error: {_text(e)}", file=sys.stderr)
        return 1
