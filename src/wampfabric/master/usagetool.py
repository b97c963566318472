"""``wampfabric master usage``: the usage metering records of a master (the global table
``usage``, master/metering.py), read-only beside the running master.

By management realm (``--mrealm`` name or oid) and period (``--from`` / ``--until``: the interval
ends in ``[from, until)``; ISO 8601 UTC times, dates, or integer nanoseconds), as a table or as
JSON lines (``--output json``: one record per line, every field, UUIDs as strings, ``pubkey`` hex).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import click

from ..protocol.metering import MSG_TYPES
from .dbtool import _cbdir, _global, _mrealm_names
from .metering import usage_api
from .schema import MasterNodeUsage
from .store import MasterStore

STATUS_NAMES = {MasterNodeUsage.RECEIVED: "local", MasterNodeUsage.SUBMITTED: "submitted",
                MasterNodeUsage.FAILED: "refused"}


def parse_time(value: str | None, what: str) -> int | None:
    """ns since the epoch of an ISO 8601 time (UTC unless it says otherwise), a date, or an int."""
    if value is None:
        return None
    v = value.strip()
    if v.isdigit():
        return int(v)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"'{value}': expected an ISO 8601 time (2026-12-05T10:00:00Z), a date "
                                 f"(2026-12-05) or nanoseconds since the epoch", param_hint=what) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def _utc(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.option("--cbdir", default=None, help="Master node directory (default: $CROSSBAR_DIR or ./.crossbar).")
@click.option("--mrealm", default=None, help="Only this management realm (name or oid).")
@click.option("--from", "from_", default=None, help="Intervals ending at or after this (ISO 8601 UTC, date, ns).")
@click.option("--until", default=None, help="Intervals ending before this (ISO 8601 UTC, date, ns).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many records.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="A table, or JSON lines (one record per line, every field).")
def usage(cbdir, mrealm, from_, until, limit, output):
    """Usage metering records: one per management realm per interval (default 5 minutes)."""
    cb = _cbdir(cbdir)
    from_ns, until_ns = parse_time(from_, "--from"), parse_time(until, "--until")
    opened = _global(cb)
    if opened is None:
        raise click.ClickException(f"{cb} has no master database (.db-controller): run `wampfabric master start` "
                                   f"once")
    gdb, gs = opened
    try:
        names = _mrealm_names(gdb, gs)
        oid = None
        if mrealm is not None:
            by_name = {n: o for o, n in names.items()}
            try:
                oid = uuid.UUID(mrealm)
            except ValueError:
                oid = by_name.get(mrealm)
                if oid is None:
                    raise click.ClickException(f"no management realm '{mrealm}' (known: "
                                               f"{', '.join(sorted(by_name)) or 'none'})") from None
        records = MasterStore(gdb).usage(oid, from_ns, until_ns, limit)
        if output == "json":
            for rec in records:
                out = usage_api(rec)
                out["mrealm"] = names.get(rec.mrealm_id)
                click.echo(json.dumps(out, sort_keys=True))
            return
        if not records:
            click.echo("no usage records" + (" in that period" if from_ns or until_ns else ""))
            return
        head = ("interval (UTC)", "mrealm", "nodes", "routers", "containers", "guests", "sessions", "messages",
                "status", "metering_id")
        rows = []
        for rec in records:
            msgs = sum(getattr(rec, f"msgs_{m}") or 0 for m in MSG_TYPES)
            rows.append((f"{_utc(rec.timestamp_from)} .. {_utc(rec.timestamp)[11:]}",
                         names.get(rec.mrealm_id, str(rec.mrealm_id)), str(rec.nodes or 0), str(rec.routers or 0),
                         str(rec.containers or 0), str(rec.guests or 0), str(rec.sessions or 0), str(msgs),
                         STATUS_NAMES.get(rec.status, str(rec.status)), str(rec.metering_id or "-")))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        numeric = {2, 3, 4, 5, 6, 7}
        for row in (head, *rows):
            click.echo("  ".join(c.rjust(w) if i in numeric and row is not head else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        click.echo(f"{len(rows)} record(s); nodes, routers, containers, guests and sessions in seconds")
    finally:
        gdb.close()
