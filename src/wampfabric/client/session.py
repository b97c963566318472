"""Client side of a WAMP session, independent of the transport.

The transport contract is the router's mirrored: the transport calls
``on_message(wmsg: list)`` with each received message (already decoded) and
``on_close()`` when it is gone; the session calls ``transport.send_message(list)``
and ``transport.close()``.  Handlers may be plain functions or coroutine
functions; the router-facing paths stay callbacks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable

from ..protocol import errors as E

log = logging.getLogger("wampfabric.client")

HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 1, 2, 3, 4, 5, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED, EVENT = 16, 17, 32, 33, 34, 35, 36
CALL, CANCEL, RESULT, REGISTER, REGISTERED, UNREGISTER, UNREGISTERED = 48, 49, 50, 64, 65, 66, 67
INVOCATION, INTERRUPT, YIELD = 68, 69, 70

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
        if value.kwargs:
            return [value.args, value.kwargs]
        return [value.args] if value.args else []
    return [[value]]


class ClientSession:
    """One client session.  ``await join(realm)``, then register/call/publish/subscribe."""

    def __init__(self, transport=None):
        self.transport = transport
        self.session_id: int | None = None
        self.realm: str | None = None
        self.details: dict = {}
        self._seq = 0
        self._pending: dict[int, tuple[int, asyncio.Future, Any]] = {}  # request -> (type, future, extra)
        self._procedures: dict[int, tuple[Callable, bool]] = {}  # registration id -> (endpoint, details)
        self._handlers: dict[int, list] = {}  # subscription id -> [(handler, details)]
        self._invocations: dict[int, asyncio.Task] = {}
        self._welcome: asyncio.Future | None = None
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
        self._send(msg)
        return fut

    @property
    def is_attached(self) -> bool:
        return self.session_id is not None

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # -- session ---------------------------------------------------------------

    async def join(self, realm: str | None, authmethods=None, authid=None, authrole=None, authextra=None,
                   on_challenge: Callable | None = None) -> dict:
        details = {"roles": CLIENT_ROLES}
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
                       details: bool = False) -> int:
        req = self._next()
        reg_id = await self._request(REGISTER, [REGISTER, req, options or {}, procedure], (endpoint, details))
        return reg_id

    async def unregister(self, registration: int) -> None:
        req = self._next()
        await self._request(UNREGISTER, [UNREGISTER, req, registration], registration)

    async def call(self, procedure: str, *args, options: dict | None = None, **kwargs):
        req = self._next()
        msg = [CALL, req, options or {}, procedure]
        if kwargs:
            msg += [list(args), kwargs]
        elif args:
            msg.append(list(args))
        return await self._request(CALL, msg)

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
        req = self._next()
        options = options or {}
        msg = [PUBLISH, req, options, topic]
        if kwargs:
            msg += [list(args), kwargs]
        elif args:
            msg.append(list(args))
        if options.get("acknowledge"):
            return self._request(PUBLISH, msg)
        self._send(msg)
        return None

    # -- incoming ---------------------------------------------------------------

    def on_message(self, msg: list) -> None:
        code = msg[0]
        try:
            if code == EVENT:
                self._on_event(msg)
            elif code == INVOCATION:
                self._on_invocation(msg)
            elif code in (RESULT, REGISTERED, SUBSCRIBED, UNREGISTERED, UNSUBSCRIBED, PUBLISHED):
                self._on_reply(code, msg)
            elif code == ERROR:
                self._on_error(msg)
            elif code == INTERRUPT:
                task = self._invocations.pop(msg[1], None)
                if task is not None:
                    task.cancel()
            elif code == WELCOME:
                self.session_id = msg[1]
                self.details = msg[2]
                self.realm = msg[2].get("realm")
                if self._welcome and not self._welcome.done():
                    self._welcome.set_result(msg[2])
            elif code == CHALLENGE:
                self._on_challenge_msg(msg)
            elif code == ABORT:
                err = ApplicationError(msg[2], msg[1].get("message", ""))
                if self._welcome and not self._welcome.done():
                    self._welcome.set_exception(err)
                self._lost(msg[2])
            elif code == GOODBYE:
                if not getattr(self, "_goodbye_sent", False):
                    self._send([GOODBYE, {}, E.GOODBYE_AND_OUT])
                self._lost(msg[2])
        except Exception:
            log.exception("client session: error handling message %r", msg[:2])

    def _on_challenge_msg(self, msg) -> None:
        if self._on_challenge is None:
            self._send([ABORT, {"message": "no challenge handler"}, "wamp.error.authentication_failed"])
            return
        try:
            signature, extra = self._on_challenge(msg[1], msg[2])
        except Exception as e:
            self._send([ABORT, {"message": str(e)}, "wamp.error.authentication_failed"])
            return
        self._send([AUTHENTICATE, signature, extra or {}])

    def _on_reply(self, code: int, msg: list) -> None:
        if code == RESULT and msg[2].get("progress"):
            return  # progressive results are not used by our own sessions
        entry = self._pending.pop(msg[1], None)
        if entry is None:
            return
        _, fut, extra = entry
        if fut.done():
            return
        if code == RESULT:
            fut.set_result(_unpack(msg[3] if len(msg) > 3 else None, msg[4] if len(msg) > 4 else None))
        elif code == REGISTERED:
            self._procedures[msg[2]] = extra
            fut.set_result(msg[2])
        elif code == SUBSCRIBED:
            self._handlers.setdefault(msg[2], []).append(extra)
            fut.set_result(msg[2])
        elif code == UNREGISTERED:
            self._procedures.pop(extra, None)
            fut.set_result(None)
        elif code == UNSUBSCRIBED:
            self._handlers.pop(extra, None)
            fut.set_result(None)
        else:
            fut.set_result(msg[2])

    def _on_error(self, msg: list) -> None:
        entry = self._pending.pop(msg[2], None)
        if entry is None:
            return
        fut = entry[1]
        if not fut.done():
            fut.set_exception(ApplicationError(msg[4], *(msg[5] if len(msg) > 5 else ()),
                                               **(msg[6] if len(msg) > 6 else {})))

    def _on_event(self, msg: list) -> None:
        handlers = self._handlers.get(msg[1])
        if not handlers:
            return
        args = msg[4] if len(msg) > 4 else ()
        kwargs = msg[5] if len(msg) > 5 else {}
        for handler, want_details in list(handlers):
            try:
                if want_details:
                    r = handler(*args, details=msg[3], **kwargs)
                else:
                    r = handler(*args, **kwargs)
                if inspect.isawaitable(r):
                    asyncio.ensure_future(r)
            except Exception:
                log.exception("event handler failed")

    def _on_invocation(self, msg: list) -> None:
        request, registration, details = msg[1], msg[2], msg[3]
        entry = self._procedures.get(registration)
        if entry is None:
            self._send([ERROR, INVOCATION, request, {}, E.NO_SUCH_REGISTRATION])
            return
        endpoint, want_details = entry
        args = msg[4] if len(msg) > 4 else ()
        kwargs = msg[5] if len(msg) > 5 else {}
        try:
            r = endpoint(*args, details=details, **kwargs) if want_details else endpoint(*args, **kwargs)
        except Exception as e:
            self._send_invocation_error(request, e)
            return
        if inspect.isawaitable(r):
            task = asyncio.ensure_future(r)
            self._invocations[request] = task
            task.add_done_callback(lambda t, req=request: self._invocation_done(req, t))
        else:
            self._send([YIELD, request, {}, *_pack(r)])

    def _invocation_done(self, request: int, task: asyncio.Task) -> None:
        self._invocations.pop(request, None)
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
            tail = [e.args_, e.kwargs] if e.kwargs else ([e.args_] if e.args_ else [])
            self._send([ERROR, INVOCATION, request, {}, e.error, *tail])
        else:
            log.warning("procedure raised %s: %s", type(e).__name__, e)
            self._send([ERROR, INVOCATION, request, {}, "wamp.error.runtime_error", [f"{type(e).__name__}: {e}"]])

    def on_close(self) -> None:
        self._lost("transport closed")

    def _lost(self, reason: str) -> None:
        was_attached = self.session_id is not None
        self.session_id = None
        transport, self.transport = self.transport, None
        for _, fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(ApplicationError(E.CANCELED, f"session closed ({reason})"))
        self._pending.clear()
        for task in self._invocations.values():
            task.cancel()
        self._invocations.clear()
        if self._welcome and not self._welcome.done():
            self._welcome.set_exception(ApplicationError(E.CANCELED, f"session closed ({reason})"))
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
