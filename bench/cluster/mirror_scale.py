"""Time for a link to mirror N subscriptions and M registrations after it connects
(docs/benchmarks.md, "Clustering"): ``.venv/bin/python bench/cluster/mirror_scale.py 5000 1000 a|b``."""
import asyncio, sys, time
from pathlib import Path
REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "rlink")]
from rlinknodes import WORKER, link_config, link_info, make_nodes, wait_for

NS, NR = int(sys.argv[1]), int(sys.argv[2])
SIDE = sys.argv[3]  # where the client subscribes: "b" (mirrored on A by the in-process leg) or "a" (on B over the network)

async def gather(aws, width=500):
    aws = list(aws)
    for i in range(0, len(aws), width):
        await asyncio.gather(*aws[i:i + width])

async def main():
    a, b = make_nodes(2)
    try:
        a.start(); b.start()
        c = await (b if SIDE == "b" else a).client()
        await gather(c.subscribe(f"com.example.t{i}", lambda *x: None) for i in range(NS))
        await gather(c.register(f"com.example.p{i}", lambda: 1) for i in range(NR))
        m = await a.manage()
        t0 = time.monotonic()
        await m.call(f"{WORKER}.start_router_realm_link", "realm001", "to1", link_config(b.port))
        async def done():
            info = await link_info(m, "to1")
            side = info["here" if SIDE == "b" else "there"]
            return len(side["subscriptions"]) == NS and len(side["registrations"]) == NR
        await wait_for(done, 600, "mirrored", interval=0.05)
        t1 = time.monotonic()
        # reconnect: kill B's side by restarting B? measure initial only
        print(f"client on {SIDE}: {NS} subscriptions + {NR} registrations mirrored in {t1 - t0:.2f} s")
        await m.leave()
    finally:
        a.stop(); b.stop()

asyncio.run(main())
