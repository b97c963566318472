"""Listening endpoints from Crossbar.io endpoint config (``tcp``, ``unix``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def endpoint_description(endpoint: dict) -> str:
    if endpoint["type"] == "unix":
        return f"unix:{endpoint['path']}"
    host = endpoint.get("host", endpoint.get("interface", "0.0.0.0"))
    return f"tcp:{host}:{endpoint['port']}"


def listening_socket(endpoint: dict, cbdir: str | os.PathLike) -> socket.socket:
    """Create, bind and listen on the socket an endpoint config describes."""
    kind = endpoint["type"]
    backlog = endpoint.get("backlog", 1024)
    if kind == "tcp":
        host = endpoint.get("host", endpoint.get("interface"))
        version = endpoint.get("version", 4)
        if host is None:
            host = "::" if version == 6 else "0.0.0.0"
        family = socket.AF_INET6 if (version == 6 or ":" in host) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if endpoint.get("shared"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, endpoint["port"]))
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock
    if kind == "unix":
        path = Path(cbdir) / endpoint["path"]
        if path.is_socket():
            path.unlink()  # stale socket of an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            os.chmod(path, endpoint.get("mode", 0o600) if isinstance(endpoint.get("mode"), int) else 0o600)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock
    raise ValueError(f"unsupported endpoint type {kind!r}")
