"""Shared by tests/auth/test_auth.py and tests/auth/test_auth_attacks.py: a router node
whose transports cover every authmethod x provider, the credentials it knows,
and the authenticators behind the ``dynamic`` and ``function`` providers.

Two halves:

* The **function providers**: Crossbar.io-style factories (``create_authenticator``,
  ``create_async_authenticator``) named in a transport's ``auth.<method>.create``,
  which return the authenticators ``authenticate`` / ``authenticate_async``; the
  router subprocess imports them by dotted name: the node is started with this
  directory on ``PYTHONPATH``.  They read the credentials from the JSON file
  named by ``$WAMPFABRIC_TEST_AUTH_CREDENTIALS``.  This half imports only the
  standard library at module level.
* The **test side** (``make_credentials``, ``auth_config``, ``AuthNode``,
  ``AuthenticatorThread``, ``login`` ...) generates keys and secrets, writes
  the Crossbar.io-format config and runs the dynamic authenticator, an
  autobahn-python session in a thread of its own.

The same ``lookup`` decides for the dynamic authenticator and the function
provider, so every method x provider sees the same principals.  Some authids
make the authenticator misbehave on purpose (see ``lookup``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os

CRED_ENV = "WAMPFABRIC_TEST_AUTH_CREDENTIALS"
REALM = "realm1"
AUTH_REALM = "authrealm"  # where the authenticator of `authenticator-realm` transports lives
PROCEDURE = "com.auth.authenticate"


# ---------------------------------------------------------------------------------------------
# the decision, shared by the dynamic authenticator and the function providers


class Denied(Exception):
    """An authenticator's refusal; ``error`` is the URI the router forwards (like ApplicationError)."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message


HANG = object()  # lookup's answer for "never answer"
HOLD = object()  # lookup's answer for "answer when the test says so" (authids "hold-<token>")
HOLD_PREFIX = "hold-"
PROBE_DELAY = 0.3
HOLD_LIMIT = 60.0  # a held authentication is answered after this long even if never released


def hold_dir() -> str:
    """Where the test releases held authentications: the file <token> releases authid <token>;
    the authenticator writes <token>.started when asked and <token>.answered just before it
    answers (or when the router cancels it).  (Files, because the
    function providers run in the router process.)"""
    return os.environ[CRED_ENV] + ".hold"


async def wait_released(authid: str, directory: str | None = None) -> dict:
    """Wait (polling, 10 ms) until the test released ``authid``; returns the principal to answer."""
    path = os.path.join(directory or hold_dir(), authid)
    with open(path + ".started", "w"):
        pass
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_LIMIT
    try:
        while not os.path.exists(path) and loop.time() < deadline:
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        # the router cancels a function authenticator whose authentication is gone
        with open(path + ".answered", "w") as f:
            f.write("cancelled")
        raise
    with open(path + ".answered", "w"):
        pass
    return {"role": "probe", "secret": "held"}  # (secret: a wampcra principal needs one)


