"""The edge node's personality (docs/fabric.md, "Edge node")."""

from __future__ import annotations

from ..personality import Personality


class EdgePersonality(Personality):
    """Edge node: a node managed by a master node."""

    NAME = "edge"
    TITLE = "wampfabric edge"
    DESC = "Edge node, managed by a master node"
