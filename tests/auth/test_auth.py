"""Authentication (anonymous, ticket, wampcra, cryptosign, scram) x providers (static,
dynamic, function) with real clients, and the static authorization of an
authenticated role.

The node (tests/support/authnode.py) has one transport per authmethod x provider, in
Crossbar.io's config format, with secrets and keys generated for the run:
Ed25519 keys by ``cryptography``, SCRAM credentials by autobahn's
``derive_scram_credential`` (and the same formula with cheap parameters),
salted WAMP-CRA keys by autobahn's ``derive_key``.  The ``dynamic`` providers
call ``com.auth.authenticate`` on an autobahn-python session (role
``authenticator``, itself ticket-authenticated), one of them on another realm
(``authenticator-realm``); the ``function`` providers are the factories
``authnode.create_authenticator`` (plain) and ``authnode.create_async_authenticator``
(coroutine), imported by the router, which return the authenticators.

* every method x provider succeeds with autobahn-python (``Session`` with
  ``add_authenticator``, as ``Component`` does; explicit ``onChallenge``;
  ``Component(authentication=...)``) and, where autobahn-js has the method
  (ticket, wampcra, cryptosign; not scram), with autobahn-js on Node;
* wrong secret, unknown authid, unknown key: a clean ABORT that says nothing
  about the secret;
* transports without ``anonymous`` cannot be joined anonymously;
* a ``user`` session cannot do what its role does not allow.

Protocol-level attacks with raw peers are in tests/auth/test_auth_attacks.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import uuid

import pytest
from autobahn.wamp.auth import HAS_ARGON, compute_wcs, create_authenticator, derive_key
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from support import authnode, js
from support import wamp_raw as raw
from support.authnode import JoinFailed, login, start_auth_node, stop_auth_node
from support.autobahn_client import closing_sessions
from wampfabric.protocol.codes import AUTHENTICATE, CHALLENGE

DENIED = {"wamp.error.not_authorized", "wamp.error.authentication_failed"}
T = 5.0


@pytest.fixture(scope="module")
def an():
    node = start_auth_node()
    yield node
    stop_auth_node(node)


async def w(aw, timeout: float = T):
    return await asyncio.wait_for(aw, timeout)


def uid() -> str:
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------------
# autobahn authenticators for the principals of authnode.make_credentials


def tk(an, authid="joe", ticket=None):
    if ticket is None:
        ticket = an.creds["ticket"][authid]["ticket"]
    return create_authenticator("ticket", authid=authid, ticket=ticket)


def cra(an, authid, secret=None):
    if secret is None:
        secret = an.creds["wampcra"][authid]["secret"]  # salted principals too: the password (as Crossbar.io)
    return create_authenticator("wampcra", authid=authid, secret=secret)


def cs(an, key, authid=None):
    kw = {"privkey": an.secret(key)}
    if authid:
        kw["authid"] = authid
    return create_authenticator("cryptosign", **kw)


def scram(an, authid="fred", password=None):
    return create_authenticator("scram", authid=authid, password=password or an.secret(f"{authid}_password"))


def anon(an):
    return create_authenticator("anonymous")


needs_argon = pytest.mark.skipif(not HAS_ARGON, reason="autobahn's SCRAM needs argon2-cffi and passlib "
                                                      "(autobahn[scram])")

ANON_AUTHID = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){5}$")

# id, transport, authenticator factory, authid, authrole, authmethod, authprovider
SUCCESS = [
    ("ticket-static", "ticket-static", lambda an: tk(an), "joe", "user", "ticket", "static"),
    ("ticket-dynamic", "ticket-dynamic", lambda an: tk(an), "joe", "user", "ticket", "dynamic"),
    ("ticket-function", "ticket-function", lambda an: tk(an), "joe", "user", "ticket", "function"),
    ("ticket-function-async", "ticket-function-async", lambda an: tk(an), "joe", "user", "ticket", "function"),
    ("wampcra-plain-static", "wampcra-static", lambda an: cra(an, "alice"), "alice", "user", "wampcra", "static"),
    ("wampcra-salted-static", "wampcra-static", lambda an: cra(an, "bob"), "bob", "frontend", "wampcra", "static"),
    ("wampcra-plain-dynamic", "wampcra-dynamic", lambda an: cra(an, "alice"), "alice", "user", "wampcra", "dynamic"),
    ("wampcra-salted-dynamic", "wampcra-dynamic", lambda an: cra(an, "bob"), "bob", "frontend", "wampcra",
     "dynamic"),
    ("wampcra-plain-function", "wampcra-function", lambda an: cra(an, "alice"), "alice", "user", "wampcra",
     "function"),
    ("wampcra-salted-function", "wampcra-function", lambda an: cra(an, "bob"), "bob", "frontend", "wampcra",
     "function"),
    # a salted principal as Crossbar.io's docs write one: {"secret": "secret2", "salt": "salt123", "iterations": 100,
    # "keylen": 32} (the key is 32 bytes, not the default 16)
    ("wampcra-salted-keylen32-static", "wampcra-static", lambda an: cra(an, "salted"), "salted", "user", "wampcra",
     "static"),
    ("wampcra-salted-keylen32-dynamic", "wampcra-dynamic", lambda an: cra(an, "salted"), "salted", "user", "wampcra",
     "dynamic"),
    ("wampcra-salted-keylen32-function", "wampcra-function", lambda an: cra(an, "salted"), "salted", "user",
     "wampcra", "function"),
    ("cryptosign-static-by-key", "cryptosign-static", lambda an: cs(an, "carol"), "carol", "device", "cryptosign",
     "static"),
    ("cryptosign-static-authid", "cryptosign-static", lambda an: cs(an, "dave", "dave"), "dave", "user",
     "cryptosign", "static"),
    ("cryptosign-dynamic-by-key", "cryptosign-dynamic", lambda an: cs(an, "carol"), "carol", "device",
     "cryptosign", "dynamic"),
    ("cryptosign-dynamic-authid", "cryptosign-dynamic", lambda an: cs(an, "dave", "dave"), "dave", "user",
     "cryptosign", "dynamic"),
    ("cryptosign-function-async", "cryptosign-function", lambda an: cs(an, "carol"), "carol", "device",
     "cryptosign", "function"),
    pytest.param("scram-static", "scram-static", lambda an: scram(an), "fred", "device", "scram", "static",
                 marks=needs_argon),
    pytest.param("scram-dynamic", "scram-dynamic", lambda an: scram(an), "fred", "device", "scram", "dynamic",
                 marks=needs_argon),
    pytest.param("scram-function", "scram-function", lambda an: scram(an), "fred", "device", "scram", "function",
                 marks=needs_argon),
    ("anonymous-static", "anonymous-static", anon, None, "public", "anonymous", "static"),
    ("anonymous-dynamic", "anonymous-dynamic", anon, None, "public", "anonymous", "dynamic"),
    ("anonymous-function-async", "anonymous-function", anon, None, "public", "anonymous", "function"),
    # a web transport's websocket path service, and a transport offering every method
    ("web-ticket", "web", lambda an: tk(an), "joe", "user", "ticket", "static"),
    ("web-cryptosign", "web", lambda an: cs(an, "dave"), "dave", "user", "cryptosign", "static"),
    ("multi-ticket", "multi", lambda an: tk(an, "owner"), "owner", "frontend", "ticket", "static"),
    ("multi-wampcra", "multi", lambda an: cra(an, "bob"), "bob", "frontend", "wampcra", "static"),
    ("multi-cryptosign", "multi", lambda an: cs(an, "carol"), "carol", "device", "cryptosign", "static"),
    pytest.param("multi-scram", "multi", lambda an: scram(an), "fred", "device", "scram", "static",
                 marks=needs_argon),
    ("multi-anonymous", "multi", anon, None, "public", "anonymous", "static"),
]


def _params(table):
    out = []
    for p in table:
        if hasattr(p, "marks"):  # a pytest.param
            out.append(pytest.param(*p.values[1:], id=p.values[0], marks=p.marks))
        else:
            out.append(pytest.param(*p[1:], id=p[0]))
    return out


@pytest.mark.parametrize("transport,make,authid,authrole,authmethod,authprovider", _params(SUCCESS))
async def test_autobahn_python_joins(an, transport, make, authid, authrole, authmethod, authprovider):
    s = await login(an.url(transport), authenticators=make(an))
    try:
        d = s.joined.result()
        assert d.realm == "realm1"
        if authid is None:
            assert ANON_AUTHID.match(d.authid), d.authid
        else:
            assert d.authid == authid
        assert (d.authrole, d.authmethod, d.authprovider) == (authrole, authmethod, authprovider)
        if authmethod == "scram":
            # autobahn's AuthScram.on_welcome checked the server signature (else no join)
            assert d.authextra.get("scram_server_signature")
        # a working session: the router answers a call (not allowed or no such procedure is fine)
        with pytest.raises(ApplicationError) as ei:
            await w(s.call(f"com.app.nothing.{uid()}"))
        assert ei.value.error in ("wamp.error.no_such_procedure", "wamp.error.not_authorized")
    finally:
        await s.shutdown()
    an.assert_alive()


@pytest.mark.parametrize("make,serializer,authid", [
    pytest.param(lambda an: tk(an), "msgpack", "joe", id="ticket-msgpack"),
    pytest.param(lambda an: cra(an, "bob"), "cbor", "bob", id="wampcra-salted-cbor"),
    pytest.param(lambda an: cs(an, "carol"), "json", "carol", id="cryptosign-json"),
])
async def test_autobahn_python_rawsocket(an, make, serializer, authid):
    s = await login(None, authenticators=make(an), serializer=serializer, rawsocket_port=an.port("rawsocket"))
    try:
        assert s.joined.result().authid == authid
        assert s.joined.result().authprovider == "static"
    finally:
        await s.shutdown()


@needs_argon
async def test_scram_credential_from_derive_scram_credential(an):
    """The credential exactly as ``autobahn.wamp.auth.derive_scram_credential`` makes it
    (argon2id-13, t=4096, m=512) pasted into the config, and autobahn's AuthScram."""
    cred = an.creds["scram"]["erin"]
    assert (cred["kdf"], cred["iterations"], cred["memory"]) == ("argon2id-13", 4096, 512)
    s = await login(an.url("scram-static"), authenticators=scram(an, "erin"), timeout=20)
    try:
        d = s.joined.result()
        assert (d.authid, d.authrole, d.authmethod, d.authprovider) == ("erin", "user", "scram", "static")
    finally:
        await s.shutdown()


