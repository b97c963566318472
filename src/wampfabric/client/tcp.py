"""Dead-peer detection on a client's TCP connection, below WAMP and independent of the peer.

A peer host that vanishes without closing (power, cable, a network partition) leaves a TCP
connection that the kernel keeps for minutes: about 15 with data waiting to be acknowledged
(retransmissions), for ever when idle.  ``bound_dead_peer_time`` makes the kernel drop it within
about ``seconds``: TCP_USER_TIMEOUT for unacknowledged data, keepalive probes when idle (the peer's
kernel answers them, so it works whatever the peer's software: a Crossbar.io router over RawSocket,
which has no pings, included).  A peer that is up but stuck (its kernel still acknowledges) is what
WAMP-level pings are for (WebSocket pings, RawSocket PING frames).
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger("wampfabric.client")


def bound_dead_peer_time(sock, seconds: float) -> bool:
    """Set the options on a connected TCP socket (anything else is left alone: False)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    idle = max(1, int(seconds / 2))
    interval = max(1, int(seconds / 6))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(seconds * 1000))
    except OSError as e:
        log.debug("cannot bound the dead-peer time of %s: %s", sock, e)
        return False
    return True
