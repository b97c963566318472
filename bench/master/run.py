"""``make bench-master``: N simulated edge nodes against wampfabric's master and Crossbar.io
26.10's master, in the same run, on the same machine (bench/README.md, "Master at scale").

Per master and N (default 100 and 1,000):

1. start the master pinned to core 0 (``taskset -c 0``: the node controller and every worker of
   it share that core): ours by ``wampfabric master init`` + ``master start``, Crossbar.io's by
   ``crossbar master start`` with the override config of protocol reference §1, both with a
   superuser key (``CROSSBAR_FABRIC_SUPERUSER``);
2. as the superuser (autobahn-python, cryptosign): ``create_mrealm({"name": "bench"})``, wait
   until the mrealm answers ``crossbarfabriccenter.mrealm.get_status``, then pair N fresh node
   keys with ``crossbarfabriccenter.mrealm.pair_node`` (both masters speak it);
3. the simulated nodes (bench/master/simnodes.py, one process pinned to core 1) join and
   register their procedures; then a settling pause (both masters query joining nodes);
4. the window: CPU times of every master process read, heartbeats on (one node + 4 worker
   heartbeats per node per ``--period``), after two thirds of the window ``--kill`` nodes lose
   their connection without GOODBYE (aborted TCP) and an observer session (superuser on the mrealm)
   times ``crossbarfabriccenter.mrealm.on_node_shutdown`` for each; at the end the heartbeats
   stop and the simulator waits for every PUBLISHED;
5. drain: the stored records are counted read-only until they stop changing (or equal what was
   acknowledged), then the CPU times are read again and the master is stopped (SIGTERM), and the
   database counted once more (ours through wampfabric.master.schema, Crossbar.io's through cfxdb
   in its venv: bench/master/cb_read.py).

Figures: master CPU per stored heartbeat (all master processes, window + drain, per process
too), router worker CPU as % of its core during the window, heartbeats sent / acknowledged /
stored / lost (acknowledged and not stored, matched record by record), LMDB bytes per record, time to mark a killed node offline.
Results: bench/results/master-latest.md and .json (and master-run-<time>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "src"))

from fabric_session import Superuser, new_seed, pubkey_of  # noqa: E402
from routers import RouterProcess, cmdline_of, free_port, port_open  # noqa: E402

CROSSBAR = os.path.join(BENCH, ".venv-crossbar", "bin", "crossbar")
CROSSBAR_PY = os.path.join(BENCH, ".venv-crossbar", "bin", "python")
WAMPFABRIC = os.path.join(REPO, ".venv", "bin", "wampfabric")
MREALM = "bench"
RESULTS = os.path.join(BENCH, "results")


def log(msg: str) -> None:
    print(f"[bench-master {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- masters -------------------------------------------------------------------------------------


class MasterUnderTest:
    target = "?"

    def __init__(self, root: str, core: str):
        self.root = root
        self.cbdir = os.path.join(root, "master")
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.seed = new_seed()
        self.superuser_file = os.path.join(root, "superuser.pub")
        with open(self.superuser_file, "w") as f:
            f.write(f"public-key-ed25519: {pubkey_of(self.seed)}\n")
        self.core = core
        self.proc: RouterProcess | None = None
        self.mrealm_oid: str | None = None

    def env(self) -> dict:
        env = dict(os.environ, CROSSBAR_FABRIC_SUPERUSER=self.superuser_file, PYTHONUNBUFFERED="1")
        env.pop("CROSSBAR_FABRIC_URL", None)
        return env

    def superuser(self, realm=None) -> Superuser:
        return Superuser(self.url, self.seed, realm)

    def processes(self) -> list:
        return self.proc.process_tree() if self.proc else []

    def label(self, p) -> str:
        return cmdline_of(p)[:60]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=30)


class Ours(MasterUnderTest):
    target = "wampfabric"

    def start(self) -> None:
        r = subprocess.run([WAMPFABRIC, "master", "init", "--cbdir", self.cbdir, "--listen",
                            f"127.0.0.1:{self.port}"], capture_output=True, text=True, env=self.env())
        if r.returncode != 0:
            raise RuntimeError(f"master init failed: {r.stderr}{r.stdout}")
        self.proc = RouterProcess("wampfabric", self.cbdir, os.path.join(self.root, "master.log"),
                                  prefix=["taskset", "-c", self.core], env=self.env())
        self.proc.cmd = ["taskset", "-c", self.core, WAMPFABRIC, "master", "start", "--cbdir", self.cbdir]
        self.proc.start()

    def label(self, p) -> str:
        cl = cmdline_of(p)
        if "wampfabric.worker" in cl:
            parts = cl.split()
            wid = parts[parts.index("--id") + 1] if "--id" in parts[:-1] else "?"
            wtype = parts[parts.index("--type") + 1] if "--type" in parts[:-1] else "?"
            return f"{wtype} worker {wid}"
        return "node controller"

    def count(self, keys_path: str | None = None) -> dict:
        from wampfabric.master.schema import MrealmSchema, open_mrealm_db

        db = open_mrealm_db(self.cbdir, self.mrealm_oid, readonly=True)
        try:
            ms = MrealmSchema.attach(db)
            with db.begin() as txn:
                node, worker = ms.mnode_logs.count(txn), ms.mworker_logs.count(txn)
                if keys_path:
                    keys = [[str(r.node_id), "", r.seq] for r in ms.mnode_logs.select(txn)]
                    keys += [[str(r.node_id), r.worker_id, r.seq] for r in ms.mworker_logs.select(txn)]
                    with open(keys_path, "w") as f:
                        json.dump(keys, f)
            st = db.stats()
        finally:
            db.close()
        return {"node": node, "worker": worker, "used_bytes": st["used"], "file_bytes": st["file"]}


class Crossbar(MasterUnderTest):
    target = "crossbar"

    def start(self) -> None:
        os.makedirs(self.cbdir, exist_ok=True)
        override = {"version": 2, "controller": {"blockchain": None},
                    "workers": [{"transports": ["COPY", "COPY", {"paths": {"autobahn": None},
                                                                 "endpoint": {"interface": "127.0.0.1",
                                                                              "port": self.port}}]},
                                "COPY"]}
        with open(os.path.join(self.cbdir, "config.json"), "w") as f:
            json.dump(override, f)
        self.proc = RouterProcess("crossbar", self.cbdir, os.path.join(self.root, "master.log"), env=self.env())
        self.proc.cmd = ["taskset", "-c", self.core, CROSSBAR, "master", "start", "--cbdir", self.cbdir]
        self.proc.start()

    def label(self, p) -> str:
        # the worker processes' command lines do not name the worker: the master starts its
        # containers in the order of its config, cfrealmmanager1 (domain) then cfcontainer1 (mrealms)
        cl = cmdline_of(p)
        if "RouterController" in cl:
            return "router worker cfrouter1"
        if "ContainerController" in cl:
            containers = sorted((q for q in self.processes() if "ContainerController" in cmdline_of(q)),
                                key=lambda q: (q.create_time(), q.pid))
            names = ["container cfrealmmanager1 (domain)", "container cfcontainer1 (mrealms)"]
            for i, q in enumerate(containers):
                if q.pid == p.pid:
                    return names[i] if i < len(names) else "container"
            return "container"
        return "node controller"

    def count(self, keys_path: str | None = None) -> dict:
        r = subprocess.run([CROSSBAR_PY, os.path.join(HERE, "cb_read.py"), self.cbdir, MREALM,
                            *([keys_path] if keys_path else [])],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"reading Crossbar.io's databases failed:\n{r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


# -- CPU -----------------------------------------------------------------------------------------


def cpu_snapshot(master: MasterUnderTest) -> dict:
    out = {}
    procs = master.processes()
    if os.environ.get("BENCH_DEBUG"):
        log(f"processes: {[(p.pid, cmdline_of(p)[:50]) for p in procs]}")
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = {"label": master.label(p), "cpu": t.user + t.system}
        except psutil.Error:
            pass
    return out


def cpu_delta(a: dict, b: dict) -> dict:
    per = {}
    for pid, v in b.items():
        base = a.get(pid, {"cpu": 0.0})["cpu"]
        key = f"{v['label']} ({pid})"
        per[key] = round(v["cpu"] - base, 3)
    return per


def machine_busy() -> tuple:
    t = psutil.cpu_times()
    return t, time.monotonic()


def profile_signal(master: MasterUnderTest, sig) -> None:
    """With BENCH_PROFILE_ROUTER=1: SIGUSR1 / SIGUSR2 to the master's router worker at the window's
    start and end (a sitecustomize.py on PYTHONPATH that profiles on these signals: bench/README.md)."""
    if not os.environ.get("BENCH_PROFILE_ROUTER"):
        return
    for p in master.processes():
        if master.label(p).startswith("router worker"):
            os.kill(p.pid, sig)


# -- simulator -----------------------------------------------------------------------------------


class Sim:
    def __init__(self, url: str, keys: list, period: float, core: str, root: str):
        path = os.path.join(root, "keys.json")
        with open(path, "w") as f:
            json.dump(keys, f)
        os.chmod(path, 0o600)
        self.proc = subprocess.Popen(["taskset", "-c", core, sys.executable, os.path.join(HERE, "simnodes.py"),
                                      "--url", url, "--keys", path, "--period", str(period)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(root, "sim.log"), "wb"), text=True,
                                     start_new_session=True)

    async def cmd(self, obj: dict, timeout: float = 300) -> dict:
        loop = asyncio.get_running_loop()

        def io():
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the simulator exited (code {self.proc.poll()}) on {obj}")
            return json.loads(line)

        return await asyncio.wait_for(loop.run_in_executor(None, io), timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except Exception:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


# -- one run -------------------------------------------------------------------------------------


async def wait_ready(master: MasterUnderTest, deadline: float) -> None:
    last = None
    while time.monotonic() < deadline:
        if not master.proc.running():
            raise RuntimeError(f"{master.target} master exited; log tail:\n{master.proc.log_tail()}")
        if port_open(master.port):
            try:
                async with master.superuser() as s:
                    await s.call("crossbarfabriccenter.domain.get_status")
                if master.target == "crossbar":  # its mrealm controllers start last (protocol §2)
                    async with master.superuser("default") as s:
                        await s.call("crossbarfabriccenter.mrealm.get_status")
                return
            except Exception as e:
                last = e
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{master.target} master not ready in time ({last!r}); log tail:\n{master.proc.log_tail()}")


async def pair_all(master: MasterUnderTest, keys: list, concurrency: int = 16) -> dict:
    async with master.superuser() as s:
        mr = await s.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": MREALM})
        master.mrealm_oid = str(mr["oid"])
        deadline = time.monotonic() + 60
        while True:  # the mrealm's controller answers (Crossbar.io starts it asynchronously)
            try:
                async with master.superuser(MREALM) as m:
                    await m.call("crossbarfabriccenter.mrealm.get_status")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        oids = {}
        sem = asyncio.Semaphore(concurrency)

        async def one(k):
            async with sem:
                node = await s.call("crossbarfabriccenter.mrealm.pair_node", k["pubkey"], MREALM, k["name"], None)
                oids[k["name"]] = str(node["oid"])

        t0 = time.monotonic()
        await asyncio.gather(*(one(k) for k in keys))
        log(f"{master.target}: paired {len(oids)} nodes in {time.monotonic() - t0:.1f} s")
        return oids


async def settle_count(master: MasterUnderTest, expected: int, max_wait: float) -> tuple:
    """Count until the stored records stop changing (two equal readings 2 s apart) or reach
    ``expected``; returns (count, seconds waited)."""
    t0 = time.monotonic()
    last = None
    while True:
        c = await asyncio.get_running_loop().run_in_executor(None, master.count)
        total = c["node"] + c["worker"]
        if total >= expected or (last is not None and total == last) or time.monotonic() - t0 > max_wait:
            return c, time.monotonic() - t0
        last = total
        await asyncio.sleep(2.0)


async def run_one(target: str, n: int, a) -> dict:
    root = tempfile.mkdtemp(prefix=f"wf-benchmaster-{target}-{n}-")
    master = (Ours if target == "wampfabric" else Crossbar)(root, a.master_core)
    sim = None
    res: dict = {"target": target, "nodes": n, "period_s": a.period, "window_s": a.window, "root": root}
    try:
        t0 = time.monotonic()
        master.start()
        await wait_ready(master, time.monotonic() + 120)
        res["startup_s"] = round(time.monotonic() - t0, 1)
        log(f"{target}: master ready in {res['startup_s']} s (port {master.port})")
        keys = []
        for i in range(n):
            seed = new_seed()
            keys.append({"name": f"node{i:04d}", "seed": seed.hex(), "pubkey": pubkey_of(seed)})
        oids = await pair_all(master, keys)
        sim = Sim(master.url, [{"name": k["name"], "seed": k["seed"]} for k in keys], a.period, a.sim_core, root)
        j = await sim.cmd({"cmd": "join"})
        res["join"] = j
        log(f"{target}: {j['joined']}/{n} nodes joined in {j['seconds']} s")
        if j["joined"] != n:
            raise RuntimeError(f"not every node joined: {j}")
        await asyncio.sleep(min(a.settle, 2.0))  # the masters query the nodes that joined
        ci, ti = cpu_snapshot(master), time.monotonic()
        await asyncio.sleep(max(a.settle - 2.0, 1.0))
        idle = cpu_delta(ci, cpu_snapshot(master))
        res["idle_core_pct"] = round(100 * sum(idle.values()) / (time.monotonic() - ti), 1)

        shutdowns: dict = {}
        async with master.superuser(MREALM) as obs:
            def on_shutdown(node_oid=None, *args, **kw):
                shutdowns.setdefault(str(node_oid), time.time())

            await obs.subscribe(on_shutdown, "crossbarfabriccenter.mrealm.on_node_shutdown")
            before = await asyncio.get_running_loop().run_in_executor(None, master.count)
            c0, m0 = cpu_snapshot(master), machine_busy()
            profile_signal(master, signal.SIGUSR1)
            await sim.cmd({"cmd": "go"})
            await asyncio.sleep(a.window * 2 / 3)
            victims = [k["name"] for k in keys[: a.kill]]
            killed = (await sim.cmd({"cmd": "kill", "names": victims}))["killed"]
            await asyncio.sleep(a.window / 3)
            c_win, m_win = cpu_snapshot(master), machine_busy()
            profile_signal(master, signal.SIGUSR2)
            halted = await sim.cmd({"cmd": "halt"})
            rep = await sim.cmd({"cmd": "report"})
            acked_path = os.path.join(root, "acked.json")
            await sim.cmd({"cmd": "acked", "path": acked_path})
            acked = rep["acked_node"] + rep["acked_worker"]
            expected = before["node"] + before["worker"] + acked
            counted, drain_s = await settle_count(master, expected, a.drain)
            c1 = cpu_snapshot(master)
            wait_until = time.monotonic() + 30
            while time.monotonic() < wait_until and any(oids[v] not in shutdowns for v in killed):
                await asyncio.sleep(0.2)
        res["sim"] = rep
        res["halted"] = halted
        res["drain_s"] = round(drain_s, 1)
        res["offline_s"] = {v: (round(shutdowns[oids[v]] - t, 3) if oids[v] in shutdowns else None)
                            for v, t in killed.items()}
        # the machine: CPU of everything during the window (other helpers' tests show up here)
        tw = m_win[1] - m0[1]
        busy = lambda t: sum(t) - t.idle - getattr(t, "iowait", 0)  # noqa: E731
        res["machine_busy_cores_in_window"] = round((busy(m_win[0]) - busy(m0[0])) / tw, 2)
        res["cpu_window"] = cpu_delta(c0, c_win)
        res["cpu_total"] = cpu_delta(c0, c1)
        res["window_measured_s"] = round(tw, 2)
        sim.stop()
        sim = None
        master.stop()
        stored_path = os.path.join(root, "stored.json")
        final = await asyncio.get_running_loop().run_in_executor(None, master.count, stored_path)
        with open(acked_path) as f:
            acked_set = {(oids[name], w, seq) for name, w, seq in json.load(f)}
        with open(stored_path) as f:
            stored_set = {tuple(k) for k in json.load(f)}
        res["lost_exact"] = len(acked_set - stored_set)  # acknowledged, not stored
        res["stored_unacked"] = len(stored_set - acked_set)  # stored, PUBLISHED never seen (killed nodes)
        res["db_before"], res["db_drained"], res["db_final"] = before, counted, final
        stored = final["node"] + final["worker"] - before["node"] - before["worker"]
        stored_drained = counted["node"] + counted["worker"] - before["node"] - before["worker"]
        res["stored"] = stored
        res["stored_node"] = final["node"] - before["node"]
        res["stored_worker"] = final["worker"] - before["worker"]
        res["stored_when_drained"] = stored_drained
        res["acked"] = acked
        res["lost"] = res["lost_exact"]
        cpu_all = sum(res["cpu_total"].values())
        res["cpu_total_s"] = round(cpu_all, 3)
        res["us_per_stored"] = round(cpu_all / max(stored_drained, 1) * 1e6, 1)
        router = [v for k, v in res["cpu_window"].items() if k.startswith("router worker")]
        res["router_core_pct"] = round(100 * sum(router) / tw, 1) if router else None
        res["master_core_pct"] = round(100 * sum(res["cpu_window"].values()) / tw, 1)
        recs = final["node"] + final["worker"]
        res["bytes_per_record"] = round(final["used_bytes"] / recs, 1) if recs else None
        offs = [v for v in res["offline_s"].values() if v is not None]
        res["offline_max_s"] = max(offs) if offs else None
        res["offline_detected"] = f"{len(offs)}/{len(killed)}"
        # held: below a full core, nothing lost, and storing as fast as heartbeats come (what the
        # window brought is stored within two periods after it, not worked off for minutes)
        res["held_on_one_core"] = bool(res["master_core_pct"] < 100 and res["lost"] == 0
                                       and res["drain_s"] <= 2 * a.period + 2)
        log(f"{target} N={n}: stored {stored} of {acked} acknowledged (lost {res['lost']}), "
            f"{res['us_per_stored']} us CPU per stored heartbeat, router {res['router_core_pct']}% of its core, "
            f"offline after {res['offline_max_s']} s")
        return res
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"{target} N={n} FAILED: {res['error']}")
        try:
            res["master_log_tail"] = master.proc.log_tail(40) if master.proc else None
        except Exception:
            pass
        return res
    finally:
        if sim is not None:
            sim.stop()
        master.stop()
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


# -- report --------------------------------------------------------------------------------------


def fmt(v, unit=""):
    if v is None:
        return "-"
    return f"{v:,}{unit}" if isinstance(v, int) else f"{v}{unit}"


def report(results: list, a) -> str:
    lines = [f"# Master at scale: wampfabric vs Crossbar.io 26.10 ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"Heartbeat period {a.period} s (1 node + 4 worker heartbeats per node per period), window {a.window} s, "
             f"{a.kill} nodes killed (TCP aborted, no GOODBYE) after 2/3 of the window; master on core "
             f"{a.master_core}, simulated nodes on core {a.sim_core}.", ""]
    for n in sorted({r["nodes"] for r in results}):
        rows = {r["target"]: r for r in results if r["nodes"] == n}
        wf, cb = rows.get("wampfabric", {}), rows.get("crossbar", {})
        lines += [f"## N = {n:,} nodes", "", "| figure | wampfabric | crossbar | ratio wf/cb |", "| --- | --- | --- | --- |"]

        def row(name, key, unit="", lower_better=True):
            x, y = wf.get(key), cb.get(key)
            ratio = ""
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y:
                ratio = f"{x / y:.3f}"
            lines.append(f"| {name} | {fmt(x, unit)} | {fmt(y, unit)} | {ratio} |")

        row("master CPU per stored heartbeat (µs, all processes; lower is better)", "us_per_stored")
        row("master CPU in the window (% of one core, all processes)", "master_core_pct", " %")
        row("router worker CPU in the window (% of its core)", "router_core_pct", " %")
        row("heartbeats acknowledged (PUBLISHED)", "acked")
        row("heartbeats stored (node + worker)", "stored")
        row("node heartbeats stored", "stored_node")
        row("worker heartbeats stored", "stored_worker")
        row("lost (acknowledged, not stored; matched by node, worker, seq)", "lost")
        row("stored without PUBLISHED seen (killed nodes' last ones)", "stored_unacked")
        row("idle master CPU, nodes joined, no heartbeats (% of a core)", "idle_core_pct", " %")
        row("LMDB bytes per record", "bytes_per_record")
        row("killed node marked offline after (s, worst)", "offline_max_s")
        row("drain after the window (s)", "drain_s")
        row("machine busy during the window (cores of 2)", "machine_busy_cores_in_window")
        lines.append(f"| held on one core (master < 100 %, nothing lost, stored within 2 periods after the window) | {wf.get('held_on_one_core', '-')} | "
                     f"{cb.get('held_on_one_core', '-')} | |")
        lines.append("")
        for r in (wf, cb):
            if not r:
                continue
            if r.get("error"):
                lines.append(f"- **{r['target']} FAILED**: {r['error']}")
                continue
            per = ", ".join(f"{k}: {v} s" for k, v in r["cpu_total"].items())
            lines.append(f"- {r['target']}: CPU by process (window + drain): {per}; offline detected "
                         f"{r['offline_detected']}")
        lines.append("")
    return "\n".join(lines)


async def amain(a) -> int:
    results = []
    for n in a.nodes:
        for target in a.targets:
            if target == "crossbar" and not os.path.exists(CROSSBAR):
                log("crossbar: not installed (bash bench/setup_crossbar.sh): skipped")
                continue
            results.append(await run_one(target, n, a))
    os.makedirs(a.results, exist_ok=True)
    md = report(results, a)
    meta = {"machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "args": vars(a), "results": results}
    with open(os.path.join(a.results, "master-latest.md"), "w") as f:
        f.write(md + "\n")
    for name in ("master-latest.json", time.strftime("master-run-%Y%m%d-%H%M%S.json")):
        with open(os.path.join(a.results, name), "w") as f:
            json.dump(meta, f, indent=1, default=str)
    print(md)
    return 1 if any(r.get("error") for r in results) or any(
        r["target"] == "wampfabric" and r.get("lost") for r in results) else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the master at scale: simulated edge nodes vs both masters")
    ap.add_argument("--nodes", default="100,1000", help="comma-separated N (default 100,1000)")
    ap.add_argument("--targets", default="wampfabric,crossbar")
    ap.add_argument("--period", type=float, default=2.0, help="heartbeat period of the simulated nodes (s)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds of heartbeats")
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds between join and window (the last 10 measure the idle master)")
    ap.add_argument("--drain", type=float, default=120.0, help="at most this long waiting for storage after the window")
    ap.add_argument("--kill", type=int, default=5, help="nodes killed during the window")
    ap.add_argument("--master-core", default="0")
    ap.add_argument("--sim-core", default="1")
    ap.add_argument("--keep", action="store_true", help="keep the node directories")
    ap.add_argument("--results", default=RESULTS, help="directory of master-latest.md/.json (bench/results)")
    a = ap.parse_args(argv)
    a.nodes = [int(x) for x in a.nodes.split(",") if x]
    a.targets = [t for t in a.targets.split(",") if t]
    return asyncio.run(amain(a))


if __name__ == "__main__":
    sys.exit(main())
