"""The personality: the switchboard through which pluggable parts are found.

Code that starts a worker, a transport, a web service or checks an
authentication method looks it up here instead of importing it, so an
extended personality (``edge``, ``master``) can add types without the core
knowing them (design document, "Crossbar.io Pluggability Overview").

- ``NATIVE_WORKERS``: native worker types (a process running
  ``python -m wampfabric.worker --type T``): log name, controller class
  (qualified name, imported in the worker process) and options checker;
- ``WORKER_CHECKERS``: config checkers of all worker types (native + guest);
- ``WORKER_BOOTERS``: for worker types beyond router/container/guest, an
  ``async boot(node, worker_id, worker_config)`` applying the config after
  ``crossbar.start_worker``;
- ``ROUTER_TRANSPORTS`` / ``ROUTER_TRANSPORT_CHECKERS``;
- ``WEB_SERVICE_FACTORIES`` / ``WEB_SERVICE_CHECKERS``;
- ``AUTH_METHODS``: authentication methods (authmethod -> implementation).

Adding a web service type is: write a checker ``check(config, path,
personality)`` (raise ``ConfigError``) and a ``WebService`` subclass, then
register both in a ``Personality`` subclass (see docs/architecture.md).
"""

from __future__ import annotations

from .config import checkconfig
from .router import auth
from .transport import listeners, web


class Personality:
    NAME = "standalone"
    TITLE = "wampfabric"
    DESC = "Standalone WAMP router node"

    NATIVE_WORKERS = {
        "router": {
            "logname": "Router",
            "controller": "wampfabric.worker.router.RouterController",
            "checkconfig_options": checkconfig.check_router_worker_options,
        },
        "container": {
            "logname": "Container",
            "controller": "wampfabric.worker.container.ContainerController",
            "checkconfig_options": checkconfig.check_container_worker_options,
        },
    }
    WORKER_CHECKERS = {
        "router": checkconfig.check_router_worker,
        "container": checkconfig.check_container_worker,
        "guest": checkconfig.check_guest_worker,
    }
    WORKER_BOOTERS: dict = {}

    ROUTER_TRANSPORTS = {
        "websocket": listeners.WebSocketRouterTransport,
        "rawsocket": listeners.RawSocketRouterTransport,
        "web": listeners.WebRouterTransport,
        "universal": listeners.UniversalRouterTransport,
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
        "universal": checkconfig.check_listening_transport_universal,
    }
    # the router core's authentication methods (router/auth.py: authmethod -> pending-auth class);
    # the same dict object, so a method added here is one the router offers
    AUTH_METHODS = auth.PENDING

    @classmethod
    def worker_logname(cls, worker_type: str) -> str:
        if worker_type == "guest":
            return "Guest"
        w = cls.NATIVE_WORKERS.get(worker_type)
        return w["logname"] if w else worker_type.capitalize()


class EdgePersonality(Personality):
    """Edge node: a node managed by a master node (filled in by the management uplink issue)."""

    NAME = "edge"
    TITLE = "wampfabric edge"
    DESC = "Edge node, managed by a master node"


class MasterPersonality(Personality):
    """Master node: manages edge nodes (filled in by the master node issue)."""

    NAME = "master"
    TITLE = "wampfabric master"
    DESC = "Master node, managing edge nodes"


PERSONALITIES = {p.NAME: p for p in (Personality, EdgePersonality, MasterPersonality)}