@pytest.mark.parametrize("authid", ["alice", "bob"], ids=["plain", "salted"])
async def test_wampcra_with_explicit_onchallenge(an, authid):
    """The classic autobahn way: ApplicationSession.join(authmethods=["wampcra"]) and an
    onChallenge using autobahn.wamp.auth.derive_key/compute_wcs."""
    secret = an.secret("bob_password") if authid == "bob" else an.creds["wampcra"]["alice"]["secret"]
    seen = {}

    class CraSession(authnode._client_class()):
        def onConnect(self):
            self.join("realm1", authmethods=["wampcra"], authid=authid)

        def onChallenge(self, challenge):
            seen["method"] = challenge.method
            seen["extra"] = dict(challenge.extra)
            key = secret.encode("utf8")
            if "salt" in challenge.extra:
                key = derive_key(key, challenge.extra["salt"], challenge.extra["iterations"],
                                 challenge.extra["keylen"])
            return compute_wcs(key, challenge.extra["challenge"].encode("utf8")).decode("ascii")

    s = await login(an.url("wampcra-static"), session_class=CraSession)
    try:
        assert s.joined.result().authid == authid
        assert seen["method"] == "wampcra"
        ch = json.loads(seen["extra"]["challenge"])
        assert ch["authid"] == authid and ch["authmethod"] == "wampcra" and ch["authprovider"] == "static"
        assert len(ch["nonce"]) >= 16
        if authid == "bob":
            assert (seen["extra"]["salt"], seen["extra"]["iterations"], seen["extra"]["keylen"]) == (
                an.creds["wampcra"]["bob"]["salt"], 100, 16)
        else:
            assert "salt" not in seen["extra"]
    finally:
        await s.shutdown()


