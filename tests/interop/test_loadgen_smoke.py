"""Smoke test of the benchmark's load generator (bench/loadgen, `make bench`): its verifying
scenarios, briefly, against the test node, so that the package and the raw peer it is built on
keep working between benchmark runs.  No figure is asserted, only that everything sent was
answered and verified."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.nodes import REPO

LOADGEN = REPO / "bench" / "loadgen"


def loadgen(node, scenario: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", node.ws_url, "--scenario", scenario,
         "--duration", "0.3", "--warmup", "0.2", "--no-uvloop", *args],
        capture_output=True, text=True, timeout=90, cwd=REPO,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-3000:])
    return result


@pytest.mark.parametrize("serializer", ["msgpack", "json"])
def test_rpc_calls_are_all_answered_with_their_own_args(node, serializer):
    r = loadgen(node, "rpc", "--serializer", serializer, "--callers", "2", "--outstanding", "4")
    assert r["total_calls_verified"] >= r["calls"] > 0


def test_pubsub_events_reach_every_subscriber_once_in_order(node):
    r = loadgen(node, "pubsub", "--subscribers", "3", "--pub-outstanding", "4")
    assert r["total_events_verified"] == 3 * r["total_publishes_verified"] > 0


def test_joining_sessions_each_get_their_own_event(node):
    r = loadgen(node, "sessions", "--sessions", "20", "--concurrency", "5")
    assert r["events_verified"] == 20


def test_a_router_that_is_not_there_is_a_clear_failure():
    proc = subprocess.run([sys.executable, str(LOADGEN), "--url", "ws://127.0.0.1:9/ws", "--scenario", "probe",
                           "--probe-timeout", "0.5"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False
    assert proc.stderr.startswith("FAIL [probe]: router not ready after 0.5s") and "Traceback" not in proc.stderr
