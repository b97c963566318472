"""Generic LMDB tables: Database, Table, Index, key codecs, value codec (no WAMP, no asyncio).

Usage::

    db = Database(path, maxsize=128 * 2**20)
    users = Table(db, "users", UuidKey(), RecordValue(User))
    by_email = users.add_index("by_email", StrKey(), lambda u: u.email)
    with db.begin(write=True) as txn:          # commits at the end, aborts on an exception
        users.insert(txn, user.oid, user)       # the index entry is written in the same txn
    with db.begin() as txn:
        oid = by_email.get(txn, "alice@example.com")
        for key, user in users.select(txn, return_keys=True, reverse=True, limit=10): ...

On-disk format (enough to read the files with plain ``lmdb`` and ``cbor2``)
---------------------------------------------------------------------------

A database is an LMDB environment directory (``data.mdb``, ``lock.mdb``), opened with
``subdir=True`` and the default flags (no ``dupsort``, no ``integerkey``).  Every table is a named
sub-database whose name is the table name in UTF-8 (``b"users"``); every index of a table is the
named sub-database ``<table>/<index>`` (``b"users/by_email"``).  The main (unnamed) database holds
only LMDB's records of the named ones.

Keys (wampfabric.db.keys; byte order = value order, LMDB compares keys with memcmp):

* UUID: the 16 bytes of ``uuid.UUID.bytes``.
* string: its UTF-8 bytes.
* timestamp: an unsigned int, nanoseconds since the Unix epoch, as 8 bytes big-endian.
* bytes: as they are.
* tuple: the parts concatenated in order.  A variable-length part (string, bytes) that is not the
  last part has each 0x00 byte doubled as 0x00 0xFF and is closed by 0x00 0x00; the last part is
  written as is.  Example: ``(mrealm_oid, "edge1")`` = 16 UUID bytes + ``b"edge1"``;
  ``("alice@x", "ab12")`` = ``b"alice@x\\x00\\x00ab12"``; ``(ts, node_oid, "rw1")`` = 8 + 16 bytes +
  ``b"rw1"``.

Values (wampfabric.db.values): the CBOR encoding (RFC 8949, as ``cbor2.dumps`` writes it) of

* a table of records: the record's ``marshal()`` dict -- a CBOR map of field name to value, UUIDs
  as CBOR tag 37 (``cbor2.loads`` gives ``uuid.UUID``), timestamps as integers (ns), bytes as
  byte strings, nested maps and arrays as they are; fields a reader does not know are kept;
* an index: not CBOR, the raw encoded primary key of the record (the key bytes of its table).

Reading ``users`` with plain libraries::

    env = lmdb.open(".db-controller", readonly=True, max_dbs=64, map_size=0)
    with env.begin() as txn:
        for k, v in txn.cursor(db=env.open_db(b"users", txn=txn, create=False)):
            print(uuid.UUID(bytes=k), cbor2.loads(v))

Transactions and failures: LMDB commits are atomic (a process killed at any point leaves every
committed transaction whole and nothing of an uncommitted one; tests/db/test_db_crash.py kills a
writer with SIGKILL in a loop).  A write that does not fit into ``maxsize`` raises
:class:`DatabaseFull` (path, maxsize, table) and aborts its transaction; the database stays
usable.  A duplicate key or unique-index key raises :class:`DuplicateKey` before anything of that
write is stored.
"""

from __future__ import annotations

from .database import Database, Transaction
from .errors import DatabaseError, DatabaseFull, DuplicateKey, InvalidKey, InvalidValue
from .keys import BytesKey, KeyCodec, StrKey, TimestampKey, TupleKey, UuidKey
from .table import Index, Table
from .values import CborValue, Record, RecordValue, ValueCodec, to_json

__all__ = [
    "Database", "Transaction", "Table", "Index",
    "KeyCodec", "UuidKey", "StrKey", "TimestampKey", "BytesKey", "TupleKey",
    "ValueCodec", "CborValue", "RecordValue", "Record", "to_json",
    "DatabaseError", "DatabaseFull", "DuplicateKey", "InvalidKey", "InvalidValue",
]