@pytest.mark.parametrize("method", ["cryptosign", pytest.param("scram", marks=needs_argon), "ticket"])
async def test_component_authentication(an, method):
    """``Component(authentication={...})``, the documented high-level API."""
    from autobahn.asyncio.component import Component

    auth = {
        "cryptosign": {"privkey": an.secret("dave"), "authid": "dave"},
        "scram": {"authid": "fred", "password": an.secret("fred_password"), "kdf": "argon2id-13"},
        "ticket": {"authid": "owner", "ticket": an.creds["ticket"]["owner"]["ticket"]},
    }[method]
    if method == "scram":
        auth.pop("kdf")
    transport = {"cryptosign": "cryptosign-static", "scram": "scram-static", "ticket": "ticket-static"}[method]
    comp = Component(transports=[{"url": an.url(transport), "serializers": ["json"], "max_retries": 0}],
                     realm="realm1", authentication={method: auth})
    joined = asyncio.get_running_loop().create_future()

    @comp.on_join
    async def _(session, details):
        joined.set_result(details)
        await session.leave()

    done = comp.start(asyncio.get_running_loop())
    try:
        details = await w(joined)
        assert details.authmethod == method
        assert details.authid == {"cryptosign": "dave", "scram": "fred", "ticket": "owner"}[method]
        await w(done)
    finally:
        if not done.done():
            await comp.stop()


# ---------------------------------------------------------------------------------------------
# the SCRAM spec dialect ("wamp-scram"), by hand: autobahn speaks only Crossbar.io's "scram"


def _spec_proof(authid, password, client_nonce, challenge, spec_cred, cbind=None, cbind_data=None):
    salt = base64.b64decode(challenge["salt"])
    salted = authnode.scram_salted_password(password, spec_cred["kdf"], salt, challenge["iterations"],
                                            challenge.get("memory"), spec=True)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    flag = "n" if cbind is None else f"p={cbind}"
    cbind_input = (flag + ",,").encode() + (base64.b64decode(cbind_data) if cbind_data else b"")
    name = authid.replace("=", "=3D").replace(",", "=2C")
    auth_message = (f"n={name},r={client_nonce},"
                    f"r={challenge['nonce']},s={challenge['salt']},i={challenge['iterations']},"
                    f"c={base64.b64encode(cbind_input).decode()},r={challenge['nonce']}").encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    verifier = base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
    return proof, verifier


def _spec_scram(an, authid, password=None, mutate=None, serializer="json"):
    """Run a wamp-scram authentication with a raw peer; returns (reply, challenge, expected verifier)."""
    password = password or an.secret(f"{authid}_password")
    cred = an.creds["scram"][authid]
    client_nonce = base64.b64encode(secrets.token_bytes(16)).decode()
    with raw.WebSocketPeer(an.url("scram-static"), serializer) as p:
        p.send([raw.HELLO, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": ["wamp-scram"], "authid": authid,
                                      "authextra": {"nonce": client_nonce, "channel_binding": None}}])
        ch = p.recv()
        assert ch[0] == CHALLENGE, ch
        assert ch[1] == "wamp-scram"
        extra = ch[2]
        assert extra["nonce"].startswith(client_nonce) and len(extra["nonce"]) > len(client_nonce)
        assert extra["kdf"] == cred["kdf"]
        assert base64.b64decode(extra["salt"]) == bytes.fromhex(cred["salt"])
        auth_extra = {"nonce": extra["nonce"], "channel_binding": None, "cbind_data": None}
        cbind = cbind_data = None
        if mutate:
            cbind, cbind_data = mutate(auth_extra)
        proof, verifier = _spec_proof(authid, password, client_nonce, extra, cred, cbind, cbind_data)
        p.send([AUTHENTICATE, proof, auth_extra])
        reply = p.recv()
        return reply, extra, verifier


