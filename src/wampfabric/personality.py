"""The personality: the switchboard through which pluggable parts are found.

Code that starts a worker, a transport, a web service or checks an
authentication method looks it up here instead of importing it, so an
extended personality (``edge``, ``master``) can add types without the core
knowing them (design document, "Crossbar.io Pluggability Overview").

- ``NATIVE_WORKERS``: native worker types (a process running
  ``python -m wampfabric.worker --type T``): log name, worker class
  (``class``: a ``worker.native.NativeWorker`` subclass by qualified name,
  imported in the worker process only) and options checker (``check_options``);
- ``WORKER_CHECKERS``: config checkers of all worker types (native + guest);
- ``WORKER_BOOTERS``: how the node boots each worker type (router, container,
  guest and any other) from its config: ``async boot(node, worker_id,
  worker_config)`` starts it through the management API
  (``crossbar.start_worker``) and applies the rest of its config (realms,
  transports, components ...) as a remote manager would; also used to
  restart a worker (``boot_native_worker`` boots a native type from the
  procedures that start its parts);
- ``NODE_EXTENSIONS``: what the node runs beside its workers (an edge node's
  uplink to its master, a master's services), by composition: the node is
  the same ``Node`` for every personality;
- ``ROUTER_TRANSPORTS`` / ``ROUTER_TRANSPORT_CHECKERS``;
- ``WEB_SERVICE_FACTORIES`` / ``WEB_SERVICE_CHECKERS``;
- ``AUTH_METHODS``: authentication methods (authmethod -> implementation).

Adding a web service type is: write a checker ``check(config, path,
personality)`` (raise ``ConfigError``) and a ``WebService`` subclass, then
register both in a ``Personality`` subclass (see docs/architecture.md).

Node extensions
---------------

``NODE_EXTENSIONS`` lists factories (a class, or any callable taking no
argument); the node calls each once per start and gets an object with two
coroutine methods::

    class Uplink:
        async def start(self, node) -> None: ...   # node: node.node.Node
        async def stop(self) -> None: ...

The node starts them in the listed order once its management router is up,
the node controller's session (``node.controller.session``) is attached and
the management socket (if configured) listens -- before the workers of the
config boot, so an extension sees every worker's management events.  It
stops them in the reverse order after it has stopped the workers (each
within ``controller.options.shutdown_timeout``).  An extension whose
``start`` raises fails the node's start: the error is logged (``Node could
not start: ...``), what has started is stopped, and the node exits with 1.
An error in ``stop`` is logged and the other extensions still stop.
"""

from __future__ import annotations

from .config import transports as transport_checks
from .config import web as web_checks
from .config import webbridge as webbridge_checks
from .config import webapps as webapps_checks
from .config import workers as worker_checks
from .common.management import worker_prefix
from .router import auth
from .transport import listeners
from .transport import web as web_transport
from .web import archive as web_archive
from .web import asgi as web_asgi
from .web import bridge as web_bridge
from .web import longpoll as web_longpoll
from .web import proxy as web_proxy
from .web import simple as web_simple
from .web import static as web_static
from .web import wsgi as web_wsgi


async def boot_guest_worker(node, worker_id: str, config: dict) -> None:
    """A guest is started with its whole worker config; there is nothing to apply afterwards."""
    await node.controller.session.call("crossbar.start_worker", worker_id, "guest", config)


async def boot_native_worker(node, worker_id: str, config: dict, parts=()) -> None:
    """Start a native worker with its ``options``, then each item of its config's lists: ``parts``
    holds ``(config key, procedure, ID stem)``; an item without ``id`` gets ``<stem>001``, ..."""
    call = node.controller.session.call
    await call("crossbar.start_worker", worker_id, config["type"], config.get("options", {}))
    prefix = worker_prefix(worker_id)
    for key, procedure, stem in parts:
        for n, item in enumerate(config.get(key, []), 1):
            await call(f"{prefix}.{procedure}", item.get("id") or f"{stem}{n:03d}", item)


async def boot_router_worker(node, worker_id: str, config: dict) -> None:
    """A router worker: its realms (with their roles), transports and router components."""
    await boot_native_worker(node, worker_id, config, (("realms", "start_router_realm", "realm"),
                                                       ("transports", "start_router_transport", "transport"),
                                                       ("components", "start_router_component", "component")))


