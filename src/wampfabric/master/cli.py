"""``wampfabric master ...``: run a master node (manages edge nodes in management realms)."""

from __future__ import annotations

import click

from ..node.personality_commands import personality_commands
from .dbtool import db


@click.group()
def master():
    """Master node: manages edge nodes in management realms."""


for _command in personality_commands("master"):
    master.add_command(_command)
master.add_command(db)