def test_scram_unknown_authid_gets_a_mock_challenge(an):
    """authentication_scram: HELLO for an unknown user is answered like any other (a mock
    CHALLENGE with a per-authid stable salt), so it does not reveal which users exist;
    AUTHENTICATE then fails."""

    def hello(authid):
        client_nonce = base64.b64encode(secrets.token_bytes(16)).decode()
        p = raw.WebSocketPeer(an.url("scram-static"), "json").__enter__()
        p.send([raw.HELLO, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": ["wamp-scram"], "authid": authid,
                                      "authextra": {"nonce": client_nonce, "channel_binding": None}}])
        ch = p.recv()
        return p, ch

    p1, ch1 = hello("nobody-at-all")
    p2, ch2 = hello("nobody-at-all")
    p3, ch3 = hello("someone-else")
    try:
        for ch in (ch1, ch2, ch3):
            assert ch[0] == CHALLENGE and ch[1] == "wamp-scram", ch
            assert set(ch[2]) >= {"nonce", "salt", "kdf", "iterations"}
        assert ch1[2]["salt"] == ch2[2]["salt"]  # stable per authid, like a real user's
        assert ch1[2]["salt"] != ch3[2]["salt"]
        p1.send([AUTHENTICATE, base64.b64encode(secrets.token_bytes(32)).decode(),
                 {"nonce": ch1[2]["nonce"], "channel_binding": None, "cbind_data": None}])
        reply = p1.recv()
        assert reply[0] == raw.ABORT and reply[2] in ("wamp.error.authentication_failed", "wamp.error.not_authorized")
    finally:
        for p in (p1, p2, p3):
            p.__exit__(None, None, None)


@pytest.mark.parametrize("authid,kdf", [("grace", "argon2id13"), ("heidi", "pbkdf2")])
def test_wamp_scram_spec_dialect(an, authid, kdf):
    reply, challenge, verifier = _spec_scram(an, authid)
    assert challenge["kdf"] == kdf
    assert reply[0] == raw.WELCOME, reply
    d = reply[2]
    assert (d["authid"], d["authrole"], d["authprovider"]) == (authid, an.creds["scram"][authid]["role"], "static")
    got = d["authextra"]["verifier"]
    assert got.removeprefix("v=") == verifier  # mutual authentication: the router knows ServerKey


def test_wamp_scram_welcome_authmethod(an):
    """spec authentication_scram: WELCOME.Details.authmethod is "wamp-scram" (ce95b69 said "scram")."""
    reply, _, _ = _spec_scram(an, "heidi")
    assert reply[0] == raw.WELCOME, reply
    assert reply[2]["authmethod"] == "wamp-scram"


@pytest.mark.parametrize("authid", ["grace", "heidi"])
def test_wamp_scram_wrong_password(an, authid):
    reply, _, _ = _spec_scram(an, authid, password="not-the-password")
    assert reply[0] == raw.ABORT and reply[2] in DENIED, reply
    assert "not-the-password" not in json.dumps(reply)


def test_wamp_scram_nonce_mismatch(an):
    """spec: the router checks that AUTHENTICATE.Extra.nonce is the one it sent."""
    def wrong_nonce(extra):
        extra["nonce"] = extra["nonce"][:-4] + "AAA="
        return None, None
    reply, _, _ = _spec_scram(an, "heidi", mutate=wrong_nonce)
    assert reply[0] == raw.ABORT and reply[2] in DENIED, reply


def test_wamp_scram_channel_binding_not_in_hello(an):
    """spec: the router checks that AUTHENTICATE's channel_binding is HELLO's and cbind_data its channel's.
    ce95b69 accepted a proof over any channel_binding/cbind_data the client named, so a relaying MITM
    that strips HELLO's channel_binding defeated the binding."""
    def add_binding(extra):
        extra["channel_binding"] = "tls-unique"
        extra["cbind_data"] = base64.b64encode(secrets.token_bytes(12)).decode()
        return "tls-unique", extra["cbind_data"]
    reply, _, _ = _spec_scram(an, "heidi", mutate=add_binding)
    assert reply[0] == raw.ABORT, reply


# ---------------------------------------------------------------------------------------------
# clean failures with autobahn-python: ABORT not_authorized/authentication_failed, nothing leaked


def assert_clean_failure(an, e: JoinFailed, *secrets_):
    assert e.reason in DENIED, (e.reason, e.message)
    text = f"{e.reason} {e.message}"
    for s in secrets_:
        if s:
            assert s not in text, f"ABORT leaks a secret: {text!r}"
    an.assert_alive()


PROVIDERS = ["static", "dynamic", "function"]


def _tr(method, provider):
    if method == "cryptosign" and provider == "function":
        return "cryptosign-function"
    return f"{method}-{provider}"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["wrong-ticket", "unknown-authid", "empty-ticket"])
async def test_ticket_fails_cleanly(an, provider, case):
    real = an.creds["ticket"]["joe"]["ticket"]
    attempt = {"wrong-ticket": ("joe", real[:-1] + ("x" if real[-1] != "x" else "y")),
               "unknown-authid": ("nobody", real),
               "empty-ticket": ("joe", "")}[case]
    with pytest.raises(JoinFailed) as ei:
        await login(an.url(_tr("ticket", provider)), authenticators=tk(an, *attempt))
    assert_clean_failure(an, ei.value, real, attempt[1])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["wrong-secret-plain", "wrong-password-salted", "salted-key-as-password",
                                  "unknown-authid"])
