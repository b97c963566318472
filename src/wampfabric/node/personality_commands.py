"""Node commands bound to one personality, for the command groups of the personalities above the
node (``wampfabric edge start`` is ``wampfabric start --personality edge``)."""

from __future__ import annotations

import click

from . import cli


def personality_commands(personality: str) -> list[click.Command]:
    """``start``, ``stop``, ``status`` and ``check`` of the node, with ``--personality`` fixed."""
    commands = []
    for base in (cli.start, cli.stop, cli.status, cli.check):
        params = [p for p in base.params if p.name != "personality"]
        fixed = "personality" in {p.name for p in base.params}

        def callback(_base=base, _fixed=fixed, **kwargs):
            if _fixed:
                kwargs["personality"] = personality
            return click.get_current_context().invoke(_base, **kwargs)

        commands.append(click.Command(base.name, callback=callback, params=params,
                                      help=f"{(base.help or '').rstrip('.')} (personality {personality})."))
    return commands
