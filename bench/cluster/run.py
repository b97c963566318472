"""Figures of "every core of one node" (issue 16): one realm on 1 router worker versus N
replicas (``"options": {"replicas": N}``: N processes on one port, SO_REUSEPORT, linked in a
mesh), the cost of one rlink hop, and SO_REUSEPORT versus a forwarding proxy in front.

    .venv/bin/python bench/cluster/run.py                     # every scenario (~3 min)
    .venv/bin/python bench/cluster/run.py --only fanout,rpc   # some

Scenarios (each on a fresh node, ``wampfabric start``; clients are separate processes,
bench/cluster/clients.py, raw WAMP over RawSocket + msgpack):

- ``fanout``: events delivered/s with 1 worker and with ``--replicas`` replicas: ``--subs``
  subscriber sessions (in 4 processes, spread evenly over the replicas), 4 publishers (spread
  the same way, one process), acknowledged publications with a window; router CPU per
  delivered event (subscribers count EVENT frames with one regex scan per read, in C, so that
  they cost a fraction of the router's work per event; ``--exact-count``: a Python step per
  frame);
- ``rpc``: calls/s, same placement: callees (2 per replica) and callers (2 processes, 4
  sessions each) spread over the replicas, every caller calling a procedure registered on its
  own replica; ``rpc-shared``: one procedure, a shared (roundrobin) registration with callees
  on every replica;
- ``latency``: one publisher, one subscriber, sequential publications: publish-to-event time
  with both on the same replica and on different replicas (one rlink hop), p50/p90/p99;
- ``linkcpu``: one publisher on replica 1 and one subscriber on replica 1 (local) or replica 2
  (over the link): router CPU (all replicas) per delivered event; the difference is what
  forwarding one event over a link costs;
- ``proxy``: calls/s and joins/s through the one port of 2 replicas directly (SO_REUSEPORT)
  and through a minimal forwarding proxy (bench/cluster/proxy.py) in front of the same port;
  CPU per call of the routers and of the proxy.

Results: a Markdown table on stdout and JSON in bench/results/cluster-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from support.nodes import free_port  # noqa: E402

from wampfabric.client.connection import connect  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLIENTS = str(Path(__file__).resolve().parent / "clients.py")
PROXY = str(Path(__file__).resolve().parent / "proxy.py")
ALL = {"call": True, "register": True, "publish": True, "subscribe": True}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- the node ------------------------------------------------------------------------------------


class Node:
    PIN = False  # --pin: router worker i on core i (mod the cores); clients unpinned

    def __init__(self, replicas: int, busy_poll_us: int | None = None):
        self.replicas = replicas
        self.pin = self.PIN
        self.port = free_port()
        self.ws_port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wf-cl-"))
        self.cbdir = self.root / ".crossbar"
        self.cbdir.mkdir()
        options = {"replicas": replicas} if replicas > 1 else {}
        if busy_poll_us is not None:
            options["busy_poll_us"] = busy_poll_us
        cfg = {"version": 2,
               "controller": {"transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}},
               "workers": [{"type": "router", "id": "router1", "options": options,
                            "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [
                                {"uri": "", "match": "prefix", "allow": ALL}]}]}],
                            "transports": [
                                {"type": "rawsocket", "id": "rs", "serializers": ["msgpack"],
                                 "endpoint": {"type": "tcp", "port": self.port, "interface": "127.0.0.1"}},
                                {"type": "websocket", "id": "ws",
                                 "endpoint": {"type": "tcp", "port": self.ws_port, "interface": "127.0.0.1"}}]}]}
        (self.cbdir / "config.json").write_text(json.dumps(cfg, indent=2))
        self.proc = None
        self.pids: dict[str, int] = {}
        self.workers = [f"router1-{i}" for i in range(1, replicas + 1)] if replicas > 1 else ["router1"]

    def start(self) -> None:
        self.logf = open(self.root / "node.log", "ab")
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "wampfabric"), "start", "--cbdir", str(self.cbdir),
                                      "--loglevel", "warn"], cwd=self.root, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            asyncio.run(self._ready())
        except BaseException:
            self.stop()
            raise

    async def _ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                m = await connect(f"unix:{self.cbdir / 'node.sock'}", "crossbar")
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((self.root / "node.log").read_text()[-3000:])
                await asyncio.sleep(0.1)
        try:
            while True:
                ok = await m.call("crossbar.get_workers") == self.workers
                try:
                    for i, wid in enumerate(self.workers if ok else (), 1):
                        links = await m.call(f"crossbar.worker.{wid}.get_router_realm_links", "realm001")
                        ok = ok and len(links) == len(self.workers) - i
                        for link in links:
                            info = await m.call(f"crossbar.worker.{wid}.get_router_realm_link", "realm001", link)
                            ok = ok and info["connected"]
                    ok = ok and "rs" in await m.call(f"crossbar.worker.{self.workers[0]}.get_router_transports")
                except Exception:
                    ok = False
                if ok:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the replicas did not come up")
                await asyncio.sleep(0.1)
            for wid in self.workers:
                self.pids[wid] = (await m.call("crossbar.get_worker", wid))["pid"]
            if self.pin:
                for i, pid in enumerate(self.pids.values()):
                    psutil.Process(pid).cpu_affinity([i % (os.cpu_count() or 1)])
        finally:
            await m.leave()

    def cpu(self) -> float:
        return sum(_cpu(pid) for pid in self.pids.values())

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.logf.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _cpu(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.NoSuchProcess:
        return 0.0


# -- client processes ----------------------------------------------------------------------------


class Clients:
    def __init__(self, role: str, port: int, n: int, **kw):
        args = [PY, CLIENTS, role, "--port", str(port), "-n", str(n)]
        for k, v in kw.items():
            if v == "":
                args.append(f"--{k}")  # a flag
            elif v is not None:
                args += [f"--{k}", str(v)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{role} clients did not start")
        self.info = json.loads(line)

    def count(self) -> tuple[int, float]:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        return r["count"], r["t"]

    def cpu(self) -> float:
        return _cpu(self.proc.pid)

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def window(node: Node, counted: list[Clients], others: list[Clients], warmup: float, duration: float) -> dict:
    """Messages/s counted by ``counted`` over ``duration`` after ``warmup``; CPU of the routers
    and of all client processes in that window (seconds of CPU per second)."""
    time.sleep(warmup)
    c0 = [c.count() for c in counted]
    r0, k0 = node.cpu(), sum(c.cpu() for c in counted + others)
    time.sleep(duration)
    c1 = [c.count() for c in counted]
    r1, k1 = node.cpu(), sum(c.cpu() for c in counted + others)
    dt = statistics.mean(b[1] - a[1] for a, b in zip(c0, c1))
    n = sum(b[0] - a[0] for a, b in zip(c0, c1))
    return {"rate": n / dt, "messages": n, "seconds": dt, "router_cpu": (r1 - r0) / dt,
            "clients_cpu": (k1 - k0) / dt, "router_us_per_msg": (r1 - r0) / n * 1e6 if n else None}


# -- scenarios -----------------------------------------------------------------------------------


def fanout(a, replicas: int) -> dict:
    node = Node(replicas)
    node.start()
    procs = []
    try:
        spread = ",".join(node.workers)
        per = a.subs // 4
        count = {} if a.exact_count else {"fast-count": ""}
        if a.poll_ms:
            count = {"poll-ms": a.poll_ms}
        subs = [Clients("sub", node.port, per, spread=spread, **count) for _ in range(4)]
        procs += subs
        pubs = Clients("pub", node.port, 4, spread=spread, window=a.pub_window)
        procs.append(pubs)
        r = window(node, subs, [pubs], a.warmup, a.duration)
        r["subscribers"] = {w: sum(s.info["workers"].get(w, 0) for s in subs) for w in node.workers}
        r["publishers"] = pubs.info["workers"]
        return r
    finally:
        for p in procs:
            p.stop()
        node.stop()


def rpc(a, replicas: int, shared: bool = False) -> dict:
    """``shared``: one procedure, registered (roundrobin) by callees on every replica; else each
    replica's callers call a procedure of a callee on their own replica."""
    node = Node(replicas)
    node.start()
    procs = []
    local = None if shared else ""
    try:
        spread = ",".join(node.workers)
        callees = Clients("callee", node.port, 2 * len(node.workers), spread=spread, local=local)
        procs.append(callees)
        callers = [Clients("caller", node.port, 4, spread=spread, window=a.call_window, local=local)
                   for _ in range(2)]
        procs += callers
        r = window(node, callers, [callees], a.warmup, a.duration)
        r["callees"] = callees.info["workers"]
        return r
    finally:
        for p in procs:
            p.stop()
        node.stop()


