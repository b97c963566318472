"""The node's pid file: ``node.pid`` (JSON) in the node directory.

A node directory runs at most one node.  ``acquire`` creates the file
atomically (``O_EXCL``); when it exists and names a live node process it
refuses, when the process is gone (or the pid now belongs to another
process: the recorded start time differs) the file is stale and replaced.
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


def is_alive(info: dict | None) -> bool:
    """Does the pid file name a live process (the one that wrote it)?"""
    if not info or not isinstance(info.get("pid"), int):
        return False
    try:
        p = psutil.Process(info["pid"])
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        created = info.get("created")
        if created is not None and abs(p.create_time() - created) > 1.0:
            return False  # pid reused by another process
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def acquire(cbdir: Path) -> dict:
    """Write our pid file; raise ``AlreadyRunning``; ``{"replaced_stale": pid}`` if a stale one was replaced."""
    me = psutil.Process(os.getpid())
    info = {"pid": me.pid, "created": me.create_time(), "argv": sys.argv, "executable": sys.executable,
            "cbdir": str(cbdir), "version": __version__}
    p = path(cbdir)
    replaced = None
    for _ in range(3):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            old = read(cbdir)
            if is_alive(old):
                raise AlreadyRunning(cbdir, old["pid"]) from None
            replaced = (old or {}).get("pid") or "?"
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        return {**info, "replaced_stale": replaced}
    raise RuntimeError(f"cannot create pid file {p}")


def release(cbdir: Path) -> None:
    """Remove the pid file if it is ours."""
    info = read(cbdir)
    if info and info.get("pid") == os.getpid():
        try:
            path(cbdir).unlink()
        except FileNotFoundError:
            pass
