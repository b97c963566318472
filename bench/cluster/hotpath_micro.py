"""Micro benchmark of the broker's publish and the dealer's call paths (in-process, fake sends;
docs/benchmarks.md, "Clustering"): ``.venv/bin/python bench/cluster/hotpath_micro.py``."""
import asyncio, sys, time
from wampfabric.router.realm import Router
from wampfabric.transport.local import connect_local
from wampfabric.protocol.messages import parse
from wampfabric.protocol.codes import PUBLISH, CALL, YIELD
from wampfabric.protocol.serializers import JsonSerializer

REALM = {"name": "realm1", "roles": []}

async def main():
    r = Router(node_id="n1", worker_id="w1")
    r.start_realm(REALM)
    pub = await connect_local(r, "realm1", authid="pub")
    subs = [await connect_local(r, "realm1", authid=f"s{i}") for i in range(10)]
    for s in subs:
        await s.subscribe("com.t", lambda *a, **k: None)
    callee = await connect_local(r, "realm1", authid="callee")
    await callee.register("com.p", lambda: None)
    await asyncio.sleep(0.05)
    ser = JsonSerializer()
    for s in subs + [callee]:
        rs = s.transport.router_session
        rs.serializer = ser
        rs.send_raw = lambda d: None
    prs = pub.transport.router_session
    prs.send_raw = lambda d: None
    prs.serializer = ser
    realm = prs.realm
    broker, dealer = realm.broker, realm.dealer
    N = 100000
    res = {}
    for name, opts in (("publish", {}), ("publish+exclude_authid", {"exclude_authid": ["x"]})):
        best = 1e9
        for rep in range(5):
            msgs = [parse([PUBLISH, i + 1, opts, "com.t", [i]]) for i in range(N)]
            t = time.perf_counter()
            for m in msgs:
                broker.publish(prs, m)
            best = min(best, time.perf_counter() - t)
        res[name] = best / N * 1e6
    crs = callee.transport.router_session
    best = 1e9
    for rep in range(5):
        msgs = [parse([CALL, i + 1 + rep * N, {}, "com.p", [i]]) for i in range(N)]
        t = time.perf_counter()
        for m in msgs:
            dealer.call(prs, m)
        best = min(best, time.perf_counter() - t)
        crs.pending_invocations.clear(); prs.pending_calls.clear()
    res["call"] = best / N * 1e6
    for k, v in res.items():
        print(f"{k}: {v:.3f} us")

asyncio.run(main())
