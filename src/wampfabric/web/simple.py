"""Small services: ``nodeinfo``, ``redirect``, ``json``, ``resource`` (a Python class of the
user's) and ``path`` (nested paths), in Crossbar.io's config shapes."""

from __future__ import annotations

import html
import importlib
import json
import os
import time

from .. import __version__
from ..transport.web import WebPaths, WebService
from .files import method_not_allowed

_TEXT = "text/plain; charset=utf-8"


def _not_found(request) -> None:
    request.respond(404, b"not found\n", None, _TEXT)


class NodeInfoWebService(WebService):
    """``nodeinfo``: a small HTML page about the node."""

    def handle(self, request, subpath: str):
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
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
        request.respond(200, page.encode(), [("Cache-Control", "no-store")], "text/html; charset=utf-8")


class RedirectWebService(WebService):
    """``redirect``: the mount point answers with a redirect to ``url`` (302 as Crossbar.io;
    ``status`` 301, 303, 307 or 308 is a wampfabric extension).  Like Crossbar.io's, paths
    below the mount point are not redirected (404)."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.url = config["url"]
        self.status = config.get("status", 302)
        self.body = f'<!DOCTYPE html><html><body><a href="{html.escape(self.url)}">moved here</a></body></html>\n'.encode()

    def handle(self, request, subpath: str):
        if subpath:
            return _not_found(request)
        request.respond(self.status, self.body, [("Location", self.url)], "text/html; charset=utf-8")


class JsonWebService(WebService):
    """``json``: a fixed JSON document (``value``); options ``prettify``, ``sort_keys``,
    ``allow_cross_origin`` (default true: ``Access-Control-Allow-Origin: *``) and
    ``discourage_caching``."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        options = config.get("options", {})
        sort_keys = options.get("sort_keys", False)
        if options.get("prettify", False):
            text = json.dumps(config["value"], sort_keys=sort_keys, indent=3, ensure_ascii=False)
        else:
            text = json.dumps(config["value"], sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)
        self.body = text.encode()
        self.headers = []
        if options.get("allow_cross_origin", True):
            self.headers.append(("Access-Control-Allow-Origin", "*"))
        if options.get("discourage_caching", False):
            self.headers.append(("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0"))

    def handle(self, request, subpath: str):
        if subpath:
            return _not_found(request)
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
        request.respond(200, self.body, self.headers, "application/json; charset=utf-8")


class ServiceStartError(Exception):
    """A web service cannot start; the message says why (the transport's start fails with it)."""


def import_object(dotted: str, what: str):
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ServiceStartError(f"{what}: '{dotted}' is not a dotted path 'module.Name'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except Exception as e:
        raise ServiceStartError(f"{what}: cannot import '{dotted}': {type(e).__name__}: {e}") from None


class ResourceWebService(WebService):
    """``resource``: Crossbar.io's Twisted resource given by ``classname``, here a Python
    callable called with ``extra`` (a dict, as Crossbar.io does) that returns an object with
    the service interface: ``handle(request, subpath)`` (and optionally ``max_body_size``,
    ``close()``).  A ``WebService`` subclass is built as any service: ``(transport, config)``."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        make = import_object(config["classname"], "resource service")
        try:
            if isinstance(make, type) and issubclass(make, WebService):
                self.target = make(transport, config)
            else:
                self.target = make(config.get("extra", {}))
        except Exception as e:
            raise ServiceStartError(f"resource service: '{config['classname']}' failed to start: "
                                    f"{type(e).__name__}: {e}") from None
        if not callable(getattr(self.target, "handle", None)):
            raise ServiceStartError(f"resource service: '{config['classname']}' made an object without "
                                    "handle(request, subpath)")
        self.max_body_size = getattr(self.target, "max_body_size", WebService.max_body_size)

    def handle(self, request, subpath: str):
        return self.target.handle(request, subpath)

    def close(self) -> None:
        close = getattr(self.target, "close", None)
        if callable(close):
            close()


class PathWebService(WebService):
    """``path``: nested ``paths`` below this one; the front routes into them directly (the
    nested ``WebPaths`` is ``self.paths``), so a nested ``websocket`` path works too."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.paths = WebPaths()
        factories = transport.personality.WEB_SERVICE_FACTORIES
        for path, svc_cfg in config["paths"].items():
            self.paths.add(path, factories[svc_cfg["type"]](transport, svc_cfg))

    def handle(self, request, subpath: str):
        service, sub = self.paths.resolve("/" + subpath)
        if service is None:
            status, message = sub
            return request.respond(status, message.encode() + b"\n", None, _TEXT)
        return service.handle(request, sub)

    def close(self) -> None:
        self.paths.close()
