"""Router transports: the listening side of ``websocket``, ``rawsocket`` and
``web`` transports, created from config and started/stopped at runtime."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from picows import WSAutoPingStrategy

from .endpoints import endpoint_description, listening_socket, tls_context
from ..config import defaults
from .http import HttpServer, feed
from .rawsocket import RawSocketServerFactory
from .web import WebPaths
from .websocket import PICOWS_LOGGER, FirstReadWSProtocol, ServerWSProtocol, WebSocketServerFactory

log = logging.getLogger("wampfabric.transport")


def _unlink_unix(endpoint: dict, cbdir) -> None:
    if endpoint.get("type") == "unix":
        try:
            os.unlink(Path(cbdir) / endpoint["path"])
        except OSError:
            pass


class RouterTransport:
    """Base: a transport of a router worker, with a listening endpoint."""

    TYPE = "?"

    def __init__(self, router, transport_id: str, config: dict, cbdir, personality):
        self.router = router
        self.transport_id = transport_id
        self.config = config
        self.cbdir = cbdir
        self.personality = personality
        self.server: asyncio.AbstractServer | None = None

    @property
    def description(self) -> str:
        return f"{self.TYPE} transport '{self.transport_id}' on {endpoint_description(self.config['endpoint'])}"

    async def start(self) -> None:
        raise NotImplementedError

    def _tls(self) -> dict:
        """``ssl=`` for the server when the endpoint has ``tls``."""
        tls = self.config["endpoint"].get("tls")
        return {"ssl": tls_context(tls, self.cbdir)} if tls else {}

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
            self.server = None
        _unlink_unix(self.config["endpoint"], self.cbdir)

    def _ws_server_kwargs(self, endpoints: list[WebSocketServerFactory]) -> dict:
        # picows' limits are per listening port: the most permissive of the port's WebSocket
        # endpoints applies there, each enforces its own message size itself
        max_frame = max((s.max_frame_size for s in endpoints), default=defaults.MAX_MESSAGE_SIZE)
        handshake_timeout = max((s.open_handshake_timeout for s in endpoints),
                                default=defaults.OPEN_HANDSHAKE_TIMEOUT_MS / 1000.0)
        kw = {"max_frame_size": max_frame, "websocket_handshake_timeout": handshake_timeout,
              "logger_name": PICOWS_LOGGER,
              # grows on demand; a small start keeps idle sessions cheap
              "read_buffer_init_size": 2048}
        pinging = [s for s in endpoints if s.auto_ping_interval > 0]
        if pinging:
            s = pinging[0]
            kw.update(enable_auto_ping=True, auto_ping_idle_timeout=s.auto_ping_interval,
                      auto_ping_reply_timeout=s.auto_ping_timeout or s.auto_ping_interval)
        return kw


class WebSocketRouterTransport(RouterTransport):
    """``websocket``: WAMP-over-WebSocket on every path of the endpoint."""

    TYPE = "websocket"

    async def start(self) -> None:
        self.websocket = WebSocketServerFactory(self.router, self.config, cbdir=self.cbdir)
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        factory = picows_server_protocol_factory(self.websocket.upgrade, self._ws_server_kwargs([self.websocket]))
        self.server = await _create_server(factory, sock, self._tls())


class WebRouterTransport(RouterTransport):
    """``web``: path services (static files, node info, WebSocket, ...) behind the HTTP front
    (transport/http.py); WebSocket upgrades are handed to picows."""

    TYPE = "web"
    paths: WebPaths | None = None
    http: HttpServer | None = None

    async def start(self) -> None:
        self.paths = WebPaths()
        for path, svc_cfg in self.config.get("paths", {}).items():
            self.add_service(path, svc_cfg)
        await self._start_services()
        self.http = self._http_server(self.config.get("options"))
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        self.server = await _create_server(self.http, sock, self._tls())

    # -- service lifecycle: ``async start()`` before the port listens, ``async stop()`` at stop ----

    async def _start_services(self) -> None:
        """Await every service's optional ``start()`` (before listening).  One that fails stops
        those already started, closes all, and fails the transport's start."""
        started = []
        for path, svc in self._services_by_path():
            start = getattr(svc, "start", None)
            if start is None:
                continue
            try:
                await start()
            except Exception as e:
                for _, done in reversed(started):
                    await _stop_service(done)
                self.paths.close()
                raise ServiceStartFailed(f"{self.description}: the {type(svc).__name__} on path '/{path}' "
                                         f"failed to start: {type(e).__name__}: {e}") from None
            started.append((path, svc))

    def _services_by_path(self):
        """``(path, service)`` of every service, those below ``path`` services included."""
        def walk(paths, prefix):
            for key, svc in list(paths.services.items()):
                full = f"{prefix}/{key}".strip("/")
                nested = getattr(svc, "paths", None)
                if isinstance(nested, WebPaths):
                    yield from walk(nested, full)
                yield full, svc
        yield from walk(self.paths, "")

    def _ws_factory(self):
        """picows' server protocol factory for this transport's WebSocket paths (None: none)."""
        ws_services = [s.ws for s in self.paths.all_services() if hasattr(s, "ws")]
        return (picows_server_protocol_factory(self.paths.ws_upgrade, self._ws_server_kwargs(ws_services),
                                               first_read=False) if ws_services else None)

    def _http_server(self, options) -> HttpServer:
        ws_services = [s.ws for s in self.paths.all_services() if hasattr(s, "ws")]
        ws_factory = self._ws_factory()
        handshake = max((s.open_handshake_timeout for s in ws_services), default=None)
        return HttpServer(self.paths, options, ws_factory, is_secure="tls" in self.config["endpoint"],
                          ws_handshake_timeout=handshake)

    async def stop(self) -> None:
        await super().stop()  # no new connections
        if self.paths is not None:
            for _, svc in self._services_by_path():
                await _stop_service(svc)
        if self.http is not None:
            self.http.close()
        if self.paths is not None:
            self.paths.close()

    def add_service(self, path: str, svc_cfg: dict):
        """Build the service for ``path``.  Added to a running transport (the node's management
        API), its ``start()`` runs as a task: a failure is logged (the service answers as it
        answers when not started)."""
        factory = self.personality.WEB_SERVICE_FACTORIES[svc_cfg["type"]]
        service = factory(self, svc_cfg)
        self.paths.add(path, service)
        if self.http is not None and hasattr(service, "ws"):
            # a WebSocket path added at runtime: picows' limits for the port as they are now
            self.http.ws_protocol_factory = self._ws_factory()
        if self.server is not None and getattr(service, "start", None) is not None:
            asyncio.ensure_future(self._start_later(path, service))
        return service

    async def _start_later(self, path: str, service) -> None:
        try:
            await service.start()
        except Exception as e:
            log.error("%s: the %s on path '%s' failed to start: %s: %s", self.description, type(service).__name__,
                      path, type(e).__name__, e)

    def remove_service(self, path: str):
        """Remove the service of ``path``: it answers no new request; its ``stop()`` (if any) is
        awaited in a task, then it is closed."""
        service = self.paths.remove(path)
        if service is not None:
            asyncio.ensure_future(_stop_and_close(service))
        return service