async def test_wampcra_fails_cleanly(an, provider, case):
    alice, bob = an.creds["wampcra"]["alice"]["secret"], an.secret("bob_password")
    authid, secret = {
        "wrong-secret-plain": ("alice", alice + "x"),
        "wrong-password-salted": ("bob", bob + "x"),
        # the PBKDF2-derived key is not the password (it is what the client signs with)
        "salted-key-as-password": ("bob", an.secret("bob_derived_key")),
        "unknown-authid": ("nobody", alice),
    }[case]
    with pytest.raises(JoinFailed) as ei:
        await login(an.url(_tr("wampcra", provider)), authenticators=cra(an, authid, secret))
    assert_clean_failure(an, ei.value, alice, bob, an.secret("bob_derived_key"))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["unknown-key", "unknown-key-known-authid", "other-principals-key",
                                  "unknown-authid"])
async def test_cryptosign_fails_cleanly(an, provider, case):
    key, authid = {
        "unknown-key": ("mallory", None),
        "unknown-key-known-authid": ("mallory", "carol"),
        "other-principals-key": ("dave", "carol"),  # dave's key is not authorized for carol
        "unknown-authid": ("carol", "nobody"),
    }[case]
    with pytest.raises(JoinFailed) as ei:
        await login(an.url(_tr("cryptosign", provider)), authenticators=cs(an, key, authid))
    assert_clean_failure(an, ei.value, an.secret(key))


@needs_argon
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["wrong-password", "unknown-authid"])
async def test_scram_fails_cleanly(an, provider, case):
    real = an.secret("fred_password")
    authid, password = {"wrong-password": ("fred", real + "x"), "unknown-authid": ("nobody", real)}[case]
    with pytest.raises(JoinFailed) as ei:
        await login(an.url(_tr("scram", provider)), authenticators=scram(an, authid, password))
    assert_clean_failure(an, ei.value, real, password, an.creds["scram"]["fred"]["stored-key"])


async def test_hello_authrole_does_not_escalate(an):
    """HELLO.Details.authrole is a wish, not a grant: the principal's role wins."""
    from autobahn.wamp.auth import AuthTicket

    a = AuthTicket(authid="joe", ticket=an.creds["ticket"]["joe"]["ticket"], authrole="frontend")
    s = await login(an.url("ticket-static"), authenticators=a)
    try:
        assert s.joined.result().authrole == "user"
    finally:
        await s.shutdown()


async def test_authenticated_principal_cannot_join_another_realm(an):
    """joe (role `user`) asking for the authenticator's realm, where `user` does not exist."""
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-static"), realm=authnode.AUTH_REALM, authenticators=tk(an))
    assert ei.value.reason in DENIED | {"wamp.error.no_such_role"}
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-static"), realm="no.such.realm", authenticators=tk(an))
    assert ei.value.reason in DENIED | {"wamp.error.no_such_realm"}


# ---------------------------------------------------------------------------------------------
# the dynamic authenticator: what it is told, and how its refusals and failures reach the client


async def test_dynamic_authenticator_details(an):
    realm1_auth, other_auth = an.authenticators
    ticket = an.creds["ticket"]["joe"]["ticket"]
    s = await login(an.url("ticket-dynamic"), authenticators=tk(an))
    await s.shutdown()
    realm, authid, details = realm1_auth.calls[-1]
    assert (realm, authid) == ("realm1", "joe")
    assert details["authmethod"] == "ticket" and details["ticket"] == ticket
    assert "127.0.0.1" in str(details["transport"]["peer"])

    s = await login(an.url("cryptosign-dynamic"), authenticators=cs(an, "carol"))
    await s.shutdown()
    realm, authid, details = realm1_auth.calls[-1]
    assert authid is None and details["authmethod"] == "cryptosign"
    assert details["authextra"]["pubkey"] == an.creds["cryptosign"]["carol"]["pubkey"]

    # wampcra-dynamic uses authenticator-realm: the authenticator on authrealm is asked
    n = len(other_auth.calls)
    s = await login(an.url("wampcra-dynamic"), authenticators=cra(an, "alice"))
    await s.shutdown()
    assert len(other_auth.calls) == n + 1
    realm, authid, details = other_auth.calls[-1]
    assert (realm, authid, details["authmethod"]) == ("realm1", "alice", "wampcra")


@pytest.mark.parametrize("provider", ["dynamic", "function"])
@pytest.mark.parametrize("authid,reasons", [
    ("denied", {"wamp.error.not_authorized"}),
    ("badrole", DENIED | {"wamp.error.no_such_role"}),
    ("badrealm", DENIED | {"wamp.error.no_such_realm"}),
    ("badprincipal", DENIED),
])
async def test_authenticator_refusals(an, provider, authid, reasons):
    with pytest.raises(JoinFailed) as ei:
        await login(an.url(f"ticket-{provider}"), authenticators=tk(an, authid, "some-ticket"))
    assert ei.value.reason in reasons, (ei.value.reason, ei.value.message)
    if authid == "denied" and provider == "dynamic":
        assert ei.value.message == "custom denial from the authenticator"  # forwarded, as Crossbar.io does
    an.assert_alive()


async def test_authenticator_not_registered(an):
    """``authenticator`` names a procedure nobody registered: ABORT, not a hang."""
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-dynamic-missing"), authenticators=tk(an))
    assert ei.value.reason.startswith("wamp.error."), ei.value.reason
    assert an.creds["ticket"]["joe"]["ticket"] not in str(ei.value.message)
    an.assert_alive()