def lookup(creds: dict, realm, authid, details: dict):
    """The principal for a dynamic/function authentication request, or raise :class:`Denied`.

    Special authids (any method): ``hang`` never answers, ``crash`` raises a plain
    exception whose text holds the presented ticket, ``denied`` is refused with a
    custom message, ``badrole``/``badrealm``/``badprincipal`` return unusable principals,
    ``probe-*`` is accepted (role ``probe``, whatever the ticket) after PROBE_DELAY
    seconds by the asynchronous authenticators, ``hold-<token>`` waits (asynchronous
    authenticators) until the test releases it (``AuthNode.release``), then is accepted
    with role ``probe``.
    """
    method = details.get("authmethod")
    if authid == "hang":
        return HANG
    if isinstance(authid, str) and authid.startswith(HOLD_PREFIX):
        return HOLD
    if isinstance(authid, str) and authid.startswith("probe-") and method == "ticket":
        return {"role": "probe"}
    if authid == "crash":
        raise RuntimeError(f"authenticator database error while checking ticket {details.get('ticket')!r}")
    if authid == "denied":
        raise Denied("wamp.error.not_authorized", "custom denial from the authenticator")
    if authid == "badrole":
        return {"role": "no-such-role"}
    if authid == "badrealm":
        return {"role": "user", "realm": "no-such-realm"}
    if authid == "badprincipal":
        return 42
    if method == "anonymous":
        return {"role": "public", "authid": authid or "anon-dyn", "extra": {"via": "lookup"}}
    if method == "ticket":
        user = creds["ticket"].get(authid)
        ticket = details.get("ticket")
        if user is None or not isinstance(ticket, str) or not hmac.compare_digest(
                user["ticket"].encode(), ticket.encode()):
            raise Denied("wamp.error.not_authorized", "invalid ticket")
        return {"role": user["role"], "extra": {"via": "lookup"}}
    if method == "wampcra":
        user = creds["wampcra"].get(authid)
        if user is None:
            raise Denied("wamp.error.not_authorized", "no such user")
        return dict(user)
    if method == "cryptosign":
        pubkey = (details.get("authextra") or {}).get("pubkey")
        for name, user in creds["cryptosign"].items():
            if user["pubkey"] == pubkey and authid in (None, name):
                return {"authid": name, "role": user["role"], "pubkey": pubkey}
        raise Denied("wamp.error.not_authorized", "unknown public key")
    if method == "scram":
        user = creds["scram"].get(authid)
        if user is None:
            raise Denied("wamp.error.not_authorized", "no such user")
        return dict(user)
    raise Denied("wamp.error.not_authorized", f"authmethod {method!r} not handled")


# ---------------------------------------------------------------------------------------------
# function providers (run inside the router process)

_creds: dict | None = None


def _credentials() -> dict:
    global _creds
    if _creds is None:
        with open(os.environ[CRED_ENV]) as f:
            _creds = json.load(f)
    return _creds


def create_authenticator(config, controller):
    """``"type": "function", "create": "authnode.create_authenticator"``: a Crossbar.io-style
    factory (called once with the provider's ``config``) returning the synchronous authenticator."""
    assert config == {"flavour": "sync"}, config
    return authenticate


async def create_async_authenticator(config, controller):
    """A coroutine factory returning the coroutine authenticator."""
    assert config == {"flavour": "async"}, config
    return authenticate_async


def authenticate(realm, authid, details):
    """The synchronous function authenticator (made by ``create_authenticator``)."""
    result = lookup(_credentials(), realm, authid, details)
    if result is HANG or result is HOLD:
        # a synchronous function cannot hang without blocking the router: refuse instead
        raise Denied("wamp.error.not_authorized", "would hang")
    return result


async def authenticate_async(realm, authid, details):
    """The coroutine authenticator (made by ``create_async_authenticator``; the router awaits it)."""
    if isinstance(authid, str) and authid.startswith(HOLD_PREFIX):
        return await wait_released(authid)  # (first: a cancellation is recorded from the start)
    await asyncio.sleep(PROBE_DELAY if str(authid).startswith("probe-") else 0.01)
    result = lookup(_credentials(), realm, authid, details)
    if result is HANG:
        await asyncio.Event().wait()  # never
    return result


# =============================================================================================
# test side (never imported by the router: heavy imports happen inside the functions)

