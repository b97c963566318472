"""Client side of a WAMP session, independent of the transport.

The transport contract is the router's mirrored: the transport calls
``on_message(wmsg: list)`` with each received message (already decoded),
``protocol_violation(text)`` when what arrived cannot even be decoded, and
``on_close()`` when it is gone; the session calls ``transport.send_message(list)``
and ``transport.close()`` (and, for cryptosign channel binding,
``transport.channel_id(kind)`` when the transport has it).

Every received message is parsed and validated by ``protocol.messages.parse``
and checked against the session state (a client never receives HELLO or CALL,
WELCOME only while joining...).  A router that breaks the protocol gets ABORT
``wamp.error.protocol_violation`` with the reason and the connection is closed;
whoever waits on the session gets an ``ApplicationError`` saying what was wrong.

One exception: an in-process transport whose messages the router itself built
(``transport.local``: the router's own lists, never bytes from a peer) hands them
to ``on_router_message``, where an EVENT goes to its handlers without a second
validation (the router validated the PUBLISH it came from); every other message,
and an EVENT while the session is not established or with a passthru payload,
takes ``on_message``'s path.  Network and stdio transports always call
``on_message``.

Handlers may be plain functions or coroutine functions; the router-facing
paths stay callbacks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable

from ..protocol import errors as E
from ..protocol import messages as M
from ..protocol.codes import (ABORT, AUTHENTICATE, CALL, CANCEL, ERROR, EVENT, GOODBYE, HELLO, INVOCATION,
                              PUBLISH, NAMES, REGISTER, SUBSCRIBE, UNREGISTER, UNSUBSCRIBE, YIELD)
from ..protocol.errors import ProtocolError
from ..protocol.payload import args_tail


log = logging.getLogger("wampfabric.client")

CLIENT_ROLES = {
    "caller": {"features": {"caller_identification": True, "progressive_call_results": True,
                            "call_canceling": True, "call_timeout": True}},
    "callee": {"features": {"caller_identification": True, "pattern_based_registration": True,
                            "shared_registration": True, "progressive_call_results": True,
                            "registration_revocation": True, "call_canceling": True}},
    "publisher": {"features": {"publisher_identification": True, "subscriber_blackwhite_listing": True,
                               "publisher_exclusion": True}},
    "subscriber": {"features": {"publisher_identification": True, "pattern_based_subscription": True,
                                "subscription_revocation": True}},
}

#: the request a reply answers (a reply to a request of another type is a protocol violation)
_REQUEST_OF = {M.Result: CALL, M.Registered: REGISTER, M.Unregistered: UNREGISTER, M.Subscribed: SUBSCRIBE,
               M.Unsubscribed: UNSUBSCRIBE, M.Published: PUBLISH}


class AuthenticationError(Exception):
    """A CHALLENGE this client cannot answer (wrong method, missing TLS for channel binding...)."""


def hello_auth(authenticators) -> tuple[list, str | None, dict]:
    """HELLO's ``authmethods``, ``authid`` (the first one given) and merged ``authextra``."""
    methods, authid, authextra = [], None, {}
    for a in authenticators:
        if a.method in methods:
            raise ValueError(f"authentication method {a.method} given twice")
        methods.append(a.method)
        if authid is None:
            authid = a.authid
        authextra.update(a.authextra)
    return methods, authid, authextra


class ApplicationError(Exception):
    """A WAMP error: an error URI with optional args and kwargs."""

    def __init__(self, error: str, *args, **kwargs):
        super().__init__(error, *args)
        self.error = error
        self.args_ = list(args)
        self.kwargs = kwargs

    def __str__(self) -> str:
        extra = f": {self.args_[0]}" if self.args_ else ""
        return f"{self.error}{extra}"


