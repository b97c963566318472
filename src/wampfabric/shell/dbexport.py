"""``export database DBPATH``: a wampfabric (LMDB) database exported to a JSON file, read-only and
beside a running master, as Crossbar.io's shell offers it.

The output is ``{"database": <path>, "tables": {<table>: [{"key": <hex>, "value": <JSON>}, ...]}}``.
The stored values are CBOR and become JSON: UUIDs as strings, bytes as hex. The keys are the
encoded keys in hex, because this export knows no schema. `wampfabric master db export TABLE`
decodes the master's keys by its schema. Indexes (``<table>/<index>``) are left out unless asked
for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cbor2

from ..db import Database, DatabaseError, to_json
from .context import ShellError


def export_database(dbpath: str, filename: str | None = None, tables: list[str] | None = None,
                    include_indexes: bool = False) -> dict:
    """Write the export; returns ``{"filename", "tables": {name: records}}``."""
    path = Path(dbpath).expanduser()
    if not (path / "data.mdb").is_file():
        raise ShellError(f"no database at {path} (a directory with data.mdb, e.g. <master>/.db-controller)")
    out_path = Path(filename or f"{path.name.lstrip('.') or 'database'}.json").expanduser()
    try:
        db = Database(path, 1, readonly=True)
    except DatabaseError as e:
        raise ShellError(str(e)) from None
    counts: dict[str, int] = {}
    try:
        names = [n for n in db.table_names() if include_indexes or "/" not in n]
        if tables:
            unknown = sorted(set(tables) - set(names))
            if unknown:
                raise ShellError(f"no table(s) {', '.join(unknown)} in {path} (tables: {', '.join(names)})")
            names = [n for n in names if n in tables]
        env = db.env
        tmp = out_path.with_name(out_path.name + ".tmp")
        with open(tmp, "w") as f, env.begin() as txn:
            f.write('{"database": %s, "tables": {' % json.dumps(str(path)))
            for i, name in enumerate(names):
                try:
                    dbi = env.open_db(name.encode(), txn=txn, create=False)
                except Exception:  # noqa: BLE001 - a key of LMDB's main database, not a table
                    continue
                f.write(("," if i else "") + json.dumps(name) + ": [")
                n = 0
                for k, v in txn.cursor(db=dbi):
                    try:
                        value = to_json(cbor2.loads(v))
                    except (cbor2.CBORDecodeError, ValueError, TypeError):
                        value = {"raw": bytes(v).hex()}
                    f.write(("," if n else "") + json.dumps({"key": bytes(k).hex(), "value": value}))
                    n += 1
                f.write("]")
                counts[name] = n
            f.write("}}\n")
        os.replace(tmp, out_path)
    except OSError as e:
        raise ShellError(f"cannot write {out_path}: {e.strerror}") from None
    finally:
        db.close()
    return {"filename": str(out_path), "tables": counts}
