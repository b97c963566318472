"""The HTTP bridge: web services that let any HTTP client publish and call on a realm
(Crossbar.io's "HTTP bridge": ``publisher``, ``caller``, ``webhook``).

Each service has one in-process WAMP session (``transport/local.py``: no serialization
between the service and the router) on its configured ``realm`` under its configured
``role``; the realm's authorization of that role applies to everything the service does.
The session joins when the first request needs it and the realm runs (until then requests
get 503), and joins again after the realm was restarted.

Requests (Crossbar.io's shapes; docs/web.md):

- ``publisher``: POST ``{"topic", "args", "kwargs", "options"}`` -> PUBLISH (acknowledged)
  -> ``{"id": publication_id}``;
- ``caller``: POST ``{"procedure", "args", "kwargs", "options"}`` -> CALL -> ``{"args": [...],
  "kwargs": {...}}`` (a single result is ``{"args": [value]}``); ``options.timeout`` (ms) is
  the WAMP call timeout; an HTTP client that goes away cancels its call;
- ``webhook``: any POST -> an event ``{"headers": {Name: [value]}, "body": text}`` on the
  configured topic, answered 202 with ``success_response``.

WAMP errors come back as Crossbar.io answers them, 200 with ``{"error", "args", "kwargs"}``,
except these, which are refusals or failures of the bridge rather than answers of the
application: ``wamp.error.not_authorized`` 403, ``wamp.error.timeout`` 504,
``crossbar.error.max_concurrency_reached`` 503, the service session gone 503.  A request
the bridge refuses gets a 4xx with the JSON ``{"error": text, "args": [], "kwargs": {}}``.

Signed requests (``key`` and ``secret``): the query carries ``key``, ``timestamp``
(``2011-10-14T16:59:51.123Z``, UTC), ``seq`` and ``nonce`` (integers) and ``signature``,
the URL-safe base64 of HMAC-SHA256 under the secret over key | timestamp | seq | nonce |
body (the query values as sent).  A timestamp further than ``timestamp_delta_limit``
seconds from the router's clock is refused, and so is a request whose nonce (with its
timestamp) was seen before: ``ReplayGuard`` remembers them, bounded.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import hmac
import ipaddress
import logging
import time
from collections import OrderedDict
from functools import partial

import orjson

from ..client.session import ApplicationError, Result
from ..config import webbridge as defaults
from ..protocol import errors as E
from ..protocol.crossbar_errors import MAX_CONCURRENCY_REACHED
from ..protocol.errors import SerializationError
from ..protocol.serializers import SERIALIZERS_BY_NAME
from ..protocol.uri import quote_uri
from ..transport.local import connect_local
from ..transport.web import WebService

log = logging.getLogger("wampfabric.web.bridge")

_JSON = SERIALIZERS_BY_NAME["json"]  # WAMP's JSON: bytes as "\0" + base64, both ways

#: WAMP errors that are not the application's answer but the bridge's refusal or failure
ERROR_STATUS = {E.NOT_AUTHORIZED: 403, E.TIMEOUT: 504, MAX_CONCURRENCY_REACHED: 503}

#: the PUBLISH options a publisher request may set (Crossbar.io's list, without forward_for:
#: only router-to-router links may send that)
PUBLISH_OPTIONS = ("retain", "exclude_me", "exclude_authid", "exclude_authrole", "exclude", "eligible_authid",
                   "eligible_authrole", "eligible")

#: signed requests remembered against replays (nonce, timestamp) per service
REPLAY_MEMORY = 100_000

_CORS_METHODS = "POST,PUT,OPTIONS"




def cors_headers(request) -> list:
    """What every answer of the HTTP bridge and of long-poll carries: CORS for the request's origin
    (any, as Crossbar.io), credentials allowed, never cached."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        origin = "*"
    headers = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
               ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")]
    asked = request.headers.get("access-control-request-headers")
    if asked is not None:
        headers.append(("Access-Control-Allow-Headers", asked))
    return headers


def _when_published(fut: asyncio.Future, on_published, on_error) -> None:
    """An acknowledged publish's answer: ``on_published(publication ID)`` or ``on_error(exception)``
    (nothing when it was cancelled: the session went); a callback, no task per request."""
    def done(f):
        if f.cancelled():
            return
        exc = f.exception()
        if exc is not None:
            on_error(exc)
        else:
            on_published(f.result())
    fut.add_done_callback(done)

