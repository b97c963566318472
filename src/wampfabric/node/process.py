"""Worker processes as the node controller sees them: spawning, the log
pipes, the WAMP pipes of native workers, exit and stop.

Native workers (router, container) are ``sys.executable -u -m
wampfabric.worker --type TYPE --id ID ...`` (``wampfabric _exec_worker ...``
when frozen), with

- fd 0: ``/dev/null``; fds 1 and 2: pipes to the controller carrying log
  lines only (the worker's own lines already carry the ``[Router    1234]``
  prefix; any other line, e.g. a component's ``print``, gets it here);
- two more pipes, passed with ``pass_fds`` and named by ``--wamp-fds R,W``,
  carrying WAMP (``transport/stdio.py``): the worker joins realm
  ``crossbar`` with the authrole ``crossbar.worker.<id>``, which may only
  register and publish under ``crossbar.worker.<id>.``.

Guest workers are any executable; their stdout/stderr lines are logged
(``options.stdout`` / ``options.stderr``: ``log`` (default), ``drop`` or
``close``).

Every child gets ``PR_SET_PDEATHSIG`` (SIGTERM) before ``exec`` on Linux,
so that a controller killed with SIGKILL leaves no orphans; native workers
also exit on end of file of their WAMP pipe.

Each guest runs in its own process group (its pid is the group id), and
the group is what gets signalled: stopping a guest (or the node) ends the
processes the guest started too (``sh -c "sleep 777 & ..."``), SIGTERM
first, SIGKILL after the stop timeout.  The parent-death signal reaches
the guest itself only, not its children, so for a controller killed with
SIGKILL a small watchdog (``/bin/sh``, in its own session, started with
the first guest) holds the list of guest groups on its stdin pipe; when
that pipe ends without the controller having ended the groups, it sends
them SIGTERM, then SIGKILL after 5 s.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

from ..common.management import worker_prefix
from ..common.pdeathsig import set_pdeathsig
from ..common.timefmt import utcstr

log = logging.getLogger("wampfabric.node")

LOG_BUFFER_LINES = 500
READY_TIMEOUT = 30.0
_OWN_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* \[")
OPTIONS_ENV = "WAMPFABRIC_WORKER_OPTIONS"


def _child_setup(parent_pid: int, new_group: bool = False):
    """preexec_fn: die with the controller (Linux), and notice if it is already gone; ``new_group``:
    lead a process group of its own (uvloop has no ``process_group``; this runs before ``exec``,
    so the group exists when the spawn returns)."""
    def setup():
        if new_group:
            os.setpgid(0, 0)
        set_pdeathsig(signal.SIGTERM)
        if os.getppid() != parent_pid:
            os._exit(1)
    return setup


def group_alive(pgid: int) -> bool:
    """Does the process group still have a process that is not a zombie?

    ``kill(-pgid, 0)`` counts zombies too: orphans that exited and wait for init to reap
    them (which may take a second); on Linux those are skipped by reading ``/proc``.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.scandir("/proc")
    except OSError:
        return True
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
                fields = stat[stat.rindex(b")") + 2:].split()  # state ppid pgrp ...
                if int(fields[2]) == pgid and fields[0] != b"Z":
                    return True
            except (OSError, ValueError, IndexError):
                continue
    return False


# /bin/sh (POSIX; dash's kill takes no "--"): reads "+PGID" / "-PGID" lines; at end of file,
# ends the groups still listed (the controller removes each group it has ended itself)
_WATCHDOG = r"""
trap '' INT TERM HUP
groups=""
while read -r line; do
  case "$line" in
    +*) groups="$groups ${line#+}" ;;
    -*) new=""; for g in $groups; do [ "$g" = "${line#-}" ] || new="$new $g"; done; groups="$new" ;;
  esac
done
[ -z "$groups" ] && exit 0
for g in $groups; do kill -TERM -$g 2>/dev/null; done
i=0
while [ $i -lt 50 ]; do
  alive=""
  for g in $groups; do kill -0 -$g 2>/dev/null && alive="$alive $g"; done
  [ -z "$alive" ] && exit 0
  sleep 0.1
  i=$((i + 1))
done
for g in $alive; do kill -KILL -$g 2>/dev/null; done
"""


