"""The mrealm controller: one per management realm, a router component on that realm.

``MasterRuntime.start_mrealm`` starts it with the realm and ``stop_mrealm`` stops it with the
realm (component id ``mrealm-<oid>``, ``extra.mrealm_oid``). For now it serves

- ``crossbarfabriccenter.mrealm.get_status()`` -> ``{type: "management", realm, mrealm_oid, now,
  started, uptime, tick, nodes, nodes_online}`` (edges call it as their uplink check, protocol §5;
  the node role may call it);
- ``crossbarfabriccenter.mrealm.on_tick`` ``{now, tick}`` every 5 s.

It also closes the later of two joined sessions of one node (two HELLOs within one challenge
round trip both pass the authenticator's check, D7).

The node view (``master/nodes.py``), heartbeat storage (``master/heartbeats.py``) and the remote API
(``master/remote.py``), router clusters (``master/routercluster.py``) and application realms
(``master/arealm.py``) attach here: ``MrealmController.parts`` holds objects with
``async start(controller)`` / ``async stop()``, started in order after the procedures are registered
and stopped in reverse order when the realm stops (``PARTS`` names their classes). They share
``controller.local``: a second session of the controller on its realm, in-process over
``LocalTransport`` (role ``trusted``), which hands over the router's message lists without
serializing them (this autobahn session's transport serializes every message with msgpack twice):
heartbeats, node events, node calls and remote forwarding go through it. ``get_status`` adds the
heartbeat counters (``heartbeats``: accepted, stored, dropped, refused per reason, pending).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from autobahn.asyncio.wamp import ApplicationSession

from ..client.session import ApplicationError
from ..common.timefmt import utcstr
from ..transport.local import connect_local
from . import runtime as rt
from .api import Ticker, register_all

log = logging.getLogger("wampfabric.master.mrealm")

MREALM_TICK = 5.0

# the parts of an mrealm controller, by qualified name (the node view, heartbeats, remote API ...)
PARTS: list[str] = [
    "wampfabric.master.nodes.NodeView",
    "wampfabric.master.heartbeats.HeartbeatStore",
    "wampfabric.master.retention.HeartbeatRetention",  # after the storage: it prunes its database
    "wampfabric.master.remote.RemoteApi",
    # router clusters and application realms: on the mrealm database the heartbeat part opened
    "wampfabric.master.routercluster.RouterClusterManager",
    "wampfabric.master.arealm.ApplicationRealmManager",
]


class MrealmApi:
    def __init__(self, controller):
        self.controller = controller

    def get_status(self, details=None) -> dict:
        c = self.controller
        now = time.time()
        realm = c.master.router.realms.get(c.name)
        sessions = realm.sessions.values() if realm is not None else ()
        online = len({s.authid for s in sessions if s.authrole == "node"})
        out = {"type": "management", "realm": c.name, "mrealm_oid": str(c.mrealm_oid), "now": utcstr(now),
               "started": utcstr(c.started), "uptime": str(timedelta(seconds=int(now - c.started))),
               "tick": c.ticker.tick if c.ticker else 0, "nodes": c.master.store.count_nodes(c.mrealm_oid),
               "nodes_online": online}
        if c.heartbeats is not None:
            out["heartbeats"] = c.heartbeats.status()
        return out


class MrealmController(ApplicationSession):
    """See the module docstring."""

    ticker: Ticker | None = None
    local = None  # the in-process ClientSession the parts share
    nodes = None  # the NodeView part
    heartbeats = None  # the HeartbeatStore part
    routerclusters = None  # the RouterClusterManager part (master/routercluster.py)
    arealms = None  # the ApplicationRealmManager part (master/arealm.py)

    async def onJoin(self, details):
        import importlib

        self.master = rt.current()
        self.name = details.realm
        self.mrealm_oid = uuid.UUID((self.config.extra or {})["mrealm_oid"])
        self.started = time.time()
        self.api = MrealmApi(self)
        await register_all(self, "crossbarfabriccenter.mrealm.", self.api, ("get_status",))
        await self.subscribe(self._on_session_join, "wamp.session.on_join")
        self.parts = []
        self.local = await connect_local(self.master.router, self.name, role="trusted",
                                         authid=f"mrealm-{self.mrealm_oid}", peer=f"mrealm:{self.name}")
        for qualname in PARTS:
            mod, _, cls = qualname.rpartition(".")
            part = getattr(importlib.import_module(mod), cls)()
            await part.start(self)
            self.parts.append(part)
        self.master.mrealms[self.name] = self
        self.ticker = Ticker(self, "crossbarfabriccenter.mrealm.on_tick", MREALM_TICK)
        self.ticker.start()
        log.info("Mrealm controller ready on '%s'", self.name)

    def _on_session_join(self, info, *args, **kwargs):
        """The authenticator refuses a node that already has a session (D7), but two HELLOs within
        one challenge round trip both pass it: the later of two joined sessions of one node goes."""
        if not isinstance(info, dict) or info.get("authrole") != "node":
            return
        realm = self.master.router.realms.get(self.name)
        if realm is None:
            return
        mine = [s for s in realm.sessions.values() if s.authrole == "node" and s.authid == info.get("authid")]
        if len(mine) > 1:
            newest = realm.sessions.get(info.get("session"))
            if newest is not None:
                log.warning("node '%s' on '%s': a second session (%s) joined: closed", newest.authid, self.name,
                            newest.session_id)
                newest.goodbye("fabric.auth-failed.node-already-connected",
                               "A node with this pubkey/node_id/authid is already connected.")

    async def onLeave(self, details):
        if self.ticker is not None:
            self.ticker.stop()
        for part in reversed(getattr(self, "parts", [])):
            try:
                await part.stop()
            except Exception:
                log.exception("mrealm '%s': stopping %s failed", self.name, type(part).__name__)
        self.parts = []
        if self.local is not None:
            try:
                if self.local.is_attached:
                    await self.local.leave()
            except Exception:
                pass
            self.local = None
        try:
            master = rt.current()
            if master.mrealms.get(getattr(self, "name", None)) is self:
                del master.mrealms[self.name]
        except ApplicationError:
            pass
        self.disconnect()