TRANSPORTS = [
    # name, kind, auth (method -> provider config without secrets; filled by auth_config)
    ("authenticator", "websocket", {"ticket": "static-authenticators"}),
    ("ticket-static", "websocket", {"ticket": "static"}),
    ("ticket-dynamic", "websocket", {"ticket": "dynamic"}),
    ("ticket-function", "websocket", {"ticket": "function"}),
    ("wampcra-static", "websocket", {"wampcra": "static"}),
    ("wampcra-dynamic", "websocket", {"wampcra": "dynamic-authrealm"}),
    ("wampcra-function", "websocket", {"wampcra": "function"}),
    ("cryptosign-static", "websocket", {"cryptosign": "static"}),
    ("cryptosign-dynamic", "websocket", {"cryptosign": "dynamic"}),
    ("cryptosign-function", "websocket", {"cryptosign": "function-async"}),
    ("scram-static", "websocket", {"scram": "static"}),
    ("scram-dynamic", "websocket", {"scram": "dynamic"}),
    ("scram-function", "websocket", {"scram": "function"}),
    ("anonymous-static", "websocket", {"anonymous": "static"}),
    ("anonymous-dynamic", "websocket", {"anonymous": "dynamic"}),
    ("anonymous-function", "websocket", {"anonymous": "function-async"}),
    ("multi", "websocket", {"ticket": "static", "wampcra": "static", "cryptosign": "static", "scram": "static",
                            "anonymous": "static"}),
    ("ticket-dynamic-missing", "websocket", {"ticket": "dynamic-missing"}),
    ("ticket-function-async", "websocket", {"ticket": "function-async"}),
]
# nodes.start_node waits for ports "web", "rawsocket" and "restricted": they carry
#   web        -> a `web` transport, path "ws": websocket with ticket + cryptosign (static)
#   rawsocket  -> a rawsocket transport: ticket + wampcra + cryptosign (static)
#   restricted -> the `user`-only ticket transport used for authorization tests


def _perm(uri, match, **allow):
    return {
        "uri": uri,
        "match": match,
        "allow": {a: bool(allow.get(a)) for a in ("call", "register", "publish", "subscribe")},
        "disclose": {"caller": True, "publisher": True},
        "cache": True,
    }


ALL = dict(call=True, register=True, publish=True, subscribe=True)

ROLES = [
    # `user`: one rule per match type, each allowing some actions
    {"name": "user", "permissions": [
        _perm("com.app.", "prefix", call=True, subscribe=True),
        _perm("com.wild..data", "wildcard", publish=True, subscribe=True),
        _perm("com.exact.proc", "exact", call=True, register=True),
    ]},
    {"name": "frontend", "permissions": [_perm("", "prefix", **ALL)]},
    {"name": "device", "permissions": [_perm("com.device.", "prefix", publish=True, subscribe=True)]},
    {"name": "public", "permissions": [_perm("com.public.", "prefix", call=True)]},
    {"name": "authenticator", "permissions": [_perm("com.auth.", "prefix", register=True)]},
    {"name": "probe", "permissions": []},
]


def make_credentials() -> dict:
    """Fresh secrets and keys (generated per test run, never checked in)."""
    import secrets

    from autobahn.wamp.auth import derive_key, derive_scram_credential
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def ed25519():
        k = Ed25519PrivateKey.generate()
        priv = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption()).hex()
        pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        return priv, pub

    creds: dict = {"private": {}}
    creds["ticket"] = {
        "joe": {"ticket": "joe-" + secrets.token_hex(16), "role": "user"},
        "owner": {"ticket": "owner-" + secrets.token_hex(16), "role": "frontend"},
    }
    creds["authenticators"] = {
        "authenticator": {"ticket": secrets.token_hex(16), "role": "authenticator"},
        "authenticator2": {"ticket": secrets.token_hex(16), "role": "authenticator", "realm": AUTH_REALM},
    }
    # WAMP-CRA: "alice" plain, "bob" and "salted" salted.  As in Crossbar.io 26.10, a salted
    # principal's `secret` is the password: the router derives the PBKDF2 key from it with the
    # principal's salt, iterations and keylen, as the client does from the CHALLENGE.  "salted"
    # is a salted principal as Crossbar.io's docs write one (keylen 32, iterations 100).
    alice_secret = "alice-" + secrets.token_hex(12)
    bob_password = "bob-" + secrets.token_hex(12)
    salt = secrets.token_hex(8)
    creds["private"]["bob_password"] = bob_password
    # the HMAC key both sides derive (a client that knows it can sign, but it is not the password)
    creds["private"]["bob_derived_key"] = derive_key(bob_password, salt, 100, 16).decode("ascii")
    creds["wampcra"] = {
        "alice": {"secret": alice_secret, "role": "user"},
        "bob": {"secret": bob_password, "salt": salt, "iterations": 100, "keylen": 16, "role": "frontend"},
        "salted": {"secret": "secret2", "role": "user", "salt": "salt123", "iterations": 100, "keylen": 32},
    }
    # cryptosign: carol (device) and dave (user) have keys; "mallory" has one nobody authorized
    creds["cryptosign"] = {}
    for name, role in (("carol", "device"), ("dave", "user")):
        priv, pub = ed25519()
        creds["private"][name] = priv
        creds["cryptosign"][name] = {"pubkey": pub, "role": role}
    creds["private"]["mallory"], creds["private"]["mallory_pub"] = ed25519()
    # SCRAM: "erin" exactly as autobahn derives it (argon2id-13, t=4096, m=512: ~1 s per login);
    # "fred" the same KDF with cheap parameters (for the many logins of the other tests)
    erin_password = "erin-" + secrets.token_hex(12)
    fred_password = "fred-" + secrets.token_hex(12)
    creds["private"]["erin_password"] = erin_password
    creds["private"]["fred_password"] = fred_password
    creds["scram"] = {
        "erin": dict(derive_scram_credential("erin", erin_password), role="user"),
        "fred": dict(scram_credential_autobahn(fred_password, secrets.token_bytes(16), 2, 1024), role="device"),
    }
    # spec dialect ("wamp-scram"): SaltedPassword is the raw KDF output
    creds["private"]["grace_password"] = grace_password = "grace-" + secrets.token_hex(12)
    creds["private"]["heidi_password"] = heidi_password = "heidi-" + secrets.token_hex(12)
    creds["scram"]["grace"] = dict(
        scram_credential_spec(grace_password, "argon2id13", secrets.token_bytes(16), 2, 1024), role="user")
    creds["scram"]["heidi"] = dict(scram_credential_spec(heidi_password, "pbkdf2", secrets.token_bytes(16), 4096),
                                   role="frontend")
    return creds


