"""Router-side WAMP sessions (spec: basic/sessions), independent of transports.

A transport creates one ``RouterSession`` per connection and feeds it whole
messages (``on_message(bytes)``); the session answers through the transport's
``send(bytes)`` and ``close()``.  Everything is plain callbacks: no task,
coroutine or future per message.
"""

from __future__ import annotations

import logging
import os
import threading

from ..protocol import errors as E
from ..protocol.codes import (ABORT, AUTHENTICATE, CALL, CANCEL, CHALLENGE, ERROR, GOODBYE, HELLO, INVOCATION, PUBLISH,
                              REGISTER, SUBSCRIBE, UNREGISTER, UNSUBSCRIBE, WELCOME, YIELD)
from ..protocol.errors import ProtocolError, SerializationError
from ..protocol.messages import parse as parse_message
from .urimap import UriCache, pattern_key
from .ids import random_bytes, secure_id

log = logging.getLogger("wampfabric.router.session")

NEW, AUTHENTICATING, ESTABLISHED, CLOSING, CLOSED = range(5)



# Client roles and the features of them the router acts on, as bits of one int
# per session (idle sessions are the bulk of a router's memory: keeping the
# HELLO roles dict alive would cost many times the bits).
_CLIENT_FEATURES = {
    "caller": ("caller_identification", "call_timeout", "call_canceling", "progressive_call_results",
               "progressive_call_invocations", "payload_passthru_mode"),
    "callee": ("caller_identification", "call_trustlevels", "pattern_based_registration", "shared_registration",
               "call_timeout", "call_canceling", "progressive_call_results", "progressive_call_invocations",
               "payload_passthru_mode", "registration_revocation", "sharded_registration"),
    "publisher": ("publisher_identification", "subscriber_blackwhite_listing", "publisher_exclusion",
                  "payload_passthru_mode"),
    "subscriber": ("publisher_identification", "publication_trustlevels", "pattern_based_subscription",
                   "payload_passthru_mode", "subscription_revocation", "sharded_subscription"),
}
_ROLE_BITS: dict[str, int] = {}
_FEATURE_BITS: dict[tuple[str, str], int] = {}
for _role, _features in _CLIENT_FEATURES.items():
    _ROLE_BITS[_role] = 1 << (len(_ROLE_BITS) + len(_FEATURE_BITS))
    for _f in _features:
        _FEATURE_BITS[(_role, _f)] = 1 << (len(_ROLE_BITS) + len(_FEATURE_BITS))


def client_feature_bits(roles: dict) -> int:
    """Encode a HELLO's ``roles`` as role and feature bits (unknown names are ignored)."""
    bits = 0
    for role, val in roles.items():
        bits |= _ROLE_BITS[role]
        features = val.get("features")
        if isinstance(features, dict):
            for name, on in features.items():
                if on is True:
                    bits |= _FEATURE_BITS.get((role, name), 0)
    return bits


_AUTHID_ALPHABET = b"34679ACEFGHJKLMNPQRTUVWXYZ"  # 26 symbols without look-alikes
# byte b < 234 -> symbol b % 26 (uniform: 234 = 9 * 26); bytes >= 234 are dropped
_AUTHID_TABLE = bytes(_AUTHID_ALPHABET[b % 26] for b in range(256))
_AUTHID_DROP = bytes(range(234, 256))


def anonymous_authid() -> str:
    """Crossbar.io-style random authid for anonymous sessions: XXXX-XXXX-XXXX-XXXX-XXXX-XXXX.

    Every symbol is equally likely (rejection of bytes >= 234); joins are a hot path,
    so the work is done by bytes.translate rather than per character in Python."""
    sym = b""
    while len(sym) < 24:
        sym += random_bytes(32).translate(_AUTHID_TABLE, _AUTHID_DROP)
    s = sym[:24].decode("ascii")
    return f"{s[0:4]}-{s[4:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:24]}"


# credentials a session's upgrade request or our answer may carry: never shown to other sessions
_SECRET_HEADERS = frozenset(("cookie", "authorization", "proxy-authorization", "set-cookie"))


