"""``asgi``: any ASGI 3 application (Starlette, FastAPI, ...) in the worker's event loop.

Config (a wampfabric type; Crossbar.io has none): ``module`` and ``object`` name the application
(imported from the worker's Python path, as ``wsgi``), ``lifespan`` ("auto", the default: run
the lifespan protocol if the application speaks it; "on": it must; "off": never) and
``max_body_size`` (bytes, default 1 MiB, 413 above).  Lifespan startup is the service's
``start()``, awaited by the transport before its port listens: a failed startup fails the
transport's start with the application's message.  Shutdown is its ``stop()``, awaited when the
transport stops (after it stopped listening) or the service is removed.  A service added to a
running transport starts in the background: requests wait for it, and get 503 if it failed.

Each request is one ``http`` scope (``root_path`` is the mount point, ``path`` the full path)
run as a task; the body is complete when the front hands the request over, so ``receive``
returns it at once and then waits for the client to go (``http.disconnect``); ``send`` after
the client went raises ``ClientDisconnected`` (an ``OSError``, ASGI spec 2.4).  ``send`` answers:
a response whose first body message is its last goes out whole (Content-Length), else it is
streamed, each ``send`` waiting while the client's socket buffer is full.  An application that
raises is a logged line and a 500 (a cut connection if the response had started).  WebSocket
scopes are not served: an upgrade request on an ``asgi`` path is answered 404 by the front.
"""

from __future__ import annotations

import asyncio
import logging

from ..transport.web import WebService
from .mount import split_mount
from .simple import ServiceStartError
from .wsgi import HOP_BY_HOP, import_app

log = logging.getLogger("wampfabric.web.asgi")

_TEXT = "text/plain; charset=utf-8"
_ASGI = {"version": "3.0", "spec_version": "2.3"}

# lifespan startup/shutdown must complete within this (seconds)
LIFESPAN_TIMEOUT = 30.0


class ClientDisconnected(OSError):
    """``send()`` on a request whose client has gone."""


class _Lifespan:
    """The lifespan protocol run as one task for the life of the transport."""

    def __init__(self, service: "AsgiWebService"):
        self.service = service
        self.inbox: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()   # True: started, False: not supported
        self.stopped = loop.create_future()
        self.task = None

    def begin(self) -> None:
        self.inbox.put_nowait({"type": "lifespan.startup"})
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.service.state}
        try:
            await self.service.app(scope, self.inbox.get, self._send)
        except Exception as e:
            if not self.started.done():
                # 'auto': an application without lifespan support raises on the unknown scope
                self.started.set_result(e)
            else:
                log.error("ASGI app %s: lifespan failed: %s: %s", self.service.name, type(e).__name__, e)
        finally:
            if not self.started.done():
                self.started.set_result(RuntimeError("the lifespan protocol returned before startup"))
            if not self.stopped.done():
                self.stopped.set_result(None)

    async def _send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            if not self.started.done():
                self.started.set_result(True)
        elif kind == "lifespan.startup.failed":
            if not self.started.done():
                self.started.set_result(ServiceStartError(
                    f"asgi service {self.service.name}: lifespan startup failed: {message.get('message', '')}"))
        elif kind == "lifespan.shutdown.complete":
            if not self.stopped.done():
                self.stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            log.error("ASGI app %s: lifespan shutdown failed: %s", self.service.name, message.get("message", ""))
            if not self.stopped.done():
                self.stopped.set_result(None)
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self.stopped), LIFESPAN_TIMEOUT)
        except asyncio.TimeoutError:
            log.error("ASGI app %s: lifespan shutdown not complete within %.0f s", self.service.name,
                      LIFESPAN_TIMEOUT)
        if not self.task.done():
            self.task.cancel()