def _scram_keys(salted_password: bytes) -> tuple[bytes, bytes]:
    import hashlib

    client_key = hmac.new(salted_password, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), hmac.new(salted_password, b"Server Key", hashlib.sha256).digest()


def scram_salted_password(password: str, kdf: str, salt: bytes, iterations: int, memory: int | None,
                          spec: bool) -> bytes:
    """SaltedPassword: the spec's raw KDF output, or (autobahn/Crossbar.io dialect, argon2)
    the base64 text of the argon2 hash, as autobahn computes it."""
    import hashlib

    from argon2.low_level import Type, hash_secret, hash_secret_raw

    if kdf in ("argon2id13", "argon2id-13"):
        if spec:
            return hash_secret_raw(password.encode(), salt, time_cost=iterations, memory_cost=memory,
                                   parallelism=1, hash_len=32, type=Type.ID, version=19)
        return hash_secret(password.encode(), salt, time_cost=iterations, memory_cost=memory, parallelism=1,
                           hash_len=32, type=Type.ID, version=19).split(b"$")[-1]
    assert kdf == "pbkdf2"
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)


def scram_credential_autobahn(password: str, salt: bytes, iterations: int, memory: int) -> dict:
    stored, server = _scram_keys(scram_salted_password(password, "argon2id-13", salt, iterations, memory, False))
    return {"kdf": "argon2id-13", "iterations": iterations, "memory": memory, "salt": salt.hex(),
            "stored-key": stored.hex(), "server-key": server.hex()}


def scram_credential_spec(password: str, kdf: str, salt: bytes, iterations: int, memory: int | None = None) -> dict:
    stored, server = _scram_keys(scram_salted_password(password, kdf, salt, iterations, memory, True))
    cred = {"kdf": kdf, "iterations": iterations, "salt": salt.hex(), "stored-key": stored.hex(),
            "server-key": server.hex()}
    if memory is not None:
        cred["memory"] = memory
    return cred


