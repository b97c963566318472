"""The domain controller: the API of the global realm ``com.crossbario.fabric`` (protocol §2, §6).

A router component of the master's router worker (``master init`` puts it into ``config.json``).
Procedures (``crossbarfabriccenter.``):

- ``domain.get_status()``, ``domain.get_version()``, ``domain.get_license()``;
- ``mrealm.list_mrealms(return_names=None)``: only the mrealms the caller has a role on (D9; the
  master's own ``backend`` components get all);
  ``mrealm.get_mrealm(oid)``, ``mrealm.get_mrealm_by_name(name)``: any role;
- ``mrealm.create_mrealm({"name": ...})``: the caller becomes its owner; the realm starts at once;
- ``mrealm.delete_mrealm(oid, cascade=False)``, ``mrealm.delete_mrealm_by_name(name, cascade=False)``:
  owner only; refused while nodes are paired unless ``cascade`` (they are unpaired and kicked);
  the mrealm's database directory is kept, renamed ``.db-mrealm-<oid>.deleted-<UTC time>``;
- ``mrealm.pair_node(pubkey, mrealm_name, node_name, authextra=None)``, ``mrealm.unpair_node(oid)``,
  ``mrealm.unpair_node_by_pubkey(pubkey)``, ``mrealm.unpair_node_by_name(mrealm_name, node_name)``:
  owner only; unpairing a connected node closes its session;
- ``mrealm.list_nodes(mrealm_name=None, return_names=False)``, ``mrealm.get_node(oid)``,
  ``mrealm.get_node_by_name(mrealm_name, node_name)``: any role on the node's mrealm (D11: no stubs);
- ``mrealm.set_roles_on_mrealm_for_user(mrealm, user, roles)``: owner only.

Events: ``mrealm.on_mrealm_created``, ``on_mrealm_deleted``, ``on_node_paired``,
``on_node_unpaired`` (the record as the API returns it), ``domain.on_tick`` every 300 s,
``domain.on_meter_usage(mrealm_oid, timestamp_from, timestamp, record)`` for every usage record
the master heartbeat loop writes (master/metering.py, which this component starts).

An object the caller has no role on is reported exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from datetime import timedelta

from autobahn.asyncio.wamp import ApplicationSession

from .. import __version__
from ..client.session import ApplicationError
from ..common.timefmt import utcstr
from ..db.errors import DuplicateKey
from . import runtime as rt
from .api import ALREADY_EXISTS, INVALID_ARGUMENT, NO_SUCH_OBJECT, NOT_AUTHORIZED, Ticker, publish, register_all
from .metering import Metering, usage_api
from .nodeconfig import delete_node_configs
from .roles import OWNER, ROLE_NAMES, ROLE_NUMBERS, BackendRole
from .store import to_api
from .watch import WatchToPair

log = logging.getLogger("wampfabric.master.domain")

DOMAIN_TICK = 300.0

DOMAIN_PROCEDURES = ("get_status", "get_version", "get_license")
MREALM_PROCEDURES = (
    "list_mrealms", "get_mrealm", "get_mrealm_by_name", "create_mrealm", "delete_mrealm", "delete_mrealm_by_name",
    "pair_node", "unpair_node", "unpair_node_by_pubkey", "unpair_node_by_name", "get_node_by_name", "list_nodes",
    "get_node", "set_roles_on_mrealm_for_user",
)


def _no_mrealm(what) -> ApplicationError:
    return ApplicationError(NO_SUCH_OBJECT, f"no management realm {what}")


def _no_node(what) -> ApplicationError:
    return ApplicationError(NO_SUCH_OBJECT, f"no node {what}")


def _master_key(master):
    """The master's Ed25519 private key (``key.priv`` of its node directory): it signs usage
    records; None (with an error logged) when it cannot be read."""
    from ..node.keys import KeyError_, load_or_create_node_key

    try:
        key, _ = load_or_create_node_key(master.cbdir)
        return key.private
    except (KeyError_, OSError) as e:
        log.error("Metering: the master's key cannot be read (%s): usage records are kept but not submitted", e)
        return None


class Domain:
    """The procedures (separate from the session, so they read as plain methods)."""

    def __init__(self, session, master):
        self.session = session
        self.master = master
        self.store = master.store

    # -- domain ------------------------------------------------------------------------------

    def get_status(self, details=None) -> dict:
        now = time.time()
        return {"type": "domain", "realm": rt.GLOBAL_REALM, "now": utcstr(now), "started": utcstr(self.master.started),
                "uptime": str(timedelta(seconds=int(now - self.master.started))),
                "tick": self.session.ticker.tick if self.session.ticker else 0,
                "metering": self.master.metering.status() if getattr(self.master, "metering", None) else None}

    def get_version(self, details=None) -> dict:
        import autobahn
        import lmdb

        return {"product": "wampfabric", "version": __version__, "autobahn": autobahn.__version__,
                "lmdb": ".".join(map(str, lmdb.version())), "python": platform.python_version(),
                "python_implementation": platform.python_implementation(), "platform": platform.platform(),
                "executable": sys.executable}

    def get_license(self, details=None) -> dict:
        return {"product": "wampfabric", "description": "wampfabric master node: no usage limits",
                "features": {}, "limits": {}}

    # -- helpers -------------------------------------------------------------------------------

    def _mrealm_for(self, user, mrealm, need_owner=False):
        """The mrealm if the user may see it (or own it, with need_owner); else as if it did not exist
        (seeing) or not_authorized (owning, when the user sees it)."""
        if mrealm is None:
            return None
        roles = self.master.user_roles(user, mrealm)
        if not roles:
            return None
        if need_owner and OWNER not in roles:
            raise ApplicationError(NOT_AUTHORIZED, f"only an owner of management realm '{mrealm.name}' may do this")
        return mrealm

    def _mrealm_by_name(self, user, name, need_owner=False):
        if not isinstance(name, str):
            raise ApplicationError(INVALID_ARGUMENT, "the management realm's name must be a string")
        mrealm = self._mrealm_for(user, self.store.mrealm_by_name(name), need_owner)
        if mrealm is None:
            raise _no_mrealm(f"named '{name}'")
        return mrealm

    def _mrealm_by_oid(self, user, oid, need_owner=False):
        mrealm = self._mrealm_for(user, self.store.mrealm(oid), need_owner)
        if mrealm is None:
            raise _no_mrealm(f"with oid {oid!r}")
        return mrealm

    def _visible_mrealms(self, user) -> list:
        mrealms = self.store.mrealms()
        if self.master.is_superuser(user.email):
            return mrealms
        mine = self.store.mrealms_of(user.oid)
        return [m for m in mrealms if m.oid in mine]

    # -- mrealms -------------------------------------------------------------------------------

    def list_mrealms(self, return_names=None, details=None) -> list:
        if getattr(details, "caller_authrole", None) == "backend":
            # the master's own components (the change engine) follow every mrealm
            return [m.name if return_names else str(m.oid) for m in sorted(self.store.mrealms(), key=lambda m: m.name)]
        user = self.master.caller_user(details)
        mrealms = sorted(self._visible_mrealms(user), key=lambda m: m.name)
        return [m.name if return_names else str(m.oid) for m in mrealms]

    def get_mrealm(self, mrealm_oid, details=None) -> dict:
        return to_api(self._mrealm_by_oid(self.master.caller_user(details), mrealm_oid))

    def get_mrealm_by_name(self, mrealm_name, details=None) -> dict:
        return to_api(self._mrealm_by_name(self.master.caller_user(details), mrealm_name))

    async def create_mrealm(self, mrealm, details=None) -> dict:
        user = self.master.caller_user(details)
        if not isinstance(mrealm, dict):
            raise ApplicationError(INVALID_ARGUMENT, "create_mrealm takes an object with at least 'name'")
        name = self.master.check_mrealm_name(mrealm.get("name"))
        for attr in ("label", "description"):
            if mrealm.get(attr) is not None and not isinstance(mrealm[attr], str):
                raise ApplicationError(INVALID_ARGUMENT, f"'{attr}' must be a string")
        tags = mrealm.get("tags")
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise ApplicationError(INVALID_ARGUMENT, "'tags' must be a list of strings")
        try:
            record = self.store.create_mrealm(name, user, mrealm.get("label"), mrealm.get("description"), tags,
                                              self.master.worker.worker_id)
        except DuplicateKey:
            raise ApplicationError(ALREADY_EXISTS, f"a management realm named '{name}' already exists") from None
        try:
            await self.master.start_mrealm(record)
        except Exception as e:
            self.store.delete_mrealm(record)
            log.error("management realm '%s' could not start: %s", name, e)
            raise ApplicationError("wamp.error.runtime_error", f"management realm '{name}' could not start: {e}")
        log.info("Management realm '%s' created by '%s' (oid %s)", name, user.email, record.oid)
        out = to_api(record)
        publish(self.session, "crossbarfabriccenter.mrealm.on_mrealm_created", out)
        return out

    async def _delete(self, user, mrealm, cascade) -> dict:
        nodes = self.store.nodes({mrealm.oid})
        if nodes and not cascade:
            raise ApplicationError("crossbar.error.not_empty",
                                   f"management realm '{mrealm.name}' has {len(nodes)} paired node(s): unpair them "
                                   f"first or delete with cascade=True")
        await self.master.stop_mrealm(mrealm)  # its sessions (nodes too) are closed
        removed = self.store.delete_mrealm(mrealm)
        delete_node_configs(self.store, [n.oid for n in removed])
        self.master.retire_mrealm_db(mrealm)  # closed with the mrealm controller: kept, renamed
        for node in removed:
            publish(self.session, "crossbarfabriccenter.mrealm.on_node_unpaired", to_api(node))
        log.info("Management realm '%s' deleted by '%s' (%d node(s) unpaired)", mrealm.name, user.email, len(removed))
        out = to_api(mrealm)
        publish(self.session, "crossbarfabriccenter.mrealm.on_mrealm_deleted", out)
        return out

    async def delete_mrealm(self, mrealm_oid, cascade=False, details=None) -> dict:
        user = self.master.caller_user(details)
        return await self._delete(user, self._mrealm_by_oid(user, mrealm_oid, need_owner=True), bool(cascade))

    async def delete_mrealm_by_name(self, mrealm_name, cascade=False, details=None) -> dict:
        user = self.master.caller_user(details)
        return await self._delete(user, self._mrealm_by_name(user, mrealm_name, need_owner=True), bool(cascade))

    def set_roles_on_mrealm_for_user(self, mrealm, user, roles, details=None) -> dict:
        """``mrealm``: oid or name; ``user``: oid or email; ``roles``: names or numbers (empty: none)."""
        caller = self.master.caller_user(details)
        realm = self.store.mrealm(mrealm) or self.store.mrealm_by_name(mrealm)
        realm = self._mrealm_for(caller, realm, need_owner=True)
        if realm is None:
            raise _no_mrealm(f"{mrealm!r}")
        target = self.store.user(user) or (self.store.user_by_email(user) if isinstance(user, str) else None)
        if target is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no user {user!r}")
        if not isinstance(roles, list):
            raise ApplicationError(INVALID_ARGUMENT, "roles must be a list (of owner, admin, user, guest or 1..4)")
        numbers = set()
        for r in roles:
            n = ROLE_NUMBERS.get(r) if isinstance(r, str) else (r if r in ROLE_NAMES and type(r) is int else None)
            if n is None:
                raise ApplicationError(INVALID_ARGUMENT, f"invalid role {r!r} (owner, admin, user, guest or 1..4)")
            numbers.add(n)
        if target.oid == realm.owner and OWNER not in numbers:
            raise ApplicationError(INVALID_ARGUMENT, "the creator of a management realm stays its owner")
        self.store.set_roles(target.oid, realm.oid, sorted(numbers))
        log.info("Roles of '%s' on management realm '%s' set to %s by '%s'", target.email, realm.name,
                 [ROLE_NAMES[n] for n in sorted(numbers)], caller.email)
        return {"mrealm_oid": str(realm.oid), "user_oid": str(target.oid), "roles": sorted(numbers)}

    # -- nodes -----------------------------------------------------------------------------------

    def pair(self, pubkey, mrealm, authid, authextra, owner, cluster_ip=None):
        """Store a pairing and announce it (the API's pair_node and watch-to-pair)."""
        try:
            node = self.store.pair_node(pubkey, mrealm, authid, authextra, owner, cluster_ip)
        except DuplicateKey as e:
            if "by_pubkey" in str(e):
                raise ApplicationError(ALREADY_EXISTS, "a node with this public key is already paired") from None
            raise ApplicationError(ALREADY_EXISTS,
                                   f"a node named '{authid}' is already paired with '{mrealm.name}'") from None
        log.info("Node '%s' (key %s...) paired with management realm '%s'", authid, pubkey[:16], mrealm.name)
        out = to_api(node)
        publish(self.session, "crossbarfabriccenter.mrealm.on_node_paired", out)
        return out

    def pair_node(self, pubkey, realm_name, authid, authextra=None, details=None) -> dict:
        user = self.master.caller_user(details)
        pubkey = self.master.check_pubkey(pubkey)
        mrealm = self._mrealm_by_name(user, realm_name, need_owner=True)
        authid = self.master.check_node_name(authid)
        if authextra is not None and not isinstance(authextra, dict):
            raise ApplicationError(INVALID_ARGUMENT, "authextra must be an object (or null)")
        return self.pair(pubkey, mrealm, authid, authextra, user)

    def _unpair(self, user, node) -> dict:
        mrealm = self._mrealm_for(user, self.store.mrealm(node.mrealm_oid), need_owner=True) if node else None
        if node is None or mrealm is None:
            raise _no_node("(no such node, or not in a management realm of yours)")
        self.store.unpair_node(node)
        delete_node_configs(self.store, [node.oid])
        self.master.kick_node(mrealm.name, node.authid, "node unpaired")
        log.info("Node '%s' unpaired from management realm '%s' by '%s'", node.authid, mrealm.name, user.email)
        out = to_api(node)
        publish(self.session, "crossbarfabriccenter.mrealm.on_node_unpaired", out)
        return out

    def unpair_node(self, node_oid, details=None) -> dict:
        user = self.master.caller_user(details)
        return self._unpair(user, self.store.node(node_oid))

    def unpair_node_by_pubkey(self, pubkey, details=None) -> dict:
        user = self.master.caller_user(details)
        return self._unpair(user, self.store.node_by_pubkey(self.master.check_pubkey(pubkey)))

    def unpair_node_by_name(self, realm_name, authid, details=None) -> dict:
        user = self.master.caller_user(details)
        mrealm = self._mrealm_by_name(user, realm_name, need_owner=True)
        node = self.store.node_by_name(mrealm.oid, authid) if isinstance(authid, str) else None
        if node is None:
            raise _no_node(f"named {authid!r} in management realm '{realm_name}'")
        return self._unpair(user, node)

    def _node_out(self, node) -> dict:
        out = to_api(node)
        mrealm = self.store.mrealm(node.mrealm_oid)
        out["mrealm_name"] = mrealm.name if mrealm else None
        out["connected"] = bool(mrealm and self.master.node_session(mrealm.name, node.authid) is not None)
        return out

    def get_node(self, node_oid, details=None) -> dict:
        user = self.master.caller_user(details)
        node = self.store.node(node_oid)
        if node is None or self._mrealm_for(user, self.store.mrealm(node.mrealm_oid)) is None:
            raise _no_node(f"with oid {node_oid!r}")
        return self._node_out(node)

    def get_node_by_name(self, mrealm_name, node_name, details=None) -> dict:
        user = self.master.caller_user(details)
        mrealm = self._mrealm_by_name(user, mrealm_name)
        node = self.store.node_by_name(mrealm.oid, node_name) if isinstance(node_name, str) else None
        if node is None:
            raise _no_node(f"named {node_name!r} in management realm '{mrealm_name}'")
        return self._node_out(node)

    def list_nodes(self, mrealm_name=None, return_names=False, details=None) -> list:
        """Nodes of the mrealms the caller has a role on (of one, with ``mrealm_name``): oids, or
        ``[mrealm name, node name]`` pairs with ``return_names``."""
        user = self.master.caller_user(details)
        if mrealm_name is not None:
            mrealms = [self._mrealm_by_name(user, mrealm_name)]
        else:
            mrealms = self._visible_mrealms(user)
        names = {m.oid: m.name for m in mrealms}
        nodes = sorted(self.store.nodes(set(names)), key=lambda n: (names[n.mrealm_oid], n.authid))
        if return_names:
            return [[names[n.mrealm_oid], n.authid] for n in nodes]
        return [str(n.oid) for n in nodes]


class DomainController(ApplicationSession):
    """The router component on the global realm (see the module docstring)."""

    ticker: Ticker | None = None
    watcher: WatchToPair | None = None
    metering: Metering | None = None

    async def onJoin(self, details):
        master = rt.current()
        # the master's own components (the change engine) join the global realm as 'backend'
        realm = master.router.realms.get(details.realm)
        if realm is not None:
            realm.roles["backend"] = BackendRole()
        self.domain = Domain(self, master)
        await register_all(self, "crossbarfabriccenter.domain.", self.domain, DOMAIN_PROCEDURES)
        await register_all(self, "crossbarfabriccenter.mrealm.", self.domain, MREALM_PROCEDURES)
        master.domain = self.domain
        self.ticker = Ticker(self, "crossbarfabriccenter.domain.on_tick", DOMAIN_TICK)
        self.ticker.start()
        self.watcher = WatchToPair.from_env(master, self.domain)
        if self.watcher is not None:
            self.watcher.start()
        self.metering = Metering(master, signing_key=_master_key(master))
        self.metering.on_written = self._on_meter_usage
        self.metering.start()
        master.metering = self.metering
        log.info("Domain controller ready on realm '%s' (%d procedures)", details.realm,
                 len(DOMAIN_PROCEDURES) + len(MREALM_PROCEDURES))

    def onLeave(self, details):
        self._stop()
        super().onLeave(details)

    def onDisconnect(self):
        self._stop()

    def _on_meter_usage(self, records) -> None:
        for rec in records:
            publish(self, "crossbarfabriccenter.domain.on_meter_usage", str(rec.mrealm_id), rec.timestamp_from,
                    rec.timestamp, usage_api(rec))

    def _stop(self):
        if self.ticker is not None:
            self.ticker.stop()
        if self.metering is not None:
            self.metering.stop_soon()
            try:
                m = rt.current()
                if getattr(m, "metering", None) is self.metering:
                    m.metering = None
            except ApplicationError:
                pass
            self.metering = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        try:
            m = rt.current()
            if getattr(m, "domain", None) is getattr(self, "domain", None):
                m.domain = None
        except ApplicationError:
            pass
