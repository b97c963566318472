"""A writer for test_db_crash.py: multi-table transactions in a loop until it is killed.

Each transaction inserts 1-5 people (two unique indexes), renames one (its index entries move),
deletes as many (above 200 people), appends a ledger entry and updates the state record, so that after a kill the tables,
their indexes and the counts must all agree.  Prints "ready" after its first commit.
"""

from __future__ import annotations

import random
import sys
import uuid

from wampfabric.db import CborValue, Database, Record, RecordValue, StrKey, Table, TimestampKey, UuidKey


class Person(Record):
    FIELDS = {"oid": "uuid", "email": "str", "pubkey": "str", "blob": "bytes"}


def schema(db):
    people = Table(db, "people", UuidKey(), RecordValue(Person))
    people.add_index("by_email", StrKey(), lambda p: p.email)
    people.add_index("by_pubkey", StrKey(), lambda p: p.pubkey)
    ledger = Table(db, "ledger", TimestampKey(), CborValue())
    state = Table(db, "state", StrKey(), CborValue())
    return people, ledger, state


def main(path: str) -> None:
    db = Database(path, maxsize=64 * 2**20, sync=False)
    people, ledger, state = schema(db)
    rnd = random.Random()
    first = True
    while True:
        with db.begin(write=True) as txn:
            st = state.get(txn, "state") or {"seq": 0, "count": 0}
            count = st["count"]
            n = rnd.randint(1, 5)
            for _ in range(n):
                oid = uuid.uuid4()
                people.insert(txn, oid, Person(oid=oid, email=f"{oid.hex}@x", pubkey=uuid.uuid4().hex,
                                               blob=rnd.randbytes(rnd.randint(10, 2000))))
                count += 1
            # above 200 people, as many go as came (the database stays small)
            victims = list(people.select(txn, from_key=uuid.uuid4(), limit=n + 1, return_keys=True,
                                         return_values=False))
            if count > 200:
                for oid in victims[:n]:
                    people.delete(txn, oid)
                    count -= 1
            if victims:
                p = people.get(txn, victims[-1])
                if p is not None:
                    p.email = f"renamed-{uuid.uuid4().hex}@x"
                    people.put(txn, p.oid, p)
            seq = st["seq"] + 1
            ledger.insert(txn, seq, {"count": count})
            state.put(txn, "state", {"seq": seq, "count": count})
        if first:
            print("ready", flush=True)
            first = False


if __name__ == "__main__":
    main(sys.argv[1])
