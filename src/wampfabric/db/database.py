"""Database (one LMDB environment directory) and Transaction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lmdb

from .errors import DatabaseError, DatabaseFull

__all__ = ["Database", "Transaction"]

# named sub-databases an environment can hold (tables and indexes)
MAX_TABLES = 64


def reserve_bytes(maxsize: int) -> int:
    """The space kept free for deletes: 1/32 of maxsize, at least 1 MiB, at most 1/8."""
    return min(maxsize // 8, max(maxsize // 32, 2**20))


class Database:
    """An LMDB environment directory (``data.mdb``, ``lock.mdb``) holding named sub-databases.

    ``maxsize`` is LMDB's map size: the most the data file may grow to.  A write transaction that
    does not fit raises :class:`DatabaseFull` and is aborted.  Deletes must stay possible in a
    full database, and LMDB copies every page it changes (a delete needs free pages too), so
    puts and inserts are refused already when the pages in use reach ``maxsize - reserve``
    (``reserve``: 1/32 of maxsize, at least 1 MiB, at most 1/8): the first write of a
    transaction checks it.  ``readonly=True`` opens an existing
    database for reading beside its writer (LMDB readers never block the writer or each other);
    the maxsize is then the one the writer set, whatever is passed.  ``sync=False`` skips the
    fsync at commit: a crashed *process* loses nothing committed, a crashed *machine* may lose the
    last transactions.

    The directory and its files are created private (0700 / 0600).  One process opens one path
    once (LMDB's rule): share the Database object.  A write transaction belongs to the thread
    that began it.
    """

    def __init__(self, path: str | os.PathLike, maxsize: int, readonly: bool = False, *,
                 sync: bool = True, max_tables: int = MAX_TABLES):
        self.path = Path(path)
        self.readonly = readonly
        if type(maxsize) is not int or maxsize <= 0:
            raise DatabaseError(f"database {self.path}: maxsize must be a positive int of bytes, not {maxsize!r}")
        if readonly and not (self.path / "data.mdb").is_file():
            raise DatabaseError(f"no database at {self.path}")
        if not readonly:
            try:
                self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as e:
                raise DatabaseError(f"cannot create database directory {self.path}: {e.strerror}") from None
        try:
            self._env = lmdb.open(
                str(self.path), map_size=0 if readonly else maxsize, readonly=readonly,
                max_dbs=max_tables, subdir=True, create=not readonly, sync=sync, mode=0o700,
                lock=True, readahead=False)
        except lmdb.Error as e:
            if "already open" in str(e):
                raise DatabaseError(f"database {self.path} is already open in this process "
                                    f"(share its Database object)") from None
            raise DatabaseError(f"cannot open database {self.path}: {e}") from None
        self.maxsize = self._env.info()["map_size"]
        self.reserve = reserve_bytes(self.maxsize)
        self.tables: dict[str, Any] = {}  # name -> wampfabric.db.table.Table
        self._handles: dict[str, Any] = {}  # name -> LMDB handle of every table and index (used_bytes)
        # read-only: tables and indexes whose sub-database had no handle yet (it did not exist, or
        # nothing had begun a transaction); see begin()
        self._unopened: list = []
        self._closed = False

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, maxsize={self.maxsize}, readonly={self.readonly})"

    @property
    def env(self) -> lmdb.Environment:
        """The lmdb.Environment (for what this class does not wrap)."""
        self._check_open()
        return self._env

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"database {self.path} is closed")

    def begin(self, write: bool = False) -> Transaction:
        """A transaction; as a context manager it commits on success and aborts on an exception."""
        self._check_open()
        if write and self.readonly:
            raise DatabaseError(f"database {self.path} is open read-only: no write transaction")
        if self._unopened:
            # LMDB: a handle opened inside a read transaction is gone when that transaction ends, and
            # one opened meanwhile in a transaction of its own is not valid in a transaction begun
            # before it; so a reader opens missing handles here, each in its own transaction, before
            # the new one begins (a sub-database still missing reads as empty in this snapshot)
            still = []
            for m in self._unopened:
                dbi = self._open_dbi(m.name)
                if dbi is None:
                    still.append(m)
                else:
                    m._dbi = dbi
            self._unopened = still
        try:
            return Transaction(self, self._env.begin(write=write), write)
        except lmdb.MapResizedError:
            # another process grew the map beyond ours: adopt its size and retry once
            self._env.set_mapsize(0)
            self.maxsize = self._env.info()["map_size"]
            return Transaction(self, self._env.begin(write=write), write)
        except lmdb.Error as e:
            raise DatabaseError(f"database {self.path}: cannot begin a transaction: {e}") from None

    def _open_dbi(self, name: str, txn: lmdb.Transaction | None = None, create: bool = False):
        """The LMDB handle of a named sub-database, or None if it does not exist (read-only)."""
        try:
            dbi = self._env.open_db(name.encode("utf-8"), txn=txn, create=create)
            if create:
                self._handles[name] = dbi
            return dbi
        except lmdb.NotFoundError:
            return None
        except lmdb.MapFullError:
            raise DatabaseFull(str(self.path), self.maxsize, name) from None
        except lmdb.Error as e:
            raise DatabaseError(f"database {self.path}: cannot open table '{name}': {e}") from None

    def used_bytes(self, txn: Transaction | None = None) -> int:
        """Bytes in the pages of the tables and indexes opened through this object (what deletes
        would free; LMDB reuses freed pages before it grows the file)."""
        if txn is None:
            with self.begin() as t:
                return self.used_bytes(t)
        t = txn._check()
        pages = 0
        for dbi in self._handles.values():
            s = t.stat(dbi)
            pages += s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"]
        return pages * self._env.stat()["psize"]

    def _check_space(self, txn: Transaction, table: str) -> None:
        """Refuse a put/insert when the pages in use leave less than the reserve (once per txn)."""
        txn._space_checked = True
        if self.used_bytes(txn) >= self.maxsize - self.reserve:
            txn._fail("database full")
            raise DatabaseFull(str(self.path), self.maxsize, table)

    def _register(self, table) -> None:
        if table.name in self.tables:
            raise DatabaseError(f"database {self.path} already has a table '{table.name}'")
        self.tables[table.name] = table

    def table_names(self) -> list[str]:
        """Names of the sub-databases in the file (whether or not a Table object was made)."""
        self._check_open()
        with self._env.begin() as txn:
            return [bytes(k).decode("utf-8", "replace") for k in txn.cursor().iternext(values=False)]

    def stats(self) -> dict[str, Any]:
        """Used bytes, maxsize, free percentage, and per sub-database entries, pages and bytes.

        ``used``: the pages of all sub-databases (and LMDB's main database), what the data holds;
        ``file``: the pages up to the highest one ever used (the data file's size; freed pages
        inside it are reused before it grows).
        """
        self._check_open()
        info = self._env.info()
        stat = self._env.stat()
        psize = stat["psize"]
        tables = {}
        with self._env.begin() as txn:
            for name in self.table_names():
                dbi = self._open_dbi(name, txn=txn)
                if dbi is None:
                    continue
                try:
                    s = txn.stat(dbi)
                except lmdb.Error:
                    continue  # a key of the main database that is not a sub-database
                pages = s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"]
                tables[name] = {"entries": s["entries"], "pages": pages, "bytes": pages * psize}
        used = sum(t["bytes"] for t in tables.values()) + (
            stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * psize
        return {
            "path": str(self.path),
            "maxsize": self.maxsize,
            "used": used,
            "file": (info["last_pgno"] + 1) * psize,
            "free_pct": max(0.0, 100.0 * (1 - used / self.maxsize)),
            "page_size": psize,
            "readers": info["num_readers"],
            "tables": tables,
        }

    def close(self) -> None:
        """Close the environment (open transactions must be finished first)."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Transaction:
    """One LMDB transaction of a Database; pass it to the Table methods.

    ``with db.begin(write=True) as txn:`` commits when the block ends normally and aborts when it
    raises.  After :class:`DatabaseFull` the transaction is already aborted; committing it raises.
    """

    __slots__ = ("db", "txn", "write", "_done", "_failed", "_last_table", "_space_checked")

    def __init__(self, db: Database, txn: lmdb.Transaction, write: bool):
        self.db = db
        self.txn = txn
        self.write = write
        self._done = False
        self._failed: str | None = None
        self._last_table: str | None = None
        self._space_checked = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False

    def commit(self) -> None:
        if self._failed is not None:
            self._done = True
            raise DatabaseError(f"database {self.db.path}: the transaction was aborted ({self._failed}) "
                                f"and cannot be committed")
        if self._done:
            return
        self._done = True
        try:
            self.txn.commit()
        except lmdb.MapFullError:
            self._failed = "database full"
            raise DatabaseFull(str(self.db.path), self.db.maxsize, self._last_table) from None
        except lmdb.Error as e:
            self._failed = str(e)
            raise DatabaseError(f"database {self.db.path}: commit failed: {e}") from None

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self.txn.abort()

    def _fail(self, reason: str) -> None:
        """Abort after an error that left the LMDB transaction unusable."""
        if not self._done:
            self.txn.abort()
        self._done = True
        self._failed = reason

    def _check(self) -> lmdb.Transaction:
        if self._done:
            why = f" (aborted: {self._failed})" if self._failed else ""
            raise DatabaseError(f"database {self.db.path}: the transaction is finished{why}")
        return self.txn
