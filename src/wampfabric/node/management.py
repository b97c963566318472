"""The optional management socket: the node management router on a Unix socket.

Off by default (the node management router never listens on the network).
With ``controller.transport`` in the config::

    "controller": {"transport": {"type": "rawsocket",
                                 "endpoint": {"type": "unix", "path": "node.sock"},
                                 "serializers": ["cbor", "msgpack", "json"]}}

the router of realm ``crossbar`` also accepts WAMP-over-RawSocket on that
socket, created inside the node directory with mode 0600 (the umask is
tightened while binding, so it never exists with wider permissions), and
each connection's peer credentials (``SO_PEERCRED``) must be the node's own
user or root.  Clients join realm ``crossbar`` with the role
``management``: they may call every ``crossbar.*`` procedure and subscribe
to every management event, but neither register nor publish, so they
cannot pose as the node controller or a worker.  ``wampfabric status``
uses the socket when it is configured.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from pathlib import Path

from ..transport.rawsocket import RawSocketServerFactory, WampRawSocketProtocol

log = logging.getLogger("wampfabric.node")

DEFAULT_AUTH = {"anonymous": {"type": "static", "role": "management"}}


def socket_path(cbdir: Path, tcfg: dict) -> Path:
    return Path(cbdir) / tcfg["endpoint"]["path"]


class _PeerCheckedProtocol(WampRawSocketProtocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        ok = False
        try:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            ok = uid in (os.getuid(), 0)
        except (OSError, AttributeError):
            ok = False
        super().connection_made(transport)
        if not ok:
            log.warning("management socket: refused a connection from another user")
            self._abort()


class ManagementSocket:
    def __init__(self, node, config: dict):
        self.node = node
        self.config = dict(config)
        self.config.setdefault("auth", DEFAULT_AUTH)
        self.path = socket_path(node.cbdir, config)
        self.server = None

    async def start(self) -> None:
        service = RawSocketServerFactory(self.node.router, self.config)
        if self.path.is_socket():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_unix_server(lambda: _PeerCheckedProtocol(service), sock=sock)
        log.info("Node management socket listening on %s (mode 0600)", self.path)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        try:
            self.path.unlink()
        except OSError:
            pass