async def boot_container_worker(node, worker_id: str, config: dict) -> None:
    """A container worker: its components."""
    await boot_native_worker(node, worker_id, config, (("components", "start_component", "component"),))


class Personality:
    NAME = "standalone"
    TITLE = "wampfabric"
    DESC = "Standalone WAMP router node"

    NATIVE_WORKERS = {
        "router": {
            "logname": "Router",
            "class": "wampfabric.worker.router.RouterWorker",
            "check_options": worker_checks.check_router_worker_options,
        },
        "container": {
            "logname": "Container",
            "class": "wampfabric.worker.container.ContainerWorker",
            "check_options": worker_checks.check_container_worker_options,
        },
    }
    WORKER_CHECKERS = {
        "router": worker_checks.check_router_worker,
        "container": worker_checks.check_container_worker,
        "guest": worker_checks.check_guest_worker,
    }
    WORKER_BOOTERS = {
        "router": boot_router_worker,
        "container": boot_container_worker,
        "guest": boot_guest_worker,
    }
    NODE_EXTENSIONS: tuple = ()

    ROUTER_TRANSPORTS = {
        "websocket": listeners.WebSocketRouterTransport,
        "rawsocket": listeners.RawSocketRouterTransport,
        "web": listeners.WebRouterTransport,
        "universal": listeners.UniversalRouterTransport,
    }
    WEB_SERVICE_FACTORIES = {
        "websocket": web_transport.WebSocketWebService,
        "static": web_static.StaticWebService,
        "archive": web_archive.ArchiveWebService,
        "nodeinfo": web_simple.NodeInfoWebService,
        "redirect": web_simple.RedirectWebService,
        "json": web_simple.JsonWebService,
        "resource": web_simple.ResourceWebService,
        "path": web_simple.PathWebService,
        "publisher": web_bridge.PublisherService,
        "caller": web_bridge.CallerService,
        "webhook": web_bridge.WebhookService,
        "longpoll": web_longpoll.LongPollService,
        "wsgi": web_wsgi.WsgiWebService,
        "asgi": web_asgi.AsgiWebService,
        "reverseproxy": web_proxy.ReverseProxyWebService,
    }
    WEB_SERVICE_CHECKERS = {
        "websocket": web_checks.check_web_path_service_websocket,
        "static": web_checks.check_web_path_service_static,
        "archive": web_checks.check_web_path_service_archive,
        "nodeinfo": web_checks.check_web_path_service_nodeinfo,
        "redirect": web_checks.check_web_path_service_redirect,
        "json": web_checks.check_web_path_service_json,
        "resource": web_checks.check_web_path_service_resource,
        "path": web_checks.check_web_path_service_path,
        "publisher": webbridge_checks.check_web_path_service_publisher,
        "caller": webbridge_checks.check_web_path_service_caller,
        "webhook": webbridge_checks.check_web_path_service_webhook,
        "longpoll": webbridge_checks.check_web_path_service_longpoll,
        "wsgi": webapps_checks.check_web_path_service_wsgi,
        "asgi": webapps_checks.check_web_path_service_asgi,
        "reverseproxy": webapps_checks.check_web_path_service_reverseproxy,
    }
    ROUTER_TRANSPORT_CHECKERS = {
        "websocket": transport_checks.check_listening_transport_websocket,
        "rawsocket": transport_checks.check_listening_transport_rawsocket,
        "web": web_checks.check_listening_transport_web,
        "universal": web_checks.check_listening_transport_universal,
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


# Personalities by name.  The extended ones live above the node (wampfabric.edge, wampfabric.master)
# and are named by dotted path, so that the node controller and worker processes can load them
# without this layer importing upwards; a class may also be registered directly.
PERSONALITIES: dict = {
    Personality.NAME: Personality,
    "edge": "wampfabric.edge.personality.EdgePersonality",
    "master": "wampfabric.master.personality.MasterPersonality",
}


def get_personality(name: str) -> type[Personality]:
    """The personality class called ``name`` (``KeyError`` if there is none)."""
    p = PERSONALITIES[name]
    if isinstance(p, str):
        import importlib

        modname, _, attr = p.rpartition(".")
        p = PERSONALITIES[name] = getattr(importlib.import_module(modname), attr)
    return p
