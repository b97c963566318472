"""The errors of the database layer: every failure of wampfabric.db is a DatabaseError."""

from __future__ import annotations


class DatabaseError(Exception):
    """A database operation failed; the message says what and where."""


class DatabaseFull(DatabaseError):
    """A write transaction did not fit into the database's maxsize.

    The transaction is aborted (none of its writes is kept); the database stays usable:
    reads, deletes and smaller writes work.
    """

    def __init__(self, path: str, maxsize: int, table: str | None):
        self.path = path
        self.maxsize = maxsize
        self.table = table
        where = f" writing table '{table}'" if table else ""
        super().__init__(
            f"database {path} is full (maxsize {maxsize} bytes){where}: the transaction was aborted; "
            f"delete records or open the database with a larger maxsize")


class DuplicateKey(DatabaseError, KeyError):
    """An insert found its key taken, or a unique index found its key used by another record."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidKey(DatabaseError, ValueError):
    """A key that its codec cannot encode (wrong type, out of range, empty or too long)."""


class InvalidValue(DatabaseError, ValueError):
    """A value that its codec cannot encode or decode (wrong record type or field type, not CBOR)."""
