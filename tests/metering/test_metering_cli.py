"""``wampfabric metering-service`` as an operator uses it: keys (hex or a Crossbar.io key file),
the records and hourly sums in every output format, both backends, and errors as one line."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import pytest

from meteringsvc import BASE_HOUR, PERIOD, WAMPFABRIC, Master, counters, mrealm
from support.nodes import free_port
from wampfabric.protocol.metering import COUNTER_FIELDS


def wf(*args, env=None, check=True):
    e = {k: v for k, v in os.environ.items() if k != "WAMPFABRIC_METERING_DSN"}
    e.update(env or {})
    r = subprocess.run([WAMPFABRIC, "metering-service", *args], capture_output=True, text=True, env=e, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def one_line_error(r, *words):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_keys_and_records(backend, request, tmp_path, service):
    store = ["--dir", str(tmp_path / "svcdir")]
    dsn = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    if dsn:
        store += ["--dsn", dsn]
    a, b = Master(), Master()
    keyfile = tmp_path / "key.pub"
    keyfile.write_text(f"creator: someone@host\ncreated-at: 2026-12-05T10:00:00.000Z\n"
                       f"machine-id: 1234\npublic-key-ed25519: {b.pub}\n")
    assert f"added key {a.pub}" in wf("key", "add", a.pub.upper(), "--customer", "acme", *store).stdout
    wf("key", "add", str(keyfile), "--customer", "beta", *store)
    one_line_error(wf("key", "add", a.pub, "--customer", "x", *store, check=False), "registered already")
    rows = json.loads(wf("key", "list", "--output", "json", *store).stdout)
    assert {(r["pubkey"], r["customer"], r["revoked"]) for r in rows} == {(a.pub, "acme", None), (b.pub, "beta", None)}
    table = wf("key", "list", *store).stdout
    assert a.pub in table and "active" in table

    svc = service(dsn=dsn, directory=tmp_path / "svcdir")
    for i in range(3):
        assert svc.post(a.sign(a.record(mrealm(), BASE_HOUR + i * PERIOD, **counters(i))))[0] == 200
    assert svc.post(b.sign(b.record(mrealm(), BASE_HOUR)))[0] == 200
    # revoked while the service runs: refused from the next submission on
    assert "revoked key" in wf("key", "revoke", str(keyfile), *store).stdout
    assert svc.post(b.sign(b.record(mrealm(), BASE_HOUR + PERIOD))) [0] == 403
    one_line_error(wf("key", "revoke", b.pub, *store, check=False), "revoked already")
    assert "revoked 20" in wf("key", "list", *store).stdout

    recs = json.loads(wf("records", "--customer", "acme", "--output", "json", *store).stdout)
    assert len(recs) == 3 and all(r["pubkey"] == a.pub for r in recs)
    assert len(json.loads(wf("records", "--pubkey", str(keyfile), "--output", "json", *store).stdout)) == 1
    assert len(json.loads(wf("records", "--from", str(BASE_HOUR + PERIOD), "--output", "json", *store).stdout)) == 2
    table = wf("records", *store).stdout
    assert table.count("\n") == 2 + 4 and "acme" in table and "beta" in table
    rows = list(csv.DictReader(io.StringIO(wf("records", "--output", "csv", *store).stdout)))
    assert len(rows) == 4 and set(COUNTER_FIELDS) <= set(rows[0])
    hourly = list(csv.DictReader(io.StringIO(wf("records", "--hourly", "--output", "csv", *store).stdout)))
    assert {(h["customer"], h["records"]) for h in hourly} == {("acme", "3"), ("beta", "1")}
    assert "acme" in wf("records", "--hourly", *store).stdout
    assert svc.stop() == 0


def test_dsn_from_environment(pg_url, tmp_path):
    m = Master()
    wf("key", "add", m.pub, "--customer", "env", "--dir", str(tmp_path), env={"WAMPFABRIC_METERING_DSN": pg_url})
    assert m.pub in wf("key", "list", "--dsn", pg_url).stdout
    assert not (tmp_path / "metering.sqlite").exists()


def test_errors_are_one_line(tmp_path):
    d = ["--dir", str(tmp_path / "d")]
    one_line_error(wf("key", "add", "abc", "--customer", "x", *d, check=False), "neither a public key")
    bad = tmp_path / "bad.pub"
    bad.write_text("public-key-ed25519: 1234\n")
    one_line_error(wf("key", "add", str(bad), "--customer", "x", *d, check=False), "not 64 hex")
    one_line_error(wf("key", "list", "--dsn", "mysql://x/y", check=False), "PostgreSQL URL")
    port = free_port()  # nobody listens there
    one_line_error(wf("key", "list", "--dsn", f"postgresql://u:secret@127.0.0.1:{port}/db", check=False),
                   f"postgresql://127.0.0.1:{port}/db")
    assert "secret" not in wf("key", "list", "--dsn", f"postgresql://u:secret@127.0.0.1:{port}/db", check=False).stderr
    one_line_error(wf("records", "--from", "yesterday", *d, check=False), "ISO 8601")
    r = wf("serve", "--dir", str(tmp_path / "f"), "--port", "70000", check=False)  # click's usage error
    assert r.returncode == 2 and "Traceback" not in r.stderr and "'--port'" in r.stderr
    (tmp_path / "file").write_text("")
    one_line_error(wf("key", "list", "--dir", str(tmp_path / "file"), check=False), "directory")


def test_psycopg_missing(tmp_path):
    code = ("import sys; sys.modules['psycopg'] = None; sys.argv = ['wampfabric', 'metering-service', 'key', 'list', "
            "'--dir', sys.argv[1], '--dsn', 'postgresql://127.0.0.1/x']; from wampfabric.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=30)
    one_line_error(r, "pip install 'wampfabric[postgres]'")


def test_serve_port_taken_and_sigint(tmp_path, service):
    svc = service()
    r = wf("serve", "--dir", str(tmp_path / "other"), "--port", str(svc.port), check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout
    assert f"cannot listen on 127.0.0.1:{svc.port}" in r.stderr
    svc.proc.send_signal(signal.SIGINT)
    assert svc.proc.wait(10) == 0
    assert "Metering service stopping" in svc.log()