class Unavailable(Exception):
    """The service's WAMP session cannot be had now (realm not running, role missing ...)."""


class Refused(Exception):
    """A request the bridge refuses: HTTP ``status`` and what was wrong."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


class ServiceSession:
    """The in-process WAMP session of one bridge service on ``realm`` as ``role``."""

    def __init__(self, router, realm: str, role: str, peer: str):
        self.router = router
        self.realm = realm
        self.role = role
        self.peer = peer
        self.session = None
        self._joining: asyncio.Future | None = None

    def ready(self):
        """The joined session, or None (then ``await get()``)."""
        s = self.session
        return s if s is not None and s.is_attached else None

    async def get(self):
        s = self.ready()
        if s is not None:
            return s
        if self.realm not in self.router.realms:
            raise Unavailable(f"realm '{self.realm}' is not running")
        if self._joining is None:
            self._joining = asyncio.ensure_future(self._join())
            self._joining.add_done_callback(self._joined)
        return await asyncio.shield(self._joining)

    async def _join(self):
        try:
            session = await connect_local(self.router, self.realm, role=self.role, peer=self.peer)
        except ApplicationError as e:
            raise Unavailable(f"cannot join realm '{self.realm}' as role '{self.role}': {e}") from None
        self.session = session
        log.info("HTTP bridge %s joined realm '%s' as role '%s' (session %s)", self.peer, self.realm, self.role,
                 session.session_id)
        return session

    def _joined(self, fut: asyncio.Future) -> None:
        self._joining = None
        if not fut.cancelled() and fut.exception() is not None and not isinstance(fut.exception(), Unavailable):
            log.error("HTTP bridge %s could not join realm '%s': %s", self.peer, self.realm, fut.exception())

    def close(self) -> None:
        if self._joining is not None:
            self._joining.cancel()
        s, self.session = self.session, None
        if s is not None and s.transport is not None:
            s.transport.close()


class ReplayGuard:
    """The signed requests a service has accepted, against replays: their (nonce, timestamp)
    in arrival order, at most ``limit``.  An entry goes once its timestamp is outside the
    window (a replay of it is refused as stale anyway); when the memory is full the oldest is
    forgotten, and from then on a timestamp not after the newest forgotten one is refused,
    since its nonce may have been among them (``horizon``)."""

    def __init__(self, window: float, limit: int = REPLAY_MEMORY):
        self.window = window  # seconds; 0: timestamps are not limited
        self.limit = limit
        self.seen: OrderedDict = OrderedDict()  # (nonce, timestamp) -> None, oldest arrival first
        self.horizon = float("-inf")

    def check(self, nonce: int, timestamp: float, now: float) -> str | None:
        """None if the request is fresh (it is then remembered), else why it is refused."""
        seen = self.seen
        if self.window:
            edge = now - self.window
            while seen:
                oldest = next(iter(seen))
                if oldest[1] >= edge:
                    break
                del seen[oldest]
        if timestamp <= self.horizon:
            return "request refused: its timestamp is older than the replay memory reaches"
        key = (nonce, timestamp)
        if key in seen:
            return "request refused: replayed (this nonce and timestamp were used before)"
        seen[key] = None
        if len(seen) > self.limit:
            (_, ts), _ = seen.popitem(last=False)
            self.horizon = max(self.horizon, ts)
        return None


def _parse_timestamp(text: str) -> float:
    """Crossbar.io's signed-request timestamp (``%Y-%m-%dT%H:%M:%S.%fZ``, UTC) as a Unix time."""
    if not text.endswith("Z") or "." not in text:
        raise ValueError
    whole, _, frac = text[:-1].partition(".")
    if not frac.isdigit() or len(frac) > 6:
        raise ValueError
    t = time.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(frac) / 10 ** len(frac)


def _client_ip(peer: str):
    """The IP address of a peer string (``tcp4:1.2.3.4:5``, ``tcp6:::1:5``), None for Unix sockets."""
    kind, _, rest = peer.partition(":")
    if kind not in ("tcp4", "tcp6"):
        return None
    host = rest.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _header_name(name: str) -> str:
    """A lower-case header name capitalized per word (``content-type`` -> ``Content-Type``)."""
    return "-".join(part.capitalize() for part in name.split("-"))


