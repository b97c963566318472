"""``wampfabric shell``: one-shot commands, ``init``, ``auth``, ``help``, and the interactive mode
when no command is given.

    wampfabric shell init [--profile P] [--url URL] [--email E] [--realm M] [--privkey FILE] [--default] [--force]
    wampfabric shell auth [--profile P] [--code CODE | --new-code]
    wampfabric shell profiles
    wampfabric shell [--profile P] [--realm MREALM] [--output table|json|yaml] <verb> <noun> [args] [options]
    wampfabric shell                      # interactive

Global options may stand anywhere in the line.  Errors: one line on stderr, exit code 1 (2 for
a command line that cannot be parsed); never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from ..client import ApplicationError
from .commands import COMMANDS, UsageError, execute, parse, split_global, versions
from . import clusters  # noqa: F401  (registers the router cluster and application realm commands)
from .context import ShellContext, ShellError, error_text
from .output import FORMATS, render
from .profile import (DEFAULT_URL, Profile, ProfileError, Profiles, read_private_key, valid_email,
                      write_key_pair)

def fail(message: str, code: int = 1) -> None:
    if os.environ.get("WAMPFABRIC_SHELL_DEBUG") and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()  # for developers only: WAMPFABRIC_SHELL_DEBUG=1
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def help_text() -> str:
    lines = ["Commands (wampfabric shell [--profile P] [--realm MREALM] [--output table|json|yaml] COMMAND):", ""]
    width = max(len(c.usage) for c in COMMANDS.values())
    for key in sorted(COMMANDS):
        c = COMMANDS[key]
        lines.append(f"  {c.usage.ljust(width)}  {c.help}")
    lines += ["", "  version: this shell's and the master's software versions; monitor [--once] [--json]: the live "
              "view of an mrealm",
              "  init, auth, profiles: `wampfabric shell init --help`, `wampfabric shell auth --help`, "
              "`wampfabric shell profiles`",
              "  without a command: the interactive shell (help, completion with TAB)"]
    return "\n".join(lines)


async def run_one(ctx: ShellContext, words: list[str], fmt: str) -> str:
    cmd, values = parse(words)
    try:
        result = await execute(ctx, cmd, values)
    finally:
        await ctx.close()
    return render(result, fmt, cmd.columns)


async def _versions(ctx: ShellContext, fmt: str) -> str:
    try:
        return render(await versions(ctx), fmt)
    finally:
        await ctx.close()


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
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as e:  # never a traceback
            fail(f"{type(e).__name__}: {e}")
        return
    if words and words[0] not in ("monitor", "version"):
        try:
            cmd, values = parse(words)
        except UsageError as e:
            fail(str(e), 2)
        if cmd.scope == "local":  # needs no master and no profile (export database)
            try:
                click.echo(render(asyncio.run(cmd.run(None, **values)), opts.get("output", "table"), cmd.columns))
            except ShellError as e:
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
        if words == ["version"]:  # as Crossbar.io's shell: this shell's version and the master's
            out = asyncio.run(_versions(ctx, opts.get("output", "table")))
        else:
            out = asyncio.run(run_one(ctx, words, opts.get("output", "table")))
    except UsageError as e:
        fail(str(e), 2)
    except ShellError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as e:  # never a traceback: one line, whatever went wrong
        fail(error_text(e, ctx.url))
    click.echo(out)


# -- init, auth, profiles -------------------------------------------------------------------------------

def _opts() -> dict:
    """The global options of the shell's line (``--profile`` before or after the subcommand)."""
    return click.get_current_context().obj or {}


def _check_url(url: str) -> str:
    if not url.startswith(("ws://", "wss://", "rs://", "rss://", "unix:")):
        raise ShellError(f"--url: '{url}' is not a master URL (ws://host:port/ws, wss://...)")
    return url


@click.command("init")
@click.option("--profile", "name", help="the profile's name (default: 'default')")
@click.option("--url", help="the master's URL (default: $CROSSBAR_FABRIC_URL, else " + DEFAULT_URL + ")")
@click.option("--email", help="your email address: the user id of a key that is not the master's superuser key")
@click.option("--realm", help="the default management realm of mrealm commands")
@click.option("--privkey", type=click.Path(dir_okay=False),
              help="use this existing Crossbar.io-format private key file (e.g. ~/.crossbar/default.priv) "
                   "instead of a new key pair")