def transport_details(transport, credentials: bool = True) -> dict:
    """A session's transport as Crossbar.io 26.10 describes it (Autobahn's TransportDetails,
    marshalled): what the session meta API, ``wamp.session.on_join``, dynamic authenticators
    and dynamic authorizers get as ``transport``.  Built when asked, never per message or join.

    ``credentials`` False (the session meta API, which other client sessions call): the cookie
    ``http_cbtid`` and the Cookie / Authorization headers are left out.  Crossbar.io shows them to
    any session allowed ``wamp.session.get``, and a cbtid logs in as its session's user wherever
    cookie authentication is configured; only the trusted authenticators and authorizers get them.

    Crossbar.io's quirks are kept, because clients and authenticators are written against them:
    ``channel_type`` is "tcp" (or "tls") for Unix sockets too; ``channel_serializer`` is set for
    RawSocket only (None on WebSocket), while ``websocket_protocol`` is "wamp.2.<serializer>" on
    RawSocket too; the HTTP and WebSocket extension fields are None off WebSocket."""
    kind = getattr(transport, "transport_type", None)
    ser = getattr(transport, "serializer", None)
    if kind not in ("websocket", "rawsocket"):
        # in-process sessions (service agents, the function-call transport, worker pipes)
        local = ser is None or ser.SUBPROTOCOL is None
        return {
            "channel_type": "function" if local else "memory", "channel_framing": "native",
            "channel_serializer": "null" if local else ser.NAME, "own": None, "peer": transport.peer,
            "is_server": None, "own_pid": os.getpid() if not local else None, "own_tid": None, "own_fd": None,
            "is_secure": None, "channel_id": {}, "peer_cert": None, "websocket_protocol": None,
            "websocket_extensions_in_use": None, "http_headers_received": None, "http_headers_sent": None,
            "http_cbtid": None,
        }
    get_cid = getattr(transport, "channel_id", None)
    cid = get_cid("tls-unique") if get_cid is not None else None
    get_cert = getattr(transport, "peer_cert", None)
    cert = get_cert() if get_cert is not None else None
    secure = cid is not None or cert is not None
    websocket = kind == "websocket"
    headers_in = getattr(transport, "http_headers_received", None) if websocket else None
    headers_out = getattr(transport, "http_headers_sent", None) if websocket else None
    headers_in = (headers_in() if headers_in is not None else {}) if websocket else None
    headers_out = (headers_out() if headers_out is not None else {}) if websocket else None
    cbtid = getattr(transport, "cbtid", None) if websocket else None
    if not credentials and websocket:
        headers_in = {k: v for k, v in headers_in.items() if k.lower() not in _SECRET_HEADERS}
        headers_out = {k: v for k, v in headers_out.items() if k.lower() not in _SECRET_HEADERS}
        cbtid = None
    return {
        "channel_type": "tls" if secure else "tcp",
        "channel_framing": kind,
        "channel_serializer": None if websocket or ser is None else ser.NAME,
        "own": None,
        "peer": transport.peer,
        "is_server": True,
        "own_pid": os.getpid(),
        "own_tid": threading.get_native_id(),
        "own_fd": -1,
        "is_secure": secure,
        "channel_id": {"tls-unique": cid} if cid is not None else {},
        "peer_cert": cert,
        "websocket_protocol": ser.SUBPROTOCOL if ser is not None else None,
        "websocket_extensions_in_use": [] if websocket else None,  # no extension is negotiated
        "http_headers_received": headers_in,
        "http_headers_sent": headers_out,
        "http_cbtid": cbtid,
    }


# TransportDetails.CHANNEL_SERIALIZER ids (Crossbar.io/Autobahn): SessionDetails.serializer of RawSocket sessions
_SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3, "ubjson": 4, "flatbuffers": 5}


def session_info(session: RouterSession) -> dict:
    """A session as the session meta API describes it (``wamp.session.get``,
    ``wamp.session.on_join``): Crossbar.io 26.10's SessionDetails, marshalled.  Session
    resumption is not offered (as in Crossbar.io): ``resumed``/``resumable`` false.  Unlike
    Crossbar.io, the transport's cookie and credential headers are left out (see
    ``transport_details``)."""
    t = session.transport
    ser = getattr(t, "serializer", None)
    serializer = None
    if getattr(t, "transport_type", None) == "rawsocket" and ser is not None:
        serializer = _SERIALIZER_IDS.get(ser.NAME)  # Crossbar.io: the channel serializer's id on RawSocket
    realm = session.realm
    return {
        "realm": realm.name if realm is not None else None,
        "session": session.session_id,
        "authid": session.authid,
        "authrole": session.authrole,
        "authmethod": session.authmethod,
        "authprovider": session.authprovider,
        "authextra": session.authextra or {},
        "serializer": serializer,
        "transport": transport_details(t, credentials=False),  # other sessions see it: no cookies
        "resumed": False,
        "resumable": False,
        "resume_token": None,
    }