class _Exchange:
    """One request's receive/send pair."""

    __slots__ = ("service", "request", "body_sent", "status", "headers", "started", "done", "disconnected",
                 "length", "written")

    def __init__(self, service: "AsgiWebService", request):
        self.service = service
        self.request = request
        self.body_sent = False
        self.status = None
        self.headers = None
        self.started = False     # the response head went out
        self.done = False
        self.disconnected = None  # a future, made when the application waits for the disconnect
        self.length = None        # the application's Content-Length
        self.written = 0

    async def receive(self) -> dict:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        req = self.request
        if not req.closed and not self.done:
            if self.disconnected is None:
                self.disconnected = asyncio.get_running_loop().create_future()
                req.add_close_callback(self._on_close)
            await self.disconnected
        return {"type": "http.disconnect"}

    def _on_close(self) -> None:
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)

    async def send(self, message: dict) -> None:
        kind = message.get("type")
        req = self.request
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("ASGI: http.response.start sent twice")
            status = message.get("status")
            if not isinstance(status, int) or not 100 <= status <= 999:
                raise ValueError(f"ASGI: bad response status {status!r}")
            headers = []
            for name, value in message.get("headers", ()):
                n = bytes(name).decode("latin-1")
                v = bytes(value).decode("latin-1")
                ln = n.lower()
                if ln in HOP_BY_HOP:
                    continue
                if ln == "content-length":
                    if not v.isdigit():
                        raise ValueError(f"ASGI: response Content-Length {v!r} is not a number")
                    self.length = int(v)
                if any(c in n or c in v for c in "\r\n\x00"):
                    raise ValueError(f"ASGI: response header {n!r} holds a line break")
                headers.append((n, v))
            self.status = status
            self.headers = headers
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("ASGI: http.response.body before http.response.start")
            if self.done:
                raise RuntimeError("ASGI: http.response.body after the response's last body message")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if req.closed or req.connection.transport.is_closing():
                # the client went away: an application streaming on must not spin (ASGI spec 2.4);
                # a failed write marks the transport closing at once, before connection_lost runs
                raise ClientDisconnected(f"the client of {req.method} {req.path!r} went away")
            if not self.started:
                self.started = True
                if not more and self.length is None:
                    self.done = True
                    req.respond(self.status, bytes(body), self.headers)
                    return
                req.start_response(self.status, self.headers)
            if body:
                if self.length is not None and not req.head:
                    room = self.length - self.written
                    if len(body) > room:
                        log.error("ASGI app %s sent more than its Content-Length (%d) for %r: cut",
                                  self.service.name, self.length, req.path)
                        body = body[:room]
                    self.written += len(body)
                req.write(bytes(body))
            if more:
                await req.drain()
                return
            self.done = True
            if (self.length is not None and self.written < self.length and not req.head
                    and self.status not in (204, 304)):
                log.error("ASGI app %s sent %d bytes of its Content-Length %d for %r: connection cut",
                          self.service.name, self.written, self.length, req.path)
                req.connection.transport.abort()
            else:
                req.finish()
        elif kind == "http.response.trailers":
            pass  # trailers are not sent (http.response.trailers is only sent when the scope offers it)
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} on an http scope")


