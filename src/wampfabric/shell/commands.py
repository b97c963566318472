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
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from .context import GLOBAL, ShellContext, ShellError

M = "crossbarfabriccenter.mrealm."
D = "crossbarfabriccenter.domain."
R = "crossbarfabriccenter.remote."


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
        words += [f"[--{o.name}]" if o.flag else f"[--{o.name} {o.name.upper()}]" for o in self.opts]
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


def parse(tokens: list[str]) -> tuple[Command, dict]:
    """The command and its values from the words of a command line."""
    if not tokens:
        raise ShellError(f"a command is a verb and a noun, e.g. `list nodes` (verbs: {', '.join(verbs())})")
    verb = tokens[0]
    if verb not in verbs():
        raise ShellError(f"unknown verb '{verb}' (verbs: {', '.join(verbs())})")
    if len(tokens) < 2:
        raise ShellError(f"'{verb}' needs a noun: {', '.join(nouns(verb))}")
    cmd = COMMANDS.get((verb, tokens[1]))
    if cmd is None:
        raise ShellError(f"unknown command '{verb} {tokens[1]}' ({verb}: {', '.join(nouns(verb))})")
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
                raise ShellError(f"'{cmd.verb} {cmd.noun}' has no option --{name} (options: {known})")
            if opt.flag:
                if eq:
                    raise ShellError(f"--{name} is a switch: it takes no value")
                values[name.replace("-", "_")] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(rest):
                        raise ShellError(f"--{name} needs a value")
                    value = rest[i]
                if opt.json:
                    try:
                        value = json.loads(value)
                    except ValueError as e:
                        raise ShellError(f"--{name}: not JSON: {e}") from None
                values[name.replace("-", "_")] = value
        else:
            positional.append(tok)
        i += 1
    required = [a for a in cmd.args if not a.optional]
    if len(positional) < len(required):
        missing = " ".join(a.name.upper() for a in required[len(positional):])
        raise ShellError(f"'{cmd.verb} {cmd.noun}' needs {missing} (usage: {cmd.usage})")
    if len(positional) > len(cmd.args):
        raise ShellError(f"'{cmd.verb} {cmd.noun}' takes {len(cmd.args)} argument(s), not {len(positional)} "
                         f"(usage: {cmd.usage})")
    for arg, value in zip(cmd.args, positional):
        values[arg.name.replace("-", "_")] = value
    for arg in cmd.args[len(positional):]:
        values.setdefault(arg.name.replace("-", "_"), None)
    return cmd, values


async def execute(ctx: ShellContext, cmd: Command, values: dict) -> Any:
    if cmd.scope == "mrealm":
        ctx.need_realm()
    return await cmd.run(ctx, **values)


# -- live names (completion) ------------------------------------------------------------------------

async def names(ctx: ShellContext, kind: str | None, values: dict) -> list[str]:
    """The names of ``kind`` the master knows now (``values``: the arguments typed before, e.g.
    the node of a worker); [] when there is nothing to offer or the master cannot be asked."""
    try:
        if kind == "mrealm":
            return sorted(await ctx.call(GLOBAL, M + "list_mrealms", return_names=True) or [])
        if kind == "node" and ctx.realm:
            return sorted(await ctx.call(ctx.realm, M + "get_nodes", return_names=True) or [])
        if kind == "worker" and ctx.realm and values.get("node"):
            return sorted(await ctx.call(ctx.realm, R + "node.get_workers", values["node"]) or [])
    except ShellError:
        return []
    return []


# -- commands ---------------------------------------------------------------------------------------

@command("show", "status", "the master's status (with --realm: the mrealm's)", scope="global")
async def show_status(ctx):
    if ctx.realm:
        return await ctx.call(ctx.realm, M + "get_status")
    return await ctx.call(GLOBAL, D + "get_status")


@command("list", "mrealms", "the management realms you have a role on", scope="global",
         opts=[Opt("names", "names instead of the records", flag=True)], columns=["name", "oid", "created", "owner"])
async def list_mrealms(ctx, names=False):
    oids = await ctx.call(GLOBAL, M + "list_mrealms")
    if names:
        return sorted(await ctx.call(GLOBAL, M + "list_mrealms", return_names=True))
    return [await ctx.call(GLOBAL, M + "get_mrealm", oid) for oid in oids]


@command("list", "nodes", "the nodes paired into the mrealm",
         opts=[Opt("online", "only the nodes online now", flag=True), Opt("names", "names only", flag=True)],
         columns=["authid", "oid", "status", "heartbeat", "timestamp"])
async def list_nodes(ctx, online=False, names=False):
    status = "online" if online else None
    if names:
        return sorted(await ctx.call(ctx.realm, M + "get_nodes", status, return_names=True))
    oids = await ctx.call(ctx.realm, M + "get_nodes", status)
    return [await ctx.call(ctx.realm, M + "get_node", oid) for oid in oids]
