"""WAMP over HTTP long-poll (the WAMP spec's Advanced Profile transport, as Crossbar.io and
autobahn-js speak it): the ``longpoll`` web service.

Below the service's path:

- ``POST open`` with ``{"protocols": ["wamp.2.json", ...]}``: a new transport; the answer is
  ``{"transport": id, "protocol": chosen}`` (the first offered one we speak: json, msgpack,
  cbor, each also ``.batched``);
- ``POST <id>/send``: the body is one WAMP message (a batch for ``.batched``) for the router;
  answered 204;
- ``POST <id>/receive``: answered with what the router has sent meanwhile (one message, all
  of them when batched); when nothing is waiting the request is held until something is or
  ``request_timeout`` seconds have passed (then an empty 200, and the client polls again);
- ``POST <id>/close``: the transport and its session end; 204;
- ``GET <id>``: ``{"transport": id, "session": session id or null}``; ``GET`` on the service
  itself: a short HTML notice.

Each transport carries a ``RouterSession`` like a WebSocket connection does (``send`` and
``close`` for the session, ``on_message`` fed from send requests).  Bounds: at most
``MAX_TRANSPORTS`` transports per service; the outgoing queue of one at most
``queue_limit_messages`` / ``queue_limit_bytes`` (beyond: the transport is closed, its client
does not poll fast enough); a transport nobody sent to or polled for ``session_timeout``
seconds is closed and forgotten (a held receive request counts as polling, and a client
that goes away ends its held request).
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections import deque

import orjson

from .. import __version__
from ..config import defaults as router_defaults
from ..config import webbridge as defaults
from ..protocol.serializers import SERIALIZERS_BY_SUBPROTOCOL
from ..router.session import RouterSession
from ..transport.web import WebService
from .bridge import cors_headers

log = logging.getLogger("wampfabric.web.longpoll")

#: open transports per longpoll service
MAX_TRANSPORTS = 10_000

MIME_TYPES = {"json": "application/json", "msgpack": "application/x-msgpack", "cbor": "application/cbor"}

#: the protocols a client may choose, in the order a service offers them in its errors
PROTOCOLS = ("wamp.2.json", "wamp.2.msgpack", "wamp.2.cbor", "wamp.2.json.batched", "wamp.2.msgpack.batched",
             "wamp.2.cbor.batched")


def _answer(request, status: int, body: bytes = b"", content_type: str | None = None) -> None:
    if not request.responded and not request.closed:
        request.respond(status, body, cors_headers(request), content_type=content_type)


def _refuse(request, status: int, text: str) -> None:
    _answer(request, status, text.encode("utf-8") + b"\n", "text/plain; charset=utf-8")


class LongPollTransport:
    """One long-poll transport: the transport of its ``RouterSession``."""

    transport_type = "longpoll"

    __slots__ = ("service", "transport_id", "serializer", "protocol", "peer", "auth_config", "session", "queue",
                 "queued_bytes", "poll", "poll_timer", "flush_pending", "alive", "closed", "reaper", "loop",
                 "__weakref__")

    def __init__(self, service: "LongPollService", transport_id: str, protocol: str, peer: str):
        self.service = service
        self.transport_id = transport_id
        self.protocol = protocol
        self.serializer = SERIALIZERS_BY_SUBPROTOCOL[protocol]
        self.peer = peer
        self.auth_config = service.auth_config
        self.queue: deque = deque()
        self.queued_bytes = 0
        self.poll = None  # the held receive request
        self.poll_timer = None
        self.flush_pending = False
        self.alive = True  # a request came since the reaper last looked
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.reaper = self.loop.call_later(service.session_timeout, self._reap)
        self.session = RouterSession(service.transport.router, self)

    # -- the router session's side ----------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.queue.append(data)
        self.queued_bytes += len(data)
        service = self.service
        if len(self.queue) > service.queue_limit_messages or self.queued_bytes > service.queue_limit_bytes:
            log.warning("closing long-poll transport %s (%s): its client does not poll, %d messages (%d octets) "
                        "waiting", self.transport_id, self.peer, len(self.queue), self.queued_bytes)
            self.end()
            return
        if self.poll is not None and not self.flush_pending:
            # what the router sends in this loop turn goes out in one answer (batched protocols)
            self.flush_pending = True
            self.loop.call_soon(self._flush)

    def close(self) -> None:
        """The router closes the transport (after ABORT, or the reply to its GOODBYE): what is
        queued (that ABORT or GOODBYE) is still handed to the next receive request."""
        if self.closed:
            return
        self.closed = True
        self.loop.call_soon(self.session.on_close)
        if self.poll is not None:
            self._flush()
        if not self.queue:
            self.end()

    # -- the client's requests ----------------------------------------------------------

    def on_send(self, request) -> None:
        self.alive = True
        if self.closed:
            _refuse(request, 404, f"WAMP transport '{self.transport_id}' is closed")
            return
        _answer(request, 204)
        if request.body:
            self.session.on_message(request.body)

    def on_receive(self, request) -> None:
        self.alive = True
        if self.poll is not None:
            self._release_poll(b"")  # superseded by the new one
        if self.queue:
            self._respond(request)
            if self.closed and not self.queue:
                self.end()
            return
        if self.closed:
            self.end()
            _refuse(request, 404, f"WAMP transport '{self.transport_id}' is closed")
            return
        self.poll = request
        request.add_close_callback(lambda: self._poll_gone(request))
        self.poll_timer = self.loop.call_later(self.service.request_timeout, self._poll_timeout, request)

    def on_close(self, request) -> None:
        log.debug("long-poll transport %s closed by its client", self.transport_id)
        self.end()
        _answer(request, 204)

    def info(self, request) -> None:
        sid = self.session.session_id if not self.closed else None
        _answer(request, 200, orjson.dumps({"transport": self.transport_id, "session": sid}),
                "application/json; charset=utf-8")

    # -- internals -------------------------------------------------------------------

    def _respond(self, request) -> None:
        queue = self.queue
        if self.serializer.BATCHED:
            body = b"".join(queue)
            queue.clear()
            self.queued_bytes = 0
        else:
            body = queue.popleft()
            self.queued_bytes -= len(body)
        _answer(request, 200, body, MIME_TYPES[self.serializer.NAME])

    def _flush(self) -> None:
        self.flush_pending = False
        request = self.poll
        if request is None or not self.queue:
            return
        self._clear_poll()
        self._respond(request)
        if self.closed and not self.queue:
            self.end()

    def _clear_poll(self) -> None:
        self.poll = None
        timer, self.poll_timer = self.poll_timer, None
        if timer is not None:
            timer.cancel()

    def _release_poll(self, body: bytes) -> None:
        request = self.poll
        self._clear_poll()
        if request is not None:
            _answer(request, 200, body, MIME_TYPES[self.serializer.NAME])

    def _poll_timeout(self, request) -> None:
        if self.poll is request:
            self.poll_timer = None
            self._release_poll(b"")  # nothing came: the client polls again

    def _poll_gone(self, request) -> None:
        if self.poll is request:
            self._clear_poll()

    def _reap(self) -> None:
        self.reaper = None
        if self.alive or self.poll is not None:
            self.alive = False
            self.reaper = self.loop.call_later(self.service.session_timeout, self._reap)
            return
        log.info("closing long-poll transport %s (%s): no request for %s s", self.transport_id, self.peer,
                 self.service.session_timeout)
        self.end()

    def end(self) -> None:
        """The transport is over: its session leaves, a held request is answered, the service forgets it."""
        if self.reaper is not None:
            self.reaper.cancel()
            self.reaper = None
        self._release_poll(b"")
        self.queue.clear()
        self.queued_bytes = 0
        if not self.closed:
            self.closed = True
            # never inside the router's own processing (a send over the queue limit happens while
            # the broker walks a subscription's subscribers): the session leaves on the next turn
            self.loop.call_soon(self.session.on_close)
        self.service.forget(self)


class LongPollService(WebService):
    """``longpoll``: WAMP over HTTP long-poll below the service's path."""

    max_body_size = router_defaults.MAX_MESSAGE_SIZE

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        options = config.get("options", {})
        self.request_timeout = options.get("request_timeout", defaults.LONGPOLL_REQUEST_TIMEOUT)
        self.session_timeout = options.get("session_timeout", defaults.LONGPOLL_SESSION_TIMEOUT)
        self.queue_limit_bytes = options.get("queue_limit_bytes", defaults.LONGPOLL_QUEUE_LIMIT_BYTES)
        self.queue_limit_messages = options.get("queue_limit_messages", defaults.LONGPOLL_QUEUE_LIMIT_MESSAGES)
        self.debug_transport_id = options.get("debug_transport_id")
        self.auth_config = (getattr(transport, "config", None) or {}).get("auth")
        self.transports: dict[str, LongPollTransport] = {}

    def close(self) -> None:
        for t in list(self.transports.values()):
            t.end()

    def forget(self, t: LongPollTransport) -> None:
        if self.transports.get(t.transport_id) is t:
            del self.transports[t.transport_id]

    def handle(self, request, subpath: str):
        parts = [p for p in subpath.split("/") if p]
        method = request.method
        if method == "OPTIONS":
            request.respond(204, b"", [*cors_headers(request), ("Allow", "GET,POST,OPTIONS"),
                                       ("Access-Control-Allow-Methods", "GET,POST,OPTIONS")])
            return
        if not parts:
            if method not in ("GET", "HEAD"):
                _refuse(request, 405, "use POST <path>/open to open a WAMP-over-long-poll transport")
                return
            page = ("<!DOCTYPE html><html><head><title>WAMP over long-poll</title></head><body>"
                    f"<h1>wampfabric {html.escape(__version__)}</h1><p>This is a <b>WAMP-over-long-poll</b> "
                    "transport, not a web page: WAMP clients open a transport with POST to "
                    "<code>open</code> below this path.</p></body></html>")
            _answer(request, 200, page.encode("utf-8"), "text/html; charset=utf-8")
            return
        if parts == ["open"]:
            if method != "POST":
                _refuse(request, 405, "open a transport with POST")
                return
            self.open(request)
            return
        t = self.transports.get(parts[0])
        if t is None:
            _refuse(request, 404, f"no WAMP transport '{parts[0][:64]}'")
            return
        if len(parts) == 1:
            if method not in ("GET", "HEAD"):
                _refuse(request, 405, "use GET on a transport, POST on its send, receive and close")
                return
            t.info(request)
            return
        if len(parts) != 2 or parts[1] not in ("send", "receive", "close"):
            _refuse(request, 404, f"invalid WAMP transport operation '{'/'.join(parts[1:])[:64]}'")
            return
        if method != "POST":
            _refuse(request, 405, f"{parts[1]} takes POST")
            return
        op = parts[1]
        if op == "send":
            t.on_send(request)
        elif op == "receive":
            t.on_receive(request)
        else:
            t.on_close(request)

    def open(self, request) -> None:
        try:
            options = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            _refuse(request, 400, "could not parse the WAMP session open request body (JSON expected)")
            return
        if type(options) is not dict:
            _refuse(request, 400, "invalid type of the WAMP session open request (a JSON object expected)")
            return
        protocols = options.get("protocols")
        if type(protocols) is not list:
            _refuse(request, 400, "missing attribute 'protocols' (a list) in the WAMP session open request")
            return
        protocol = next((p for p in protocols if type(p) is str and p in PROTOCOLS), None)
        if protocol is None:
            _refuse(request, 400, f"no common protocol (I speak: {', '.join(PROTOCOLS)})")
            return
        if len(self.transports) >= MAX_TRANSPORTS:
            log.warning("long-poll service: refusing a transport for %s, %d are open", request.peer,
                        len(self.transports))
            _refuse(request, 503, "too many long-poll transports: try again later")
            return
        tid = self.debug_transport_id or secrets.token_hex(9)
        if tid in self.transports:
            _refuse(request, 503, f"transport '{tid}' (the configured debug_transport_id) is in use")
            return
        t = LongPollTransport(self, tid, protocol, request.peer)
        self.transports[tid] = t
        log.debug("long-poll transport %s opened for %s (%s)", tid, request.peer, protocol)
        _answer(request, 200, orjson.dumps({"transport": tid, "protocol": protocol}),
                "application/json; charset=utf-8")
