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

Router clusters (``wire``, issue 16): after the desired state, the engine asks the master what the
node should run for the router clusters it is a member of
(``crossbarfabriccenter.mrealm.routercluster.get_routercluster_wiring(node_oid)``,
master/routercluster.py) and brings the node there, exclusively for the workers the clusters manage
(``managed``: the worker IDs ``<group>_<k>`` of every worker group of the mrealm): a managed worker
that is not wanted is stopped (a node removed from a cluster, a cluster or arealm stopped); a
wanted one is started (``start_worker(id, "router", {})``), then on it, in this order: realms not
wanted stopped (with their links), wanted realms started (with their roles) or their roles made
equal (by name: missing started, changed restarted, extra stopped); transports not wanted stopped,
wanted ones started, a transport whose configuration differs (new principals) restarted; links
(``start_router_realm_link``) not wanted stopped, missing started, changed restarted. The links
connect and reconnect by themselves (with backoff), so a link to a node that is offline is started
anyway and comes up with it. The wiring is applied when a node joins (``on_node_ready``; also when
its ``on_start_apply_config`` is false: cluster membership is a definition of its own) and, for
every online node, after any event under ``crossbarfabriccenter.mrealm.routercluster.`` or
``...arealm.`` (a definition changed; bursts are batched), and for a node one second after one of
its router workers stopped (``on_worker_stopped``: a crashed or killed cluster worker is started and
wired again; at most 5 times per worker a minute). One log line per action, errors logged and the
engine goes on.
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
ROUTERCLUSTER = MREALM + "routercluster."
AREALM = MREALM + "arealm."
REWIRE_DELAY = 0.2  # seconds a definition change waits for more before the nodes are wired again
WORKER_RESTART_DELAY = 1.0  # seconds before a node is wired again after one of its router workers stopped
WORKER_RESTARTS = 5  # at most this many of those per node and worker within WORKER_RESTART_WINDOW seconds
WORKER_RESTART_WINDOW = 60.0
CONFIG, WIRING = "config", "wiring"


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

    async def apply(self, desired: dict, exclusive: bool, keep=frozenset()) -> None:
        """``keep``: workers an exclusive desired state leaves alone (the router clusters' own)."""
        workers = [w for w in desired.get("workers", []) if isinstance(w, dict)]
        running = set(await self.call("get_workers"))
        wanted = {w["id"] for w in workers}
        if exclusive:
            for wid in sorted(running - wanted - set(keep)):
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


def _principals(transport_config) -> dict:
    """``{(method, authid): principal}`` of a transport config's static authentication."""
    out = {}
    for method, auth in ((transport_config or {}).get("auth") or {}).items():
        if isinstance(auth, dict) and auth.get("type") == "static":
            for authid, principal in (auth.get("principals") or {}).items():
                out[(method, authid)] = principal
    return out


def changed_principals(old_config, new_config) -> set:
    """The authids whose principal a transport no longer has, or has with another realm, role,
    credential or authextra: their sessions must not go on as they are."""
    old, new = _principals(old_config), _principals(new_config)
    return {authid for key, principal in old.items() if new.get(key) != principal for authid in (key[1],)}


