#!/usr/bin/env python3
"""Run the WAMP router benchmark suite against wampfabric and Crossbar.io.

One command runs the default scenarios (rpc, pubsub, latency, sessions) against both
routers in the same run, on the same machine, and prints a Markdown table with
both figures and the ratio wampfabric/crossbar. The table is also written to
bench/results/latest.md, the raw figures to bench/results/latest.json.

    .venv/bin/python bench/run.py                       # default scenarios, both routers
    .venv/bin/python bench/run.py --only rpc,pubsub --duration 5
    .venv/bin/python bench/run.py --target crossbar
    .venv/bin/python bench/run.py --only pubsub-patterns,rpc-patterns   # pattern matching at scale

The pattern scenarios (10,000 prefix + 10,000 wildcard subscriptions /
registrations, several measured phases each; see bench/README.md) are not in
the default set: they take about 3 more minutes with both routers.

Each (scenario, router) pair gets a fresh router, started from a fresh node
directory holding a Crossbar-format `.crossbar/config.json` (wampfabric reads
the same format), pinned to core 0 with taskset. The load generator
(bench/loadgen, a package) runs pinned to core 1. Scenarios alternate between routers
(scenario-major order) so slow drift of the machine affects both alike.

Router process rule (whose CPU and RSS are measured): among the descendants of
the started process, the one whose command line contains "router"
(case-insensitive; Crossbar: "crossbar-worker [crossbar.worker.router.RouterController]");
if several match, prefer one that also says "worker", then the oldest; if none
matches, the started process itself. Override the pattern with --router-match.

Environment:
  WAMPFABRIC_CMD   command that starts wampfabric; `start --cbdir DIR/.crossbar`
                   is appended (default: /work/main/.venv/bin/wampfabric, i.e.
                   the repo's .venv/bin/wampfabric)
  CROSSBAR_CMD     same for Crossbar (default: bench/.venv-crossbar/bin/crossbar)
  BENCH_ROUTER_CPU / BENCH_LOADGEN_CPU   cores for taskset (default 0 / 1)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def ensure_interpreter() -> None:
    """The load generator runs with this interpreter: it needs picows, msgpack, psutil (and
    wampfabric, whose raw peer it uses). If they are missing, re-exec with the repo's .venv python."""
    try:
        import msgpack  # noqa: F401
        import picows  # noqa: F401
        import psutil as _ps  # noqa: F401

        import wampfabric  # noqa: F401
        return
    except ImportError as e:
        missing = e.name
    venv_py = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(venv_py) and not os.environ.get("_BENCH_REEXEC"):
        os.environ["_BENCH_REEXEC"] = "1"
        os.execv(venv_py, [venv_py, os.path.abspath(__file__), *sys.argv[1:]])
    print(f"bench/run.py needs picows, msgpack, psutil and wampfabric (missing: {missing}); "
          f"run it with the repo's .venv/bin/python", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    ensure_interpreter()  # before the imports below, which need psutil

import psutil  # noqa: E402

from routers import TARGETS, RouterProcess, bench_config, cmdline_of, free_port, make_node_dir  # noqa: E402
from routers import missing_command, router_command, stop_all  # noqa: E402

LOADGEN = os.path.join(HERE, "loadgen")  # the package, run as a directory
RESULTS_DIR = os.path.join(HERE, "results")

SCENARIOS = ["rpc", "pubsub", "latency", "sessions"]  # the default set
# pattern matching at scale (issue 4): not in the default set, which they would make several
# times longer (durations in bench/README.md); run with --only pubsub-patterns,rpc-patterns
PATTERN_SCENARIOS = ["pubsub-patterns", "rpc-patterns"]
# the figure that ranks repeated runs of a scenario (--repeat) and is shown in the progress line
MAIN_KEY = {"rpc": "calls_per_s", "pubsub": "events_per_s", "latency": "lat_p50_ms",
            "latency-autobahn": "lat_p50_ms", "sessions": "joins_per_s",
            "rpc-patterns": "base_calls_per_s", "pubsub-patterns": "base_publishes_per_s"}
# optional: sequential calls between autobahn-python clients (the client library's cost included)
CLIENT_SCENARIOS = ["latency-autobahn"]
ALL_SCENARIOS = SCENARIOS + PATTERN_SCENARIOS + CLIENT_SCENARIOS
# measured phases of the pattern scenarios ("base" = exact match, no pattern in the router)
PHASES = {"pubsub-patterns": ["base", "exact", "patterns"],
          "rpc-patterns": ["base", "exact", "prefix", "wildcard"]}


# --------------------------------------------------------------------------
# Routers (bench/routers.py starts and stops them)
# --------------------------------------------------------------------------
class Router(RouterProcess):
    """A router of one (scenario, target) run: pinned to --router-cpu, ready once the port is
    open and a real WAMP probe (join, register, call, leave) works."""

    def __init__(self, target: str, node_dir: str, port: int, args):
        super().__init__(target, os.path.join(node_dir, ".crossbar"), os.path.join(node_dir, "router.log"),
                         prefix=["taskset", "-c", args.router_cpu])
        self.node_dir = node_dir
        self.port = port
        self.args = args
        self.stop_timeout = args.stop_timeout
        self.router_pid = None
        self.router_cmdline = None
        self.start_s = None

    def start(self):
        t0 = time.monotonic()
        super().start()
        self.wait_port(self.port, t0 + self.args.start_timeout)
        # the port can open before the WAMP path is ready: probe with a real join+call
        rc, res = run_loadgen(self.args, self.url, "probe", None, timeout=self.args.start_timeout + 10,
                              extra=["--probe-timeout", str(self.args.start_timeout)])
        if rc != 0:
            raise RuntimeError(f"{self.target}: readiness probe failed: {res.get('error')}; "
                               f"log tail:\n{self.log_tail()}")
        self.start_s = time.monotonic() - t0
        p = self.find_router_process(self.args.router_match)  # else the started process itself
        p = p or psutil.Process(self.proc.pid)
        self.router_pid, self.router_cmdline = p.pid, cmdline_of(p)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


_LIVE_LOADGEN: list = []


def _cleanup(*_):
    for p in list(_LIVE_LOADGEN):
        try:
            p.kill()
        except Exception:
            pass
    stop_all()


# --------------------------------------------------------------------------
# Load generator
# --------------------------------------------------------------------------
def run_loadgen(args, url: str, scenario: str, router_pid, timeout: float, extra=(), aux_pids=()):
    fd, out = tempfile.mkstemp(prefix=f"loadgen-{scenario}-", suffix=".json")
    os.close(fd)
    cmd = ["taskset", "-c", args.loadgen_cpu, sys.executable, LOADGEN,
           "--url", url, "--scenario", scenario, "--serializer", args.serializer,
           "--duration", str(args.duration), "--warmup", str(args.warmup),
           "--sessions", str(args.sessions), "--json-out", out, *extra]
    if scenario in PATTERN_SCENARIOS:
        cmd += ["--prefix-patterns", str(args.prefix_patterns), "--wildcard-patterns", str(args.wildcard_patterns),
                "--setup-timeout", str(args.setup_timeout)]
    if router_pid:
        cmd += ["--router-pid", str(router_pid)]
    if aux_pids:
        cmd += ["--aux-pids", ",".join(str(p) for p in aux_pids)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _LIVE_LOADGEN.append(p)
    try:
        _, err = p.communicate(timeout=timeout)
        rc = p.returncode
        stderr = err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return 1, {"ok": False, "error": f"load generator timed out after {timeout:.0f}s"}
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _LIVE_LOADGEN.remove(p)
    try:
        with open(out) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {"ok": False, "error": f"load generator produced no result (rc={rc}): {stderr.strip()[-2000:]}"}
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
    if rc != 0 and res.get("ok"):
        res = {**res, "ok": False, "error": f"load generator exited with {rc}: {stderr.strip()[-2000:]}"}
    return rc, res


def scenario_timeout(args, scenario: str) -> float:
    if scenario == "sessions":
        return 180.0
    if scenario in PATTERN_SCENARIOS:
        # every phase: warm-up + window + drain; plus pattern setup and teardown (each bounded)
        return len(PHASES[scenario]) * (args.warmup + args.duration + 20.0) + 2 * args.setup_timeout + 60.0
    return args.warmup + args.duration + 60.0


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
# (scenario, key, label, unit, better, scale)
METRICS = [
    ("rpc", "calls_per_s", "calls/s", "", "higher", 1),
    ("rpc", "lat_p50_ms", "call latency p50", "ms", "lower", 1),
    ("rpc", "lat_p99_ms", "call latency p99", "ms", "lower", 1),
    ("rpc", "router_us_per_call", "router CPU per call", "us", "lower", 1),
    ("pubsub", "events_per_s", "events delivered/s", "", "higher", 1),
    ("pubsub", "publishes_per_s", "publishes/s (acked)", "", "higher", 1),
    ("pubsub", "router_us_per_event", "router CPU per delivered event", "us", "lower", 1),
    ("latency", "lat_p50_ms", "sequential call latency p50", "ms", "lower", 1),
    ("latency", "lat_p99_ms", "sequential call latency p99", "ms", "lower", 1),
    ("latency", "router_us_per_call", "router CPU per call", "us", "lower", 1),
    ("latency-autobahn", "lat_p50_ms", "sequential call latency p50, autobahn-python clients", "ms", "lower", 1),
    ("latency-autobahn", "lat_p99_ms", "sequential call latency p99, autobahn-python clients", "ms", "lower", 1),
    ("sessions", "joins_per_s", "joins/s (join+subscribe)", "", "higher", 1),
    ("sessions", "rss_per_session_bytes", "router RSS per session", "KB", "lower", 1 / 1024),
    ("sessions", "router_us_per_join", "router CPU per join", "us", "lower", 1),
    # pattern scenarios: base = exact match, no pattern in the router; the other
    # phases run with the non-matching patterns in the router (see README)
    ("pubsub-patterns", "base_publishes_per_s", "publishes/s: base (exact, no patterns)", "", "higher", 1),
    ("pubsub-patterns", "exact_publishes_per_s", "publishes/s: exact subs, patterns present", "", "higher", 1),
    ("pubsub-patterns", "patterns_publishes_per_s", "publishes/s: 3 of 8 subs via matching patterns", "",
     "higher", 1),
    ("pubsub-patterns", "exact_rate_ratio", "publish rate exact / base", "x", "higher", 1),
    ("pubsub-patterns", "patterns_rate_ratio", "publish rate patterns / base", "x", "higher", 1),
    ("pubsub-patterns", "base_router_us_per_event", "router CPU per event: base", "us", "lower", 1),
    ("pubsub-patterns", "exact_router_us_per_event", "router CPU per event: exact, patterns present", "us",
     "lower", 1),
    ("pubsub-patterns", "patterns_router_us_per_event", "router CPU per event: via patterns", "us", "lower", 1),
    ("pubsub-patterns", "exact_cpu_ratio", "CPU per event exact / base", "x", "lower", 1),
    ("pubsub-patterns", "patterns_cpu_ratio", "CPU per event patterns / base", "x", "lower", 1),
    ("pubsub-patterns", "setup_per_s", "pattern subscriptions set up/s (pipelined)", "", "higher", 1),
    ("pubsub-patterns", "setup_router_us_per_pattern", "router CPU per pattern subscription", "us", "lower", 1),
    ("pubsub-patterns", "setup_rss_per_pattern_bytes", "router RSS per pattern subscription", "B", "lower", 1),
    ("pubsub-patterns", "teardown_s", "teardown: patterns' sessions leave", "s", "lower", 1),
    ("rpc-patterns", "base_calls_per_s", "calls/s: base (exact, no patterns)", "", "higher", 1),
    ("rpc-patterns", "exact_calls_per_s", "calls/s: exact, patterns present", "", "higher", 1),
    ("rpc-patterns", "prefix_calls_per_s", "calls/s: routed via longest prefix", "", "higher", 1),
    ("rpc-patterns", "wildcard_calls_per_s", "calls/s: routed via wildcard", "", "higher", 1),
    ("rpc-patterns", "exact_rate_ratio", "call rate exact / base", "x", "higher", 1),
    ("rpc-patterns", "prefix_rate_ratio", "call rate prefix / base", "x", "higher", 1),
    ("rpc-patterns", "wildcard_rate_ratio", "call rate wildcard / base", "x", "higher", 1),
    ("rpc-patterns", "base_router_us_per_call", "router CPU per call: base", "us", "lower", 1),
    ("rpc-patterns", "exact_router_us_per_call", "router CPU per call: exact, patterns present", "us", "lower", 1),
    ("rpc-patterns", "prefix_router_us_per_call", "router CPU per call: via prefix", "us", "lower", 1),
    ("rpc-patterns", "wildcard_router_us_per_call", "router CPU per call: via wildcard", "us", "lower", 1),
    ("rpc-patterns", "exact_cpu_ratio", "CPU per call exact / base", "x", "lower", 1),
    ("rpc-patterns", "prefix_cpu_ratio", "CPU per call prefix / base", "x", "lower", 1),
    ("rpc-patterns", "wildcard_cpu_ratio", "CPU per call wildcard / base", "x", "lower", 1),
    ("rpc-patterns", "setup_per_s", "pattern registrations set up/s (pipelined)", "", "higher", 1),
    ("rpc-patterns", "setup_router_us_per_pattern", "router CPU per pattern registration", "us", "lower", 1),
    ("rpc-patterns", "setup_rss_per_pattern_bytes", "router RSS per pattern registration", "B", "lower", 1),
    ("rpc-patterns", "teardown_s", "teardown: patterns' sessions leave", "s", "lower", 1),
]

# goal of issue 4: with the patterns, the publish/call rate stays above half
# the exact-match (base) rate, i.e. less than 2x slower
PATTERN_GOAL = 0.5


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if unit == "x":
        return f"{v:.2f}x"
    if unit in ("ms",):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def median_run(rs: list, key: str) -> dict:
    """Of repeated runs, the one whose main figure is the median (for an even count the lower of
    the two middle ones), so every figure reported comes from one real run; a failed run wins,
    so failures are never hidden."""
    failed = [r for r in rs if not r.get("ok")]
    if failed or len(rs) == 1:
        return (failed or rs)[0]
    ranked = sorted(rs, key=lambda r: r.get(key) or 0.0)
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["repeats"] = [r.get(key) for r in rs]
    return chosen


def build_report(results: dict, args, meta: dict) -> str:
    targets = args.targets
    lines = []
    lines.append(f"# WAMP router benchmark: {' vs '.join(targets)}")
    lines.append("")
    lines.append(f"- date: {meta['date']}, host: {meta['host']}, cpus: {meta['cpus']}, python: {meta['python']}")
    lines.append(f"- wampfabric: {meta.get('wampfabric_version')} (git {meta.get('git_commit')}); "
                 f"crossbar: {meta.get('crossbar_version')}")
    lines.append(f"- serializer: {args.serializer}; transport: {args.transport}; window {args.duration:g}s "
                 f"after {args.warmup:g}s warm-up; router pinned to core {args.router_cpu}, "
                 f"load generator to core {args.loadgen_cpu}; fresh router per scenario")
    if any(sc in PATTERN_SCENARIOS for sc in args.scenarios):
        lines.append(f"- pattern scenarios: {args.prefix_patterns:,} prefix + {args.wildcard_patterns:,} wildcard "
                     f"non-matching subscriptions/registrations; one window per phase; "
                     f"'base' = exact match with no pattern in the router; x = ratio to base "
                     f"(goal: rate ratio > {PATTERN_GOAL}, i.e. less than 2x slower)")
    if args.repeat > 1:
        lines.append(f"- every scenario ran {args.repeat} times per router (alternating, the first router "
                     f"changing each time); each row comes from "
                     f"the run with the median main figure (the values of all runs are in latest.json, "
                     f"'repeats')")
    if args.keep_cores_awake and "latency" in args.scenarios:
        lines.append("- latency scenario run with --keep-cores-awake: idle-priority spinners on both cores, so no "
                     "CPU sleeps between messages (both routers alike)")
    lines.append("")
    both = len(targets) == 2
    hdr = ["scenario", "metric", "better"] + targets + (["ratio wf/cb"] if both else [])
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(hdr) - 3)) + "|")
    for sc, key, label, unit, better, scale in METRICS:
        if sc not in args.scenarios:
            continue
        cells = []
        vals = {}
        for t in targets:
            r = results.get(sc, {}).get(t)
            if r is None:
                cells.append("n/a")
                continue
            if not r.get("ok"):
                cells.append("**FAIL**")
                continue
            v = r.get(key)
            if v is not None:
                v = v * scale
            vals[t] = v
            cells.append(fmt(v, unit))
        ratio = ""
        if both and unit != "x":  # a ratio of ratios says nothing useful
            a, b = vals.get("wampfabric"), vals.get("crossbar")
            if a is not None and b:
                ratio = f"{a / b:.2f}x"
            else:
                ratio = "n/a"
        name = f"{label} ({unit})" if unit and unit != "x" else label
        row = [sc, name, f"{better} is better"] + cells + ([ratio] if both else [])
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Ratio = wampfabric / crossbar. For throughput (calls/s, events/s, publishes/s, joins/s) "
                 "higher is better, so a ratio > 1 favours wampfabric; for latency, RSS and CPU cost "
                 "lower is better, so a ratio < 1 favours wampfabric.")
    lines.append("")
    # load/CPU context per scenario
    lines.append("CPU during each measurement window (share of one core; 'router aux' = the router's "
                 "other processes, e.g. Crossbar's controller, not counted in the router's CPU per operation; "
                 "'other procs' = every other process on the machine; 'irq' = interrupt/softirq time, "
                 "mostly our loopback traffic):")
    lines.append("")
    lines.append("| scenario | router | router CPU | router aux | loadgen CPU | other procs (cores) | irq (cores) "
                 "| router start (s) | verified |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for sc in args.scenarios:
        for t in targets:
            r = results.get(sc, {}).get(t)
            if r is None:
                continue
            if sc in PATTERN_SCENARIOS and r.get("ok") and r.get("phases"):
                for ph, pr in r["phases"].items():
                    n = pr.get("total_calls_verified") or pr.get("total_events_verified")
                    what = "calls" if "total_calls_verified" in pr else "events"
                    share = lambda k: (f"{pr[k]:.0%}" if pr.get(k) is not None else "n/a")  # noqa: E731
                    lines.append(f"| {sc}: {ph} | {t} | {share('router_cpu_share')} | "
                                 f"{share('router_aux_cpu_share')} | {share('loadgen_cpu_share')} | "
                                 f"{fmt(pr.get('other_cpu_cores'))} | {fmt(pr.get('irq_cpu_cores'))} | "
                                 f"{fmt(r.get('router_start_s'))} | ok ({n:,} {what}) |")
                continue
            ver = "ok" if r.get("ok") else "FAIL"
            if sc in ("rpc", "latency", "latency-autobahn") and r.get("ok"):
                ver = f"ok ({r.get('total_calls_verified'):,} calls)"
            elif sc == "pubsub" and r.get("ok"):
                ver = f"ok ({r.get('total_events_verified'):,} events)"
            elif sc == "sessions" and r.get("ok"):
                ver = f"ok ({r.get('events_verified'):,} sessions)"
            share = lambda k: (f"{r[k]:.0%}" if r.get(k) is not None else "n/a")  # noqa: E731
            lines.append(f"| {sc} | {t} | {share('router_cpu_share')} | {share('router_aux_cpu_share')} | "
                         f"{share('loadgen_cpu_share')} | "
                         f"{fmt(r.get('other_cpu_cores'))} | {fmt(r.get('irq_cpu_cores'))} | "
                         f"{fmt(r.get('router_start_s'))} | {ver} |")
    lines.append("")
    goals = []
    for sc in args.scenarios:
        if sc not in PATTERN_SCENARIOS:
            continue
        for t in targets:
            r = results.get(sc, {}).get(t)
            if not r or not r.get("ok") or r.get("worst_rate_ratio") is None:
                continue
            parts = ", ".join(f"{ph} {fmt(r.get(f'{ph}_rate_ratio'), 'x')} (CPU/op {fmt(r.get(f'{ph}_cpu_ratio'), 'x')})"
                              for ph in PHASES[sc][1:])
            met = "met" if r["worst_rate_ratio"] > PATTERN_GOAL else "**NOT met**"
            goals.append(f"- {sc} / {t}: rate vs base: {parts}; goal (> {PATTERN_GOAL}x) {met}")
    if goals:
        lines.append("Pattern matching at scale (issue 4), rate with patterns / exact-match rate "
                     "(CPU per operation ratio in parentheses; when the load generator is near 100% of its core "
                     "the rate is bounded by it and the CPU ratio is the better measure of the router):")
        lines.append("")
        lines.extend(goals)
        lines.append("")
    notes = []
    for sc in args.scenarios:
        for t in targets:
            r = results.get(sc, {}).get(t)
            if r is None:
                continue
            if not r.get("ok"):
                notes.append(f"- **FAILED** {sc} / {t}: {r.get('error_summary') or r.get('error')}")
            for w in r.get("warnings", []):
                notes.append(f"- WARNING {sc} / {t}: {w}")
    if notes:
        lines.append("## Failures and warnings")
        lines.append("")
        lines.extend(notes)
        lines.append("")
    lines.append("Router process measured: the descendant of the started process whose command line "
                 "matches /router/i (preferring 'worker'), else the started process itself.")
    lines.append("")
    for t in targets:
        for sc in args.scenarios:
            r = results.get(sc, {}).get(t)
            if r and r.get("router_cmdline"):
                lines.append(f"- {t}: `{r['router_cmdline'][:120]}`")
                break
    return "\n".join(lines) + "\n"


def collect_meta(args) -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or None
        except Exception:
            return None

    def exe(cmd):  # skip an "env VAR=value ..." wrapper
        rest = cmd[1:] if os.path.basename(cmd[0]) == "env" else cmd
        return next((c for c in rest if "=" not in c), cmd[0])

    cb_py = os.path.join(os.path.dirname(exe(router_command("crossbar"))), "python")
    wf_cmd = exe(router_command("wampfabric"))
    wf_py = os.path.join(os.path.dirname(wf_cmd), "python")
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git_commit": out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
        "crossbar_version": out([cb_py, "-c", "import crossbar; print(crossbar.__version__)"])
        if os.path.exists(cb_py) else None,
        "wampfabric_version": out([wf_py, "-c", "import wampfabric as w; print(getattr(w, '__version__', '?'))"])
        if os.path.exists(wf_py) else None,
        "crossbar_cmd": router_command("crossbar"),
        "wampfabric_cmd": router_command("wampfabric"),
    }


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def run_one(args, scenario: str, target: str) -> dict:
    port = free_port()
    node_dir = make_node_dir(f"bench-{target}-", bench_config(port, args.transport))
    router = Router(target, node_dir, port, args)
    res: dict = {"target": target, "scenario": scenario, "node_dir": node_dir}
    try:
        try:
            router.start()
        except (RuntimeError, FileNotFoundError, OSError) as e:
            res.update(ok=False, start_failed=True, error=f"router did not start: {e}")
            return res
        res.update(router_pid=router.router_pid, router_cmdline=router.router_cmdline,
                   router_start_s=router.start_s, router_cmd=router.cmd)
        try:
            rp = psutil.Process(router.router_pid)
            res["router_affinity"] = rp.cpu_affinity()
            res["router_rss_idle_bytes"] = rp.memory_info().rss
        except Exception:
            pass
        aux = [p.pid for p in router.process_tree() if p.pid != router.router_pid]
        res["router_aux_pids"] = aux
        rc, lg = run_loadgen(args, router.url, scenario, router.router_pid,
                             timeout=scenario_timeout(args, scenario), aux_pids=aux)
        res.update(lg)
        if router.proc.poll() is not None:
            res.update(ok=False, error=(res.get("error") or "") +
                       f" [router exited with code {router.proc.returncode} during the scenario]")
        warnings = []
        if lg.get("warning"):
            warnings.append(lg["warning"])
        if lg.get("teardown_warning"):
            warnings.append(lg["teardown_warning"])
        other = lg.get("other_cpu_cores")
        if other is not None and other > args.noise_threshold:
            warnings.append(f"other processes kept ~{other:.2f} cores busy during the window: "
                            f"the machine was not quiet, figures are noisy")
        if res.get("router_affinity") and res["router_affinity"] != [int(c) for c in args.router_cpu.split(",")
                                                                       if c.isdigit()]:
            warnings.append(f"router affinity is {res['router_affinity']}, expected core {args.router_cpu}")
        res["warnings"] = warnings
        if not res.get("ok"):
            res["router_log_tail"] = router.log_tail()
        return res
    finally:
        router.stop()
        if not res.get("ok"):
            res["error_summary"] = summarize_error(res.get("error", ""))
        if args.keep_dirs or not res.get("ok"):
            # keep the node dir (with router.log) for post-mortem
            res["node_dir_kept"] = True
        else:
            shutil.rmtree(node_dir, ignore_errors=True)


