"""``wampfabric metering-service ...``: run the metering service and manage what it holds.

- ``serve [--dir DIR] [--dsn DSN] [--host H] [--port P] [--max-skew S]``: the HTTP service;
- ``key add PUBKEY --customer NAME``, ``key list``, ``key revoke PUBKEY``: the master keys whose
  submissions are accepted (PUBKEY: 64 hex, or a Crossbar.io key file such as a master's
  ``.crossbar/key.pub``);
- ``records [--customer|--pubkey] [--from] [--until] [--hourly] [--output table|json|csv]``.

Storage: SQLite in ``DIR/metering.sqlite`` unless ``--dsn postgresql://...`` (or the environment
variable WAMPFABRIC_METERING_DSN) names a PostgreSQL database.  ``DIR`` (default
``./.metering-service``, mode 0700) also holds the read API's token ``api-token``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import click

from ..common.logs import setup_logging
from ..common.timefmt import utcstr
from ..protocol.metering import COUNTER_FIELDS
from .store import DEFAULT_LIMIT, MAX_LIMIT, StoreError, describe_target, is_postgres, open_store

DEFAULT_DIR = ".metering-service"
DSN_ENV = "WAMPFABRIC_METERING_DSN"
SQLITE_NAME = "metering.sqlite"

log = logging.getLogger("wampfabric.metering")


def _directory(value: str | None) -> Path:
    d = Path(value or DEFAULT_DIR).resolve()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f"cannot create the service directory {d}: {e.strerror or e}")
    if not d.is_dir():
        raise click.ClickException(f"{d} is not a directory")
    return d


def _target(directory: Path, dsn: str | None) -> str:
    if dsn:
        if not is_postgres(dsn):
            raise click.ClickException(f"--dsn must be a PostgreSQL URL (postgresql://...), not {dsn.split(':')[0]!r}")
        return dsn
    return str(directory / SQLITE_NAME)


def _open(dir_: str | None, dsn: str | None):
    try:
        return open_store(_target(_directory(dir_), dsn))
    except StoreError as e:
        raise click.ClickException(str(e))


def _using(dir_: str | None, dsn: str | None, fn):
    """``fn(store)`` on the store of ``--dir``/``--dsn``, closed after; errors as one line."""
    store = _open(dir_, dsn)
    try:
        return fn(store)
    except click.ClickException:
        raise
    except Exception as e:  # noqa: BLE001 - sqlite3.Error, psycopg.Error: one line, no traceback
        text = (str(e).strip() or type(e).__name__).splitlines()[0]
        raise click.ClickException(f"{store.describe()}: {text}") from None
    finally:
        store.close()


def read_pubkey(value: str) -> str:
    """64 hex digits, or the ``public-key-ed25519`` of a Crossbar.io key file; ValueError otherwise."""
    v = value.strip()
    if len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v):
        return v.lower()
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{value!r} is neither a public key (64 hex digits) nor a key file")
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    for line in text.splitlines():
        tag, sep, rest = line.partition(":")
        if sep and tag.strip().lower() == "public-key-ed25519":
            key = rest.strip()
            if len(key) == 64 and all(c in "0123456789abcdefABCDEF" for c in key):
                return key.lower()
            raise ValueError(f"{path}: public-key-ed25519 is not 64 hex digits")
    raise ValueError(f"{path}: no 'public-key-ed25519: <hex>' line in the key file")


_dir_option = click.option("--dir", "dir_", metavar="DIR", default=None,
                           help=f"service directory (SQLite database, API token); default ./{DEFAULT_DIR}")
_dsn_option = click.option("--dsn", envvar=DSN_ENV, default=None, metavar="DSN",
                           help=f"PostgreSQL database (postgresql://...) instead of SQLite; env {DSN_ENV}")


@click.group("metering-service")
def metering_service():
    """Metering service: receives the usage records masters submit (signed) and stores them."""


@metering_service.command()
@_dir_option
@_dsn_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535), help="TCP port")
@click.option("--max-skew", default=900, show_default=True, type=click.FloatRange(1, 86400),
              help="seconds a submission's sent time may be off the service's clock")
@click.option("--loglevel", default="info", type=click.Choice(["debug", "info", "warn", "error"]), show_default=True)
def serve(dir_, dsn, host, port, max_skew, loglevel):
    """Run the HTTP service: POST /submit, GET /api/..., GET /health."""
    from .service import ensure_token, make_app
    from .store import AsyncStore

    directory = _directory(dir_)
    target = _target(directory, dsn)
    setup_logging(loglevel, kind="Metering")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        token = ensure_token(directory)
    except (OSError, ValueError) as e:
        raise click.ClickException(f"API token: {e}")
    try:
        store = AsyncStore(target)
    except StoreError as e:
        raise click.ClickException(str(e))
    try:
        _run(make_app(store, token, max_skew), host, port, store.description)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}")
    finally:
        store.close()


def _run(app, host: str, port: int, description: str) -> None:
    from aiohttp import web

    try:
        import uvloop

        runner_loop = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner_loop = asyncio.new_event_loop

    async def main():
        # lingering_time=0: a body refused unread (413, 415) is not drained: the connection closes
        runner = web.AppRunner(app, access_log=None, handle_signals=False, lingering_time=0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, backlog=1024)
            await site.start()
            shown = f"[{host}]" if ":" in host else host
            log.info("Metering service listening on http://%s:%d/submit (storage: %s)", shown, port, description)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            log.info("Metering service stopping")
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=runner_loop) as r:
        r.run(main())


@metering_service.group()
def key():
    """The master keys whose submissions the service accepts."""


@key.command("add")
@click.argument("pubkey")
@click.option("--customer", required=True, help="the customer the master's usage is billed to")
@_dir_option
@_dsn_option
def key_add(pubkey, customer, dir_, dsn):
    """Register a master's public key (64 hex, or its key.pub file) for CUSTOMER."""
    try:
        pub = read_pubkey(pubkey)
    except ValueError as e:
        raise click.ClickException(str(e))
    if not customer.strip():
        raise click.ClickException("--customer must not be empty")
    if not _using(dir_, dsn, lambda store: store.key_add(pub, customer)):
        raise click.ClickException(f"key {pub} is registered already (key list shows it)")
    click.echo(f"added key {pub} for customer {customer!r}")


