"""The ``wampfabric`` command: the node commands (node/cli.py) and the command groups of the
personalities above the node (``wampfabric edge ...``, ``wampfabric master ...``) and the metering
service (``wampfabric metering-service ...``)."""

from __future__ import annotations

from .edge.cli import edge
from .master.cli import master
from .metering.cli import metering_service
from .node.cli import main

main.add_command(edge)
main.add_command(master)
main.add_command(metering_service)

__all__ = ["main"]
