"""The router worker: ``RouterWorker`` runs the router core with realms,
roles, transports (and web services) and router components, all started and
stopped through its management procedures (the node boots a router worker
from config by calling exactly these)."""

from __future__ import annotations

import asyncio
import logging
import time

from ..client.session import ApplicationError
from ..config.realms import check_realm, check_rlink, check_role
from ..config.web import check_web_path_service
from ..config.workers import check_router_component
from ..router.auth import AuthThrottle
from ..rlink import RLinkManager
from ..router.realm import Router
from ..common.timefmt import utcstr
from ..protocol.crossbar_errors import (ALREADY_EXISTS, ALREADY_RUNNING, CANNOT_LISTEN, INVALID_ARGUMENT,
                                        CANNOT_START, INVALID_CONFIGURATION, NO_SUCH_OBJECT)
from .native import NativeWorker, check_or_raise

log = logging.getLogger("wampfabric.worker.router")

# transport states (Crossbar.io's numbering: the master reads ``state``)
STATE_CREATED, STATE_STARTING, STATE_STARTED, STATE_FAILED, STATE_STOPPING, STATE_STOPPED = range(1, 7)


class RouterRealm:
    def __init__(self, realm_id: str, config: dict, realm):
        self.id = realm_id
        self.config = config
        self.realm = realm
        self.created = time.time()
        self.roles: dict[str, dict] = {}  # role id -> role config

    def marshal(self) -> dict:
        return {"id": self.id, "name": self.config["name"], "config": self.config, "created": utcstr(self.created),
                "roles": sorted(self.roles), "sessions": self.client_sessions(), "stats": dict(self.realm.stats)}

    def client_sessions(self) -> int:
        """The realm's joined sessions, without its own meta API session."""
        realm = self.realm
        n = len(realm.sessions)
        if realm.meta is not None:
            n -= realm.meta.session.session_id in realm.sessions
        return n


class RouterTransportInfo:
    def __init__(self, transport_id: str, config: dict, transport):
        self.id = transport_id
        self.config = config
        self.transport = transport
        self.created = time.time()
        self.listening_since = None
        self.state = STATE_CREATED

    def marshal(self) -> dict:
        return {"id": self.id, "type": self.config["type"], "config": self.config,
                "created_at": utcstr(self.created), "listening_since": utcstr(self.listening_since),
                "state": self.state}


