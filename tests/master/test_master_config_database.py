"""``controller.fabric-center.database`` in the master's config: checked by ``wampfabric master
check`` and ``wampfabric check``, and used by the master's router worker for the global database
(``maxsize``) and every mrealm database (``mrealm_maxsize``). A tiny global database fills up: the
caller gets ``crossbar.error.database_full`` with a clear text, and the master keeps running."""

from __future__ import annotations

import json

import pytest
from autobahn.wamp.exception import ApplicationError

from masternode import Key, Master, cli, fabric_connect
from support.autobahn_client import w

MIB = 2**20


def set_database(master: Master, database) -> None:
    path = master.cbdir / "config.json"
    cfg = json.loads(path.read_text())
    cfg["controller"]["fabric-center"]["database"] = database
    path.write_text(json.dumps(cfg, indent=2))


def test_init_writes_the_defaults_and_check_refuses_bad_values(tmp_path):
    master = Master()
    master.init()
    cfg = json.loads((master.cbdir / "config.json").read_text())
    assert cfg["controller"]["fabric-center"] == {"database": {"maxsize": 128 * MIB, "mrealm_maxsize": 1024 * MIB}}
    for database, where in (({"maxsize": 1000}, "$.controller.fabric-center.database.maxsize"),
                            ({"mrealm_maxsize": "1G"}, "$.controller.fabric-center.database.mrealm_maxsize"),
                            ({"maxsize": True}, "$.controller.fabric-center.database.maxsize"),
                            ({"size": 5 * MIB}, "$.controller.fabric-center.database")):
        set_database(master, database)
        for args in (("master", "check"), ("check",)):
            r = cli(*args, "--cbdir", str(master.cbdir))
            assert r.returncode != 0, (args, database, r.stdout)
            assert where in r.stderr + r.stdout, (args, database, r.stderr + r.stdout)
            assert "Traceback" not in r.stderr
    # the heartbeat retention settings beside it (master/retention.py)
    path = master.cbdir / "config.json"
    cfg = json.loads(path.read_text())
    cfg["controller"]["fabric-center"]["heartbeats"] = {"retention": 5}
    path.write_text(json.dumps(cfg))
    r = cli("master", "check", "--cbdir", str(master.cbdir))
    assert r.returncode != 0 and "$.controller.fabric-center.heartbeats.retention" in r.stderr + r.stdout
    cfg["controller"]["fabric-center"]["heartbeats"] = {"retention": 86400, "prune_interval": 60}
    path.write_text(json.dumps(cfg))
    set_database(master, {"maxsize": 4 * MIB, "mrealm_maxsize": 3 * MIB})
    for args in (("master", "check"), ("check",)):
        r = cli(*args, "--cbdir", str(master.cbdir))
        assert r.returncode == 0, r.stderr + r.stdout
    # the master's router worker is one process: replicas would be N writers of one database
    cfg = json.loads(path.read_text())
    router = next(i for i, wk in enumerate(cfg["workers"]) if wk.get("type") == "router")
    cfg["workers"][router].setdefault("options", {})["replicas"] = 2
    # (its Unix socket transports are refused with replicas too: without them, the master's own rule)
    cfg["workers"][router]["transports"] = [t for t in cfg["workers"][router]["transports"]
                                            if t.get("endpoint", {}).get("type") != "unix"]
    path.write_text(json.dumps(cfg))
    r = cli("master", "check", "--cbdir", str(master.cbdir))
    assert r.returncode != 0 and f"$.workers[{router}].options.replicas" in r.stderr + r.stdout, r.stderr + r.stdout
    assert "one process" in r.stderr + r.stdout and "Traceback" not in r.stderr


async def test_tiny_databases_are_used_and_a_full_one_is_a_clear_error(tmp_path):
    su = Key()
    master = Master(superuser=su, env={"CROSSBAR_DISABLE_CE": "1"})
    master.init()
    set_database(master, {"maxsize": 2 * MIB, "mrealm_maxsize": 3 * MIB})
    master.start()
    sessions = []
    try:
        master.wait_log("maxsize 2097152 bytes; mrealm databases maxsize 3145728 bytes")
        g = await fabric_connect(master.url, su, realm=None)
        sessions.append(g)
        mrealm = await w(g.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": "m1"}))
        pad = "x" * 60_000
        paired = []
        with pytest.raises(ApplicationError) as e:
            for i in range(100):
                paired.append(await w(g.call("crossbarfabriccenter.mrealm.pair_node", Key().pubkey, "m1",
                                             f"n{i}", {"pad": pad})))
        assert e.value.error == "crossbar.error.database_full", e.value
        assert "full" in e.value.args[0] and ".db-controller" in e.value.args[0], e.value.args
        assert 5 < len(paired) < 40, len(paired)
        # the master keeps running: it answers, and deleting makes room again
        assert (await w(g.call("crossbarfabriccenter.domain.get_status")))["type"] == "domain"
        for node in paired[:5]:
            await w(g.call("crossbarfabriccenter.mrealm.unpair_node", node["oid"]))
        await w(g.call("crossbarfabriccenter.mrealm.pair_node", Key().pubkey, "m1", "again", None))
        assert master.proc.poll() is None

        # the mrealm database was opened with mrealm_maxsize
        r = cli("master", "db", "--cbdir", str(master.cbdir), "stats")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(f"mrealm 'm1' ({mrealm['oid']})"))
        assert "of 3.0 MiB" in lines[at + 1], r.stdout
        assert "of 2.0 MiB" in lines[1], r.stdout
    finally:
        for s in sessions:
            await s.close()
        master.stop()
