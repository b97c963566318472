"""``wampfabric shell``: one-shot commands, ``init``, ``auth``, ``help``, and the interactive mode
when no command is given.

    wampfabric shell init [--profile P] [--url URL] [--email E] [--realm M] [--privkey FILE]
    wampfabric shell auth [--code CODE | --new-code]
    wampfabric shell [--profile P] [--realm MREALM] [--output table|json|yaml] <verb> <noun> [args] [options]
    wampfabric shell                      # interactive

Global options may stand anywhere in the line.  Errors: one line on stderr, exit code 1 (2 for
a command line that cannot be parsed); never a traceback.
"""

from __future__ import annotations

import asyncio
import sys

import click

from .commands import COMMANDS, execute, parse
from .context import ShellContext, ShellError
from .output import FORMATS, render
from .profile import ProfileError, Profiles

GLOBAL_OPTS = {"--profile": "profile", "--realm": "realm", "--output": "output"}


def split_global(words: list[str]) -> tuple[dict, list[str]]:
    """The global options (anywhere in the line) and the remaining words."""
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
                    raise ShellError(f"{name} needs a value")
                value = words[i]
            found[GLOBAL_OPTS[name]] = value
        else:
            rest.append(w)
        i += 1
    if found.get("output", "table") not in FORMATS:
        raise ShellError(f"--output must be one of {', '.join(FORMATS)}, not '{found['output']}'")
    return found, rest


def fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def help_text() -> str:
    lines = ["Commands (wampfabric shell [--profile P] [--realm MREALM] [--output table|json|yaml] COMMAND):", ""]
    width = max(len(c.usage) for c in COMMANDS.values())
    for key in sorted(COMMANDS):
        c = COMMANDS[key]
        lines.append(f"  {c.usage.ljust(width)}  {c.help}")
    lines += ["", "  init, auth: `wampfabric shell init --help`, `wampfabric shell auth --help`",
              "  without a command: the interactive shell (help, completion with TAB)"]
    return "\n".join(lines)


async def run_one(ctx: ShellContext, words: list[str], fmt: str) -> str:
    cmd, values = parse(words)
    try:
        result = await execute(ctx, cmd, values)
    finally:
        await ctx.close()
    return render(result, fmt, cmd.columns)


def context_for(opts: dict) -> ShellContext:
    profile = Profiles().get(opts.get("profile"))
    return ShellContext(profile, realm=opts.get("realm"))


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
def shell(words):
    """The management shell of a master: `wampfabric shell help` lists the commands."""
    words = list(words)
    try:
        opts, words = split_global(words)
    except ShellError as e:
        fail(str(e), 2)
    if words and words[0] in ("help", "--help", "-h"):
        click.echo(help_text())
        return
    if words and words[0] in SUBCOMMANDS:
        sub = SUBCOMMANDS[words[0]]
        try:
            sub.main(args=words[1:], prog_name=f"wampfabric shell {words[0]}", standalone_mode=False,
                     obj=opts)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(e.format_message(), 2 if isinstance(e, click.UsageError) else 1)
        except (ShellError, ProfileError) as e:
            fail(str(e))
        return
    try:
        ctx = context_for(opts)
    except (ProfileError, ShellError) as e:
        fail(str(e))
    if not words:
        from .interactive import run_interactive

        sys.exit(run_interactive(ctx, opts.get("output", "table")))
    if words[0] == "monitor":
        from .monitor import run_monitor

        sys.exit(run_monitor(ctx, words[1:]))
    try:
        out = asyncio.run(run_one(ctx, words, opts.get("output", "table")))
    except ShellError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    click.echo(out)


SUBCOMMANDS: dict[str, click.Command] = {}