def _provider(method: str, kind: str, creds: dict) -> dict:
    if kind == "static-authenticators":
        return {"type": "static", "principals": creds["authenticators"]}
    if kind == "static":
        if method == "anonymous":
            return {"type": "static", "role": "public"}
        if method == "ticket":
            return {"type": "static", "principals": creds["ticket"]}
        if method == "wampcra":
            return {"type": "static", "users": creds["wampcra"]}
        if method == "cryptosign":
            return {"type": "static", "principals": {
                name: {"authorized_keys": [u["pubkey"]], "role": u["role"]} for name, u in creds["cryptosign"].items()}}
        if method == "scram":
            return {"type": "static", "principals": creds["scram"]}
    if kind == "dynamic":
        return {"type": "dynamic", "authenticator": PROCEDURE}
    if kind == "dynamic-authrealm":
        return {"type": "dynamic", "authenticator": PROCEDURE, "authenticator-realm": AUTH_REALM}
    if kind == "dynamic-missing":
        return {"type": "dynamic", "authenticator": "com.auth.nobody_registered_this"}
    if kind == "function":
        return {"type": "function", "create": "authnode.create_authenticator", "config": {"flavour": "sync"}}
    if kind == "function-async":
        return {"type": "function", "create": "authnode.create_async_authenticator", "config": {"flavour": "async"}}
    raise ValueError((method, kind))


def auth_config(ports: dict, rs_path: str, creds: dict) -> dict:
    """The node config (Crossbar.io version 2 format). Adds a port per transport to ``ports``."""
    from support.nodes import free_port

    transports = []
    for name, kind, auth in TRANSPORTS:
        ports[name] = free_port()
        transports.append({
            "type": kind,
            "id": name,
            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports[name]},
            "serializers": ["json", "msgpack", "cbor"],
            "auth": {m: _provider(m, k, creds) for m, k in auth.items()},
        })
    transports.append({
        "type": "web",
        "id": "web",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
        "paths": {
            "/": {"type": "static", "directory": "../web"},
            "ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"],
                   "auth": {"ticket": _provider("ticket", "static", creds),
                            "cryptosign": _provider("cryptosign", "static", creds)}},
        },
    })
    transports.append({
        "type": "rawsocket",
        "id": "rawsocket",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["rawsocket"]},
        "serializers": ["json", "msgpack", "cbor"],
        "auth": {m: _provider(m, "static", creds) for m in ("ticket", "wampcra", "cryptosign")},
    })
    transports.append({
        "type": "websocket",
        "id": "restricted",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["restricted"]},
        "serializers": ["json", "msgpack", "cbor"],
        "auth": {"ticket": _provider("ticket", "static", creds)},
    })
    return {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            # these tests fail hundreds of logins from 127.0.0.1 on purpose: no failure budgets here
            # (tests/auth/test_auth_throttle.py tests them)
            "options": {"auth_throttle": {"address_failures": 0, "authid_failures": 0}},
            "realms": [
                {"name": REALM, "roles": ROLES},
                {"name": AUTH_REALM, "roles": [r for r in ROLES if r["name"] == "authenticator"]},
            ],
            "transports": transports,
        }],
    }


class AuthNode:
    """A running node with the auth config, its credentials and its authenticators."""

    def __init__(self, node, creds: dict, cred_path: str, authenticators: list):
        self.node = node
        self.creds = creds
        self.cred_path = cred_path
        self.authenticators = authenticators

    def url(self, transport: str) -> str:
        if transport == "web":
            return f"ws://127.0.0.1:{self.node.ports['web']}/ws"
        return f"ws://127.0.0.1:{self.node.ports[transport]}/"

    def port(self, transport: str) -> int:
        return self.node.ports[transport]

    def secret(self, name: str) -> str:
        return self.creds["private"][name]

    def log(self) -> str:
        return self.node.log()

    @property
    def hold_dir(self) -> str:
        return self.cred_path + ".hold"

    def hold(self) -> str:
        """A fresh authid that the asynchronous authenticators (dynamic, function-async) hold
        until :meth:`release`."""
        import secrets

        return HOLD_PREFIX + secrets.token_hex(6)

    def release(self, authid: str) -> None:
        with open(os.path.join(self.hold_dir, authid), "w"):
            pass

    def wait_settled(self, authid: str, timeout: float = 10.0) -> None:
        """If the authenticator was asked about the released ``authid``: until it has answered (or,
        a function provider, was cancelled by the router because the authentication was gone).
        (A function whose authentication went away before it ever ran is never asked.)"""
        import time

        if not os.path.exists(os.path.join(self.hold_dir, authid + ".started")):
            return
        path = os.path.join(self.hold_dir, authid + ".answered")
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise AssertionError(f"the authenticator did not answer for {authid} within {timeout} s")
            time.sleep(0.01)

    def assert_alive(self):
        self.node.assert_alive()