class GuestGroups:
    """The process groups of the node's guest workers, mirrored to the watchdog."""

    def __init__(self):
        self.groups: dict[int, str] = {}  # process group id -> " of guest worker 'ID'"
        self._watchdog: asyncio.subprocess.Process | None = None

    def prune(self) -> None:
        """Forget the groups that have no process left (so their ids are never signalled once reused)."""
        for g in [g for g in self.groups if not group_alive(g)]:
            self.discard(g)

    async def add(self, pgid: int, who: str = "") -> None:
        self.prune()
        self.groups[pgid] = who
        if self._watchdog is None and os.path.exists("/bin/sh"):
            try:
                self._watchdog = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", _WATCHDOG, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
                log.debug("Guest process group watchdog started (pid %d)", self._watchdog.pid)
            except OSError as e:
                log.warning("Cannot start the guest process group watchdog: %s", e)
                return
            for g in self.groups:
                self._tell(f"+{g}")
        else:
            self._tell(f"+{pgid}")

    def discard(self, pgid: int) -> None:
        if self.groups.pop(pgid, None) is not None:
            self._tell(f"-{pgid}")

    def _tell(self, line: str) -> None:
        w = self._watchdog
        if w is not None and w.returncode is None and not w.stdin.is_closing():
            w.stdin.write(line.encode() + b"\n")

    async def end(self, pgid: int, grace: float, who: str = "", first: int = signal.SIGTERM,
                  leftovers: bool = True) -> None:
        """Send the group ``first`` (SIGTERM), SIGKILL after ``grace`` seconds; then forget it.
        ``leftovers``: the group's leader has exited (log that its processes are ended)."""
        who = who or self.groups.get(pgid, "")
        steps = [(first, grace)] + ([(signal.SIGKILL, 2.0)] if first != signal.SIGKILL else [])
        for n, (sig, wait) in enumerate(steps):
            if not group_alive(pgid):
                break
            if n:
                log.warning("Processes of the process group %d%s did not exit within %.0fs: killing them", pgid,
                            who, grace)
            elif leftovers:
                log.info("Ending the processes left in the process group %d%s", pgid, who)
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            deadline = time.monotonic() + wait
            while group_alive(pgid) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        if group_alive(pgid):
            log.warning("Process group %d%s did not end", pgid, who)
        else:
            self.discard(pgid)

    async def end_all(self, grace: float) -> None:
        await asyncio.gather(*(self.end(g, grace) for g in list(self.groups)), return_exceptions=True)

    async def close(self) -> None:
        """End the watchdog (it ends the groups still listed, normally none)."""
        w, self._watchdog = self._watchdog, None
        if w is not None and w.returncode is None:
            w.stdin.close()
            try:
                await asyncio.wait_for(w.wait(), 10)
            except asyncio.TimeoutError:
                w.kill()


