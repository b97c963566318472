"""Realms and the router that holds them (transport-agnostic)."""

from __future__ import annotations

import asyncio
import logging
import os

from ..config import defaults
from ..protocol import errors as E
from ..protocol.uri import MAX_URI_LENGTH, check_pattern, check_uri, quote_uri
from .authorization import DenyRole, DynamicRole, RouterRole, TrustedRole
from .broker import Broker
from .dealer import Dealer
from .auth import authenticate
from .meta import MetaApiAgent
from .linkstate import STATE_TOPIC, LinkState
from .session import RouterSession, session_info
from .store import create_store
from .urimap import UriCache

log = logging.getLogger("wampfabric.router")

# the realm's memory of URI validity: entries, and bytes of the URI strings it keeps alive
VALID_URIS_KEPT = 10_000
VALID_URIS_BYTES = 4 * 1024 * 1024

STAT_KEYS = (
    "publish", "published", "event", "subscribe", "register", "call", "invocation", "yield", "error",
)


class Realm:
    """A routing realm: its roles, broker, dealer and joined sessions."""

    def __init__(self, router: "Router", name: str, config: dict | None = None):
        self.router = router
        self.name = name
        self.config = config or {"name": name}
        options = self.config.get("options", {})
        # the loose URI rule unless the config asks for the strict one (as Crossbar.io)
        self.strict_uris = options.get("uri_check", defaults.URI_CHECK) == "strict"
        self.max_uri_length = options.get("max_uri_length", MAX_URI_LENGTH)
        self._uri_cache = UriCache(VALID_URIS_KEPT, VALID_URIS_BYTES)
        self._valid_uris = self._uri_cache.map
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self.roles: dict[str, object] = {"trusted": TrustedRole()}
        for role_cfg in self.config.get("roles", []):
            self.add_role(role_cfg)
        self.sessions: dict[int, RouterSession] = {}
        self.store = create_store(self.config)  # retained events and event histories
        self.linkstate = LinkState()  # router-to-router links' state (rlink/): this router's ID, the link graph
        self.broker = Broker(self)
        self.dealer = Dealer(self)
        self.router_roles = {
            "broker": {"features": dict(Broker.FEATURES)},
            "dealer": {"features": dict(Dealer.FEATURES)},
        }
        if options.get("enable_meta_api", defaults.ENABLE_META_API):
            self.meta = MetaApiAgent(self)
        else:
            self.meta = None

    def add_role(self, role_cfg: dict):
        """Start (or replace) a role; sessions of that role switch to it at once and
        their cached authorization answers are dropped."""
        name = role_cfg["name"]
        if role_cfg.get("authorizer"):
            role = DynamicRole(name, role_cfg["authorizer"], role_cfg, self)
        else:
            role = RouterRole(name, role_cfg.get("permissions", []), role_cfg)
        self.roles[name] = role
        self._rebind_role(name, role)
        return role

    def remove_role(self, name: str):
        """Stop a role: its sessions stay joined but are denied everything."""
        role = self.roles.pop(name, None)
        if role is not None:
            self._rebind_role(name, DenyRole(name))
        return role

    def _rebind_role(self, name: str, role) -> None:
        for s in getattr(self, "sessions", {}).values():
            if s.authrole == name and not s.trusted:
                s.role = role
                s.authz_cache = None

    def uri_ok(self, uri: str) -> bool:
        """Is ``uri`` a valid concrete URI under this realm's rules?  Cached: a
        router sees the same few procedures and topics over and over.  A URI
        longer than ``max_uri_length`` is invalid and never cached."""
        ok = self._valid_uris.get(uri)
        if ok is None:
            if type(uri) is not str or len(uri) > self.max_uri_length:
                return False
            ok = check_uri(uri, self.strict_uris)
            self._uri_cache.put(uri, ok, uri)
        return ok

    def pattern_ok(self, uri: str, match: str) -> bool:
        """Is ``uri`` valid for a SUBSCRIBE / REGISTER with ``match`` under this realm's rules?"""
        return type(uri) is str and len(uri) <= self.max_uri_length and check_pattern(uri, match, self.strict_uris)

    def quote_uri(self, uri) -> str:
        """``uri`` for an error text: quoted, a long one cut, and an over-long one
        says so (it is never echoed back whole)."""
        if type(uri) is not str:
            return f"of type {type(uri).__name__}"
        return quote_uri(uri, max_length=self.max_uri_length)

    def call_later(self, delay: float, fn, *args):
        return asyncio.get_running_loop().call_later(delay, fn, *args)

    def attach(self, session: RouterSession) -> None:
        self.sessions[session.session_id] = session
        if self.broker.meta_wanted("wamp.session.on_join"):
            self.broker.publish_meta("wamp.session.on_join", [session_info(session)])

    def detach(self, session: RouterSession) -> None:
        self.broker.detach(session)
        self.dealer.detach(session)
        self.sessions.pop(session.session_id, None)
        if session.rlink:
            # a link's leg: the links it stood for here are down (router/linkstate.py)
            down = self.linkstate.leg_gone(session.session_id)
            if down:
                self.broker.publish_to_legs(STATE_TOPIC, [down])
        testaments = session.testaments
        if testaments:
            # advanced/pubsub_testament: without session resumption, "detached" scope first
            session.testaments = None
            for scope in ("detached", "destroyed"):
                for topic, args, kwargs, options in testaments.get(scope, ()):
                    self.broker.publish_internal(topic, args, kwargs, options, session)
        if self.broker.meta_candidates:
            self.broker.publish_meta("wamp.session.on_leave", [session.session_id, session.authid, session.authrole])

    def shutdown(self, reason: str = E.CLOSE_REALM) -> None:
        for s in list(self.sessions.values()):
            s.goodbye(reason)


class Router:
    """All realms of one router (worker), plus session authentication."""

    def __init__(self, node_id: str = "node1", worker_id: str = "worker1"):
        self.node_id = node_id
        self.worker_id = worker_id
        self.realms: dict[str, Realm] = {}
        self._pid = os.getpid()

    # -- realms ------------------------------------------------------------------

    def start_realm(self, config: dict) -> Realm:
        name = config["name"]
        if name in self.realms:
            raise ValueError(f"realm '{name}' already running")
        realm = Realm(self, name, config)
        self.realms[name] = realm
        log.info("Realm '%s' started", name)
        return realm

    def stop_realm(self, name: str) -> Realm:
        realm = self.realms.pop(name)
        realm.shutdown()
        log.info("Realm '%s' stopped", name)
        return realm

    # -- sessions ------------------------------------------------------------------

    def welcome_extra(self, session: RouterSession) -> dict:
        return {
            "x_cb_node": self.node_id,
            "x_cb_worker": self.worker_id,
            "x_cb_peer": session.transport.peer,
            "x_cb_pid": self._pid,
        }

    def authenticate(self, session: RouterSession, realm_name, details: dict) -> None:
        """Authenticate a HELLO with the transport's ``auth`` config (see ``router/auth.py``)."""
        authenticate(self, session, realm_name, details)