def start_auth_node():
    """Start the node (this directory on PYTHONPATH, credentials in a temp file) and its
    two dynamic authenticators (realm1 and authrealm).  Returns an :class:`AuthNode`."""
    import tempfile
    from pathlib import Path

    from support import nodes

    creds = make_credentials()
    fd, cred_path = tempfile.mkstemp(prefix="wf-auth-creds-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    os.mkdir(cred_path + ".hold")
    here = str(Path(__file__).resolve().parent)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", CRED_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, saved["PYTHONPATH"]) if p)
    os.environ[CRED_ENV] = cred_path
    try:
        node = nodes.start_node(lambda ports, rs_path: auth_config(ports, rs_path, creds))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    an = AuthNode(node, creds, cred_path, [])
    try:
        for authid, realm in (("authenticator", REALM), ("authenticator2", AUTH_REALM)):
            t = AuthenticatorThread(an.url("authenticator"), realm, authid,
                                    creds["authenticators"][authid]["ticket"], creds, an.hold_dir)
            an.authenticators.append(t)
            t.start()
    except BaseException:
        stop_auth_node(an)
        raise
    return an


def stop_auth_node(an: AuthNode) -> None:
    from support import nodes

    for t in an.authenticators:
        t.stop()
    nodes.stop_node(an.node)
    import shutil

    shutil.rmtree(an.hold_dir, ignore_errors=True)
    try:
        os.unlink(an.cred_path)
    except OSError:
        pass


class AuthenticatorThread:
    """A dynamic authenticator: an autobahn-python session (role ``authenticator``,
    itself authenticated by ticket) registering ``com.auth.authenticate`` on ``realm``,
    run on an event loop in a thread of its own.  ``calls`` records what it was asked."""

    def __init__(self, url: str, realm: str, authid: str, ticket: str, creds: dict, hold_dir: str):
        import threading

        self.url, self.realm, self.authid, self.ticket, self.creds = url, realm, authid, ticket, creds
        self.hold_dir = hold_dir
        self.calls: list = []
        self.hanging: list = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name=f"authenticator-{realm}", daemon=True)
        self.session = None

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        if not self.ready.wait(timeout) or self.error is not None:
            raise RuntimeError(f"authenticator on {self.realm} did not come up: {self.error!r}")

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._connect())
            self.ready.set()
            self.loop.run_forever()
        except BaseException as e:  # reported to start()
            self.error = e
            self.ready.set()
        finally:
            self.loop.close()

    async def _connect(self) -> None:
        from autobahn.wamp.auth import create_authenticator
        from autobahn.wamp.exception import ApplicationError

        owner = self

        async def authenticate(realm, authid, details):
            owner.calls.append((realm, authid, details))
            if str(authid).startswith("probe-"):
                await asyncio.sleep(PROBE_DELAY)
            try:
                result = lookup(owner.creds, realm, authid, details)
            except Denied as d:
                raise ApplicationError(d.error, d.message)
            if result is HANG:
                fut = asyncio.get_running_loop().create_future()
                owner.hanging.append(fut)
                await fut  # resolved only by stop()
                raise ApplicationError("wamp.error.not_authorized", "authenticator stopped")
            if result is HOLD:
                return await wait_released(authid, owner.hold_dir)
            return result

        session = await login(self.url, self.realm, create_authenticator("ticket", authid=self.authid,
                                                                         ticket=self.ticket))
        await asyncio.wait_for(session.register(authenticate, PROCEDURE), 5)
        self.session = session

    def stop(self) -> None:
        if self.loop is None or self.loop.is_closed():
            return

        async def _stop():
            for fut in self.hanging:  # answer the hanging calls, then leave
                if not fut.done():
                    fut.set_result(None)
            await asyncio.sleep(0.05)
            if self.session is not None:
                await self.session.shutdown()

        try:
            asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# ---------------------------------------------------------------------------------------------
