"""The interactive shell: ``wampfabric shell`` without a command.

One asyncio loop holds the prompt (prompt_toolkit's ``prompt_async``) and the ShellContext's
connections, which stay open from one command to the next.

- prompt ``wampfabric <profile>@<mrealm>> ``; the lines typed are kept in ``history`` in the shell
  directory (up arrow, Ctrl-R);
- TAB completes the verb, then the noun, then each argument by its kind with the names the master
  knows now (``commands.names``; asked at most every ``CACHE_SECONDS`` per kind, given up after
  ``NAMES_TIMEOUT`` s: typing never waits longer) and ``--options``;
- ``help``, ``help VERB``, ``help VERB NOUN``, ``?`` (also at the end of a line: ``list nodes ?``);
- built-ins: ``realm M`` (switch the mrealm), ``output json|yaml|table``, ``monitor`` (the live view
  of the mrealm until Ctrl-C), ``exit`` / ``quit`` / Ctrl-D;
- Ctrl-C empties the line being typed, or stops the command running (back to the prompt);
- an error is one line (``Error: ...``) and the shell goes on; never a traceback.

A standard input that is not a terminal is read as a script, one command a line, without prompt
(errors on stderr; exit code 1 when a line failed).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import sys
import time

from prompt_toolkit.completion import Completer, Completion

from . import commands
from . import clusters  # noqa: F401  (registers the router cluster and application realm commands)
from .context import ShellContext, ShellError
from .monitor import monitor
from .output import FORMATS, render
from .profile import shell_dir

HISTORY = "history"
CACHE_SECONDS = 5.0  # live names are asked again after this
NAMES_TIMEOUT = 2.0  # a completion waits at most this long for the master

BUILTINS = {
    "help": "help, help VERB, help VERB NOUN (also `?`)",
    "realm": "realm [MREALM]: show or switch the management realm",
    "output": "output [table|json|yaml]: show or set the output format",
    "monitor": "monitor: the live view of the mrealm's nodes (Ctrl-C: back to the prompt)",
    "select": "select node|worker|transport NAME: the default of that argument in later commands "
              "(select node -: none)",
    "current": "current: the mrealm, output format and the selected node, worker, transport",
    "set": "set output-format table|json|yaml (as `output`)",
    "version": "version: the shell's and the master's software versions",
    "clear": "clear the screen",
    "exit": "leave the shell (also `quit`, Ctrl-D)",
    "quit": "leave the shell",
}


class _Exit(Exception):
    pass


def _words(text: str) -> list[str]:
    """The words of a line; an unfinished quote does not stop completion."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _state(text: str) -> tuple[list[str], str]:
    """(the complete words before the cursor, the word being typed)."""
    words = _words(text)
    if not text or text[-1].isspace():
        return words, ""
    return words[:-1], (words[-1] if words else "")


def _positionals(cmd, words: list[str]) -> tuple[list[str], bool]:
    """The positional values among the words after verb and noun, and whether the last word is an
    option that still waits for its value."""
    opts = {o.name: o for o in cmd.opts}
    positional, waiting = [], False
    for w in words:
        if waiting:
            waiting = False
            continue
        if w.startswith("--") and len(w) > 2:
            name, eq, _ = w[2:].partition("=")
            opt = opts.get(name)
            waiting = opt is not None and not opt.flag and not eq
        else:
            positional.append(w)
    return positional, waiting


def _completion(text: str, word: str, meta: str | None = None) -> Completion:
    return Completion(text, start_position=-len(word), display_meta=meta)


