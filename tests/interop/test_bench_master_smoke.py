"""Smoke test of `make bench-master` (bench/master): a short run against our master only, so that
the simulated edge nodes, the orchestration and the counting keep working between benchmark runs.
10 simulated nodes pair, join (cryptosign, realm null, authrole node), register their procedures
and send 1 node + 4 worker heartbeats a second for 4 s; 2 of them lose their connection without
GOODBYE. No figure is asserted beyond what must hold: every acknowledged heartbeat stored (matched
record by record), both killed nodes reported offline by the master's on_node_shutdown, the
master's processes measured, the report written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from support.nodes import REPO

RUN = REPO / "bench" / "master" / "run.py"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_simulated_nodes_against_our_master(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RUN), "--nodes", "10", "--targets", "wampfabric", "--period", "1", "--window", "4",
         "--settle", "3", "--kill", "2", "--drain", "20", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads((tmp_path / "master-latest.json").read_text())
    (r,) = data["results"]
    assert "error" not in r, r
    assert r["join"]["joined"] == 10
    assert r["sim"]["n_errors"] == 0, r["sim"]["errors"]
    # ~4 rounds of 5 heartbeats from 8 nodes, ~2.7 from the 2 killed ones
    assert r["acked"] >= 100
    assert r["lost"] == 0
    assert r["stored"] == r["acked"] + r["stored_unacked"]
    assert r["stored_node"] * 4 == r["stored_worker"]
    assert r["offline_detected"] == "2/2" and r["offline_max_s"] < 5
    assert any(k.startswith("router worker cfrouter1") for k in r["cpu_total"])
    assert r["us_per_stored"] > 0 and r["bytes_per_record"] > 0
    md = (tmp_path / "master-latest.md").read_text()
    assert "## N = 10 nodes" in md and "| lost (acknowledged, not stored" in md
