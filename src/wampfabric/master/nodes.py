"""The node view of an mrealm: every paired node, online or not, and its workers, in memory.

A part of the mrealm controller (``master/mrealm.py``), on the controller's in-process session
(``LocalTransport``, role ``trusted``). Design document, "Management Events": the view is filled by
querying a node when its session joins and kept current by the node's management events; it is
transient (the database holds the pairings and the heartbeats, not this).

- **Join** (``wamp.session.on_join`` of a session with role ``node``; sessions already joined when
  the controller starts are taken from the realm): the node is ``online`` at once; then a task asks
  it ``crossbarfabriccenter.node.<name>.get_status``, ``get_workers``, ``get_worker(id)`` and per
  router worker ``worker.<id>.get_router_realms`` / ``get_router_transports`` /
  ``get_router_components`` (``get_components`` of a container), each realm and transport by its
  ``get_*``. The bridge registers a node's procedures just after its join, so a
  ``wamp.error.no_such_procedure`` is retried for ``QUERY_WAIT`` seconds. Then
  ``crossbarfabriccenter.mrealm.on_node_ready(node_oid, node)``.
- **Events**: the node's events under the names the edge really publishes (D8), received through
  two wildcard subscriptions, ``crossbarfabriccenter.node..`` (node events) and
  ``crossbarfabriccenter.node..worker..`` (worker events), only from the node's current session.
  Node: ``on_worker_starting``, ``on_worker_ready`` / ``on_<type>_started``, ``on_worker_exit``
  (ours) / ``on_worker_stopped`` / ``on_<type>_stopped`` (Crossbar.io's). Worker:
  ``on_realm_started`` / ``on_realm_stopped``, ``on_router_transport_started`` / ``_stopped``,
  ``on_router_component_start`` / ``_stop``, ``on_component_start`` / ``_stop``. Republished for
  frontends, consolidated, as ``crossbarfabriccenter.mrealm.``:
  ``on_worker_started(node_oid, worker)``, ``on_worker_stopped(node_oid, worker)``,
  ``on_realm_started(node_oid, worker_id, realm)``, ``on_realm_stopped(...)``,
  ``on_transport_started(node_oid, worker_id, transport)``, ``on_transport_stopped(...)``; and every
  node event as it came, as ``crossbarfabriccenter.remote.node.<event>(node_oid, *args)`` or
  ``crossbarfabriccenter.remote.worker.<event>(node_oid, worker_id, *args)``.
- **Leave** (``wamp.session.on_leave``): ``offline`` at once, ``on_node_shutdown(node_oid, node)``.
- **Silence**: once a node's session has sent a heartbeat, no heartbeat for two of its periods
  (the ``period`` it sends) makes it ``offline`` (``on_node_shutdown``) and closes that session
  (a killed node whose TCP connection lingers would otherwise keep its key locked out: a second
  session of a node is refused, D7). Checked every ``SWEEP`` seconds.

Procedures (protocol §6; any role on the mrealm may call them):
``crossbarfabriccenter.mrealm.get_nodes(status=None, return_names=False)`` -> oids (names) of the
paired nodes, ``status`` ``"online"`` / ``"offline"`` filtering;
``get_node(oid)``, ``get_node_by_authid(name)`` -> the node record (as the domain API gives it)
with ``status``, ``heartbeat`` (last seq), ``timestamp`` (its receive time), and ``session``,
``connected``, ``last_heartbeat`` ``{received, sent, seq, period, count}``, ``workers``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from ..client.session import ApplicationError
from ..common.timefmt import utcstr
from .api import INVALID_ARGUMENT, NO_SUCH_OBJECT, register_all
from .store import to_api

log = logging.getLogger("wampfabric.master.nodes")

NODE = "crossbarfabriccenter.node."
MREALM = "crossbarfabriccenter.mrealm."
QUERY_WAIT = 30.0  # seconds a joined node's procedures may take to appear
SWEEP = 0.25  # seconds between two looks for silent nodes
DEFAULT_PERIOD = 10  # the edge's heartbeat_period when a heartbeat does not say

ONLINE, OFFLINE = "online", "offline"


def _ns_utc(ns):
    return utcstr(ns / 1e9) if isinstance(ns, int) else None


def _ident(args) -> str | None:
    """The ID an event is about: its first argument, a dict's ``id`` or a string."""
    if not args:
        return None
    a = args[0]
    if isinstance(a, dict):
        a = a.get("id")
    return a if isinstance(a, str) and a else None


