"""Process and system statistics (psutil) for the management API.

``get_process_info`` / ``get_process_stats`` / ``get_process_monitor`` of every
native process (the node controller and each native worker; stats and monitor of
guests too, answered by the controller) and the controller's
``get_system_stats`` answer from here.  Shapes follow what Crossbar.io's
master stores (``crossbar-fabric-protocol.md`` section 5): flat process
figures, and a system dict with ``cpu``, ``memory``, ``network`` (with
``connection`` counts per address family) and ``disk``.
"""

from __future__ import annotations

import os
import sys
import time

import psutil

from .timefmt import utcstr


def _asdict(nt) -> dict:
    return dict(nt._asdict()) if nt is not None else {}


def process_stats(proc: psutil.Process | None = None) -> dict:
    """A snapshot of one process: counters since it started."""
    p = proc or psutil.Process(os.getpid())
    with p.oneshot():
        cpu = p.cpu_times()
        ctx = p.num_ctx_switches()
        mem = p.memory_info()
        try:
            io = p.io_counters()
        except (psutil.AccessDenied, AttributeError, NotImplementedError):
            io = None
        try:
            fds = p.num_fds()
        except (psutil.AccessDenied, AttributeError):
            fds = None
        stats = {
            "pid": p.pid,
            "status": p.status(),
            "cmdline": p.cmdline(),
            "created": p.create_time(),
            "num_fds": fds,
            "num_threads": p.num_threads(),
            "cpu_user": cpu.user,
            "cpu_system": cpu.system,
            "mem_rss": mem.rss,
            "mem_vms": mem.vms,
            "num_ctx_switches_voluntary": ctx.voluntary,
            "num_ctx_switches_involuntary": ctx.involuntary,
            "read_ios": io.read_count if io else None,
            "write_ios": io.write_count if io else None,
            "read_bytes": io.read_bytes if io else None,
            "write_bytes": io.write_bytes if io else None,
        }
    try:
        stats["num_connections"] = len(p.net_connections(kind="inet"))
    except (psutil.AccessDenied, AttributeError):
        stats["num_connections"] = None
    return stats


def typed_process_stats(kind: str, proc: psutil.Process | None = None) -> dict:
    """What ``get_process_stats`` answers (controller, native worker, guest): the snapshot without
    ``cmdline``, with ``type``."""
    s = process_stats(proc)
    s.pop("cmdline", None)
    s["type"] = kind
    return s


def process_info(kind: str) -> dict:
    """What ``get_process_info`` answers (controller, native worker): this process."""
    p = psutil.Process(os.getpid())
    return {"pid": p.pid, "ppid": p.ppid(), "executable": sys.executable, "cmdline": p.cmdline(),
            "cwd": os.getcwd(), "created": utcstr(p.create_time()), "user": p.username(),
            "python": sys.version.split()[0], "type": kind}


_RATES = ("cpu_user", "cpu_system", "read_ios", "write_ios", "read_bytes", "write_bytes",
          "num_ctx_switches_voluntary", "num_ctx_switches_involuntary")


class ProcessMonitor:
    """``poll()``: the current figures plus per-second rates since the last poll."""

    def __init__(self, kind: str, pid: int | None = None):
        self.kind = kind
        self.proc = psutil.Process(pid or os.getpid())
        self._last = None
        self._last_time = None
        self.seq = 0

    def poll(self) -> dict:
        now = time.monotonic()
        cur = process_stats(self.proc)
        cur.pop("cmdline", None)
        self.seq += 1
        res = {"type": self.kind, "seq": self.seq, "timestamp": time.time_ns(), **cur}
        if self._last is not None and now > self._last_time:
            dt = now - self._last_time
            for k in _RATES:
                a, b = self._last.get(k), cur.get(k)
                res[f"{k}_per_sec"] = (b - a) / dt if a is not None and b is not None else None
        else:
            for k in _RATES:
                res[f"{k}_per_sec"] = 0
        self._last, self._last_time = cur, now
        return res


def system_stats() -> dict:
    """Node-wide figures: cpu, memory, network (with connections per family), disk."""
    started = time.monotonic_ns()
    cpu = _asdict(psutil.cpu_times())
    freq = None
    try:
        f = psutil.cpu_freq()
        freq = f.current if f else None
    except Exception:
        pass
    cpu["freq"] = freq
    cpu.update(_asdict(psutil.cpu_stats()))
    net = _asdict(psutil.net_io_counters())
    conns = {"AF_INET": 0, "AF_INET6": 0, "AF_UNIX": 0}
    try:
        for c in psutil.net_connections(kind="all"):
            name = getattr(c.family, "name", str(c.family))
            conns[name] = conns.get(name, 0) + 1
    except (psutil.AccessDenied, OSError):
        pass
    net["connection"] = conns
    try:
        disk = _asdict(psutil.disk_io_counters())
    except Exception:
        disk = {}
    return {
        "timestamp": time.time_ns(),
        "uptime": time.time() - psutil.boot_time(),
        "cpu": cpu,
        "memory": _asdict(psutil.virtual_memory()),
        "network": net,
        "disk": disk,
        "elapsed": time.monotonic_ns() - started,
    }
