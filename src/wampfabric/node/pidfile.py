"""The node's pid file: ``node.pid`` (JSON) in the node directory.

A node directory runs at most one node.  ``acquire`` creates the file
atomically (``O_EXCL``); when it exists and names a live node process it
refuses, when the process is gone (or the pid now belongs to another
process: the recorded start time differs) the file is stale and replaced.

A pid file is only trusted after the process it names is verified
(``inspect``): its start time must match the recorded ``created`` (our
files record it; Crossbar.io's ``{"pid", "argv", "options"}`` and
hand-written files do not), and its command line must be that of a node
controller (``wampfabric ... start``, ``crossbar ... start`` or
Crossbar.io's process title ``crossbar-controller``).  A live process that
fails the check is *foreign*: ``stop`` refuses to signal it, ``status``
does not report it as a node, ``start`` replaces the file with a warning.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil

from .. import __version__

PIDFILE = "node.pid"


class AlreadyRunning(Exception):
    def __init__(self, cbdir: Path, pid: int):
        self.pid = pid
        super().__init__(f"A node is already running from node directory {cbdir} (PID {pid}); "
                         f"stop it first: wampfabric stop --cbdir {cbdir}")


def path(cbdir: Path) -> Path:
    return Path(cbdir) / PIDFILE


def read(cbdir: Path) -> dict | None:
    try:
        info = json.loads(path(cbdir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": None}
    return info if isinstance(info, dict) else {"pid": None}


NONE, STALE, RUNNING, FOREIGN = "none", "stale", "running", "foreign"
NODE_PROGRAMS = ("wampfabric", "crossbar")
NODE_TITLES = ("crossbar-controller", "wampfabric-controller")


def looks_like_node(cmdline: list) -> bool:
    """Is this the command line of a node controller (wampfabric's or Crossbar.io's)?

    Workers (``python -m wampfabric.worker --type router ...``) are not: they have no ``start``.
    """
    if not cmdline:
        return False
    if os.path.basename(cmdline[0]).startswith(NODE_TITLES):  # a process title set by the node
        return True
    if "start" not in cmdline[1:]:
        return False
    # the program: `wampfabric`, `python -m wampfabric`, `python .../bin/crossbar`, a frozen binary
    return any(any(name in os.path.basename(arg) for name in NODE_PROGRAMS) for arg in cmdline[:4])


class Verdict:
    """What a pid file names: ``state`` is NONE (no file), STALE (corrupt file, or no such
    process: safe to remove), RUNNING (a verified node process: ``process``) or FOREIGN (a live
    process that is not the node that wrote the file, or cannot be verified)."""

    def __init__(self, state: str, pid=None, process: psutil.Process | None = None, reason: str = ""):
        self.state = state
        self.pid = pid
        self.process = process
        self.reason = reason


def _cmdline_text(cmdline: list) -> str:
    text = " ".join(cmdline)
    return text if len(text) <= 120 else text[:57] + " ... " + text[-58:]


def _cbdir_of(p: psutil.Process, cmdline: list) -> Path | None:
    """The node directory a node process names with ``--cbdir`` (None if it does not say)."""
    for i, arg in enumerate(cmdline):
        value = cmdline[i + 1] if arg == "--cbdir" and i + 1 < len(cmdline) else (
            arg[len("--cbdir="):] if arg.startswith("--cbdir=") else None)
        if value:
            try:
                return (Path(p.cwd()) / value).resolve()
            except (psutil.Error, OSError):
                return None
    return None


def _same_arguments(info: dict, cmdline: list) -> bool:
    """Our own pid file (start time verified) of a node run under another program name: its
    recorded ``argv`` arguments are the process's."""
    argv = info.get("argv")
    if not isinstance(info.get("created"), (int, float)) or not isinstance(argv, list) or len(argv) < 2:
        return False
    return cmdline[-(len(argv) - 1):] == argv[1:]


def inspect(info: dict | None, cbdir: Path | None = None) -> Verdict:
    """Verify the process a pid file (as ``read`` returns it) names, before anyone signals it."""
    if info is None:
        return Verdict(NONE)
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return Verdict(STALE, None, reason="the pid file is corrupt")
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return Verdict(STALE, pid, reason=f"process {pid} has exited")
        created = info.get("created")
        if isinstance(created, (int, float)) and abs(p.create_time() - created) > 1.0:
            return Verdict(STALE, pid, reason=f"process {pid} has exited (the PID now belongs to another process)")
        cmdline = p.cmdline()
    except psutil.NoSuchProcess:
        return Verdict(STALE, pid, reason=f"process {pid} does not exist")
    except psutil.AccessDenied:
        return Verdict(FOREIGN, pid, reason=f"process {pid} cannot be inspected (access denied)")
    if pid == os.getpid():
        return Verdict(STALE, pid, reason=f"process {pid} is this process")
    if not looks_like_node(cmdline) and not _same_arguments(info, cmdline):
        return Verdict(FOREIGN, pid, reason=f"process {pid} is not a wampfabric or Crossbar.io node "
                                            f"(command line: {_cmdline_text(cmdline) or '?'})")
    if cbdir is not None and not isinstance(info.get("created"), (int, float)):
        # an unverifiable file (no start time): the PID may now belong to a node of another directory
        other = _cbdir_of(p, cmdline)
        if other is not None and other != Path(cbdir).resolve():
            return Verdict(FOREIGN, pid, reason=f"process {pid} is the node of another node directory ({other})")
    return Verdict(RUNNING, pid, p)


def acquire(cbdir: Path) -> dict:
    """Write our pid file; raise ``AlreadyRunning`` if a verified node owns it.  A stale or
    foreign pid file is replaced: then ``"replaced"`` is the ``Verdict`` about the old one."""
    me = psutil.Process(os.getpid())
    info = {"pid": me.pid, "created": me.create_time(), "argv": sys.argv, "executable": sys.executable,
            "cbdir": str(cbdir), "version": __version__}
    p = path(cbdir)
    replaced = None
    for _ in range(3):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            old = inspect(read(cbdir), cbdir)
            if old.state == RUNNING:
                raise AlreadyRunning(cbdir, old.pid) from None
            replaced = old
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        return {**info, "replaced": replaced}
    raise RuntimeError(f"cannot create pid file {p}")


def release(cbdir: Path) -> None:
    """Remove the pid file if it is ours."""
    info = read(cbdir)
    if info and info.get("pid") == os.getpid():
        try:
            path(cbdir).unlink()
        except FileNotFoundError:
            pass
