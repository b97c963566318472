"""The parent-death signal: a child process asks the kernel (Linux) to signal it when its
parent dies, so that a node controller killed with SIGKILL leaves no orphans.  Used by the
controller for every child it spawns (before ``exec``) and by a native worker at start."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies.

    False elsewhere or when it fails; never raises (it runs in a ``preexec_fn`` too).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except Exception:
        return False
