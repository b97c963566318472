"""The personality: the switchboard through which pluggable parts are found.

Code that starts a transport, a web service or (later) a worker type looks it
up here instead of importing it, so an extended personality (``edge``,
``master``) can add types without the core knowing them.  Adding a web
service type is: write a checker ``check(config, path) -> None`` (raise
``ConfigError``) and a factory ``factory(web_transport, config)``, then
register both (see docs/architecture.md).
"""

from __future__ import annotations

from .node import checkconfig
from .transport import listeners, web


class Personality:
    NAME = "standalone"
    TITLE = "wampfabric"

    ROUTER_TRANSPORTS = {
        "websocket": listeners.WebSocketRouterTransport,
        "rawsocket": listeners.RawSocketRouterTransport,
        "web": listeners.WebRouterTransport,
    }
    WEB_SERVICE_FACTORIES = {
        "websocket": web.WebSocketWebService,
        "static": web.StaticWebService,
        "nodeinfo": web.NodeInfoWebService,
    }
    WEB_SERVICE_CHECKERS = {
        "websocket": checkconfig.check_web_path_service_websocket,
        "static": checkconfig.check_web_path_service_static,
        "nodeinfo": checkconfig.check_web_path_service_nodeinfo,
    }
    ROUTER_TRANSPORT_CHECKERS = {
        "websocket": checkconfig.check_listening_transport_websocket,
        "rawsocket": checkconfig.check_listening_transport_rawsocket,
        "web": checkconfig.check_listening_transport_web,
    }


PERSONALITIES = {"standalone": Personality}
