"""Session authentication (spec: advanced/authentication*.md), in Crossbar.io's
config format: each transport's ``auth`` maps an authmethod to its config::

    "auth": {
        "ticket":     {"type": "static",   "principals": {"joe": {"ticket": "...", "role": "user"}}},
        "wampcra":    {"type": "static",   "users": {"joe": {"secret": "...", "role": "user"}}},
        "cryptosign": {"type": "dynamic",  "authenticator": "com.example.authenticate"},
        "anonymous":  {"type": "static",   "role": "public"},
        "scram":      {"type": "function", "create": "mypackage.auth.create_authenticator", "config": {}}
    }

Providers: ``static`` (principals in the config), ``dynamic`` (the router
calls the ``authenticator`` procedure, on ``authenticator-realm`` or the
realm joined, with ``(realm, authid, details)``; it returns the principal, a
dict with at least ``role``, or raises ``wamp.error.not_authorized``) and
``function`` (as in Crossbar.io: ``create`` names a factory, called once with
the provider's ``config``, that returns the authenticator callable, which is
then called like the dynamic one; factory and authenticator may be coroutine
functions). A ``function`` authenticator's principal may hold ``on_success``, a
callable the router calls once the credentials are verified, just before
WELCOME (an exception denies the session instead).

Every pending authentication expires after ``AUTH_TIMEOUT`` seconds; every
challenge is fresh, single-use and random; secrets are compared in constant
time; failures say why to the log, but only "authentication failed" to the
peer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import importlib
import inspect
import logging
import math
import secrets
import socket
import struct
import time

from ..protocol import auth as crypto
from ..protocol import errors as E
from ..protocol.uri import quote_uri
from .session import anonymous_authid, transport_details

log = logging.getLogger("wampfabric.router.auth")

AUTH_TIMEOUT = 20.0
NO_AUTH_METHOD = "wamp.error.no_auth_method"
# keys the mock SCRAM salts of unknown authids (per process: stable while the router runs)
_MOCK_SALT_KEY = secrets.token_bytes(32)
# authenticator errors that are failures, not decisions: never shown to the peer
INTERNAL_ERRORS = {"wamp.error.runtime_error", E.NO_SUCH_PROCEDURE, E.CANCELED, E.INVALID_ARGUMENT,
                   E.NO_SUCH_REGISTRATION, "wamp.error.no_available_callee", E.TIMEOUT}
# method names as clients send them -> config key
METHOD_ALIASES = {"wamp-scram": "scram"}


class Deny(Exception):
    """Authentication refused: ``reason`` is the ABORT URI, ``message`` the peer-visible text.
    ``counts``: a failure of the credentials (the throttle counts it), not of the router
    or its authenticator (timeouts, an authenticator that is missing or broke)."""

    def __init__(self, reason: str = E.AUTHENTICATION_FAILED, message: str = "authentication failed",
                 log_message: str | None = None, counts: bool = True):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.log_message = log_message or message
        self.counts = counts


# -- throttling failed authentications ------------------------------------------------------
#
# Router worker option ``auth_throttle`` (all keys optional; the defaults below apply without it):
#
#   address_failures / address_window: failures one peer address (IPv4 address, IPv6 /64, all
#       Unix-socket peers together) may have per window before it is throttled (0 = off);
#   authid_failures / authid_window: the same per authid (over all addresses);
#   delay / max_delay: each failure beyond a budget is answered (ABORT) that much later: ``delay``
#       for the first, doubling with each further one up to ``max_delay``;
#   max_pending: a throttled address may have this many authentications in progress or answered
#       late at a time; further HELLOs (or AUTHENTICATEs) from it are refused at once, unchecked;
#   max_tracked: addresses and authids remembered (each table; least recently failed first out).
#
# Successful logins are never delayed, and failures for an authid only delay failures: an
# attacker cannot lock a user out from another address.  Since a success is answered at once,
# a delayed failure alone would not slow an attacker who sends many guesses in parallel and
# reads silence as "wrong": hence ``max_pending``, and a late answer keeps its slot for the
# whole delay even when the peer closes the connection.

from ..config.defaults import AUTH_THROTTLE as THROTTLE_DEFAULTS  # noqa: E402
THROTTLED_MESSAGE = "too many failed authentications from this address: try again later"


def address_key(peer) -> str:
    """The throttle's address of a peer string (``tcp4:1.2.3.4:5678``, ``tcp6:::1:5678``, ``unix:...``):
    an IPv4 address, an IPv6 /64 network (one subscriber usually has a whole /64), else the kind."""
    kind, _, rest = str(peer).partition(":")
    if kind == "tcp4":
        return rest.rpartition(":")[0]
    if kind == "tcp6":
        host = rest.rpartition(":")[0].strip("[]").split("%")[0]
        try:
            packed = socket.inet_pton(socket.AF_INET6, host)
        except (OSError, ValueError):
            return host
        if packed[:12] == _V4_MAPPED:
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        return "%x:%x:%x:%x::/64" % struct.unpack(">4H", packed[:8])
    return kind


_V4_MAPPED = bytes(10) + b"\xff\xff"


class _Bucket:
    """Failures of one address or authid: a leaky bucket (``level`` leaks at the budget's rate)."""

    __slots__ = ("level", "stamp", "active", "late")

    def __init__(self, now: float):
        self.level = 0.0
        self.stamp = now
        self.active: set = set()  # authentications admitted while throttled, in progress
        self.late: list[float] = []  # until when each late failure answer occupies a slot


class AuthThrottle:
    """Per peer address and per authid budgets of failed authentications (see above)."""

    def __init__(self, config: dict | None = None, clock=time.monotonic):
        cfg = {**THROTTLE_DEFAULTS, **(config or {})}
        self.address_failures = cfg["address_failures"]
        self.address_rate = self.address_failures / cfg["address_window"] if cfg["address_window"] > 0 else 0.0
        self.authid_failures = cfg["authid_failures"]
        self.authid_rate = self.authid_failures / cfg["authid_window"] if cfg["authid_window"] > 0 else 0.0
        self.delay = float(cfg["delay"])
        self.max_delay = float(cfg["max_delay"])
        self.max_pending = cfg["max_pending"]
        self.max_tracked = cfg["max_tracked"]
        self.clock = clock
        self.addresses: dict[str, _Bucket] = {}
        self.authids: dict[str, _Bucket] = {}

    @staticmethod
    def _level(b: _Bucket, now: float, rate: float) -> float:
        return max(0.0, b.level - (now - b.stamp) * rate)

    def throttled(self, address: str) -> _Bucket | None:
        """The address's bucket if the address is throttled now (its budget is used up)."""
        b = self.addresses.get(address) if self.addresses else None
        if b is None or not self.address_failures:
            return None
        now = self.clock()
        if self._level(b, now, self.address_rate) < self.address_failures:
            return None
        return b

    def admit(self, b: _Bucket, pending) -> bool:
        """Whether a throttled address may start (or go on with) one more authentication."""
        now = self.clock()
        if b.late:
            b.late = [t for t in b.late if t > now]
        if len(b.active) + len(b.late) >= self.max_pending:
            return False
        b.active.add(pending)
        return True

    def _count(self, table: dict, key: str, now: float, rate: float, budget: int) -> float:
        """One failure more for ``key``; returns how late its answer is (0: at once)."""
        b = table.pop(key, None)
        if b is None:
            if len(table) >= self.max_tracked:
                del table[next(iter(table))]  # least recently failed first out
            b = _Bucket(now)
        else:
            b.level = self._level(b, now, rate)
            b.stamp = now
        b.level += 1.0
        table[key] = b
        excess = b.level - budget
        if excess <= 0:
            return 0.0
        if excess <= 1.0:
            log.warning("authentication: %s failures from %s within the budget's window: throttled",
                        budget, key if table is self.addresses else f"authid {key!r:.100}")
        return min(self.max_delay, self.delay * 2 ** min(60, math.ceil(excess) - 1))

    def failure(self, address: str, authid) -> float:
        """Count a failed authentication; returns the delay of its ABORT in seconds."""
        now = self.clock()
        delay = 0.0
        if self.address_failures:
            delay = self._count(self.addresses, address, now, self.address_rate, self.address_failures)
            if delay > 0:
                b = self.addresses[address]
                b.late.append(now + delay)
                if len(b.late) > self.max_pending:
                    b.late.sort()
                    del b.late[:-self.max_pending]
        if self.authid_failures and isinstance(authid, str):
            key = authid if len(authid) <= 200 else "sha256:" + hashlib.sha256(authid.encode("utf8", "replace")).hexdigest()
            delay = max(delay, self._count(self.authids, key, now, self.authid_rate, self.authid_failures))
        return delay


def throttle_of(router) -> AuthThrottle:
    """The router's throttle (the router worker sets it from its ``auth_throttle`` option;
    a router made otherwise gets the defaults)."""
    t = getattr(router, "auth_throttle", None)
    if t is None:
        t = router.auth_throttle = AuthThrottle()
    return t


def authenticate(router, session, realm_name, details: dict) -> None:
    """Choose an authmethod for a HELLO (client preference order) and start it."""
    auth = getattr(session.transport, "auth_config", None)
    if auth is None:
        auth = {"anonymous": {"type": "static", "role": "anonymous"}}
    requested = details.get("authmethods")
    if requested is None:
        requested = ["anonymous"]
    elif not isinstance(requested, list) or not all(isinstance(m, str) for m in requested):
        session.protocol_violation("HELLO.Details.authmethods must be a list of strings")
        return
    for method in requested:
        key = METHOD_ALIASES.get(method, method)
        cfg = auth.get(key)
        cls = PENDING.get(key)
        if cfg is None or cls is None:
            continue
        if key == "cookie" and cookie_identity(session.transport) is None:
            continue  # no authenticated cookie on this connection: try the next method
        pending = cls(router, session, realm_name, details, cfg, method)
        session.begin_authentication(pending)
        if pending.admitted():
            pending.start()
        return
    session.abort(NO_AUTH_METHOD, f"cannot authenticate using any of the offered authmethods {requested}")


def cookie_identity(transport) -> dict | None:
    store = getattr(transport, "cookie_store", None)
    return store.identity(getattr(transport, "cbtid", None)) if store is not None else None


def load_function(dotted: str):
    """The callable named ``package.module.function``."""
    module, _, name = dotted.rpartition(".")
    if not module:
        raise ValueError(f"'{dotted}' is not a dotted name of a callable")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise ValueError(f"'{dotted}' is not callable")
    return fn


_FUNCTIONS: dict[str, asyncio.Future] = {}


def function_authenticator(cfg: dict) -> asyncio.Future:
    """The authenticator of a ``function`` provider, as Crossbar.io defines it: ``create``
    names a factory called once as ``create(config, controller)`` (``config`` is the
    provider's ``config`` attribute; there is no controller object here, so None); it
    returns (or resolves to) the callable ``authenticator(realm, authid, details)``."""
    name = cfg.get("create")
    fut = _FUNCTIONS.get(name)
    if fut is None or (fut.done() and fut.exception() is not None):
        async def create():
            factory = load_function(name)
            authenticator = factory(cfg.get("config", {}), None)
            if inspect.isawaitable(authenticator):
                authenticator = await authenticator
            if not callable(authenticator):
                raise ValueError(f"'{name}' returned {type(authenticator).__name__}, not an authenticator callable")
            return authenticator

        fut = _FUNCTIONS[name] = asyncio.ensure_future(create())
    return asyncio.shield(fut)


class PendingAuth:
    """One authentication in progress for one session."""

    METHOD = ""
    welcome_method: str | None = None  # the authmethod WELCOME reports, if not METHOD (cookie logins)

    def __init__(self, router, session, realm_name, details: dict, cfg: dict, requested_method: str):
        self.router = router
        self.session = session
        self.realm_name = realm_name
        self.details = details
        self.cfg = cfg
        self.method = requested_method
        self.provider = cfg.get("type", "static")
        authid = details.get("authid")
        self.authid = authid if isinstance(authid, str) else None
        authextra = details.get("authextra")
        self.authextra = authextra if isinstance(authextra, dict) else {}
        self.principal: dict | None = None
        self._timer = None
        self._task: asyncio.Task | None = None  # a coroutine authenticator function at work
        self._done = False
        self._slot = None  # the throttled address's bucket that admitted us (see AuthThrottle)

    # -- throttling ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return address_key(self.session.transport.peer)

    def admitted(self) -> bool:
        """Whether this authentication may go on: no, when its address is throttled and already has
        ``max_pending`` authentications at work or answered late (then the session is refused)."""
        if self._slot is not None:
            return True
        throttle = throttle_of(self.router)
        if not throttle.addresses:
            return True  # no failures anywhere: nothing to look up
        bucket = throttle.throttled(self.address)
        if bucket is None:
            return True
        if throttle.admit(bucket, self):
            self._slot = bucket
            return True
        self._done = True
        self._cancel_timer()
        log.debug("authentication of %s refused unchecked: its address is throttled", self.session.transport.peer)
        self.session.abort(E.AUTHENTICATION_FAILED, THROTTLED_MESSAGE)
        return False

    def _release_slot(self) -> None:
        if self._slot is not None:
            self._slot.active.discard(self)
            self._slot = None

    # -- flow --------------------------------------------------------------------------

    def start(self) -> None:
        try:
            if self.provider == "static":
                self.on_principal(self.static_principal())
            elif self.provider in ("dynamic", "function"):
                self.lookup_principal()
            else:
                raise Deny(log_message=f"unsupported provider type {self.provider!r}", counts=False)
        except Deny as d:
            self.deny(d)

    def _arm_timeout(self) -> None:
        """From now on we wait for the peer or an authenticator: bound the wait.
        (Synchronous static authentications need no timer: idle joins stay cheap.)"""
        if self._timer is None and not self._done:
            self._timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT, self._expire)

    def lookup_principal(self) -> None:
        """Ask the dynamic authenticator or function for the principal."""
        self._arm_timeout()
        info = self.authenticator_details()
        realm = self.realm_name
        if self.provider == "function":
            self._task = task = asyncio.ensure_future(self._run_function(realm, info))
            task.add_done_callback(self._function_done)
            return
        procedure = self.cfg.get("authenticator")
        auth_realm = self.router.realms.get(self.cfg.get("authenticator-realm") or realm or "")
        if not procedure or auth_realm is None or auth_realm.meta is None:
            raise Deny(log_message=f"dynamic authenticator {procedure!r} on realm "
                                   f"{self.cfg.get('authenticator-realm') or realm!r} is not available",
                       counts=False)
        auth_realm.meta.call(procedure, [realm, self.authid, info], self._authenticator_answered,
                             self._authenticator_failed)

    async def _run_function(self, realm, info):
        authenticator = await function_authenticator(self.cfg)
        result = authenticator(realm, self.authid, info)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _function_done(self, task: asyncio.Task) -> None:
        self._task = None
        if task.cancelled():
            self._authenticator_failed(RuntimeError("authenticator cancelled"))
        elif task.exception() is not None:
            self._authenticator_failed(task.exception())
        else:
            self._authenticator_answered(task.result())

    def _authenticator_answered(self, result) -> None:
        if self._done:
            return
        if isinstance(result, str):
            result = {"role": result}
        if not isinstance(result, dict) or not isinstance(result.get("role"), str):
            self.deny(Deny(log_message=f"authenticator returned an invalid principal {result!r:.200}", counts=False))
            return
        try:
            self.on_principal(result)
        except Deny as d:
            self.deny(d)

    def _authenticator_failed(self, error) -> None:
        if self._done:
            return
        uri = getattr(error, "error", None)
        args = getattr(error, "args_", None) or []
        message = args[0] if args and isinstance(args[0], str) else ""
        if isinstance(uri, str) and uri not in INTERNAL_ERRORS and "." in uri:
            # a deliberate refusal by the authenticator: its error URI and message go to the peer
            self.deny(Deny(uri, message or "authentication denied", f"authenticator denied: {uri} {message}"))
        else:
            # the authenticator broke: the peer learns nothing of it (the text may hold its credentials)
            self.deny(Deny(log_message=f"authenticator failed: {uri or error!r:.100} {message:.200}", counts=False))

    def authenticator_details(self) -> dict:
        """What dynamic authenticators get as ``details`` (Crossbar.io's shape)."""
        t = self.session.transport
        return {
            "authmethod": self.METHOD,
            "authid": self.authid,
            "authrole": self.details.get("authrole"),
            "authextra": self.authextra,
            "session": None,
            "transport": transport_details(t),
        }

    # -- outcomes ---------------------------------------------------------------------

    session_id: int | None = None  # set when a challenge announced the session ID (WAMP-CRA)

    def accept(self, principal: dict, authextra: dict | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._cancel_timer()
        self._release_slot()
        realm_name = principal.get("realm") or self.realm_name
        realm = self.router.realms.get(realm_name) if realm_name else None
        if realm is None:
            self.session.abort(E.NO_SUCH_REALM, f"no realm {quote_uri(realm_name)} exists on this router")
            return
        role = principal["role"]
        if role not in realm.roles:
            self.session.abort(E.NO_SUCH_ROLE, f"no role '{role}' on realm '{realm_name}'")
            return
        confirm = principal.get("on_success") if self.provider == "function" else None
        if callable(confirm):
            # an in-process authenticator's hook: runs once the credentials are verified, before
            # WELCOME (e.g. the master consumes an activation code only now); failing, it denies
            try:
                confirm()
            except Exception as e:
                log.error("authentication of session %s: the authenticator's on_success failed: %s: %s",
                          self.session.session_id, type(e).__name__, e)
                self.session.abort(E.AUTHENTICATION_FAILED, "authentication failed")
                return
        authid = principal.get("authid") or self.authid
        extra = principal.get("extra") or None
        if authextra:
            extra = {**(extra or {}), **authextra}
        self.session.welcome(realm, authid, role, self.welcome_method or self.METHOD, self.provider, extra,
                             session_id=self.session_id)
        t = self.session.transport
        store = getattr(t, "cookie_store", None)
        if store is not None and getattr(t, "cbtid", None) and self.METHOD != "cookie":
            # the cookie now identifies this principal on later connections (an anonymous one
            # too, as in Crossbar.io: it grants nothing the transport's anonymous config does not)
            store.set_identity(t.cbtid, {"authid": authid, "authrole": role, "authrealm": realm_name,
                                         "authmethod": self.METHOD, "authextra": principal.get("extra") or {}})

    def deny(self, d: Deny) -> None:
        if self._done:
            return
        self._done = True
        self._cancel_timer()
        self._release_slot()
        delay = throttle_of(self.router).failure(self.address, self.authid) if d.counts else 0.0
        log.info("authentication (%s) of %s as %.100r failed: %.300s%s", self.METHOD, self.session.transport.peer,
                 self.authid, d.log_message, f" (answered {delay:g} s late)" if delay else "")
        if delay:
            # answered late; the session stays as it is meanwhile (a further message from the peer is
            # a protocol violation), and cancel() drops the answer when the connection goes first
            self._timer = asyncio.get_running_loop().call_later(delay, self._late_abort, d)
        else:
            self.session.abort(d.reason, d.message)

    def _late_abort(self, d: Deny) -> None:
        self._timer = None
        self.session.abort(d.reason, d.message)

    def challenge(self, extra: dict) -> None:
        self._arm_timeout()
        self.session.challenge(self, self.challenge_method(), extra)

    def challenge_method(self) -> str:
        return self.METHOD

    def authenticate(self, session, signature, extra) -> None:
        """The AUTHENTICATE for our CHALLENGE (called once: the session drops us first)."""
        if self._done or not self.admitted():
            return
        try:
            self.verify(signature, extra if isinstance(extra, dict) else {})
        except Deny as d:
            self.deny(d)

    def cancel(self) -> None:
        """The session went away: whatever is still pending has no effect."""
        self._done = True
        self._cancel_timer()
        self._cancel_task()
        self._release_slot()

    def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()  # a hung authenticator function does not outlive its authentication

    def _expire(self) -> None:
        self._timer = None
        if not self._done:
            self.deny(Deny(E.AUTHENTICATION_FAILED, "authentication timed out", "timed out", counts=False))
            self._cancel_task()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- per method -----------------------------------------------------------------

    def static_principal(self) -> dict:
        raise NotImplementedError

    def on_principal(self, principal: dict) -> None:
        raise NotImplementedError

    def verify(self, signature, extra: dict) -> None:
        raise Deny(E.PROTOCOL_VIOLATION, "unexpected AUTHENTICATE", counts=False)

    def _static_lookup(self, table_key: str = "principals") -> dict:
        if self.authid is None:
            raise Deny(log_message="no authid in HELLO")
        table = self.cfg.get(table_key) or {}
        principal = table.get(self.authid)
        if not isinstance(principal, dict):
            raise Deny(log_message=f"unknown authid {self.authid!r}")
        return principal


class PendingAnonymous(PendingAuth):
    METHOD = "anonymous"

    def static_principal(self) -> dict:
        return {"role": self.cfg.get("role", "anonymous"), "realm": self.cfg.get("realm"),
                "authid": self.cfg.get("authid") or anonymous_authid()}

    def lookup_principal(self) -> None:
        if self.authid is None:
            self.authid = anonymous_authid()
        super().lookup_principal()

    def on_principal(self, principal: dict) -> None:
        self.accept(principal)


class PendingTicket(PendingAuth):
    """advanced/authentication_ticket: the client sends a ticket (password) as AUTHENTICATE.signature."""

    METHOD = "ticket"

    def start(self) -> None:
        # the ticket arrives with AUTHENTICATE; principals are looked up then
        self.challenge({})

    def verify(self, signature, extra: dict) -> None:
        if not isinstance(signature, str):
            raise Deny(log_message="ticket is not a string")
        self.ticket = signature
        if self.provider == "static":
            principal = self._static_lookup()
            expected = principal.get("ticket")
            if not isinstance(expected, str) or not crypto.constant_time_equal(expected, signature):
                raise Deny(log_message=f"wrong ticket for {self.authid!r}")
            self.accept(principal)
        else:
            self.lookup_principal()

    def authenticator_details(self) -> dict:
        d = super().authenticator_details()
        d["ticket"] = self.ticket
        return d

    def on_principal(self, principal: dict) -> None:
        self.accept(principal)


# salted WAMP-CRA: (password, salt, iterations, keylen) -> derived key, so that PBKDF2 runs once per
# principal, not per login (a principal with many iterations would otherwise cost each HELLO that
# much CPU on the router's loop); bounded, oldest first out
_CRA_KEYS: dict[tuple, str] = {}
CRA_KEY_CACHE_SIZE = 1024
MAX_CRA_ITERATIONS = 10_000_000
MAX_CRA_KEYLEN = 1024


def salted_key(secret: str, salt, iterations, keylen, authid=None) -> str:
    """The WAMP-CRA HMAC key of a salted principal (cached); :class:`Deny` for unusable parameters."""
    if not (isinstance(salt, str) and isinstance(iterations, int) and not isinstance(iterations, bool)
            and isinstance(keylen, int) and not isinstance(keylen, bool)
            and 0 < iterations <= MAX_CRA_ITERATIONS and 0 < keylen <= MAX_CRA_KEYLEN):
        raise Deny(log_message=f"principal {authid!r} has invalid WAMP-CRA salt parameters (salt {salt!r:.50}, "
                               f"iterations {iterations!r:.20}, keylen {keylen!r:.20})", counts=False)
    k = (secret, salt, iterations, keylen)
    key = _CRA_KEYS.get(k)
    if key is None:
        key = crypto.wampcra_derive_key(secret, salt, iterations, keylen)
        if len(_CRA_KEYS) >= CRA_KEY_CACHE_SIZE:
            del _CRA_KEYS[next(iter(_CRA_KEYS))]
        _CRA_KEYS[k] = key
    return key


class PendingWampCra(PendingAuth):
    """advanced/authentication_cra: HMAC-SHA256 over a single-use JSON challenge."""

    METHOD = "wampcra"

    def static_principal(self) -> dict:
        return self._static_lookup("users")

    def on_principal(self, principal: dict) -> None:
        secret = principal.get("secret")
        if not isinstance(secret, str):
            raise Deny(log_message=f"principal {self.authid!r} has no secret", counts=False)
        self.principal = principal
        self.session_id = self.session_id_hint()
        self.challenge_str = crypto.wampcra_challenge(
            principal.get("authid") or self.authid, principal["role"], self.provider, self.session_id)
        extra = {"challenge": self.challenge_str}
        self.key = secret
        if "salt" in principal and "iterations" in principal and "keylen" in principal:
            # salted (as Crossbar.io 26.10 and every client do it): ``secret`` is the password; the
            # HMAC key is the base64 text of PBKDF2-HMAC-SHA256(password, salt, iterations, keylen),
            # which the client derives the same way from the CHALLENGE's salt/iterations/keylen.
            # (With only some of the three, Crossbar.io uses the secret unsalted: so do we.)
            salt, iterations, keylen = principal["salt"], principal["iterations"], principal["keylen"]
            self.key = salted_key(secret, salt, iterations, keylen, self.authid)
            extra.update(salt=salt, iterations=iterations, keylen=keylen)
        self.challenge(extra)

    def session_id_hint(self) -> int:
        from .ids import secure_id

        return secure_id()

    def verify(self, signature, extra: dict) -> None:
        if not crypto.wampcra_verify(self.key, self.challenge_str, signature):
            raise Deny(log_message=f"wrong WAMP-CRA signature for {self.authid!r}")
        self.accept(self.principal)


class PendingCryptosign(PendingAuth):
    """advanced/authentication_cryptosign: Ed25519 signature over a random challenge,
    XORed with the TLS channel id (``tls-unique``) when the client asks for channel binding."""

    METHOD = "cryptosign"

    def start(self) -> None:
        pubkey = self.authextra.get("pubkey")
        if not crypto.is_pubkey_hex(pubkey):
            self._done = True
            self.session.abort(E.AUTHENTICATION_FAILED, "cryptosign requires authextra.pubkey (64 hex digits)")
            return
        self.pubkey = pubkey.lower()
        binding = self.authextra.get("channel_binding")
        if binding not in (None, "tls-unique"):
            self._done = True
            self.session.abort(E.AUTHENTICATION_FAILED, f"unsupported channel binding {binding!r}")
            return
        self.channel_id = None
        if binding == "tls-unique":
            get = getattr(self.session.transport, "channel_id", None)
            self.channel_id = get("tls-unique") if get else None
            if self.channel_id is None:
                self._done = True
                self.session.abort(E.AUTHENTICATION_FAILED, "channel binding tls-unique needs a TLS transport")
                return
        super().start()

    def static_principal(self) -> dict:
        principals = self.cfg.get("principals") or {}
        if self.authid is not None:
            principal = principals.get(self.authid)
            if isinstance(principal, dict) and self.pubkey in [k.lower() for k in principal.get("authorized_keys", [])]:
                return dict(principal, authid=self.authid)
            raise Deny(log_message=f"unknown authid {self.authid!r} or key not authorized for it")
        for authid, principal in principals.items():
            if self.pubkey in [k.lower() for k in principal.get("authorized_keys", [])]:
                return dict(principal, authid=authid)
        raise Deny(log_message=f"unknown public key {self.pubkey}")

    def authenticator_details(self) -> dict:
        d = super().authenticator_details()
        d["authextra"] = dict(self.authextra, pubkey=self.pubkey)
        return d

    def on_principal(self, principal: dict) -> None:
        allowed = principal.get("pubkey")
        if allowed is not None and (not isinstance(allowed, str) or allowed.lower() != self.pubkey):
            raise Deny(log_message="authenticator returned a different public key")
        self.principal = principal
        self.challenge_bytes = crypto.cryptosign_challenge()
        self.challenge({"challenge": self.challenge_bytes.hex(),
                        "channel_binding": "tls-unique" if self.channel_id else None})

    def verify(self, signature, extra: dict) -> None:
        if not crypto.cryptosign_verify(self.pubkey, self.challenge_bytes, self.channel_id, signature):
            raise Deny(log_message=f"invalid cryptosign signature for key {self.pubkey}")
        self.accept(self.principal)


class PendingScram(PendingAuth):
    """advanced/authentication_scram, in both dialects (see protocol/auth.py)."""

    METHOD = "scram"

    def start(self) -> None:
        nonce = self.authextra.get("nonce")
        try:
            ok = isinstance(nonce, str) and len(base64.b64decode(nonce, validate=True)) >= 8
        except (binascii.Error, ValueError):
            ok = False
        if not ok or self.authid is None:
            self._done = True
            self.session.abort(E.AUTHENTICATION_FAILED, "scram requires authid and a base64 authextra.nonce")
            return
        self.client_nonce = nonce
        self.spec_dialect = self.method == "wamp-scram"
        self.METHOD = self.method  # WELCOME.authmethod: what the client asked for
        self.channel_binding = self.authextra.get("channel_binding")
        if self.channel_binding not in (None, ""):
            self._done = True
            self.session.abort(E.AUTHENTICATION_FAILED, "scram channel binding is not supported")
            return
        super().start()

    def challenge_method(self) -> str:
        return self.method

    def static_principal(self) -> dict:
        try:
            return self._static_lookup()
        except Deny:
            # authentication_scram: for an unknown authid the server MAY answer with a mock
            # CHALLENGE instead of ABORT, so that HELLO does not tell which users exist; it
            # carries the KDF parameters of the configured users and a salt that is stable
            # per authid, and no proof can ever match it
            return self._mock_principal()

    def _mock_principal(self) -> dict:
        principals = [p for p in (self.cfg.get("principals") or {}).values() if isinstance(p, dict)]
        model = principals[0] if principals else {"kdf": "argon2id-13", "iterations": 4096, "memory": 512}
        salt = hmac.new(_MOCK_SALT_KEY, (self.authid or "").encode("utf8"), hashlib.sha256).digest()[:16]
        return {
            "kdf": model.get("kdf", "argon2id-13"), "iterations": model.get("iterations", 4096),
            "memory": model.get("memory"), "salt": salt.hex(), "role": "-",
            "stored-key": secrets.token_bytes(32).hex(), "server-key": secrets.token_bytes(32).hex(),
            "mock": True,
        }

    def on_principal(self, principal: dict) -> None:
        try:
            self.salt = bytes.fromhex(principal["salt"])
            self.stored_key = bytes.fromhex(principal["stored-key"])
            self.server_key = bytes.fromhex(principal["server-key"])
            self.kdf = principal["kdf"]
            self.iterations = int(principal["iterations"])
            self.memory = principal.get("memory")
        except (KeyError, ValueError, TypeError) as e:
            raise Deny(log_message=f"principal {self.authid!r} has invalid SCRAM credentials: {e}", counts=False)
        self.principal = principal
        self.nonce = self.client_nonce + crypto.scram_nonce()
        self.salt_b64 = base64.b64encode(self.salt).decode("ascii")
        kdf = self.kdf
        if self.spec_dialect and kdf == "argon2id-13":
            kdf = "argon2id13"
        extra = {"nonce": self.nonce, "salt": self.salt_b64, "kdf": kdf, "iterations": self.iterations}
        if self.memory is not None:
            extra["memory"] = self.memory
        self.challenge(extra)

    def verify(self, signature, extra: dict) -> None:
        if self.spec_dialect:
            if extra.get("nonce") != self.nonce:
                raise Deny(log_message="scram nonce mismatch")
            # channel binding must be the one HELLO asked for (none: binding is not supported)
            if extra.get("channel_binding") or extra.get("cbind_data"):
                raise Deny(log_message="scram channel binding in AUTHENTICATE differs from HELLO")
        auth_message = crypto.scram_auth_message(
            self.authid, self.client_nonce, self.nonce, self.salt_b64, self.iterations,
            extra.get("channel_binding") if self.spec_dialect else self.channel_binding, extra.get("cbind_data"),
            self.spec_dialect)
        verifier = crypto.scram_verify(self.stored_key, self.server_key, auth_message, signature)
        if verifier is None or self.principal.get("mock"):
            raise Deny(log_message=f"unknown authid {self.authid!r}" if self.principal.get("mock")
                       else f"wrong SCRAM proof for {self.authid!r}")
        self.accept(self.principal, {"verifier": verifier, "scram_server_signature": verifier})


class PendingTls(PendingAuth):
    """TLS client certificate authentication: the principal is found by the
    certificate's fingerprint (config ``certificate-sha1`` or ``certificate-sha256``,
    colon-separated hex as ``openssl x509 -fingerprint`` prints it)."""

    METHOD = "tls"

    def start(self) -> None:
        get = getattr(self.session.transport, "peer_cert", None)
        self.cert = get() if get else None
        if self.cert is None:
            self._done = True
            self.session.abort(E.AUTHENTICATION_FAILED, "no verified TLS client certificate")
            return
        super().start()

    def static_principal(self) -> dict:
        def norm(fp):
            return fp.replace(":", "").upper() if isinstance(fp, str) else None

        sha1, sha256 = norm(self.cert["sha1"]), norm(self.cert["sha256"])
        for authid, principal in (self.cfg.get("principals") or {}).items():
            if self.authid is not None and authid != self.authid:
                continue
            if norm(principal.get("certificate-sha1")) == sha1 or norm(principal.get("certificate-sha256")) == sha256:
                return dict(principal, authid=authid)
        raise Deny(log_message=f"no principal for client certificate {self.cert['sha1']}")

    def authenticator_details(self) -> dict:
        d = super().authenticator_details()
        # Crossbar.io's TransportDetails call the certificate peer_cert (set by transport_details);
        # Crossbar.io also gives it as client_cert, its key before TransportDetails (2022)
        d["transport"]["peer_cert"] = d["transport"]["client_cert"] = self.cert
        return d

    def on_principal(self, principal: dict) -> None:
        self.accept(principal)


class PendingCookie(PendingAuth):
    """The connection carries a cookie of an earlier authenticated session
    (see transport/cookies.py): authenticated again as that principal."""

    METHOD = "cookie"

    def start(self) -> None:
        ident = cookie_identity(self.session.transport)
        self.provider = "cookie"
        # as Crossbar.io: WELCOME (and the session's details) name the method of the login that
        # set the cookie, authprovider "cookie" says how this session got in
        self.welcome_method = ident.get("authmethod") or self.METHOD
        self.accept({"authid": ident["authid"], "role": ident["authrole"], "realm": ident["authrealm"],
                     "extra": ident.get("authextra") or {}})


PENDING = {
    "anonymous": PendingAnonymous,
    "ticket": PendingTicket,
    "wampcra": PendingWampCra,
    "cryptosign": PendingCryptosign,
    "scram": PendingScram,
    "tls": PendingTls,
    "cookie": PendingCookie,
}
