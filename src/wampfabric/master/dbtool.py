"""``wampfabric master db``: look into the master's databases, read-only, beside a running master.

``stats``: per database its path, used bytes, maxsize, free space, and per table the entries and
bytes.  ``export TABLE``: a table as JSON lines, one ``{"key": ..., "value": ...}`` per record
(UUIDs as strings, bytes as hex, timestamps as integer nanoseconds).  Both open the databases
read-only (LMDB readers do not block the master's writer, nor does it block them).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import click

from ..db import Database, DatabaseError, to_json
from .schema import (GLOBAL_DB, GlobalSchema, MrealmSchema, find_mrealm_dbs, global_db_path,
                     mrealm_db_path)

GLOBAL_TABLES = ("users", "mrealms", "users_mrealm_roles", "nodes", "activation_tokens", "usage")
MREALM_TABLES = ("mnode_logs", "mworker_logs")


def _cbdir(value: str | None) -> Path:
    cb = Path(value or os.environ.get("CROSSBAR_DIR") or ".crossbar").resolve()
    if not cb.is_dir():
        what = "is not a directory" if cb.exists() else "does not exist"
        raise click.ClickException(f"master node directory {cb} {what}")
    return cb


def _open(path: Path) -> Database:
    # maxsize is ignored read-only (the writer's maxsize applies); any positive value will do
    return Database(path, 1, readonly=True)


def _global(cb: Path) -> tuple[Database, GlobalSchema] | None:
    if not (global_db_path(cb) / "data.mdb").is_file():
        return None
    db = _open(global_db_path(cb))
    return db, GlobalSchema.attach(db)


def _mrealm_names(gdb: Database, gs: GlobalSchema) -> dict[uuid.UUID, str]:
    with gdb.begin() as txn:
        return {oid: m.name for oid, m in gs.mrealms.select(txn, return_keys=True)}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _print_stats(title: str, stats: dict) -> None:
    click.echo(f"{title}: {stats['path']}")
    click.echo(f"  used {_size(stats['used'])} of {_size(stats['maxsize'])} ({stats['free_pct']:.2f}% free)")
    tables = stats["tables"]
    if not tables:
        click.echo("  (no tables)")
        return
    width = max(len(n) for n in tables)
    click.echo(f"  {'table'.ljust(width)}  {'entries':>10}  {'bytes':>12}")
    for name in sorted(tables):
        t = tables[name]
        click.echo(f"  {name.ljust(width)}  {t['entries']:>10}  {t['bytes']:>12}")


cbdir_option = click.option("--cbdir", default=None,
                            help="Master node directory (default: $CROSSBAR_DIR or ./.crossbar).")


@click.group("db")
@cbdir_option
@click.pass_context
def db(ctx, cbdir):
    """Look into the master's databases (read-only; works while the master runs)."""
    ctx.obj = {"cbdir": cbdir}


def _cbdir_of(ctx, cbdir: str | None) -> Path:
    return _cbdir(cbdir or (ctx.obj or {}).get("cbdir"))


@db.command()
@cbdir_option
@click.pass_context
def stats(ctx, cbdir):
    """Per database: path, used, maxsize, free %, and entries and bytes per table."""
    cb = _cbdir_of(ctx, cbdir)
    try:
        with ExitStack() as stack:
            g = _global(cb)
            mrealms = find_mrealm_dbs(cb)
            if g is None and not mrealms:
                raise click.ClickException(f"no master database in {cb} ({GLOBAL_DB} not found)")
            names = {}
            if g is not None:
                gdb, gs = g
                stack.callback(gdb.close)
                _print_stats("global database", gdb.stats())
                names = _mrealm_names(gdb, gs)
            for oid, path in mrealms:
                mdb = _open(path)
                stack.callback(mdb.close)
                name = names.get(oid)
                title = f"mrealm {name!r} ({oid})" if name else f"mrealm {oid} (not in the global database)"
                _print_stats(title, mdb.stats())
    except DatabaseError as e:
        raise click.ClickException(str(e)) from None


def _resolve_mrealm(cb: Path, spec: str) -> uuid.UUID:
    try:
        return uuid.UUID(spec)
    except ValueError:
        pass
    g = _global(cb)
    if g is None:
        raise click.ClickException(f"unknown mrealm {spec!r}: no global database in {cb} to look names up")
    gdb, gs = g
    try:
        with gdb.begin() as txn:
            oid = gs.idx_mrealms_by_name.get(txn, spec)
    finally:
        gdb.close()
    if oid is None:
        raise click.ClickException(f"unknown mrealm {spec!r}")
    return oid


@db.command()
@click.argument("table")
@click.option("--mrealm", default=None, help="The mrealm (name or oid) of a per-mrealm table.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Write to this file (created mode 0600) instead of standard output.")
@cbdir_option
@click.pass_context
def export(ctx, table, mrealm, output, cbdir):
    """Export TABLE as JSON lines: {"key": ..., "value": ...} per record.

    Global tables: users, mrealms, users_mrealm_roles, nodes, activation_tokens, usage.
    Per mrealm (with --mrealm): mnode_logs, mworker_logs.
    """
    cb = _cbdir_of(ctx, cbdir)
    if table in GLOBAL_TABLES:
        if mrealm is not None:
            raise click.ClickException(f"table {table!r} is in the global database: --mrealm does not apply")
        path = global_db_path(cb)
        schema_cls = GlobalSchema
    elif table in MREALM_TABLES:
        if mrealm is None:
            raise click.ClickException(f"table {table!r} is kept per mrealm: give --mrealm NAME|OID")
        path = mrealm_db_path(cb, _resolve_mrealm(cb, mrealm))
        schema_cls = MrealmSchema
    else:
        raise click.ClickException(f"no such table {table!r} (tables: {', '.join(GLOBAL_TABLES + MREALM_TABLES)})")
    if not (path / "data.mdb").is_file():
        which = f"no database for mrealm {mrealm!r}" if table in MREALM_TABLES else "no global database"
        raise click.ClickException(f"{which} at {path}")
    try:
        database = _open(path)
    except DatabaseError as e:
        raise click.ClickException(str(e)) from None
    try:
        schema = schema_cls.attach(database)
        tbl = getattr(schema, table)
        with ExitStack() as stack:
            if output:
                try:
                    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                except OSError as e:
                    raise click.ClickException(f"cannot write {output}: {e.strerror}") from None
                out = stack.enter_context(open(fd, "w", encoding="utf-8"))
            else:
                out = sys.stdout
            n = 0
            with database.begin() as txn:
                for key, value in tbl.select(txn, return_keys=True):
                    # ASCII (\u escapes): the output is valid JSON whatever the terminal's encoding
                    line = json.dumps({"key": tbl.key.to_json(key), "value": to_json(value)},
                                      separators=(",", ":"))
                    out.write(line + "\n")
                    n += 1
            out.flush()
        if output:
            click.echo(f"{n} records of {table} written to {output}", err=True)
    except BrokenPipeError:
        # the reader (| head) went away: not an error; keep Python from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except DatabaseError as e:
        raise click.ClickException(str(e)) from None
    finally:
        database.close()
