"""The shell's commands: ``<verb> <noun> [arguments] [--options]``, one table (``COMMANDS``) that
the one-shot mode (``wampfabric shell list nodes``), the interactive mode (completion, help) and
docs/shell.md are made from.

A command is an async function ``run(ctx, **values) -> result`` registered with ``@command``; its
``Arg`` list says what each positional argument is (``kind`` names what completion offers:
``mrealm``, ``node``, ``worker``, ``router-realm``, ``router-transport``, ``container-component``,
or None), and ``Opt`` its options.  ``parse(tokens)`` turns the words of a command line into the
command and its values (ShellError naming what is wrong); ``names(ctx, kind, values)`` fetches the
live names of a kind from the master for completion.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from .context import GLOBAL, ShellContext, ShellError
from .profile import HEX_KEY, ProfileError, read_public_key_hex

M = "crossbarfabriccenter.mrealm."
D = "crossbarfabriccenter.domain."
R = "crossbarfabriccenter.remote."

WORKER_TYPES = ("router", "container", "guest")
ROLE_NAMES = ("owner", "admin", "user", "guest")


class UsageError(ShellError):
    """A command line that cannot be parsed (the one-shot mode exits with 2)."""


@dataclass
class Arg:
    name: str
    help: str
    kind: str | None = None  # what completion offers for it (see the module docstring)
    optional: bool = False


@dataclass
class Opt:
    name: str  # --name on the command line, name in the values (dashes become underscores)
    help: str
    flag: bool = False  # a switch without a value
    json: bool = False  # its value is JSON (an object or list)
    default: Any = None
    required: bool = False  # the command cannot run without it


@dataclass
class Command:
    verb: str
    noun: str
    help: str
    run: Callable[..., Awaitable[Any]]
    args: list[Arg] = field(default_factory=list)
    opts: list[Opt] = field(default_factory=list)
    scope: str = "mrealm"  # "global" (com.crossbario.fabric) or "mrealm" (needs --realm)
    columns: list[str] | None = None  # the table's columns when the result is a list of objects

    @property
    def usage(self) -> str:
        words = [self.verb, self.noun]
        words += [f"[{a.name.upper()}]" if a.optional else a.name.upper() for a in self.args]
        words += [f"[--{o.name}]" if o.flag else f"--{o.name} {o.name.upper()}" if o.required
                  else f"[--{o.name} {o.name.upper()}]" for o in self.opts]
        return " ".join(words)


COMMANDS: dict[tuple[str, str], Command] = {}


def command(verb: str, noun: str, help: str, args=(), opts=(), scope: str = "mrealm", columns=None):
    def register(fn):
        COMMANDS[(verb, noun)] = Command(verb, noun, help, fn, list(args), list(opts), scope, columns)
        return fn
    return register


def verbs() -> list[str]:
    return sorted({v for v, _ in COMMANDS})


def nouns(verb: str) -> list[str]:
    return sorted(n for v, n in COMMANDS if v == verb)


#: the options every command line may carry, anywhere in it
GLOBAL_OPTS = {"--profile": "profile", "--realm": "realm", "--output": "output"}
#: the argument kinds ``select`` can preset (interactive mode; Crossbar.io's shell has the same)
SELECTABLE = ("node", "worker", "transport")


def split_global(words: list[str]) -> tuple[dict, list[str]]:
    """The global options (anywhere in the line) and the remaining words."""
    from .output import FORMATS

    found: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        name, eq, value = w.partition("=")
        if name in GLOBAL_OPTS:
            if not eq:
                i += 1
                if i >= len(words):
                    raise UsageError(f"{name} needs a value")
                value = words[i]
            found[GLOBAL_OPTS[name]] = value
        else:
            rest.append(w)
        i += 1
    if found.get("output", "table") not in FORMATS:
        raise UsageError(f"--output must be one of {', '.join(FORMATS)}, not '{found['output']}'")
    return found, rest


def parse(tokens: list[str], selected: dict | None = None) -> tuple[Command, dict]:
    """The command and its values from the words of a command line.  ``selected`` (kind -> name,
    see SELECTABLE) fills leading arguments of those kinds that the line leaves out: with node
    ``edge1`` and worker ``rw1`` selected, ``list router-realms`` means ``list router-realms edge1
    rw1`` and ``list router-realms rw2`` means ``list router-realms edge1 rw2``."""
    if not tokens:
        raise UsageError(f"a command is a verb and a noun, e.g. `list nodes` (verbs: {', '.join(verbs())})")
    verb = tokens[0]
    if verb not in verbs():
        raise UsageError(f"unknown verb '{verb}' (verbs: {', '.join(verbs())})")
    if len(tokens) < 2:
        raise UsageError(f"'{verb}' needs a noun: {', '.join(nouns(verb))}")
    cmd = COMMANDS.get((verb, tokens[1]))
    if cmd is None:
        raise UsageError(f"unknown command '{verb} {tokens[1]}' ({verb}: {', '.join(nouns(verb))})")
    values: dict[str, Any] = {o.name.replace("-", "_"): o.default for o in cmd.opts}
    positional = []
    opts = {o.name: o for o in cmd.opts}
    rest = tokens[2:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            opt = opts.get(name)
            if opt is None:
                known = ", ".join(f"--{o}" for o in opts) or "none"
                raise UsageError(f"'{cmd.verb} {cmd.noun}' has no option --{name} (options: {known})")
            if opt.flag:
                if eq:
                    raise UsageError(f"--{name} is a switch: it takes no value")
                values[name.replace("-", "_")] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(rest):
                        raise UsageError(f"--{name} needs a value")
                    value = rest[i]
                if opt.json:
                    try:
                        value = json.loads(value)
                    except ValueError as e:
                        raise UsageError(f"--{name}: not JSON: {e}") from None
                    if not isinstance(value, (dict, list)):
                        raise UsageError(f"--{name}: a JSON object is needed, not {json.dumps(value)[:60]}")
                values[name.replace("-", "_")] = value
        else:
            positional.append(tok)
        i += 1
    required = [a for a in cmd.args if not a.optional]
    if selected and len(positional) < len(required):
        missing = len(required) - len(positional)
        preset = []
        for a in cmd.args:
            if len(preset) == missing or a.kind not in SELECTABLE or not selected.get(a.kind):
                break
            preset.append(selected[a.kind])
        positional = preset + positional
    if len(positional) < len(required):
        missing = " ".join(a.name.upper() for a in required[len(positional):])
        raise UsageError(f"'{cmd.verb} {cmd.noun}' needs {missing} (usage: {cmd.usage})")
    if len(positional) > len(cmd.args):
        raise UsageError(f"'{cmd.verb} {cmd.noun}' takes {len(cmd.args)} argument(s), not {len(positional)} "
                         f"(usage: {cmd.usage})")
    for o in cmd.opts:
        if o.required and values.get(o.name.replace("-", "_")) is None:
            raise UsageError(f"'{cmd.verb} {cmd.noun}' needs --{o.name} {o.name.upper()} (usage: {cmd.usage})")
    for arg, value in zip(cmd.args, positional):
        values[arg.name.replace("-", "_")] = value
    for arg in cmd.args[len(positional):]:
        values.setdefault(arg.name.replace("-", "_"), None)
    return cmd, values


async def execute(ctx: ShellContext, cmd: Command, values: dict) -> Any:
    """Run a parsed command (scope ``global`` / ``mrealm``: on the master; ``local``: here)."""
    if cmd.scope == "mrealm":
        ctx.need_realm()
    return await cmd.run(ctx, **values)



# -- helpers ----------------------------------------------------------------------------------------

def is_oid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _object(value, option: str, **defaults) -> dict:
    """``value`` (a JSON option) as an object, with ``defaults`` for keys it lacks."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise UsageError(f"--{option}: a JSON object is needed")
    return {**defaults, **value}


