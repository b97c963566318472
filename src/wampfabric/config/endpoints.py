"""Endpoints: where a transport listens (``tcp``, ``unix``) and where a component connects to."""

from __future__ import annotations

from .base import ConfigError, check_dict, check_type


def check_port(value, path: str) -> None:
    check_type(value, int, path)
    if not 0 <= value <= 65535:
        raise ConfigError(path, f"invalid TCP port {value} (must be 0..65535)")


def check_listening_endpoint(ep, path: str) -> None:
    check_type(ep, dict, path)
    kind = ep.get("type")
    if kind == "tcp":
        check_dict(ep, path, {"type": str, "port": int},
                   {"host": str, "interface": str, "backlog": int, "version": int, "shared": bool,
                    "user_timeout": int, "tls": dict})
        check_port(ep["port"], f"{path}.port")
        if ep.get("version", 4) not in (4, 6):
            raise ConfigError(f"{path}.version", f"must be 4 or 6, not {ep['version']!r}")
        if ep.get("backlog", 1) < 1:
            raise ConfigError(f"{path}.backlog", "must be a positive integer")
        if "tls" in ep:
            tls = check_dict(ep["tls"], f"{path}.tls", {"key": str, "certificate": str},
                             {"chain_certificates": list, "ca_certificates": list, "ciphers": str, "dhparam": str})
            for k in ("chain_certificates", "ca_certificates"):
                for i, v in enumerate(tls.get(k, [])):
                    check_type(v, str, f"{path}.tls.{k}[{i}]")
    elif kind == "unix":
        check_dict(ep, path, {"type": str, "path": str}, {"backlog": int})
        if not ep["path"]:
            raise ConfigError(f"{path}.path", "must not be empty")
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: tcp, unix)")
    else:
        raise ConfigError(f"{path}.type", f"invalid endpoint type '{kind}' (one of: tcp, unix)")


def check_connecting_endpoint(ep, path: str) -> None:
    check_type(ep, dict, path)
    kind = ep.get("type")
    if kind == "tcp":
        check_dict(ep, path, {"type": str, "port": int}, {"host": str, "version": int, "timeout": int, "tls": dict})
        check_port(ep["port"], f"{path}.port")
        if "tls" in ep:
            raise ConfigError(f"{path}.tls", "TLS client endpoints are not supported yet by this version")
    elif kind == "unix":
        check_dict(ep, path, {"type": str, "path": str}, {"timeout": int})
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: tcp, unix)")
    else:
        raise ConfigError(f"{path}.type", f"invalid endpoint type '{kind}' (one of: tcp, unix)")