class ServiceStartFailed(Exception):
    """A web service's ``start()`` failed: the transport does not start (the message names the
    path, the service and why)."""


class RawSocketRouterTransport(RouterTransport):
    """``rawsocket``: WAMP-over-RawSocket on a TCP or Unix socket."""

    TYPE = "rawsocket"

    async def start(self) -> None:
        factory = RawSocketServerFactory(self.router, self.config)
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            self.server = await loop.create_unix_server(factory, sock=sock)
        else:
            self.server = await loop.create_server(factory, sock=sock, **self._tls())


async def _stop_service(svc) -> None:
    """A service's optional ``stop()``, awaited; its failure is a log line (the others still stop)."""
    stop = getattr(svc, "stop", None)
    if stop is None:
        return
    try:
        await stop()
    except Exception as e:
        log.error("stopping %s: %s: %s", type(svc).__name__, type(e).__name__, e)


async def _stop_and_close(svc) -> None:
    await _stop_service(svc)
    nested = getattr(svc, "paths", None)
    if isinstance(nested, WebPaths):  # a ``path`` service: its own services stop too
        for inner in list(nested.all_services()):
            if inner is not svc:
                await _stop_service(inner)
    try:
        svc.close()
    except Exception as e:
        log.error("closing %s: %s: %s", type(svc).__name__, type(e).__name__, e)


