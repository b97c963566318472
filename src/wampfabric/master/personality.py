"""The master node's personality (docs/fabric.md, "Master node")."""

from __future__ import annotations

from ..personality import Personality


class MasterPersonality(Personality):
    """Master node: manages edge nodes."""

    NAME = "master"
    TITLE = "wampfabric master"
    DESC = "Master node, managing edge nodes"
