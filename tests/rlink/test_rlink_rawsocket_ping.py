"""A router link over RawSocket to a router that is up but frozen (SIGSTOP: its kernel keeps
the TCP connection and acknowledges every byte, so only a WAMP-level ping can tell): with the
link transport's ``auto_ping_interval``/``auto_ping_timeout`` (milliseconds, as Crossbar.io's
WebSocket options) the link sends RawSocket PING frames, drops the connection when no PONG comes
and withdraws what it had mirrored within interval + timeout; the router answers the pings (an
idle link stays up), and after SIGCONT the link comes back.  Without the options a RawSocket link
sends no pings (Crossbar.io's RawSocket does not answer them); the kernel-level bound it has
instead (TCP keepalive and TCP_USER_TIMEOUT, client/tcp.py) is checked on a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

from rlinknodes import link_info, make_nodes, wait_for

from support.nodes import free_port
from wampfabric.client.tcp import bound_dead_peer_time

WORKER = "crossbar.worker.router1"


def _add_rawsocket(node) -> int:
    port = free_port()
    cfg = json.loads((node.cbdir / "config.json").read_text())
    ws = cfg["workers"][0]["transports"][0]
    cfg["workers"][0]["transports"].append({"type": "rawsocket", "id": "rs", "serializers": ["cbor"],
                                            "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                                            "auth": ws["auth"]})
    (node.cbdir / "config.json").write_text(json.dumps(cfg, indent=2))
    return port


async def test_rawsocket_link_pings_drop_a_frozen_router_and_recover(started):
    a, b = make_nodes(2)
    rs_port = _add_rawsocket(b)
    started([a, b])
    m = await a.manage()
    link = {"realm": "realm1",
            "transport": {"type": "rawsocket", "serializers": ["cbor"],
                          "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": rs_port},
                          "options": {"auto_ping_interval": 500, "auto_ping_timeout": 1000}},
            "authentication": {"ticket": {"authid": "rlink", "ticket": "secret"}}}
    await m.call(f"{WORKER}.start_router_realm_link", "realm001", "rs1", link)
    callee = await b.client()
    await callee.register("com.example.on_b", lambda: "b")

    async def mirrored():
        info = await link_info(m, "rs1")
        return info["connected"] and "com.example.on_b" in info["here"]["registrations"]
    await wait_for(mirrored, 20, "B's procedure mirrored over the RawSocket link")
    # idle for several ping intervals: B's router answers the pings, the link stays
    await asyncio.sleep(2.5)
    info = await link_info(m, "rs1")
    assert info["connected"] and info["connects"] == 1, info

    os.killpg(b.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        async def withdrawn():
            info = await link_info(m, "rs1")
            return not info["connected"] and not info["here"]["registrations"]
        await wait_for(withdrawn, 6, "A dropped the frozen router and withdrew its procedure")
        took = time.monotonic() - stopped
        assert took >= 0.5, took  # not before the first ping could have been answered
    finally:
        os.killpg(b.proc.pid, signal.SIGCONT)
    await wait_for(mirrored, 30, "the link back after SIGCONT")
    caller = await a.client()
    assert await caller.call("com.example.on_b") == "b"
    print(f"withdrawn {took:.2f} s after SIGSTOP")
    await m.leave()


def test_dead_peer_bound_on_a_tcp_socket():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        assert bound_dead_peer_time(client, 20.0)
        assert client.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 20000
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        # not TCP: left alone
        a, b = socket.socketpair()
        with a, b:
            assert not bound_dead_peer_time(a, 20.0)
    finally:
        for s in (client, peer, server):
            s.close()
