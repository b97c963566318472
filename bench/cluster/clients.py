"""Client processes of the cluster benchmark (bench/cluster/run.py): raw WAMP over RawSocket
(msgpack), asyncio on uvloop, as cheap per message as Python allows so that the router, not
the clients, is what a run measures.

Roles (``python bench/cluster/clients.py ROLE --port P ...``):

- ``sub``: N sessions subscribe ``--topic``, then count the EVENT frames they receive without
  decoding them (RawSocket frame headers only: the byte stream is walked header to header);
- ``pub``: N sessions publish ``--topic`` with ``acknowledge`` and ``--window`` publications in
  flight per session (so the router sets the pace, and nothing queues without bound);
- ``callee``: N sessions register ``--procedure`` (``invoke: roundrobin``, shared) and answer
  every INVOCATION with its first argument;
- ``caller``: N sessions call ``--procedure`` with ``--window`` calls in flight per session
  (``--local``: callees and callers use ``<procedure>.<their router worker>``).

Every session joins through the one port; ``--on WORKER`` makes a session reconnect until the
kernel gave it that router worker (read from WELCOME ``authextra.x_cb_worker``), ``--spread
W1,W2`` places the sessions round-robin on those workers.  The process prints one JSON line
``{"ready": true, "workers": {...}}`` once every session is set up, and then one line
``{"count": N, "t": ...}`` (messages counted so far: events received, publications or calls
acknowledged, invocations answered) for every line read from standard input; it ends at end
of input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import msgpack  # noqa: E402

from wampfabric.client.raw import RawSocketPeer  # noqa: E402
from wampfabric.protocol.codes import (CALL, ERROR, EVENT, INVOCATION, PUBLISH, PUBLISHED, REGISTER,  # noqa: E402
                                       REGISTERED, RESULT, SUBSCRIBE, SUBSCRIBED, WELCOME, YIELD)

HDR = struct.Struct(">I")


def frame(msg: list) -> bytes:
    payload = msgpack.packb(msg)
    return HDR.pack(len(payload)) + payload


def join(port: int, want: str | None, tries: int = 400) -> tuple[RawSocketPeer, str]:
    """A joined RawSocket session on ``port`` (on router worker ``want`` if given)."""
    for _ in range(tries):
        peer = RawSocketPeer(port=port, serializer="msgpack", length_exp=15)
        welcome = peer.hello("realm1")
        if not welcome or welcome[0] != WELCOME:
            raise RuntimeError(f"join refused: {welcome!r}")
        worker = welcome[2].get("authextra", {}).get("x_cb_worker", "?")
        if want is None or worker == want:
            return peer, worker
        peer.close()
    raise RuntimeError(f"no session landed on worker {want} in {tries} tries")


class Counter(asyncio.BufferedProtocol):
    """Counts RawSocket frames (header walk, no decoding)."""

    def __init__(self):
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.have = 0
        self.count = 0

    def get_buffer(self, sizehint):
        return self.view[self.have:]

    def buffer_updated(self, n):
        end = self.have + n
        buf = self.buf
        i = 0
        count = 0
        while end - i >= 4:
            ln = ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3])
            nxt = i + 4 + ln
            if nxt > end:
                break
            count += 1
            i = nxt
        self.count += count
        rest = end - i
        if rest:
            buf[:rest] = buf[i:end]
        self.have = rest

    def connection_lost(self, exc):
        pass


# a RawSocket WAMP frame header (type 0, a length < 65536) followed by msgpack [EVENT(36), ...] (an
# array of 4..6 elements: 0x94..0x96, then 0x24): a frame start.  Inside a frame these 5 bytes
# can come only from random ID bytes (the payload is b"x" * size): about 1 in 2**22 per byte, i.e. an
# error of about 1e-5 on the count of events with ~30 random bytes each
_EVENT_START = re.compile(rb"\x00..[\x94-\x96]\x24", re.S)


class FastCounter(asyncio.BufferedProtocol):
    """Counts EVENT frames with one regular-expression scan per read (in C) instead of a Python
    step per frame: the subscriber process then costs a fraction of what the router spends per
    event (``--fast-count``; checked against ``Counter`` by ``--check-count``)."""

    def __init__(self):
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.have = 0
        self.count = 0

    def get_buffer(self, sizehint):
        return self.view[self.have:]

    def buffer_updated(self, n):
        end = self.have + n
        self.count += len(_EVENT_START.findall(self.buf, 0, end))
        # a frame start cut by this read is found in the next one: keep the last 4 bytes (a
        # match needs 5, so none of them was counted already)
        keep = min(4, end)
        self.buf[:keep] = self.buf[end - keep:end]
        self.have = keep

    def connection_lost(self, exc):
        pass


class Poller:
    """Subscriber sockets read in sweeps every ``poll_ms`` instead of on every arrival (``--poll-ms``):
    the router's writes pile up in the kernel's receive buffers between sweeps and one ``recv_into``
    takes many events at once.  EVENT frames are counted with ``bytearray.count`` of the bytes
    every EVENT of the subscription starts with (the message type 36 and the msgpack subscription
    ID: 10 bytes, found by a ``memchr``-speed search; inside a frame they could only come from the
    random publication ID, about 1 in 2**72), not by a step per frame.  The subscriber processes
    then cost per event a small fraction of the router's, as subscribers on other machines would:
    what a run measures on a 2-core machine is the routers."""

    def __init__(self, socks: list, patterns: list, poll_ms: float):
        self.socks = socks
        self.patterns = patterns
        self.poll = poll_ms / 1000.0
        self.buf = bytearray(1 << 22)
        self.view = memoryview(self.buf)
        self.count = 0
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setblocking(False)
        self.tails = [b""] * len(socks)

    async def run(self) -> None:
        buf, view = self.buf, self.view
        while True:
            await asyncio.sleep(self.poll)
            for i, s in enumerate(self.socks):
                pattern = self.patterns[i]
                tail = self.tails[i]
                k = len(tail)
                buf[:k] = tail
                while True:
                    try:
                        n = s.recv_into(view[k:])
                    except BlockingIOError:
                        break
                    if not n:
                        break
                    end = k + n
                    self.count += buf.count(pattern, 0, end)
                    # a start cut by this read is found in the next one: keep len - 1 bytes (none of
                    # them was counted: a match needs them all)
                    k = min(len(pattern) - 1, end)
                    buf[:k] = buf[end - k:end]
                    if end < len(buf):
                        break  # the buffer was not filled: the socket is drained
                self.tails[i] = bytes(buf[:k])


class Session(asyncio.Protocol):
    """A decoding session: PUBLISHED / RESULT / INVOCATION drive ``on_msg``."""

    def __init__(self, on_msg):
        self.on_msg = on_msg
        self.unpacker = msgpack.Unpacker()
        self.pending = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        data = self.pending + data if self.pending else data
        i, end = 0, len(data)
        on_msg = self.on_msg
        while end - i >= 4:
            ln = ((data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3])
            if i + 4 + ln > end:
                break
            on_msg(self, msgpack.unpackb(data[i + 4:i + 4 + ln]))
            i += 4 + ln
        self.pending = data[i:]

    def connection_lost(self, exc):
        pass


async def adopt(peer: RawSocketPeer, protocol):
    sock = peer.sock
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.connect_accepted_socket(lambda: protocol, sock=sock)
    return proto


async def main(a) -> None:
    targets = a.spread.split(",") if a.spread else [a.on] if a.on else [None]
    peers = []
    for i in range(a.n):
        peers.append(join(a.port, targets[i % len(targets)]))
    workers: dict[str, int] = {}
    for _, w in peers:
        workers[w] = workers.get(w, 0) + 1
    counted = [0, 0]  # acknowledged, errors
    protos = []
    def proc_of(worker):
        return f"{a.procedure}.{worker}" if a.local else a.procedure

    if a.role == "sub":
        patterns = []
        for peer, _ in peers:
            r = peer.request([SUBSCRIBE, peer.next_id(), {}, a.topic])
            assert r[0] == SUBSCRIBED, r
            if a.poll_ms:
                patterns.append(bytes([EVENT]) + msgpack.packb(r[2]))
            else:
                protos.append(await adopt(peer, FastCounter() if a.fast_count else Counter()))
        if a.poll_ms:
            poller = Poller([peer.sock for peer, _ in peers], patterns, a.poll_ms)
            protos.append(poller)
            asyncio.get_running_loop().create_task(poller.run())
    elif a.role == "callee":
        for peer, worker in peers:
            r = peer.request([REGISTER, peer.next_id(), {"invoke": "roundrobin"}, proc_of(worker)])
            assert r[0] == REGISTERED, r

            def on_msg(s, m):
                if m[0] == INVOCATION:
                    s.transport.write(frame([YIELD, m[1], {}, m[4] if len(m) > 4 else []]))
                    counted[0] += 1
            protos.append(await adopt(peer, Session(on_msg)))
    elif a.role in ("pub", "caller"):
        payload = [b"x" * a.size] if a.size else []
        for peer, worker in peers:
            ids = iter(range(1, 1 << 62))
            if a.role == "pub":
                def mk(ids=ids):
                    return frame([PUBLISH, next(ids), {"acknowledge": True}, a.topic, payload])
                done = PUBLISHED
            else:
                def mk(ids=ids, procedure=proc_of(worker)):
                    return frame([CALL, next(ids), {}, procedure, payload])
                done = RESULT

            def on_msg(s, m, mk=mk, done=done):
                if m[0] == done:
                    counted[0] += 1
                    s.transport.write(mk())
                elif m[0] == ERROR:
                    counted[1] += 1
                    s.transport.write(mk())
            proto = await adopt(peer, Session(on_msg))
            proto.mk = mk
            protos.append(proto)
    print(json.dumps({"ready": True, "workers": workers, "pid": os.getpid()}), flush=True)
    if a.role in ("pub", "caller"):
        for p in protos:
            p.transport.write(b"".join(p.mk() for _ in range(a.window)))

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        n = sum(p.count for p in protos) if a.role == "sub" else counted[0]
        print(json.dumps({"count": n, "t": time.monotonic(), "errors": counted[1]}),
              flush=True)


def parse(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["sub", "pub", "callee", "caller"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-n", type=int, default=1, help="sessions")
    p.add_argument("--on", default=None, help="the router worker every session must land on")
    p.add_argument("--spread", default=None, help="comma-separated router workers, round-robin")
    p.add_argument("--topic", default="com.example.fanout")
    p.add_argument("--procedure", default="com.example.echo")
    p.add_argument("--local", action="store_true",
                   help="callee, caller: the procedure is --procedure.<router worker of the session>, so that "
                        "every call is served on the caller's own replica")
    p.add_argument("--fast-count", action="store_true", help="sub: count EVENT frames by a regex scan")
    p.add_argument("--poll-ms", type=float, default=0.0,
                   help="sub: read the sockets in sweeps every this many ms instead of per arrival (EVENTs counted by "
                        "the subscription's 10-byte frame start, exact)")
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--size", type=int, default=16, help="payload bytes (pub, caller)")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse()
    import uvloop
    uvloop.run(main(args))
