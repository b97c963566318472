"""Load generator for bench/wslib/servers.py (picows client for every server).

Opens N connections (subprotocol wamp.2.msgpack), keeps M binary messages of
SIZE bytes outstanding per connection (every echoed message triggers the next
send), warms up, then measures over a fixed window:

* msgs_per_s       echoed messages received by the client per second
* server_us_per_msg  server process CPU time (user+sys, psutil / /proc) per message
* server_cpu_pct   server CPU use over the window (~100 % = server-bound)
* client_cpu_pct   client CPU use over the window (~100 % = client-bound)
* core_busy_pct    busy % of each core from /proc/stat (everything that ran
                   there, incl. softirq): shows interference from other load
* server_core_other_pct  busy % of the server's core(s) minus the server
                   process: other load competing with the server

Prints one JSON object on stdout.

    python bench/wslib/client.py --port 9001 --server-pid PID --label picows \
        --case small --conns 10 --outstanding 10 --size 100 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import psutil
import uvloop
import picows
from picows import WSListener, WSMsgType

BINARY = WSMsgType.BINARY
CONT = WSMsgType.CONTINUATION


class Stats:
    received = 0
    bad = 0
    running = True


class LoadListener(WSListener):
    def __init__(self, payload: bytes, outstanding: int):
        super().__init__()
        self.payload = payload
        self.size = len(payload)
        self.outstanding = outstanding
        self.partial = 0

    def on_ws_connected(self, transport):
        for _ in range(self.outstanding):
            transport.send(BINARY, self.payload)

    def on_ws_frame(self, transport, frame):
        t = frame.msg_type
        if t == BINARY or t == CONT:
            self.partial += frame.payload_size
            if not frame.fin:
                return
            if self.partial != self.size:
                Stats.bad += 1
            self.partial = 0
            Stats.received += 1
            if Stats.running:
                transport.send(BINARY, self.payload)
        elif t == WSMsgType.CLOSE:
            transport.disconnect()


def core_busy_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) clock ticks per core from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals[:8]]
                idle = vals[3] + vals[4]
                out[name] = (sum(vals) - idle, sum(vals))
    return out


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


async def run(args) -> dict:
    payload = os.urandom(args.size)
    url = f"ws://{args.host}:{args.port}/ws"
    conns = []
    for _ in range(args.conns):
        tr, _listener = await picows.ws_connect(
            lambda: LoadListener(payload, args.outstanding), url,
            extra_headers={"Sec-WebSocket-Protocol": "wamp.2.msgpack"},
            max_frame_size=64 * 1024 * 1024)
        assert tr.response.headers.get("Sec-WebSocket-Protocol") == "wamp.2.msgpack", \
            tr.response.headers
        conns.append(tr)

    server = psutil.Process(args.server_pid)
    me = psutil.Process()
    await asyncio.sleep(args.warmup)

    k0 = core_busy_ticks()
    n0, s0, c0, t0 = Stats.received, cpu_seconds(server), cpu_seconds(me), time.perf_counter()
    await asyncio.sleep(args.duration)
    n1, s1, c1, t1 = Stats.received, cpu_seconds(server), cpu_seconds(me), time.perf_counter()
    k1 = core_busy_ticks()
    # busy % of each core over the window (all processes + softirq); if the
    # server core is far busier than the server process, something else ran there
    cores = {c: round((k1[c][0] - k0[c][0]) / max(1, k1[c][1] - k0[c][1]) * 100, 1)
             for c in k1 if c in k0}
    srv_cores = [f"cpu{i}" for i in server.cpu_affinity()]
    srv_core_busy = sum(cores.get(c, 0.0) for c in srv_cores)

    Stats.running = False
    await asyncio.sleep(0.2)
    for tr in conns:
        tr.send_close(picows.WSCloseCode.OK)
    await asyncio.sleep(0.1)
    for tr in conns:
        tr.disconnect()

    msgs = n1 - n0
    wall = t1 - t0
    return {
        "lib": args.label,
        "case": args.case,
        "conns": args.conns,
        "outstanding": args.outstanding,
        "size": args.size,
        "wall_s": round(wall, 3),
        "msgs": msgs,
        "msgs_per_s": round(msgs / wall, 1),
        "mb_per_s": round(msgs * args.size / wall / 1e6, 1),
        "server_us_per_msg": round((s1 - s0) / msgs * 1e6, 2) if msgs else None,
        "server_cpu_pct": round((s1 - s0) / wall * 100, 1),
        "client_cpu_pct": round((c1 - c0) / wall * 100, 1),
        "core_busy_pct": cores,
        # CPU on the server's core(s) not used by the server process:
        # other processes, plus kernel work not charged to it (softirq)
        "server_core_other_pct": round(srv_core_busy - (s1 - s0) / wall * 100, 1),
        "bad_sizes": Stats.bad,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--label", default="?")
    ap.add_argument("--case", default="small")
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--outstanding", type=int, default=10)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    args = ap.parse_args()
    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
