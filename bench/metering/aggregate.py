"""Master CPU per aggregated usage interval: one mrealm with N nodes (default 1,000), each sending
a node heartbeat and four worker heartbeats (controller, two routers, a container: as
bench/master's simulated nodes) every 10 s, stored as the master stores them (master/heartbeats.py
node_record / worker_record, real payloads from edge/heartbeat.py), then one master heartbeat loop
iteration (master/metering.py ``Metering.iterate``) aggregates the 5-minute interval.

    python bench/metering/aggregate.py [--nodes 1000] [--intervals 3]

Prints the heartbeat records per interval, and per interval the CPU seconds of the process
(``time.process_time``: the aggregation thread and the loop) and the wall time, median of
``--intervals`` intervals (each aggregated by its own iteration)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import types
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "src"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "master"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from simnodes import WORKERS, Templates  # noqa: E402
from wampfabric.master.heartbeats import node_record, worker_record  # noqa: E402
from wampfabric.master.metering import Metering, check_settings  # noqa: E402
from wampfabric.master.schema import MrealmSchema, open_mrealm_db  # noqa: E402
from wampfabric.master.store import MasterStore  # noqa: E402

S = 10**9
P = 300 * S
PERIOD = 10


class _Heartbeats:
    def __init__(self, db):
        self.db = db
        self._ex = ThreadPoolExecutor(1)

    async def read(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._ex, fn, self.db, *args)


def fill(db, mrealm_oid, nodes: int, t0: int, intervals: int) -> int:
    tpl = Templates(PERIOD)
    schema = MrealmSchema.attach(db)
    node_oids = [uuid.uuid4() for _ in range(nodes)]
    n = 0
    for i in range(intervals * 300 // PERIOD):
        with db.begin(write=True) as txn:
            for k, oid in enumerate(node_oids):
                recv = t0 + i * PERIOD * S + k * (PERIOD * S // nodes)
                hb = tpl.node("m1", i, "00" * 32)
                schema.mnode_logs.insert(txn, (recv, oid), node_record(hb, recv, oid, mrealm_oid, 1))
                for wid, wtype in WORKERS:
                    whb = tpl.worker(wtype, "m1", i, 7)
                    schema.mworker_logs.insert(txn, (recv, oid, wid), worker_record(whb, recv, oid, mrealm_oid, wid))
                n += 1 + len(WORKERS)
    return n // intervals


async def run(nodes: int, intervals: int) -> None:
    root = tempfile.mkdtemp(prefix="wf-bench-agg-")
    store = MasterStore.open(root)
    user = store.ensure_user("superuser")
    mrealm = store.create_mrealm("m1", user)
    db = open_mrealm_db(root, mrealm.oid, maxsize=8 * 2**30)
    t0 = (time.time_ns() // P - intervals - 2) * P
    t_fill = time.monotonic()
    per_interval = fill(db, mrealm.oid, nodes, t0, intervals)
    print(f"{nodes} nodes x {1 + len(WORKERS)} heartbeats every {PERIOD} s: {per_interval} records per 5-minute "
          f"interval (stored in {time.monotonic() - t_fill:.0f} s)")
    master = types.SimpleNamespace(store=store, cbdir=root, mrealms={"m1": types.SimpleNamespace(
        heartbeats=_Heartbeats(db))})
    key = Ed25519PrivateKey.generate()
    metering = Metering(master, check_settings({}), signing_key=key)
    cpu, wall = [], []
    for k in range(intervals):
        metering.clock = lambda k=k: t0 + (k + 1) * P + 6 * S  # one more interval has ended
        c0, w0 = time.process_time(), time.perf_counter()
        await metering.iterate()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    recs = store.usage(mrealm.oid)
    assert len(recs) == intervals, f"{len(recs)} records"
    assert all(r.nodes == nodes * 300 for r in recs), [r.nodes for r in recs]
    print(f"per aggregated interval: CPU {statistics.median(cpu) * 1000:.0f} ms (median of {intervals}; "
          f"{statistics.median(cpu) * 1e6 / per_interval:.1f} us per heartbeat record), wall "
          f"{statistics.median(wall) * 1000:.0f} ms; {100 * statistics.median(cpu) / 300:.2f} % of one core "
          f"at one interval per 5 minutes")
    db.close()
    store.close()
    import shutil
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--intervals", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(run(args.nodes, args.intervals))


if __name__ == "__main__":
    main()