async def _each(ctx, ids, procedure, *prefix) -> list:
    """The records of ``ids`` (``procedure(*prefix, id)``), one call each."""
    return [await ctx.call(ctx.realm, procedure, *prefix, i) for i in ids or []]


async def _node_record(ctx, node: str) -> dict:
    if is_oid(node):
        return await ctx.call(ctx.realm, M + "get_node", node)
    return await ctx.call(ctx.realm, M + "get_node_by_authid", node)


# -- live names (completion) ------------------------------------------------------------------------

async def names(ctx: ShellContext, kind: str | None, values: dict) -> list[str]:
    """The names of ``kind`` the master knows now (``values``: the arguments typed before, e.g.
    the node of a worker); [] when there is nothing to offer or the master cannot be asked."""
    node, worker = values.get("node"), values.get("worker")
    try:
        if kind == "worker-type":
            return list(WORKER_TYPES)
        if kind == "mrealm":
            return sorted(await ctx.call(GLOBAL, M + "list_mrealms", return_names=True) or [])
        if not ctx.realm:
            return []
        if kind == "node":
            return sorted(await ctx.call(ctx.realm, M + "get_nodes", return_names=True) or [])
        if kind in NAME_SOURCES:
            return sorted(await NAME_SOURCES[kind](ctx, values) or [])
        if kind == "worker" and node:
            return sorted(await ctx.call(ctx.realm, R + "node.get_workers", node) or [])
        if not (node and worker):
            return []
        if kind == "router-realm":
            return sorted(await ctx.call(ctx.realm, R + "router.get_router_realms", node, worker) or [])
        if kind == "router-role" and values.get("realm"):
            return sorted(await ctx.call(ctx.realm, R + "router.get_router_realm_roles", node, worker,
                                         values["realm"]) or [])
        if kind == "router-transport":
            return sorted(await ctx.call(ctx.realm, R + "router.get_router_transports", node, worker) or [])
        if kind == "container-component":
            return sorted(await ctx.call(ctx.realm, R + "container.get_components", node, worker) or [])
    except ShellError:
        return []
    return []


