"""The metering service as a user runs it (``wampfabric metering-service serve``), over real
sockets: submissions and every refusal with its status, the read API and its token, the CSV
export, a SIGKILL right after a 200, and the same flow on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time

import pytest

from meteringsvc import BASE_HOUR, HOUR, PERIOD, Master, counters, mrealm, status_of
from wampfabric.metering.store import open_store
from wampfabric.protocol.metering import COUNTER_FIELDS, MAX_SUBMISSION_BYTES, parse_receipt


def _register(svc, *masters, customer="acme", revoke=()):
    store = open_store(svc.dsn or str(svc.dir / "metering.sqlite"))
    for m in masters:
        store.key_add(m.pub, customer)
    for m in revoke:
        store.key_add(m.pub, customer)
        store.key_revoke(m.pub)
    store.close()


def _flow(svc):
    """Accepted records over two hours, a retry, a replay, a conflict; the read API's view."""
    m = Master()
    _register(svc, m)
    realm = mrealm()
    ids = []
    for i in range(14):
        status, doc = svc.post(m.sign(m.record(realm, BASE_HOUR + i * PERIOD, seq=i, **counters(i))))
        assert status == 200, doc
        mid, dup = parse_receipt(json.dumps(doc).encode())
        assert dup is False
        ids.append(str(mid))
    first = m.record(realm, BASE_HOUR, seq=0, **counters(0))
    # retry with a new nonce (the master lost the answer): same id, duplicate
    assert svc.post(m.sign(first)) == (200, {"metering_id": ids[0], "duplicate": True})
    # the very same POST twice: replayed
    body = m.sign(m.record(mrealm(), BASE_HOUR))
    assert svc.post(body)[0] == 200
    status, doc = svc.post(body)
    assert (status, doc["error"]) == (409, "replayed")
    # another record under a held key: conflict
    status, doc = svc.post(m.sign(dict(first, count=first["count"] + 1)))
    assert (status, doc["error"]) == (409, "conflict") and doc["message"]

    status, _, data = svc.api(f"/api/hourly?pubkey={m.pub}")
    assert status == 200
    hourly = json.loads(data)
    assert [(h["hour"], h["records"]) for h in hourly] == [(BASE_HOUR, 13), (BASE_HOUR + HOUR, 2)]
    for c in COUNTER_FIELDS:  # the replayed POST's realm counts zeros; the duplicate is not counted
        assert hourly[0][c] == sum(counters(i)[c] for i in range(12)), c
        assert hourly[1][c] == sum(counters(i)[c] for i in (12, 13)), c
    assert hourly[0]["hour_iso"].endswith(":00:00Z")
    status, _, data = svc.api("/api/records?customer=acme&limit=100")
    assert status == 200
    recs = json.loads(data)
    assert len(recs) == 15 and set(ids) <= {r["metering_id"] for r in recs}
    return m, ids


