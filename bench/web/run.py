"""The web transport under HTTP load: wampfabric and Crossbar.io from the same config, in one run
(issue 17, "Figures"; `make bench-web`; results in docs/benchmarks.md, "Web").

Each router gets a fresh node directory holding the same Crossbar.io config (version 2): one
router worker, realm ``realm1`` (role ``anonymous`` may do everything), one ``web`` transport on
127.0.0.1 with

- ``/``     ``static``, a directory holding ``small.txt`` (SMALL_SIZE bytes);
- ``ws``    ``websocket`` (msgpack, json);
- ``pub``   ``publisher`` (HTTP bridge) on realm1 as ``anonymous``;
- ``call``  ``caller`` (HTTP bridge) on realm1 as ``anonymous``.

The router runs pinned to --router-cpu (``taskset``), wrk (keep-alive, one thread, --connections
connections) and this script's WAMP clients to --loadgen-cpu. The clients are one process (this
file with ``--clients URL``): a WebSocket subscriber on the publisher's topic and a callee of the
caller's procedure (raw WAMP over picows from bench/loadgen, callbacks, msgpack), each checking
every event and invocation's payload.

Scenarios (each: --warmup seconds of wrk, then --duration seconds measured):

- ``static``:  GET /small.txt                           -> requests/s
- ``publish``: POST /pub {"topic", "args"}               -> publishes/s; events the subscriber got
- ``call``:    POST /call {"procedure", "args"}          -> calls/s; invocations the callee got

Router CPU per request: the router worker's user+system CPU time (``/proc`` via psutil) over
the measured wrk run divided by the requests wrk completed. The router worker is found as in
bench/run.py (bench/routers.py: a descendant whose command line says ``router``, preferring one
that says ``worker``).

Verified: no wrk errors (connect/read/write/timeout, non-2xx/3xx status); for publish, the
subscriber received at least as many events as wrk counted responses and at most
``--connections`` more (requests still in flight when wrk stopped); for call, the same for the
callee's invocations. A failed check marks the scenario FAIL and the exit code is 1.

WebSocket join and call figures through the web transport are `make bench`'s (bench/run.py).

Usage::

    .venv/bin/python bench/web/run.py                          # both routers, 5 s per scenario
    .venv/bin/python bench/web/run.py --only static --target wampfabric --duration 10

Results: a Markdown table on stdout and in bench/results/web-latest.md; all figures in
bench/results/web-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
sys.path.insert(0, BENCH)

TOPIC = "com.bench.web.topic"
PROC = "com.bench.web.echo"
PAYLOAD = [1, "hello from the HTTP bridge"]  # what publish.lua and call.lua send (checked by the clients)
SMALL_SIZE = 1024
SCENARIOS = ["static", "publish", "call"]
PATHS = {"static": "/small.txt", "publish": "/pub", "call": "/call"}
UNIT = {"static": "requests/s", "publish": "publishes/s", "call": "calls/s"}


# --------------------------------------------------------------------------
# The WAMP clients (a process of their own: `run.py --clients URL`)
# --------------------------------------------------------------------------
def clients_main(url: str) -> int:
    """A subscriber on TOPIC and a callee of PROC; prints ``ready``, then answers every line on
    stdin with a JSON line ``{"events": n, "invocations": n, "error": ...}``; leaves on EOF."""
    from loadgen.clients import EMPTY, connect_session
    from loadgen.state import BenchFailure, Run
    from wampfabric.client.raw import YIELD, Serializer

    async def amain() -> int:
        loop = asyncio.get_running_loop()
        run = Run(loop)
        ser = Serializer("msgpack", fast=True)
        counts = {"events": 0, "invocations": 0}
        sub = await connect_session(run, url, ser, "realm1", "subscriber")
        callee = await connect_session(run, url, ser, "realm1", "callee")
        subscription = await sub.subscribe(TOPIC)
        registration = await callee.register(PROC)

        def on_event(msg):
            # [EVENT, Subscription, Publication, Details, Args]
            if msg[1] != subscription or len(msg) != 5 or msg[4] != PAYLOAD:
                raise BenchFailure(f"subscriber: unexpected event {msg!r}")
            counts["events"] += 1

        def on_invocation(msg):
            # [INVOCATION, Request, Registration, Details, Args]
            if msg[2] != registration or len(msg) != 5 or msg[4] != PAYLOAD:
                raise BenchFailure(f"callee: unexpected invocation {msg!r}")
            counts["invocations"] += 1
            callee.send([YIELD, msg[1], EMPTY, msg[4]])

        sub.on_event = on_event
        callee.on_invocation = on_invocation
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            err = None
            if run.failed.done():
                err = str(run.failed.exception())
            print(json.dumps({**counts, "error": err}), flush=True)
        await sub.leave()
        await callee.leave()
        return 0

    try:
        import uvloop
        return uvloop.run(amain())
    except ImportError:
        return asyncio.run(amain())


_LIVE_CLIENTS: list = []  # started and not yet stopped (the signal handler stops them)


class Clients:
    """The clients process, seen from the orchestrator."""

    def __init__(self, url: str, cpu: str):
        self.proc = subprocess.Popen(["taskset", "-c", cpu, sys.executable, os.path.abspath(__file__), "--clients", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _LIVE_CLIENTS.append(self)
        import psutil
        self.ps = psutil.Process(self.proc.pid)  # taskset execs: this is the clients' Python
        line = self._readline(30)
        if line.strip() != "ready":
            err = self.stop()
            raise RuntimeError(f"WAMP clients did not start: {line!r} {err}")

    def _readline(self, timeout: float) -> str:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
        return self.proc.stdout.readline()

    def counts(self) -> dict:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        line = self._readline(10)
        if not line:
            raise RuntimeError(f"WAMP clients do not answer (exit {self.proc.poll()}): {self.stop()}")
        return json.loads(line)

    def settled_counts(self, timeout: float = 5.0) -> dict:
        """Counts once they stopped changing (what the router still had in flight delivered)."""
        last = self.counts()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.counts()
            if now == last:
                return now
            last = now
        return last

    def stop(self) -> str:
        if self in _LIVE_CLIENTS:
            _LIVE_CLIENTS.remove(self)
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        try:
            return self.proc.stderr.read()[-2000:]
        except (OSError, ValueError):
            return ""


# --------------------------------------------------------------------------
# Routers
# --------------------------------------------------------------------------
def web_config(port: int, static_dir: str) -> dict:
    from routers import FULL_PERMS
    realm = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
    bridge = {"realm": "realm1", "role": "anonymous"}
    transport = {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
        "paths": {
            "/": {"type": "static", "directory": static_dir},
            "ws": {"type": "websocket", "serializers": ["msgpack", "json"]},
            "pub": {"type": "publisher", **bridge},
            "call": {"type": "caller", **bridge},
        },
    }
    return {"version": 2, "controller": {}, "workers": [{"type": "router", "realms": [realm], "transports": [transport]}]}


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ok(router, what: str, check, deadline: float) -> None:
    def ready():
        try:
            return check()
        except (OSError, ValueError):
            return False
    router.wait_until(ready, deadline, what, poll=0.1)


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------
def wrk_script(scenario: str, tmpdir: str) -> str:
    path = os.path.join(tmpdir, f"{scenario}.lua")
    with open(path, "w") as out:
        for name in (f"{scenario}.lua", "report.lua"):
            with open(os.path.join(HERE, name)) as f:
                out.write(f.read() + "\n")
    return path


def run_wrk(args, url: str, script: str, duration: int) -> dict:
    """wrk on --loadgen-cpu; its figures (report.lua's JSON) plus its own CPU time."""
    cmd = ["taskset", "-c", args.loadgen_cpu, "wrk", "-t1", f"-c{args.connections}", f"-d{duration}s",
           "--timeout", "10s", "-s", script, url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^WRK-JSON (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({p.returncode}; {' '.join(cmd)}): {p.stdout[-1500:]} {p.stderr[-1500:]}")
    res = json.loads(m.group(1))
    res["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["cmd"] = " ".join(cmd)
    return res


def start_profile(args, pid: int, name: str):
    """--profile: py-spy samples the router worker (native frames off, idle frames off) during
    the measured window; collapsed stacks go to the results directory."""
    if not args.profile:
        return None
    out = os.path.join(args.results, f"web-profile-{name}.txt")
    os.makedirs(args.results, exist_ok=True)
    cmd = [args.py_spy, "record", "--pid", str(pid), "--duration", str(int(args.duration + 1)), "--rate", "200",
           "--format", "raw", "--output", out, "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), out


def finish_profile(spy) -> dict | None:
    """The top frames by own samples (and by samples below them) of a py-spy raw file."""
    if spy is None:
        return None
    proc, out = spy
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "py-spy did not finish"}
    own: dict = {}
    total_in: dict = {}
    n = 0
    try:
        with open(out) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack:
                    continue
                c = int(count)
                n += c
                frames = stack.split(";")
                own[frames[-1]] = own.get(frames[-1], 0) + c
                for fr in set(frames):
                    total_in[fr] = total_in.get(fr, 0) + c
    except (OSError, ValueError) as e:
        return {"error": f"py-spy output unreadable: {e}; {err[-500:]}"}
    top = lambda d: [(k, round(v / n * 100, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:25]] if n else []
    return {"file": out, "samples": n, "own_pct": top(own), "inclusive_pct": top(total_in)}


def machine_busy_s() -> float:
    """CPU seconds all cores spent on anything but idle and iowait since boot."""
    import psutil
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def cpu_seconds(p) -> float:
    t = p.cpu_times()
    return t.user + t.system


def measure(args, router, clients, scenario: str, base: str, tmpdir: str) -> dict:
    script = wrk_script(scenario, tmpdir)
    url = base + PATHS[scenario]
    if args.warmup > 0:
        run_wrk(args, url, script, args.warmup)
    wp = router.worker
    c0 = clients.settled_counts()
    spy = start_profile(args, wp.pid, f"{router.target}-{scenario}")
    cpu0, ccpu0, busy0 = cpu_seconds(wp), cpu_seconds(clients.ps), machine_busy_s()
    w = run_wrk(args, url, script, args.duration)
    cpu1, ccpu1, busy1 = cpu_seconds(wp), cpu_seconds(clients.ps), machine_busy_s()
    c1 = clients.settled_counts()
    profile = finish_profile(spy)
    secs = w["duration_us"] / 1e6
    n = w["requests"]
    res = {"scenario": scenario, "target": router.target, "url": url, "requests": n, "rate": n / secs,
           "duration_s": secs, "latency_us": w["latency_us"], "errors": w["errors"],
           "router_cpu_s": cpu1 - cpu0, "router_cpu_cores": (cpu1 - cpu0) / secs,
           "router_us_per_request": (cpu1 - cpu0) / n * 1e6 if n else None,
           "wrk_cpu_cores": w["wrk_cpu_s"] / secs, "clients_cpu_cores": (ccpu1 - ccpu0) / secs,
           # CPU the rest of the machine used meanwhile (other work distorts the figures)
           "other_cpu_cores": max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - w["wrk_cpu_s"] - (ccpu1 - ccpu0)) / secs, "wrk_cmd": w["cmd"], "bytes": w["bytes"]}
    problems = [f"wrk {k} errors: {v}" for k, v in w["errors"].items() if v]
    if n == 0:
        problems.append("no request completed")
    for key, what in (("events", "publish"), ("invocations", "call")):
        got = c1[key] - c0[key]
        if scenario == what:
            res[f"wamp_{key}"] = got
            if not (n <= got <= n + args.connections):
                problems.append(f"{got} {key} at the WAMP client for {n} completed requests "
                                f"(expected {n} to {n + args.connections})")
        elif got:
            problems.append(f"{got} unexpected {key}")
    if c1.get("error"):
        problems.append(f"WAMP clients: {c1['error']}")
    if profile:
        res["profile"] = profile
    res["ok"] = not problems
    if problems:
        res["error"] = "; ".join(problems)
    return res


def start_router(args, target: str, tmpdir: str):
    from routers import RouterProcess, free_port, make_node_dir
    import psutil
    port = free_port()
    static_dir = os.path.join(tmpdir, f"static-{target}")
    os.makedirs(static_dir, exist_ok=True)
    with open(os.path.join(static_dir, "small.txt"), "wb") as f:
        f.write((b"0123456789abcdef" * (SMALL_SIZE // 16 + 1))[:SMALL_SIZE - 1] + b"\n")
    node_dir = make_node_dir(f"bench-web-{target}-", web_config(port, static_dir))
    router = RouterProcess(target, os.path.join(node_dir, ".crossbar"), os.path.join(node_dir, "router.log"),
                           prefix=["taskset", "-c", args.router_cpu])
    router.node_dir = node_dir
    t0 = time.monotonic()
    router.start()
    deadline = t0 + args.start_timeout
    base = f"http://127.0.0.1:{port}"
    router.wait_port(port, deadline)
    wait_ok(router, "static file", lambda: http("GET", base + PATHS["static"])[0] == 200, deadline)
    clients = None
    try:
        # the bridge's session joins once the realm runs: until then 503 (ours) or an error (Crossbar.io)
        body = json.dumps({"topic": TOPIC, "args": PAYLOAD}).encode()
        wait_ok(router, "publisher bridge", lambda: http("POST", base + PATHS["publish"], body)[0] == 200, deadline)
        clients = Clients(f"ws://127.0.0.1:{port}/ws", args.loadgen_cpu)
        body = json.dumps({"procedure": PROC, "args": PAYLOAD}).encode()

        def call_ok():
            status, out = http("POST", base + PATHS["call"], body)
            return status == 200 and json.loads(out).get("args") == PAYLOAD
        wait_ok(router, "caller bridge", call_ok, deadline)
        router.start_s = time.monotonic() - t0
        wp = router.find_router_process("router", wait=5)
        router.worker = wp or psutil.Process(router.proc.pid)
    except BaseException:
        if clients is not None:
            clients.stop()
        router.stop()
        raise
    return router, clients, base


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def fmt(v, digits=0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def report(results: list, meta: dict, args) -> str:
    by = {(r["scenario"], r["target"]): r for r in results}
    targets = [t for t in ("wampfabric", "crossbar") if any(r["target"] == t for r in results)]
    lines = [f"# Web transport under HTTP load ({meta['date']})", "",
             f"wampfabric git {meta['git']}, crossbar {meta.get('crossbar_version')}; wrk -t1 -c{args.connections} "
             f"keep-alive, {args.duration:g} s after {args.warmup:g} s warm-up; router on core {args.router_cpu}, "
             f"wrk and the WAMP clients on core {args.loadgen_cpu}.", ""]
    head = ["scenario", "figure"] + targets + (["ratio"] if len(targets) == 2 else [])
    lines += ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    rows = [("rate", None, 0, True), ("router_us_per_request", "router CPU per request (us)", 1, False),
            ("router_cpu_cores", "router CPU (cores)", 2, None), ("p50", "latency p50 (ms)", 2, False),
            ("p99", "latency p99 (ms)", 2, False), ("wrk_cpu_cores", "wrk CPU (cores)", 2, None),
            ("clients_cpu_cores", "WAMP clients CPU (cores)", 2, None),
            ("other_cpu_cores", "other processes' CPU (cores)", 2, None)]
    for sc in SCENARIOS:
        if not any(s == sc for s, _ in by):
            continue
        for key, label, digits, higher_better in rows:
            vals = []
            for t in targets:
                r = by.get((sc, t))
                if r is None or not r.get("ok", False):
                    vals.append("FAIL" if r is not None and key == "rate" else None)
                    continue
                v = r["latency_us"][key] / 1000 if key in ("p50", "p99") else r.get(key)
                vals.append(v)
            cells = [v if isinstance(v, str) else fmt(v, digits) for v in vals]
            ratio = ""
            if len(targets) == 2 and all(isinstance(v, (int, float)) and v for v in vals) and higher_better is not None:
                ratio = f"{vals[0] / vals[1]:.2f}x"
            row = [sc, label or UNIT[sc]] + cells + ([ratio] if len(targets) == 2 else [])
            lines.append("| " + " | ".join(row) + " |")
        if sc == "publish":
            lines.append("| publish | events at the WebSocket subscriber | "
                         + " | ".join(fmt(by.get((sc, t), {}).get("wamp_events")) for t in targets)
                         + (" | |" if len(targets) == 2 else " |"))
        if sc == "call":
            lines.append("| call | invocations at the WebSocket callee | "
                         + " | ".join(fmt(by.get((sc, t), {}).get("wamp_invocations")) for t in targets)
                         + (" | |" if len(targets) == 2 else " |"))
    lines.append("")
    lines.append("Ratio = wampfabric / Crossbar.io (for rates higher is better; for CPU and latency lower is better).")
    for r in results:
        if not r.get("ok"):
            lines.append(f"- FAIL {r['scenario']} {r['target']}: {r.get('error')}")
    for t, cl in meta.get("router_processes", {}).items():
        lines.append(f"- {t} router process measured: `{cl}`")
    return "\n".join(lines) + "\n"


def meta_info() -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO).stdout.strip()
        except Exception:
            return None
    from routers import router_command
    cb_py = os.path.join(os.path.dirname(router_command("crossbar")[0]), "python")
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "git": out(["git", "rev-parse", "--short", "HEAD"]),
            "crossbar_version": out([cb_py, "-c", "import crossbar; print(crossbar.__version__)"]),
            "wrk": out(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else None,
            "cpu": out(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]), "cores": os.cpu_count()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated: " + ", ".join(SCENARIOS))
    p.add_argument("--target", default="both", choices=["both", "wampfabric", "crossbar"])
    p.add_argument("--duration", type=int, default=5, help="measured seconds per scenario (whole seconds, wrk's unit; default 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds of wrk before each (0: none; default 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections (default 32)")
    p.add_argument("--router-cpu", default=os.environ.get("BENCH_ROUTER_CPU", "0"))
    p.add_argument("--loadgen-cpu", default=os.environ.get("BENCH_LOADGEN_CPU", "1"))
    p.add_argument("--start-timeout", type=float, default=60.0)
    p.add_argument("--profile", action="store_true",
                   help="sample the router worker with py-spy in every measured window (costs the router some CPU: "
                        "for where the time goes, not for the figures); top frames in web-latest.json")
    p.add_argument("--py-spy", default=os.environ.get("PY_SPY") or shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy",
                   help="the py-spy command for --profile (env PY_SPY)")
    p.add_argument("--keep-dirs", action="store_true", help="keep the node directories (router.log)")
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--clients", metavar="URL", help=argparse.SUPPRESS)  # the WAMP clients' process
    a = p.parse_args(argv)
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in a.only if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario(s) {', '.join(bad)}; known: {', '.join(SCENARIOS)}")
    if a.duration <= 0 or a.warmup < 0 or a.connections < 1:
        p.error("--duration must be >= 1, --warmup >= 0, --connections >= 1")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.clients:
        return clients_main(args.clients)
    from routers import missing_command, stop_all
    import tempfile
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: as root, `bash tests/support/os_packages.sh` installs wrk "
                  f"(taskset is util-linux)", file=sys.stderr)
            return 2
    targets = ["wampfabric", "crossbar"] if args.target == "both" else [args.target]
    for t in targets:
        why = missing_command(t)
        if why:
            print(why, file=sys.stderr)
            return 2

    def on_signal(signum, frame):
        for c in list(_LIVE_CLIENTS):
            c.stop()
        stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    meta = meta_info()
    meta["router_processes"] = {}
    results = []
    tmpdir = tempfile.mkdtemp(prefix="bench-web-")
    for target in targets:
        print(f"== {target}: starting", file=sys.stderr)
        try:
            router, clients, base = start_router(args, target, tmpdir)
        except Exception as e:
            print(f"!! {target} did not start: {e}", file=sys.stderr)
            results += [{"scenario": sc, "target": target, "ok": False, "error": f"start: {e}"} for sc in args.only]
            continue
        meta["router_processes"][target] = " ".join(router.worker.cmdline()).strip()
        try:
            for sc in args.only:
                try:
                    r = measure(args, router, clients, sc, base, tmpdir)
                except Exception as e:
                    r = {"scenario": sc, "target": target, "ok": False, "error": str(e)}
                results.append(r)
                if r.get("ok"):
                    print(f"   {sc:8s} {r['rate']:>10,.0f} {UNIT[sc]}, router {r['router_us_per_request']:.1f} us/request, "
                          f"{r['router_cpu_cores']:.2f} cores; wrk {r['wrk_cpu_cores']:.2f} cores; "
                          f"other processes {r['other_cpu_cores']:.2f} cores", file=sys.stderr)
                else:
                    print(f"   {sc:8s} FAIL: {r.get('error')}", file=sys.stderr)
        finally:
            err = clients.stop()
            if err.strip():
                print(f"   clients: {err.strip()[-500:]}", file=sys.stderr)
            router.stop()
            if not args.keep_dirs and all(r.get("ok") for r in results if r["target"] == target):
                shutil.rmtree(router.node_dir, ignore_errors=True)
            else:
                print(f"   node directory kept: {router.node_dir}", file=sys.stderr)
    shutil.rmtree(tmpdir, ignore_errors=True)

    md = report(results, meta, args)
    print(md)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "web-latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.results, "web-latest.json"), "w") as f:
        json.dump({"meta": meta, "args": {k: v for k, v in vars(args).items() if k != "clients"},
                   "results": results}, f, indent=2)
    return 0 if results and all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
