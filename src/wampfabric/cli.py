"""The ``wampfabric`` command: the node commands (node/cli.py) and the command groups of the
personalities above the node (``wampfabric edge ...``, ``wampfabric master ...``)."""

from __future__ import annotations

from .edge.cli import edge
from .master.cli import master
from .node.cli import main

main.add_command(edge)
main.add_command(master)

__all__ = ["main"]
