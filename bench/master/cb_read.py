"""Count the heartbeats Crossbar.io's master stored (run by bench/.venv-crossbar's python: cfxdb
and zlmdb, read-only, as protocol reference §9 shows).

    python cb_read.py CBDIR MREALM_NAME [KEYS_FILE]  ->  one JSON line {mrealm_oid, node, worker, used_bytes, ...}

With KEYS_FILE, every record's [node oid, worker id or "", seq] is written there as JSON.

``used_bytes``: the LMDB pages of the mrealm database in use (zlmdb keeps every table in LMDB's
main database, one 2-byte slot prefix per table, so the whole database is counted).
"""
import json
import sys

import cfxdb.globalschema
import cfxdb.mrealmschema
import zlmdb

cbdir, mrealm = sys.argv[1], sys.argv[2]
keys_path = sys.argv[3] if len(sys.argv) > 3 else None  # also write [node oid, worker id or "", seq] per record
db = zlmdb.Database(dbpath=cbdir + "/.db-controller", maxsize=128 * 2**20, readonly=True)
gs = cfxdb.globalschema.GlobalSchema.attach(db)
with db.begin() as txn:
    mrealm_oid = gs.idx_mrealms_by_name[txn, mrealm]
mdb = zlmdb.Database(dbpath="%s/.db-mrealm-%s" % (cbdir, mrealm_oid), maxsize=2 * 2**30, readonly=True)
ms = cfxdb.mrealmschema.MrealmSchema.attach(mdb)
with mdb.begin() as txn:
    node = ms.mnode_logs.count(txn)
    worker = ms.mworker_logs.count(txn)
    if keys_path:
        keys = [[str(r.node_id), "", r.seq] for r in ms.mnode_logs.select(txn, return_keys=False)]
        keys += [[str(r.node_id), r.worker_id, r.seq] for r in ms.mworker_logs.select(txn, return_keys=False)]
        with open(keys_path, "w") as f:
            json.dump(keys, f)
    stat = mdb._env.stat()
    info = mdb._env.info()
used = (stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * stat["psize"]
print(json.dumps({"mrealm_oid": str(mrealm_oid), "node": node, "worker": worker, "used_bytes": used,
                  "file_bytes": (info["last_pgno"] + 1) * stat["psize"], "entries": stat["entries"]}))
