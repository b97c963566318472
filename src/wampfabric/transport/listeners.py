"""Router transports: the listening side of ``websocket``, ``rawsocket`` and
``web`` transports, created from config and started/stopped at runtime."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from picows import ws_create_server

from .endpoints import endpoint_description, listening_socket, tls_context
from .rawsocket import RawSocketService
from .web import WebPaths
from .websocket import WebSocketService

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

    def _ws_server_kwargs(self, services: list[WebSocketService]) -> dict:
        # picows' limits are per listening port: the most permissive of the port's services
        # applies there, each service enforces its own message size itself
        max_frame = max((s.max_frame_size for s in services), default=16 * 1024 * 1024)
        handshake_timeout = max((s.open_handshake_timeout for s in services), default=10.0)
        kw = {"max_frame_size": max_frame, "websocket_handshake_timeout": handshake_timeout,
              "logger_name": "wampfabric",
              # grows on demand; a small start keeps idle sessions cheap
              "read_buffer_init_size": 2048,
              # uvloop's own transports: ~5 KB less per connection than aiofastnet's
              # for ~15% more CPU per message (docs/decisions.md)
              "use_aiofastnet": False}
        pinging = [s for s in services if s.auto_ping_interval > 0]
        if pinging:
            s = pinging[0]
            kw.update(enable_auto_ping=True, auto_ping_idle_timeout=s.auto_ping_interval,
                      auto_ping_reply_timeout=s.auto_ping_timeout or s.auto_ping_interval)
        return kw


class WebSocketRouterTransport(RouterTransport):
    """``websocket``: WAMP-over-WebSocket on every path of the endpoint."""

    TYPE = "websocket"

    async def start(self) -> None:
        self.service = WebSocketService(self.router, self.config, cbdir=self.cbdir)
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        self.server = await ws_create_server(self.service.upgrade, sock=sock, **self._tls(),
                                             **self._ws_server_kwargs([self.service]))


class WebRouterTransport(RouterTransport):
    """``web``: path services (static files, node info, WebSocket, ...)."""

    TYPE = "web"

    async def start(self) -> None:
        self.paths = WebPaths()
        for path, svc_cfg in self.config.get("paths", {}).items():
            self.add_service(path, svc_cfg)
        ws_services = [s.ws for s in self.paths.services.values() if hasattr(s, "ws")]
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        self.server = await ws_create_server(self.paths.route, sock=sock, **self._tls(),
                                             **self._ws_server_kwargs(ws_services))

    def add_service(self, path: str, svc_cfg: dict):
        factory = self.personality.WEB_SERVICE_FACTORIES[svc_cfg["type"]]
        service = factory(self, svc_cfg)
        self.paths.add(path, service)
        return service

    def remove_service(self, path: str):
        return self.paths.remove(path)


class RawSocketRouterTransport(RouterTransport):
    """``rawsocket``: WAMP-over-RawSocket on a TCP or Unix socket."""

    TYPE = "rawsocket"

    async def start(self) -> None:
        service = RawSocketService(self.router, self.config)
        sock = listening_socket(self.config["endpoint"], self.cbdir)
        loop = asyncio.get_running_loop()
        if sock.family == getattr(__import__("socket"), "AF_UNIX", None):
            self.server = await loop.create_unix_server(service, sock=sock)
        else:
            self.server = await loop.create_server(service, sock=sock, **self._tls())
