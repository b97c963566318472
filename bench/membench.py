#!/usr/bin/env python3
"""Memory benchmark: router-process RSS growth under memory-hungry peers, wampfabric and
Crossbar.io side by side (issue 11).

    .venv/bin/python bench/membench.py                      # both routers, all cases (~3 min)
    .venv/bin/python bench/membench.py --target wampfabric --only slow-small,idle

Cases (each on a fresh router, RSS of the router worker process as in bench/run.py):

- ``slow-small`` / ``slow-large``: one WebSocket subscriber that never reads (SO_RCVBUF
  4 KiB), a publisher floods ``--small-events`` 10-byte events (``--large-events`` 1 KB
  events); RSS before, right after the flood (at the bound if the router has one) and
  after both clients left.
- ``slow-bound``: the same with more events than wampfabric's ``max_outgoing_buffer``
  (``--bound`` MiB, set in wampfabric's config; Crossbar.io has no such option): is the
  slow subscriber cut off, and where does RSS stop?
- ``pending``: a callee that never answers, a caller issuing ``--calls`` calls: RSS per
  1,000 pending calls, and how many calls the router refused (a per-session bound).
- ``idle``: ``--idle`` WebSocket connections that complete the handshake and never send
  HELLO: RSS per 1,000, and how many the router closed within ``--idle-wait`` seconds
  (wampfabric: ``hello_timeout``, default 10 s).

Peers are raw sockets (no WAMP library), JSON over WebSocket, so both routers see the
same bytes.  Prints a Markdown table; figures also go to bench/results/membench-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

import psutil

from routers import RouterProcess, bench_config, free_port, make_node_dir
from wampfabric.client.raw import ws_frame, ws_frames, ws_handshake_socket
from wampfabric.client.raw import encode as _encode

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CASES = ["slow-small", "slow-large", "slow-bound", "pending", "idle"]


class Router(RouterProcess):
    """A fresh router for one case; ready once a WebSocket handshake on /ws succeeds."""

    stop_timeout = 15.0

    def __init__(self, target: str, bound: int | None):
        self.port = free_port()
        ws_options = {"max_outgoing_buffer": bound} if (target == "wampfabric" and bound) else None
        self.dir = make_node_dir(f"membench-{target}-", bench_config(self.port, "web", ws_options))
        super().__init__(target, os.path.join(self.dir, ".crossbar"), os.path.join(self.dir, "router.log"))
        self.start()
        try:
            self.wait_until(lambda: ws_connect(self.port).close() or True, time.monotonic() + 60,
                            "WebSocket handshake on /ws", poll=0.2)
            self.worker = self.find_router_process(wait=5.0)
            if self.worker is None:
                raise RuntimeError(f"{target}: router worker process not found")
        except BaseException:
            self.stop()
            raise

    def rss(self) -> int:
        return self.worker.memory_info().rss


# -- raw WebSocket peers (wampfabric.client.raw; masking key 0: the payload goes as it is) -----

_ZERO_MASK = b"\0\0\0\0"


def msg(m) -> bytes:
    return ws_frame(_encode("json", m), mask=_ZERO_MASK)


def ws_connect(port: int, rcvbuf: int | None = None, timeout: float = 10) -> socket.socket:
    return ws_handshake_socket(port, rcvbuf=rcvbuf, timeout=timeout)


class Reader:
    """Reads server frames (unmasked) from a blocking socket."""

    def __init__(self, s: socket.socket):
        self.s = s
        self.buf = b""
        self.frames: list = []

    def next(self, timeout: float = 30) -> list | None:
        self.s.settimeout(timeout)
        while True:
            while self.frames:
                b0, _, payload = self.frames.pop(0)
                op = b0 & 0x0F
                if op == 0x8:
                    return None
                if op in (0x1, 0x2):
                    return json.loads(payload)
            chunk = self.s.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk
            self.frames, end = ws_frames(self.buf)
            self.buf = self.buf[end:]

    def until(self, code: int, timeout: float = 30) -> list:
        while True:
            m = self.next(timeout)
            if m is None:
                raise OSError(f"closed while waiting for message {code}")
            if m[0] == code:
                return m


def join(s: socket.socket, roles: dict) -> Reader:
    r = Reader(s)
    s.sendall(msg([1, "realm1", {"roles": roles}]))
    r.until(2)
    return r


def is_closed(s: socket.socket, timeout: float = 5) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(1 << 20):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def peer_closed(s: socket.socket) -> bool:
    """Did the router close ``s`` (EOF or reset after whatever it sent)?"""
    s.setblocking(False)
    try:
        while True:
            if not s.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


class PeakSampler:
    """The highest RSS of the router worker, sampled every 20 ms until ``stop()``."""

    def __init__(self, r: Router):
        import threading
        self.r = r
        self.peak = r.rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.02):
            try:
                self.peak = max(self.peak, self.r.rss())
            except psutil.Error:
                return

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return max(self.peak, self.r.rss())


def settle(r: Router, seconds: float = 3.0) -> int:
    time.sleep(seconds)
    return r.rss()


# -- cases -------------------------------------------------------------------------------

def case_slow(r: Router, events: int, size: int) -> dict:
    slow = ws_connect(r.port, rcvbuf=4096)
    slow.sendall(msg([1, "realm1", {"roles": {"subscriber": {}}}]) + msg([32, 1, {}, "com.flood"]))
    pub = ws_connect(r.port)
    pr = join(pub, {"publisher": {}})
    time.sleep(0.5)
    base = r.rss()
    blob = "x" * size
    sampler = PeakSampler(r)
    t0 = time.monotonic()
    batch = max(1, 100_000 // (size + 40))
    for i in range(1, events + 1, batch):
        pub.sendall(b"".join(msg([16, j, {}, "com.flood", [blob]]) for j in range(i, min(i + batch, events + 1))))
    pub.sendall(msg([16, events + 1, {"acknowledge": True}, "com.other", []]))
    pr.until(17, timeout=300)
    flood_s = time.monotonic() - t0
    time.sleep(1.0)
    peak = sampler.stop()
    cut = is_closed(slow, timeout=1.0)
    slow.close()
    pub.close()
    after = settle(r)
    return {"events": events, "size": size, "flood_s": round(flood_s, 2), "base_rss": base,
            "growth_at_flood": peak - base, "growth_after_leave": after - base, "slow_peer_cut_off": cut}


def case_pending(r: Router, calls: int) -> dict:
    callee = ws_connect(r.port)
    cr = join(callee, {"callee": {}})
    callee.sendall(msg([64, 1, {}, "com.never"]))
    cr.until(65)
    caller = ws_connect(r.port)
    kr = join(caller, {"caller": {}})
    time.sleep(0.5)
    base = r.rss()
    for i in range(1, calls + 1, 1000):
        caller.sendall(b"".join(msg([48, j, {}, "com.never", ["x" * 10]]) for j in range(i, min(i + 1000, calls + 1))))
    # a call to a missing procedure: its ERROR comes after the router handled all calls above
    caller.sendall(msg([48, calls + 1, {}, "com.missing", []]))
    refused = 0
    while True:
        m = kr.next(timeout=120)
        if m is None:
            break
        if m[0] == 8 and m[2] == calls + 1:
            break
        if m[0] == 8:
            refused += 1
    time.sleep(1.0)  # the callee does not read its INVOCATIONs: they may be queued for it, too
    peak = r.rss()
    callee_cut = is_closed(callee, timeout=0.5)
    callee.close()
    caller.close()
    after = settle(r)
    return {"calls": calls, "refused": refused, "growth": peak - base,
            "per_1000_pending": (peak - base) * 1000 // max(1, calls - refused),
            "growth_after_leave": after - base, "callee_cut_off": callee_cut}


def case_idle(r: Router, count: int, wait: float) -> dict:
    time.sleep(0.5)
    base = r.rss()
    socks = []
    for _ in range(count):
        socks.append(ws_connect(r.port))
    time.sleep(1.0)
    peak = r.rss()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.5)
    closed = sum(1 for s in socks if peer_closed(s))
    for s in socks:
        s.close()
    after = settle(r)
    return {"connections": count, "growth": peak - base, "per_1000": (peak - base) * 1000 // count,
            "closed_within_wait": closed, "wait_s": wait, "growth_after_leave": after - base}


def run_case(target: str, case: str, args) -> dict:
    bound = args.bound * 1024 * 1024 if case == "slow-bound" else None
    r = Router(target, bound)
    try:
        if case == "slow-small":
            res = case_slow(r, args.small_events, 10)
        elif case == "slow-large":
            res = case_slow(r, args.large_events, 1000)
        elif case == "slow-bound":
            res = case_slow(r, args.bound_events, 10)
            res["bound"] = bound if target == "wampfabric" else None
        elif case == "pending":
            res = case_pending(r, args.calls)
        else:
            res = case_idle(r, args.idle, args.idle_wait)
        res["router_alive"] = r.proc.poll() is None
        return res
    finally:
        r.stop()


def mb(v) -> str:
    return "-" if v is None else f"{v / 1e6:+.1f} MB"


def table(results: dict) -> str:
    rows = [("slow-small", "slow subscriber, 10-byte events: peak growth", "growth_at_flood"),
            ("slow-small", "  ... after both clients left", "growth_after_leave"),
            ("slow-large", "slow subscriber, 1 KB events: peak growth", "growth_at_flood"),
            ("slow-large", "  ... after both clients left", "growth_after_leave"),
            ("slow-bound", "slow subscriber past the bound: peak growth", "growth_at_flood"),
            ("slow-bound", "  ... slow subscriber cut off", "slow_peer_cut_off"),
            ("slow-bound", "  ... after both clients left", "growth_after_leave"),
            ("pending", "pending calls: growth per 1,000", "per_1000_pending"),
            ("pending", "  ... calls refused by the router", "refused"),
            ("pending", "  ... after both clients left", "growth_after_leave"),
            ("idle", "idle connections (no HELLO): growth per 1,000", "per_1000"),
            ("idle", "  ... closed by the router within the wait", "closed_within_wait"),
            ("idle", "  ... after they left", "growth_after_leave")]
    out = ["| case | wampfabric | Crossbar.io |", "|---|---|---|"]
    for case, label, key in rows:
        cells = []
        for target in ("wampfabric", "crossbar"):
            res = results.get(target, {}).get(case)
            if res is None:
                cells.append("-")
            elif "error" in res:
                cells.append("error")
            else:
                v = res.get(key)
                cells.append(str(v) if isinstance(v, (bool, str)) or key in ("refused", "closed_within_wait")
                             else mb(v))
        if any(c != "-" for c in cells):
            out.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["both", "wampfabric", "crossbar"], default="both")
    p.add_argument("--only", default=",".join(CASES), help="cases: " + ",".join(CASES))
    p.add_argument("--small-events", type=int, default=100_000)
    p.add_argument("--large-events", type=int, default=50_000)
    p.add_argument("--bound", type=int, default=4, help="wampfabric's max_outgoing_buffer in slow-bound (MiB)")
    p.add_argument("--bound-events", type=int, default=300_000)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--idle-wait", type=float, default=12.0, help="seconds to wait for idle connections to be closed")
    args = p.parse_args(argv)
    targets = ["wampfabric", "crossbar"] if args.target == "both" else [args.target]
    cases = [c for c in args.only.split(",") if c]
    results: dict = {t: {} for t in targets}
    for case in cases:
        for target in targets:
            print(f"[membench] {case} on {target} ...", file=sys.stderr, flush=True)
            try:
                res = run_case(target, case, args)
            except Exception as e:  # one failing case must not hide the others
                res = {"error": f"{type(e).__name__}: {e}"}
            results[target][case] = res
            print(f"[membench]   {json.dumps(res)}", file=sys.stderr, flush=True)
    report = table(results)
    print(report)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "membench-latest.json"), "w") as f:
        json.dump({"args": vars(args), "results": results, "table": report}, f, indent=2)
    return 1 if any("error" in r for t in results.values() for r in t.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