def summarize_error(err: str) -> str:
    """One-line version of an error (first line + last non-empty line, e.g. the exception)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return "unknown error"
    first = lines[0].split("; log tail:")[0]
    if len(lines) > 1:
        return f"{first} ... {lines[-1]}"[:400]
    return first[:400]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help=f"comma-separated scenarios (default: {','.join(SCENARIOS)}; "
                        f"also: {','.join(PATTERN_SCENARIOS + CLIENT_SCENARIOS)})")
    p.add_argument("--target", default="both", choices=["both", *TARGETS])
    p.add_argument("--duration", type=float, default=10.0, help="measurement window per scenario, s")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every scenario N times per router (alternating) and report the median run")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before each window, s")
    p.add_argument("--sessions", type=int, default=2000, help="sessions in the 'sessions' scenario")
    p.add_argument("--prefix-patterns", type=int, default=10000,
                   help="non-matching prefix subscriptions/registrations in the *-patterns scenarios")
    p.add_argument("--wildcard-patterns", type=int, default=10000,
                   help="non-matching wildcard subscriptions/registrations in the *-patterns scenarios")
    p.add_argument("--setup-timeout", type=float, default=90.0,
                   help="max time to create (and to tear down) the patterns in the *-patterns scenarios, s")
    p.add_argument("--serializer", default="msgpack", choices=["msgpack", "json"])
    p.add_argument("--transport", default="web", choices=["web", "websocket"],
                   help="'web' transport with a websocket service on path ws, or a plain 'websocket' transport")
    p.add_argument("--router-cpu", default=os.environ.get("BENCH_ROUTER_CPU", "0"))
    p.add_argument("--loadgen-cpu", default=os.environ.get("BENCH_LOADGEN_CPU", "1"))
    p.add_argument("--router-match", default="router", help="regex picking the router process (see docstring)")
    p.add_argument("--noise-threshold", type=float, default=0.2,
                   help="warn if other CPU use during a window exceeds this many cores")
    p.add_argument("--start-timeout", type=float, default=60.0)
    p.add_argument("--stop-timeout", type=float, default=10.0)
    p.add_argument("--results-dir", default=RESULTS_DIR)
    p.add_argument("--keep-dirs", action="store_true", help="keep node dirs (with router.log)")
    p.add_argument("--keep-cores-awake", action="store_true",
                   help="during 'latency' only, run an idle-priority (SCHED_IDLE) spinner on the router's and the "
                        "load generator's cores, so neither sleeps between messages: separates the routers' "
                        "latency from the cost of waking idle (virtual) CPUs; applies to both routers alike")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in a.scenarios:
        if s not in ALL_SCENARIOS:
            p.error(f"unknown scenario {s!r} (choose from {','.join(ALL_SCENARIOS)})")
    a.targets = list(TARGETS) if a.target == "both" else [a.target]
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    return a


def start_spinners(args) -> list:
    """Busy loops under SCHED_IDLE (they run only when nothing else wants the CPU) on the
    router's and the load generator's cores."""
    procs = []
    for cpu in {args.router_cpu, args.loadgen_cpu}:
        procs.append(subprocess.Popen(["taskset", "-c", str(cpu), "chrt", "--idle", "0", sys.executable, "-c",
                                       "while True: pass"], start_new_session=True))
    return procs


def stop_spinners(procs: list) -> None:
    for p in procs:
        p.kill()
        p.wait()


def main(argv=None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: (_cleanup(), sys.exit(128 + s)))
    if shutil.which("taskset") is None:
        print("taskset not found (util-linux)", file=sys.stderr)
        return 2
    for t in args.targets:
        why = missing_command(t)
        if why:
            print(f"WARNING: {why}; its scenarios will fail", file=sys.stderr)
    meta = collect_meta(args)
    results: dict = {}
    t_start = time.monotonic()
    try:
        broken: dict = {}  # target -> why its router could not start
        runs: dict = {}  # (scenario, target) -> results of every repetition
        for sc in args.scenarios:
            # repetitions alternate which router goes first: the first run after another scenario
            # (fresh kernel socket state, machine drift) must not always fall to the same router
            order = [(rep, t) for rep in range(args.repeat)
                     for t in (args.targets if rep % 2 == 0 else args.targets[::-1])]
            for rep, t in order:
                label = f" ({rep + 1}/{args.repeat})" if args.repeat > 1 else ""
                print(f"[bench] {sc:15s} on {t:10s}{label} ...", end="", flush=True, file=sys.stderr)
                if t in broken:
                    r = {"target": t, "scenario": sc, "ok": False, "skipped": True,
                         "error": f"skipped: router did not start in an earlier scenario ({broken[t]})"}
                else:
                    spinners = start_spinners(args) if (sc == "latency" and args.keep_cores_awake) else []
                    try:
                        r = run_one(args, sc, t)
                    finally:
                        stop_spinners(spinners)
                    if spinners:
                        r["cores_kept_awake"] = True
                    if r.get("start_failed"):
                        broken[t] = r.get("error_summary") or "see above"
                runs.setdefault((sc, t), []).append(r)
                results.setdefault(sc, {})[t] = median_run(runs[(sc, t)], MAIN_KEY[sc])
                if r.get("ok") and sc in PATTERN_SCENARIOS:
                    rate = "calls_per_s" if sc == "rpc-patterns" else "publishes_per_s"
                    ratios = " ".join(f"{ph}={fmt(r.get(f'{ph}_rate_ratio'), 'x')}" for ph in PHASES[sc][1:])
                    print(f" ok  base {rate}={fmt(r.get('base_' + rate))}; rate vs base: {ratios}; "
                          f"setup {fmt(r.get('setup_s'))}s", file=sys.stderr)
                elif r.get("ok"):
                    main_key = MAIN_KEY[sc]
                    print(f" ok  {main_key}={fmt(r.get(main_key))}", file=sys.stderr)
                else:
                    print(f" FAIL: {r.get('error_summary') or r.get('error')}", file=sys.stderr)
                    if r.get("start_failed"):
                        print("  " + str(r.get("error")).replace("\n", "\n    "), file=sys.stderr)
                    elif r.get("router_log_tail"):
                        print("  router log tail:\n    " + r["router_log_tail"].replace("\n", "\n    "),
                              file=sys.stderr)
                for w in r.get("warnings", []):
                    print(f"  WARNING: {w}", file=sys.stderr)
    finally:
        _cleanup()
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)

    report = build_report(results, args, meta)
    print(report)
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "latest.md"), "w") as f:
        f.write(report)
    payload = {"meta": meta, "args": {k: v for k, v in vars(args).items()}, "results": results}
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in ("latest.json", f"run-{stamp}.json"):
        with open(os.path.join(args.results_dir, name), "w") as f:
            json.dump(payload, f, indent=2, default=str)
    print(f"[bench] wrote {os.path.join(args.results_dir, 'latest.md')} and latest.json "
          f"({meta['elapsed_s']}s)", file=sys.stderr)
    failed = [f"{sc}/{t}" for sc, d in results.items() for t, r in d.items() if not r.get("ok")]
    if failed:
        print(f"[bench] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