class ClusterWirer(NodeApplier):
    """Brings one node to its router cluster wiring (see the module docstring)."""

    async def wire(self, plan: dict) -> None:
        workers = [w for w in plan.get("workers") or () if isinstance(w, dict)]
        wanted = {w["id"] for w in workers}
        running = set(await self.call("get_workers"))
        for wid in sorted((set(plan.get("managed") or ()) & running) - wanted):
            await self.act(f"stopped router worker '{wid}' (not wanted by a running router cluster here)",
                           "stop_worker", wid)
        for w in workers:
            wid = w["id"]
            if wid not in running:
                if not await self.act(f"started router worker '{wid}' (router cluster '{w.get('cluster')}', worker "
                                      f"group '{w.get('workergroup')}')", "start_worker", wid, "router", {}):
                    continue
            else:
                have = ((await self.call("get_worker", wid)) or {}).get("type")
                if have != "router":
                    self.failures += 1
                    self._log("worker '%s' runs as a %s worker, router cluster '%s' wants a router worker: left alone",
                              wid, have, w.get("cluster"), error=True)
                    continue
            try:
                await self._worker(w)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.failures += 1
                self._log("wiring worker '%s' failed: %s", wid, _err(e), error=True)

    async def _worker(self, w: dict) -> None:
        wid = w["id"]
        prefix = f"worker.{wid}."
        realms = {r["id"]: r["config"] for r in w.get("realms") or ()}
        have = set(await self.call(prefix + "get_router_realms"))
        for rid in sorted(have - set(realms)):
            await self.act(f"stopped realm '{rid}' on worker '{wid}' (not wanted by the router cluster)",
                           prefix + "stop_router_realm", rid)
        for rid, cfg in realms.items():
            if rid not in have:
                names = ", ".join(r["name"] for r in cfg.get("roles", []))
                await self.act(f"started realm '{rid}' on worker '{wid}' (roles {names})",
                               prefix + "start_router_realm", rid, cfg)
            else:
                await self._roles(prefix, wid, rid, cfg.get("roles") or [])
        links: dict[str, dict] = {rid: {} for rid in realms}
        for link in w.get("links") or ():
            links.setdefault(link["realm_id"], {})[link["id"]] = link["config"]
        have_links = {}
        for rid, want in links.items():  # links not wanted go first (before their listeners change)
            have_links[rid] = set(await self.call(prefix + "get_router_realm_links", rid))
            for lid in sorted(have_links[rid] - set(want)):
                await self.act(f"stopped link '{lid}' of realm '{rid}' on worker '{wid}' (not wanted by the router "
                               f"cluster)", prefix + "stop_router_realm_link", rid, lid)
        transports = {t["id"]: t["config"] for t in w.get("transports") or ()}
        have = set(await self.call(prefix + "get_router_transports"))
        for tid in sorted(have - set(transports)):
            await self.act(f"stopped transport '{tid}' on worker '{wid}' (not wanted by the router cluster)",
                           prefix + "stop_router_transport", tid)
        for tid, cfg in transports.items():
            gone: set = set()
            if tid in have:
                current = (await self.call(prefix + "get_router_transport", tid)).get("config")
                if current == cfg:
                    continue
                if not await self.act(f"stopped transport '{tid}' on worker '{wid}' (its configuration changed)",
                                      prefix + "stop_router_transport", tid):
                    continue
                gone = changed_principals(current, cfg)
            port = (cfg.get("endpoint") or {}).get("port")
            await self.act(f"started transport '{tid}' on worker '{wid}' (port {port})",
                           prefix + "start_router_transport", tid, cfg)
            if gone:  # their sessions joined before: close them (a removed principal stays out)
                for rid in realms:
                    await self.act(f"closed the sessions of {', '.join(sorted(gone))} on realm '{rid}' of worker "
                                   f"'{wid}' (principal removed or changed)",
                                   prefix + "kill_router_realm_sessions", rid, sorted(gone))
        for rid, want in links.items():
            for lid, cfg in want.items():
                if lid in have_links[rid]:
                    current = (await self.call(prefix + "get_router_realm_link", rid, lid)).get("config")
                    if current == cfg:
                        continue
                    if not await self.act(f"stopped link '{lid}' of realm '{rid}' on worker '{wid}' (its "
                                          f"configuration changed)", prefix + "stop_router_realm_link", rid, lid):
                        continue
                await self.act(f"started link '{lid}' of realm '{rid}' on worker '{wid}' (to "
                               f"{cfg['transport'].get('url')})", prefix + "start_router_realm_link", rid, lid, cfg)

    async def _roles(self, prefix: str, wid: str, rid: str, roles: list) -> None:
        have = {}
        for role_id in await self.call(prefix + "get_router_realm_roles", rid):
            info = await self.call(prefix + "get_router_realm_role", rid, role_id)
            have[info.get("name")] = (role_id, info.get("config"))
        want = {r["name"]: r for r in roles}
        for name in sorted(set(have) - set(want)):
            await self.act(f"stopped role '{name}' of realm '{rid}' on worker '{wid}' (not one of the arealm's roles)",
                           prefix + "stop_router_realm_role", rid, have[name][0])
        for name, cfg in want.items():
            if name in have:
                if have[name][1] == cfg:
                    continue
                if not await self.act(f"stopped role '{name}' of realm '{rid}' on worker '{wid}' (its permissions "
                                      f"changed)", prefix + "stop_router_realm_role", rid, have[name][0]):
                    continue
            await self.act(f"started role '{name}' on realm '{rid}' of worker '{wid}'",
                           prefix + "start_router_realm_role", rid, name, cfg)


