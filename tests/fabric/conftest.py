"""The fabric tests use the master's test helpers (tests/master/masternode.py)."""

import sys
from pathlib import Path

_MASTER = str(Path(__file__).resolve().parent.parent / "master")
if _MASTER not in sys.path:
    sys.path.append(_MASTER)