class Result:
    """A call result with several positional and/or keyword results."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args, **kwargs):
        self.args = list(args)
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Result(args={self.args!r}, kwargs={self.kwargs!r})"


def _unpack(args, kwargs):
    if kwargs:
        return Result(*(args or ()), **kwargs)
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return Result(*args)


def _pack(value) -> list:
    """A return value as the tail of a YIELD (args, kwargs)."""
    if value is None:
        return []
    if isinstance(value, Result):
        return args_tail(value.args, value.kwargs)
    return [[value]]


def _run_handler(what: str, handler: Callable, args, kwargs) -> None:
    """Call an event or progress handler; a coroutine runs on as a task, an error is logged."""
    try:
        r = handler(*args, **kwargs)
        if r is not None and inspect.isawaitable(r):  # a plain handler's None costs no inspection
            asyncio.ensure_future(r)
    except Exception:
        log.exception("%s handler %s failed", what, getattr(handler, "__name__", handler))


def encode(serializer, msg: list, limit: int) -> bytes:
    """A message serialized for a transport whose peer takes at most ``limit`` octets."""
    data = serializer.serialize(msg)
    if len(data) > limit:
        raise ApplicationError(E.PAYLOAD_SIZE_EXCEEDED, f"message of {len(data)} octets exceeds the limit of {limit}")
    return data


def _app_args(m) -> tuple[list, dict]:
    """A parsed message's payload as (args, kwargs); a passthru payload is the one argument."""
    if m.payload is not None:
        return [m.payload], {}
    return m.args or [], m.kwargs or {}


class _CallReply:
    """Where the answer of a ``call_cb`` goes: stands in for the future of a pending request
    (``done``/``set_result``/``set_exception``), calling ``on_result`` or ``on_error`` once."""

    __slots__ = ("on_result", "on_error", "_done")

    def __init__(self, on_result: Callable, on_error: Callable):
        self.on_result = on_result
        self.on_error = on_error
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, value) -> None:
        self._finish(self.on_result, value)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(self.on_error, exc)

    def _finish(self, cb: Callable, value) -> None:
        self._done = True
        self.on_result = self.on_error = None
        try:
            cb(value)
        except Exception:
            log.exception("call result callback %s failed", getattr(cb, "__name__", cb))