class BridgeService(WebService):
    """What the bridge services share: the service session, CORS headers, the request
    checks (method, content type, body size, signature, IP, TLS) and the error answers."""

    KIND = "?"
    decode_json = True
    signed = True  # key/secret options apply

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        options = config.get("options", {})
        self.options = options
        self.debug = bool(options.get("debug", False))
        self.max_body_size = options.get("post_body_limit") or defaults.DEFAULT_POST_BODY_LIMIT
        self.key = options.get("key") if self.signed else None
        secret = options.get("secret") if self.signed else None
        self.secret = secret.encode("utf-8") if secret else None
        self.timestamp_delta_limit = options.get("timestamp_delta_limit", defaults.DEFAULT_TIMESTAMP_DELTA_LIMIT)
        self.replays = ReplayGuard(self.timestamp_delta_limit)
        self.require_ip = [ipaddress.ip_network(n, strict=False) for n in options.get("require_ip", [])]
        self.require_tls = bool(options.get("require_tls", False))
        tid = getattr(transport, "transport_id", "?")
        self.wamp = ServiceSession(transport.router, config["realm"], config["role"],
                                   f"http-bridge:{self.KIND}:{tid}")

    def close(self) -> None:
        self.wamp.close()

    # -- answers -------------------------------------------------------------------

    def deny(self, request, status: int, text: str, extra=()) -> None:
        """A refused request: ``{"error": text, "args": [], "kwargs": {}}``."""
        if self.debug:
            log.info("HTTP bridge %s: %s refused (%d): %s", self.wamp.peer, request.peer, status, text)
        body = orjson.dumps({"error": text, "args": [], "kwargs": {}})
        self.send(request, status, body, extra)

    def send(self, request, status: int, body: bytes, extra=()) -> None:
        if request.responded or request.closed:
            return
        request.respond(status, body, [*cors_headers(request), *extra],
                        content_type="application/json; charset=utf-8")

    def fail(self, request, exc: BaseException) -> None:
        """A WAMP action failed: Crossbar.io's error body; the status after ``ERROR_STATUS``."""
        if isinstance(exc, ApplicationError):
            status = ERROR_STATUS.get(exc.error, 200)
            if exc.error == E.CANCELED and self.wamp.ready() is None:
                status = 503  # the service session went away (realm stopped) under the request
            res = {"error": exc.error, "args": exc.args_, "kwargs": exc.kwargs}
            try:
                body = _JSON.serialize(res)
            except SerializationError:
                body = orjson.dumps({"error": exc.error, "args": [], "kwargs": {}})
        else:
            log.error("HTTP bridge %s: %s: %s", self.wamp.peer, type(exc).__name__, exc)
            status = 500
            body = orjson.dumps({"error": "wamp.error.runtime_error", "args": ["internal error of the HTTP bridge"],
                                 "kwargs": {}})
        self.send(request, status, body)

    # -- requests ------------------------------------------------------------------

    def handle(self, request, subpath: str):
        method = request.method
        if method == "OPTIONS":
            allow = [("Allow", _CORS_METHODS), ("Access-Control-Allow-Methods", _CORS_METHODS)]
            request.respond(200, b"", [*cors_headers(request), *allow])
            return None
        if method not in ("POST", "PUT"):
            self.deny(request, 405, f"method {method} not allowed (only POST, PUT)", [("Allow", _CORS_METHODS)])
            return None
        try:
            payload = self.check(request)
        except Refused as r:
            self.deny(request, r.status, r.text)
            return None
        session = self.wamp.ready()
        if session is None:
            return self._when_joined(request, payload)
        return self.process(request, session, payload)

    async def _when_joined(self, request, payload):
        try:
            session = await self.wamp.get()
        except Unavailable as e:
            self.deny(request, 503, f"service unavailable: {e}")
            return
        if request.closed:
            return
        r = self.process(request, session, payload)
        if r is not None:
            await r

    def check(self, request):
        """The request's payload (a dict for JSON services, else the body's text), or ``Refused``."""
        headers = request.headers
        ctype = headers.get("content-type")
        if ctype is not None:
            parts = [p.strip().lower() for p in ctype.split(";")]
            if self.decode_json and parts[0] != "application/json":
                raise Refused(400, f"content type '{parts[0]}' not accepted (use application/json)")
            charset = "utf-8"
            for p in parts[1:]:
                name, eq, value = p.partition("=")
                if not eq:
                    continue
                if name.strip() == "charset":
                    charset = value.strip().strip('"')
            if charset not in ("utf-8", "utf8"):
                raise Refused(400, f"charset '{charset}' not accepted (use utf-8)")
        body = request.body
        if len(body) > self.max_body_size:
            raise Refused(413, f"request body of {len(body)} octets is longer than the limit of {self.max_body_size}")
        github_secret = self.options.get("github_secret")
        if github_secret:
            self.check_github_signature(request, github_secret.encode("utf-8"))
        if self.secret is not None:
            self.check_signature(request)
        if self.require_ip:
            ip = _client_ip(request.peer)
            if ip is None or not any(ip in net for net in self.require_ip):
                raise Refused(400, "request denied based on the client's IP address")
        if self.require_tls and not request.is_secure:
            raise Refused(400, "request denied: not using TLS")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "request body is not valid UTF-8") from None
        if not self.decode_json:
            return text
        if not body.strip():
            raise Refused(400, "request body is empty (a JSON object is expected)")
        try:
            payload = _JSON.unserialize_one(b"[" + body + b"]")[0]
        except (SerializationError, IndexError) as e:
            raise Refused(400, f"request body is not valid JSON: {e}") from None
        if type(payload) is not dict:
            raise Refused(400, "request body must be a JSON object")
        return payload

    def check_signature(self, request) -> None:
        args = request.args
        fields = {}
        for name in ("key", "timestamp", "seq", "nonce", "signature"):
            values = args.get(name)
            if not values:
                raise Refused(400, f"signed request required, but the query argument '{name}' is missing")
            fields[name] = values[0]
        now = time.time()
        try:
            ts = _parse_timestamp(fields["timestamp"])
        except ValueError:
            raise Refused(400, f"invalid timestamp {fields['timestamp'][:40]!r} (UTC, ISO 8601, like "
                               "'2011-10-14T16:59:51.123Z')") from None
        if self.timestamp_delta_limit and abs(now - ts) > self.timestamp_delta_limit:
            raise Refused(400, f"request expired: its timestamp is more than {self.timestamp_delta_limit} s off")
        numbers = {}
        for name in ("seq", "nonce"):
            try:
                numbers[name] = int(fields[name])
            except ValueError:
                raise Refused(400, f"invalid {name} {fields[name][:40]!r} (must be an integer)") from None
        if not hmac.compare_digest(fields["key"].encode("utf-8"), self.key.encode("utf-8")):
            raise Refused(401, "unknown key in signed request")
        mac = hmac.new(self.secret, None, hashlib.sha256)
        for name in ("key", "timestamp", "seq", "nonce"):
            mac.update(fields[name].encode("utf-8"))
        mac.update(request.body)
        expected = base64.urlsafe_b64encode(mac.digest())
        if not hmac.compare_digest(fields["signature"].encode("utf-8", "replace"), expected):
            raise Refused(401, "invalid request signature")
        problem = self.replays.check(numbers["nonce"], ts, now)
        if problem is not None:
            raise Refused(400, problem)

    @staticmethod
    def check_github_signature(request, secret: bytes) -> None:
        """GitHub's webhook signature: ``X-Hub-Signature-256`` (HMAC-SHA256) or, as Crossbar.io
        checks it, ``X-Hub-Signature`` (HMAC-SHA1) over the body."""
        headers = request.headers
        given = headers.get("x-hub-signature-256")
        algo, prefix = hashlib.sha256, "sha256="
        if given is None:
            given = headers.get("x-hub-signature")
            algo, prefix = hashlib.sha1, "sha1="
        if given is None:
            raise Refused(400, "GitHub signature missing")
        expected = prefix + hmac.new(secret, request.body, algo).hexdigest()
        if not hmac.compare_digest(given.strip().lower().encode("utf-8", "replace"), expected.encode("ascii")):
            raise Refused(400, "GitHub signature invalid")

    def process(self, request, session, payload):
        raise NotImplementedError