class NodeState:
    """What the view knows of one paired node."""

    __slots__ = ("oid", "name", "pubkey", "record", "session", "joined", "status", "hb_seq", "hb_received",
                 "hb_sent", "hb_period", "hb_mono", "hb_count", "worker_seq", "workers", "query")

    def __init__(self, record):
        self.record = record
        self.oid = record.oid
        self.name = record.authid
        self.pubkey = record.pubkey
        self.session = None
        self.joined = None
        self.status = OFFLINE
        self.hb_seq = 0
        self.hb_received = None
        self.hb_sent = None
        self.hb_period = DEFAULT_PERIOD
        self.hb_mono = None
        self.hb_count = 0
        self.worker_seq: dict = {}
        self.workers: dict = {}
        self.query: asyncio.Task | None = None

    def marshal(self) -> dict:
        out = to_api(self.record)
        out.update(status=self.status, heartbeat=self.hb_seq or None, timestamp=_ns_utc(self.hb_received),
                   session=self.session, connected=utcstr(self.joined) if self.joined else None,
                   last_heartbeat=None if self.hb_received is None else {
                       "received": _ns_utc(self.hb_received), "sent": _ns_utc(self.hb_sent), "seq": self.hb_seq,
                       "period": self.hb_period, "count": self.hb_count},
                   workers={wid: _worker_out(w) for wid, w in self.workers.items()})
        return out


def _worker_out(w: dict) -> dict:
    out = dict(w)
    for k in ("realms", "transports", "components"):
        out[k] = dict(w.get(k) or {})
    return out