def create_process_env(options: dict) -> dict:
    """Environment of a worker: ``options.env`` = ``{"inherit": true|false|[names], "vars": {...}}``."""
    env_cfg = options.get("env", {})
    inherit = env_cfg.get("inherit", True)
    if inherit is True:
        env = dict(os.environ)
    elif isinstance(inherit, list):
        env = {k: os.environ[k] for k in inherit if k in os.environ}
    else:
        env = {}
    env.update({k: str(v) for k, v in env_cfg.get("vars", {}).items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class WorkerProcess:
    """A worker process of the node (base of native and guest workers)."""

    TYPE = "worker"
    LOGNAME = "Worker"

    def __init__(self, controller, worker_id: str, config: dict, who=None):
        self.controller = controller
        self.id = worker_id
        self.config = config  # native: worker options; guest: the guest worker config
        self.who = who
        self.pid: int | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.status = "starting"
        self.created = time.time()
        self.started: float | None = None
        self.exit_code: int | None = None
        self.stop_requested = False
        self.log_lines: collections.deque = collections.deque(maxlen=LOG_BUFFER_LINES)
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.exited: asyncio.Future = asyncio.get_running_loop().create_future()
        self._readers: list[asyncio.Task] = []
        self._log_topic = f"{worker_prefix(worker_id)}.on_log"

    @property
    def options(self) -> dict:
        return self.config

    def marshal(self) -> dict:
        now = time.time()
        return {
            "id": self.id,
            "pid": self.pid,
            "type": self.TYPE,
            "status": self.status,
            "created": utcstr(self.created),
            "started": utcstr(self.started),
            "startup_time": (self.started - self.created) if self.started else None,
            "uptime": (now - self.started) if self.started and self.exit_code is None else None,
            "who": self.who,
            "exit_code": self.exit_code,
        }

    # -- logs ----------------------------------------------------------------------------

    def _prefix(self) -> str:
        return f"[{self.LOGNAME:<10} {self.pid or 0:>6}]"

    def on_log_line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        if not _OWN_LINE.match(line):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            line = f"{ts} {self._prefix()} {line}"
        self.log_lines.append(line)
        log.info(line, extra={"raw": True})
        self.controller.publish(self._log_topic, line)

    def get_log(self, limit: int | None = None) -> list:
        lines = list(self.log_lines)
        if limit:
            lines = lines[-limit:]
        return lines

    async def _read_lines(self, stream: asyncio.StreamReader, handle: bool = True) -> None:
        pending = b""
        while True:
            try:
                chunk = await stream.read(65536)
            except Exception:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > 65536:  # an endless line: cut it
                lines.append(pending)
                pending = b""
            if handle:
                for raw in lines:
                    self.on_log_line(raw.decode("utf-8", "replace"))
        if pending and handle:
            self.on_log_line(pending.decode("utf-8", "replace"))

    def _start_readers(self, streams: list) -> None:
        for stream, handle in streams:
            if stream is not None:
                self._readers.append(asyncio.ensure_future(self._read_lines(stream, handle)))

    async def _watch(self) -> None:
        code = await self.proc.wait()
        if self._readers:
            try:
                await asyncio.wait_for(asyncio.gather(*self._readers, return_exceptions=True), 2)
            except asyncio.TimeoutError:
                pass
        self.exit_code = code
        self.status = "stopped" if (self.stop_requested or code == 0) else "failed"
        self.on_exit()
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"worker process exited with code {code} before it was ready"))
            self.ready.exception()
        if not self.exited.done():
            self.exited.set_result(code)
        self.controller.worker_exited(self)

    def on_exit(self) -> None:
        """Subclass hook: release pipes etc."""

    # -- stop --------------------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    async def stop(self, kill: bool = False, timeout: float = 10.0) -> int | None:
        """SIGTERM (or SIGKILL), then SIGKILL after ``timeout``; returns the exit code."""
        self.stop_requested = True
        if self.status in ("starting", "started"):
            self.status = "stopping"
        if self.exited.done():
            return self.exited.result()
        self.signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        except asyncio.TimeoutError:
            log.warning("%s worker '%s' (pid %s) did not exit within %.0fs: killing it", self.LOGNAME, self.id,
                        self.pid, timeout)
            self.signal(signal.SIGKILL)
            return await asyncio.shield(self.exited)


