"""The ``web`` transport: one HTTP/WebSocket listener whose ``paths`` map URL
paths to services (``websocket``, ``static``, ``nodeinfo``, ...).

Services are looked up in the personality's ``WEB_SERVICE_FACTORIES``; a path
is matched by its longest configured prefix of path segments, ``/`` being the
root service.  picows answers plain HTTP GETs through the same listener
factory that accepts WebSocket upgrades.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import os
import time
from pathlib import Path
from urllib.parse import unquote

from picows import WSUpgradeResponse, WSUpgradeResponseWithListener

from .. import __version__
from . import websocket
from .websocket import WebSocketServerFactory, head_only

log = logging.getLogger("wampfabric.transport.web")


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", extra=None):
    headers = {"Content-Type": content_type, "Server": f"wampfabric/{__version__}"}
    if extra:
        headers.update(extra)
    if status == 200:
        resp = WSUpgradeResponse.create_ok_response(body, headers)
    else:
        resp = WSUpgradeResponse.create_error_response(status, body, headers)
    return WSUpgradeResponseWithListener(resp, None)


def _is_upgrade(request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


class WebService:
    """Base of web path services: ``handle(request, subpath)`` returns a picows
    response or listener."""

    def __init__(self, transport, config: dict):
        self.transport = transport
        self.config = config

    def handle(self, request, subpath: str):
        raise NotImplementedError


class WebSocketWebService(WebService):
    """``websocket``: WAMP over WebSocket on this path."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.ws = WebSocketServerFactory(transport.router, config, transport.config.get("auth"), transport.cbdir)

    def handle(self, request, subpath: str):
        if not _is_upgrade(request):
            return _response(
                426, b"This is a WAMP-over-WebSocket endpoint: connect with a WebSocket client.\n",
                extra={"Upgrade": "websocket"},
            )
        return self.ws.upgrade(request)


class StaticWebService(WebService):
    """``static``: files below ``directory`` (relative to the node directory)."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        directory = config.get("directory", ".")
        self.root = (Path(transport.cbdir) / directory).resolve()
        self.listing = bool(config.get("options", {}).get("enable_directory_listing", False))

    def handle(self, request, subpath: str):
        if _is_upgrade(request):
            return _response(404, b"not a WebSocket endpoint\n")
        rel = unquote(subpath)
        if "\x00" in rel:
            log.info("bad request for %r: NUL in the path", request.path)
            return _response(400, b"bad request: NUL in the path\n")
        target = (self.root / rel.lstrip("/")).resolve()
        if target != self.root and self.root not in target.parents:
            return _response(404, b"not found\n")
        if target.is_dir():
            index = target / "index.html"
            if index.is_file():
                target = index
            elif self.listing:
                return self._listing(target, subpath)
            else:
                return _response(404, b"not found\n")
        if not target.is_file():
            return _response(404, b"not found\n")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        try:
            body = target.read_bytes()
        except OSError:
            return _response(404, b"not found\n")
        return _response(200, body, ctype)

    def _listing(self, directory: Path, subpath: str):
        base = "/" + subpath.strip("/")
        rows = []
        for entry in sorted(directory.iterdir()):
            name = entry.name + ("/" if entry.is_dir() else "")
            href = (base.rstrip("/") + "/" + entry.name)
            rows.append(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>')
        page = (f"<!DOCTYPE html><html><head><title>Index of {html.escape(base)}</title></head>"
                f"<body><h1>Index of {html.escape(base)}</h1><ul>{''.join(rows)}</ul></body></html>")
        return _response(200, page.encode(), "text/html; charset=utf-8")


class NodeInfoWebService(WebService):
    """``nodeinfo``: a small HTML page about the node."""

    def handle(self, request, subpath: str):
        t = self.transport
        router = t.router
        realms = ", ".join(html.escape(r) for r in router.realms) or "(none)"
        page = (
            "<!DOCTYPE html><html><head><title>wampfabric node</title></head><body>"
            f"<h1>wampfabric {html.escape(__version__)}</h1>"
            f"<table><tr><th>Node</th><td>{html.escape(router.node_id)}</td></tr>"
            f"<tr><th>Worker</th><td>{html.escape(router.worker_id)} (pid {os.getpid()})</td></tr>"
            f"<tr><th>Transport</th><td>{html.escape(t.transport_id)}</td></tr>"
            f"<tr><th>Realms</th><td>{realms}</td></tr>"
            f"<tr><th>Now</th><td>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}</td></tr>"
            "</table></body></html>"
        )
        return _response(200, page.encode(), "text/html; charset=utf-8")


class WebPaths:
    """Maps request paths to services (longest segment prefix wins)."""

    def __init__(self):
        self.services: dict[str, WebService] = {}

    def add(self, path: str, service: WebService) -> None:
        self.services[self.norm(path)] = service

    def remove(self, path: str) -> WebService | None:
        return self.services.pop(self.norm(path), None)

    @staticmethod
    def norm(path: str) -> str:
        return path.strip("/")

    def route(self, request):
        if websocket.HEAD_REQUEST:
            return head_only(self._route(request))
        return self._route(request)

    def _route(self, request):
        raw = request.path.decode("latin-1", "replace")
        path = raw.split("?", 1)[0].split("#", 1)[0]
        segments = path.strip("/")
        key = segments
        while True:
            svc = self.services.get(key)
            if svc is not None:
                sub = segments[len(key):]
                try:
                    return svc.handle(request, sub)
                except Exception as e:  # a bug or an unusable request: a log line, never a traceback
                    log.error("error serving %r (%s service): %s: %s", request.path, type(svc).__name__,
                              type(e).__name__, e)
                    return _response(500, b"internal error\n")
            if not key:
                return _response(404, b"not found\n")
            key = key.rpartition("/")[0]