#: completion of names that other command modules add (kind -> async fetch(ctx, values))
NAME_SOURCES: dict[str, Callable[..., Awaitable[list[str]]]] = {}


# -- arguments shared by many commands --------------------------------------------------------------

NODE = Arg("node", "the node's name or oid", kind="node")
WORKER = Arg("worker", "the worker's id", kind="worker")
NAMES = Opt("names", "ids only", flag=True)


# -- the master (global realm) ----------------------------------------------------------------------

@command("show", "status", "the master's status (with --realm: the mrealm's)", scope="global")
async def show_status(ctx):
    if ctx.realm:
        return await ctx.call(ctx.realm, M + "get_status")
    return await ctx.call(GLOBAL, D + "get_status")


@command("show", "version", "the master's software version", scope="global")
async def show_version(ctx):
    return await ctx.call(GLOBAL, D + "get_version")


async def versions(ctx) -> dict:
    """The shell's software versions, and the master's (or why it could not be asked)."""
    import platform

    from .. import __version__

    out = {"shell": {"product": "wampfabric", "version": __version__, "python": platform.python_version()}}
    try:
        out["master"] = await ctx.call(GLOBAL, D + "get_version")
    except ShellError as e:
        out["master"] = f"not reachable: {e}"
    return out


@command("show", "license", "the master's license", scope="global")
async def show_license(ctx):
    return await ctx.call(GLOBAL, D + "get_license")


@command("list", "mrealms", "the management realms you have a role on", scope="global",
         opts=[Opt("names", "names instead of the records", flag=True)], columns=["name", "oid", "created", "owner"])
async def list_mrealms(ctx, names=False):
    if names:
        return sorted(await ctx.call(GLOBAL, M + "list_mrealms", return_names=True))
    oids = await ctx.call(GLOBAL, M + "list_mrealms")
    return [await ctx.call(GLOBAL, M + "get_mrealm", oid) for oid in oids]


