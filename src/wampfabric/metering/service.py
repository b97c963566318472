"""The metering service's HTTP side (aiohttp.web): masters POST signed usage records to
``/submit``; the customers' usage is read, with the API token, from ``/api/...``.

``POST /submit`` (wampfabric.protocol.metering is the wire contract):

- a body over MAX_SUBMISSION_BYTES: 413 ``too_large`` (a ``Content-Length`` over the limit is
  refused before any of the body is read; the connection is closed);
- a Content-Type other than ``application/json``: 415 ``unsupported_media_type``;
- ``verify_submission`` refuses: 400 ``malformed``, 401 ``unsigned`` / ``bad_signature``;
- a key that is not registered or revoked: 403 ``unknown_key``;
- ``sent`` further than ``max_skew`` seconds from the service's clock: 401 ``stale``;
- a nonce seen before: 409 ``replayed``;
- a record held under the same (pubkey, mrealm_id, timestamp) with the same digest: 200 with the
  stored ``metering_id`` and ``duplicate: true``; with another digest: 409 ``conflict``;
- else the record, its hourly sums and the nonce are stored in one transaction: 200
  ``{"metering_id": <new uuid4>, "duplicate": false}``.

Every error answer is ``{"error": "<reason>", "message": "<one line>"}``.  The read API
(``/api/records``, ``/api/hourly``, ``/api/hourly.csv``) needs ``Authorization: Bearer <token>``
(the token file ``api-token`` in the service directory); ``GET /health`` needs nothing and tells
nothing but ``{"status": "ok"}``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import hmac
import io
import json
import logging
import os
import secrets
import time
from pathlib import Path

from aiohttp import web

from ..common.logs import RateLimitedLog
from ..protocol.metering import (COUNTER_FIELDS, MAX_SUBMISSION_BYTES, MeteringError, receipt, record_digest,
                                 verify_submission)
from .store import DEFAULT_LIMIT, MAX_LIMIT, AsyncStore

__all__ = ["TOKEN_FILE", "ensure_token", "make_app", "parse_time", "iso_ns", "STATUS", "DEFAULT_MAX_SKEW"]

log = logging.getLogger("wampfabric.metering")

TOKEN_FILE = "api-token"
DEFAULT_MAX_SKEW = 900
#: how long a client may take to send a submission's body
BODY_TIMEOUT = 10.0
#: how often seen nonces older than the skew window are purged
PURGE_INTERVAL = 60.0

#: reason -> HTTP status
STATUS = {"malformed": 400, "unsigned": 401, "bad_signature": 401, "stale": 401, "unauthorized": 401,
          "unknown_key": 403, "not_found": 404, "method_not_allowed": 405, "timeout": 408, "replayed": 409,
          "conflict": 409, "too_large": 413, "unsupported_media_type": 415, "bad_request": 400, "internal": 500}

_HTTP_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "timeout", 413: "too_large",
                 415: "unsupported_media_type"}


def ensure_token(directory: Path) -> str:
    """The read API's token: ``<directory>/api-token``, created (mode 0600, 32 random bytes as
    hex) if it is not there."""
    path = directory / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if len(token) < 32:
            raise ValueError(f"{path}: the API token must be at least 32 characters") from None
        return token
    token = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def parse_time(value: str) -> int:
    """ns since the epoch from an integer (ns) or an ISO 8601 date / date-time (UTC unless it
    names an offset); ValueError otherwise."""
    v = value.strip()
    if v.isdigit():
        return int(v)
    try:
        dt = datetime.datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither ns since the epoch nor an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    delta = dt - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def iso_ns(ns: int) -> str:
    """ns since the epoch as ISO 8601 UTC (seconds precision unless there is a fraction)."""
    s, frac = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return text + (f".{frac:09d}Z" if frac else "Z")


def _error(reason: str, message: str, status: int | None = None, close: bool = False) -> web.Response:
    resp = web.json_response({"error": reason, "message": message.splitlines()[0] if message else reason},
                             status=status or STATUS.get(reason, 400))
    if reason == "unauthorized":
        resp.headers["WWW-Authenticate"] = 'Bearer realm="wampfabric-metering"'
    if close:
        resp.force_close()
    return resp


@web.middleware
async def _errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        reason = _HTTP_REASONS.get(e.status, "bad_request" if e.status < 500 else "internal")
        resp = _error(reason, e.reason or reason, e.status)
        if "Allow" in e.headers:
            resp.headers["Allow"] = e.headers["Allow"]
        return resp
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("Metering service: %s %s failed", request.method, request.path)
        return _error("internal", "internal error (see the service's log)", 500)


class MeteringService:
    """The handlers and their state: the store, the allowed clock skew, the API token."""

    def __init__(self, store: AsyncStore, token: str, max_skew: float = DEFAULT_MAX_SKEW):
        self.store = store
        self.token = token.encode()
        self.max_skew_ns = int(max_skew * 10**9)
        self.refusals = RateLimitedLog(log)
        self._purger: asyncio.Task | None = None

    # -- submissions -------------------------------------------------------------------------
    def _refuse(self, request: web.Request, reason: str, message: str, close: bool = False) -> web.Response:
        self.refusals.warning("Metering service: refused a submission from %s: %s (%s)", request.remote, reason,
                              message)
        return _error(reason, message, close=close)

    async def submit(self, request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > MAX_SUBMISSION_BYTES:
            return self._refuse(request, "too_large",
                                f"submission of {length} bytes: the limit is {MAX_SUBMISSION_BYTES}", close=True)
        if request.content_type != "application/json":
            return self._refuse(request, "unsupported_media_type",
                                f"Content-Type must be application/json, not {request.content_type!r}", close=True)
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                while True:
                    chunk = await request.content.read(MAX_SUBMISSION_BYTES + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > MAX_SUBMISSION_BYTES:
                        return self._refuse(request, "too_large",
                                            f"submission over {MAX_SUBMISSION_BYTES} bytes", close=True)
        except TimeoutError:
            return self._refuse(request, "timeout", f"the body did not arrive within {BODY_TIMEOUT:g} s", close=True)
        try:
            sub = verify_submission(bytes(body))
        except MeteringError as e:
            return self._refuse(request, e.reason, str(e))
        now = time.time_ns()
        outcome, mid = await self.store.submit(sub, record_digest(sub.record), now, self.max_skew_ns)
        rec = sub.record
        if outcome in ("accepted", "duplicate"):
            log.info("Metering service: %s record metering_id=%s pubkey=%s.. mrealm_id=%s interval=%s..%s",
                     outcome, mid, sub.pubkey[:16], rec["mrealm_id"], iso_ns(rec["timestamp_from"]),
                     iso_ns(rec["timestamp"]))
            return web.Response(body=receipt(mid, outcome == "duplicate"), content_type="application/json")
        if outcome == "unknown_key":
            return self._refuse(request, "unknown_key", f"key {sub.pubkey} is not registered")
        if outcome == "revoked":
            return self._refuse(request, "unknown_key", f"key {sub.pubkey} is revoked")
        if outcome == "stale":
            skew = (sub.sent - now) / 1e9
            return self._refuse(request, "stale", f"sent {skew:+.0f} s from the service's clock "
                                                  f"(at most {self.max_skew_ns / 1e9:g} s allowed)")
        if outcome == "replayed":
            return self._refuse(request, "replayed", "this submission (its nonce) was received before")
        if outcome == "conflict":
            return self._refuse(request, "conflict",
                                f"a different record is held for mrealm {rec['mrealm_id']} at {rec['timestamp']}")
        raise RuntimeError(f"unknown store outcome {outcome!r}")

    # -- the read API ------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.token)

    def _query(self, request: web.Request) -> dict:
        q = request.query
        unknown = sorted(set(q) - {"customer", "pubkey", "from", "until", "limit"})
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}")
        kw = {"customer": q.get("customer"), "pubkey": q.get("pubkey")}
        if kw["pubkey"] is not None:
            kw["pubkey"] = kw["pubkey"].lower()
        for name, key in (("from", "from_ns"), ("until", "until_ns")):
            kw[key] = parse_time(q[name]) if name in q else None
        limit = q.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
        kw["limit"] = int(limit)
        return kw

    async def _read(self, request: web.Request, what: str):
        if not self._authorized(request):
            return None, _error("unauthorized", "a valid 'Authorization: Bearer <token>' is required")
        try:
            kw = self._query(request)
        except ValueError as e:
            return None, _error("bad_request", str(e))
        return await getattr(self.store, what)(**kw), None

    async def api_records(self, request: web.Request) -> web.Response:
        rows, err = await self._read(request, "records")
        return err or web.json_response(rows)

    async def api_hourly(self, request: web.Request) -> web.Response:
        rows, err = await self._read(request, "hourly")
        if err:
            return err
        for r in rows:
            r["hour_iso"] = iso_ns(r["hour"])
        return web.json_response(rows)

    async def api_hourly_csv(self, request: web.Request) -> web.Response:
        rows, err = await self._read(request, "hourly")
        if err:
            return err
        return web.Response(text=hourly_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="metering-hourly.csv"'})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # -- housekeeping ------------------------------------------------------------------------
    async def _purge_loop(self) -> None:
        while True:
            try:
                n = await self.store.purge_nonces(time.time_ns() - self.max_skew_ns)
                if n:
                    log.debug("Metering service: forgot %d nonces older than the skew window", n)
            except Exception:  # noqa: BLE001 - keep purging later
                log.exception("Metering service: purging old nonces failed")
            await asyncio.sleep(PURGE_INTERVAL)

    async def on_startup(self, app) -> None:
        self._purger = asyncio.create_task(self._purge_loop())

    async def on_cleanup(self, app) -> None:
        if self._purger:
            self._purger.cancel()
            try:
                await self._purger
            except asyncio.CancelledError:
                pass


HOURLY_CSV_COLUMNS = ("customer", "pubkey", "hour", "records", *COUNTER_FIELDS)


def hourly_csv(rows: list[dict]) -> str:
    """The hourly rows as CSV with a header line; ``hour`` as ISO 8601 UTC."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HOURLY_CSV_COLUMNS)
    for r in rows:
        w.writerow([r["customer"] or "", r["pubkey"], iso_ns(r["hour"]), r["records"],
                    *(r[c] for c in COUNTER_FIELDS)])
    return out.getvalue()


def make_app(store: AsyncStore, token: str, max_skew: float = DEFAULT_MAX_SKEW) -> web.Application:
    svc = MeteringService(store, token, max_skew)
    # the body of /submit is read by the handler, bounded; nothing else takes a body
    app = web.Application(middlewares=[_errors_as_json], client_max_size=MAX_SUBMISSION_BYTES)
    app.router.add_post("/submit", svc.submit)
    app.router.add_get("/api/records", svc.api_records)
    app.router.add_get("/api/hourly", svc.api_hourly)
    app.router.add_get("/api/hourly.csv", svc.api_hourly_csv)
    app.router.add_get("/health", svc.health)
    app.on_startup.append(svc.on_startup)
    app.on_cleanup.append(svc.on_cleanup)
    app["service"] = svc
    return app