@key.command("list")
@_dir_option
@_dsn_option
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def key_list(dir_, dsn, output):
    """The registered keys."""
    rows = _using(dir_, dsn, lambda store: store.key_list())
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = [[r["pubkey"], r["customer"], utcstr(r["added"] / 1e9),
              "revoked " + utcstr(r["revoked"] / 1e9) if r["revoked"] else "active"] for r in rows]
    _table(["pubkey", "customer", "added", "status"], table)


@key.command("revoke")
@click.argument("pubkey")
@_dir_option
@_dsn_option
def key_revoke(pubkey, dir_, dsn):
    """Revoke a key: its submissions are refused from now on (the records stay)."""
    try:
        pub = read_pubkey(pubkey)
    except ValueError as e:
        raise click.ClickException(str(e))
    if not _using(dir_, dsn, lambda store: store.key_revoke(pub)):
        raise click.ClickException(f"key {pub} is not registered or revoked already")
    click.echo(f"revoked key {pub}")


@metering_service.command()
@_dir_option
@_dsn_option
@click.option("--customer", default=None, help="only this customer's records")
@click.option("--pubkey", default=None, help="only this master key's records (64 hex or key file)")
@click.option("--from", "from_", default=None, metavar="TIME", help="from this time (ISO 8601 UTC or ns), inclusive")
@click.option("--until", default=None, metavar="TIME", help="until this time (ISO 8601 UTC or ns), exclusive")
@click.option("--hourly", is_flag=True, help="the hourly sums instead of the records")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def records(dir_, dsn, customer, pubkey, from_, until, hourly, limit, output):
    """The stored usage records (or their hourly sums)."""
    from .service import hourly_csv, iso_ns, parse_time

    try:
        pub = read_pubkey(pubkey) if pubkey else None
        from_ns = parse_time(from_) if from_ else None
        until_ns = parse_time(until) if until else None
    except ValueError as e:
        raise click.ClickException(str(e))
    kw = {"customer": customer, "pubkey": pub, "from_ns": from_ns, "until_ns": until_ns, "limit": limit}
    rows = _using(dir_, dsn, lambda store: store.hourly(**kw) if hourly else store.records(**kw))
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if hourly:
        if output == "csv":
            click.echo(hourly_csv(rows), nl=False)
            return
        _table(["customer", "pubkey", "hour", "records", *COUNTER_FIELDS[:3], "sessions"],
               [[r["customer"] or "", r["pubkey"][:16] + "..", iso_ns(r["hour"]), r["records"],
                 *(r[c] for c in COUNTER_FIELDS[:3]), r["sessions"]] for r in rows])
        return
    cols = ["metering_id", "customer", "pubkey", "mrealm_id", "timestamp_from", "timestamp", *COUNTER_FIELDS]
    flat = [[r["metering_id"], r["customer"] or "", r["pubkey"], r["mrealm_id"], iso_ns(r["timestamp_from"]),
             iso_ns(r["timestamp"]), *(r["record"][c] for c in COUNTER_FIELDS)] for r in rows]
    if output == "csv":
        import csv
        import sys

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows(flat)
        return
    _table(["metering_id", "customer", "mrealm_id", "from", "until", "count", "nodes", "sessions"],
           [[f[0], f[1], f[3], f[4], f[5], r["record"]["count"], r["record"]["nodes"], r["record"]["sessions"]]
            for f, r in zip(flat, rows)])


def _table(header: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, r in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
    if not rows:
        click.echo("(none)")


__all__ = ["metering_service", "read_pubkey", "describe_target", "DEFAULT_DIR", "DSN_ENV"]