# autobahn-python clients


class JoinFailed(Exception):
    """The router answered with ABORT (or closed the transport) instead of WELCOME."""

    def __init__(self, reason: str, message: str | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _client_class():
    from autobahn.asyncio.wamp import Session

    class Client(Session):
        """autobahn's Session (the class Component uses): HELLO with the authenticators'
        authmethods/authid/authextra, CHALLENGE answered by them, WELCOME checked by them."""

        def __init__(self, config):
            super().__init__(config)
            loop = asyncio.get_running_loop()
            self.joined = loop.create_future()
            self.left = loop.create_future()
            self.disconnected = loop.create_future()

        def onJoin(self, details):
            if not self.joined.done():
                self.joined.set_result(details)

        def onLeave(self, details):
            if not self.left.done():
                self.left.set_result(details)
            if not self.joined.done():
                self.joined.set_exception(JoinFailed(details.reason, details.message))
            self.disconnect()

        def onDisconnect(self):
            if not self.disconnected.done():
                self.disconnected.set_result(True)
            if not self.joined.done():
                self.joined.set_exception(JoinFailed("transport closed before WELCOME"))

        def onUserError(self, fail, msg):
            from autobahn.wamp.exception import ApplicationError

            if isinstance(getattr(fail, "value", fail), ApplicationError):
                return  # the authenticator's refusals are answers, not errors worth a traceback
            super().onUserError(fail, msg)

        async def shutdown(self):
            try:
                if self.is_attached() and not self.left.done():
                    self.leave()
                    await asyncio.wait_for(asyncio.shield(self.left), 2)
            except Exception:
                pass
            try:
                if self._transport is not None:
                    self.disconnect()
                await asyncio.wait_for(asyncio.shield(self.disconnected), 2)
            except Exception:
                pass

    return Client


_CLIENT = None


async def login(url: str, realm: str = REALM, authenticators=(), serializer: str = "json",
                rawsocket_port: int | None = None, timeout: float = 10.0, session_class=None,
                source: str | None = None):
    """Connect autobahn-python over WebSocket (``url``) or RawSocket (``rawsocket_port``) and join
    with the given autobahn ``IAuthenticator`` (or list of them).  Returns the joined session
    (``.joined`` holds the SessionDetails); raises :class:`JoinFailed` on ABORT.  ``source``: the
    client's own address (e.g. ``127.0.0.3``: another peer address on loopback)."""
    global _CLIENT
    from urllib.parse import urlparse

    from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
    from autobahn.wamp.types import ComponentConfig

    if _CLIENT is None:
        _CLIENT = _client_class()
    cls = session_class or _CLIENT
    if not isinstance(authenticators, (list, tuple)):
        authenticators = [authenticators]
    loop = asyncio.get_running_loop()
    created = []

    def make_session():
        s = cls(ComponentConfig(realm=realm))
        for a in authenticators:
            s.add_authenticator(a)
        created.append(s)
        return s

    ser = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}[serializer]()
    if rawsocket_port is not None:
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        await asyncio.wait_for(loop.create_connection(factory, "127.0.0.1", rawsocket_port,
                                                      local_addr=(source, 0) if source else None), timeout)
    else:
        u = urlparse(url)
        factory = WampWebSocketClientFactory(make_session, url=url, serializers=[ser])
        await asyncio.wait_for(loop.create_connection(factory, u.hostname, u.port,
                                                      local_addr=(source, 0) if source else None), timeout)
    deadline = loop.time() + timeout
    while not created and loop.time() < deadline:
        await asyncio.sleep(0.005)
    assert created, "no WAMP session was created"
    session = created[0]
    try:
        await asyncio.wait_for(asyncio.shield(session.joined), max(0.1, deadline - loop.time()))
    except BaseException:
        await session.shutdown()
        raise
    return session
