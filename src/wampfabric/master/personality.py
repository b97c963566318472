"""The master node's personality (docs/fabric.md, "Master node")."""

from __future__ import annotations

from ..personality import Personality


class MasterPersonality(Personality):
    """Master node: manages edge nodes.

    Its router workers are ``MasterRouterWorker`` (master/routerworker.py): a router worker that
    holds the master's database, authenticator and controllers (the config of ``master init``)."""

    NAME = "master"
    TITLE = "wampfabric master"
    DESC = "Master node, managing edge nodes"

    NATIVE_WORKERS = {
        **Personality.NATIVE_WORKERS,
        "router": {**Personality.NATIVE_WORKERS["router"],
                   "class": "wampfabric.master.routerworker.MasterRouterWorker"},
    }