@click.option("--default", "make_default", is_flag=True, help="make this profile the default one")
@click.option("--force", is_flag=True, help="overwrite an existing profile of that name (its key files are kept)")
def init_cmd(name, url, email, realm, privkey, make_default, force):
    """Create a shell profile: which master, which key, which mrealm by default."""
    opts = _opts()
    name = name or opts.get("profile") or "default"
    realm = realm or opts.get("realm")
    url = _check_url(url or os.environ.get("CROSSBAR_FABRIC_URL") or DEFAULT_URL)
    if email is not None and not valid_email(email):
        raise ShellError(f"--email: '{email}' is not an email address")
    profiles = Profiles()
    if profiles.has(name) and not force:
        raise ShellError(f"profile '{name}' exists in {profiles.path}: use --force to overwrite it "
                         f"(or --profile NAME for another one)")
    profiles.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(profiles.dir, 0o700)
    note = None
    if privkey is not None:
        key_path = Path(privkey).expanduser().resolve()
        read_private_key(key_path)  # ProfileError when it is not a usable private key file
        note = "using the key file"
    else:
        key_path = profiles.dir / f"{name}.priv"
        if key_path.exists():
            read_private_key(key_path)
            note = "kept the existing key"
        else:
            key_path = write_key_pair(profiles.dir, name, email)
            note = "new key pair"
    profile = Profile(name=name, url=url, privkey=key_path, authid=email, realm=realm)
    profiles.put(profile, make_default=make_default)
    pub_file = key_path.with_suffix(".pub")
    default = Profiles().default == name
    sel = "" if default else f" --profile {name}"
    if email:
        step = (f"`wampfabric shell{sel} auth` asks the master for an activation code, "
                f"then `wampfabric shell{sel} auth --code CODE`")
    else:
        where = pub_file if pub_file.exists() else "a file with the line 'public-key-ed25519: <public key>'"
        step = (f"without --email this key must be the master's superuser: start the master with "
                f"CROSSBAR_FABRIC_SUPERUSER={where}, then `wampfabric shell{sel} show status`")
    result = {"profile": name, "default": default, "config": str(profiles.path), "url": url, "user": email,
              "mrealm": realm, "privkey": str(key_path), "key": note, "pubkey": profile.public_key_hex(),
              "next": step}
    fmt = _opts().get("output", "table")
    if fmt != "table":
        click.echo(render(result, fmt))
        return
    click.echo(f"profile:    {name}{' (default)' if default else ''} in {profiles.path}")
    click.echo(f"master:     {url}")
    click.echo(f"user:       {email or '(none: the superuser key)'}")
    if realm:
        click.echo(f"mrealm:     {realm}")
    click.echo(f"key:        {key_path} ({note})")
    click.echo(f"public key: {result['pubkey']}")
    click.echo(f"next:       {step}")


@click.command("profiles")
def profiles_cmd():
    """List the shell profiles (* = the default)."""
    profiles = Profiles()
    fmt = _opts().get("output", "table")
    rows = []
    for n in profiles.names():
        p = profiles.get(n)
        rows.append({"default": "*" if n == profiles.default else "", "name": n, "url": p.url,
                     "user": p.authid or "(superuser key)", "mrealm": p.realm, "key": str(p.privkey)})
    if not rows:
        raise ShellError(f"no shell profile in {profiles.dir}: run `wampfabric shell init`")
    if fmt != "table":
        for r in rows:
            r["default"] = bool(r["default"])
    click.echo(render(rows, fmt, ["default", "name", "url", "user", "mrealm", "key"]))


CODE_SENT = ("fabric.auth-failed.new-user-auth-code-sent", "fabric.auth-failed.registered-user-auth-code-sent")
PENDING = "fabric.auth-failed.pending-activation"


@click.command("auth")
@click.option("--code", help="the activation code the master sent (XXXX-XXXX-XXXX)")
@click.option("--new-code", is_flag=True, help="ask for a new activation code (the pending one is dropped)")
def auth_cmd(code, new_code):
    """Authenticate the profile's key with the master: a new key gets an activation code (in the master's
    log and its node directory's activation-codes/<email>.code), `auth --code CODE` activates it."""
    if code and new_code:
        raise click.UsageError("--code and --new-code exclude each other")
    opts = _opts()
    profile = Profiles().get(opts.get("profile"))
    extra = {}
    if code:
        extra["activation_code"] = code.strip()
    if new_code:
        extra["request_new_activation_code"] = True
    ctx = ShellContext(profile)
    fmt = opts.get("output", "table")
    sel = f" --profile {profile.name}" if opts.get("profile") else ""
    try:
        welcome = asyncio.run(ctx.authenticate(extra))
    except ApplicationError as e:
        if e.error not in CODE_SENT and e.error != PENDING:
            raise ShellError(f"authentication failed: {error_text(e, profile.url)}") from None
        message = e.args_[0] if e.args_ and isinstance(e.args_[0], str) else e.error
        result = {"status": "code-sent" if e.error in CODE_SENT else "pending", "reason": e.error,
                  "message": message, "user": profile.authid}
        lines = [message]
        if e.error in CODE_SENT:
            result["code"] = f"activation-codes/{profile.authid}.code"
            lines.append(f"The code is in the master's log and in {result['code']} in the master's node "
                         f"directory (the master sends no mail).")
            result["next"] = f"wampfabric shell{sel} auth --code CODE"
        else:
            result["next"] = f"wampfabric shell{sel} auth --code CODE (or --new-code for a new one)"
        lines.append(f"next: {result['next']}")
        click.echo(render(result, fmt) if fmt != "table" else "\n".join(lines))
        return
    result = {"status": "authenticated", "authid": welcome.get("authid"), "authrole": welcome.get("authrole"),
              "realm": welcome.get("realm"), "url": profile.url}
    click.echo(render(result, fmt) if fmt != "table" else
               f"authenticated as {result['authid']} (role {result['authrole']}) at {profile.url}")


SUBCOMMANDS: dict[str, click.Command] = {"init": init_cmd, "auth": auth_cmd, "profiles": profiles_cmd}