def _field(payload: dict, name: str, kind: type, default):
    """An optional member of a request (null, absent or empty: ``default``), of JSON type ``kind``."""
    value = payload.get(name)
    if not value:
        return default
    if type(value) is not kind:
        raise Refused(400, f"'{name}' must be {'a list' if kind is list else 'an object'}")
    return value


def _uri_of(payload: dict, name: str) -> str:
    if name not in payload:
        raise Refused(400, f"request body lacks the mandatory key '{name}'")
    value = payload[name]
    if type(value) is not str:
        raise Refused(400, f"'{name}' must be a string")
    return value


def _request_parts(payload: dict, name: str) -> tuple:
    """A publisher's or caller's request body: (``name``'s URI, args, kwargs, options); Refused
    when one is missing or of the wrong type."""
    return (_uri_of(payload, name), _field(payload, "args", list, []), _field(payload, "kwargs", dict, {}),
            _field(payload, "options", dict, {}))


class PublisherService(BridgeService):
    """``publisher``: POST JSON -> an acknowledged WAMP publish -> ``{"id": publication}``."""

    KIND = "publisher"

    def process(self, request, session, payload):
        try:
            topic, args, kwargs, options = _request_parts(payload, "topic")
        except Refused as r:
            self.deny(request, r.status, r.text)
            return None
        publish_options = {"acknowledge": True}
        for name in PUBLISH_OPTIONS:
            value = options.get(name)
            if value is not None:
                publish_options[name] = value
        try:
            fut = session.publish_payload(topic, args, kwargs, publish_options)
        except ApplicationError as e:
            self.fail(request, e)
            return None
        _when_published(fut, lambda publication: self.send(request, 200, b'{"id":%d}' % publication),
                        lambda e: self.fail(request, e))
        return None