def latency(a) -> dict:
    from wampfabric.client.raw import EVENT, PUBLISH, SUBSCRIBE, SUBSCRIBED

    sys.path.insert(0, str(Path(CLIENTS).parent))
    from clients import join

    node = Node(2)
    node.start()
    out = {}
    try:
        for case, (pw, sw) in {"same replica": ("router1-1", "router1-1"),
                               "across one link": ("router1-1", "router1-2")}.items():
            pub, _ = join(node.port, pw)
            sub, _ = join(node.port, sw)
            topic = f"com.example.lat.{case.replace(' ', '_')}"
            assert sub.request([SUBSCRIBE, sub.next_id(), {}, topic])[0] == SUBSCRIBED
            samples = []
            deadline = time.monotonic() + 20
            n = 0
            while len(samples) < a.latency_samples and time.monotonic() < deadline:
                t0 = time.perf_counter()
                pub.send([PUBLISH, pub.next_id(), {}, topic, [n]])
                try:
                    m = sub.recv(timeout=0.5)
                except TimeoutError:
                    continue  # not mirrored yet
                t1 = time.perf_counter()
                assert m[0] == EVENT, m
                n += 1
                if n > 200:  # warm-up
                    samples.append((t1 - t0) * 1e6)
            samples.sort()
            pct = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
            out[case] = {"p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "samples": len(samples)}
            pub.close()
            sub.close()
        out["added_p50_us"] = out["across one link"]["p50_us"] - out["same replica"]["p50_us"]
        return out
    finally:
        node.stop()


def linkcpu(a) -> dict:
    node = Node(2)
    node.start()
    out = {}
    try:
        for case, sw in (("local", "router1-1"), ("over the link", "router1-2")):
            sub = Clients("sub", node.port, 1, on=sw, topic=f"com.example.lc.{sw}")
            pub = Clients("pub", node.port, 1, on="router1-1", topic=f"com.example.lc.{sw}", window=a.pub_window)
            try:
                out[case] = window(node, [sub], [pub], a.warmup, a.duration)
            finally:
                pub.stop()
                sub.stop()
        out["link_us_per_event"] = out["over the link"]["router_us_per_msg"] - out["local"]["router_us_per_msg"]
        return out
    finally:
        node.stop()


def joins(port: int, n: int) -> dict:
    from wampfabric.client.raw import RawSocketPeer, WELCOME

    t0 = time.perf_counter()
    for _ in range(n):
        p = RawSocketPeer(port=port, serializer="msgpack")
        assert p.hello("realm1")[0] == WELCOME
        p.close()
    dt = time.perf_counter() - t0
    return {"joins_per_s": n / dt}


def proxy(a) -> dict:
    node = Node(2)
    node.start()
    out = {}
    try:
        pport = free_port()
        px = subprocess.Popen([PY, PROXY, str(pport), str(node.port)], stdout=subprocess.PIPE, text=True)
        assert px.stdout.readline().startswith("proxy ready")
        try:
            for case, port in (("SO_REUSEPORT (direct)", node.port), ("proxy in front", pport)):
                spread = ",".join(node.workers)
                callees = Clients("callee", port, 4, spread=spread, local="")
                callers = [Clients("caller", port, 4, spread=spread, window=a.call_window, local="")
                           for _ in range(2)]
                try:
                    p0 = _cpu(px.pid)
                    r = window(node, callers, [callees], a.warmup, a.duration)
                    r["proxy_cpu"] = (_cpu(px.pid) - p0) / r["seconds"] if port == pport else 0.0
                    r["proxy_us_per_call"] = r["proxy_cpu"] / r["rate"] * 1e6
                finally:
                    for c in [callees, *callers]:
                        c.stop()
                r.update(joins(port, a.joins))
                out[case] = r
        finally:
            px.terminate()
            px.wait()
        return out
    finally:
        node.stop()


# -- report --------------------------------------------------------------------------------------


def report(res: dict, a) -> str:
    lines = ["| scenario | figure | 1 worker | %d replicas | ratio |" % a.replicas, "| --- | --- | ---: | ---: | ---: |"]
    for name, unit in (("fanout", "events delivered/s"), ("rpc", "calls/s"), ("rpc-shared", "calls/s")):
        if name in res:
            one, many = res[name]["1"], res[name][str(a.replicas)]
            lines.append(f"| {name} | {unit} | {one['rate']:,.0f} | {many['rate']:,.0f} | {many['rate'] / one['rate']:.2f}x |")
            lines.append(f"| {name} | router CPU (cores) | {one['router_cpu']:.2f} | {many['router_cpu']:.2f} | |")
            lines.append(f"| {name} | client CPU (cores) | {one['clients_cpu']:.2f} | {many['clients_cpu']:.2f} | |")
            lines.append(f"| {name} | router CPU per message (us) | {one['router_us_per_msg']:.2f} | "
                         f"{many['router_us_per_msg']:.2f} | |")
    if "latency" in res:
        L = res["latency"]
        lines += ["", "| publish -> event (us) | p50 | p90 | p99 |", "| --- | ---: | ---: | ---: |"]
        for case in ("same replica", "across one link"):
            lines.append(f"| {case} | {L[case]['p50_us']:.0f} | {L[case]['p90_us']:.0f} | {L[case]['p99_us']:.0f} |")
        lines.append(f"| added by one hop (p50) | {L['added_p50_us']:.0f} | | |")
    if "linkcpu" in res:
        C = res["linkcpu"]
        lines += ["", "| 1 publisher, 1 subscriber | events/s | router CPU (cores) | router CPU per event (us) |",
                  "| --- | ---: | ---: | ---: |"]
        for case in ("local", "over the link"):
            lines.append(f"| {case} | {C[case]['rate']:,.0f} | {C[case]['router_cpu']:.2f} | "
                         f"{C[case]['router_us_per_msg']:.2f} |")
        lines.append(f"| forwarding over the link costs | | | {C['link_us_per_event']:.2f} |")
    if "proxy" in res:
        P = res["proxy"]
        lines += ["", "| 2 replicas behind one port | calls/s | router CPU per call (us) | proxy CPU per call (us) | "
                      "joins/s (sequential) |", "| --- | ---: | ---: | ---: | ---: |"]
        for case, r in P.items():
            lines.append(f"| {case} | {r['rate']:,.0f} | {r['router_us_per_msg']:.2f} | {r['proxy_us_per_call']:.2f} | "
                         f"{r['joins_per_s']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="fanout,rpc,rpc-shared,latency,linkcpu,proxy")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--subs", type=int, default=400, help="subscriber sessions (fanout; in 4 processes)")
    p.add_argument("--exact-count", action="store_true",
                   help="fanout: subscribers walk every frame header (a Python step per event) instead of "
                        "counting EVENT frame starts with one regex scan per read (error about 1e-5)")
    p.add_argument("--poll-ms", type=float, default=0.0,
                   help="fanout: subscribers read their sockets in sweeps every this many ms instead of being woken "
                        "per arrival (their CPU then hardly competes with the routers')")
    p.add_argument("--pub-window", type=int, default=16, help="publications in flight per publisher")
    p.add_argument("--call-window", type=int, default=16, help="calls in flight per caller session")
    p.add_argument("--pin", action="store_true", help="pin router worker i to core i (clients stay unpinned)")
    p.add_argument("--latency-samples", type=int, default=3000)
    p.add_argument("--joins", type=int, default=1000)
    a = p.parse_args(argv)
    only = a.only.split(",")
    Node.PIN = a.pin
    res: dict = {"cpus": os.cpu_count(), "args": vars(a), "git": _git()}
    scenarios = {"fanout": fanout, "rpc": rpc, "rpc-shared": lambda a, r: rpc(a, r, shared=True)}
    for name, fn in scenarios.items():
        if name in only:
            res[name] = {}
            for r in (1, a.replicas):
                log(f"{name}: {r} worker(s) ..")
                res[name][str(r)] = fn(a, r)
                log(json.dumps(res[name][str(r)]))
    for name, fn in (("latency", latency), ("linkcpu", linkcpu), ("proxy", proxy)):
        if name in only:
            log(f"{name} ..")
            res[name] = fn(a)
            log(json.dumps(res[name]))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "cluster-latest.json").write_text(json.dumps(res, indent=2))
    print(report(res, a))
    return 0


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
