"""``wampfabric edge ...``: run an edge node (a node managed by a master)."""

from __future__ import annotations

import click

from ..node.personality_commands import personality_commands


@click.group()
def edge():
    """Edge node: a WAMP router node managed by a master node."""


for _command in personality_commands("edge"):
    edge.add_command(_command)
