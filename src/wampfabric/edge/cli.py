"""``wampfabric edge ...``: run an edge node (a node managed by a master).

``start``, ``stop``, ``status``, ``check`` are the node's commands with personality ``edge``;
``start`` in a node directory without a config writes a default one (no workers: the master
starts them).  ``keys`` prints the node's public key (the one to pair on the master), creating
the key pair and the node directory when they are not there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..node.config import CONFIG_NAMES
from ..node.personality_commands import personality_commands

DEFAULT_CBDIR = ".crossbar"
#: the config ``edge start`` writes into a node directory that has none
DEFAULT_CONFIG = {"version": 2, "controller": {}, "workers": []}


def _cbdir(value: str | None) -> Path:
    return Path(value or os.environ.get("CROSSBAR_DIR") or DEFAULT_CBDIR).resolve()


def ensure_config(cbdir: Path) -> Path | None:
    """Write the default config into ``cbdir`` if it has no config file; returns its path if written."""
    if any((cbdir / name).exists() for name in CONFIG_NAMES):
        return None
    path = cbdir / CONFIG_NAMES[0]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(DEFAULT_CONFIG, f, indent=4)
        f.write("\n")
    return path


@click.group()
def edge():
    """Edge node: a WAMP router node managed by a master node."""


def _start_with_default_config(command: click.Command) -> click.Command:
    inner = command.callback

    def callback(**kwargs):
        cb = _cbdir(kwargs.get("cbdir"))
        if not cb.is_dir():
            raise click.ClickException(f"node directory {cb} does not exist (create it and the node key with: "
                                       f"wampfabric edge keys --cbdir {cb})")
        if kwargs.get("config") is None:
            try:
                written = ensure_config(cb)
            except OSError as e:
                raise click.ClickException(f"cannot write a default config into {cb}: {e}")
            if written:
                click.echo(f"No node configuration in {cb}: wrote a default one (no workers) to {written}", err=True)
        return inner(**kwargs)

    command.callback = callback
    return command


for _command in personality_commands("edge"):
    if _command.name == "start":
        _command = _start_with_default_config(_command)
    edge.add_command(_command)


@edge.command()
@click.option("--cbdir", default=None, help="Node directory (default: $CROSSBAR_DIR or ./.crossbar).")
def keys(cbdir):
    """Print the node's public key, to pair the node on the master (creates the key pair, key.priv
    mode 0600, and the node directory if needed)."""
    from ..node.keys import KeyError_, load_or_create_node_key

    cb = _cbdir(cbdir)
    try:
        if not cb.exists():
            cb.mkdir(mode=0o700, parents=True)
            click.echo(f"Node directory {cb} created.")
        key, created = load_or_create_node_key(cb)
    except (KeyError_, OSError) as e:
        raise click.ClickException(str(e))
    if created:
        click.echo(f"New node key pair generated: {cb / 'key.priv'} (mode 0600), {cb / 'key.pub'}")
    click.echo(f"public-key-ed25519: {key.public_hex}")
