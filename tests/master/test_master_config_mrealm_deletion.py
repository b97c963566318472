"""Deleting an mrealm keeps its database: ``.db-mrealm-<oid>`` is renamed
``.db-mrealm-<oid>.deleted-<UTC time>`` with the heartbeats of its last intervals readable (metering
bills them); ``master db stats`` no longer lists it; the change engine stops following the mrealm;
a new mrealm of the same name starts with a database of its own."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from masternode import Key, Master, cli, fabric_connect
from support.autobahn_client import w
from wampfabric.master.schema import MrealmSchema
from wampfabric.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fabric"))
from fabricnodes import M, WfEdge, wait_for  # noqa: E402


async def test_deleted_mrealm_database_is_kept_renamed(tmp_path):
    su = Key()
    master = Master(superuser=su)
    master.init()
    master.start()
    edge = WfEdge(tmp_path, "edge1", master.url)
    sessions = []
    try:
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", edge.pubkey, "m1", "edge1", None))
        master.wait_log("Change engine: following management realm 'm1'")
        s = await fabric_connect(master.url, su, realm="m1")
        sessions.append(s)
        edge.start()

        async def heartbeats():
            n = await w(s.call(M + "get_node_by_authid", "edge1"))
            return (n.get("last_heartbeat") or {}).get("count", 0) >= 2
        await wait_for(heartbeats, 60, "two heartbeats of edge1")
        await s.close()
        sessions.remove(s)

        db_dir = master.cbdir / f".db-mrealm-{mrealm['oid']}"
        assert db_dir.is_dir()
        await w(g.call("crossbarfabriccenter.mrealm.delete_mrealm_by_name", "m1", cascade=True))
        assert not db_dir.exists()
        [kept] = [p for p in master.cbdir.iterdir() if p.name.startswith(db_dir.name + ".deleted-")]
        assert re.fullmatch(re.escape(db_dir.name) + r"\.deleted-\d{8}T\d{6}Z", kept.name), kept.name
        master.wait_log(f"Management realm 'm1' deleted: its database kept as {kept}")
        master.wait_log("Change engine: management realm 'm1' deleted: no longer followed")

        mdb = Database(kept, 2**30, readonly=True)
        try:
            ms = MrealmSchema.attach(mdb)
            with mdb.begin() as txn:
                assert ms.mnode_logs.count(txn) >= 2
        finally:
            mdb.close()

        r = cli("master", "db", "--cbdir", str(master.cbdir), "stats")
        assert r.returncode == 0 and mrealm["oid"] not in r.stdout, r.stdout + r.stderr

        again = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        assert again["oid"] != mrealm["oid"]
        assert (master.cbdir / f".db-mrealm-{again['oid']}").is_dir()
        assert kept.is_dir()
        master.wait_log("Change engine: following management realm 'm1'", count=2)
    finally:
        for x in sessions:
            await x.close()
        edge.stop()
        master.stop()