async def _create_server(factory, sock: socket.socket, tls: dict):
    # TCP or Unix: the event loop serves whichever socket it is given
    return await asyncio.get_running_loop().create_server(factory, sock=sock, **tls)


def picows_server_protocol_factory(listener_factory, kw: dict, first_read: bool = True):
    """A factory of picows server protocols, for our listening sockets and for connections
    the universal transport hands over after sniffing their first bytes.  It builds picows'
    ``WSProtocol`` (our ``ServerWSProtocol`` subclass) the way ``picows.api.ws_create_server``
    does, on uvloop's own transports (docs/decisions.md: not aiofastnet); picows 2.3 has no
    public API for this (pinned in pyproject: picows 2.3.x).  ``first_read=False``: a plain
    ``ServerWSProtocol`` for connections whose first request is known to be a GET (the HTTP
    front's handovers), without the HEAD rewrite and its second ``set_protocol``."""
    logger = kw.get("logger_name", PICOWS_LOGGER)
    cls = FirstReadWSProtocol if first_read else ServerWSProtocol

    def factory():
        return cls(
            None, None, False, listener_factory, logger, True,
            kw.get("websocket_handshake_timeout", defaults.OPEN_HANDSHAKE_TIMEOUT_MS / 1000.0),
            kw.get("enable_auto_ping", False), kw.get("auto_ping_idle_timeout", 20.0),
            kw.get("auto_ping_reply_timeout", 20.0), WSAutoPingStrategy.PING_WHEN_IDLE,
            True, kw.get("max_frame_size", defaults.MAX_MESSAGE_SIZE), None, kw.get("read_buffer_init_size", 2048),
        )

    return factory


_SNIFF_VIEW = memoryview(bytearray(64 * 1024))


class _Sniffer(asyncio.BufferedProtocol):
    """First bytes of a universal-transport connection: RawSocket starts with 0x7F, anything
    else is HTTP (a web request or a WebSocket upgrade, which the HTTP front hands to picows).
    The connection is then handed to the right protocol, with the bytes read so far.  A buffered
    protocol (one shared read buffer) without ``data_received``: uvloop keeps a protocol's
    ``data_received`` after ``set_protocol``, which would keep every sniffer alive with its
    connection."""

    def __init__(self, transport_owner: "UniversalRouterTransport"):
        self.owner = transport_owner
        self.transport = None
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(10.0, transport.abort)

    def get_buffer(self, sizehint: int):
        return _SNIFF_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        self._sniffed(bytes(_SNIFF_VIEW[:nbytes]))

    def _sniffed(self, data: bytes) -> None:
        self.timer.cancel()
        owner = self.owner
        if data[0] == 0x7F and owner.rawsocket is not None:
            proto = owner.rawsocket()
        elif data[0] != 0x7F and owner.http is not None:
            proto = owner.http()
        else:
            self.transport.abort()
            return
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        feed(proto, data)

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()


class UniversalRouterTransport(WebRouterTransport):
    """``universal``: RawSocket, WebSocket and web services on one port (Crossbar.io's
    ``rawsocket`` / ``websocket`` / ``web`` sections), told apart by the first byte."""

    TYPE = "universal"

    async def start(self) -> None:
        self.paths = WebPaths()
        for path, ws_cfg in self.config.get("websocket", {}).items():
            self.add_service(path, dict(ws_cfg, type="websocket"))
        for path, svc_cfg in self.config.get("web", {}).get("paths", {}).items():
            self.add_service(path, svc_cfg)
        rs_cfg = self.config.get("rawsocket")
        if rs_cfg is not None and "auth" not in rs_cfg and "auth" in self.config:
            rs_cfg = dict(rs_cfg, auth=self.config["auth"])
        self.rawsocket = RawSocketServerFactory(self.router, rs_cfg) if rs_cfg is not None else None
        await self._start_services()
        self.http = self._http_server(self.config.get("web", {}).get("options")) if self.paths.services else None
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            self.server = await loop.create_unix_server(lambda: _Sniffer(self), sock=sock)
        else:
            self.server = await loop.create_server(lambda: _Sniffer(self), sock=sock, **self._tls())
