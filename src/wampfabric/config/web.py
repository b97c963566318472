"""The ``web`` transport and its path services (``websocket``, ``static``, ``nodeinfo``: the
personality's ``WEB_SERVICE_CHECKERS``), and the ``universal`` transport (RawSocket,
WebSocket and web paths on one endpoint)."""

from __future__ import annotations

import re

from .auth import check_auth
from .base import ConfigError, check_dict, check_type, checker_for
from .endpoints import check_listening_endpoint
from .transports import check_listening_transport_rawsocket, check_websocket_settings


def check_listening_transport_web(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict, "paths": dict},
               {"id": str, "options": dict, "auth": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    paths = cfg["paths"]
    if not paths:
        raise ConfigError(f"{path}.paths", "must map at least one path to a service")
    for p, svc in paths.items():
        ppath = f"{path}.paths['{p}']"
        if p != "/" and not re.fullmatch(r"[A-Za-z0-9_\-.~]+(/[A-Za-z0-9_\-.~]+)*", p):
            raise ConfigError(ppath, f"invalid path '{p}' (use '/' for the root, else segments without leading '/')")
        check_web_path_service(svc, ppath, personality)
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_listening_transport_universal(cfg, path: str, personality) -> None:
    """Crossbar.io's ``universal`` transport: ``rawsocket``, ``websocket`` (path -> WebSocket
    service) and ``web`` (``paths``) on one endpoint."""
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "rawsocket": dict, "websocket": dict, "web": dict, "auth": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    if not any(k in cfg for k in ("rawsocket", "websocket", "web")):
        raise ConfigError(path, "a universal transport needs at least one of 'rawsocket', 'websocket', 'web'")
    if "rawsocket" in cfg:
        rs = check_dict(cfg["rawsocket"], f"{path}.rawsocket", {},
                        {"serializers": list, "options": dict, "auth": dict, "max_message_size": int, "debug": bool})
        check_listening_transport_rawsocket(dict(rs, type="rawsocket", endpoint=cfg["endpoint"]),
                                            f"{path}.rawsocket", personality)
    seen = set()
    for p, ws in check_type(cfg.get("websocket", {}), dict, f"{path}.websocket").items():
        wpath = f"{path}.websocket['{p}']"
        check_type(ws, dict, wpath)
        check_web_path_service_websocket(dict(ws, type="websocket"), wpath, personality)
        seen.add(p.strip("/"))
    if "web" in cfg:
        web = check_dict(cfg["web"], f"{path}.web", {"paths": dict}, {"options": dict})
        for p, svc in web["paths"].items():
            ppath = f"{path}.web.paths['{p}']"
            if p.strip("/") in seen:
                raise ConfigError(ppath, f"path '{p}' is already a WebSocket path of this transport")
            check_web_path_service(svc, ppath, personality)
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_web_path_service(svc, path: str, personality) -> None:
    checker_for(svc, path, personality.WEB_SERVICE_CHECKERS, "web service")(svc, path, personality)


def check_web_path_service_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"serializers": list, "options": dict, "auth": dict, "url": str,
                                          "debug": bool, "cookie": dict})
    check_websocket_settings(cfg, path)


def check_web_path_service_static(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"directory": str, "package": str, "resource": str, "options": dict})
    if "package" in cfg or "resource" in cfg:
        # the static service serves 'directory' only: without this, it served the node directory (key.priv!)
        key = "package" if "package" in cfg else "resource"
        raise ConfigError(f"{path}.{key}", "static files from a Python package are not supported by this version "
                                           "yet: use 'directory'")
    if "directory" not in cfg:
        raise ConfigError(path, "missing mandatory attribute 'directory'")
    if "options" in cfg:
        check_dict(cfg["options"], f"{path}.options", {},
                   {"enable_directory_listing": bool, "mime_types": dict, "cache_timeout": (int, type(None)),
                    "default_file": str})


def check_web_path_service_nodeinfo(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {})
