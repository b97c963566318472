"""``make bench-metering``: submissions per second the metering service accepts, with SQLite and
with PostgreSQL.

Per backend: a fresh service (``wampfabric metering-service serve``) pinned to core 0 with
``taskset -c 0``, one registered master key per 100 records, ``--records`` distinct records
(several masters and mrealms, consecutive 5-minute intervals) signed beforehand with a fresh
nonce each, posted by bench/metering/load.py (a separate process pinned to core 1) over
``--concurrency`` keep-alive connections.  Every answer must be 200 (a new record each).

SQLite: the service's default (``<dir>/metering.sqlite``, WAL, ``synchronous=FULL``: one fsync per
accepted record).  PostgreSQL: a throw-away server (initdb in a temporary directory, as the
``postgres`` user when run as root; default settings, so ``fsync=on`` and
``synchronous_commit=on``) on the same machine, not pinned (it competes with both).

The table goes to stdout; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "src"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from wampfabric.metering.store import open_store  # noqa: E402
from wampfabric.protocol.metering import COUNTER_FIELDS, sign_submission  # noqa: E402

BIN = os.path.dirname(sys.executable)
WAMPFABRIC = os.path.join(BIN, "wampfabric")
PERIOD = 300 * 10**9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    for d in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench-metering: PostgreSQL's {name} not found (apt-get install postgresql-15, or --skip-postgres)")
    return found


class Pg:
    def __init__(self):
        self.root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="wf-bench-pg-", dir="/tmp")
        self.port = free_port()
        os.mkdir(os.path.join(self.dir, "sock"))
        if self.root:
            for p in (self.dir, os.path.join(self.dir, "sock")):
                shutil.chown(p, "postgres", "postgres")

    def run(self, *cmd):
        if self.root:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> str:
        data = os.path.join(self.dir, "data")
        self.run(pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        self.run(pg_bin("pg_ctl"), "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                 f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}/sock", "start")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE metering")
        return f"postgresql://postgres@127.0.0.1:{self.port}/metering"

    def stop(self):
        try:
            self.run(pg_bin("pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def make_bodies(n: int, path: str, target: str) -> None:
    """``n`` distinct signed submissions (one master key per 100 records, registered in
    ``target``), one body per line."""
    store = open_store(target)
    now = time.time_ns()
    start = (now // PERIOD - 10_000) * PERIOD
    with open(path, "wb") as f:
        for i in range(n):
            if i % 100 == 0:
                key = Ed25519PrivateKey.generate()
                pub = key.public_key().public_bytes_raw().hex()
                store.key_add(pub, f"customer{i // 1000}")
                realms = [str(uuid.uuid4()) for _ in range(4)]
            t = start + (i % 100 // 4) * PERIOD
            rec = {"timestamp_from": t, "timestamp": t + PERIOD, "mrealm_id": realms[i % 4], "pubkey": pub,
                   "seq": i, "processed": t + PERIOD + 10**9, **{c: (i * 7 + k) % 1000 for k, c in enumerate(COUNTER_FIELDS)}}
            f.write(sign_submission(rec, key, now) + b"\n")
    store.close()


def run_backend(name: str, dsn: str | None, args, work: str) -> dict:
    sdir = os.path.join(work, f"svc-{name}")
    target = dsn or os.path.join(sdir, "metering.sqlite")
    os.makedirs(sdir, mode=0o700, exist_ok=True)
    bodies = os.path.join(work, f"bodies-{name}.jsonl")
    make_bodies(args.records, bodies, target)
    port = free_port()
    cmd = ["taskset", "-c", "0", WAMPFABRIC, "metering-service", "serve", "--dir", sdir, "--port", str(port),
           "--loglevel", args.loglevel]
    if dsn:
        cmd += ["--dsn", dsn]
    log = open(os.path.join(work, f"svc-{name}.log"), "wb")
    svc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or svc.poll() is not None:
                    raise SystemExit(f"bench-metering: the {name} service did not start:\n"
                                     + open(os.path.join(work, f"svc-{name}.log")).read())
                time.sleep(0.1)
        out = subprocess.run(["taskset", "-c", "1", sys.executable, os.path.join(HERE, "load.py"),
                              "--url", f"http://127.0.0.1:{port}/submit", "--bodies", bodies,
                              "--concurrency", str(args.concurrency)], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
    finally:
        svc.send_signal(signal.SIGTERM)
        svc.wait(20)
        log.close()
    stored = len(open_store(target).records(limit=args.records + 1))
    result.update(backend=name, stored=stored)
    if result["statuses"] != {"200": args.records} or stored != args.records:
        print(f"bench-metering: {name}: not every submission was accepted and stored: {result}", file=sys.stderr)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--loglevel", default="info", help="the service's log level (info: one line per record)")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench-metering: needs two cores (service on core 0, load generator on core 1)")
    work = tempfile.mkdtemp(prefix="wf-bench-metering-")
    results = []
    try:
        results.append(run_backend("sqlite", None, args, work))
        if not args.skip_postgres:
            pg = Pg()
            try:
                results.append(run_backend("postgresql", pg.start(), args, work))
            finally:
                pg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmetering service: {args.records} distinct pre-signed records, {args.concurrency} keep-alive "
          f"connections; service on core 0, load on core 1 ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores)\n")
    print("| storage | accepted/s | p50 ms | p99 ms | statuses | stored |")
    print("|---|---:|---:|---:|---|---:|")
    for r in results:
        print(f"| {r['backend']} | {r['accepted_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{' '.join(f'{k}: {v}' for k, v in r['statuses'].items())} | {r['stored']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
