"""The ``web`` transport, its HTTP front's options and its path services (``websocket``,
``static``, ``archive``, ``nodeinfo``, ``redirect``, ``json``, ``resource``, ``path``: the
personality's ``WEB_SERVICE_CHECKERS``), and the ``universal`` transport (RawSocket,
WebSocket and web paths on one endpoint).  Crossbar.io's shapes (its checkconfig), plus the
front's limits and timeouts (docs/web.md)."""

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
    check_web_paths(paths, f"{path}.paths", personality)
    if "options" in cfg:
        check_web_options(cfg["options"], f"{path}.options")
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
        if "options" in web:
            check_web_options(web["options"], f"{path}.web.options")
        for p, svc in web["paths"].items():
            ppath = f"{path}.web.paths['{p}']"
            if p.strip("/") in seen:
                raise ConfigError(ppath, f"path '{p}' is already a WebSocket path of this transport")
            check_web_path_service(svc, ppath, personality)
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_web_path_service(svc, path: str, personality) -> None:
    checker_for(svc, path, personality.WEB_SERVICE_CHECKERS, "web service")(svc, path, personality)


_PATH_RE = re.compile(r"[A-Za-z0-9_\-.~]+(/[A-Za-z0-9_\-.~]+)*")


def check_web_paths(paths: dict, path: str, personality) -> None:
    """``paths`` of a web transport or of a ``path`` service: path -> service."""
    for p, svc in paths.items():
        ppath = f"{path}['{p}']"
        if p != "/" and not _PATH_RE.fullmatch(p):
            raise ConfigError(ppath, f"invalid path '{p}' (use '/' for the root, else segments without leading '/')")
        if p != "/" and any(seg in (".", "..") for seg in p.split("/")):
            raise ConfigError(ppath, f"invalid path '{p}': '.' and '..' are not path segments a request can reach")
        check_web_path_service(svc, ppath, personality)


_NUMBER = (int, float)


def _non_negative(cfg: dict, key: str, path: str, positive: bool = False) -> None:
    if key in cfg:
        v = cfg[key]
        if isinstance(v, bool) or (positive and v <= 0) or v < 0:
            raise ConfigError(f"{path}.{key}", f"must be a {'positive' if positive else 'non-negative'} number")


def check_web_options(cfg, path: str) -> None:
    """A web transport's ``options``: Crossbar.io's (``access_log``, ``display_tracebacks``,
    ``hsts``, ``hsts_max_age``, ``client_timeout``) and the HTTP front's limits and timeouts."""
    check_dict(cfg, path, {}, {
        "access_log": bool, "display_tracebacks": bool, "hsts": bool, "hsts_max_age": int,
        "client_timeout": _NUMBER,
        "max_request_line": int, "max_header_size": int, "max_header_count": int, "max_pipelined": int,
        "header_timeout": _NUMBER, "body_timeout": _NUMBER, "keepalive_timeout": _NUMBER,
        "write_timeout": _NUMBER, "write_buffer_high": int,
    })
    _non_negative(cfg, "hsts_max_age", path)
    _non_negative(cfg, "client_timeout", path, positive=True)
    for key in ("max_request_line", "max_header_size", "max_header_count", "max_pipelined", "header_timeout",
                "body_timeout", "keepalive_timeout", "write_timeout", "write_buffer_high"):
        _non_negative(cfg, key, path, positive=True)


def check_web_path_service_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"serializers": list, "options": dict, "auth": dict, "url": str,
                                          "debug": bool, "cookie": dict})
    check_websocket_settings(cfg, path)


def _mime_types(cfg, path: str) -> None:
    for ext, mime in check_type(cfg, dict, path).items():
        check_type(mime, str, f"{path}['{ext}']")
        if "/" not in mime:
            raise ConfigError(f"{path}['{ext}']", f"'{mime}' is not a MIME type (type/subtype)")


def check_web_path_service_static(cfg, path: str, personality) -> None:
    """Crossbar.io: 'directory' OR 'package' + 'resource'."""
    check_dict(cfg, path, {"type": str}, {"id": str, "directory": str, "package": str, "resource": str,
                                          "options": dict})
    if "directory" in cfg:
        if "package" in cfg or "resource" in cfg:
            raise ConfigError(path, "either 'directory' or 'package' + 'resource', not both")
    elif "package" not in cfg or "resource" not in cfg:
        raise ConfigError(path, "needs 'directory', or 'package' and 'resource'")
    if "options" in cfg:
        opts = check_dict(cfg["options"], f"{path}.options", {},
                          {"enable_directory_listing": bool, "mime_types": dict, "cache_timeout": (int, type(None)),
                           "default_file": str})
        if "mime_types" in opts:
            _mime_types(opts["mime_types"], f"{path}.options.mime_types")
        if opts.get("cache_timeout") is not None and opts["cache_timeout"] < 0:
            raise ConfigError(f"{path}.options.cache_timeout", "must be non-negative (or null: no caching headers)")


def check_web_path_service_archive(cfg, path: str, personality) -> None:
    """Crossbar.io's archive service; 'origin' and 'download' are accepted, nothing is downloaded."""
    check_dict(cfg, path, {"type": str, "archive": str},
               {"id": str, "origin": str, "download": bool, "cache": bool, "default_object": str,
                "object_prefix": str, "mime_types": dict, "hashes": list, "options": dict})
    if "mime_types" in cfg:
        _mime_types(cfg["mime_types"], f"{path}.mime_types")
    for i, h in enumerate(cfg.get("hashes", [])):
        if not isinstance(h, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", h):
            raise ConfigError(f"{path}.hashes[{i}]", "must be a SHA-256 hash (64 hex digits)")
    if "options" in cfg:
        check_dict(cfg["options"], f"{path}.options", {}, {"default_file": str})


def check_web_path_service_nodeinfo(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"id": str})


def check_web_path_service_redirect(cfg, path: str, personality) -> None:
    """Crossbar.io: 'url'; 'status' (301, 302, 303, 307, 308; default 302) is a wampfabric extension."""
    check_dict(cfg, path, {"type": str, "url": str}, {"id": str, "status": int})
    if not cfg["url"] or any(c in cfg["url"] for c in "\r\n\x00"):
        raise ConfigError(f"{path}.url", "must be a non-empty URL without line breaks")
    if cfg.get("status", 302) not in (301, 302, 303, 307, 308):
        raise ConfigError(f"{path}.status", "must be one of 301, 302, 303, 307, 308")


def check_web_path_service_json(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"id": str, "value": object, "options": dict})
    if "value" not in cfg:
        raise ConfigError(path, "missing mandatory attribute 'value'")
    if "options" in cfg:
        check_dict(cfg["options"], f"{path}.options", {},
                   {"prettify": bool, "allow_cross_origin": bool, "discourage_caching": bool, "sort_keys": bool})


def check_web_path_service_resource(cfg, path: str, personality) -> None:
    """Crossbar.io: 'classname' (here: a Python callable returning a service object) and 'extra'."""
    check_dict(cfg, path, {"type": str, "classname": str}, {"id": str, "extra": object})
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", cfg["classname"]):
        raise ConfigError(f"{path}.classname", f"'{cfg['classname']}' is not a dotted path 'package.module.Name'")


def check_web_path_service_path(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "paths": dict}, {"id": str})
    check_web_paths(cfg["paths"], f"{path}.paths", personality)
