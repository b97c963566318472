"""``wampfabric master ...``: run a master node (manages edge nodes in management realms).

``master init [--cbdir DIR] [--listen HOST:PORT]`` creates the node directory: the master's key
pair (``key.priv`` mode 0600, ``key.pub``) and a Crossbar.io version-2 ``config.json`` (see
``master_config``); ``master start|stop|status|check`` are the node's commands with personality
``master`` (``start`` first checks that the directory is a master's).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import click

from ..node.cli import _cbdir
from ..node.personality_commands import personality_commands
from .dbtool import db
from .usagetool import usage

DEFAULT_LISTEN = "127.0.0.1:9000"
GLOBAL_REALM = "com.crossbario.fabric"
AUTHENTICATOR = "wampfabric.master.authenticator.create"
# the Unix socket of the master's own backend components (the change engine), in the node directory
BACKEND_SOCKET = "sock2"
BACKEND_TRANSPORT = {"type": "rawsocket", "serializer": "cbor", "endpoint": {"type": "unix", "path": BACKEND_SOCKET}}


def master_config(host: str, port: int) -> dict:
    """The master's config: node ``center1``, its databases' sizes (``controller.fabric-center``);
    router worker ``cfrouter1`` with the global realm, a ``web`` transport (``/ws``: WAMP-WebSocket,
    cryptosign through the master's in-process authenticator, nothing else), a ``rawsocket``
    transport on the Unix socket ``sock2`` (mode 0600; cryptosign too: the master's own key as role
    ``backend``) and the domain controller as a router component; the container worker
    ``change_engine`` (skipped when ``CROSSBAR_DISABLE_CE`` is set), whose component connects
    through ``sock2``."""
    from .roles import GLOBAL_ROLES
    from .schema import GLOBAL_DB_MAXSIZE, MREALM_DB_MAXSIZE

    return {
        "version": 2,
        "controller": {"id": "center1",
                       "fabric-center": {"database": {"maxsize": GLOBAL_DB_MAXSIZE,
                                                      "mrealm_maxsize": MREALM_DB_MAXSIZE}}},
        "workers": [{
            "id": "cfrouter1",
            "type": "router",
            "realms": [{"id": "fabric", "name": GLOBAL_REALM, "roles": GLOBAL_ROLES}],
            "transports": [{
                "id": "web1",
                "type": "web",
                "endpoint": {"type": "tcp", "interface": host, "port": port},
                "paths": {
                    "ws": {
                        "type": "websocket",
                        "serializers": ["cbor", "msgpack", "json"],
                        "options": {"auto_ping_interval": 10000, "auto_ping_timeout": 5000},
                        "auth": {"cryptosign": {"type": "function", "create": AUTHENTICATOR}},
                    },
                },
            }, {
                "id": "backend",
                "type": "rawsocket",
                "endpoint": {"type": "unix", "path": BACKEND_SOCKET},
                "serializers": ["cbor"],
                "auth": {"cryptosign": {"type": "function", "create": AUTHENTICATOR}},
            }],
            "components": [{
                "id": "domain",
                "type": "class",
                "classname": "wampfabric.master.domain.DomainController",
                "realm": GLOBAL_REALM,
            }],
        }, {
            "id": "change_engine",
            "type": "container",
            "options": {"disabled": "CROSSBAR_DISABLE_CE"},
            "components": [{
                "id": "change_engine",
                "type": "class",
                "classname": "wampfabric.master.changeengine.ChangeEngine",
                "realm": GLOBAL_REALM,
                "transport": BACKEND_TRANSPORT,
                "extra": {"transport": BACKEND_TRANSPORT},
            }],
        }],
    }


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        if not sep or not host:
            raise ValueError
        ipaddress.ip_address(host)
        port_no = int(port)
        if not 0 < port_no < 65536:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"'{value}': expected IP-ADDRESS:PORT, e.g. 127.0.0.1:9000 (port 1-65535)")
    return host, port_no


@click.group()
def master():
    """Master node: manages edge nodes in management realms."""


@master.command()
@click.option("--cbdir", default=None, help="Node directory to create (default: $CROSSBAR_DIR or ./.crossbar).")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True,
              help="IP address and port of the master's WebSocket listener (path /ws). Loopback unless you "
                   "say otherwise.")
def init(cbdir, listen):
    """Create a master node directory: key pair, config.json (global realm, listener, components)."""
    from ..node.keys import load_or_create_node_key

    host, port = parse_listen(listen)
    cb = _cbdir(cbdir)
    if (cb / "config.json").exists() or (cb / "config.yaml").exists():
        raise click.ClickException(f"{cb} already has a node config; not overwriting it")
    try:
        cb.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f"cannot create {cb}: {e.strerror}")
    key, _ = load_or_create_node_key(cb)
    tmp = cb / ".config.json.tmp"
    tmp.write_text(json.dumps(master_config(host, port), indent=2) + "\n")
    tmp.replace(cb / "config.json")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Master node directory initialized: {cb}")
    click.echo(f"Master public key: {key.public_hex}")
    click.echo(f"Listens on: ws://{shown}:{port}/ws")
    click.echo(f"Start it: CROSSBAR_FABRIC_SUPERUSER=~/.crossbar/default.pub wampfabric master start --cbdir {cb}")


def _is_master_dir(cb: Path) -> bool:
    return cb.is_dir() and any((cb / n).exists() for n in ("config.json", "config.yaml"))


for _command in personality_commands("master"):
    if _command.name == "start":
        _base_start = _command

        def _start(_base=_base_start, **kwargs):
            cb = _cbdir(kwargs.get("cbdir"))
            if not _is_master_dir(cb):
                raise click.ClickException(
                    f"{cb} is not a master node directory: create it with "
                    f"'wampfabric master init --cbdir {cb}' first")
            return _base.callback(**kwargs)

        _command = click.Command("start", callback=_start, params=_base_start.params, help=_base_start.help)
    master.add_command(_command)
master.add_command(db)
master.add_command(usage)
