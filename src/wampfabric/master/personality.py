"""The master node's personality (docs/fabric.md, "Master node")."""

from __future__ import annotations

from ..config.base import ConfigError
from ..config.controller import check_fabric_center
from ..config.workers import check_router_worker_options
from ..personality import Personality, boot_router_worker

#: the router worker option through which the node hands ``controller.fabric-center`` to the master
FABRIC_CENTER_OPTION = "fabric_center"


def check_master_router_options(options, path: str, personality=None) -> None:
    """A master router worker's options: a router worker's, plus ``fabric_center`` (the node's
    ``controller.fabric-center``, which the node passes on; checked like it)."""
    if isinstance(options, dict) and options.get("replicas", 1) != 1:
        raise ConfigError(f"{path}.replicas", "a master's router worker runs as one process (its databases have "
                          "one writer): remove replicas")
    if isinstance(options, dict) and FABRIC_CENTER_OPTION in options:
        check_fabric_center(options[FABRIC_CENTER_OPTION], f"{path}.{FABRIC_CENTER_OPTION}")
        options = {k: v for k, v in options.items() if k != FABRIC_CENTER_OPTION}
    check_router_worker_options(options, path, personality)


async def boot_master_router_worker(node, worker_id: str, config: dict) -> None:
    """A router worker of the master gets the node's ``controller.fabric-center`` as its option
    ``fabric_center`` (the router worker, not the node controller, opens the databases)."""
    fc = (node.config.get("controller") or {}).get("fabric-center")
    if fc is not None:
        options = dict(config.get("options") or {})
        if FABRIC_CENTER_OPTION in options and options[FABRIC_CENTER_OPTION] != fc:
            raise ConfigError(f"workers.{worker_id}.options.{FABRIC_CENTER_OPTION}",
                              "set by the node from controller.fabric-center; do not set it here")
        options[FABRIC_CENTER_OPTION] = fc
        config = dict(config, options=options)
    await boot_router_worker(node, worker_id, config)


class MasterPersonality(Personality):
    """Master node: manages edge nodes.

    Its router workers are ``MasterRouterWorker`` (master/routerworker.py): a router worker that
    holds the master's database, authenticator and controllers (the config of ``master init``);
    they get ``controller.fabric-center`` (database sizes) as their option ``fabric_center``."""

    NAME = "master"
    TITLE = "wampfabric master"
    DESC = "Master node, managing edge nodes"

    NATIVE_WORKERS = {
        **Personality.NATIVE_WORKERS,
        "router": {**Personality.NATIVE_WORKERS["router"],
                   "class": "wampfabric.master.routerworker.MasterRouterWorker",
                   "check_options": check_master_router_options},
    }
    WORKER_BOOTERS = {**Personality.WORKER_BOOTERS, "router": boot_master_router_worker}
