"""Table (one named LMDB sub-database: encoded key -> encoded value) and Index (unique, kept by
its table in the same transaction)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import lmdb

from .database import Database, Transaction
from .errors import DatabaseError, DatabaseFull, DuplicateKey, InvalidKey
from .keys import MAX_KEY_BYTES, KeyCodec
from .values import ValueCodec

__all__ = ["Table", "Index"]


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class _Map:
    """What tables and indexes share: a named sub-database, its key codec and the reads."""

    def __init__(self, db: Database, name: str, key: KeyCodec):
        if not name or "\x00" in name:
            raise DatabaseError(f"bad table name {name!r}")
        self.db = db
        self.name = name
        self.key = key
        if db.readonly:
            self._dbi = None
            db._unopened.append(self)  # opened by the next db.begin() (see there)
        else:
            self._dbi = db._open_dbi(name, create=True)

    def _handle(self, t: Transaction):
        """The sub-database handle; None when a read-only database does not have it.  A reader's
        table attached after ``t`` began gets a handle opened in ``t`` for ``t`` only (it dies with
        ``t``; the next ``db.begin()`` opens the lasting one)."""
        if self._dbi is None and self.db.readonly:
            return self.db._open_dbi(self.name, txn=t.txn)
        return self._dbi

    def _encode(self, key: Any) -> bytes:
        b = self.key.encode(key)
        if not b:
            raise InvalidKey(f"table '{self.name}': empty key")
        if len(b) > MAX_KEY_BYTES:
            raise InvalidKey(f"table '{self.name}': key of {len(b)} bytes (LMDB allows {MAX_KEY_BYTES})")
        return b

    def _decode_value(self, data: bytes) -> Any:
        raise NotImplementedError

    def _raw_get(self, t: Transaction, k: bytes) -> bytes | None:
        txn = t._check()
        dbi = self._handle(t)
        return None if dbi is None else txn.get(k, db=dbi)

    def has(self, txn: Transaction, key: Any) -> bool:
        return self._raw_get(txn, self._encode(key)) is not None

    __contains__ = None  # a lookup needs a transaction: use has(txn, key)

    def count(self, txn: Transaction, prefix: Any = None) -> int:
        """Number of entries (with ``prefix``: of those whose key starts with it)."""
        t = txn._check()
        dbi = self._handle(txn)
        if dbi is None:
            return 0
        if prefix is None:
            return t.stat(dbi)["entries"]
        return sum(1 for _ in self._range(txn, self.key.prefix(prefix), None, None, False, False))

    def select(self, txn: Transaction, from_key: Any = None, to_key: Any = None, reverse: bool = False,
               limit: int | None = None, return_keys: bool = False, return_values: bool = True,
               prefix: Any = None) -> Iterator[Any]:
        """Entries in key order (``reverse``: descending), from ``from_key`` (included) up to
        ``to_key`` (excluded), at most ``limit``; keys may be partial tuples.  Yields values,
        keys, or (key, value) pairs as ``return_keys`` / ``return_values`` ask.  Consume it inside
        the transaction."""
        if not (return_keys or return_values):
            raise ValueError("select: return_keys or return_values (or both) must be true")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"select: limit must be an int >= 0, not {limit!r}")
        lo = None if from_key is None else self.key.prefix(from_key)
        hi = None if to_key is None else self.key.prefix(to_key)
        pre = None if prefix is None else self.key.prefix(prefix)
        return self._select(txn, lo, hi, pre, reverse, limit, return_keys, return_values)

    def _select(self, txn, lo, hi, pre, reverse, limit, return_keys, return_values):
        if limit == 0:
            return
        decode_key = self.key.decode
        decode_value = self._decode_value
        n = 0
        for k, v in self._range(txn, pre, lo, hi, reverse, return_values):
            if return_keys and return_values:
                yield decode_key(k), decode_value(v)
            elif return_keys:
                yield decode_key(k)
            else:
                yield decode_value(v)
            n += 1
            if limit is not None and n >= limit:
                return

    def _range(self, txn: Transaction, pre: bytes | None, lo: bytes | None, hi: bytes | None,
               reverse: bool, values: bool) -> Iterator[tuple[bytes, bytes | None]]:
        """Raw (key, value) pairs with lo <= key < hi and key starting with pre."""
        t = txn._check()
        dbi = self._handle(txn)
        if dbi is None:
            return
        if pre is not None:
            end = _prefix_end(pre)
            lo = pre if lo is None or lo < pre else lo
            hi = end if hi is None or (end is not None and end < hi) else hi
        if lo is not None and hi is not None and lo >= hi:
            return
        with t.cursor(db=dbi) as cur:
            if not reverse:
                found = cur.set_range(lo) if lo is not None else cur.first()
                while found:
                    k = cur.key()
                    if hi is not None and k >= hi:
                        return
                    yield k, (cur.value() if values else None)
                    found = cur.next()
            else:
                if hi is not None:
                    found = cur.prev() if cur.set_range(hi) else cur.last()
                else:
                    found = cur.last()
                while found:
                    k = cur.key()
                    if lo is not None and k < lo:
                        return
                    yield k, (cur.value() if values else None)
                    found = cur.prev()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.key!r})"


class Index(_Map):
    """A unique index of a table: index key -> the record's primary key.

    ``fn(record)`` gives the index key of a record, or None for "not indexed" (a user without a
    public key).  Made by ``table.add_index(name, key, fn)``; stored as the sub-database
    ``<table>/<name>`` whose values are the encoded primary keys.
    """

    def __init__(self, table: Table, name: str, key: KeyCodec, fn: Callable[[Any], Any]):
        super().__init__(table.db, f"{table.name}/{name}", key)
        self.table = table
        self.short_name = name
        self.fn = fn

    def _decode_value(self, data: bytes) -> Any:
        return self.table.key.decode(data)

    def get(self, txn: Transaction, key: Any, default: Any = None) -> Any:
        """The primary key of the record with this index key (``default`` if none)."""
        raw = self._raw_get(txn, self._encode(key))
        return default if raw is None else self.table.key.decode(raw)

    def get_record(self, txn: Transaction, key: Any, default: Any = None) -> Any:
        """The record with this index key (``default`` if none)."""
        raw = self._raw_get(txn, self._encode(key))
        if raw is None:
            return default
        return self.table._get_raw_key(txn, raw, default)

    def _index_key(self, record: Any) -> bytes | None:
        ik = self.fn(record)
        return None if ik is None else self._encode(ik)


class Table(_Map):
    """One named sub-database: keys through ``key`` (a KeyCodec), values through ``value``.

    Writes keep the table's indexes in the same transaction; they are all-or-nothing with it.
    """

    def __init__(self, db: Database, name: str, key: KeyCodec, value: ValueCodec, sequential: bool = False):
        if "/" in name:
            raise DatabaseError(f"bad table name {name!r}: '/' separates a table from its indexes")
        super().__init__(db, name, key)
        self.value = value
        # keys arrive mostly in ascending order (time-keyed logs): a write first tries LMDB's append
        # mode, which fills pages completely instead of splitting them in halves (~17% fewer bytes
        # per heartbeat record); a key that is not the highest falls back to an ordinary put
        self.sequential = sequential
        self.indexes: dict[str, Index] = {}
        db._register(self)

    def add_index(self, name: str, key: KeyCodec, fn: Callable[[Any], Any]) -> Index:
        if name in self.indexes:
            raise DatabaseError(f"table '{self.name}' already has an index '{name}'")
        idx = Index(self, name, key, fn)
        self.indexes[name] = idx
        return idx

    def _decode_value(self, data: bytes) -> Any:
        return self.value.decode(data)

    def _get_raw_key(self, txn: Transaction, k: bytes, default: Any) -> Any:
        raw = self._raw_get(txn, k)
        return default if raw is None else self.value.decode(raw)

    def get(self, txn: Transaction, key: Any, default: Any = None) -> Any:
        """The value stored under ``key`` (``default`` if none)."""
        return self._get_raw_key(txn, self._encode(key), default)

    def insert(self, txn: Transaction, key: Any, value: Any) -> None:
        """Store a new entry; DuplicateKey if the key (or a unique index key) is taken."""
        self._write(txn, key, value, overwrite=False)

    def put(self, txn: Transaction, key: Any, value: Any) -> None:
        """Store an entry, replacing the one under the same key; DuplicateKey if a unique index
        key of the new value belongs to another entry."""
        self._write(txn, key, value, overwrite=True)

    def _writable(self, txn: Transaction) -> lmdb.Transaction:
        t = txn._check()
        if not txn.write:
            raise DatabaseError(f"table '{self.name}': a write needs a write transaction (db.begin(write=True))")
        return t

    def _write(self, txn: Transaction, key: Any, value: Any, overwrite: bool) -> None:
        t = self._writable(txn)
        k = self._encode(key)
        v = self.value.encode(value)
        if not txn._space_checked:
            self.db._check_space(txn, self.name)
        dbi = self._dbi
        plan = []
        if self.indexes:
            old_raw = t.get(k, db=dbi)
            if old_raw is not None and not overwrite:
                raise DuplicateKey(f"table '{self.name}': key {key!r} exists")
            old = None if old_raw is None else self.value.decode(old_raw)
            for idx in self.indexes.values():
                new_ik = idx._index_key(value)
                old_ik = None if old is None else idx._index_key(old)
                if new_ik is not None and new_ik != old_ik:
                    owner = t.get(new_ik, db=idx._dbi)
                    if owner is not None and owner != k:
                        raise DuplicateKey(
                            f"table '{self.name}': {idx.short_name} {idx.key.decode(new_ik)!r} is already used "
                            f"by key {self.key.decode(owner)!r}")
                plan.append((idx, old_ik, new_ik))
        txn._last_table = self.name
        try:
            if not ((self.sequential and t.put(k, v, db=dbi, overwrite=overwrite, append=True))
                    or t.put(k, v, db=dbi, overwrite=overwrite)):
                raise DuplicateKey(f"table '{self.name}': key {key!r} exists")
            for idx, old_ik, new_ik in plan:
                if old_ik is not None and old_ik != new_ik:
                    t.delete(old_ik, db=idx._dbi)
                if new_ik is not None:
                    txn._last_table = idx.name
                    t.put(new_ik, k, db=idx._dbi)
        except lmdb.MapFullError:
            txn._fail("database full")
            raise DatabaseFull(str(self.db.path), self.db.maxsize, txn._last_table) from None
        except lmdb.Error as e:
            txn._fail(str(e))
            raise DatabaseError(f"table '{self.name}': write failed: {e}") from None

    def delete(self, txn: Transaction, key: Any) -> bool:
        """Remove the entry under ``key`` and its index entries; False if there was none."""
        t = self._writable(txn)
        k = self._encode(key)
        dbi = self._dbi
        try:
            if self.indexes:
                old_raw = t.get(k, db=dbi)
                if old_raw is None:
                    return False
                old = self.value.decode(old_raw)
                for idx in self.indexes.values():
                    old_ik = idx._index_key(old)
                    if old_ik is not None and t.get(old_ik, db=idx._dbi) == k:
                        t.delete(old_ik, db=idx._dbi)
            txn._last_table = self.name
            return t.delete(k, db=dbi)
        except lmdb.MapFullError:
            txn._fail("database full")
            raise DatabaseFull(str(self.db.path), self.db.maxsize, self.name) from None
        except lmdb.Error as e:
            txn._fail(str(e))
            raise DatabaseError(f"table '{self.name}': delete failed: {e}") from None

    def delete_range(self, txn: Transaction, from_key: Any = None, to_key: Any = None,
                     limit: int | None = None) -> int:
        """Delete the entries from ``from_key`` (included) up to ``to_key`` (excluded; keys may be
        partial tuples), at most ``limit`` of them, with their index entries; the number deleted.
        Pruning old heartbeats: ``delete_range(txn, to_key=(cutoff_ns,), limit=10_000)`` per
        transaction until it returns less than the limit."""
        self._writable(txn)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError(f"delete_range: limit must be an int >= 0, not {limit!r}")
        lo = None if from_key is None else self.key.prefix(from_key)
        hi = None if to_key is None else self.key.prefix(to_key)
        doomed = []
        for k, _ in self._range(txn, None, lo, hi, False, False):
            if limit is not None and len(doomed) >= limit:
                break
            doomed.append(bytes(k))
        if not self.indexes:
            t = txn.txn
            txn._last_table = self.name
            try:
                for k in doomed:
                    t.delete(k, db=self._dbi)
            except lmdb.MapFullError:
                txn._fail("database full")
                raise DatabaseFull(str(self.db.path), self.db.maxsize, self.name) from None
            except lmdb.Error as e:
                txn._fail(str(e))
                raise DatabaseError(f"table '{self.name}': delete failed: {e}") from None
        else:
            for k in doomed:
                self.delete(txn, self.key.decode(k))
        return len(doomed)

    def check_indexes(self, txn: Transaction) -> list[str]:
        """Problems between the table and its indexes (empty: consistent).  For tests and repair."""
        problems = []
        for idx in self.indexes.values():
            expected = {}
            for k, v in self._range(txn, None, None, None, False, True):
                ik = idx._index_key(self.value.decode(v))
                if ik is not None:
                    expected[bytes(ik)] = bytes(k)
            actual = {bytes(ik): bytes(pk) for ik, pk in idx._range(txn, None, None, None, False, True)}
            for ik, pk in expected.items():
                if actual.get(ik) != pk:
                    problems.append(f"{idx.name}: entry {idx.key.decode(ik)!r} missing or not -> {self.key.decode(pk)!r}")
            for ik in actual.keys() - expected.keys():
                problems.append(f"{idx.name}: stale entry {idx.key.decode(ik)!r}")
        return problems