@command("show", "mrealm", "a management realm", scope="global",
         args=[Arg("mrealm", "the mrealm's name or oid", kind="mrealm")])
async def show_mrealm(ctx, mrealm):
    if is_oid(mrealm):
        return await ctx.call(GLOBAL, M + "get_mrealm", mrealm)
    return await ctx.call(GLOBAL, M + "get_mrealm_by_name", mrealm)


@command("create", "mrealm", "a new management realm; you become its owner", scope="global",
         args=[Arg("mrealm", "its name: a lowercase letter, then lowercase letters, digits, '_'")],
         opts=[Opt("label", "a label"), Opt("description", "a description")])
async def create_mrealm(ctx, mrealm, label=None, description=None):
    record = {"name": mrealm}
    if label is not None:
        record["label"] = label
    if description is not None:
        record["description"] = description
    return await ctx.call(GLOBAL, M + "create_mrealm", record)


@command("delete", "mrealm", "a management realm (refused while nodes are paired into it, unless --cascade)",
         scope="global", args=[Arg("mrealm", "the mrealm's name or oid", kind="mrealm")],
         opts=[Opt("cascade", "unpair its nodes first", flag=True)])
async def delete_mrealm(ctx, mrealm, cascade=False):
    if is_oid(mrealm):
        return await ctx.call(GLOBAL, M + "delete_mrealm", mrealm, cascade=cascade)
    return await ctx.call(GLOBAL, M + "delete_mrealm_by_name", mrealm, cascade=cascade)


@command("pair", "node", "pair a node's key into a management realm under a name (you must own the mrealm)",
         scope="global",
         args=[Arg("pubkey", "the node's public key: 64 hex digits or its key file (key.pub)"),
               Arg("mrealm", "the mrealm's name", kind="mrealm"), Arg("node", "the node's name in the mrealm")],
         opts=[Opt("authextra", "JSON object the node gets in WELCOME's authextra", json=True)])
async def pair_node(ctx, pubkey, mrealm, node, authextra=None):
    if HEX_KEY.fullmatch(pubkey):
        key = pubkey.lower()
    elif Path(pubkey).expanduser().exists():
        try:
            key = read_public_key_hex(Path(pubkey).expanduser())
        except ProfileError as e:
            raise ShellError(str(e)) from None
    else:
        raise ShellError(f"'{pubkey}' is neither a public key (64 hex digits) nor a key file")
    if authextra is not None and not isinstance(authextra, dict):
        raise UsageError("--authextra: a JSON object is needed")
    return await ctx.call(GLOBAL, M + "pair_node", key, mrealm, node, authextra)


@command("unpair", "node", "unpair a node (its session is closed); a name is looked up in --realm, or in "
         "every mrealm you have a role on", scope="global", args=[Arg("node", "the node's name or oid", kind="node")])
async def unpair_node(ctx, node):
    if is_oid(node):
        return await ctx.call(GLOBAL, M + "unpair_node", node)
    mrealm = ctx.realm
    if mrealm is None:
        found = [m for m, n in await ctx.call(GLOBAL, M + "list_nodes", return_names=True) if n == node]
        if not found:
            raise ShellError(f"no node '{node}' in the management realms you have a role on")
        if len(found) > 1:
            raise ShellError(f"node '{node}' is paired into {', '.join(sorted(found))}: say which with --realm")
        mrealm = found[0]
    return await ctx.call(GLOBAL, M + "unpair_node_by_name", mrealm, node)


@command("set", "user-roles", "a user's roles on a management realm (owner only); 'none' removes them",
         scope="global",
         args=[Arg("mrealm", "the mrealm's name or oid", kind="mrealm"), Arg("user", "the user's email or oid"),
               Arg("roles", f"comma-separated: {', '.join(ROLE_NAMES)}, or none")])
