"""The ``wampfabric`` command: the node commands (node/cli.py) and the command groups of the
personalities above the node (``wampfabric edge ...``, ``wampfabric master ...``), the metering
service (``wampfabric metering-service ...``) and the management shell (``wampfabric shell ...``)."""

from __future__ import annotations

from .edge.cli import edge
from .master.cli import master
from .metering.cli import metering_service
from .node.cli import main
from .shell.cli import shell

main.add_command(edge)
main.add_command(master)
main.add_command(metering_service)
main.add_command(shell)

__all__ = ["main"]
