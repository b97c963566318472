"""Smoke test of the differential check (compat/run.py, `make compat`): one
autobahn-python job against wampfabric only (Crossbar.io is not needed), so the
node directory template, the container backend, the guest and the scenario
script keep working between full `make compat` runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_compat_runner_one_job_against_wampfabric(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "compat" / "run.py"), "--routers", "wampfabric",
         "--only", "autobahn-python/json/rs/client", "--report", str(report)],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = json.loads(report.read_text())["wampfabric"]["autobahn-python/json/rs/client"]
    assert "_job" not in outcomes, outcomes.get("_job")
    assert not [k for k in outcomes if k.endswith(".aborted")], {k: v for k, v in outcomes.items() if "aborted" in k}
    # the container component and the guest answer through the router
    assert outcomes["rpc.container.hello"] == {"ok": "hello compat from the container"}
    assert outcomes["rpc.guest.hello"] == {"ok": "hello compat from the guest"}
    # application error payloads pass unchanged; IDs and the job's URI prefix are normalized
    assert outcomes["rpc.container.fail"]["error"] == "compat.error.custom"
    assert outcomes["rpc.container.fail"]["kwargs"] == {"detail": {"nested": {"list": [1, 2.5, "three"]}},
                                                       "flag": True}
    assert outcomes["uri.camelCase.events"][0]["topic"] == "compat.<p>.camelCase.procName"
    assert outcomes["meta.registration.get"]["id"] == "<id>"