async def test_crashing_function_authenticator_leaks_nothing(an):
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-function"), authenticators=tk(an, "crash", "MY-SECRET-TICKET"))
    assert_clean_failure(an, ei.value, "MY-SECRET-TICKET")


async def test_crashing_dynamic_authenticator_leaks_nothing(an):
    """A plain exception in the authenticator procedure becomes wamp.error.runtime_error with the exception
    text; ce95b69 forwarded both to the unauthenticated peer (here: the ticket it was checking)."""
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-dynamic"), authenticators=tk(an, "crash", "MY-SECRET-TICKET"))
    assert_clean_failure(an, ei.value, "MY-SECRET-TICKET")


# ---------------------------------------------------------------------------------------------
# realms that require authentication cannot be joined anonymously

NO_ANONYMOUS = [name for name, _, auth in authnode.TRANSPORTS if "anonymous" not in auth] + ["web", "rawsocket",
                                                                                            "restricted"]


@pytest.mark.parametrize("transport", NO_ANONYMOUS)
@pytest.mark.parametrize("authmethods", [None, ["anonymous"]], ids=["no-authmethods", "anonymous"])
def test_no_anonymous_join(an, transport, authmethods):
    details = {"roles": raw.CLIENT_ROLES}
    if authmethods is not None:
        details["authmethods"] = authmethods
    if transport == "rawsocket":
        p = raw.RawSocketPeer(an.port("rawsocket"), serializer="msgpack")
    else:
        p = raw.WebSocketPeer(an.url(transport))
    with p:
        p.send([raw.HELLO, "realm1", details])
        msgs = p.recv_until_closed()
    assert len(msgs) == 1 and msgs[0][0] == raw.ABORT, msgs
    assert msgs[0][2] in DENIED | {"wamp.error.no_auth_method"}, msgs


async def test_no_anonymous_join_autobahn(an):
    with pytest.raises(JoinFailed) as ei:
        await login(an.url("ticket-static"), authenticators=anon(an))
    assert ei.value.reason in DENIED | {"wamp.error.no_auth_method"}


@pytest.mark.parametrize("offered,expected", [
    (["cryptosign", "ticket"], "cryptosign"),
    (["ticket", "cryptosign"], "ticket"),
    (["tls", "cookie", "wampcra"], "wampcra"),
    (["no-such-method", "anonymous"], "anonymous"),
])
def test_authmethod_negotiation(an, offered, expected):
    """Several methods on one transport: the first the client offers that the transport has."""
    authid = {"cryptosign": "carol", "ticket": "joe", "wampcra": "alice", "anonymous": None}[expected]
    with raw.WebSocketPeer(an.url("multi")) as p:
        p.send([raw.HELLO, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": offered, "authid": authid,
                                      "authextra": {"pubkey": an.creds["cryptosign"]["carol"]["pubkey"]}}])
        reply = p.recv()
    if expected == "anonymous":
        assert reply[0] == raw.WELCOME and reply[2]["authmethod"] == "anonymous", reply
    else:
        assert reply[0] == CHALLENGE and reply[1] == expected, reply