async def set_user_roles(ctx, mrealm, user, roles):
    wanted = [] if roles.strip().lower() in ("none", "") else [r.strip() for r in roles.split(",") if r.strip()]
    bad = [r for r in wanted if r not in ROLE_NAMES]
    if bad:
        raise UsageError(f"unknown role(s) {', '.join(bad)} (roles: {', '.join(ROLE_NAMES)}, or none)")
    return await ctx.call(GLOBAL, M + "set_roles_on_mrealm_for_user", mrealm, user, wanted)


# -- nodes (an mrealm) ------------------------------------------------------------------------------

@command("list", "nodes", "the nodes paired into the mrealm",
         opts=[Opt("online", "only the nodes online now", flag=True), Opt("names", "names only", flag=True)],
         columns=["authid", "oid", "status", "heartbeat", "timestamp"])
async def list_nodes(ctx, online=False, names=False):
    status = "online" if online else None
    if names:
        return sorted(await ctx.call(ctx.realm, M + "get_nodes", status, return_names=True))
    oids = await ctx.call(ctx.realm, M + "get_nodes", status)
    return [await ctx.call(ctx.realm, M + "get_node", oid) for oid in oids]


@command("show", "node", "a node: its pairing, status, last heartbeat and workers", args=[NODE])
async def show_node(ctx, node):
    return await _node_record(ctx, node)


# -- workers ------------------------------------------------------------------------------------------

WORKER_COLUMNS = ["id", "type", "status", "pid", "started", "who"]


@command("list", "workers", "the workers of a node", args=[NODE], opts=[NAMES], columns=WORKER_COLUMNS)
async def list_workers(ctx, node, names=False):
    ids = await ctx.call(ctx.realm, R + "node.get_workers", node)
    if names:
        return ids
    return await _each(ctx, ids, R + "node.get_worker", node)


@command("show", "worker", "a worker of a node", args=[NODE, WORKER])
async def show_worker(ctx, node, worker):
    return await ctx.call(ctx.realm, R + "node.get_worker", node, worker)


async def _start_worker(ctx, node, worker, worker_type, options):
    if worker_type not in WORKER_TYPES:
        raise UsageError(f"unknown worker type '{worker_type}' (types: {', '.join(WORKER_TYPES)})")
    if worker_type == "guest" and not options:
        raise UsageError("a guest worker needs --options: its worker config, e.g. "
                         "'{\"executable\": \"/usr/bin/python3\", \"arguments\": [\"app.py\"]}'")
    options = _object(options, "options")
    with ctx.progress(f"starting {worker_type} worker '{worker}' on node '{node}' .."):
        return await ctx.call(ctx.realm, R + "node.start_worker", node, worker, worker_type, options)


WORKER_OPTIONS = Opt("options", "JSON: the worker's options (a guest: its worker config: executable, arguments ...)",
                     json=True)


@command("start", "worker", "start a worker (router, container or guest) on a node",
         args=[NODE, Arg("worker", "the new worker's id"), Arg("type", "router, container or guest", kind="worker-type")],
         opts=[WORKER_OPTIONS])
async def start_worker(ctx, node, worker, type, options=None):
    return await _start_worker(ctx, node, worker, type, options)


@command("start", "router-worker", "start a router worker on a node (start worker NODE WORKER router)",
         args=[NODE, Arg("worker", "the new worker's id")], opts=[WORKER_OPTIONS])
async def start_router_worker(ctx, node, worker, options=None):
    return await _start_worker(ctx, node, worker, "router", options)


@command("start", "container-worker", "start a container worker on a node (start worker NODE WORKER container)",
         args=[NODE, Arg("worker", "the new worker's id")], opts=[WORKER_OPTIONS])
async def start_container_worker(ctx, node, worker, options=None):
    return await _start_worker(ctx, node, worker, "container", options)


@command("start", "guest-worker", "start a guest worker on a node: --options names its executable, arguments ... "
         "(start worker NODE WORKER guest)", args=[NODE, Arg("worker", "the new worker's id")],
         opts=[Opt("options", "the guest's options (executable, arguments, options.workdir ...), JSON", json=True,
                   required=True)])
