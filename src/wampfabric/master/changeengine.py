"""The change engine: brings each managed node to its desired state (docs/fabric.md, "Change engine").

The component of the master's container worker ``change_engine`` (``master init`` writes it into
``config.json``; ``"disabled": "CROSSBAR_DISABLE_CE"`` skips the worker when that variable is set,
with the design document's log line). It runs in its own process and reaches the master only
through WAMP: every session authenticates with cryptosign using the master's own key
(``key.priv`` of the node directory, the worker's working directory) over the router worker's
Unix socket ``sock2`` (mode 0600); the authenticator gives that key role ``backend``, and only over
the Unix socket.

- One session on the global realm (this ``ApplicationSession``): the mrealms, from
  ``crossbarfabriccenter.mrealm.list_mrealms`` and the events ``on_mrealm_created`` /
  ``on_mrealm_deleted``.
- One session per mrealm (``MrealmEngine``, the network client ``wampfabric.client.Client``, which
  reconnects): it follows ``crossbarfabriccenter.mrealm.on_node_ready(node_oid, node)`` (the node
  view's event once a joined node has been queried: its procedures are registered by then) and
  ``on_node_config_changed(node_oid, info)`` (master/nodeconfig.py); at its start it looks at the
  nodes online (``get_nodes("online")``).

Applying (``apply``): when a node joins and its pairing authextra's ``on_start_apply_config`` is not
false (default true), and whenever its desired state changes while it is online, the engine reads
the desired state (``get_node_config``) and the node's actual state
(``crossbarfabriccenter.node.<name>.get_workers``, ``get_worker``, ``worker.<id>.get_router_realms``,
``get_router_realm_roles`` / ``get_router_realm_role``, ``get_router_transports``,
``get_router_components``, ``get_components``) and starts what is missing, in config order: a
worker (``start_worker``; a guest with its whole config), then a router worker's realms (with their
roles; a role missing on a running realm is added), transports and components, a container's
components. Items are compared by ID. What the node runs beyond the config stays, unless the desired
state is ``exclusive``: then workers, realms, transports and components not in it are stopped
(components first, realms last). A worker whose ID runs with another type is left alone (one error
line). One log line per action; an action that fails is logged with the node's error and the
engine goes on with the next (a worker that could not start: its items are skipped). Applies to one
node never overlap: a change arriving during one applies again after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from autobahn.asyncio.wamp import ApplicationSession

from ..client.auth import Cryptosign
from ..client.connection import Backoff, Client
from ..client.session import ApplicationError
from ..node.keys import load_or_create_node_key

log = logging.getLogger("wampfabric.master.changeengine")

GLOBAL_REALM = "com.crossbario.fabric"
MREALM = "crossbarfabriccenter.mrealm."
NODE = "crossbarfabriccenter.node."
BACKEND = "backend"
DEFAULT_TRANSPORT = {"type": "rawsocket", "serializer": "cbor", "endpoint": {"type": "unix", "path": "sock2"}}
PROCEDURE_WAIT = 30.0  # seconds a just-started worker's procedures may take to reach the master
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"


def _load_key(cbdir: Path):
    priv = cbdir / "key.priv"
    if not priv.exists():
        raise RuntimeError(f"the change engine needs the master's key {priv}")
    key, _ = load_or_create_node_key(cbdir)
    return key


def _err(e: BaseException) -> str:
    if isinstance(e, ApplicationError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class NodeApplier:
    """Applies one node's desired state (see the module docstring)."""

    def __init__(self, engine: "MrealmEngine", session, node_oid: str, name: str):
        self.engine = engine
        self.session = session
        self.node_oid = node_oid
        self.name = name
        self.actions = 0
        self.failures = 0

    def _log(self, text: str, *args, error: bool = False) -> None:
        (log.error if error else log.info)("Change engine: node '%s' (mrealm '%s'): " + text, self.name,
                                           self.engine.name, *args)

    async def call(self, suffix: str, *args, wait: float = PROCEDURE_WAIT):
        """A node procedure; ``no_such_procedure`` is retried for ``wait`` seconds (the bridge
        registers a new worker's procedures on the master just after it started)."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                return await self.session.call(f"{NODE}{self.name}.{suffix}", *args)
            except ApplicationError as e:
                if e.error != NO_SUCH_PROCEDURE or asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(0.2)

    async def act(self, what: str, suffix: str, *args) -> bool:
        try:
            await self.call(suffix, *args)
        except Exception as e:
            self.failures += 1
            self._log("could not %s: %s", what, _err(e), error=True)
            return False
        self.actions += 1
        self._log("%s", what)
        return True

    async def apply(self, desired: dict, exclusive: bool) -> None:
        workers = [w for w in desired.get("workers", []) if isinstance(w, dict)]
        running = set(await self.call("get_workers"))
        wanted = {w["id"] for w in workers}
        if exclusive:
            for wid in sorted(running - wanted):
                await self.act(f"stopped worker '{wid}' (not in the exclusive desired state)", "stop_worker", wid)
                running.discard(wid)
        for w in workers:
            wid, wtype = w["id"], w["type"]
            options = w.get("options") or {}
            if options.get("disabled") is True:
                self._log("worker '%s' is disabled in the desired state: not started", wid)
                continue
            if wid not in running:
                if wtype == "guest":
                    cfg = {k: v for k, v in w.items() if k not in ("id", "type")}
                    ok = await self.act(f"started guest worker '{wid}'", "start_worker", wid, "guest", cfg)
                else:
                    ok = await self.act(f"started {wtype} worker '{wid}'", "start_worker", wid, wtype, options)
                if not ok:
                    continue
            else:
                info = await self.call("get_worker", wid)
                have = (info or {}).get("type")
                if have != wtype:
                    self.failures += 1
                    self._log("worker '%s' runs as a %s worker, the desired state says %s: left alone", wid, have,
                              wtype, error=True)
                    continue
            if wtype == "router":
                await self._router(w, exclusive)
            elif wtype == "container":
                await self._items(w, exclusive, "components", "get_components", "start_component", "stop_component",
                                  "component")

    async def _items(self, w: dict, exclusive: bool, key: str, get: str, start: str, stop: str, what: str,
                     stop_only: bool = False, start_only: bool = False) -> None:
        wid = w["id"]
        prefix = f"worker.{wid}."
        items = w.get(key, [])
        have = set(await self.call(prefix + get))
        if exclusive and not start_only:
            for iid in sorted(have - {i["id"] for i in items}):
                await self.act(f"stopped {what} '{iid}' of worker '{wid}' (not in the exclusive desired state)",
                               prefix + stop, iid)
        if stop_only:
            return
        for item in items:
            if item["id"] not in have:
                await self.act(f"started {what} '{item['id']}' on worker '{wid}'", prefix + start, item["id"], item)

    async def _router(self, w: dict, exclusive: bool) -> None:
        wid = w["id"]
        prefix = f"worker.{wid}."
        lists = (("components", "get_router_components", "start_router_component", "stop_router_component",
                  "component"),
                 ("transports", "get_router_transports", "start_router_transport", "stop_router_transport",
                  "transport"),
                 ("realms", "get_router_realms", "start_router_realm", "stop_router_realm", "realm"))
        if exclusive:  # what goes beyond the config: components first, realms last
            for args in lists:
                await self._items(w, True, *args, stop_only=True)
        realms = w.get("realms", [])
        have = set(await self.call(prefix + "get_router_realms"))
        for realm in realms:
            rid = realm["id"]
            if rid not in have:
                await self.act(f"started realm '{rid}' ('{realm.get('name')}') on worker '{wid}'",
                               prefix + "start_router_realm", rid, realm)
                continue
            roles = [r for r in realm.get("roles", []) if isinstance(r, dict)]
            if roles:
                names = set()
                for role_id in await self.call(prefix + "get_router_realm_roles", rid):
                    names.add((await self.call(prefix + "get_router_realm_role", rid, role_id)).get("name"))
                for role in roles:
                    if role.get("name") not in names:
                        await self.act(f"started role '{role.get('name')}' on realm '{rid}' of worker '{wid}'",
                                       prefix + "start_router_realm_role", rid, role.get("id") or role["name"], role)
        for args in lists[1::-1]:  # transports, then components
            await self._items(w, False, *args, start_only=True)


class MrealmEngine:
    """The change engine's session on one mrealm (see the module docstring)."""

    def __init__(self, engine: "ChangeEngine", name: str):
        self.engine = engine
        self.name = name
        self._locks: dict[str, asyncio.Lock] = {}
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.client = Client(engine.backend_transport, name, auth=[Cryptosign(engine.key.private, authid=BACKEND)],
                             authrole=BACKEND, cbdir=str(engine.cbdir), backoff=Backoff(0.5, 10.0),
                             on_join=self._on_join, log_retries=False, on_failure=self._on_failure)

    def start(self) -> None:
        self.client.start()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.client.close()

    def _on_failure(self, error, attempt, delay):
        if isinstance(error, ApplicationError) and error.error == "wamp.error.not_authorized":
            log.info("Change engine: management realm '%s' refused the engine's session (%s)", self.name, error)
            return False  # the mrealm is gone
        if attempt in (1, 10) or attempt % 60 == 0:
            log.warning("Change engine: session on management realm '%s' failed (%s); trying again in %.1f s",
                        self.name, _err(error), delay)
        return None

    async def _on_join(self, session, details=None) -> None:
        await session.subscribe(MREALM + "on_node_ready", self._on_node_ready)
        await session.subscribe(MREALM + "on_node_config_changed", self._on_config_changed)
        log.info("Change engine: following management realm '%s'", self.name)
        try:
            online = await session.call(MREALM + "get_nodes", "online")
        except ApplicationError as e:
            log.warning("Change engine: management realm '%s': get_nodes failed: %s", self.name, e)
            return
        for oid in online or ():
            try:
                node = await session.call(MREALM + "get_node", oid)
            except ApplicationError:
                continue
            self._node_joined(oid, node)

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _on_node_ready(self, node_oid=None, node=None, *args, **kwargs) -> None:
        if isinstance(node_oid, str) and isinstance(node, dict):
            self._node_joined(node_oid, node)

    def _node_joined(self, node_oid: str, node: dict) -> None:
        extra = node.get("authextra") or {}
        if isinstance(extra, dict) and extra.get("on_start_apply_config", True) is False:
            log.info("Change engine: node '%s' (mrealm '%s') joined; on_start_apply_config is false: nothing applied",
                     node.get("authid"), self.name)
            return
        self._spawn(self.apply(node_oid, "joined"))

    def _on_config_changed(self, node_oid=None, info=None, *args, **kwargs) -> None:
        if isinstance(node_oid, str):
            self._spawn(self.apply(node_oid, "desired state changed", only_online=True))

    async def apply(self, node_oid: str, reason: str, only_online: bool = False) -> None:
        lock = self._locks.setdefault(node_oid, asyncio.Lock())
        if lock.locked():
            self._again.add(node_oid)  # the running apply goes once more when it is done
            return
        async with lock:
            while True:
                self._again.discard(node_oid)
                try:
                    await self._apply_once(node_oid, reason, only_online)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.error("Change engine: node %s (mrealm '%s'): applying the desired state failed: %s",
                              node_oid, self.name, _err(e))
                if node_oid not in self._again:
                    break
                reason = "desired state changed"
        if not lock.locked():
            self._locks.pop(node_oid, None)

    async def _apply_once(self, node_oid: str, reason: str, only_online: bool) -> None:
        session = await self.client.session(timeout=30)
        node = await session.call(MREALM + "get_node", node_oid)
        name = node.get("authid")
        if only_online and node.get("status") != "online":
            log.info("Change engine: node '%s' (mrealm '%s') is offline: its desired state is applied when it joins",
                     name, self.name)
            return
        desired = await session.call(MREALM + "get_node_config", node_oid)
        if desired is None:
            log.info("Change engine: node '%s' (mrealm '%s') %s: no desired state held by the master", name, self.name,
                     reason)
            return
        log.info("Change engine: node '%s' (mrealm '%s') %s: applying desired state version %s", name, self.name,
                 reason, desired.get("version"))
        applier = NodeApplier(self, session, node_oid, name)
        await applier.apply(desired.get("config") or {}, bool(desired.get("exclusive")))
        log.info("Change engine: node '%s' (mrealm '%s'): desired state version %s applied (%d action(s), %d failed)",
                 name, self.name, desired.get("version"), applier.actions, applier.failures)