def authorizer_session(session: RouterSession) -> dict:
    """The session as a dynamic authorizer gets it (Crossbar.io 26.10's keys: fewer than
    ``session_info``; the transport in full)."""
    return {
        "session": session.session_id,
        "authid": session.authid,
        "authrole": session.authrole,
        "authmethod": session.authmethod,
        "authprovider": session.authprovider,
        "authextra": session.authextra or {},
        "transport": transport_details(session.transport),
    }


MAX_HELD = 1000  # WAMP messages a session may send while an authorizer is asked ...
MAX_HELD_BYTES = 32 * 1024 * 1024  # ... and their bytes (at least two messages of the default maximum size)
MAX_CACHED_ANSWERS = 10_000  # cached authorizer answers per session ...
MAX_CACHED_ANSWER_BYTES = 1024 * 1024  # ... and bytes of the URIs they keep alive


class PassThroughSerializer:
    """The "serializer" of in-process sessions (the realm service agents, the function-call
    transport): messages stay Python lists, so receivers must treat them as read-only."""

    NAME = "local"
    SUBPROTOCOL = None
    RAWSOCKET_ID = None
    BINARY = False
    BATCHED = False

    def serialize(self, msg: list) -> list:
        return msg

    def unserialize_one(self, data: list) -> list:
        return data

    def unserialize(self, data: list) -> list:
        return [data]


PASSTHROUGH = PassThroughSerializer()