class CallerService(BridgeService):
    """``caller``: POST JSON -> a WAMP call -> its result as JSON."""

    KIND = "caller"

    def process(self, request, session, payload):
        try:
            procedure, args, kwargs, options = _request_parts(payload, "procedure")
            call_options = {}
            timeout = options.get("timeout")
            if timeout is not None:
                if type(timeout) is not int or timeout < 0:
                    raise Refused(400, "'options.timeout' must be a non-negative integer (milliseconds)")
                if timeout:
                    call_options["timeout"] = timeout
        except Refused as r:
            self.deny(request, r.status, r.text)
            return None
        try:
            call = session.call_cb(procedure, args, kwargs, call_options, partial(self._answer, request),
                                   partial(self.fail, request))
        except ApplicationError as e:
            self.fail(request, e)
            return None
        # the HTTP client went away before the answer: CANCEL the call (callbacks dropped after an answer)
        request.add_close_callback(partial(session.cancel_call, call))
        return None

    def _answer(self, request, value) -> None:
        """The call's result (as ``ClientSession.call_cb`` hands it) as the response."""
        if request.closed:
            return
        if isinstance(value, Result):
            res = {}
            if value.args:
                res["args"] = value.args
            if value.kwargs:
                res["kwargs"] = value.kwargs
        else:
            res = {"args": [value]}
        try:
            body = _JSON.serialize(res)
        except SerializationError as e:
            self.deny(request, 502, f"the call's result cannot be sent as JSON: {e}")
            return
        self.send(request, 200, body)


class WebhookService(BridgeService):
    """``webhook``: any POST -> an event on ``options.topic``: ``{"headers", "body"}``."""

    KIND = "webhook"
    decode_json = False
    signed = False

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.topic = self.options["topic"]
        self.success_response = self.options.get("success_response", "OK").encode("utf-8")
        self.error_response = self.options.get("error_response", "NOT OK").encode("utf-8")

    def process(self, request, session, payload):
        message = {"headers": {_header_name(k): [v] for k, v in request.headers.items()}, "body": payload}
        try:
            fut = session.publish_payload(self.topic, [message], None, {"acknowledge": True})
        except ApplicationError as e:
            self._failed(request, e)
            return None
        _when_published(fut, lambda publication: self.send(request, 202, self.success_response),
                        lambda e: self._failed(request, e))
        return None

    def _failed(self, request, exc: BaseException) -> None:
        status = 500
        if isinstance(exc, ApplicationError):
            status = ERROR_STATUS.get(exc.error, 500)
        log.error("HTTP bridge %s: webhook from %s to %s failed: %s", self.wamp.peer, request.peer,
                  quote_uri(self.topic), exc)
        self.send(request, status, self.error_response)
