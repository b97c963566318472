"""The check of a whole node config (Crossbar.io config version 2): ``check_config``."""

from __future__ import annotations

from .base import Collector, ConfigError, check_dict, check_type, checker_for, list_at
from .controller import check_controller
from .workers import WORKER_CHECKERS, replica_count, replica_ids, worker_id_problem


def check_config(config, personality) -> dict:
    """Check a whole config; every independent item (the controller, each worker and, inside
    them, each realm, transport, component) is checked on its own and all errors are raised
    together (``ConfigErrors``; a single one as a plain ``ConfigError``)."""
    path = "$"
    check_type(config, dict, path)
    version = config.get("version", 1)
    if version != 2:
        raise ConfigError(f"{path}.version", f"unsupported config version {version!r} (only version 2 is supported)")
    c = Collector()
    c.run(check_dict, config, path, {}, {"$schema": str, "version": int, "controller": dict, "workers": list})
    if isinstance(config.get("controller", {}), dict):
        c.run(check_controller, config.get("controller", {}), f"{path}.controller", personality)
    checkers = getattr(personality, "WORKER_CHECKERS", None) or WORKER_CHECKERS
    ids = set()

    def check_worker(worker, wpath):
        checker = checker_for(worker, wpath, checkers, "worker",
                              unsupported=("proxy", "xbrmm", "hostmonitor", "websocket-testee"))
        checker(worker, wpath, personality)

    for i, worker in enumerate(list_at(config, "workers")):
        wpath = f"{path}.workers[{i}]"
        c.run(check_worker, worker, wpath)
        wid = worker.get("id") if isinstance(worker, dict) else None
        if isinstance(wid, str):
            if wid in ids:
                c.add(f"{wpath}.id", f"duplicate worker id '{wid}'")
            elif worker_id_problem(wid):
                c.add(f"{wpath}.id", f"invalid worker id {wid[:100]!r}: {worker_id_problem(wid)}")
            ids.add(wid)
    # a worker with replicas runs as <id>-1 .. <id>-N: none of them may be another worker's ID
    for i, worker in enumerate(list_at(config, "workers")):
        wid = worker.get("id") if isinstance(worker, dict) else None
        n = replica_count(worker)
        if isinstance(wid, str) and n > 1:
            for rid in replica_ids(wid, n):
                if rid in ids:
                    c.add(f"{path}.workers[{i}].options.replicas",
                          f"worker '{wid}': replica ID '{rid}' is the ID of another worker")
    c.done()
    return config