class ShellCompleter(Completer):
    """Verbs, nouns, --options at once; argument names from the master (async, cached, bounded)."""

    def __init__(self, ctx: ShellContext):
        self.ctx = ctx
        self.cache: dict[tuple, tuple[float, list[str]]] = {}

    def get_completions(self, document, complete_event):
        for c in self._static(document.text_before_cursor)[0]:
            yield c

    async def get_completions_async(self, document, complete_event):
        found, live = self._static(document.text_before_cursor)
        for c in found:
            yield c
        if live is not None:
            kind, values, word = live
            for name in await self.names(kind, values):
                if name.startswith(word):
                    yield _completion(name, word, kind)

    def _static(self, text: str):
        """(completions known without the master, (kind, values, word) to ask it for)."""
        before, word = _state(text)
        out = []
        if not before:
            for v in commands.verbs():
                if v.startswith(word):
                    out.append(_completion(v, word, "verb"))
            for b in sorted(BUILTINS):
                if b.startswith(word) and b not in commands.verbs():
                    out.append(_completion(b, word, "shell"))
            return out, None
        head = before[0]
        if head in ("help", "?"):
            if len(before) == 1:
                out = [_completion(v, word, "verb") for v in commands.verbs() if v.startswith(word)]
            elif len(before) == 2:
                out = [_completion(n, word, commands.COMMANDS[(before[1], n)].help)
                       for n in commands.nouns(before[1]) if n.startswith(word)]
            return out, None
        if head == "output" and len(before) == 1:
            return [_completion(f, word) for f in FORMATS if f.startswith(word)], None
        if head == "realm" and len(before) == 1:
            return [], ("mrealm", {}, word)
        if head == "monitor":
            return [_completion(o, word) for o in ("--once", "--json")
                    if o.startswith(word) and o not in before], None
        if len(before) == 1:
            return [_completion(n, word, commands.COMMANDS[(head, n)].help)
                    for n in commands.nouns(head) if n.startswith(word)], None
        cmd = commands.COMMANDS.get((head, before[1]))
        if cmd is None:
            return [], None
        positional, waiting = _positionals(cmd, before[2:])
        if waiting:
            return [], None  # an option's value: nothing to offer
        if word.startswith("-"):
            used = {w[2:].partition("=")[0] for w in before[2:] if w.startswith("--")}
            return [_completion(f"--{o.name}", word, o.help) for o in cmd.opts
                    if f"--{o.name}".startswith(word) and o.name not in used], None
        if len(positional) < len(cmd.args):
            arg = cmd.args[len(positional)]
            if arg.kind:
                values = {a.name.replace("-", "_"): v for a, v in zip(cmd.args, positional)}
                return [], (arg.kind, values, word)
            return [], None
        if not word:  # all arguments given: the options
            used = {w[2:].partition("=")[0] for w in before[2:] if w.startswith("--")}
            return [_completion(f"--{o.name}", word, o.help) for o in cmd.opts if o.name not in used], None
        return [], None

    async def names(self, kind: str, values: dict) -> list[str]:
        key = (kind, self.ctx.realm, tuple(sorted((k, str(v)) for k, v in values.items())))
        hit = self.cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            found = await asyncio.wait_for(commands.names(self.ctx, kind, values), NAMES_TIMEOUT)
        except Exception:  # a timeout, ShellError, anything: completion never breaks the prompt
            return []
        found = [str(n) for n in found or []]
        self.cache[key] = (time.monotonic(), found)
        return found


# -- help -------------------------------------------------------------------------------------------

def help_text(words: list[str]) -> str:
    """``help``, ``help VERB``, ``help VERB NOUN``; ShellError for what does not exist."""
    cmds = commands.COMMANDS
    if not words:
        width = max([len(c.usage) for c in cmds.values()] + [12])
        lines = ["Commands:"]
        lines += [f"  {cmds[k].usage.ljust(width)}  {cmds[k].help}" for k in sorted(cmds)]
        lines += ["", "Shell:"]
        lines += [f"  {name.ljust(width)}  {text}" for name, text in BUILTINS.items()]
        lines += ["", "TAB completes commands, names and --options; `help VERB NOUN` tells more."]
        return "\n".join(lines)
    verb = words[0]
    if verb in BUILTINS and verb not in commands.verbs():
        return f"{verb}: {BUILTINS[verb]}"
    if verb not in commands.verbs():
        raise ShellError(f"no command '{verb}' (verbs: {', '.join(commands.verbs())})")
    if len(words) == 1:
        return "\n".join(f"  {cmds[(verb, n)].usage}  {cmds[(verb, n)].help}" for n in commands.nouns(verb))
    cmd = cmds.get((verb, words[1]))
    if cmd is None:
        raise ShellError(f"no command '{verb} {words[1]}' ({verb}: {', '.join(commands.nouns(verb))})")
    where = "the global realm" if cmd.scope == "global" else "the current mrealm"
    lines = [f"usage: {cmd.usage}", "", f"  {cmd.help} (on {where})"]
    if cmd.args:
        lines += ["", "arguments:"]
        for a in cmd.args:
            extra = " (optional)" if a.optional else ""
            lines.append(f"  {a.name.upper():<16} {a.help}{extra}")
    if cmd.opts:
        lines += ["", "options:"]
        for o in cmd.opts:
            name = f"--{o.name}" if o.flag else f"--{o.name} {o.name.upper()}"
            lines.append(f"  {name:<16} {o.help}")
    return "\n".join(lines)


# -- the loop ---------------------------------------------------------------------------------------