class NativeWorkerProcess(WorkerProcess):
    TYPE = "native"
    LOGNAME = "Native"

    def __init__(self, controller, worker_id: str, worker_type: str, config: dict, who=None, logname="Native"):
        super().__init__(controller, worker_id, config, who)
        self.TYPE = worker_type
        self.LOGNAME = logname
        self.transport = None

    def command(self, rfd: int, wfd: int) -> list:
        node = self.controller.node
        if getattr(sys, "frozen", False):
            args = [sys.executable, "_exec_worker"]
        else:
            args = [sys.executable, "-u", "-m", "wampfabric.worker"]
        args += ["--type", self.TYPE, "--id", self.id, "--cbdir", str(node.cbdir), "--node", node.node_id,
                 "--realm", node.realm_name, "--personality", node.personality.NAME, "--loglevel", node.loglevel,
                 "--wamp-fds", f"{rfd},{wfd}", "--controller-pid", str(os.getpid())]
        if self.options.get("title"):
            args += ["--title", self.options["title"]]
        return args

    async def spawn(self, auth_role: str) -> None:
        from ..transport.stdio import StdioRouterTransport

        node = self.controller.node
        c2w_r, c2w_w = os.pipe()
        w2c_r, w2c_w = os.pipe()
        env = create_process_env(self.options)
        import wampfabric

        paths = [os.path.abspath(os.path.join(node.cbdir, p)) for p in self.options.get("pythonpath", [])]
        paths.append(str(Path(wampfabric.__file__).resolve().parent.parent))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        # options may hold secrets (env vars): not on the command line, which every user can read
        env[OPTIONS_ENV] = json.dumps(self.options, separators=(",", ":"))
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(c2w_r, w2c_w), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=(c2w_r, w2c_w), env=env, cwd=str(node.cbdir),
                preexec_fn=_child_setup(os.getpid()),
            )
        except Exception:
            for fd in (c2w_r, c2w_w, w2c_r, w2c_w):
                os.close(fd)
            raise
        finally:
            for fd in (c2w_r, w2c_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pid = self.proc.pid
        self.transport = StdioRouterTransport(
            node.router, {"anonymous": {"type": "static", "role": auth_role, "authid": self.id}},
            peer=f"process:{self.pid}")
        await self.transport.open(w2c_r, c2w_w)
        self._start_readers([(self.proc.stdout, True), (self.proc.stderr, True)])
        asyncio.ensure_future(self._watch())

    def on_exit(self) -> None:
        if self.transport is not None:
            self.transport.close()


def check_executable(fn: str) -> bool:
    return os.path.exists(fn) and os.access(fn, os.X_OK) and not os.path.isdir(fn)


class GuestWorkerProcess(WorkerProcess):
    TYPE = "guest"
    LOGNAME = "Guest"
    pgid: int | None = None  # its own process group

    def signal(self, sig: int) -> None:
        """Signal the guest's process group: the processes it started get the signal too."""
        if self.pgid is not None and self.pgid in self.controller.guest_groups.groups:
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                super().signal(sig)
            return
        super().signal(sig)

    def on_exit(self) -> None:
        # processes the guest left behind are ended with the node (or when it is stopped)
        self.controller.guest_groups.prune()

    async def stop(self, kill: bool = False, timeout: float = 10.0) -> int | None:
        """Stop the guest and every process of its group: SIGTERM (or SIGKILL), SIGKILL after ``timeout``."""
        groups = self.controller.guest_groups
        if self.pgid is None or self.pgid not in groups.groups:
            return await super().stop(kill, timeout)
        self.stop_requested = True
        if self.status in ("starting", "started"):
            self.status = "stopping"
        await groups.end(self.pgid, timeout, "", signal.SIGKILL if kill else signal.SIGTERM,
                         leftovers=self.exited.done())
        try:
            # its output pipes end with the group (unless some process outside it holds them)
            return await asyncio.wait_for(asyncio.shield(self.exited), 5)
        except asyncio.TimeoutError:
            super().signal(signal.SIGKILL)
            return await asyncio.shield(self.exited)

    @property
    def options(self) -> dict:
        return self.config.get("options", {})

    def resolve(self) -> tuple[str, list, str]:
        """``(executable, args, workdir)`` or ``ValueError``."""
        cbdir = self.controller.node.cbdir
        workdir = os.path.abspath(os.path.join(cbdir, self.options.get("workdir", ".")))
        exe = os.path.abspath(os.path.join(workdir, self.config["executable"]))
        if not check_executable(exe):
            found = shutil.which(self.config["executable"])
            if found is None or not check_executable(found):
                raise ValueError(f"could not find an executable for '{self.config['executable']}'")
            exe = found
        return exe, [exe, *[str(a) for a in self.config.get("arguments", [])]], workdir

    async def spawn(self) -> None:
        exe, args, workdir = self.resolve()
        opts = self.options
        pipes = {}
        for name in ("stdout", "stderr"):
            mode = opts.get(name, "log")
            pipes[name] = (asyncio.subprocess.PIPE if mode in ("log", "drop") else asyncio.subprocess.DEVNULL, mode)
        stdin = opts.get("stdin")
        stdin_data = None
        if isinstance(stdin, dict) and stdin.get("type") == "json":
            stdin_data = json.dumps(stdin.get("value")).encode() + b"\n"
        self.proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=pipes["stdout"][0], stderr=pipes["stderr"][0], env=create_process_env(opts), cwd=workdir,
            preexec_fn=_child_setup(os.getpid(), new_group=True),
        )
        self.pid = self.pgid = self.proc.pid
        self.ready.set_result(None)  # a guest is ready once it runs (it may end at once: no start failure)
        await self.controller.guest_groups.add(self.pgid, f" of guest worker '{self.id}'")
        if stdin_data is not None:
            self.proc.stdin.write(stdin_data)
            if stdin.get("close", True):
                self.proc.stdin.close()
        self._start_readers([(self.proc.stdout, pipes["stdout"][1] == "log"),
                             (self.proc.stderr, pipes["stderr"][1] == "log")])
        asyncio.ensure_future(self._watch())
        log.info("Guest worker '%s' started: %s (pid %d, workdir %s)", self.id, " ".join(args), self.pid, workdir)
