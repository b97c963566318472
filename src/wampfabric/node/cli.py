"""The ``wampfabric`` command line."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from .. import __version__

DEFAULT_CBDIR = ".crossbar"
TEMPLATES = Path(__file__).parent / "templates"


def _cbdir(value: str | None) -> Path:
    return Path(value or os.environ.get("CROSSBAR_DIR") or DEFAULT_CBDIR).resolve()


def _personality(name: str):
    from ..personality import PERSONALITIES

    try:
        return PERSONALITIES[name]
    except KeyError:
        raise click.UsageError(f"unknown personality '{name}' (available: {', '.join(PERSONALITIES)})")


cbdir_option = click.option(
    "--cbdir", default=None, help="Node directory (default: $CROSSBAR_DIR or ./.crossbar).",
)
config_option = click.option("--config", default=None, help="Config file in the node directory.")
personality_option = click.option(
    "--personality", default=os.environ.get("CROSSBAR_PERSONALITY", "standalone"), show_default=True,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """wampfabric: WAMP routers, node management and fabric master."""


@main.command()
def version():
    """Print versions of wampfabric and its key dependencies."""
    import platform

    def ver(mod):
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:
            return "-"

    try:
        import uvloop  # noqa: F401

        loop = f"uvloop {ver('uvloop')}"
    except ImportError:
        loop = "asyncio"
    rows = [
        ("wampfabric", __version__),
        ("Python", f"{platform.python_version()}/{platform.python_implementation()}"),
        ("Event loop", loop),
        ("picows", ver("picows")),
        ("msgpack", ver("msgpack")),
        ("cbor2", ver("cbor2")),
        ("orjson", ver("orjson")),
        ("cryptography", ver("cryptography")),
        ("Operating system", platform.platform()),
    ]
    for k, v in rows:
        click.echo(f" {k:<17}: {v}")


@main.command()
@click.option("--appdir", default=".", help="Directory to create the node in (gets .crossbar/ and web/).")
def init(appdir):
    """Create a node directory with a default config (realm1, ws on 8080, rawsocket on 8081)."""
    target = Path(appdir).resolve()
    cbdir = target / DEFAULT_CBDIR
    if (cbdir / "config.json").exists() or (cbdir / "config.yaml").exists():
        raise click.ClickException(f"{cbdir} already has a node config; not overwriting it")
    src = TEMPLATES / "default"
    for item in src.rglob("*"):
        rel = item.relative_to(src)
        dest = target / rel
        if item.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest)
    from .keys import load_or_create_node_key

    key, _ = load_or_create_node_key(cbdir)
    click.echo(f"Node directory initialized: {cbdir}")
    click.echo(f"Node public key: {key.public_hex}")
    click.echo(f"Start the node: wampfabric start --cbdir {cbdir}")


@main.command()
@cbdir_option
@config_option
@personality_option
@click.option("--loglevel", default="info", type=click.Choice(["none", "error", "warn", "info", "debug", "trace"]))
def start(cbdir, config, personality, loglevel):
    """Start a node in the foreground."""
    from .logs import setup_logging
    from .node import run_node

    setup_logging(loglevel)
    sys.exit(run_node(_personality(personality), _cbdir(cbdir), config))


@main.command()
@cbdir_option
@config_option
@personality_option
def check(cbdir, config, personality):
    """Check a node directory's config without starting it."""
    from .checkconfig import ConfigError
    from .config import find_config, load_config

    path = find_config(_cbdir(cbdir), config)
    try:
        load_config(path, _personality(personality))
    except ConfigError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    click.echo(f"Node configuration {path} is valid.")


@main.command()
@cbdir_option
def keys(cbdir):
    """Show the node's public key (creating the key pair if needed)."""
    from .keys import KeyError_, load_or_create_node_key

    try:
        key, created = load_or_create_node_key(_cbdir(cbdir))
    except KeyError_ as e:
        raise click.ClickException(str(e))
    if created:
        click.echo("New node key pair generated.")
    click.echo(f"public-key-ed25519: {key.public_hex}")


if __name__ == "__main__":  # pragma: no cover
    main()
