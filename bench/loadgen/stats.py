"""Measurement: CPU times and RSS of the router, of this process and of the machine over the
measurement window; latency percentiles; the per-phase summary of the *-patterns scenarios."""

from __future__ import annotations

import os
import resource
import time

try:
    import psutil  # type: ignore
except ImportError:  # pragma: no cover
    psutil = None


class ProcSampler:
    """CPU times (user+sys, seconds) and RSS (bytes) of one process (the router)."""

    def __init__(self, pid):
        self.pid = pid
        self.proc = psutil.Process(pid) if (pid and psutil is not None) else None

    def cpu(self):
        if not self.pid:
            return None
        if self.proc is not None:
            t = self.proc.cpu_times()
            return t.user + t.system
        with open(f"/proc/{self.pid}/stat") as f:  # pragma: no cover
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self):
        if not self.pid:
            return None
        if self.proc is not None:
            return self.proc.memory_info().rss
        with open(f"/proc/{self.pid}/status") as f:  # pragma: no cover
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return None


def machine_busy():
    """(process CPU, irq+softirq CPU) seconds of the whole machine (all cores) since boot."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:  # pragma: no cover
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + (v[7] if len(v) > 7 else 0)) / hz, (v[5] + v[6]) / hz


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Window:
    """Wall clock + router CPU + own CPU over the measurement window."""

    def __init__(self, sampler: ProcSampler, aux_pids=()):
        self.sampler = sampler
        # the router's other processes (e.g. Crossbar's controller): reported apart
        self.aux = [ProcSampler(p) for p in aux_pids if p]

    def _aux_cpu(self):
        total = 0.0
        for s in self.aux:
            try:
                total += s.cpu() or 0.0
            except Exception:  # process gone
                pass
        return total

    def begin(self):
        self.t0 = time.perf_counter()
        self.own0 = self_cpu()
        self.r0 = self.sampler.cpu()
        self.a0 = self._aux_cpu()
        self.m0 = machine_busy()

    def end(self):
        self.t1 = time.perf_counter()
        self.own1 = self_cpu()
        self.r1 = self.sampler.cpu()
        self.a1 = self._aux_cpu()
        self.m1 = machine_busy()

    def result(self) -> dict:
        wall = self.t1 - self.t0
        out = {
            "window_s": wall,
            "loadgen_cpu_s": self.own1 - self.own0,
            "loadgen_cpu_share": (self.own1 - self.own0) / wall if wall > 0 else None,
            "router_cpu_s": None,
            "router_cpu_share": None,
        }
        if self.r0 is not None and self.r1 is not None:
            out["router_cpu_s"] = self.r1 - self.r0
            out["router_cpu_share"] = (self.r1 - self.r0) / wall if wall > 0 else None
            # CPU of the router's other processes (--aux-pids), of every other
            # process on the machine, and interrupt time (mostly softirq for
            # our own loopback traffic)
            aux = max(0.0, self.a1 - self.a0)
            out["router_aux_cpu_share"] = aux / wall if (wall > 0 and self.aux) else None
            other = (self.m1[0] - self.m0[0]) - out["router_cpu_s"] - out["loadgen_cpu_s"] - aux
            out["other_cpu_cores"] = max(0.0, other / wall) if wall > 0 else None
            out["irq_cpu_cores"] = (self.m1[1] - self.m0[1]) / wall if wall > 0 else None
        return out


def percentile(sorted_vals, p: float):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def latency_stats(lat_ns: list) -> dict:
    lat_ns.sort()
    ms = 1e-6
    return {
        "samples": len(lat_ns),
        "lat_p50_ms": percentile(lat_ns, 50) * ms if lat_ns else None,
        "lat_p99_ms": percentile(lat_ns, 99) * ms if lat_ns else None,
        "lat_max_ms": lat_ns[-1] * ms if lat_ns else None,
        "lat_mean_ms": (sum(lat_ns) / len(lat_ns)) * ms if lat_ns else None,
    }


def per_unit_us(cpu_s, count):
    if cpu_s is None or not count:
        return None
    return cpu_s / count * 1e6


_PHASE_KEYS = ("calls_per_s", "router_us_per_call", "lat_p50_ms", "lat_p99_ms",
               "events_per_s", "publishes_per_s", "router_us_per_event", "router_us_per_publish",
               "router_cpu_share", "loadgen_cpu_share")


def summarize_phases(phases: dict, rate_key: str, cpu_key: str) -> dict:
    """Flatten per-phase figures to '<phase>_<key>' and add, per pattern phase,
    rate_ratio = rate / base rate (goal > 0.5: less than 2x slower) and
    cpu_ratio = router CPU per op / base CPU per op. The window context
    (loadgen/router/other CPU) at top level is the maximum over the phases."""
    out: dict = {"phases": phases}
    base = phases["base"]
    for name, r in phases.items():
        for k in _PHASE_KEYS:
            if k in r:
                out[f"{name}_{k}"] = r[k]
        if name == "base":
            continue
        out[f"{name}_rate_ratio"] = r[rate_key] / base[rate_key] if base.get(rate_key) else None
        c, cb = r.get(cpu_key), base.get(cpu_key)
        out[f"{name}_cpu_ratio"] = c / cb if (c is not None and cb) else None
    pats = [n for n in phases if n != "base"]
    rr = [out[f"{n}_rate_ratio"] for n in pats if out[f"{n}_rate_ratio"] is not None]
    cr = [out[f"{n}_cpu_ratio"] for n in pats if out[f"{n}_cpu_ratio"] is not None]
    out["worst_rate_ratio"] = min(rr) if rr else None
    out["worst_cpu_ratio"] = max(cr) if cr else None
    out["goal_met"] = (out["worst_rate_ratio"] > 0.5) if rr else None
    for k in ("window_s", "loadgen_cpu_share", "router_cpu_share", "router_aux_cpu_share",
              "other_cpu_cores", "irq_cpu_cores"):
        vals = [r.get(k) for r in phases.values() if r.get(k) is not None]
        out[k] = max(vals) if vals else None
    return out