class ChangeEngine(ApplicationSession):
    """The component: the global realm session (see the module docstring)."""

    def onConnect(self):
        self.cbdir = Path(os.getcwd())
        self.key = _load_key(self.cbdir)
        self.backend_transport = (self.config.extra or {}).get("transport") or DEFAULT_TRANSPORT
        self.mrealms: dict[str, MrealmEngine] = {}
        self.join(self.config.realm, authmethods=["cryptosign"], authid=BACKEND, authrole=BACKEND,
                  authextra={"pubkey": self.key.public_hex})

    def onChallenge(self, challenge):
        raw = bytes.fromhex(challenge.extra["challenge"])
        return (self.key.private.sign(raw) + raw).hex()

    async def onJoin(self, details):
        await self.subscribe(self._on_created, MREALM + "on_mrealm_created")
        await self.subscribe(self._on_deleted, MREALM + "on_mrealm_deleted")
        names = await self.call(MREALM + "list_mrealms", return_names=True)
        for name in names:
            self._follow(name)
        log.info("Change engine ready (%d management realm(s))", len(names))

    def _follow(self, name) -> None:
        if isinstance(name, str) and name not in self.mrealms:
            m = self.mrealms[name] = MrealmEngine(self, name)
            m.start()

    def _on_created(self, mrealm=None, *args, **kwargs) -> None:
        if isinstance(mrealm, dict):
            self._follow(mrealm.get("name"))

    async def _on_deleted(self, mrealm=None, *args, **kwargs) -> None:
        name = mrealm.get("name") if isinstance(mrealm, dict) else None
        m = self.mrealms.pop(name, None)
        if m is not None:
            await m.stop()
            log.info("Change engine: management realm '%s' deleted: no longer followed", name)

    async def onLeave(self, details):
        for m in list(self.mrealms.values()):
            await m.stop()
        self.mrealms.clear()
        self.disconnect()
