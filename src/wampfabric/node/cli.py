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


def _existing_cbdir(value: str | None) -> Path:
    """The node directory of a command that must not create it (only ``init`` does)."""
    cb = _cbdir(value)
    if not cb.is_dir():
        what = "is not a directory" if cb.exists() else "does not exist"
        raise click.ClickException(f"node directory {cb} {what} (create a node with: wampfabric init)")
    return cb


def _personality(name: str):
    from ..personality import PERSONALITIES, get_personality

    try:
        return get_personality(name)
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


LOGLEVELS = click.Choice(["none", "error", "warn", "info", "debug", "trace"])


@main.command()
@cbdir_option
@config_option
@personality_option
@click.option("--loglevel", default="info", type=LOGLEVELS)
def start(cbdir, config, personality, loglevel):
    """Start a node in the foreground (the node controller and its workers)."""
    from ..common.logs import setup_logging
    from .node import run_node

    cb = _existing_cbdir(cbdir)
    setup_logging(loglevel)
    sys.exit(run_node(_personality(personality), cb, config, loglevel))


@main.command()
@cbdir_option
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the node to exit.")
@click.option("--kill", "kill_", is_flag=True, help="Kill the node at once (SIGKILL) instead of SIGTERM.")
def stop(cbdir, timeout, kill_):
    """Stop the node running from a node directory (SIGTERM, then wait for it)."""
    import signal
    import time

    import psutil

    from . import pidfile

    cb = _existing_cbdir(cbdir)
    verdict = pidfile.inspect(pidfile.read(cb), cb)
    if verdict.state == pidfile.FOREIGN:
        click.echo(f"Not stopping PID {verdict.pid}: {verdict.reason}. The pid file {pidfile.path(cb)} does not "
                   f"name this directory's node; check that no node runs from {cb}, then remove the pid file.",
                   err=True)
        sys.exit(1)
    if verdict.state != pidfile.RUNNING:
        if verdict.state == pidfile.STALE:
            _remove_stale(cb, verdict)
        click.echo(f"No node running from node directory {cb}", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    pid = verdict.pid
    proc = verdict.process  # psutil checks it is still this process before each signal

    def gone(within: float) -> bool:
        # a zombie has exited (its parent, e.g. a shell or a test, has not reaped it yet)
        deadline = time.monotonic() + within
        while True:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    click.echo(f"Stopping node (PID {pid}) ..")
    try:
        proc.send_signal(signal.SIGKILL if kill_ else signal.SIGTERM)
    except psutil.NoSuchProcess:
        pass  # it has just exited
    if not gone(timeout):
        click.echo(f"Node (PID {pid}) did not exit within {timeout:.0f}s: killing it", err=True)
        proc.kill()  # its workers die with it (parent-death signal, end of their pipes)
        if not gone(10):
            raise click.ClickException(f"node process {pid} does not exit")
    # a killed node cannot remove its pid file
    after = pidfile.inspect(pidfile.read(cb), cb)
    if after.state == pidfile.STALE and after.pid in (pid, None):
        try:
            pidfile.path(cb).unlink()
        except FileNotFoundError:
            pass
    click.echo("Node stopped")


EXIT_NOT_RUNNING = 3  # LSB: "program is not running"


def _remove_stale(cb: Path, verdict) -> None:
    from . import pidfile

    try:
        pidfile.path(cb).unlink()
    except OSError:
        return
    click.echo(f"Removed stale pid file {pidfile.path(cb)} ({verdict.reason})", err=True)


@main.command()
@cbdir_option
@config_option
@personality_option
def status(cbdir, config, personality):
    """Show whether a node runs from a node directory (and its workers, via the management socket)."""
    from . import pidfile

    cb = _existing_cbdir(cbdir)
    info = pidfile.read(cb)
    verdict = pidfile.inspect(info, cb)
    alive = verdict.state == pidfile.RUNNING
    if verdict.state == pidfile.FOREIGN:
        click.echo(f"The pid file {pidfile.path(cb)} names PID {verdict.pid}, but {verdict.reason}", err=True)
    sock = _management_socket(cb, config, personality) if alive else None
    if alive and sock is not None and sock.is_socket():
        import asyncio

        try:
            res = asyncio.run(_status_over_socket(str(sock)))
        except Exception as e:
            click.echo(f"Node running (PID {info['pid']}), but its management socket {sock} failed: {e}")
            sys.exit(0)
        status_, workers = res
        click.echo(f"Node '{status_.get('node_id')}' running (PID {status_['controller_pid']}), "
                   f"started {status_['started']}, {status_['running_workers']} worker(s)")
        click.echo(f"  directory:  {status_['directory']}")
        click.echo(f"  public key: {status_['pubkey']}")
        for w in workers:
            click.echo(f"  worker {w['id']:<16} {w['type']:<10} {w['status']:<9} pid {w['pid']}")
        sys.exit(0)
    if alive:
        click.echo(f"Node running from node directory {cb} (PID {info['pid']})")
        sys.exit(0)
    click.echo(f"No node running from node directory {cb}")
    sys.exit(EXIT_NOT_RUNNING)


def _management_socket(cbdir: Path, config_name, personality) -> Path | None:
    from ..config.base import ConfigError
    from .config import find_config, load_config
    from .management import socket_path

    try:
        cfg = load_config(find_config(cbdir, config_name), _personality(personality), cbdir, node_checks=False)
    except ConfigError:
        return None
    tcfg = cfg.get("controller", {}).get("transport")
    return socket_path(cbdir, tcfg) if tcfg else None


async def _status_over_socket(path: str):
    from ..client.rawsocket import connect_rawsocket

    s = await connect_rawsocket("crossbar", path=path)
    try:
        status_ = await s.call("crossbar.get_status")
        workers = [await s.call("crossbar.get_worker", wid) for wid in await s.call("crossbar.get_workers")]
    finally:
        await s.leave()
    return status_, workers


@main.command()
@cbdir_option
@config_option
@personality_option
def check(cbdir, config, personality):
    """Check a node directory's config without starting it (everything start would refuse that
    the config and the node directory tell: all errors, one line each)."""
    from ..config.base import ConfigError, config_errors
    from .config import find_config, load_config

    cb = _existing_cbdir(cbdir)
    path = find_config(cb, config)
    try:
        load_config(path, _personality(personality), cb)
    except ConfigError as e:
        for err in config_errors(e):
            click.echo(f"Error: {err}", err=True)
        sys.exit(1)
    click.echo(f"Node configuration {path} is valid.")


@main.command()
@cbdir_option
def keys(cbdir):
    """Show the node's public key (creating the key pair if needed; the node directory must exist)."""
    from .keys import KeyError_, load_or_create_node_key

    try:
        key, created = load_or_create_node_key(_existing_cbdir(cbdir))
    except KeyError_ as e:
        raise click.ClickException(str(e))
    if created:
        click.echo("New node key pair generated.")
    click.echo(f"public-key-ed25519: {key.public_hex}")


@main.command()
def keygen():
    """Generate a new Ed25519 key pair (e.g. for a cryptosign client) and print it as hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption()).hex()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    click.echo("New Ed25519 key pair generated (keep the private key secret):")
    click.echo(f"public-key-ed25519: {pub}")
    click.echo(f"private-key-ed25519: {priv}")


@main.command("_exec_worker", hidden=True, context_settings={"ignore_unknown_options": True,
                                                             "allow_extra_args": True})
@click.pass_context
def exec_worker(ctx):
    """Run a native worker (used by the node controller when running frozen)."""
    from ..worker.main import main as worker_main

    sys.exit(worker_main(ctx.args))


if __name__ == "__main__":  # pragma: no cover
    main()
