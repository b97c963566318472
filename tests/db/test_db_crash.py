"""All-or-nothing writes: a writer process doing multi-table transactions is killed with SIGKILL
again and again; afterwards every table agrees with its indexes and with the counts the same
transactions wrote."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from wampfabric.db import Database

sys.path.insert(0, str(Path(__file__).parent))
from crash_writer import schema  # noqa: E402

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 25


def _run_and_kill(path: Path, rnd: random.Random) -> None:
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", "the writer did not start"
        time.sleep(rnd.uniform(0.01, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed"


def test_kill_9_in_a_loop_leaves_tables_indexes_and_counts_consistent(tmp_path):
    path = tmp_path / "crashdb"
    rnd = random.Random()
    seqs = []
    for _ in range(KILLS):
        _run_and_kill(path, rnd)
        db = Database(path, maxsize=1, readonly=True)
        try:
            people, ledger, state = schema(db)
            with db.begin() as txn:
                st = state.get(txn, "state")
                assert st is not None
                # every committed transaction is whole: its ledger entry, the state and the people
                assert ledger.count(txn) == st["seq"]
                assert list(ledger.select(txn, return_keys=True, return_values=False)) == \
                    list(range(1, st["seq"] + 1))
                assert ledger.get(txn, st["seq"]) == {"count": st["count"]}
                assert people.count(txn) == st["count"]
                for idx in people.indexes.values():
                    assert idx.count(txn) == st["count"]
                assert people.check_indexes(txn) == []
                seqs.append(st["seq"])
        finally:
            db.close()
    assert seqs == sorted(seqs) and seqs[-1] > seqs[0], f"the writer made no progress: {seqs}"