class Interactive:
    def __init__(self, ctx: ShellContext, fmt: str):
        self.ctx = ctx
        self.fmt = fmt if fmt in FORMATS else "table"
        self.selected: dict[str, str] = {}  # kind -> name (select node|worker|transport)
        self.failed = 0  # lines that ended in an error

    def prompt(self) -> str:
        return f"wampfabric {self.ctx.profile.name}@{self.ctx.realm or '-'}> "

    async def line(self, text: str) -> None:
        """Run one line; errors are raised (ShellError) for the loop to print."""
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise ShellError(f"cannot read the line: {e}") from None
        if not words:
            return
        if words[-1] == "?":
            words = ["help", *words[:-1]]
        opts, words = commands.split_global(words)
        if "profile" in opts:
            raise ShellError("--profile: start the shell with another profile (`wampfabric shell --profile P`)")
        if opts:  # --realm / --output for this line only
            realm, fmt = self.ctx.realm, self.fmt
            self.ctx.realm, self.fmt = opts.get("realm", realm), opts.get("output", fmt)
            try:
                await self._line(words)
            finally:
                self.ctx.realm, self.fmt = realm, fmt
            return
        await self._line(words)

    async def _line(self, words: list[str]) -> None:
        if not words:
            return
        head, rest = words[0], words[1:]
        if head in ("exit", "quit"):
            raise _Exit()
        if head in ("help", "?"):
            print(help_text(rest))
        elif head == "realm":
            await self.realm(rest)
        elif head == "output":
            if not rest:
                print(self.fmt)
            elif len(rest) > 1 or rest[0] not in FORMATS:
                raise ShellError(f"output: one of {', '.join(FORMATS)}")
            else:
                self.fmt = rest[0]
        elif head == "monitor":
            await monitor(self.ctx, rest)
        elif head == "select":
            self.select(rest)
        elif head == "current":
            print(render({"mrealm": self.ctx.realm, "output": self.fmt, "profile": self.ctx.profile.name,
                          "master": self.ctx.url, **{k: self.selected.get(k) for k in commands.SELECTABLE}},
                         self.fmt))
        elif head == "set":
            if len(rest) != 2 or rest[0] != "output-format" or rest[1] not in FORMATS:
                raise ShellError(f"set output-format {'|'.join(FORMATS)}")
            self.fmt = rest[1]
        elif head == "version":
            print(render(await commands.versions(self.ctx), self.fmt))
        elif head == "clear":
            print("\033[H\033[2J", end="", flush=True)
        else:
            cmd, values = commands.parse(words, self.selected)
            result = await commands.execute(self.ctx, cmd, values)
            print(render(result, self.fmt, cmd.columns))

    def select(self, rest: list[str]) -> None:
        if len(rest) != 2 or rest[0] not in commands.SELECTABLE:
            raise ShellError(f"select {'|'.join(commands.SELECTABLE)} NAME (NAME '-' clears it)")
        if rest[1] == "-":
            self.selected.pop(rest[0], None)
        else:
            self.selected[rest[0]] = rest[1]

    async def realm(self, rest: list[str]) -> None:
        if not rest:
            print(self.ctx.realm or "(no mrealm: `realm NAME`)")
            return
        if len(rest) > 1:
            raise ShellError("realm: one management realm name")
        await self.ctx.session(rest[0])  # joins it, or tells why not (the current mrealm stays)
        self.ctx.realm = rest[0]

    async def run_line(self, text: str) -> None:
        """One line as a task that Ctrl-C (SIGINT: the terminal is not in raw mode while it runs) cancels."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self.line(text))
        try:
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
        try:
            await asyncio.wait([task])
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass
        if task.cancelled():
            if not text.split()[:1] == ["monitor"]:  # Ctrl-C is how the monitor ends
                print("(interrupted)")
            return
        e = task.exception()
        if isinstance(e, _Exit):
            raise e
        if e is not None:
            self.failed += 1
            text = str(e) if isinstance(e, ShellError) else f"{type(e).__name__}: {e}"
            message = f"Error: {self.where}{' '.join(text.split())}"  # one line, whatever the text
            print(message, file=sys.stderr if not self.tty else sys.stdout, flush=True)

    tty = True
    where = ""  # "line N: " in a script

    async def script(self) -> int:
        """Lines from a standard input that is not a terminal (``wampfabric shell < commands``): no
        prompt, errors on stderr, exit code 1 when a line failed."""
        loop = asyncio.get_running_loop()
        self.tty = False
        lineno = 0
        try:
            while True:
                text = await loop.run_in_executor(None, sys.stdin.readline)
                if not text:
                    break
                lineno += 1
                self.where = f"line {lineno}: "
                try:
                    await self.run_line(text)
                except _Exit:
                    break
                sys.stdout.flush()
        finally:
            await self.ctx.close()
        return 1 if self.failed else 0

    async def main(self) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: None)  # nothing printed behind the prompt
        directory = shell_dir()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            history = FileHistory(str(directory / HISTORY))
        except OSError:
            history = InMemoryHistory()
        session = PromptSession(history=history, completer=ShellCompleter(self.ctx), complete_while_typing=False,
                                complete_in_thread=False)
        print("wampfabric shell: `help` lists the commands, TAB completes, Ctrl-D leaves.")
        try:
            while True:
                try:
                    text = await session.prompt_async(self.prompt)
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    return 0
                try:
                    await self.run_line(text)
                except _Exit:
                    return 0
        finally:
            await self.ctx.close()


def run_interactive(ctx: ShellContext, fmt: str) -> int:
    """``wampfabric shell`` without a command: the exit code."""
    log = logging.getLogger("wampfabric")
    log.addHandler(logging.NullHandler())
    log.propagate = False  # a client library's warning must not land in the middle of the prompt
    try:
        shell = Interactive(ctx, fmt)
        return asyncio.run(shell.main() if sys.stdin.isatty() else shell.script())
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # e.g. no terminal: one line, never a traceback
        print(f"Error: {type(e).__name__}: {e}")
        return 1