class _Detached:
    """Stands in for the transport of a session whose connection is gone, so
    late sends are no-ops and the session <-> transport reference cycle is
    broken (plain refcounting frees both; the cyclic GC need not)."""

    __slots__ = ("peer",)
    serializer = None
    auth_config = None

    def __init__(self, peer: str):
        self.peer = peer

    def send(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class RouterSession:
    """One WAMP session as seen by the router."""

    __slots__ = (
        "router", "transport", "serializer", "send_raw", "state", "session_id", "realm", "authid", "authrole",
        "authmethod", "authprovider", "authextra", "role", "trusted", "client_bits", "subscriptions",
        "registrations", "pending_calls", "pending_invocations", "_inv_seq", "_pending_auth", "testaments",
        "authz_cache", "_held", "_held_size", "_challenged", "progressive_done", "rlink", "__weakref__",
    )

    def __init__(self, router, transport, trusted: bool = False):
        self.router = router
        self.transport = transport
        self.serializer = transport.serializer
        self.send_raw = transport.send
        self.state = NEW
        self.session_id = None
        self.realm = None
        self.authid = None
        self.authrole = None
        self.authmethod = None
        self.authprovider = None
        self.authextra = None
        self.role = None
        self.trusted = trusted
        self.client_bits = 0
        self.subscriptions = {}
        self.registrations = {}
        self.pending_calls = {}
        self.pending_invocations = {}
        self._inv_seq = 0
        self._pending_auth = None
        self.testaments = None  # {"detached": [...], "destroyed": [...]} once one is added
        self.authz_cache = None  # UriCache of dynamic authorizer answers: (uri, action) -> (allowed, disclose)
        self._challenged = False  # a CHALLENGE awaits its AUTHENTICATE
        self.progressive_done = None  # request IDs of recently completed progressive call invocations
        self._held = None  # messages held while a dynamic authorizer is asked
        self._held_size = 0  # their bytes
        # an rlink leg (rlink/, docs/clustering.md): set by the broker when the session subscribes
        # to RLINK_MARKER and its role names that URI in an exact permission (a catch-all prefix
        # permission is not enough; the in-process leg's trusted role is); such a session may send
        # forward_for, gets a publication's black/white lists and retain flag in its EVENT details,
        # and the dealer never hands a leg's call to another leg
        self.rlink = False

    # -- output -----------------------------------------------------------------

    def send(self, wmsg: list) -> None:
        self.send_raw(self.serializer.serialize(wmsg))

    def send_error(self, request_type: int, request: int, error: str, args: list | None = None) -> None:
        if args:
            self.send([ERROR, request_type, request, {}, error, args])
        else:
            self.send([ERROR, request_type, request, {}, error])

    def supports(self, role: str, feature: str) -> bool:
        """Did the client announce ``feature`` of ``role`` in its HELLO?"""
        return bool(self.client_bits & _FEATURE_BITS.get((role, feature), 0))

    def has_role(self, role: str) -> bool:
        return bool(self.client_bits & _ROLE_BITS.get(role, 0))

    # -- input ------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        """A complete message arrived from the transport."""
        if self._held is not None:
            # an earlier message waits for a dynamic authorizer: keep the order
            if self.serializer.BATCHED:
                # the transport message may hold many WAMP messages: each counts
                try:
                    self._hold([self.serializer.serialize(m) for m in self.serializer.unserialize(data)])
                except SerializationError as e:
                    self.protocol_violation(f"invalid {self.serializer.NAME} message: {e}")
            else:
                self._hold((data,))
            return
        ser = self.serializer
        if not ser.BATCHED:
            # the hot path: one message per transport message
            try:
                wmsg = ser.unserialize_one(data)
                msg = parse_message(wmsg)
            except SerializationError as e:
                self.protocol_violation(f"invalid {ser.NAME} message: {e}")
                return
            except ProtocolError as e:
                self.protocol_violation(str(e))
                return
            self._process(wmsg[0], msg)
            return
        try:
            wmsgs = ser.unserialize(data)
        except SerializationError as e:
            self.protocol_violation(f"invalid {ser.NAME} message: {e}")
            return
        if ser.NAME == "json" and self.state != ESTABLISHED:
            # batched JSON: answer in the separator the peer writes (autobahn's 0x18 or the spec's 0x1e)
            self.serializer = ser = ser.variant_for(data)
        for i, wmsg in enumerate(wmsgs):
            if self.state == CLOSED:
                return
            if self._held is not None:
                # the batch's rest waits behind a dynamic authorization, in order
                self._hold([ser.serialize(m) for m in wmsgs[i:]])
                return
            try:
                msg = parse_message(wmsg)
            except ProtocolError as e:
                self.protocol_violation(str(e))
                return
            self._process(wmsg[0], msg)

    def _hold(self, items) -> None:
        """Keep ``items`` (serialized WAMP messages) behind the message an authorizer decides
        about: at most MAX_HELD messages and MAX_HELD_BYTES bytes, else the session ends."""
        held = self._held
        held.extend(items)
        size = self._held_size = self._held_size + sum(map(len, items))
        if len(held) > MAX_HELD or size > MAX_HELD_BYTES:
            self._held = []
            self.abort("wamp.error.runtime_error", "too many messages while waiting for authorization")

    def _process(self, code: int, msg) -> None:
        try:
            self._dispatch(code, msg)
        except ProtocolError as e:
            self.protocol_violation(str(e))
        except Exception:  # a bug must not take the router down
            log.exception("internal error processing %s from session %s", type(msg).__name__, self.session_id)
            self.abort("wamp.error.runtime_error", "internal router error")

    def permission(self, uri: str, match: str, action: str, handler, msg):
        """``(allowed, disclose)`` for ``action`` on a URI or pattern, or None when a
        dynamic authorizer must be asked first (``handler(self, msg)`` then runs again)."""
        if match == "exact":
            answer = self.role.authorize(uri, action, self)
            key = uri
        else:
            answer = self.role.authorize_pattern(uri, match, action, self)
            key = pattern_key(uri, match)
        if answer is None:
            self.defer_for_authorization(handler, msg, key, action, uri)
        return answer

    def defer_for_authorization(self, handler, msg, key: str, action: str, uri: str | None = None) -> None:
        """Ask the role's authorizer about ``action`` on ``uri`` (cached under ``key``),
        then run ``handler(self, msg)`` with the answer; hold later messages meanwhile."""
        uri = key if uri is None else uri
        if self._held is None:
            self._held = []
            self._held_size = 0
        role = self.role

        def done(answer, keep: bool) -> None:
            held, self._held = self._held, None
            if self.state != ESTABLISHED:
                return  # the session left meanwhile: its held messages are moot
            same_role = self.role is role
            cache = None
            if same_role:
                cache = self.authz_cache
                if cache is None:  # bounded: emptied when full, a session cannot grow it without limit
                    cache = self.authz_cache = UriCache(MAX_CACHED_ANSWERS, MAX_CACHED_ANSWER_BYTES)
                # the handler's authorize() finds the answer here; it stays only if cacheable
                cache.put((key, action), answer, key)
            # (if the role changed meanwhile, the message is decided again under the new role)
            try:
                handler(self, msg)
            except Exception:
                log.exception("internal error processing a deferred message of session %s", self.session_id)
            if same_role and not keep and self.authz_cache is cache:
                cache.discard((key, action), key)
            if self._held is not None:  # the handler had to ask again: the rest waits behind it
                self._held.extend(held)
                self._held_size = sum(map(len, self._held))
                return
            self._held = held
            self._release_held()

        role.ask(self, uri, action, dict(getattr(msg, "options", None) or {}), done)

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if not held:
            return
        for i, data in enumerate(held):
            if self._held is not None:  # deferred again: keep the rest in order
                self._held.extend(held[i:])
                self._held_size = sum(map(len, self._held))
                return
            self.on_message(data)

    def _dispatch(self, code: int, msg) -> None:
        state = self.state
        if state == ESTABLISHED:
            realm = self.realm
            if code == CALL:
                realm.dealer.call(self, msg)
            elif code == YIELD:
                realm.dealer.yield_(self, msg)
            elif code == PUBLISH:
                realm.broker.publish(self, msg)
            elif code == ERROR:
                if msg.request_type == INVOCATION:
                    realm.dealer.invocation_error(self, msg)
                else:
                    raise ProtocolError(f"ERROR for request type {msg.request_type} cannot be sent by a client")
            elif code == SUBSCRIBE:
                realm.broker.subscribe(self, msg)
            elif code == UNSUBSCRIBE:
                realm.broker.unsubscribe(self, msg)
            elif code == REGISTER:
                realm.dealer.register(self, msg)
            elif code == UNREGISTER:
                realm.dealer.unregister(self, msg)
            elif code == CANCEL:
                realm.dealer.cancel(self, msg)
            elif code == GOODBYE:
                # spec basic/sessions "Session Closing": reply with goodbye_and_out
                self.send([GOODBYE, {}, E.GOODBYE_AND_OUT])
                self._leave()
                self.state = NEW  # the transport may carry a new session
                expect_hello = getattr(self.transport, "expect_hello", None)
                if expect_hello is not None:  # its HELLO timeout applies again
                    expect_hello()
            elif code == ABORT:
                self._leave()
                self.close_transport()
            else:
                raise ProtocolError(f"unexpected message {type(msg).__name__} in an established session")
        elif state == NEW:
            if code == HELLO:
                hello_arrived = getattr(self.transport, "hello_arrived", None)
                if hello_arrived is not None:  # the transport's HELLO timeout is over
                    hello_arrived()
                self._on_hello(msg)
            elif code == GOODBYE or code == ABORT:
                self.close_transport()
            else:
                raise ProtocolError(f"{type(msg).__name__} received before the session was established (HELLO expected)")
        elif state == AUTHENTICATING:
            if code == AUTHENTICATE:
                self._on_authenticate(msg)
            elif code == ABORT:
                self.state = CLOSED
                self.close_transport()
            else:
                raise ProtocolError(f"{type(msg).__name__} received while authenticating (AUTHENTICATE expected)")
        elif state == CLOSING:
            if code == GOODBYE:
                self.state = CLOSED
                self.close_transport()
            # anything else is dropped while waiting for the GOODBYE reply

    # -- session opening ----------------------------------------------------------

    def _on_hello(self, msg) -> None:
        details = msg.details
        roles = details.get("roles")
        if not isinstance(roles, dict) or not roles:
            raise ProtocolError("HELLO.Details.roles must be a non-empty dict")
        for name, val in roles.items():
            if name not in ("caller", "callee", "publisher", "subscriber"):
                raise ProtocolError(f"HELLO.Details.roles: invalid client role {name!r}")
            if not isinstance(val, dict):
                raise ProtocolError(f"HELLO.Details.roles.{name} must be a dict")
        self.client_bits = client_feature_bits(roles)
        self.router.authenticate(self, msg.realm, details)

    def _on_authenticate(self, msg) -> None:
        pending = self._pending_auth
        if pending is None or not self._challenged:
            raise ProtocolError("AUTHENTICATE without a pending CHALLENGE")
        self._challenged = False  # one AUTHENTICATE per CHALLENGE
        pending.authenticate(self, msg.signature, msg.extra)

    def begin_authentication(self, pending) -> None:
        """An authentication starts: from now on only AUTHENTICATE (after a CHALLENGE) or ABORT is valid."""
        self.state = AUTHENTICATING
        self._pending_auth = pending
        self._challenged = False

    def welcome(self, realm, authid: str, authrole: str, authmethod: str, authprovider: str,
                authextra: dict | None = None, role=None, session_id: int | None = None) -> None:
        """Authentication succeeded: join ``realm`` and send WELCOME (with
        ``session_id`` when a challenge already announced it)."""
        if self.state not in (NEW, AUTHENTICATING):
            return  # the connection went away while an authenticator decided: no ghost session
        self._pending_auth = None
        self._challenged = False
        # a transport may carry several sessions in turn (GOODBYE, then HELLO): nothing of
        # an earlier session's authorization or call state carries over
        self.authz_cache = None
        self.progressive_done = None
        self.session_id = session_id or secure_id()
        self.realm = realm
        self.authid = authid
        self.authrole = authrole
        self.authmethod = authmethod
        self.authprovider = authprovider
        self.authextra = authextra
        self.role = role if role is not None else realm.roles.get(authrole)
        if self.role is None:
            self.abort(E.NO_SUCH_ROLE, f"no role '{authrole}' on realm '{realm.name}'")
            return
        self.state = ESTABLISHED
        realm.attach(self)
        extra = self.router.welcome_extra(self)
        if authextra:
            extra = {**authextra, **extra}
        details = {
            "realm": realm.name,
            "authid": authid,
            "authrole": authrole,
            "authmethod": authmethod,
            "authprovider": authprovider,
            "authextra": extra,
            "roles": realm.router_roles,
        }
        self.send([WELCOME, self.session_id, details])

    def challenge(self, pending, method: str, extra: dict) -> None:
        if self.state != AUTHENTICATING or self._pending_auth is not pending:
            return
        self._challenged = True
        self.send([CHALLENGE, method, extra])

    # -- session closing ----------------------------------------------------------

    def abort(self, reason: str, message: str | None = None) -> None:
        """Send ABORT and close the transport (also from an established session)."""
        if self.state == CLOSED:
            return
        details = {"message": message} if message else {}
        try:
            self.send([ABORT, details, reason])
        finally:
            self._leave()
            self.state = CLOSED
            self.close_transport()

    def protocol_violation(self, reason: str) -> None:
        """spec basic/sessions "Protocol Violations": ABORT and close."""
        if len(reason) > 500:  # it may quote client data: never echo or log a huge string
            reason = f"{reason[:500]}... ({len(reason)} characters)"
        log.info("protocol violation from %s (session %s): %s", self.transport.peer, self.session_id, reason)
        self.abort(E.PROTOCOL_VIOLATION, reason)

    def goodbye(self, reason: str = E.CLOSE_NORMAL, message: str | None = None) -> None:
        """Router-initiated close (e.g. realm stopped, session killed)."""
        if self.state != ESTABLISHED:
            return
        self.send([GOODBYE, {"message": message} if message else {}, reason])
        self._leave()
        self.state = CLOSING

    def close_transport(self) -> None:
        self.transport.close()

    def on_close(self) -> None:
        """The transport is gone."""
        self._leave()
        self.state = CLOSED
        detached = _Detached(self.transport.peer)
        self.transport = detached
        self.send_raw = detached.send

    def _leave(self) -> None:
        if self.state == ESTABLISHED and self.realm is not None:
            self.realm.detach(self)
        pending, self._pending_auth = self._pending_auth, None
        if pending is not None:
            pending.cancel()

    def __repr__(self) -> str:
        return f"<RouterSession {self.session_id} {self.authid}@{self.realm.name if self.realm else None}>"