async def start_guest_worker(ctx, node, worker, options=None):
    return await _start_worker(ctx, node, worker, "guest", options)


@command("stop", "worker", "stop a worker of a node", args=[NODE, WORKER],
         opts=[Opt("kill", "SIGKILL instead of a clean shutdown", flag=True)])
async def stop_worker(ctx, node, worker, kill=False):
    with ctx.progress(f"stopping worker '{worker}' on node '{node}' .."):
        if kill:
            return await ctx.call(ctx.realm, R + "node.stop_worker", node, worker, True)
        return await ctx.call(ctx.realm, R + "node.stop_worker", node, worker)


# -- router realms and roles ------------------------------------------------------------------------

REALM = Arg("realm", "the realm's id in the router worker", kind="router-realm")


@command("list", "router-realms", "the realms of a router worker", args=[NODE, WORKER], opts=[NAMES],
         columns=["id", "name", "roles", "sessions", "created"])
async def list_router_realms(ctx, node, worker, names=False):
    ids = await ctx.call(ctx.realm, R + "router.get_router_realms", node, worker)
    if names:
        return ids
    return await _each(ctx, ids, R + "router.get_router_realm", node, worker)


@command("show", "router-realm", "a realm of a router worker", args=[NODE, WORKER, REALM])
async def show_router_realm(ctx, node, worker, realm):
    return await ctx.call(ctx.realm, R + "router.get_router_realm", node, worker, realm)


@command("start", "router-realm", "start a realm in a router worker; without --config only the realm's name "
         "and NO roles: nobody can join it until you start a role (secure by default)",
         args=[NODE, WORKER, Arg("realm", "the new realm's id (also its name unless --config names it)")],
         opts=[Opt("config", "JSON: the realm config (name, roles, store ...)", json=True)])
async def start_router_realm(ctx, node, worker, realm, config=None):
    config = _object(config, "config", name=realm)
    return await ctx.call(ctx.realm, R + "router.start_router_realm", node, worker, realm, config)


@command("stop", "router-realm", "stop a realm of a router worker (its sessions are closed)",
         args=[NODE, WORKER, REALM])
async def stop_router_realm(ctx, node, worker, realm):
    return await ctx.call(ctx.realm, R + "router.stop_router_realm", node, worker, realm)


ROLE = Arg("role", "the role's id in the realm", kind="router-role")


@command("list", "router-roles", "the roles of a realm of a router worker", args=[NODE, WORKER, REALM],
         opts=[NAMES], columns=["id", "name", "config"])
async def list_router_roles(ctx, node, worker, realm, names=False):
    ids = await ctx.call(ctx.realm, R + "router.get_router_realm_roles", node, worker, realm)
    if names:
        return ids
    return await _each(ctx, ids, R + "router.get_router_realm_role", node, worker, realm)


@command("show", "router-role", "a role of a realm of a router worker", args=[NODE, WORKER, REALM, ROLE])
async def show_router_role(ctx, node, worker, realm, role):
    return await ctx.call(ctx.realm, R + "router.get_router_realm_role", node, worker, realm, role)


@command("start", "router-role", "start a role on a realm of a router worker",
         args=[NODE, WORKER, REALM, Arg("role", "the new role's id (also its name unless --config names it)")],
         opts=[Opt("config", "JSON: the role config (name, permissions or authorizer)", json=True, required=True)])
async def start_router_role(ctx, node, worker, realm, role, config=None):
    config = _object(config, "config", name=role)
    return await ctx.call(ctx.realm, R + "router.start_router_realm_role", node, worker, realm, role, config)


@command("stop", "router-role", "stop a role of a realm of a router worker", args=[NODE, WORKER, REALM, ROLE])
async def stop_router_role(ctx, node, worker, realm, role):
    return await ctx.call(ctx.realm, R + "router.stop_router_realm_role", node, worker, realm, role)


