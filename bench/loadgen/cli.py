"""The load generator's command line: one scenario, one JSON result (stdout and --json-out),
exit code 1 on failure."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from .scenarios import amain
from .state import BenchFailure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Raw-WAMP load generator (verifying)")
    p.add_argument("--url", required=True, help="router WebSocket URL, e.g. ws://127.0.0.1:8080/ws")
    p.add_argument("--realm", default="realm1")
    p.add_argument("--scenario", required=True, choices=["rpc", "pubsub", "latency", "sessions", "pubsub-patterns",
                                                       "rpc-patterns", "latency-autobahn", "probe"])
    p.add_argument("--serializer", default="msgpack", choices=["msgpack", "json"])
    p.add_argument("--duration", type=float, default=10.0, help="measurement window, seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before the window, seconds")
    p.add_argument("--drain-timeout", type=float, default=20.0)
    p.add_argument("--callers", type=int, default=4)
    p.add_argument("--outstanding", type=int, default=16, help="calls in flight per caller (rpc)")
    p.add_argument("--subscribers", type=int, default=8)
    p.add_argument("--pub-outstanding", type=int, default=32)
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50, help="joins in flight (sessions)")
    p.add_argument("--join-timeout", type=float, default=120.0, help="max time for all sessions to join")
    p.add_argument("--prefix-patterns", type=int, default=10000,
                   help="non-matching prefix subscriptions/registrations (*-patterns)")
    p.add_argument("--wildcard-patterns", type=int, default=10000,
                   help="non-matching wildcard subscriptions/registrations (*-patterns)")
    p.add_argument("--pattern-sessions", type=int, default=4, help="sessions holding those patterns")
    p.add_argument("--setup-window", type=int, default=256,
                   help="SUBSCRIBE/REGISTER requests in flight per session during the pattern setup")
    p.add_argument("--setup-timeout", type=float, default=90.0,
                   help="max time to create the patterns (and to tear them down), seconds")
    p.add_argument("--router-pid", type=int, default=None, help="PID whose CPU/RSS to sample")
    p.add_argument("--aux-pids", type=lambda v: [int(x) for x in v.split(",") if x.strip()], default=[],
                   help="comma-separated PIDs of the router's other processes (CPU reported apart)")
    p.add_argument("--probe-timeout", type=float, default=30.0)
    p.add_argument("--json-out", default=None, help="write the result JSON here (also printed to stdout)")
    p.add_argument("--no-uvloop", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    result = {"scenario": a.scenario, "url": a.url, "serializer": a.serializer,
              "duration": a.duration, "warmup": a.warmup}
    runner = asyncio.run
    loop_name = "asyncio"
    if not a.no_uvloop:
        try:
            import uvloop  # type: ignore
            runner = uvloop.run
            loop_name = "uvloop"
        except ImportError:
            pass
    result["loop"] = loop_name
    t0 = time.perf_counter()
    try:
        result.update(runner(amain(a)))
        result["ok"] = True
        rc = 0
    except BenchFailure as e:
        result["ok"] = False
        result["error"] = str(e)
        rc = 1
    except Exception as e:
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    result["elapsed_s"] = time.perf_counter() - t0
    share = result.get("loadgen_cpu_share")
    if share is not None and share > 0.9:
        result["warning"] = (f"load generator used {share:.0%} of its core during the window: "
                             f"it is likely the bottleneck; figures are a lower bound")
    if not result["ok"]:
        print(f"FAIL [{a.scenario}]: {result['error']}", file=sys.stderr)
    elif "warning" in result:
        print(f"WARNING [{a.scenario}]: {result['warning']}", file=sys.stderr)
    text = json.dumps(result, indent=None, default=str)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(text + "\n")
    print(text)
    return rc