class RouterWorker(NativeWorker):
    WORKER_TYPE = "router"
    LOGNAME = "Router"

    PROCEDURES = NativeWorker.PROCEDURES + (
        "get_router_realms", "get_router_realm", "get_router_realm_stats", "start_router_realm", "stop_router_realm",
        "get_router_realm_roles", "get_router_realm_role", "start_router_realm_role", "stop_router_realm_role",
        "get_router_transports", "get_router_transport", "start_router_transport", "stop_router_transport",
        "get_web_transport_services", "get_web_transport_service", "start_web_transport_service",
        "stop_web_transport_service",
        "get_router_components", "get_router_component", "start_router_component", "stop_router_component",
        # router-to-router links (rlink/, docs/clustering.md)
        "get_router_realm_links", "get_router_realm_link", "start_router_realm_link", "stop_router_realm_link",
        # closing the sessions of principals a management system removed or changed
        "kill_router_realm_sessions",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.router = Router(node_id=self.node_id, worker_id=self.worker_id)
        # failed-authentication budgets of this router (option auth_throttle, see router/auth.py)
        self.router.auth_throttle = AuthThrottle(self.options.get("auth_throttle"))
        self.realms: dict[str, RouterRealm] = {}
        self.realm_ids: dict[str, str] = {}  # realm name -> realm id
        self.transports: dict[str, RouterTransportInfo] = {}
        self.components: dict = {}
        self._role_no = 0
        self.rlinks = RLinkManager(self.router, self.cbdir, self.publish)
        self._rlink_tasks: set[asyncio.Task] = set()

    async def on_stop(self) -> None:
        for rid in list(self.rlinks.links):
            await self.rlinks.stop_realm(rid)
        for cid in list(self.components):
            try:
                await self.stop_router_component(cid)
            except Exception:
                log.exception("stopping component %s", cid)
        for tid in list(self.transports):
            try:
                await self.stop_router_transport(tid)
            except Exception:
                log.exception("stopping transport %s", tid)
        for rid in list(self.realms):
            self.stop_router_realm(rid)

    # -- realms ----------------------------------------------------------------------------

    def get_router_realms(self, details=None) -> list:
        return sorted(self.realms)

    def _realm(self, realm_id: str) -> RouterRealm:
        r = self.realms.get(realm_id)
        if r is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no realm with ID '{realm_id}'")
        return r

    def get_router_realm(self, realm_id: str, details=None) -> dict:
        return self._realm(realm_id).marshal()

    def kill_router_realm_sessions(self, realm_id: str, authids: list, reason: str | None = None,
                                   message: str | None = None, details=None) -> list:
        """Close the sessions of realm ``realm_id`` authenticated as one of ``authids`` (GOODBYE
        with ``reason``, default ``wamp.close.killed``): what the master's change engine does for a
        router cluster principal that was removed or changed, whose joined sessions would otherwise
        go on with what it no longer has. The sorted IDs of the sessions closed."""
        rr = self._realm(realm_id)
        if not isinstance(authids, (list, tuple)) or not all(isinstance(a, str) for a in authids):
            raise ApplicationError(INVALID_ARGUMENT, "authids: a list of strings")
        wanted = set(authids)
        realm = rr.realm
        meta = realm.meta.session if realm.meta is not None else None
        victims = [s for s in list(realm.sessions.values()) if s is not meta and s.authid in wanted]
        for s in victims:
            s.goodbye(reason or "wamp.close.killed", message or "the principal was removed or changed")
        if victims:
            log.info("Realm '%s': closed %d session(s) of %s (%s)", realm_id, len(victims),
                     ", ".join(sorted(wanted)), reason or "wamp.close.killed")
        return sorted(s.session_id for s in victims)

    def get_router_realm_stats(self, realm_id: str | None = None, details=None) -> dict:
        """``{realm_id: {"roles", "sessions", "messages"}}`` (one realm or all): the realm's roles and
        joined sessions now, and its messages routed since the realm started, under Crossbar.io's
        names (the edge's worker heartbeats send them per interval): the router counts a CALL
        routed, an INVOCATION sent, a YIELD forwarded as a RESULT (so ``result`` = ``yield``), an
        ERROR sent to a caller, a PUBLISH accepted, a PUBLISHED sent, EVENTs delivered, a REGISTER
        and a SUBSCRIBE answered with REGISTERED / SUBSCRIBED.  The realm's own meta API session is
        not counted: neither as a session nor its registrations (made once, when the realm starts)."""
        ids = [self._realm(realm_id).id] if realm_id is not None else sorted(self.realms)
        out = {}
        for rid in ids:
            realm = self.realms[rid].realm
            st = realm.stats
            sessions, register = self.realms[rid].client_sessions(), st["register"]
            if realm.meta is not None:
                register -= len(realm.meta.session.registrations)
            out[rid] = {"roles": len(realm.roles), "sessions": sessions, "messages": {
                "call": st["call"], "yield": st["yield"], "invocation": st["invocation"], "result": st["yield"],
                "publish": st["publish"], "published": st["published"], "event": st["event"],
                "register": register, "registered": register, "subscribe": st["subscribe"],
                "subscribed": st["subscribe"], "error": st["error"]}}
        return out

    def start_router_realm(self, realm_id: str, config: dict, details=None) -> dict:
        if realm_id in self.realms:
            raise ApplicationError(ALREADY_RUNNING, f"a realm with ID '{realm_id}' is already running")
        check_or_raise(check_realm, config, "realm")
        name = config["name"]
        if name in self.router.realms:
            raise ApplicationError(ALREADY_RUNNING, f"a realm named '{name}' is already running")
        realm = self.router.start_realm(config)
        rr = RouterRealm(realm_id, config, realm)
        for role in config.get("roles", []):
            rr.roles[self._next_role_id(role)] = role
        self.realms[realm_id] = rr
        self.realm_ids[name] = realm_id
        info = rr.marshal()
        self.publish("on_realm_started", {"id": realm_id, "name": name})
        for n, link in enumerate(config.get("rlinks", []), 1):
            self._rlink_task(self._start_configured_link(realm_id, link.get("id") or f"rlink{n:03d}", link))
        return info

    def stop_router_realm(self, realm_id: str, details=None) -> dict:
        rr = self._realm(realm_id)
        name = rr.config["name"]
        if realm_id in self.rlinks.links:
            self._rlink_task(self.rlinks.stop_realm(realm_id))
        self.router.stop_realm(name)
        del self.realms[realm_id]
        self.realm_ids.pop(name, None)
        self.publish("on_realm_stopped", {"id": realm_id, "name": name})
        return {"id": realm_id, "name": name}

    # -- roles ---------------------------------------------------------------------------------

    def _next_role_id(self, role: dict) -> str:
        self._role_no += 1
        return role.get("id") or f"role{self._role_no:03d}"

    def get_router_realm_roles(self, realm_id: str, details=None) -> list:
        return sorted(self._realm(realm_id).roles)

    def get_router_realm_role(self, realm_id: str, role_id: str, details=None) -> dict:
        rr = self._realm(realm_id)
        if role_id not in rr.roles:
            raise ApplicationError(NO_SUCH_OBJECT, f"no role with ID '{role_id}' on realm '{realm_id}'")
        return {"id": role_id, "name": rr.roles[role_id]["name"], "config": rr.roles[role_id]}

    def start_router_realm_role(self, realm_id: str, role_id: str, config: dict, details=None) -> dict:
        rr = self._realm(realm_id)
        if role_id in rr.roles:
            raise ApplicationError(ALREADY_EXISTS, f"a role with ID '{role_id}' already exists on realm '{realm_id}'")
        check_or_raise(check_role, config, "role")
        if any(r["name"] == config["name"] for r in rr.roles.values()):
            raise ApplicationError(ALREADY_EXISTS,
                                   f"a role named '{config['name']}' already exists on realm '{realm_id}'")
        rr.realm.add_role(config)
        rr.roles[role_id] = config
        self.publish("on_router_realm_role_started", {"id": role_id, "realm": realm_id, "name": config["name"]})
        return {"id": role_id, "name": config["name"]}

    def stop_router_realm_role(self, realm_id: str, role_id: str, details=None) -> dict:
        rr = self._realm(realm_id)
        config = rr.roles.pop(role_id, None)
        if config is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no role with ID '{role_id}' on realm '{realm_id}'")
        rr.realm.remove_role(config["name"])
        self.publish("on_router_realm_role_stopped", {"id": role_id, "realm": realm_id, "name": config["name"]})
        return {"id": role_id, "name": config["name"]}

    # -- transports ------------------------------------------------------------------------------

    def get_router_transports(self, details=None) -> list:
        return sorted(self.transports)

    def _transport(self, transport_id: str) -> RouterTransportInfo:
        t = self.transports.get(transport_id)
        if t is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no transport with ID '{transport_id}'")
        return t

    def get_router_transport(self, transport_id: str, details=None) -> dict:
        return self._transport(transport_id).marshal()

    async def start_router_transport(self, transport_id: str, config: dict, details=None) -> dict:
        if transport_id in self.transports:
            raise ApplicationError(ALREADY_RUNNING, f"a transport with ID '{transport_id}' is already running")
        kind = config.get("type") if isinstance(config, dict) else None
        checker = self.personality.ROUTER_TRANSPORT_CHECKERS.get(kind)
        if checker is None:
            known = ", ".join(sorted(self.personality.ROUTER_TRANSPORT_CHECKERS))
            raise ApplicationError(INVALID_CONFIGURATION,
                                   f"transport.type: unknown transport type {kind!r} (available: {known})")
        check_or_raise(checker, config, "transport", self.personality)
        cls = self.personality.ROUTER_TRANSPORTS[kind]
        transport = cls(self.router, transport_id, config, self.cbdir, self.personality)
        info = RouterTransportInfo(transport_id, config, transport)
        info.state = STATE_STARTING
        self.transports[transport_id] = info
        self.publish("on_router_transport_starting", {"id": transport_id, "type": kind})
        try:
            await transport.start()
        except Exception as e:
            # not listening (a port taken), or a part of it could not start (a web service's
            # start(): an ASGI lifespan, a static directory gone): nothing of it stays registered
            del self.transports[transport_id]
            info.state = STATE_FAILED
            self.publish("on_router_transport_failed", {"id": transport_id, "type": kind, "error": str(e)})
            if isinstance(e, OSError):
                raise ApplicationError(CANNOT_LISTEN, f"cannot listen on {transport.description}: {e}") from None
            log.error("Router %s: %s failed to start: %s", self.worker_id, transport.description, e)
            raise ApplicationError(CANNOT_START, f"cannot start {transport.description}: {e}") from None
        info.state = STATE_STARTED
        info.listening_since = time.time()
        log.info("Router %s: %s started", self.worker_id, transport.description)
        self.publish("on_router_transport_started", info.marshal())
        return info.marshal()

    async def stop_router_transport(self, transport_id: str, details=None) -> dict:
        info = self._transport(transport_id)
        info.state = STATE_STOPPING
        await info.transport.stop()
        info.state = STATE_STOPPED
        del self.transports[transport_id]
        log.info("Router %s: %s stopped", self.worker_id, info.transport.description)
        self.publish("on_router_transport_stopped", {"id": transport_id, "type": info.config["type"]})
        return info.marshal()

    # -- web services ------------------------------------------------------------------------------

    def _web_transport(self, transport_id: str) -> RouterTransportInfo:
        info = self._transport(transport_id)
        if info.config["type"] != "web":
            raise ApplicationError(INVALID_ARGUMENT,
                                   f"transport '{transport_id}' is a {info.config['type']} transport, not web")
        return info

    def get_web_transport_services(self, transport_id: str, details=None) -> list:
        return sorted(self._web_transport(transport_id).config.get("paths", {}))

    def get_web_transport_service(self, transport_id: str, path: str, details=None) -> dict:
        paths = self._web_transport(transport_id).config.get("paths", {})
        if path not in paths:
            raise ApplicationError(NO_SUCH_OBJECT, f"no web service on path '{path}'")
        return {"path": path, "config": paths[path]}

    def start_web_transport_service(self, transport_id: str, path: str, config: dict, details=None) -> dict:
        info = self._web_transport(transport_id)
        paths = info.config.setdefault("paths", {})
        if path in paths:
            raise ApplicationError(ALREADY_RUNNING, f"a web service is already running on path '{path}'")
        check_or_raise(check_web_path_service, config, f"paths['{path}']", self.personality)
        info.transport.add_service(path, config)
        paths[path] = config
        self.publish("on_web_transport_service_started",
                     {"transport_id": transport_id, "path": path, "type": config["type"]})
        return {"path": path, "config": config}

    def stop_web_transport_service(self, transport_id: str, path: str, details=None) -> dict:
        info = self._web_transport(transport_id)
        paths = info.config.get("paths", {})
        if path not in paths:
            raise ApplicationError(NO_SUCH_OBJECT, f"no web service on path '{path}'")
        info.transport.remove_service(path)
        config = paths.pop(path)
        self.publish("on_web_transport_service_stopped",
                     {"transport_id": transport_id, "path": path, "type": config["type"]})
        return {"path": path, "config": config}

    # -- router components -----------------------------------------------------------------------------

    def get_router_components(self, details=None) -> list:
        return sorted(self.components)

    def get_router_component(self, component_id: str, details=None) -> dict:
        c = self.components.get(component_id)
        if c is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no component with ID '{component_id}'")
        return c.marshal()

    async def start_router_component(self, component_id: str, config: dict, details=None) -> dict:
        from .component import ComponentRunner, router_connector

        if component_id in self.components:
            raise ApplicationError(ALREADY_RUNNING, f"a component with ID '{component_id}' is already running")
        check_or_raise(check_router_component, config, "component")
        if config["realm"] not in self.router.realms:
            raise ApplicationError(NO_SUCH_OBJECT, f"no realm '{config['realm']}' on this router")
        runner = ComponentRunner(component_id, config, self.cbdir, router_connector(self.router, config),
                                 on_exit=self._component_exited)
        self.components[component_id] = runner
        try:
            await runner.start()
        except ApplicationError:
            self.components.pop(component_id, None)
            raise
        self.publish("on_router_component_start", runner.marshal())
        return runner.marshal()

    def _component_exited(self, runner) -> None:
        if self.components.get(runner.id) is runner:
            del self.components[runner.id]
            self.publish("on_router_component_stop", runner.marshal())

    async def stop_router_component(self, component_id: str, details=None) -> dict:
        runner = self.components.pop(component_id, None)
        if runner is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no component with ID '{component_id}'")
        await runner.stop()
        self.publish("on_router_component_stop", runner.marshal())
        return runner.marshal()

    # -- router-to-router links (rlink/, docs/clustering.md) -------------------------------------

    def _rlink_task(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._rlink_tasks.add(task)
        task.add_done_callback(self._rlink_tasks.discard)

    async def _start_configured_link(self, realm_id: str, link_id: str, config: dict) -> None:
        try:
            await self.start_router_realm_link(realm_id, link_id, config)
        except Exception as e:
            log.error("Router %s: cannot start router link %s of realm %s: %s", self.worker_id, link_id, realm_id, e)

    def get_router_realm_links(self, realm_id: str, details=None) -> list:
        self._realm(realm_id)
        return self.rlinks.ids(realm_id)

    def get_router_realm_link(self, realm_id: str, link_id: str, details=None) -> dict:
        self._realm(realm_id)
        return self.rlinks.get(realm_id, link_id).marshal()

    async def start_router_realm_link(self, realm_id: str, link_id: str, config: dict, details=None) -> dict:
        rr = self._realm(realm_id)
        check_or_raise(check_rlink, config, "rlink")
        caller = None
        if details is not None:
            caller = {k: details.get(k) for k in ("caller", "caller_authid", "caller_authrole")}
            caller = caller if any(caller.values()) else None
        link = await self.rlinks.start(realm_id, rr.config["name"], link_id, config, caller)
        return link.marshal()

    async def stop_router_realm_link(self, realm_id: str, link_id: str, details=None) -> dict:
        self._realm(realm_id)
        link = await self.rlinks.stop(realm_id, link_id)
        return link.marshal()