class ClientSession:
    """One client session.  ``await join(realm)``, then register/call/publish/subscribe."""

    def __init__(self, transport=None):
        self.transport = transport
        self.session_id: int | None = None
        self.realm: str | None = None
        self.details: dict = {}
        #: why the session ended: (reason URI, message), None while it lasts
        self.close_reason: tuple[str, str] | None = None
        self._seq = 0
        self._pending: dict[int, tuple[int, asyncio.Future, Any]] = {}  # request -> (type, future, extra)
        self._procedures: dict[int, tuple[Callable, bool, bool]] = {}  # registration -> (endpoint, details, progress)
        self._handlers: dict[int, list] = {}  # subscription id -> [(handler, details)]
        self._invocations: dict[int, asyncio.Task] = {}
        self._progressing: set[int] = set()  # invocations that may still send progressive results
        self._welcome: asyncio.Future | None = None
        self._on_challenge: Callable | None = None
        self._authenticators: dict = {}
        self._goodbye_sent = False
        self._closed: asyncio.Future = asyncio.get_event_loop().create_future()
        self.on_leave: list[Callable] = []

    # -- plumbing ------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, msg: list) -> None:
        if self.transport is None:
            raise ApplicationError(E.CANCELED, "session is not connected")
        self.transport.send_message(msg)

    def _request(self, msg_type: int, msg: list, extra=None) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg[1]] = (msg_type, fut, extra)
        try:
            self._send(msg)
        except BaseException:
            del self._pending[msg[1]]
            raise
        return fut

    @property
    def is_attached(self) -> bool:
        return self.session_id is not None

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # -- session ---------------------------------------------------------------

    async def join(self, realm: str | None, authmethods=None, authid=None, authrole=None, authextra=None,
                   on_challenge: Callable | None = None, auth=None) -> dict:
        """Send HELLO and wait for WELCOME (returns its details); ABORT raises ``ApplicationError``.

        ``auth`` is a list of authenticators (``client.auth``); alternatively ``authmethods``
        with ``on_challenge(method, extra) -> (signature, extra)``."""
        details = {"roles": CLIENT_ROLES}
        if auth:
            methods, auth_authid, auth_extra = hello_auth(auth)
            authmethods = list(authmethods or ()) + [m for m in methods if m not in (authmethods or ())]
            authid = authid or auth_authid
            authextra = {**auth_extra, **(authextra or {})}
            self._authenticators = {a.method: a for a in auth}
        if authmethods:
            details["authmethods"] = authmethods
        if authid:
            details["authid"] = authid
        if authrole:
            details["authrole"] = authrole
        if authextra:
            details["authextra"] = authextra
        self._welcome = asyncio.get_running_loop().create_future()
        self._on_challenge = on_challenge
        self._send([HELLO, realm, details])
        return await self._welcome

    async def leave(self, reason: str = E.CLOSE_NORMAL) -> None:
        if self.session_id is None:
            return
        self._goodbye_sent = True
        self._send([GOODBYE, {}, reason])
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), 5)
        except asyncio.TimeoutError:
            self._lost("leave timed out")

    async def register(self, procedure: str, endpoint: Callable, options: dict | None = None,
                       details: bool = False, progress: bool = False) -> int:
        """Register ``endpoint``.  ``details=True`` passes the INVOCATION details as ``details=``;
        ``progress=True`` passes ``progress=`` (a function sending a progressive result, or None
        when the caller did not ask for them)."""
        req = self._next()
        return await self._request(REGISTER, [REGISTER, req, options or {}, procedure], (endpoint, details, progress))

    async def unregister(self, registration: int) -> None:
        req = self._next()
        await self._request(UNREGISTER, [UNREGISTER, req, registration], registration)

    async def call(self, procedure: str, *args, options: dict | None = None, on_progress: Callable | None = None,
                   **kwargs):
        """Call ``procedure``.  ``on_progress(*args, **kwargs)`` receives progressive results.
        Cancelling the awaiting task sends CANCEL (mode ``kill``)."""
        return await self.call_payload(procedure, args, kwargs, options, on_progress)

    async def call_payload(self, procedure: str, args=(), kwargs: dict | None = None, options: dict | None = None,
                           on_progress: Callable | None = None):
        """``call`` with the payload given as values: any keyword argument names pass, ``options``
        and ``on_progress`` included (a proxy forwarding somebody else's call needs that)."""
        req = self._next()
        options = options or {}
        if on_progress is not None:
            options = {**options, "receive_progress": True}
        fut = self._request(CALL, [CALL, req, options, procedure, *args_tail(list(args), kwargs or {})], on_progress)
        try:
            return await fut
        except asyncio.CancelledError:
            if self._pending.pop(req, None) is not None and self.transport is not None:
                self._send([CANCEL, req, {"mode": "kill"}])
            raise

    def call_cb(self, procedure: str, args, kwargs: dict | None, options: dict | None,
                on_result: Callable, on_error: Callable) -> int:
        """``call_payload`` without a future or a task (for hot paths that answer from callbacks):
        sends the CALL now and returns its request id.  Later exactly one of ``on_result(value)``
        (the value as ``call`` returns it: one result as it is, several as ``Result``, none as
        None) or ``on_error(ApplicationError)`` is called, unless ``cancel_call(request)`` came
        first.  Never calls either before returning; raises ``ApplicationError`` (and calls
        neither) when the session is not connected."""
        req = self._next()
        msg = [CALL, req, options or {}, procedure, *args_tail(list(args), kwargs or {})]
        self._pending[req] = (CALL, _CallReply(on_result, on_error), None)
        try:
            self._send(msg)
        except BaseException:
            del self._pending[req]
            raise
        return req

    def cancel_call(self, request: int, mode: str = "kill") -> bool:
        """Cancel a call still waiting for its result (sends CANCEL with ``mode``); its callbacks
        are then never called.  False if it was no longer pending."""
        if self._pending.pop(request, None) is None:
            return False
        if self.transport is not None:
            self._send([CANCEL, request, {"mode": mode}])
        return True

    async def subscribe(self, topic: str, handler: Callable, options: dict | None = None,
                        details: bool = False) -> int:
        req = self._next()
        return await self._request(SUBSCRIBE, [SUBSCRIBE, req, options or {}, topic], (handler, details))

    async def unsubscribe(self, subscription: int, handler: Callable | None = None) -> None:
        handlers = self._handlers.get(subscription)
        if handlers and handler is not None:
            handlers[:] = [h for h in handlers if h[0] is not handler]
            if handlers:
                return
        req = self._next()
        await self._request(UNSUBSCRIBE, [UNSUBSCRIBE, req, subscription], subscription)

    def publish(self, topic: str, *args, options: dict | None = None, **kwargs):
        """Publish; with ``options={"acknowledge": True}`` returns an awaitable for the publication id."""
        return self.publish_payload(topic, args, kwargs, options)

    def publish_payload(self, topic: str, args=(), kwargs: dict | None = None, options: dict | None = None):
        """``publish`` with the payload given as values (any keyword argument names pass)."""
        req = self._next()
        options = options or {}
        msg = [PUBLISH, req, options, topic, *args_tail(list(args), kwargs or {})]
        if options.get("acknowledge"):
            return self._request(PUBLISH, msg)
        self._send(msg)
        return None

    # -- incoming ---------------------------------------------------------------

    def on_message(self, msg: list) -> None:
        try:
            m = M.parse(msg)
        except ProtocolError as e:
            self.protocol_violation(str(e))
            return
        handler = self._DISPATCH.get(type(m))
        if handler is None:
            self.protocol_violation(f"a client does not accept {m.NAME}")
            return
        try:
            handler(self, m)
        except ProtocolError as e:
            self.protocol_violation(str(e))
        except Exception:
            log.exception("client session: error handling %s", m.NAME)

    def on_router_message(self, msg: list) -> None:
        """A message the router built in this process (see the module docstring): an EVENT of an
        established session, without a passthru payload, goes to its handlers as it is (read-only:
        the router hands the same list to every local subscriber); anything else to ``on_message``."""
        if msg[0] == EVENT and self.session_id is not None:
            details = msg[3]
            if "ppt_scheme" not in details and "enc_algo" not in details:
                handlers = self._handlers.get(msg[1])
                if handlers:
                    n = len(msg)
                    self._deliver_event(handlers, msg[4] if n > 4 else [], msg[5] if n > 5 else {}, details)
                return
        self.on_message(msg)

    def on_payload(self, data: bytes, serializer) -> None:
        """A transport's received message, still serialized."""
        try:
            msg = serializer.unserialize_one(data)
        except Exception as e:
            self.protocol_violation(f"undecodable {serializer.NAME} message: {e}")
            return
        self.on_message(msg)

    def protocol_violation(self, text: str) -> None:
        """The router broke the protocol: ABORT with the reason, close, fail whoever waits."""
        if self.close_reason is not None:
            return
        log.warning("closing the session: the router sent an invalid message: %s", text)
        if self.transport is not None:
            try:
                self.transport.send_message([ABORT, {"message": text}, E.PROTOCOL_VIOLATION])
            except Exception:
                pass
        self._lost(E.PROTOCOL_VIOLATION, f"the router sent an invalid message: {text}", E.PROTOCOL_VIOLATION)

    def _joining(self) -> bool:
        return self.session_id is None and self._welcome is not None and not self._welcome.done()

    def _established(self, m) -> None:
        if self.session_id is None:
            raise ProtocolError(f"{m.NAME} before the session was established")

    def _on_welcome(self, m: M.Welcome) -> None:
        if not self._joining():
            raise ProtocolError("WELCOME while not joining")
        self.session_id = m.session
        self.details = m.details
        self.realm = m.details.get("realm")
        self._welcome.set_result(m.details)

    def _on_abort(self, m: M.Abort) -> None:
        message = m.details.get("message")
        self._lost(m.reason, message if isinstance(message, str) else "", m.reason)

    def _on_goodbye(self, m: M.Goodbye) -> None:
        self._established(m)
        if not self._goodbye_sent:
            self._send([GOODBYE, {}, E.GOODBYE_AND_OUT])
        self._lost(m.reason)

    def _on_challenge_msg(self, m: M.Challenge) -> None:
        if not self._joining():
            raise ProtocolError("CHALLENGE while not joining")
        try:
            authenticator = self._authenticators.get(m.method)
            if authenticator is not None:
                signature, extra = authenticator.on_challenge(self, m.extra)
            elif self._on_challenge is not None:
                signature, extra = self._on_challenge(m.method, m.extra)
            else:
                raise AuthenticationError(f"no answer for a {m.method} challenge")
        except Exception as e:
            text = f"{type(e).__name__}: {e}" if not isinstance(e, AuthenticationError) else str(e)
            self._send([ABORT, {"message": text}, E.AUTHENTICATION_FAILED])
            self._lost(E.AUTHENTICATION_FAILED, text, E.AUTHENTICATION_FAILED)
            return
        self._send([AUTHENTICATE, signature, extra or {}])

    def _reply_entry(self, m, request_type: int):
        """The pending request a reply answers (None: unknown, e.g. cancelled meanwhile)."""
        entry = self._pending.get(m.request)
        if entry is not None and entry[0] != request_type:
            raise ProtocolError(f"{m.NAME} for request {m.request}, which is a {NAMES[entry[0]]}")
        return entry

    def _on_reply(self, m) -> None:
        self._established(m)
        if m.request == 0:  # registration / subscription revocation
            if type(m) is M.Unregistered:
                self._procedures.pop(m.details.get("registration"), None)
            elif type(m) is M.Unsubscribed:
                self._handlers.pop(m.details.get("subscription"), None)
            return
        entry = self._reply_entry(m, _REQUEST_OF[type(m)])
        if entry is None:
            return
        _, fut, extra = entry
        if type(m) is M.Result and m.details.get("progress"):
            if extra is not None:
                args, kwargs = _app_args(m)
                _run_handler("progress", extra, args, kwargs)
            return
        del self._pending[m.request]
        if fut.done():
            return
        kind = type(m)
        if kind is M.Result:
            args, kwargs = _app_args(m)
            fut.set_result(_unpack(args, kwargs))
        elif kind is M.Registered:
            self._procedures[m.registration] = extra
            fut.set_result(m.registration)
        elif kind is M.Subscribed:
            self._handlers.setdefault(m.subscription, []).append(extra)
            fut.set_result(m.subscription)
        elif kind is M.Unregistered:
            self._procedures.pop(extra, None)
            fut.set_result(None)
        elif kind is M.Unsubscribed:
            self._handlers.pop(extra, None)
            fut.set_result(None)
        else:
            fut.set_result(m.publication)

    def _on_error(self, m: M.Error) -> None:
        self._established(m)
        entry = self._reply_entry(m, m.request_type)
        if entry is None:
            return
        del self._pending[m.request]
        fut = entry[1]
        if not fut.done():
            args, kwargs = _app_args(m)
            fut.set_exception(ApplicationError(m.error, *args, **kwargs))

    def _on_event(self, m: M.Event) -> None:
        self._established(m)
        handlers = self._handlers.get(m.subscription)
        if not handlers:
            return
        args, kwargs = _app_args(m)
        self._deliver_event(handlers, args, kwargs, m.details)

    @staticmethod
    def _deliver_event(handlers: list, args, kwargs: dict, details: dict) -> None:
        if len(handlers) == 1:
            handler, want_details = handlers[0]
            _run_handler("event", handler, args, {**kwargs, "details": details} if want_details else kwargs)
            return
        with_details = None
        for handler, want_details in list(handlers):
            if want_details:
                with_details = with_details or {**kwargs, "details": details}
            _run_handler("event", handler, args, with_details if want_details else kwargs)

    def _on_invocation(self, m: M.Invocation) -> None:
        self._established(m)
        request = m.request
        entry = self._procedures.get(m.registration)
        if entry is None:
            self._send([ERROR, INVOCATION, request, {}, E.NO_SUCH_REGISTRATION])
            return
        endpoint, want_details, want_progress = entry
        args, kwargs = _app_args(m)
        if want_details:
            kwargs = {**kwargs, "details": m.details}
        if want_progress:
            progressive = m.details.get("receive_progress")
            if progressive:
                self._progressing.add(request)
            kwargs = {**kwargs, "progress": self._progress_sender(request) if progressive else None}
        try:
            r = endpoint(*args, **kwargs)
        except Exception as e:
            self._progressing.discard(request)
            self._send_invocation_error(request, e)
            return
        if inspect.isawaitable(r):
            task = asyncio.ensure_future(r)
            self._invocations[request] = task
            task.add_done_callback(lambda t, req=request: self._invocation_done(req, t))
        else:
            self._progressing.discard(request)
            self._send([YIELD, request, {}, *_pack(r)])

    def _progress_sender(self, request: int) -> Callable:
        """What a callee calls to send a progressive result, until its final answer."""
        def progress(*args, **kwargs):
            if request in self._progressing and self.transport is not None:
                self._send([YIELD, request, {"progress": True}, *args_tail(list(args), kwargs)])
        return progress

    def _on_interrupt(self, m: M.Interrupt) -> None:
        self._established(m)
        task = self._invocations.get(m.request)
        if task is not None:
            task.cancel()

    def _invocation_done(self, request: int, task: asyncio.Task) -> None:
        self._invocations.pop(request, None)
        self._progressing.discard(request)
        if self.transport is None:
            return
        if task.cancelled():
            self._send([ERROR, INVOCATION, request, {}, E.CANCELED])
            return
        e = task.exception()
        if e is not None:
            self._send_invocation_error(request, e)
        else:
            self._send([YIELD, request, {}, *_pack(task.result())])

    def _send_invocation_error(self, request: int, e: BaseException) -> None:
        if isinstance(e, ApplicationError):
            self._send([ERROR, INVOCATION, request, {}, e.error, *args_tail(e.args_, e.kwargs)])
        else:
            log.warning("procedure raised %s: %s", type(e).__name__, e)
            self._send([ERROR, INVOCATION, request, {}, "wamp.error.runtime_error", [f"{type(e).__name__}: {e}"]])

    _DISPATCH = {
        M.Welcome: _on_welcome, M.Abort: _on_abort, M.Challenge: _on_challenge_msg, M.Goodbye: _on_goodbye,
        M.Error: _on_error, M.Published: _on_reply, M.Subscribed: _on_reply, M.Unsubscribed: _on_reply,
        M.Event: _on_event, M.Result: _on_reply, M.Registered: _on_reply, M.Unregistered: _on_reply,
        M.Invocation: _on_invocation, M.Interrupt: _on_interrupt,
    }

    def on_close(self) -> None:
        self._lost("transport closed")

    def _lost(self, reason: str, message: str = "", error: str | None = None) -> None:
        """The session is over: ``reason`` for the close callbacks; ``error`` (a URI: the ABORT
        reason, protocol_violation...) and ``message`` for whoever waits (else ``canceled``)."""
        was_attached = self.session_id is not None
        if self.close_reason is None:
            self.close_reason = (error or reason, message)
        self.session_id = None
        transport, self.transport = self.transport, None
        failure = (error or E.CANCELED, message or f"session closed ({reason})")
        for _, fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(ApplicationError(*failure))
        self._pending.clear()
        for task in self._invocations.values():
            task.cancel()
        self._invocations.clear()
        self._progressing.clear()
        if self._welcome and not self._welcome.done():
            self._welcome.set_exception(ApplicationError(*failure))
        if transport is not None:
            try:
                transport.close()
            except Exception:
                pass
        if not self._closed.done():
            self._closed.set_result(reason)
        if was_attached:
            for cb in list(self.on_leave):
                try:
                    cb(reason)
                except Exception:
                    log.exception("on_leave callback failed")
