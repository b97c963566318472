"""The edge node's personality (docs/fabric.md, "Edge node")."""

from __future__ import annotations

from ..personality import Personality


def uplink():
    """The uplink node extension (imported when the node starts: worker processes, which load the
    personality too, do not need the network client)."""
    from .uplink import Uplink

    return Uplink()


class EdgePersonality(Personality):
    """Edge node: a node managed by a master node.  Its node extension is the uplink to the
    master (``uplink.py``): the management bridge and the heartbeats."""

    NAME = "edge"
    TITLE = "wampfabric edge"
    DESC = "Edge node, managed by a master node"

    NODE_EXTENSIONS = (uplink,)
