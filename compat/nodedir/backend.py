"""The compat node's backend component: runs in the container worker of both routers.

Crossbar.io's containers run Twisted-flavoured autobahn components, so this is one
(wampfabric runs it on Twisted's asyncio reactor).  It provides

* ``compat.authenticate``: the dynamic authenticator of the ``auth_dynamic`` transports,
  for every authmethod (principals below);
* ``compat.authorize``: the dynamic authorizer of role ``dynrole`` (allows URIs under
  ``compat.dyn.allowed.`` and the backend's own ``compat.container.``);
* ``compat.container.*``: procedures called by the scenarios (echo, fail, hello, ...);
* ``compat.backend.seen``: what the authenticator and authorizer were given (the sorted
  keys of their arguments), so that the runner can compare what each router passes.
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet.defer import DeferredList

import compat_secrets as S  # written next to this file by compat/run.py


def _keys(d):
    return sorted(d.keys()) if isinstance(d, dict) else repr(type(d))


class Backend(ApplicationSession):
    seen = {}

    def authenticate(self, realm, authid, details):
        method = details.get("authmethod")
        self.seen.setdefault("authenticate." + str(method), {
            "realm": realm, "authid": authid, "details_keys": _keys(details),
            "authextra_keys": _keys(details.get("authextra") or {}),
        })
        if method == "anonymous":
            return {"role": "dynrole", "authid": "anon-dyn"}
        if method == "ticket":
            if authid == "dyn-ticket" and details.get("ticket") == "dyn-ticket-secret":
                return {"role": "dynrole", "extra": {"greeting": "hello ticket"}}
            if authid == "dyn-ticket-user" and details.get("ticket") == "dyn-ticket-secret":
                return {"role": "user"}
            raise ApplicationError("com.example.invalid_ticket", "wrong ticket")
        if method == "wampcra":
            if authid == "dyn-cra":
                return {"secret": S.CRA_SECRET, "role": "dynrole"}
            if authid == "dyn-cra-salted":
                return {"secret": S.CRA_SALTED_PASSWORD, "role": "user", "salt": S.CRA_SALT,
                        "iterations": S.CRA_ITERATIONS, "keylen": S.CRA_KEYLEN}
            raise ApplicationError("com.example.no_such_user", "no such user")
        if method == "cryptosign":
            pubkey = (details.get("authextra") or {}).get("pubkey")
            if pubkey == S.CS_PUBKEY:
                return {"pubkey": pubkey, "role": "dynrole", "authid": "dyn-cs"}
            raise ApplicationError("com.example.unknown_key", "unknown key")
        if method in ("scram", "wamp-scram"):
            if authid == "dyn-scram":
                return dict(S.SCRAM_CREDENTIAL, role="user")
            raise ApplicationError("com.example.no_such_user", "no such user")
        if method == "tls":
            transport = details.get("transport") or {}
            where = [k for k in ("peer_cert", "client_cert") if transport.get(k)]
            # Crossbar.io's TransportDetails name it peer_cert; record where this router put it
            self.seen.setdefault("authenticate.tls.certificate_in_transport_key", where)
            if where:
                return {"authid": "dyn-tls", "role": "user"}
            raise ApplicationError("com.example.no_certificate", "no client certificate")
        raise ApplicationError("com.example.unsupported", "unsupported authmethod %s" % method)

    def authorize(self, session, uri, action, options=None):
        self.seen.setdefault("authorize." + action, {
            "session_keys": _keys(session), "authrole": session.get("authrole"),
            "options_keys": _keys(options) if options is not None else None,
        })
        if uri.startswith("compat.dyn.allowed.") or uri.startswith("compat.container."):
            return True
        if uri.startswith("compat.dyn.dict."):
            return {"allow": True, "disclose": True, "cache": False}
        return False

    def get_seen(self):
        return self.seen

    def echo(self, *args, **kwargs):
        from autobahn.wamp.types import CallResult
        return CallResult(*args, **kwargs)

    def fail(self, *args, **kwargs):
        raise ApplicationError("compat.error.custom", "custom failure", 42, [1, {"x": None}],
                               detail={"nested": {"list": [1, 2.5, "three"]}}, flag=True)

    def fail_no_payload(self):
        raise ApplicationError("compat.error.bare")

    def make_bytes(self, n):
        return bytes(i % 256 for i in range(n))

    def hello(self, who="world"):
        return "hello %s from the container" % who

    def caller_details(self, details=None):
        return {"caller": details.caller is not None, "caller_authid": details.caller_authid,
                "caller_authrole": details.caller_authrole, "procedure": details.procedure}

    def onJoin(self, details):
        regs = [
            self.register(self.authenticate, "compat.authenticate"),
            self.register(self.authorize, "compat.authorize"),
            self.register(self.get_seen, "compat.backend.seen"),
            self.register(self.echo, "compat.container.echo"),
            self.register(self.fail, "compat.container.fail"),
            self.register(self.fail_no_payload, "compat.container.fail_bare"),
            self.register(self.make_bytes, "compat.container.make_bytes"),
            self.register(self.hello, "compat.container.hello"),
            self.register(self.caller_details, "compat.container.caller_details",
                          options=RegisterOptions(details_arg="details")),
            self.register(self.hello, "compat.dyn.allowed.hello"),
            self.register(self.hello, "compat.dyn.denied.hello"),
            self.register(self.hello, "compat.dyn.dict.hello"),
        ]
        return DeferredList(regs, fireOnOneErrback=True, consumeErrors=True)
