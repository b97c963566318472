"""The master's state inside its router worker: one ``MasterRuntime`` per process.

The master's parts run in the router worker ``cfrouter1`` (``MasterRouterWorker``): the
authenticator (a ``function`` provider of the router), the domain controller (a router component
on the global realm) and one mrealm controller per management realm (a router component on that
realm). They share this object: the global database (``store``), the router (its realms and
sessions), the superuser's key, and the management realms that run (``start_mrealm`` /
``stop_mrealm``: the realm with its role objects and its controller component, together).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from pathlib import Path

from ..client.session import ApplicationError
from ..common.keyfile import PUBLIC_TAG, KeyFileError, public_key_hex, read_tags
from ..protocol.auth import is_pubkey_hex
from .roles import mrealm_role_objects
from .schema import MREALM_DB_MAXSIZE, mrealm_db_path
from .store import TooManyActivations

log = logging.getLogger("wampfabric.master")

GLOBAL_REALM = "com.crossbario.fabric"
SUPERUSER = "superuser"
SUPERUSER_ENV = "CROSSBAR_FABRIC_SUPERUSER"

# an mrealm name: lower case latin letters, digits and '_', beginning with a letter (as Crossbar.io
# documents it); it is a realm name and part of a procedure of nobody, so nothing else is needed
MREALM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
RESERVED_REALMS = {"crossbar", GLOBAL_REALM}
# a node's name in its mrealm (its authid: one URI component of crossbarfabriccenter.node.<name>.)
NODE_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,63}")
EMAIL = re.compile(r"[A-Za-z0-9_%+\-][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-][A-Za-z0-9.\-]*")

ACTIVATION_TTL = 15 * 60  # seconds an activation code is valid
ACTIVATION_MAX_TRIES = 5  # wrong codes before a pending activation is dropped
MAX_PENDING_ACTIVATIONS = 1000  # pending at once on the master (each is a database record and a mail)
MAX_PENDING_PER_EMAIL = 3  # pending at once for one email (one per key; more is mail-bombing)
CODE_ALPHABET = "345679ACEFGHJKLMNPQRSTUVWXY"  # no 0/O, 1/I, 2/Z, 8/B lookalikes

_current: "MasterRuntime | None" = None


def current() -> "MasterRuntime":
    if _current is None:
        raise ApplicationError("wamp.error.runtime_error", "the master is not running in this process")
    return _current


def valid_email(email) -> bool:
    return isinstance(email, str) and len(email) <= 254 and EMAIL.fullmatch(email) is not None


def activation_code() -> str:
    """A new activation code: XXXX-XXXX-XXXX (27^12 possibilities)."""
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(3))


def read_public_key(path, what: str, noun: str = "the key file") -> str:
    """The ``public-key-ed25519`` of a key file (Crossbar.io's format); ValueError with a clear
    text (starting with ``what``) when it has none."""
    try:
        tags = read_tags(path)
    except KeyFileError as e:
        raise ValueError(f"{what}: cannot read {noun}: {e.reason}") from None
    if PUBLIC_TAG not in tags:
        raise ValueError(f"{what}: no '{PUBLIC_TAG}: <hex>' line in the key file")
    try:
        return public_key_hex(path, tags, derive=False)
    except KeyFileError:
        raise ValueError(f"{what}: {PUBLIC_TAG} is not 64 hex digits") from None


def read_superuser_key(path) -> str:
    """The superuser's public key from its key file (e.g. the shell's ``~/.crossbar/default.pub``)."""
    return read_public_key(path, f"{SUPERUSER_ENV}={path}", "the superuser's key file")


class PendingActivation:
    """The right activation code for an (email, key) pair, not used yet: the authenticator hands
    ``confirm`` to the router (the principal's ``on_success``), which calls it only after it has
    verified the cryptosign signature. ``user`` is the registered user, or None for a new one."""

    __slots__ = ("master", "token", "user")

    def __init__(self, master, token, user):
        self.master, self.token, self.user = master, token, user

    def confirm(self) -> None:
        self.master.confirm_activation(self.token)


def _not_allowed(message: str) -> ApplicationError:
    return ApplicationError("wamp.error.not_authorized", message)


class MasterRuntime:
    """See the module docstring. ``worker`` is the ``MasterRouterWorker``."""

    def __init__(self, worker, store, superuser_pubkey: str | None, mrealm_maxsize: int = MREALM_DB_MAXSIZE):
        self.worker = worker
        self.router = worker.router
        self.cbdir = Path(worker.cbdir)
        self.store = store
        self.superuser_pubkey = superuser_pubkey
        # the master's own key (key.pub of the node directory): its backend components (the change
        # engine) authenticate with it, over the Unix socket only (authenticator.py)
        pub = self.cbdir / "key.pub"
        self.master_pubkey = read_public_key(pub, str(pub)) if pub.exists() else None
        # each mrealm database's maxsize (controller.fabric-center.database.mrealm_maxsize): the
        # heartbeat part of every mrealm controller opens its database with it
        self.mrealm_maxsize = mrealm_maxsize
        from .heartbeats import HeartbeatStore

        HeartbeatStore.maxsize = mrealm_maxsize
        self.started = time.time()
        self.mrealms: dict[str, object] = {}  # mrealm name -> its MrealmController, once joined
        self.domain = None  # the DomainController, once joined
        self.metering = None  # its usage metering (master/metering.py), once joined
        self._running: dict[str, str] = {}  # mrealm name -> mrealm oid (str) of the realms started

    # -- process-wide registration ---------------------------------------------------------------

    def install(self) -> None:
        global _current
        _current = self

    def uninstall(self) -> None:
        global _current
        if _current is self:
            _current = None

    # -- management realms -----------------------------------------------------------------------

    @staticmethod
    def realm_id(mrealm) -> str:
        return f"mrealm-{mrealm.oid}"

    async def start_mrealm(self, mrealm) -> None:
        """Start the realm of an mrealm with its roles and its controller (a router component)."""
        name = mrealm.name
        if name in self._running:
            return
        rid = self.realm_id(mrealm)
        self.worker.start_router_realm(rid, {"name": name, "roles": []})
        realm = self.router.realms[name]
        for role_name, role in mrealm_role_objects().items():
            realm.roles[role_name] = role
        self._running[name] = str(mrealm.oid)
        try:
            await self.worker.start_router_component(rid, {
                "type": "class", "classname": "wampfabric.master.mrealm.MrealmController", "realm": name,
                "extra": {"mrealm_oid": str(mrealm.oid)}})
            await self.worker.start_router_component(self.config_api_id(mrealm), {
                "type": "class", "classname": "wampfabric.master.nodeconfig.NodeConfigApi", "realm": name,
                "extra": {"mrealm_oid": str(mrealm.oid)}})
        except Exception:
            self._running.pop(name, None)
            for cid in (self.config_api_id(mrealm), rid):
                try:
                    await self.worker.stop_router_component(cid)
                except ApplicationError:
                    pass
            self.worker.stop_router_realm(rid)
            raise
        log.info("Management realm '%s' started (oid %s)", name, mrealm.oid)

    async def stop_mrealm(self, mrealm) -> None:
        name = mrealm.name
        if self._running.pop(name, None) is None:
            return
        rid = self.realm_id(mrealm)
        for cid in (self.config_api_id(mrealm), rid):
            try:
                await self.worker.stop_router_component(cid)
            except ApplicationError:
                pass  # the component had already gone
        self.worker.stop_router_realm(rid)
        log.info("Management realm '%s' stopped (oid %s)", name, mrealm.oid)

    @staticmethod
    def config_api_id(mrealm) -> str:
        return f"nodeconfig-{mrealm.oid}"

    def retire_mrealm_db(self, mrealm) -> Path | None:
        """After an mrealm is deleted (and stopped: its database is closed), its database directory
        ``.db-mrealm-<oid>`` is kept, renamed ``.db-mrealm-<oid>.deleted-<UTC time>``: the heartbeats
        of its last intervals are what metering bills them by (docs/fabric.md). Returns the new path."""
        path = mrealm_db_path(self.cbdir, mrealm.oid)
        if not path.is_dir():
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = path.with_name(f"{path.name}.deleted-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.deleted-{stamp}-{n}")
        try:
            path.rename(target)
        except OSError as e:
            log.error("Management realm '%s' deleted: its database %s could not be renamed: %s", mrealm.name, path,
                      e.strerror)
            return None
        log.info("Management realm '%s' deleted: its database kept as %s", mrealm.name, target)
        return target

    async def initialize_mrealms(self) -> None:
        """At boot: start every mrealm of the database (``_initialize_mrealms``)."""
        mrealms = self.store.mrealms()
        for mrealm in mrealms:
            await self.start_mrealm(mrealm)
        log.info("Master: %d management realm(s) started from the database", len(mrealms))

    def running(self, name: str) -> bool:
        return name in self._running

    # -- node sessions ---------------------------------------------------------------------------

    def node_session(self, mrealm_name: str, authid: str):
        """The joined session of node ``authid`` on its mrealm, if any."""
        realm = self.router.realms.get(mrealm_name)
        if realm is None:
            return None
        for s in realm.sessions.values():
            if s.authrole == "node" and s.authid == authid:
                return s
        return None

    def kick_node(self, mrealm_name: str, authid: str, reason: str) -> bool:
        s = self.node_session(mrealm_name, authid)
        if s is None:
            return False
        log.info("Node '%s' on mrealm '%s': session %s closed (%s)", authid, mrealm_name, s.session_id, reason)
        s.goodbye("wamp.close.killed", reason)
        return True

    # -- users -----------------------------------------------------------------------------------

    def ensure_superuser(self) -> None:
        """The user ``superuser`` exists (the caller of create_mrealm/pair_node must be a user)."""
        if self.superuser_pubkey is None:
            return
        user = self.store.ensure_user(SUPERUSER)
        log.info("Superuser key %s... loaded from %s (user oid %s)", self.superuser_pubkey[:16], SUPERUSER_ENV,
                 user.oid)

    def is_superuser(self, authid: str | None) -> bool:
        return self.superuser_pubkey is not None and authid == SUPERUSER

    def caller_user(self, details):
        """The user record of a caller on the global realm (role ``user``), else not_authorized."""
        authid = getattr(details, "caller_authid", None)
        role = getattr(details, "caller_authrole", None)
        if role != "user" or not authid:
            raise _not_allowed("only users may call the domain API")
        user = self.store.user_by_email(authid)
        if user is None:
            raise _not_allowed(f"no user '{authid}'")
        return user

    def user_roles(self, user, mrealm) -> list[int]:
        if self.is_superuser(user.email):
            return [1, 2, 3, 4]
        return sorted(self.store.roles(user.oid, mrealm.oid))

    # -- activation (protocol §3) ------------------------------------------------------------------

    def activation_state(self, email: str, pubkey: str, code: str | None, request_new: bool):
        """The user, once the (email, key) pair is active; a ``PendingActivation`` when ``code`` is
        the right one (nothing is consumed yet: ``confirm()`` activates, once the router has checked
        the signature); else ApplicationError saying where the activation stands (a new code is made
        and delivered when there is none)."""
        store = self.store
        token = store.activation(email, pubkey)
        if token is not None and token.status == store.PENDING and request_new:
            store.delete_activation(token)
            token = None
        user = store.user_by_email(email)
        if token is None:
            if code:
                raise ApplicationError("fabric.auth-failed.no-pending-activation",
                                       "There is no pending activation for this user and key: connect without "
                                       "an activation code to get one.")
            new = activation_code()
            try:
                store.add_activation(email, pubkey, new, registration=user is None, ttl=ACTIVATION_TTL,
                                     max_pending=MAX_PENDING_ACTIVATIONS, max_pending_per_email=MAX_PENDING_PER_EMAIL)
            except TooManyActivations as e:
                log.warning("Activation for '%s' refused: %s", email, e)
                raise ApplicationError("fabric.auth-failed.too-many-pending-activations",
                                       "Too many activations are pending: use a code already sent, or try again "
                                       "in 15 minutes.") from None
            self.deliver_code(email, new)
            uri = ("fabric.auth-failed.new-user-auth-code-sent" if user is None
                   else "fabric.auth-failed.registered-user-auth-code-sent")
            raise ApplicationError(uri, f"We have sent an authentication code to {email}.")
        if token.status == store.ACTIVE:
            if code:
                raise ApplicationError("fabric.auth-failed.no-pending-activation",
                                       "This key is already active for this user: connect without an "
                                       "activation code.")
            return user if user is not None else store.ensure_user(email)
        # pending
        age = time.time() - token.created / 1e9
        if not code:
            raise ApplicationError("fabric.auth-failed.pending-activation",
                                   f"There is a pending activation (created {int(age)} s ago): connect with its "
                                   f"activation code, or request a new code.")
        if age > ACTIVATION_TTL:
            store.delete_activation(token)
            raise ApplicationError("fabric.auth-failed.invalid-activation-code",
                                   "This activation code is invalid: it has expired (15 minutes); connect "
                                   "without a code to get a new one.")
        if not secrets.compare_digest(code.strip().upper().encode(), token.code.encode()):
            tries = store.failed_activation(token)
            if tries >= ACTIVATION_MAX_TRIES:
                store.delete_activation(token)
                raise ApplicationError("fabric.auth-failed.invalid-activation-code",
                                       "This activation code is invalid: too many wrong codes, the activation "
                                       "is cancelled; connect without a code to get a new one.")
            raise ApplicationError("fabric.auth-failed.invalid-activation-code",
                                   "This activation code is invalid: code does not match pending one")
        return PendingActivation(self, token, user)

    def confirm_activation(self, token) -> object:
        """The right code was given and the router accepted the signature: the activation becomes
        active and the user exists (one transaction)."""
        user = self.store.activate(token)
        log.info("User '%s' activated key %s...", token.email, token.pubkey[:16])
        return user

    def deliver_code(self, email: str, code: str) -> None:
        """No mail service is configured: the code goes to the master log and to
        ``activation-codes/<email>.code`` (mode 0600) in the node directory."""
        folder = self.cbdir / "activation-codes"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{email}.code"
        tmp = folder / f".{email}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(code + "\n")
        os.replace(tmp, path)
        log.warning("Activation code for %s: %s (no mail service configured; also written to %s)", email, code, path)

    # -- validation of API arguments -------------------------------------------------------------------

    @staticmethod
    def check_mrealm_name(name) -> str:
        if not isinstance(name, str) or not MREALM_NAME.fullmatch(name) or name in RESERVED_REALMS:
            raise ApplicationError("wamp.error.invalid_argument",
                                   f"invalid mrealm name {name!r}: lower case letters, digits and '_', "
                                   f"beginning with a letter, at most 64 characters")
        return name

    @staticmethod
    def check_node_name(name) -> str:
        if not isinstance(name, str) or not NODE_NAME.fullmatch(name):
            raise ApplicationError("wamp.error.invalid_argument",
                                   f"invalid node name {name!r}: lower case letters, digits, '_' and '-', "
                                   f"beginning with a letter, at most 64 characters")
        return name

    @staticmethod
    def check_pubkey(pubkey) -> str:
        if not isinstance(pubkey, str) or not is_pubkey_hex(pubkey):
            raise ApplicationError("wamp.error.invalid_argument",
                                   "invalid public key: expected 64 hex digits (an Ed25519 public key)")
        return pubkey.lower()