class NodeView:
    """The node view part of an mrealm controller (see the module docstring)."""

    def __init__(self):
        self.by_name: dict[str, NodeState] = {}
        self.by_oid: dict[uuid.UUID, NodeState] = {}
        self._sweeper: asyncio.Task | None = None

    # -- life ------------------------------------------------------------------------------------

    async def start(self, controller) -> None:
        self.controller = controller
        self.master = controller.master
        self.store = controller.master.store
        self.mrealm_oid = controller.mrealm_oid
        self.local = controller.local
        controller.nodes = self
        for record in self.store.nodes([self.mrealm_oid]):
            self._add(record)
        local = self.local
        await local.subscribe("wamp.session.on_join", self._on_join)
        await local.subscribe("wamp.session.on_leave", self._on_leave)
        await local.subscribe(NODE + ".", self._on_node_event, options={"match": "wildcard"}, details=True)
        await local.subscribe(NODE + ".worker..", self._on_worker_event, options={"match": "wildcard"},
                              details=True)
        await register_all(controller, MREALM, self, ("get_nodes", "get_node", "get_node_by_authid"))
        realm = self.master.router.realms.get(controller.name)
        for s in list(realm.sessions.values()) if realm is not None else ():
            if s.authrole == "node" and s.authid:
                self._joined(s.session_id, s.authid)
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for st in self.by_name.values():
            if st.query is not None:
                st.query.cancel()
                st.query = None

    def _add(self, record) -> NodeState:
        st = NodeState(record)
        self.by_name[st.name] = st
        self.by_oid[st.oid] = st
        return st

    def _drop(self, st: NodeState) -> None:
        self.by_name.pop(st.name, None)
        self.by_oid.pop(st.oid, None)

    def _publish(self, topic: str, *args, kwargs: dict | None = None) -> None:
        if self.local.is_attached:
            self.local.publish_payload(topic, args, kwargs)

    # -- sessions --------------------------------------------------------------------------------

    def _on_join(self, info=None, *a, **kw) -> None:
        if isinstance(info, dict) and info.get("authrole") == "node" and info.get("authid"):
            self._joined(info.get("session"), info["authid"])

    def _on_leave(self, session_id=None, authid=None, authrole=None, *a, **kw) -> None:
        if authrole == "node" and authid:
            self._left(session_id, authid)

    def _joined(self, session_id, authid: str) -> None:
        record = self.store.node_by_name(self.mrealm_oid, authid)
        if record is None:
            return  # unpaired meanwhile: the domain closes its session
        st = self.by_name.get(authid)
        if st is not None and st.oid != record.oid:  # unpaired and paired again under the same name
            self._drop(st)
            st = None
        if st is None:
            st = self._add(record)
        st.record, st.pubkey = record, record.pubkey
        if st.session is not None and st.session != session_id:
            realm = self.master.router.realms.get(self.controller.name)
            if realm is not None and st.session in realm.sessions:
                return  # a second session of a joined node: the controller closes it (D7)
        if st.query is not None:
            st.query.cancel()
        st.session = session_id
        st.joined = time.time()
        st.status = ONLINE
        st.hb_seq = 0
        st.hb_mono = None
        st.worker_seq = {}
        st.workers = {}
        log.info("Node '%s' (%s) on mrealm '%s' joined (session %s)", st.name, st.oid, self.controller.name,
                 session_id)
        st.query = asyncio.ensure_future(self._query(st, session_id))

    def _left(self, session_id, authid: str) -> None:
        st = self.by_name.get(authid)
        if st is None or st.session != session_id:
            return
        if st.query is not None:
            st.query.cancel()
            st.query = None
        st.session = None
        was = st.status
        st.status = OFFLINE
        log.info("Node '%s' (%s) on mrealm '%s' left (session %s)", st.name, st.oid, self.controller.name,
                 session_id)
        if was == ONLINE:
            self._publish(MREALM + "on_node_shutdown", str(st.oid), st.marshal())
        if self.store.node(st.oid) is None:
            self._drop(st)  # unpaired

    # -- heartbeats (called by the heartbeat part for accepted ones) ------------------------------

    def heartbeat(self, st: NodeState, hb: dict, seq: int, recv_ns: int) -> None:
        st.hb_seq = seq
        st.hb_received = recv_ns
        sent = hb.get("timestamp")
        st.hb_sent = sent if type(sent) is int else None
        period = hb.get("period")
        if type(period) in (int, float) and period > 0:
            st.hb_period = period
        st.hb_mono = time.monotonic()
        st.hb_count += 1

    def worker_heartbeat(self, st: NodeState, worker_id: str, hb: dict, recv_ns: int) -> None:
        w = st.workers.get(worker_id)
        if w is not None:
            w["heartbeat"] = {"seq": hb["seq"], "received": _ns_utc(recv_ns)}

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP)
            now = time.monotonic()
            for st in list(self.by_name.values()):
                if st.session is not None and st.hb_mono is not None and now - st.hb_mono > 2 * st.hb_period:
                    self._silent(st, now - st.hb_mono)

    def _silent(self, st: NodeState, quiet: float) -> None:
        session_id = st.session
        log.warning("Node '%s' (%s) on mrealm '%s': no heartbeat for %.1f s (period %s s): offline, its "
                    "session %s is closed", st.name, st.oid, self.controller.name, quiet, st.hb_period, session_id)
        if st.query is not None:
            st.query.cancel()
            st.query = None
        st.session = None
        st.status = OFFLINE
        self._publish(MREALM + "on_node_shutdown", str(st.oid), st.marshal())
        realm = self.master.router.realms.get(self.controller.name)
        s = realm.sessions.get(session_id) if realm is not None else None
        if s is not None:
            s.goodbye("wamp.close.killed", f"no heartbeat for {quiet:.1f} s")

    # -- the initial query ------------------------------------------------------------------------

    async def _call(self, st: NodeState, session_id, suffix: str, *args, wait: float = QUERY_WAIT):
        uri = f"{NODE}{st.name}.{suffix}"
        deadline = time.monotonic() + wait
        delay = 0.1
        while True:
            try:
                return await self.local.call(uri, *args)
            except ApplicationError as e:
                if e.error != "wamp.error.no_such_procedure" or time.monotonic() > deadline \
                        or st.session != session_id:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _optional(self, st, session_id, suffix, *args, wait: float = 1.0):
        try:
            return await self._call(st, session_id, suffix, *args, wait=wait)
        except ApplicationError:
            return None

    async def _query(self, st: NodeState, session_id) -> None:
        try:
            try:
                status = await self._call(st, session_id, "get_status")
                ids = await self._call(st, session_id, "get_workers")
            except ApplicationError as e:
                log.warning("Node '%s' on mrealm '%s': its status could not be read (%s); the view has no "
                            "workers until its events come", st.name, self.controller.name, e)
                status, ids = None, []
            for wid in ids or ():
                if isinstance(wid, dict):
                    wid = wid.get("id")
                if isinstance(wid, str) and wid not in st.workers:
                    await self._query_worker(st, session_id, wid)
            if st.session == session_id:
                log.info("Node '%s' on mrealm '%s' ready: %d worker(s)", st.name, self.controller.name,
                         len(st.workers))
                self._publish(MREALM + "on_node_ready", str(st.oid), st.marshal())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Node '%s' on mrealm '%s': reading its state failed", st.name, self.controller.name)
        finally:
            if st.query is asyncio.current_task():
                st.query = None

    async def _query_worker(self, st: NodeState, session_id, wid: str) -> None:
        info = await self._optional(st, session_id, "get_worker", wid)
        w = self._worker(st, wid, info if isinstance(info, dict) else {})
        prefix = f"worker.{wid}."
        if w.get("type") == "router":
            for kind, suffix in (("realms", "router_realm"), ("transports", "router_transport"),
                                 ("components", "router_component")):
                for oid in await self._optional(st, session_id, f"{prefix}get_{suffix}s") or ():
                    if isinstance(oid, str):
                        one = await self._optional(st, session_id, f"{prefix}get_{suffix}", oid, wait=0)
                        w[kind][oid] = one if isinstance(one, dict) else {"id": oid}
        elif w.get("type") == "container":
            for oid in await self._optional(st, session_id, f"{prefix}get_components") or ():
                if isinstance(oid, str):
                    w["components"][oid] = {"id": oid}
                elif isinstance(oid, dict) and isinstance(oid.get("id"), str):
                    w["components"][oid["id"]] = oid

    @staticmethod
    def _worker(st: NodeState, wid: str, info: dict) -> dict:
        w = st.workers.get(wid)
        if w is None:
            w = st.workers[wid] = {"id": wid, "type": None, "status": None, "pid": None, "started": None,
                                   "realms": {}, "transports": {}, "components": {}}
        for k in ("type", "status", "pid", "started"):
            if info.get(k) is not None:
                w[k] = info[k]
        return w

    # -- management events ------------------------------------------------------------------------

    def _source(self, topic: str, details: dict):
        """The node an event comes from, if it is from the node's current session."""
        name = topic[len(NODE):].split(".", 1)[0]
        st = self.by_name.get(name)
        if st is None or st.session is None or details.get("publisher") != st.session:
            return None
        return st

    def _on_node_event(self, *args, details=None, **kwargs) -> None:
        topic = details.get("topic") or ""
        st = self._source(topic, details or {})
        if st is None:
            return
        event = topic.rpartition(".")[2]
        oid = str(st.oid)
        self._publish(f"crossbarfabriccenter.remote.node.{event}", oid, *args, kwargs=kwargs)
        wid = _ident(args)
        info = args[0] if args and isinstance(args[0], dict) else {}
        if wid is None:
            return
        if event.endswith("_starting"):  # on_worker_starting, on_<type>_starting
            was = st.workers[wid]["status"] if wid in st.workers else None
            w = self._worker(st, wid, info)
            if was != "started":
                w["status"] = "starting"
        elif event == "on_worker_ready" or event.endswith("_started"):  # ours and on_<type>_started
            self._started(st, wid, info)
        elif event.endswith(("_exit", "_stopped")):  # on_worker_exit (ours), on_<type>_stopped
            w = st.workers.pop(wid, None)
            if w is not None:
                w["status"] = "stopped"
                self._publish(MREALM + "on_worker_stopped", oid, _worker_out(w))

    def _started(self, st: NodeState, wid: str, info: dict) -> None:
        was = st.workers[wid]["status"] if wid in st.workers else None
        w = self._worker(st, wid, info)
        w["status"] = "started"
        if was != "started":
            self._publish(MREALM + "on_worker_started", str(st.oid), _worker_out(w))

    _WORKER_EVENTS = {
        "on_realm_started": ("realms", "on_realm_started"), "on_realm_stopped": ("realms", "on_realm_stopped"),
        "on_router_transport_started": ("transports", "on_transport_started"),
        "on_router_transport_stopped": ("transports", "on_transport_stopped"),
        "on_router_component_start": ("components", None), "on_router_component_stop": ("components", None),
        "on_component_start": ("components", None), "on_component_stop": ("components", None),
    }

    def _on_worker_event(self, *args, details=None, **kwargs) -> None:
        topic = details.get("topic") or ""
        st = self._source(topic, details or {})
        if st is None:
            return
        parts = topic[len(NODE):].split(".")  # name, "worker", worker id, event
        if len(parts) != 4:
            return
        wid, event = parts[2], parts[3]
        oid = str(st.oid)
        self._publish(f"crossbarfabriccenter.remote.worker.{event}", oid, wid, *args, kwargs=kwargs)
        if event == "on_worker_ready":  # Crossbar.io's worker says so itself
            self._started(st, wid, args[0] if args and isinstance(args[0], dict) else {})
            return
        what = self._WORKER_EVENTS.get(event)
        w = st.workers.get(wid)
        ident = _ident(args)
        if what is None or w is None or ident is None:
            return
        kind, republish = what
        if event.endswith(("_started", "_start")):
            item = dict(args[0]) if isinstance(args[0], dict) else {"id": ident}
            w[kind][ident] = item
        else:
            item = w[kind].pop(ident, None) or {"id": ident}
        if republish:
            self._publish(MREALM + republish, oid, wid, item)

    # -- procedures --------------------------------------------------------------------------------

    def resolve(self, node) -> NodeState | None:
        """The view's node for an oid (string or UUID) or a name; None if not paired here."""
        if isinstance(node, uuid.UUID):
            return self.by_oid.get(node)
        if not isinstance(node, str):
            return None
        st = self.by_name.get(node)
        if st is None and _is_uuid(node):
            st = self.by_oid.get(uuid.UUID(node))
        if st is None:  # paired after the controller started and not joined since
            record = self.store.node(node) if _is_uuid(node) else self.store.node_by_name(self.mrealm_oid, node)
            if record is not None and record.mrealm_oid == self.mrealm_oid:
                st = self._add(record)
        elif st.session is None and self.store.node(st.oid) is None:  # unpaired while offline
            self._drop(st)
            st = None
        return st

    def _node_out(self, record) -> dict:
        st = self.by_oid.get(record.oid)
        if st is not None and st.record.oid == record.oid:
            st.record = record
            return st.marshal()
        return NodeState(record).marshal()

    def get_nodes(self, status=None, return_names=None, details=None) -> list:
        if status not in (None, ONLINE, OFFLINE):
            raise ApplicationError(INVALID_ARGUMENT, f"invalid status {status!r}: 'online', 'offline' or null")
        out = []
        for record in self.store.nodes([self.mrealm_oid]):
            st = self.by_oid.get(record.oid)
            s = st.status if st is not None else OFFLINE
            if status is None or s == status:
                out.append(record.authid if return_names else str(record.oid))
        return out

    def get_node(self, node_oid, details=None) -> dict:
        if not _is_uuid(node_oid):
            raise ApplicationError(INVALID_ARGUMENT, f"invalid node oid {node_oid!r}: a UUID string")
        record = self.store.node(node_oid)
        if record is None or record.mrealm_oid != self.mrealm_oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no node with oid {node_oid} in management realm "
                                                   f"'{self.controller.name}'")
        return self._node_out(record)

    def get_node_by_authid(self, node_authid, details=None) -> dict:
        if not isinstance(node_authid, str):
            raise ApplicationError(INVALID_ARGUMENT, f"invalid node name {node_authid!r}")
        record = self.store.node_by_name(self.mrealm_oid, node_authid)
        if record is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no node '{node_authid}' in management realm "
                                                   f"'{self.controller.name}'")
        return self._node_out(record)

    def counts(self) -> tuple[int, int]:
        return len(self.by_name), sum(1 for st in self.by_name.values() if st.status == ONLINE)


def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
