"""The node controller's section: node id, options (shutdown triggers), management transport."""

from __future__ import annotations

import re

from . import defaults
from .auth import check_auth
from .base import ConfigError, check_dict, check_type
from .transports import check_serializers

NODE_SHUTDOWN_TRIGGERS = ("shutdown_on_shutdown_requested", "shutdown_on_worker_exit",
                          "shutdown_on_worker_exit_with_error", "shutdown_on_last_worker_exit")


def check_controller(controller, path: str, personality) -> None:
    check_dict(controller, path, {},
               {"id": str, "options": dict, "manhole": dict, "transport": dict, "fabric": dict,
                "enable_docker": bool, "connections": list, "blockchain": (dict, type(None))})
    if "id" in controller and not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", controller["id"]):
        raise ConfigError(f"{path}.id",
                          f"invalid node id '{controller['id']}' (must match ^[a-z][a-z0-9_]{{2,63}}$)")
    if "options" in controller:
        opath = f"{path}.options"
        opts = check_dict(controller["options"], opath, {},
                          {"title": str, "shutdown": list, "shutdown_timeout": (int, float), "env": dict,
                           "enable_parallel_worker_start": bool})
        for i, trig in enumerate(opts.get("shutdown", [])):
            check_type(trig, str, f"{opath}.shutdown[{i}]")
            if trig not in NODE_SHUTDOWN_TRIGGERS:
                raise ConfigError(f"{opath}.shutdown[{i}]",
                                  f"invalid shutdown trigger '{trig}' (one of: {', '.join(NODE_SHUTDOWN_TRIGGERS)})")
        if opts.get("shutdown_timeout", defaults.SHUTDOWN_TIMEOUT) <= 0:
            raise ConfigError(f"{opath}.shutdown_timeout", "must be positive")
    if "transport" in controller:
        tpath = f"{path}.transport"
        tr = check_dict(controller["transport"], tpath, {"type": str, "endpoint": dict},
                        {"serializers": list, "auth": dict, "options": dict, "id": str})
        if tr["type"] != "rawsocket":
            raise ConfigError(f"{tpath}.type", "the node management transport must be 'rawsocket'")
        ep = check_dict(tr["endpoint"], f"{tpath}.endpoint", {"type": str, "path": str}, {"backlog": int})
        if ep["type"] != "unix":
            raise ConfigError(f"{tpath}.endpoint.type",
                              "the node management transport listens on a Unix socket only (type 'unix')")
        if not ep["path"] or ep["path"].startswith("/") or ".." in ep["path"].split("/"):
            raise ConfigError(f"{tpath}.endpoint.path", "must be a relative path inside the node directory")
        if "serializers" in tr:
            check_serializers(tr["serializers"], f"{tpath}.serializers")
        if "auth" in tr:
            check_auth(tr["auth"], f"{tpath}.auth")
