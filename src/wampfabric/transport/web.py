"""The ``web`` transport's path routing and the service base class.

A ``web`` (or ``universal``) transport maps URL paths to services (``websocket`` here; ``static``,
``redirect``, ``json``, ... in ``wampfabric.web``), looked up in the personality's
``WEB_SERVICE_FACTORIES``.  A path is matched by its longest configured prefix of path segments,
``/`` being the root service.  The HTTP front (transport/http.py) parses requests and calls the
service's ``handle``; a WebSocket upgrade on a ``websocket`` path goes to picows.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from picows import WSUpgradeResponse, WSUpgradeResponseWithListener

from ..common.logs import RateLimitedLog
from .websocket import WebSocketServerFactory

log = logging.getLogger("wampfabric.transport.web")
_bad_paths = RateLimitedLog(log)  # a client's doing: one line a second at most

_TEXT = "text/plain; charset=utf-8"


class WebService:
    """Base of web path services (the contract: docs/web.md, "Writing a service").

    ``handle(request, subpath)`` is called with a complete ``transport.http.HttpRequest`` and
    the rest of the path below the service's mount point (percent-decoded, no leading '/');
    it answers with ``request.respond(...)`` (or ``start_response``/``write``/``finish``),
    now or later, and may return an awaitable (run as a task).

    Optional: ``async start()`` (awaited before the transport listens; an exception fails its
    start), ``async stop()`` (awaited when it stops, before ``close()``), and
    ``takeover(request, transport, tail)`` for WebSocket upgrades on this path (the connection is
    handed over with reading paused)."""

    # request bodies above this are refused with 413 before they are read
    max_body_size: int = 1 << 20

    def __init__(self, transport, config: dict):
        self.transport = transport
        self.config = config

    def handle(self, request, subpath: str):
        raise NotImplementedError

    def close(self) -> None:
        """The transport stops: release what the service holds."""


class WebSocketWebService(WebService):
    """``websocket``: WAMP over WebSocket on this path (upgrades are handed to picows by the
    front; a plain request gets 426)."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.ws = WebSocketServerFactory(transport.router, config, transport.config.get("auth"), transport.cbdir)

    def handle(self, request, subpath: str):
        request.respond(426, b"This is a WAMP-over-WebSocket endpoint: connect with a WebSocket client.\n",
                        [("Upgrade", "websocket")], _TEXT)


class WebPaths:
    """Maps request paths to services (longest segment prefix wins)."""

    def __init__(self):
        self.services: dict[str, WebService] = {}
        # the service a WebSocket upgrade being handed to picows goes to (set by the front
        # around the synchronous handover, read by ``ws_upgrade``)
        self.handover_service = None

    def add(self, path: str, service: WebService) -> None:
        self.services[self.norm(path)] = service

    def remove(self, path: str) -> WebService | None:
        return self.services.pop(self.norm(path), None)

    @staticmethod
    def norm(path: str) -> str:
        return path.strip("/")

    def resolve(self, path: str):
        """``(service, subpath)`` for a percent-decoded request path, or ``(None, (status,
        message))``.  Empty and '.' segments are dropped; a '..' segment is never routed (it
        could climb out of a mount point), nor a NUL."""
        if "\x00" in path:
            _bad_paths.warning("bad request for %r: NUL in the path", path)
            return None, (400, "bad request: NUL in the path")
        segs = [s for s in path.split("/") if s and s != "."]
        if ".." in segs:
            return None, (404, "not found")
        return self._resolve(segs, path.endswith("/"))

    def _resolve(self, segs: list, slash: bool):
        services = self.services
        n = len(segs)
        while True:
            svc = services.get("/".join(segs[:n]))
            if svc is not None:
                nested = getattr(svc, "paths", None)
                if isinstance(nested, WebPaths):  # a ``path`` service: route into its paths
                    return nested._resolve(segs[n:], slash)
                sub = "/".join(segs[n:])
                if sub and slash:
                    sub += "/"
                return svc, sub
            if n == 0:
                return None, (404, "not found")
            n -= 1

    def all_services(self):
        """Every service, those of nested ``path`` services included."""
        for svc in self.services.values():
            nested = getattr(svc, "paths", None)
            if isinstance(nested, WebPaths):
                yield from nested.all_services()
            yield svc

    def ws_upgrade(self, request):
        """picows' listener factory for upgrades the front hands over."""
        svc = self.handover_service
        if svc is None:  # not through the front: route by the request's own path
            svc, _ = self.resolve(unquote(request.path.decode("latin-1").split("?", 1)[0]))
        if getattr(svc, "ws", None) is None:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(404, b"not a WebSocket endpoint\n"), None)
        return svc.ws.upgrade(request)

    def close(self) -> None:
        for svc in self.services.values():
            try:
                svc.close()
            except Exception as e:  # one service's error does not keep the others open
                log.error("closing %s: %s: %s", type(svc).__name__, type(e).__name__, e)