# -- router transports ------------------------------------------------------------------------------

TRANSPORT = Arg("transport", "the transport's id in the router worker", kind="router-transport")


@command("list", "router-transports", "the transports of a router worker", args=[NODE, WORKER], opts=[NAMES],
         columns=["id", "type", "state", "listening_since", "config"])
async def list_router_transports(ctx, node, worker, names=False):
    ids = await ctx.call(ctx.realm, R + "router.get_router_transports", node, worker)
    if names:
        return ids
    return await _each(ctx, ids, R + "router.get_router_transport", node, worker)


@command("show", "router-transport", "a transport of a router worker", args=[NODE, WORKER, TRANSPORT])
async def show_router_transport(ctx, node, worker, transport):
    return await ctx.call(ctx.realm, R + "router.get_router_transport", node, worker, transport)


@command("start", "router-transport", "start a listening transport in a router worker",
         args=[NODE, WORKER, Arg("transport", "the new transport's id")],
         opts=[Opt("config", "JSON: the transport config (type, endpoint, serializers ...)", json=True,
                   required=True)])
async def start_router_transport(ctx, node, worker, transport, config=None):
    config = _object(config, "config")
    with ctx.progress(f"starting transport '{transport}' in worker '{worker}' on node '{node}' .."):
        return await ctx.call(ctx.realm, R + "router.start_router_transport", node, worker, transport, config)


@command("stop", "router-transport", "stop a transport of a router worker", args=[NODE, WORKER, TRANSPORT])
async def stop_router_transport(ctx, node, worker, transport):
    return await ctx.call(ctx.realm, R + "router.stop_router_transport", node, worker, transport)


# -- container components ---------------------------------------------------------------------------

COMPONENT = Arg("component", "the component's id in the container worker", kind="container-component")


@command("list", "container-components", "the components of a container worker", args=[NODE, WORKER],
         opts=[NAMES], columns=["id", "status", "started", "failed", "error"])
async def list_container_components(ctx, node, worker, names=False):
    ids = await ctx.call(ctx.realm, R + "container.get_components", node, worker)
    if names:
        return ids
    return await _each(ctx, ids, R + "container.get_component", node, worker)


@command("show", "container-component", "a component of a container worker", args=[NODE, WORKER, COMPONENT])
async def show_container_component(ctx, node, worker, component):
    return await ctx.call(ctx.realm, R + "container.get_component", node, worker, component)


@command("start", "container-component", "start a component in a container worker",
         args=[NODE, WORKER, Arg("component", "the new component's id")],
         opts=[Opt("config", "JSON: the component config (type class/function, classname, realm, transport ...)",
                   json=True, required=True)])
async def start_container_component(ctx, node, worker, component, config=None):
    config = _object(config, "config")
    with ctx.progress(f"starting component '{component}' in worker '{worker}' on node '{node}' .."):
        return await ctx.call(ctx.realm, R + "container.start_component", node, worker, component, config)


@command("stop", "container-component", "stop a component of a container worker", args=[NODE, WORKER, COMPONENT])
async def stop_container_component(ctx, node, worker, component):
    return await ctx.call(ctx.realm, R + "container.stop_component", node, worker, component)


@command("export", "database", "a database (LMDB, e.g. <master>/.db-controller) exported to a JSON file, "
         "read-only beside a running master; keys in hex (`wampfabric master db export` decodes the master's)",
         args=[Arg("dbpath", "the database directory (holds data.mdb)")], scope="local",
         opts=[Opt("filename", "the JSON file to write (default: <database name>.json)"),
               Opt("tables", "only these tables, comma-separated"),
               Opt("include-indexes", "also the index tables (<table>/<index>)", flag=True)])
async def export_database(ctx, dbpath, filename=None, tables=None, include_indexes=False):
    from .dbexport import export_database as export

    wanted = [t for t in (tables or "").split(",") if t] or None
    return export(dbpath, filename, wanted, bool(include_indexes))