def test_no_common_authmethod(an):
    with raw.WebSocketPeer(an.url("multi")) as p:
        p.send([raw.HELLO, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": ["tls", "cookie", "x-custom"]}])
        msgs = p.recv_until_closed()
    assert msgs[0][0] == raw.ABORT and msgs[0][2] in DENIED | {"wamp.error.no_auth_method"}, msgs


# ---------------------------------------------------------------------------------------------
# authorization: role `user` (joe) may do only what its permissions allow
#   com.app.        prefix   -> call, subscribe
#   com.wild..data  wildcard -> publish, subscribe
#   com.exact.proc  exact    -> call, register
# role `frontend` (owner): everything under "" (to offer what joe calls and receives)

USER_DENIED = [
    # prefix rule
    ("publish", "com.app.news", None),
    ("register", "com.app.proc", None),
    ("subscribe", "com.", "prefix"),  # a pattern wider than the permission
    ("subscribe", "com.app", "prefix"),  # the permission's prefix is "com.app." (with the dot)
    ("call", "com.appx.proc", None),
    # wildcard rule
    ("call", "com.wild.x.data", None),
    ("register", "com.wild.x.data", None),
    ("publish", "com.wild.a.b.data", None),  # the wildcard is exactly one component
    ("subscribe", "com.wild.x.other", None),
    ("subscribe", "com..data", "wildcard"),
    # exact rule
    ("call", "com.exact.proc.sub", None),
    ("register", "com.exact.procx", None),
    ("register", "com.exact", "prefix"),
    ("subscribe", "com.exact.proc", None),
    ("publish", "com.exact.proc", None),
    # no rule at all
    ("call", "com.other.proc", None),
    ("register", "com.other.proc", None),
    ("publish", "com.other.topic", None),
    ("subscribe", "com.other.topic", None),
    # the authenticator's procedure and the router's meta API
    ("call", authnode.PROCEDURE, None),
    ("register", authnode.PROCEDURE, None),
    ("register", "com.auth.other", None),
    ("call", "wamp.session.list", None),
    ("subscribe", "wamp.session.on_join", None),
]


@pytest.fixture
async def sessions(an):
    async def _open(who="joe", transport="restricted", serializer="json"):
        return await login(an.url(transport), authenticators=tk(an, who), serializer=serializer)

    async for open_ in closing_sessions(an, _open):
        yield open_


async def _attempt(s, action, uri, match=None):
    if action == "publish":
        return await w(s.publish(uri, 1, options=PublishOptions(acknowledge=True)))
    if action == "subscribe":
        return await w(s.subscribe(lambda *a: None, uri, options=SubscribeOptions(match=match) if match else None))
    if action == "call":
        return await w(s.call(uri, 1))
    return await w(s.register(lambda *a: None, uri, options=RegisterOptions(match=match) if match else None))


@pytest.mark.parametrize("action,uri,match", USER_DENIED, ids=[f"{a}-{u}-{m or 'exact'}" for a, u, m in USER_DENIED])
async def test_user_role_denied(sessions, action, uri, match):
    joe = await sessions("joe")
    assert joe.joined.result().authrole == "user"
    with pytest.raises(ApplicationError) as ei:
        await _attempt(joe, action, uri, match)
    assert ei.value.error == "wamp.error.not_authorized", (ei.value.error, ei.value.args)
    assert joe.is_attached()


async def test_user_role_prefix_allows_call_and_subscribe(sessions):
    owner, joe = await sessions("owner"), await sessions("joe", serializer="msgpack")
    proc, topic = f"com.app.echo.{uid()}", f"com.app.news.{uid()}"
    await w(owner.register(lambda x: ["echo", x], proc))
    assert await w(joe.call(proc, 5)) == ["echo", 5]
    got: asyncio.Queue = asyncio.Queue()
    await w(joe.subscribe(lambda x: got.put_nowait(("exact", x)), topic))
    await w(joe.subscribe(lambda x: got.put_nowait(("prefix", x)), "com.app.news.", SubscribeOptions(match="prefix")))
    await w(owner.publish(topic, "hello", options=PublishOptions(acknowledge=True)))
    assert sorted([await w(got.get()), await w(got.get())]) == [("exact", "hello"), ("prefix", "hello")]


async def test_user_role_wildcard_allows_publish_and_subscribe(sessions):
    joe1, joe2 = await sessions("joe"), await sessions("joe", serializer="cbor")
    topic = f"com.wild.s{uid()}.data"
    got: asyncio.Queue = asyncio.Queue()
    await w(joe2.subscribe(lambda x: got.put_nowait(("exact", x)), topic))
    # the wildcard pattern of the permission itself matches exactly the URIs the permission covers
    sub = await w(joe2.subscribe(lambda x: got.put_nowait(("wildcard", x)), "com.wild..data",
                                 SubscribeOptions(match="wildcard")))
    await w(joe1.publish(topic, {"v": 1}, options=PublishOptions(acknowledge=True)))
    assert sorted([await w(got.get()), await w(got.get())]) == [("exact", {"v": 1}), ("wildcard", {"v": 1})]
    await w(sub.unsubscribe())


async def test_user_role_exact_allows_register_and_call(sessions):
    owner, joe = await sessions("owner"), await sessions("joe")
    reg = await w(joe.register(lambda a, b: a * b, "com.exact.proc"))
    try:
        assert await w(owner.call("com.exact.proc", 6, 7)) == 42
        assert await w(joe.call("com.exact.proc", 2, 3)) == 6
    finally:
        await w(reg.unregister())


@pytest.mark.parametrize("action,uri,match", [
    ("register", "com.exact.proc", "prefix"),
    ("subscribe", "com.wild.x.data", "prefix"),  # would receive com.wild.x.data.more.secret
])
async def test_user_pattern_wider_than_permission(sessions, action, uri, match):
    """A pattern must be covered by the permission for every URI it matches: allowed to register
    exactly com.exact.proc, joe may not register the prefix pattern com.exact.proc (and so receive
    calls to com.exact.proc.*). ce95b69 (like Crossbar.io) authorized the pattern string alone."""
    joe = await sessions("joe")
    with pytest.raises(ApplicationError) as ei:
        await _attempt(joe, action, uri, match)
    assert ei.value.error == "wamp.error.not_authorized"


@pytest.mark.parametrize("action,uri", [("register", "wamp.session.kill_all"), ("register", "wamp.my.proc"),
                                        ("publish", "wamp.session.on_join"), ("publish", "wamp.my.topic")])
async def test_wamp_uris_reserved_even_for_full_permissions(sessions, action, uri):
    owner = await sessions("owner")  # role frontend: "" prefix, all actions
    assert owner.joined.result().authrole == "frontend"
    with pytest.raises(ApplicationError) as ei:
        await _attempt(owner, action, uri)
    assert ei.value.error in ("wamp.error.not_authorized", "wamp.error.invalid_uri")


async def test_device_role(an, sessions):
    carol = await login(an.url("cryptosign-static"), authenticators=cs(an, "carol"))
    try:
        assert carol.joined.result().authrole == "device"
        await w(carol.publish(f"com.device.{uid()}", 1, options=PublishOptions(acknowledge=True)))
        with pytest.raises(ApplicationError) as ei:
            await w(carol.call("com.app.anything"))
        assert ei.value.error == "wamp.error.not_authorized"
    finally:
        await carol.shutdown()


# ---------------------------------------------------------------------------------------------
# autobahn-js on Node: ticket, wampcra (plain and salted), cryptosign (tweetnacl). No SCRAM.

JS_LIBS = js.CLIENT_VERSION


# name, transport, method, authid, credential, expected (authid, authrole, authprovider) or None for ABORT
JS_CASES = [
    ("ticket-static", "ticket-static", "ticket", "joe", "ticket", ("joe", "user", "static")),
    ("ticket-dynamic", "ticket-dynamic", "ticket", "joe", "ticket", ("joe", "user", "dynamic")),
    ("ticket-function", "ticket-function", "ticket", "joe", "ticket", ("joe", "user", "function")),
    ("ticket-rawsocket", "rawsocket", "ticket", "joe", "ticket", ("joe", "user", "static")),
    ("wampcra-plain-static", "wampcra-static", "wampcra", "alice", "secret", ("alice", "user", "static")),
    ("wampcra-salted-static", "wampcra-static", "wampcra", "bob", "secret", ("bob", "frontend", "static")),
    ("wampcra-salted-dynamic", "wampcra-dynamic", "wampcra", "bob", "secret", ("bob", "frontend", "dynamic")),
    ("wampcra-plain-function", "wampcra-function", "wampcra", "alice", "secret", ("alice", "user", "function")),
    # the salted principal with keylen 32: {"secret": "secret2", "salt": "salt123", "iterations": 100, "keylen": 32}
    ("wampcra-salted-keylen32-static", "wampcra-static", "wampcra", "salted", "secret", ("salted", "user", "static")),
    ("wampcra-salted-keylen32-dynamic", "wampcra-dynamic", "wampcra", "salted", "secret",
     ("salted", "user", "dynamic")),
    ("wampcra-salted-keylen32-function", "wampcra-function", "wampcra", "salted", "secret",
     ("salted", "user", "function")),
    ("cryptosign-static", "cryptosign-static", "cryptosign", None, "seed:carol", ("carol", "device", "static")),
    ("cryptosign-static-authid-web", "web", "cryptosign", "dave", "seed:dave", ("dave", "user", "static")),
    ("cryptosign-dynamic", "cryptosign-dynamic", "cryptosign", None, "seed:carol", ("carol", "device", "dynamic")),
    ("cryptosign-function", "cryptosign-function", "cryptosign", None, "seed:carol",
     ("carol", "device", "function")),
    ("anonymous-static", "anonymous-static", "anonymous", None, None, (None, "public", "static")),
    # failures
    ("ticket-wrong", "ticket-static", "ticket", "joe", "wrong", None),
    ("wampcra-wrong", "wampcra-static", "wampcra", "bob", "wrong", None),
    ("cryptosign-unknown-key", "cryptosign-static", "cryptosign", None, "seed:mallory", None),
    ("anonymous-refused", "ticket-static", "anonymous", None, None, None),
]


def _js_case(an, name, transport, method, authid, credential):
    url = f"rs://127.0.0.1:{an.port('rawsocket')}" if transport == "rawsocket" else an.url(transport)
    case = {"name": name, "url": url, "realm": "realm1", "serializer": "json", "method": method, "authid": authid}
    if credential is None:
        return case
    if credential.startswith("seed:"):
        case["seed"] = an.secret(credential[5:])
        return case
    if method == "ticket":
        secret = an.creds["ticket"][authid]["ticket"]
    else:
        secret = an.creds["wampcra"][authid]["secret"]
    if credential == "wrong":
        secret += "x"
    case["ticket" if method == "ticket" else "secret"] = secret
    return case


def _js_deps():
    if js.NODE is None:
        pytest.skip("Node.js is not installed: autobahn-js authentication tests skipped")
    js.install_deps()


_js_results: dict = {}


def js_results(an, lib: str) -> dict:
    """Run every case in one Node process per library (cached for the module)."""
    if lib in _js_results:
        return _js_results[lib]
    _js_deps()
    cases = [_js_case(an, *c[:5]) for c in JS_CASES]
    env = dict(os.environ, WAMP_AUTH_CASES=json.dumps(cases))
    proc = subprocess.run([js.NODE, *js.node_flags(lib), str(js.JS_DIR / "auth_scenarios.mjs"), "--lib", lib,
                           "--url", "ws://unused", "--timeout", "60"], cwd=js.JS_DIR, env=env, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL)
    result = js.last_json_line(proc.stdout)
    assert result is not None and result.get("ok"), f"auth_scenarios.mjs failed: {proc.stdout[-2000:]}\n" \
                                                    f"{proc.stderr[-2000:]}"
    assert result["client_version"] == JS_LIBS[lib]
    _js_results[lib] = result
    return result


@pytest.mark.parametrize("case", [c[0] for c in JS_CASES])
@pytest.mark.parametrize("lib", list(JS_LIBS))
def test_autobahn_js(an, lib, case):
    spec = {c[0]: c for c in JS_CASES}[case]
    sent = _js_case(an, *spec[:5])
    expected = spec[5]
    got = js_results(an, lib)["results"][case]
    assert "error" not in got, got
    if "unsupported" in got:
        pytest.skip(f"{lib}: {got['unsupported']}")
    if expected is None:
        assert "abort" in got, got
        assert got["abort"]["reason"] in DENIED | {"wamp.error.no_auth_method"}, got
        for k in ("ticket", "secret", "seed"):
            if sent.get(k):
                assert sent[k] not in json.dumps(got["abort"])
    else:
        assert "welcome" in got, got
        welcome = got["welcome"]
        authid, authrole, authprovider = expected
        if authid is None:
            assert ANON_AUTHID.match(welcome["authid"]), welcome
        else:
            assert welcome["authid"] == authid
        assert (welcome["authrole"], welcome["authmethod"], welcome["authprovider"]) == (
            authrole, spec[2], authprovider)
    an.assert_alive()
