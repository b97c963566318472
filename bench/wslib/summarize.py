"""Summarize bench/wslib/results.jsonl as markdown tables.

msgs/s is reported as median and best of the repeats: on a shared machine
other load only ever lowers throughput, so "best" is the closest estimate of
capacity. Server CPU time per message is reported as median (min-max); it is
far less sensitive to competing load than msgs/s.
"""

import json
import statistics
import sys
from collections import defaultdict

path = sys.argv[1] if len(sys.argv) > 1 else "bench/wslib/results.jsonl"
rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
by = defaultdict(list)
order = []
for r in rows:
    key = (r["lib"], r["case"])
    if key not in by:
        order.append(key)
    by[key].append(r)

cases, libs = [], []
for lib, case in order:
    if case not in cases:
        cases.append(case)
    if lib not in libs:
        libs.append(lib)


def med(rs, k):
    return statistics.median(r[k] for r in rs)


for case in cases:
    r0 = by[(libs[0], case)][0]
    n = len(by[(libs[0], case)])
    print(f"### case {case}: {r0['conns']} conns x {r0['outstanding']} outstanding x "
          f"{r0['size']} B ({n} runs)")
    print()
    print("| server | msgs/s median | msgs/s best | server us/msg median (min-max) "
          "| server CPU % | client CPU % | other load on server core % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for lib in libs:
        rs = by.get((lib, case))
        if not rs:
            continue
        us = [r["server_us_per_msg"] for r in rs]
        bad = sum(r["bad_sizes"] for r in rs)
        other = med(rs, "server_core_other_pct") if "server_core_other_pct" in rs[0] else float("nan")
        print(f"| {lib} | {med(rs, 'msgs_per_s'):,.0f} | {max(r['msgs_per_s'] for r in rs):,.0f} | "
              f"{statistics.median(us):.2f} ({min(us):.2f}-{max(us):.2f}) | "
              f"{med(rs, 'server_cpu_pct'):.0f} | {med(rs, 'client_cpu_pct'):.0f} | {other:.0f}"
              + (f" (BAD SIZES: {bad})" if bad else "") + " |")
    print()
