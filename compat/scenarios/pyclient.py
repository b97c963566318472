"""autobahn-python scenarios of the differential check (compat/run.py).

    python pyclient.py client|auth URL SERIALIZER

URL is ws://host:port/path or rs://host:port.  Prints one JSON line mapping each
scenario to its outcome; every outcome is what the client observed (results,
error URIs with their payloads, received events), never a pass/fail judgement:
the runner compares the outcomes of the two routers.  ``COMPAT_PREFIX`` (a fresh
URI component per job) keeps parallel jobs apart; ``COMPAT_PORTS`` has the ports.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

from autobahn.wamp import auth as wauth
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, PublishOptions, RegisterOptions, SubscribeOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pyconnect import Refused, connect, leave  # noqa: E402

P = os.environ.get("COMPAT_PREFIX", "ptest")
PORTS = json.loads(os.environ.get("COMPAT_PORTS", "{}"))
sys.path.insert(0, os.environ.get("COMPAT_NODEDIR", "."))


def describe(v):
    if isinstance(v, bytes):
        return {"$bytes": len(v), "sha256": hashlib.sha256(v).hexdigest()[:16]}
    if isinstance(v, (list, tuple)):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): describe(x) for k, x in v.items()}
    if isinstance(v, str) and len(v) > 200:
        return {"$str": len(v), "sha256": hashlib.sha256(v.encode()).hexdigest()[:16]}
    return v


def result_outcome(r):
    if type(r).__name__ in ("Publication", "Subscription", "Registration"):
        return {"ok": type(r).__name__}
    if isinstance(r, CallResult):
        return {"ok": {"args": describe(list(r.results)), "kwargs": describe(r.kwresults)}}
    return {"ok": describe(r)}


def error_outcome(e):
    if isinstance(e, ApplicationError):
        return {"error": e.error, "args": describe(list(e.args)), "kwargs": describe(e.kwargs or {})}
    if isinstance(e, asyncio.TimeoutError):
        return {"exception": "timeout"}
    return {"exception": type(e).__name__}


async def outcome(aw, timeout=3.0):
    """What awaiting ``aw`` (or calling it, then awaiting) gave: {"ok": ...}, {"error": ...}
    or {"exception": ...} (also for what the client library refused before sending)."""
    try:
        if callable(aw):
            aw = aw()
        return result_outcome(await asyncio.wait_for(aw, timeout))
    except Exception as e:  # noqa: BLE001 -- the outcome is what we compare
        return error_outcome(e)


def ok(o):
    return "ok" in o


class Events:
    """Collects events of one subscription handler."""

    def __init__(self):
        self.items = []
        self.arrived = asyncio.Event()

    def handler(self, *args, details=None, **kwargs):
        item = {"args": describe(list(args)), "kwargs": describe(kwargs)}
        if details is not None:
            item["topic"] = details.topic
            item["publisher_disclosed"] = details.publisher is not None
        self.items.append(item)
        self.arrived.set()

    async def wait(self, n=1, timeout=2.0):
        try:
            async with asyncio.timeout(timeout):
                while len(self.items) < n:
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            pass
        return self.items


# ---------------------------------------------------------------------------------------------
# client scenarios

URI_FORMS = {
    "camelCase": "compat.{p}.camelCase.procName",
    "hyphen": "compat.{p}.with-hyphen.x-y",
    "digits": "compat.{p}.v2.123",
    "leading_digit": "compat.{p}.1abc",
    "upper": "compat.{p}.UPPER.Case",
    "underscore": "compat.{p}.snake_case",
    "unicode": "compat.{p}.caf\u00e9",
    "empty_component": "compat.{p}..x",
    "trailing_dot": "compat.{p}.x.",
    "space": "compat.{p}.has space",
    "hash": "compat.{p}.has#hash",
    "wamp_reserved": "wamp.{p}.mine",
}


async def sc_uri_forms(url, serializer, out):
    # each form on a session of its own: a router may end the session over an invalid URI
    for name, form in URI_FORMS.items():
        uri = form.format(p=P)
        s, _ = await connect(url, serializer)
        try:
            ev = Events()
            reg = await outcome(lambda: s.register(lambda x: ["got", x], uri))
            out[f"uri.{name}.register"] = reg if not ok(reg) else "ok"
            out[f"uri.{name}.call"] = await outcome(lambda: s.call(uri, 1))
            sub = await outcome(lambda: s.subscribe(ev.handler, uri, options=SubscribeOptions(details_arg="details")))
            out[f"uri.{name}.subscribe"] = sub if not ok(sub) else "ok"
            pub = await outcome(lambda: s.publish(uri, 1, options=PublishOptions(acknowledge=True, exclude_me=False)))
            out[f"uri.{name}.publish"] = pub if not ok(pub) else "ok"
            out[f"uri.{name}.events"] = await ev.wait(1, 1.0 if ok(sub) and ok(pub) else 0.2)
            out[f"uri.{name}.session"] = "attached" if s.is_attached() else "lost"
        finally:
            await leave(s)


async def sc_patterns(s, url, serializer, out):
    base = f"compat.{P}"
    ev = {}
    subs = {
        "prefix": (f"{base}.pfx", "prefix"),
        "wildcard": (f"{base}.wc..end", "wildcard"),
        "wildcard_first": (f"{base}..first", "wildcard"),
        "wildcard_last": (f"{base}.last.", "wildcard"),
        "prefix_empty_component": (f"{base}..x", "prefix"),
        "exact_empty_component": (f"{base}..x", "exact"),
        "bad_match": (f"{base}.bad", "fuzzy"),
    }
    for name, (uri, match) in subs.items():
        ev[name] = Events()
        o = await outcome(lambda: s.subscribe(ev[name].handler, uri, options=SubscribeOptions(match=match,
                                                                                       details_arg="details")))
        out[f"patterns.subscribe.{name}"] = o if not ok(o) else "ok"
    pubs = [f"{base}.pfx", f"{base}.pfx.a.b", f"{base}.pfxnot", f"{base}.wc.mid.end", f"{base}.wc.end",
            f"{base}.wc.a.b.end", f"{base}.a.first", f"{base}.last.z", f"{base}.zz.x"]
    for i, uri in enumerate(pubs):
        o = await outcome(lambda: s.publish(uri, i, options=PublishOptions(acknowledge=True, exclude_me=False)))
        out[f"patterns.publish.{uri[len(base) + 1:]}"] = o if not ok(o) else "ok"
    await asyncio.sleep(0.5)
    for name, e in ev.items():
        out[f"patterns.events.{name}"] = sorted(e.items, key=lambda x: json.dumps(x, sort_keys=True))

    # registrations with patterns: which one is invoked, and what the callee is told
    def proc(tag):
        def f(*args, details=None):
            return [tag, details.procedure if details else None]
        return f

    regs = {
        "exact": (f"{base}.rpc.a.op", "exact"),
        "prefix": (f"{base}.rpc.a", "prefix"),
        "prefix2": (f"{base}.rpc", "prefix"),
        "wildcard": (f"{base}.rpc..op", "wildcard"),
        "wildcard_empty_first": (f"{base}..other", "wildcard"),
    }
    for name, (uri, match) in regs.items():
        o = await outcome(lambda: s.register(proc(name), uri, options=RegisterOptions(match=match, details_arg="details")))
        out[f"patterns.register.{name}"] = o if not ok(o) else "ok"
    s2, _ = await connect(url, serializer)  # on a session of its own (a router may end it)
    o = await outcome(lambda: s2.register(proc("x"), f"{base}.rpc..bad", options=RegisterOptions(match="exact")))
    out["patterns.register.exact_empty_component"] = o if not ok(o) else "ok"
    out["patterns.register.exact_empty_component.session"] = "attached" if s2.is_attached() else "lost"
    await leave(s2)
    for uri in [f"{base}.rpc.a.op", f"{base}.rpc.a.other", f"{base}.rpc.b.op", f"{base}.rpc.b.x.y",
                f"{base}.rpcnot", f"{base}.x.other", f"{base}.none"]:
        out[f"patterns.call.{uri[len(base) + 1:]}"] = await outcome(lambda: s.call(uri))


async def sc_rpc(s, url, serializer, out):
    base = f"compat.{P}"
    out["rpc.container.hello"] = await outcome(lambda: s.call("compat.container.hello", "compat"))
    out["rpc.container.kwargs"] = await outcome(lambda: s.call("compat.container.hello", who="kw"))
    out["rpc.container.fail"] = await outcome(lambda: s.call("compat.container.fail"))
    out["rpc.container.fail_bare"] = await outcome(lambda: s.call("compat.container.fail_bare"))
    out["rpc.container.bad_args"] = await outcome(lambda: s.call("compat.container.hello", 1, 2, 3))
    out["rpc.container.caller_details"] = await outcome(lambda: s.call("compat.container.caller_details"))
    out["rpc.no_such_procedure"] = await outcome(lambda: s.call(f"{base}.nothing.here"))
    out["rpc.guest.hello"] = await outcome(lambda: s.call("compat.guest.hello", "compat"))

    def fail(*args, **kwargs):
        raise ApplicationError("compat.error.own", "own failure", {"a": [1, None]}, code=7, nested={"k": [True]})

    def fail_runtime():
        raise RuntimeError("boom")

    await s.register(fail, f"{base}.fail")
    await s.register(fail_runtime, f"{base}.fail_runtime")
    out["rpc.own.fail"] = await outcome(lambda: s.call(f"{base}.fail"))
    out["rpc.own.fail_runtime"] = await outcome(lambda: s.call(f"{base}.fail_runtime"))
    out["rpc.register_twice"] = await outcome(lambda: s.register(fail, f"{base}.fail"))
    out["rpc.call_invalid_uri"] = await outcome(lambda: s.call("compat..bad"))
    # shared registrations, on a session of its own (a router may end it)
    s, _ = await connect(url, serializer)
    r1 = await outcome(lambda: s.register(lambda: "one", f"{base}.shared", options=RegisterOptions(invoke="roundrobin")))
    r2 = await outcome(lambda: s.register(lambda: "two", f"{base}.shared", options=RegisterOptions(invoke="roundrobin")))
    out["rpc.shared.register"] = [r1 if not ok(r1) else "ok", r2 if not ok(r2) else "ok"]
    out["rpc.shared.calls"] = [await outcome(lambda: s.call(f"{base}.shared")) for _ in range(3)]
    r3 = await outcome(lambda: s.register(lambda: "three", f"{base}.shared", options=RegisterOptions(invoke="first")))
    out["rpc.shared.mismatched_policy"] = r3 if not ok(r3) else "ok"
    out["rpc.shared.session"] = "attached" if s.is_attached() else "lost"
    await leave(s)


async def sc_payloads(s, out):
    binary = bytes(range(256)) + b"\x00\xff\x00\\"
    out["payload.binary_args"] = await outcome(lambda: s.call("compat.container.echo", binary, [binary], b=binary))
    out["payload.empty_bytes"] = await outcome(lambda: s.call("compat.container.echo", b""))
    out["payload.make_bytes"] = await outcome(lambda: s.call("compat.container.make_bytes", 100000))
    values = [0, -1, 2**31, 2**53, -(2**53), 1.5, -0.25, True, False, None, "", "\u00fc\u00f1\u00ed\u00e7\u00f8d\u00e9 \u2713 \U0001F600",
              [], {}, {"nested": {"deep": [1, [2, [3]]]}}]
    out["payload.values"] = await outcome(lambda: s.call("compat.container.echo", *values, k=values))
    out["payload.kwargs_only"] = await outcome(lambda: s.call("compat.container.echo", a=1, b={"c": None}))
    for size in (100_000, 1_000_000, 1_900_000, 3_000_000):
        big = "x" * size
        out[f"payload.string_{size}"] = await outcome(lambda: s.call("compat.container.echo", big), timeout=20)
        if not s.is_attached():
            out[f"payload.string_{size}.session"] = "lost"
            return
    # own callee: bytes through the router without any translation
    await s.register(lambda *a, **kw: CallResult(*a, **kw), f"compat.{P}.echo")
    big_bin = bytes(i % 251 for i in range(1_000_000))
    out["payload.own_echo_binary_1MB"] = await outcome(lambda: s.call(f"compat.{P}.echo", big_bin), timeout=20)


async def sc_pubsub(s, url, serializer, out):
    base = f"compat.{P}.ps"
    ev = Events()
    await s.subscribe(ev.handler, f"{base}.t", options=SubscribeOptions(details_arg="details"))
    out["pubsub.publish_exclude_me_default"] = await outcome(lambda: s.publish(f"{base}.t", 1,
                                                                       options=PublishOptions(acknowledge=True)))
    T = f"{base}.t"
    ack = dict(acknowledge=True, exclude_me=False)
    me = s._session_id
    variants = [
        ("args_kwargs", lambda: s.publish(T, 2, "two", [3], k={"v": None}, options=PublishOptions(**ack))),
        ("no_payload", lambda: s.publish(T, options=PublishOptions(**ack))),
        ("exclude_me_by_id", lambda: s.publish(T, 4, options=PublishOptions(exclude=[me], **ack))),
        ("eligible_me", lambda: s.publish(T, 5, options=PublishOptions(eligible=[me], **ack))),
        ("eligible_empty", lambda: s.publish(T, 6, options=PublishOptions(eligible=[], **ack))),
        ("exclude_authrole", lambda: s.publish(T, 7, options=PublishOptions(exclude_authrole=["anonymous"], **ack))),
        ("eligible_authrole", lambda: s.publish(T, 8, options=PublishOptions(eligible_authrole=["anonymous"],
                                                                             **ack))),
        ("disclose_me", lambda: s.publish(T, 9, options=PublishOptions(disclose_me=True, **ack))),
    ]
    for name, fn in variants:
        out[f"pubsub.publish.{name}"] = await outcome(fn)
    out["pubsub.events"] = await ev.wait(5, 1.5)
    # a second session of the same client subscribes; the first publishes
    s2, _ = await connect(url, serializer)
    try:
        ev2 = Events()
        sub = await s2.subscribe(ev2.handler, f"{base}.u", options=SubscribeOptions(details_arg="details"))
        await s.publish(f"{base}.u", "to-s2", options=PublishOptions(acknowledge=True))
        out["pubsub.second_session"] = await ev2.wait(1)
        out["pubsub.unsubscribe"] = await outcome(lambda: sub.unsubscribe())
        out["pubsub.unsubscribe_twice"] = await outcome(lambda: sub.unsubscribe())
    finally:
        await leave(s2)
    # publish to a topic without subscribers, retained events
    out["pubsub.no_subscribers"] = await outcome(lambda: s.publish(f"{base}.none", options=PublishOptions(acknowledge=True)))
    await s.publish(f"{base}.retained", "kept", options=PublishOptions(acknowledge=True, retain=True))
    evr = Events()
    await s.subscribe(evr.handler, f"{base}.retained", options=SubscribeOptions(get_retained=True,
                                                                                details_arg="details"))
    out["pubsub.retained"] = await evr.wait(1, 1.0)


def meta_dict(d, keep=()):
    """A meta API dict with the values that vary per run replaced by their type."""
    if not isinstance(d, dict):
        return d
    return {k: (v if k in keep else type(v).__name__) for k, v in sorted(d.items())}


async def sc_meta(s, url, serializer, out):
    base = f"compat.{P}.meta"
    my = s._session_id
    out["meta.session.count_backend"] = await outcome(lambda: s.call("wamp.session.count", ["backend"]))
    lst = await outcome(lambda: s.call("wamp.session.list", ["backend"]))
    out["meta.session.list_backend"] = len(lst["ok"]) if ok(lst) else lst
    g = await outcome(lambda: s.call("wamp.session.get", my))
    out["meta.session.get_own"] = meta_dict(g["ok"], keep=("authrole", "authmethod", "authprovider",
                                                              "realm")) if ok(g) else g
    if ok(g):
        out["meta.session.get_own.transport"] = meta_dict(g["ok"].get("transport"), keep=("type", "protocol",
                                                                                          "serializer"))
    out["meta.session.get_unknown"] = await outcome(lambda: s.call("wamp.session.get", 424242))

    events = []

    def on_meta(topic):
        def h(*args, **kwargs):
            events.append((topic, args, kwargs))
        return h

    for t in ("wamp.session.on_join", "wamp.session.on_leave", "wamp.registration.on_create",
              "wamp.registration.on_register", "wamp.registration.on_unregister", "wamp.registration.on_delete",
              "wamp.subscription.on_create", "wamp.subscription.on_subscribe", "wamp.subscription.on_unsubscribe",
              "wamp.subscription.on_delete"):
        await s.subscribe(on_meta(t), t)

    reg = await s.register(lambda: None, f"{base}.proc")
    sub = await s.subscribe(lambda *a: None, f"{base}.topic")
    r = await outcome(lambda: s.call("wamp.registration.lookup", f"{base}.proc"))
    out["meta.registration.lookup"] = "same id" if r.get("ok") == reg.id else r
    out["meta.registration.lookup_unknown"] = await outcome(lambda: s.call("wamp.registration.lookup", f"{base}.nope"))
    r = await outcome(lambda: s.call("wamp.registration.match", f"{base}.proc"))
    out["meta.registration.match"] = "same id" if r.get("ok") == reg.id else r
    r = await outcome(lambda: s.call("wamp.registration.get", reg.id))
    out["meta.registration.get"] = meta_dict(r["ok"], keep=("uri", "match", "invoke")) if ok(r) else r
    r = await outcome(lambda: s.call("wamp.registration.list_callees", reg.id))
    out["meta.registration.list_callees"] = (r["ok"] == [my]) if ok(r) else r
    out["meta.registration.count_callees"] = await outcome(lambda: s.call("wamp.registration.count_callees", reg.id))
    r = await outcome(lambda: s.call("wamp.registration.list"))
    out["meta.registration.list"] = sorted(r["ok"]) if ok(r) and isinstance(r["ok"], dict) else r
    out["meta.registration.get_unknown"] = await outcome(lambda: s.call("wamp.registration.get", 424242))
    r = await outcome(lambda: s.call("wamp.subscription.lookup", f"{base}.topic"))
    out["meta.subscription.lookup"] = "same id" if r.get("ok") == sub.id else r
    r = await outcome(lambda: s.call("wamp.subscription.get", sub.id))
    out["meta.subscription.get"] = meta_dict(r["ok"], keep=("uri", "match")) if ok(r) else r
    r = await outcome(lambda: s.call("wamp.subscription.list_subscribers", sub.id))
    out["meta.subscription.list_subscribers"] = (r["ok"] == [my]) if ok(r) else r
    out["meta.subscription.count_subscribers"] = await outcome(lambda: s.call("wamp.subscription.count_subscribers",
                                                                      sub.id))
    r = await outcome(lambda: s.call("wamp.subscription.match", f"{base}.topic"))
    out["meta.subscription.match"] = ([sub.id] == r["ok"]) if ok(r) else r
    out["meta.subscription.get_unknown"] = await outcome(lambda: s.call("wamp.subscription.get", 424242))

    # a second session comes, registers, subscribes, leaves
    s2, d2 = await connect(url, serializer)
    sid2 = s2._session_id
    reg2 = await s2.register(lambda: None, f"{base}.proc2")
    sub2 = await s2.subscribe(lambda *a: None, f"{base}.topic2")
    await reg2.unregister()
    await sub2.unsubscribe()
    await s2.subscribe(lambda *a: None, f"{base}.topic3")
    await leave(s2)
    await asyncio.sleep(1.0)
    mine = []
    for topic, args, kwargs in events:
        if not args or args[0] != sid2:
            continue
        item = {"topic": topic, "nargs": len(args), "kwargs": sorted(kwargs)}
        if len(args) > 1:
            a1 = args[1]
            item["arg1"] = meta_dict(a1, keep=("uri", "match", "invoke", "authrole", "authmethod", "authprovider",
                                               "realm")) if isinstance(a1, dict) else type(a1).__name__
        mine.append(item)
    out["meta.events_of_second_session"] = mine


async def run_client(url, serializer):
    out = {}
    s, details = await connect(url, serializer)
    out["welcome"] = {"authrole": details.authrole, "authmethod": details.authmethod,
                      "authprovider": details.authprovider,
                      "roles": sorted((details.authextra or {}).keys())}
    for name, fn in (("uri_forms", lambda: sc_uri_forms(url, serializer, out)),
                     ("patterns", lambda: sc_patterns(s, url, serializer, out)),
                     ("rpc", lambda: sc_rpc(s, url, serializer, out)), ("pubsub", lambda: sc_pubsub(s, url, serializer, out)),
                     ("meta", lambda: sc_meta(s, url, serializer, out)),
                     ("payloads", lambda: sc_payloads(s, out))):
        if not s.is_attached():
            s, _ = await connect(url, serializer)
            out[f"{name}.reconnected"] = True
        try:
            await asyncio.wait_for(fn(), 60)
        except Exception as e:  # noqa: BLE001
            out[f"{name}.aborted"] = error_outcome(e)
    await leave(s)
    return out


# ---------------------------------------------------------------------------------------------
# authentication


def challenge_handler(method_secret):
    def on_challenge(session, challenge):
        m = challenge.method
        if m == "ticket":
            return method_secret["ticket"]
        if m == "wampcra":
            key = method_secret["secret"]
            if "salt" in challenge.extra:
                key = wauth.derive_key(key, challenge.extra["salt"], challenge.extra["iterations"],
                                       challenge.extra["keylen"])
            return wauth.compute_wcs(key, challenge.extra["challenge"])
        if m == "cryptosign":
            return method_secret["cryptosign"].on_challenge(session, challenge)
        if m in ("scram", "wamp-scram"):
            return method_secret["scram"].on_challenge(session, challenge)
        raise RuntimeError(f"unexpected challenge {m}")
    return on_challenge


async def auth_case(url, serializer, method, authid=None, source=None, **kw):
    import compat_secrets as S
    authextra = None
    secret = dict(kw)
    if method == "cryptosign":
        a = wauth.AuthCryptoSign(privkey=kw.get("seed", S.CS_SEED), authid=authid)
        secret["cryptosign"] = a
        authextra = a.authextra
    if method == "scram":
        a = wauth.AuthScram(authid=authid, password=kw["password"])
        secret["scram"] = a
        authextra = a.authextra
    try:
        s, d = await connect(url, serializer, authmethods=[method], authid=authid, authextra=authextra,
                             on_challenge=challenge_handler(secret), source=source)
    except Refused as e:
        return {"abort": e.reason}, None
    except Exception as e:  # noqa: BLE001
        return {"exception": type(e).__name__}, None
    w = {"authid": d.authid, "authrole": d.authrole, "authmethod": d.authmethod, "authprovider": d.authprovider,
         "authextra": sorted((d.authextra or {}).keys())}
    if method == "scram" and isinstance(d.authextra, dict):
        w["scram_verifier_ok"] = bool(d.authextra.get("scram_server_signature"))
    return {"welcome": w}, s


async def tls_cases(serializer):
    """The tls authmethod (client certificate) with the static and the dynamic provider."""
    import ssl

    pki = os.path.join(os.environ.get("COMPAT_NODEDIR", "."), "pki")
    out = {}
    for provider, port in (("static", PORTS["AUTH_TLS_STATIC_PORT"]), ("dynamic", PORTS["AUTH_TLS_DYNAMIC_PORT"])):
        for with_cert in (True, False):
            ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
            if with_cert:
                ctx.load_cert_chain(os.path.join(pki, "client.pem"), os.path.join(pki, "client.key"))
            name = f"auth.tls.{provider}.{'with_cert' if with_cert else 'without_cert'}"
            try:
                s, d = await connect(f"wss://localhost:{port}/", serializer, authmethods=["tls"], ssl_ctx=ctx,
                                     source=f"127.0.0.{70 + len(out)}", timeout=5)
                out[name] = {"welcome": {"authid": d.authid, "authrole": d.authrole, "authmethod": d.authmethod,
                                         "authprovider": d.authprovider}}
                await leave(s)
            except Refused as e:
                out[name] = {"abort": e.reason}
            except Exception as e:  # noqa: BLE001
                out[name] = {"exception": type(e).__name__}
    return out


def cookie_cases(serializer):
    """The cookie authmethod (transport auth_cookie: cookie store + static ticket + anonymous),
    spoken over a raw WebSocket, since the cookie must be read from and sent in the HTTP handshake."""

    import cbor2
    import msgpack
    from websockets.sync.client import connect as ws_connect

    enc = {"json": lambda m: json.dumps(m), "msgpack": lambda m: msgpack.packb(m, use_bin_type=True),
           "cbor": cbor2.dumps}[serializer]
    dec = {"json": json.loads, "msgpack": lambda b: msgpack.unpackb(b, raw=False), "cbor": cbor2.loads}[serializer]
    url = f"ws://127.0.0.1:{PORTS['AUTH_COOKIE_PORT']}/"
    roles = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
    out = {}

    def session(name, authmethods, authid=None, ticket=None, cookie=None, source=None):
        headers = {"Cookie": f"cbtid={cookie}"} if cookie else None
        try:
            with ws_connect(url, subprotocols=[f"wamp.2.{serializer}"], additional_headers=headers,
                            source_address=(source, 0) if source else None, open_timeout=5) as ws:
                set_cookie = ws.response.headers.get("Set-Cookie")
                new_cookie = set_cookie.split(";")[0].split("=", 1)[1] if set_cookie else None
                details = {"roles": roles, "authmethods": authmethods}
                if authid:
                    details["authid"] = authid
                ws.send(enc([1, "realm1", details]))
                msg = dec(ws.recv(timeout=5))
                if msg[0] == 4:
                    ws.send(enc([5, ticket or "", {}]))
                    msg = dec(ws.recv(timeout=5))
                if msg[0] == 2:
                    d = msg[2]
                    o = {"welcome": {k: d.get(k) for k in ("authid", "authrole", "authmethod", "authprovider")}}
                    ws.send(enc([6, {}, "wamp.close.close_realm"]))
                    try:
                        ws.recv(timeout=2)
                    except Exception:  # noqa: BLE001
                        pass
                else:
                    o = {"abort": msg[2] if msg[0] == 3 else msg[0]}
                o["set_cookie"] = "cbtid" if new_cookie else (set_cookie or None)
                out[f"auth.cookie.{name}"] = o
                return new_cookie or cookie
        except Exception as e:  # noqa: BLE001
            out[f"auth.cookie.{name}"] = {"exception": type(e).__name__}
            return None

    c = session("first_ticket_login", ["cookie", "ticket"], "ticket-user", "secret-ticket-123", source="127.0.0.60")
    if c:
        session("again_with_cookie", ["cookie"], cookie=c, source="127.0.0.61")
        session("again_cookie_then_ticket", ["cookie", "ticket"], cookie=c, source="127.0.0.62")
    session("unknown_cookie", ["cookie"], cookie="x" * 24, source="127.0.0.63")
    a = session("anonymous_login", ["anonymous"], source="127.0.0.64")
    if a:
        session("after_anonymous_cookie_only", ["cookie"], cookie=a, source="127.0.0.65")
    return out


async def run_auth(url, serializer):
    import compat_secrets as S
    st = f"ws://127.0.0.1:{PORTS['AUTH_STATIC_PORT']}/"
    dy = f"ws://127.0.0.1:{PORTS['AUTH_DYNAMIC_PORT']}/"
    if url.startswith("rs:"):
        st = None
        dy = f"rs://127.0.0.1:{PORTS['AUTH_DYNAMIC_RS_PORT']}"
    cases = [
        ("static.anonymous", st, "anonymous", None, {}),
        ("static.ticket.ok", st, "ticket", "ticket-user", {"ticket": "secret-ticket-123"}),
        ("static.ticket.limited", st, "ticket", "ticket-limited", {"ticket": "limited-ticket"}),
        ("static.ticket.wrong", st, "ticket", "ticket-user", {"ticket": "nope"}),
        ("static.ticket.unknown_authid", st, "ticket", "nobody", {"ticket": "x"}),
        ("static.wampcra.ok", st, "wampcra", "cra-user", {"secret": S.CRA_SECRET}),
        ("static.wampcra.wrong", st, "wampcra", "cra-user", {"secret": "wrong"}),
        ("static.wampcra.salted", st, "wampcra", "cra-salted", {"secret": S.CRA_SALTED_PASSWORD}),
        ("static.cryptosign.ok", st, "cryptosign", "cs-user", {}),
        ("static.cryptosign.unknown_key", st, "cryptosign", "cs-user", {"seed": "11" * 32}),
        ("static.scram.ok", st, "scram", "scram-user", {"password": S.SCRAM_PASSWORD}),
        ("static.scram.wrong", st, "scram", "scram-user", {"password": "wrong"}),
        ("static.not_offered", st, "cookie", None, {}),
        ("dynamic.anonymous", dy, "anonymous", None, {}),
        ("dynamic.ticket.ok", dy, "ticket", "dyn-ticket", {"ticket": "dyn-ticket-secret"}),
        ("dynamic.ticket.wrong", dy, "ticket", "dyn-ticket", {"ticket": "nope"}),
        ("dynamic.wampcra.ok", dy, "wampcra", "dyn-cra", {"secret": S.CRA_SECRET}),
        ("dynamic.wampcra.wrong", dy, "wampcra", "dyn-cra", {"secret": "wrong"}),
        ("dynamic.wampcra.salted", dy, "wampcra", "dyn-cra-salted", {"secret": S.CRA_SALTED_PASSWORD}),
        ("dynamic.wampcra.unknown", dy, "wampcra", "nobody", {"secret": "x"}),
        ("dynamic.cryptosign.ok", dy, "cryptosign", None, {}),
        ("dynamic.cryptosign.unknown_key", dy, "cryptosign", None, {"seed": "22" * 32}),
        ("dynamic.scram.ok", dy, "scram", "dyn-scram", {"password": S.SCRAM_PASSWORD}),
        ("dynamic.scram.wrong", dy, "scram", "dyn-scram", {"password": "wrong"}),
    ]
    out = {}
    for i, (name, u, method, authid, kw) in enumerate(cases):
        if u is None:
            continue
        # each case from a loopback address of its own: wampfabric throttles failed
        # authentications per peer address (router option auth_throttle, which Crossbar.io's
        # config check refuses, so the shared node directory cannot switch it off)
        try:
            o, s = await asyncio.wait_for(auth_case(u, serializer, method, authid, source=f"127.0.0.{20 + i}",
                                                    **kw), 20)
        except asyncio.TimeoutError:
            o, s = {"exception": "timeout"}, None
        if s is not None:
            role = o["welcome"]["authrole"]
            if role == "dynrole":
                for what in ("allowed", "denied", "dict"):
                    o[f"call.{what}"] = await outcome(lambda: s.call(f"compat.dyn.{what}.hello", "auth"))
                o["subscribe.denied"] = await outcome(lambda: s.subscribe(lambda: None, f"compat.dyn.denied.{P}"))
                o["publish.allowed"] = await outcome(lambda: s.publish(f"compat.dyn.allowed.{P}",
                                                               options=PublishOptions(acknowledge=True)))
                o["register.denied"] = await outcome(lambda: s.register(lambda: None, f"compat.dyn.denied.{P}"))
            elif role == "limited":
                o["call.open"] = await outcome(lambda: s.call(f"compat.open.{P}"))
                o["call.closed"] = await outcome(lambda: s.call("compat.container.hello"))
                o["register.exact"] = await outcome(lambda: s.register(lambda: None, "compat.exact.proc"))
                o["subscribe.wild_pattern"] = await outcome(lambda: s.subscribe(lambda: None, "compat.wild..data",
                                                                        options=SubscribeOptions(match="wildcard")))
                o["subscribe.wild_concrete"] = await outcome(lambda: s.subscribe(lambda: None, f"compat.wild.{P}.data"))
                o["subscribe.prefix_broader"] = await outcome(lambda: s.subscribe(lambda: None, "compat.wild",
                                                                          options=SubscribeOptions(match="prefix")))
                o["publish.wild"] = await outcome(lambda: s.publish(f"compat.wild.{P}.data",
                                                            options=PublishOptions(acknowledge=True)))
                o["publish.closed"] = await outcome(lambda: s.publish(f"compat.closed.{P}",
                                                              options=PublishOptions(acknowledge=True)))
            if role in ("dynrole", "limited", "user"):
                o["call.caller_details"] = await outcome(lambda: s.call("compat.container.caller_details"))
            await leave(s)
        # one outcome per check, so that a difference names the check
        out[f"auth.{name}"] = {k: v for k, v in o.items() if k in ("welcome", "abort", "exception")}
        for k, v in o.items():
            if k not in ("welcome", "abort", "exception"):
                out[f"auth.{name}.{k}"] = v
    if url.startswith("ws"):
        out.update(cookie_cases(serializer))
        out.update(await tls_cases(serializer))
    # what the dynamic authenticator / authorizer were given
    s, _ = await connect(f"rs://127.0.0.1:{PORTS['RS_PORT']}", "json")
    seen = await outcome(lambda: s.call("compat.backend.seen"))
    await leave(s)
    if ok(seen):
        for k, v in seen["ok"].items():
            out[f"auth.seen_by_backend.{k}"] = v
    return out


async def main():
    mode, url, serializer = sys.argv[1:4]
    if mode == "client":
        out = await run_client(url, serializer)
    elif mode == "auth":
        out = await run_auth(url, serializer)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out, default=repr), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
