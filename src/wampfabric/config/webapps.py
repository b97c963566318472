"""Config checkers of the web services that host applications or pass requests on: ``wsgi``
and ``reverseproxy`` (Crossbar.io's shapes, its checkconfig) and ``asgi`` (wampfabric's own);
wampfabric's additions are optional keys (docs/web.md)."""

from __future__ import annotations

import re

from .base import ConfigError, check_dict

_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = (int, float)


def _app(cfg: dict, path: str) -> None:
    if not _MODULE_RE.fullmatch(cfg["module"]):
        raise ConfigError(f"{path}.module", f"'{cfg['module']}' is not a Python module name (e.g. 'myapp.web')")
    if not _NAME_RE.fullmatch(cfg["object"]):
        raise ConfigError(f"{path}.object", f"'{cfg['object']}' is not a Python name (e.g. 'app')")


def _positive(cfg: dict, key: str, path: str, zero_ok: bool = False) -> None:
    if key in cfg and (cfg[key] < 0 or (cfg[key] == 0 and not zero_ok)):
        raise ConfigError(f"{path}.{key}", f"must be {'non-negative' if zero_ok else 'positive'}, not {cfg[key]!r}")


def check_web_path_service_wsgi(cfg, path: str, personality) -> None:
    """Crossbar.io: 'module', 'object', 'minthreads', 'maxthreads'; wampfabric: 'queue' (requests
    waiting for a thread before 503s) and 'max_body_size'."""
    check_dict(cfg, path, {"type": str, "module": str, "object": str},
               {"id": str, "minthreads": int, "maxthreads": int, "queue": int, "max_body_size": int})
    _app(cfg, path)
    _positive(cfg, "minthreads", path, zero_ok=True)
    _positive(cfg, "maxthreads", path)
    _positive(cfg, "queue", path, zero_ok=True)
    _positive(cfg, "max_body_size", path, zero_ok=True)
    if cfg.get("minthreads", 0) > cfg.get("maxthreads", 20):
        raise ConfigError(f"{path}.minthreads", f"{cfg['minthreads']} is more than maxthreads "
                                                f"({cfg.get('maxthreads', 20)})")


def check_web_path_service_asgi(cfg, path: str, personality) -> None:
    """'module', 'object' (an ASGI 3 application), 'lifespan' ("auto", "on", "off"), 'max_body_size'."""
    check_dict(cfg, path, {"type": str, "module": str, "object": str},
               {"id": str, "lifespan": str, "max_body_size": int})
    _app(cfg, path)
    if cfg.get("lifespan", "auto") not in ("auto", "on", "off"):
        raise ConfigError(f"{path}.lifespan", f"must be one of 'auto', 'on', 'off', not {cfg['lifespan']!r}")
    _positive(cfg, "max_body_size", path, zero_ok=True)


def _port(cfg: dict, key: str, path: str) -> None:
    if key in cfg and not 1 <= cfg[key] <= 65535:
        raise ConfigError(f"{path}.{key}", f"must be a port number (1-65535), not {cfg[key]!r}")


def check_web_path_service_reverseproxy(cfg, path: str, personality) -> None:
    """Crossbar.io: 'host', 'port', 'path', 'forwarded_port', 'forwarded_proto'; wampfabric:
    'options' (timeouts, pool size, body limit, TLS to the upstream)."""
    check_dict(cfg, path, {"type": str, "host": str},
               {"id": str, "port": int, "path": str, "forwarded_port": int, "forwarded_proto": str,
                "options": dict})
    host = cfg["host"]
    if not host or any(c in host for c in "/ \t\r\n\x00?#@"):
        raise ConfigError(f"{path}.host", f"'{host}' is not a host name or address")
    _port(cfg, "port", path)
    _port(cfg, "forwarded_port", path)
    if cfg.get("forwarded_proto", "http") not in ("http", "https"):
        raise ConfigError(f"{path}.forwarded_proto", f"must be 'http' or 'https', not {cfg['forwarded_proto']!r}")
    p = cfg.get("path", "")
    if p and (not p.startswith("/") or any(c in p for c in " \t\r\n\x00?#")):
        raise ConfigError(f"{path}.path", f"'{p}' is not an upstream path (it starts with '/', no query)")
    if "options" in cfg:
        opts = check_dict(cfg["options"], f"{path}.options", {},
                          {"timeout": _NUMBER, "connect_timeout": _NUMBER, "max_connections": int,
                           "max_body_size": int, "tls": bool})
        for key in ("timeout", "connect_timeout", "max_connections"):
            _positive(opts, key, f"{path}.options")
        _positive(opts, "max_body_size", f"{path}.options", zero_ok=True)