class MrealmEngine:
    """The change engine's session on one mrealm (see the module docstring)."""

    def __init__(self, engine: "ChangeEngine", name: str):
        self.engine = engine
        self.name = name
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, set] = {}  # node oid -> what to apply (CONFIG, WIRING) once its lock is free
        self._tasks: set[asyncio.Task] = set()
        self._rewire: asyncio.Task | None = None
        self._worker_stops: dict[tuple, list] = {}  # (node oid, worker id) -> loop times it stopped
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
        await session.subscribe(MREALM + "on_worker_stopped", self._on_worker_stopped)
        for prefix in (ROUTERCLUSTER, AREALM):
            await session.subscribe(prefix, self._on_definition_changed, options={"match": "prefix"})
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
            log.info("Change engine: node '%s' (mrealm '%s') joined; on_start_apply_config is false: its desired "
                     "state is not applied (only the router clusters it is a member of are wired)",
                     node.get("authid"), self.name)
            self._spawn(self.apply(node_oid, "joined", parts=(WIRING,)))
            return
        self._spawn(self.apply(node_oid, "joined"))

    def _on_config_changed(self, node_oid=None, info=None, *args, **kwargs) -> None:
        if isinstance(node_oid, str):
            self._spawn(self.apply(node_oid, "desired state changed", only_online=True, parts=(CONFIG,)))

    def _on_worker_stopped(self, node_oid=None, worker=None, *args, **kwargs) -> None:
        """A router worker of a node stopped (exited, killed, stopped by hand): the node is wired again
        after a second, which starts it again if a router cluster wants it there; at most
        WORKER_RESTARTS times per worker a minute (a worker that keeps failing waits for the next join
        or definition change)."""
        if not isinstance(node_oid, str) or not isinstance(worker, dict) or worker.get("type") != "router":
            return
        key = (node_oid, worker.get("id"))
        now = asyncio.get_running_loop().time()
        times = [t for t in self._worker_stops.get(key, ()) if now - t < WORKER_RESTART_WINDOW] + [now]
        self._worker_stops[key] = times
        if len(times) > WORKER_RESTARTS:
            if len(times) == WORKER_RESTARTS + 1:
                log.error("Change engine: node %s (mrealm '%s'): router worker '%s' stopped %d times within %d s: not "
                          "wired again before the next join or definition change", node_oid, self.name, key[1],
                          len(times), WORKER_RESTART_WINDOW)
            return

        async def later():
            await asyncio.sleep(WORKER_RESTART_DELAY)
            await self.apply(node_oid, f"router worker '{key[1]}' stopped", only_online=True, parts=(WIRING,))
        self._spawn(later())

    def _on_definition_changed(self, *args, **kwargs) -> None:
        """A router cluster or arealm definition changed: every online node is wired again (once for
        a burst of events)."""
        if self._rewire is None or self._rewire.done():
            self._rewire = asyncio.ensure_future(self._rewire_online())
            self._tasks.add(self._rewire)
            self._rewire.add_done_callback(self._tasks.discard)

    async def _rewire_online(self) -> None:
        await asyncio.sleep(REWIRE_DELAY)
        self._rewire = None  # a change from here on schedules another pass
        try:
            session = await self.client.session(timeout=30)
            online = await session.call(MREALM + "get_nodes", "online")
        except Exception as e:
            log.warning("Change engine: management realm '%s': router cluster definitions changed, but the nodes "
                        "could not be listed: %s", self.name, _err(e))
            return
        for oid in online or ():
            self._spawn(self.apply(oid, "router cluster definitions changed", only_online=True, parts=(WIRING,)))

    async def apply(self, node_oid: str, reason: str, only_online: bool = False,
                    parts: tuple = (CONFIG, WIRING)) -> None:
        self._pending.setdefault(node_oid, set()).update(parts)
        lock = self._locks.setdefault(node_oid, asyncio.Lock())
        if lock.locked():
            return  # the running apply goes once more for what is pending when it is done
        async with lock:
            while self._pending.get(node_oid):
                now = self._pending.pop(node_oid)
                try:
                    await self._apply_once(node_oid, reason, only_online, now)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.error("Change engine: node %s (mrealm '%s'): applying the desired state failed: %s",
                              node_oid, self.name, _err(e))
                reason = "desired state changed" if CONFIG in self._pending.get(node_oid, ()) else \
                    "router cluster definitions changed"
                only_online = True
        if not lock.locked():
            self._locks.pop(node_oid, None)

    async def _apply_once(self, node_oid: str, reason: str, only_online: bool, parts=(CONFIG, WIRING)) -> None:
        session = await self.client.session(timeout=30)
        node = await session.call(MREALM + "get_node", node_oid)
        name = node.get("authid")
        if only_online and node.get("status") != "online":
            log.info("Change engine: node '%s' (mrealm '%s') is offline: its desired state is applied when it joins",
                     name, self.name)
            return
        if CONFIG in parts:
            try:
                await self._apply_config(session, node_oid, name, reason)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the router cluster wiring is applied all the same
                log.error("Change engine: node '%s' (mrealm '%s'): applying the desired state failed: %s", name,
                          self.name, _err(e))
        if WIRING in parts:
            await self._wire(session, node_oid, name, reason)

    async def _wire(self, session, node_oid: str, name: str, reason: str) -> None:
        try:
            plan = await session.call(ROUTERCLUSTER + "get_routercluster_wiring", node_oid)
        except ApplicationError as e:
            log.error("Change engine: node '%s' (mrealm '%s'): its router cluster wiring could not be read: %s", name,
                      self.name, e)
            return
        if not plan.get("workers") and not plan.get("managed"):
            return  # no router clusters in this mrealm
        wirer = ClusterWirer(self, session, node_oid, name)
        await wirer.wire(plan)
        if wirer.actions or wirer.failures:
            log.info("Change engine: node '%s' (mrealm '%s') %s: router cluster wiring applied (cluster(s) %s; %d "
                     "action(s), %d failed)", name, self.name, reason, ", ".join(plan.get("clusters") or ()) or "none",
                     wirer.actions, wirer.failures)

    async def _apply_config(self, session, node_oid: str, name: str, reason: str) -> None:
        desired = await session.call(MREALM + "get_node_config", node_oid)
        if desired is None:
            log.info("Change engine: node '%s' (mrealm '%s') %s: no desired state held by the master", name, self.name,
                     reason)
            return
        log.info("Change engine: node '%s' (mrealm '%s') %s: applying desired state version %s", name, self.name,
                 reason, desired.get("version"))
        applier = NodeApplier(self, session, node_oid, name)
        keep = ()
        if desired.get("exclusive"):  # the router clusters' workers are not the desired state's to stop
            try:
                keep = (await session.call(ROUTERCLUSTER + "get_routercluster_wiring", node_oid)).get("managed") or ()
            except ApplicationError as e:
                log.warning("Change engine: node '%s' (mrealm '%s'): its router cluster wiring could not be read (%s): "
                            "the exclusive desired state may stop router cluster workers", name, self.name, e)
        await applier.apply(desired.get("config") or {}, bool(desired.get("exclusive")), keep)
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