def test_submissions_sqlite(service):
    svc = service()
    m, ids = _flow(svc)
    # the service directory and the API token are private
    assert stat.S_IMODE(os.stat(svc.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(svc.dir / "api-token").st_mode) == 0o600
    assert len(svc.token) == 64
    log = svc.log()
    assert "Metering service listening on http://127.0.0.1:%d/submit (storage: sqlite:%s)" % (
        svc.port, svc.dir / "metering.sqlite") in log
    assert ids[0] in log
    assert svc.stop() == 0
    assert "Traceback" not in svc.log()


def test_submissions_postgresql(service, pg_url):
    svc = service(dsn=pg_url)
    _flow(svc)
    assert "(storage: postgresql://127.0.0.1:" in svc.log()
    assert svc.stop() == 0


def test_refusals(service):
    svc = service(max_skew=60)
    m, stranger, revoked = Master(), Master(), Master()
    _register(svc, m, revoke=[revoked])
    rec = m.record(mrealm(), BASE_HOUR)
    good = m.sign(rec)

    def refused(body, status, reason, content_type="application/json"):
        got, doc = svc.post(body, content_type)
        assert (got, doc.get("error")) == (status, reason), doc
        assert isinstance(doc["message"], str) and "\n" not in doc["message"]

    signed = json.loads(good)
    refused(json.dumps({"signed": signed["signed"]}).encode(), 401, "unsigned")
    # one digit of a counter changed after signing
    tampered = good.replace(b'"count":0', b'"count":1')
    assert tampered != good
    refused(tampered, 401, "bad_signature")
    # signed by another key than the one it names
    other = json.loads(stranger.sign(stranger.record(mrealm(), BASE_HOUR)))
    refused(json.dumps({"signed": signed["signed"], "signature": other["signature"]}).encode(), 401, "bad_signature")
    refused(stranger.sign(stranger.record(mrealm(), BASE_HOUR)), 403, "unknown_key")
    refused(revoked.sign(revoked.record(mrealm(), BASE_HOUR)), 403, "unknown_key")
    refused(m.sign(rec, sent=time.time_ns() - 120 * 10**9), 401, "stale")
    refused(m.sign(rec, sent=time.time_ns() + 120 * 10**9), 401, "stale")
    refused(b'{"signed": ', 400, "malformed")
    refused(b"[]", 400, "malformed")
    refused(good.replace(b'"seq":1', b'"seq":1.0'), 400, "malformed")
    refused(good.replace(b'"seq":1', b'"seq":1e0'), 400, "malformed")
    refused(good[:-1] + b',"signature":"' + b"0" * 128 + b'"}', 400, "malformed")  # duplicate key
    refused(good, 415, "unsupported_media_type", content_type="text/plain")
    refused(b" " * (MAX_SUBMISSION_BYTES + 1), 413, "too_large")
    # nothing of the above was stored; the good one still goes through
    assert svc.post(good)[0] == 200
    assert len(json.loads(svc.api("/api/records")[2])) == 1

    status, headers, data = svc.request("GET", "/submit")
    assert (status, json.loads(data)["error"]) == (405, "method_not_allowed") and "POST" in headers["allow"]
    status, _, data = svc.request("GET", "/nothing")
    assert (status, json.loads(data)["error"]) == (404, "not_found")
    assert svc.alive()
    log = svc.log()
    assert "refused a submission" in log and "Traceback" not in log


def test_oversized_bodies(service):
    """413 for a Content-Length over the limit before the body is read (a huge one with a small
    body too) and for a chunked body that grows over it; the service keeps serving."""
    svc = service()
    head = (b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    t0 = time.monotonic()
    out = svc.raw(head + b"Content-Length: 1000000000000\r\n\r\n{}", read_all=True)
    assert status_of(out) == 413 and b'"too_large"' in out
    assert time.monotonic() - t0 < 5  # answered and closed without waiting for the body
    out = svc.raw(head + b"Content-Length: %d\r\n\r\n" % (MAX_SUBMISSION_BYTES + 1) + b"x" * 100)
    assert status_of(out) == 413
    chunk = b"x" * 4096
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 6 + b"0\r\n\r\n"
    out = svc.raw(chunked)
    assert status_of(out) == 413 and b'"too_large"' in out
    # a small chunked submission is read like any other (and refused for its content here)
    small = b"[]"
    out = svc.raw(head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + b"2\r\n" + small + b"\r\n0\r\n\r\n")
    assert status_of(out) == 400
    assert svc.alive()


def test_read_api(service):
    svc = service()
    a, b = Master(), Master()
    _register(svc, a, customer="acme")
    _register(svc, b, customer='Beta, "Inc"')
    for i in range(3):
        assert svc.post(a.sign(a.record(mrealm(), BASE_HOUR + i * PERIOD, **counters(i))))[0] == 200
    assert svc.post(b.sign(b.record(mrealm(), BASE_HOUR + HOUR, **counters(5))))[0] == 200

    for path in ("/api/records", "/api/hourly", "/api/hourly.csv"):
        for token in (None, "wrong", svc.token[:-1] + ("0" if svc.token[-1] != "0" else "1"), ""):
            status, headers, data = svc.api(path, token=token)
            assert status == 401, (path, token)
            assert json.loads(data)["error"] == "unauthorized"
            assert headers["www-authenticate"].startswith("Bearer")
        status, _, data = svc.request("GET", path, headers={"Authorization": f"Basic {svc.token}"})
        assert status == 401
    # /health answers without the token and tells nothing else
    status, _, data = svc.request("GET", "/health")
    assert (status, json.loads(data)) == (200, {"status": "ok"})

    status, headers, data = svc.api("/api/hourly.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert list(rows[0]) == ["customer", "pubkey", "hour", "records", *COUNTER_FIELDS]
    assert [(r["customer"], r["pubkey"], r["records"]) for r in rows] == [("acme", a.pub, "3"),
                                                                         ('Beta, "Inc"', b.pub, "1")]
    assert rows[0]["hour"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE_HOUR // 10**9))
    assert int(rows[0]["sessions"]) == sum(counters(i)["sessions"] for i in range(3))

    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((BASE_HOUR + HOUR) // 10**9))
    status, _, data = svc.api(f"/api/records?from={iso}")
    assert [r["pubkey"] for r in json.loads(data)] == [b.pub]
    status, _, data = svc.api(f"/api/records?until={BASE_HOUR + PERIOD}")
    assert len(json.loads(data)) == 1
    status, _, data = svc.api("/api/hourly?customer=acme")
    assert [h["records"] for h in json.loads(data)] == [3]
    for bad in ("from=yesterday", "limit=0", "limit=x", "frm=1"):
        status, _, data = svc.api(f"/api/records?{bad}")
        assert (status, json.loads(data)["error"]) == (400, "bad_request"), bad


def test_sigkill_after_accept(service, tmp_path):
    """The service killed with SIGKILL right after answering 200: the record is there after a
    restart (SQLite, WAL, synchronous=FULL), and a retry of it is a duplicate."""
    svc = service()
    m = Master()
    _register(svc, m)
    rec = m.record(mrealm(), BASE_HOUR, **counters(7))
    status, doc = svc.post(m.sign(rec))
    assert status == 200
    svc.kill()
    assert svc.proc.returncode == -9
    svc.start()
    assert svc.post(m.sign(rec)) == (200, {"metering_id": doc["metering_id"], "duplicate": True})
    recs = json.loads(svc.api("/api/records")[2])
    assert [r["metering_id"] for r in recs] == [doc["metering_id"]] and recs[0]["record"] == rec
    assert json.loads(svc.api("/api/hourly")[2])[0]["records"] == 1


def test_stored_record_verifies(service):
    """What the read API gives is enough to check the master's signature again."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from wampfabric.protocol.metering import USAGE_TYPE, USAGE_VERSION, canonical

    svc = service()
    m = Master()
    _register(svc, m)
    assert svc.post(m.sign(m.record(mrealm(), BASE_HOUR, **counters(3))))[0] == 200
    r = json.loads(svc.api("/api/records")[2])[0]
    signed = {"type": USAGE_TYPE, "version": USAGE_VERSION, "pubkey": r["pubkey"], "nonce": r["nonce"],
              "sent": r["sent"], "record": r["record"]}
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(r["pubkey"])).verify(bytes.fromhex(r["signature"]),
                                                                           canonical(signed))
