"""The load generator of ``make bench-metering``: POSTs pre-signed submissions (one body per line
of a file) to a metering service with ``--concurrency`` keep-alive HTTP connections (aiohttp),
each sending its next body when the previous answer arrived.  Prints one JSON line: the counts
per status, the wall time, the rate of 200 answers and the latency percentiles (ms)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


async def main(args) -> dict:
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    next_i = 0
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker():
            nonlocal next_i
            while next_i < len(bodies):
                body = bodies[next_i]
                next_i += 1
                t = time.perf_counter()
                async with http.post(args.url, data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append(time.perf_counter() - t)

        # warm-up connections: each worker's first request is timed too; it is a small share
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 2)

    return {"sent": len(bodies), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "wall_s": round(wall, 3), "accepted_per_s": round(statuses.get(200, 0) / wall, 1),
            "p50_ms": pct(50), "p99_ms": pct(99), "concurrency": args.concurrency}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--bodies", required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(ap.parse_args()))))