class AsgiWebService(WebService):
    """``asgi``: an ASGI 3 application in the worker's event loop."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.app = import_app(config, "asgi service")
        self.name = f"{config['module']}.{config['object']}"
        self.lifespan_mode = config.get("lifespan", "auto")
        self.max_body_size = config.get("max_body_size", WebService.max_body_size)
        self.state: dict = {}   # the lifespan state, copied into each request's scope
        self.lifespan = None
        self.ready = None       # its result: None once lifespan startup is over (or not run), else the error

    async def start(self) -> None:
        """Lifespan startup (idempotent: the first caller runs it, the others wait for it);
        awaited by the transport before it listens (a ServiceStartError fails its start)."""
        ready = self.ready
        if ready is not None and ready.done():
            if ready.result() is not None:
                raise ready.result()
            return
        if self.ready is None:
            self.ready = asyncio.get_running_loop().create_future()
            error = None
            if self.lifespan_mode != "off":
                try:
                    await self._startup()
                except ServiceStartError as e:
                    error = e
            self.ready.set_result(error)
        error = await asyncio.shield(self.ready)
        if error is not None:
            raise error

    async def _startup(self) -> None:
        self.lifespan = _Lifespan(self)
        self.lifespan.begin()
        try:
            outcome = await asyncio.wait_for(asyncio.shield(self.lifespan.started), LIFESPAN_TIMEOUT)
        except asyncio.TimeoutError:
            outcome = ServiceStartError(f"asgi service {self.name}: lifespan startup not complete within "
                                        f"{LIFESPAN_TIMEOUT:.0f} s")
        if outcome is True:
            log.info("ASGI app %s: lifespan startup complete", self.name)
            return
        if isinstance(outcome, ServiceStartError) or self.lifespan_mode == "on":
            self.lifespan.task.cancel()
            self.lifespan = None
            if isinstance(outcome, ServiceStartError):
                raise outcome
            raise ServiceStartError(f"asgi service {self.name}: lifespan startup failed: "
                                    f"{type(outcome).__name__}: {outcome}")
        log.info("ASGI app %s: no lifespan support (%s: %s), running without", self.name,
                 type(outcome).__name__, outcome)
        self.lifespan = None

    async def stop(self) -> None:
        """Lifespan shutdown, waited for (up to LIFESPAN_TIMEOUT)."""
        if self.lifespan is not None:
            lifespan, self.lifespan = self.lifespan, None
            await lifespan.shutdown()
            log.info("ASGI app %s: lifespan shutdown complete", self.name)

    def handle(self, request, subpath: str):
        return self._serve(request, subpath)

    def scope(self, request, subpath: str) -> dict:
        mount, rest = split_mount(request, subpath)
        conn_transport = request.connection.transport
        peer = conn_transport.get_extra_info("peername")
        sock = conn_transport.get_extra_info("sockname")
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": request.version,
            "method": request.method,
            "scheme": "https" if request.is_secure else "http",
            "path": mount + rest,
            "raw_path": request.raw_path,
            "query_string": request.query.encode("latin-1"),
            "root_path": mount,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
            "client": (peer[0], peer[1]) if isinstance(peer, tuple) else None,
            "server": (sock[0], sock[1]) if isinstance(sock, tuple) else None,
            "state": dict(self.state),
        }

    async def _serve(self, request, subpath: str) -> None:
        try:
            await self.start()
        except ServiceStartError:
            request.respond(503, b"the application failed to start\n", None, _TEXT)
            return
        ex = _Exchange(self, request)
        try:
            await self.app(self.scope(request, subpath), ex.receive, ex.send)
        except Exception as e:
            if request.closed or isinstance(e, ClientDisconnected) or request.connection.transport.is_closing():
                return  # the client went: whatever the application did next is no error
            log.error("ASGI app %s failed on %s %r: %s: %s", self.name, request.method, request.path,
                      type(e).__name__, e)
            if not request.responded:
                request.respond(500, b"internal error\n", None, _TEXT)
            else:
                request.connection.transport.abort()
            return
        if request.closed:
            return
        if not request.responded:
            log.error("ASGI app %s returned without a response to %s %r", self.name, request.method, request.path)
            request.respond(500, b"internal error: the application sent no response\n", None, _TEXT)
        elif not ex.done:
            log.error("ASGI app %s returned in the middle of its response to %s %r", self.name, request.method,
                      request.path)
            request.connection.transport.abort()

    def close(self) -> None:
        """Closed without ``stop()`` having been awaited: lifespan shutdown begins (its task
        runs on while the worker's stop goes on)."""
        lifespan, self.lifespan = self.lifespan, None
        if lifespan is not None and lifespan.task is not None and not lifespan.task.done():
            lifespan.inbox.put_nowait({"type": "lifespan.shutdown"})
