"""The interactive shell as a person uses it: ``wampfabric shell`` in a pseudo-terminal, keys
typed (TAB, Enter, Ctrl-C, Ctrl-D) and the screen read back through a terminal emulator, against
the real master and edges of the ``fabric`` fixture (mrealm m1, edges edge1 and edge2)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path

import pexpect
import pytest


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pexpect's VT100 emulator is deprecated; it is enough here
    from pexpect import ANSI

ROWS, COLS = 400, 300  # `help` lists every command on one screen, a long error line fits one row
PROMPT = "wampfabric default@m1>"

WAMPFABRIC = str(Path(sys.executable).with_name("wampfabric"))  # the venv's command, as conftest runs it
pytestmark = pytest.mark.timeout(120)


class Term:
    """``wampfabric shell`` in a pty and what its screen shows."""

    def __init__(self, env: dict, *words: str):
        # a real terminal answers prompt_toolkit's cursor position request; the emulator cannot
        env = dict(env, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", COLUMNS=str(COLS), LINES=str(ROWS))
        self.child = pexpect.spawn(WAMPFABRIC, ["shell", *words], env=env, encoding="utf-8",
                                   dimensions=(ROWS, COLS), timeout=15)
        self.screen = ANSI.ANSI(ROWS, COLS)
        self.raw = ""

    def pump(self, seconds: float = 0.1) -> None:
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=max(0.01, end - time.monotonic()))
            except pexpect.TIMEOUT:
                data = ""
            except pexpect.EOF:
                return
            if data:
                self.raw += data
                self.screen.write(data)
            if time.monotonic() >= end:
                return

    def lines(self) -> list[str]:
        return [line.rstrip() for line in str(self.screen).split("\n")]

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait(self, check, what: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.1)
            found = check(self)
            if found:
                return found
        raise AssertionError(f"not on the screen: {what}\n{self.text().rstrip()}")

    def prompts(self) -> list[str]:
        return [line for line in self.lines() if line.startswith(PROMPT)]

    def wait_prompt(self, count: int, timeout: float = 15.0) -> str:
        """The ``count``-th prompt line (the line being typed)."""
        return self.wait(lambda t: len(t.prompts()) >= count and t.prompts()[count - 1], f"prompt #{count}",
                         timeout)

    def current(self) -> str:
        """What the last prompt line holds after the prompt."""
        return self.prompts()[-1][len(PROMPT):].strip()

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def command(self, line: str, timeout: float = 15.0) -> str:
        """Type a line, press Enter, wait for the next prompt; the screen between the two."""
        n = len(self.prompts())
        self.send(line + "\r")
        self.wait_prompt(n + 1, timeout)
        lines = self.lines()
        starts = [i for i, line in enumerate(lines) if line.startswith(PROMPT)]
        return "\n".join(lines[starts[n - 1] + 1:starts[n]])

    def close(self) -> int | None:
        if self.child.isalive():
            self.child.sendcontrol("d")
            try:
                self.child.expect(pexpect.EOF, timeout=10)
            except pexpect.TIMEOUT:
                self.child.terminate(force=True)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def term(fabric):
    t = Term(fabric.env)
    try:
        t.wait_prompt(1)
        yield t
    finally:
        t.close()
        assert "Traceback" not in t.raw, t.raw[-3000:]


def test_tab_completes_verbs_nouns_live_names_and_options(term):
    term.send("li\t")
    term.wait(lambda t: t.current() == "list", "li<TAB> -> list")
    term.send(" no\t")
    term.wait(lambda t: t.current() == "list nodes", "list no<TAB> -> list nodes")
    out = term.command("")
    assert "edge1" in out and "edge2" in out and "online" in out, out

    # the names of the nodes come from the master
    term.send("show node \t")
    term.wait(lambda t: "edge1" in t.text().split(PROMPT)[-1] and "edge2" in t.text().split(PROMPT)[-1],
              "show node <TAB> offers edge1 and edge2")
    term.send("1")
    term.wait(lambda t: t.current() == "show node edge1", "show node edge1")
    out = term.command("")
    assert "edge1" in out and "online" in out, out

    # an option
    term.send("list nodes --onl\t")
    term.wait(lambda t: t.current() == "list nodes --online", "--onl<TAB> -> --online")
    term.command("")


def test_help(term):
    out = term.command("help")
    assert "list nodes" in out and "show status" in out and "realm" in out and "exit" in out, out
    out = term.command("help list")
    assert "list nodes" in out and "list mrealms" in out and "show status" not in out, out
    out = term.command("help list nodes")
    assert "usage: list nodes" in out and "--online" in out, out
    assert term.command("list nodes ?") == out
    assert term.command("? list nodes") == out
    out = term.command("help frobnicate")
    assert out.startswith("Error: ") and len(out.splitlines()) == 1, out


def test_errors_are_one_line_and_the_shell_goes_on(term):
    for line, text in (("frobnicate", "unknown verb 'frobnicate'"), ("list", "'list' needs a noun"),
                       ("show node nosuch", "nosuch"), ("list nodes --bogus", "--bogus"),
                       ('list "nodes', "cannot read the line")):
        out = term.command(line)
        assert len(out.splitlines()) == 1 and out.startswith("Error: ") and text in out, (line, out)
    out = term.command("list nodes --names")
    assert out.split() == ["edge1", "edge2"], out


def test_realm_and_output(term):
    out = term.command("realm")
    assert out == "m1", out
    out = term.command("realm nosuch")
    assert out.startswith("Error: ") and "nosuch" in out, out
    assert term.prompts()[-1].startswith(PROMPT)  # still m1
    assert term.command("realm m1") == ""
    assert term.command("output json") == ""
    out = term.command("list nodes --names")
    assert re.sub(r"\s", "", out) == '["edge1","edge2"]', out
    term.command("output yaml")
    out = term.command("list nodes --names")
    assert out.splitlines() == ["- edge1", "- edge2"], out
    out = term.command("output xml")
    assert out.startswith("Error: "), out
    assert term.command("output") == "yaml"


def test_ctrl_c_ctrl_d_and_history(fabric):
    t = Term(fabric.env)
    try:
        t.wait_prompt(1)
        t.send("list nod")
        t.wait(lambda t: t.current() == "list nod", "typed")
        t.child.sendcontrol("c")  # the line is dropped, the shell stays
        t.wait_prompt(2)
        assert t.current() == ""
        assert t.command("list nodes --names").split() == ["edge1", "edge2"]

        # Ctrl-C stops a running command (the monitor runs until then) and the prompt comes back
        n = len(t.prompts())
        t.send("monitor\r")
        t.wait(lambda t: "nodes online 2/2" in t.text(), "the monitor in the shell")
        t.child.sendcontrol("c")
        t.wait_prompt(n + 1)
        assert t.command("show status").count("\n") >= 1

        t.child.sendcontrol("d")
        t.child.expect(pexpect.EOF, timeout=10)
        t.child.close()
        assert t.child.exitstatus == 0
    finally:
        if t.child.isalive():
            t.child.terminate(force=True)
    assert "Traceback" not in t.raw
    history = (fabric.shell_dir / "history").read_text()
    entries = [line[1:] for line in history.splitlines() if line.startswith("+")]
    assert entries[-3:] == ["list nodes --names", "monitor", "show status"], entries
    assert "list nod" not in entries


def test_exit_and_quit(fabric):
    for word in ("exit", "quit"):
        t = Term(fabric.env)
        t.wait_prompt(1)
        t.send(word + "\r")
        t.child.expect(pexpect.EOF, timeout=10)
        t.child.close()
        assert t.child.exitstatus == 0, word


def test_script_from_standard_input(fabric):
    """Not a terminal: one command a line, no prompt, errors on stderr with the line, exit 1 if one failed."""
    r = fabric.run(input="list nodes --names\n\noutput json\nlist nodes --names\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["edge1", "edge2", "[", '"edge1",', '"edge2"', "]"], r.stdout
    r = fabric.run(input="frobnicate\nlist nodes --names\nexit\nlist mrealms\n")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: line 1: unknown verb 'frobnicate'") and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stdout.split() == ["edge1", "edge2"], r.stdout  # nothing after exit


def test_a_master_that_does_not_answer(fabric, tmp_path):
    """A master that accepts the connection and never answers: TAB gives up after ~2 s without
    holding up the typing, and Ctrl-C stops a command waiting for it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshakes; nobody ever reads
    shell_dir = tmp_path / "shell"
    shutil.copytree(fabric.shell_dir, shell_dir)
    (shell_dir / "history").unlink(missing_ok=True)
    config = shell_dir / "config.ini"
    config.write_text(re.sub(r"url = .*", f"url = ws://127.0.0.1:{silent.getsockname()[1]}/ws", config.read_text()))
    t = Term(dict(fabric.env, WAMPFABRIC_SHELL_DIR=str(shell_dir)))
    try:
        t.wait_prompt(1)
        t.send("show node \t")
        t0 = time.monotonic()
        t.send("ab")
        t.wait(lambda t: t.current() == "show node ab", "typing goes on while the completion waits", timeout=1.5)
        t.child.sendcontrol("u")
        t.send("show node \t")
        time.sleep(3)
        t.send("x")
        t.wait(lambda t: t.current() == "show node x", "nothing offered")
        assert time.monotonic() - t0 < 8
        t.child.sendcontrol("u")
        n = len(t.prompts())
        t.send("list nodes\r")
        time.sleep(1)
        t.child.sendcontrol("c")
        t.wait_prompt(n + 1, timeout=5)
        assert "(interrupted)" in t.text()
    finally:
        t.close()
        silent.close()
    assert "Traceback" not in t.raw


def test_select_current_per_line_options_and_version(term):
    """Crossbar.io's shell verbs that work locally: select/current, set output-format, version;
    and --output / --realm for one line."""
    out = term.command("list nodes --names --output json")
    assert re.sub(r"\s", "", out) == '["edge1","edge2"]', out
    assert term.command("output") == "table"  # only that line
    out = term.command("list nodes --realm nosuch")
    assert out.startswith("Error: ") and "nosuch" in out, out
    assert term.command("realm") == "m1"
    assert term.command("select node edge1") == ""
    out = term.command("list workers")  # NODE from the selection
    assert not out.startswith("Error"), out
    out = term.command("current")
    assert "edge1" in out and "m1" in out, out
    assert term.command("select node -") == ""
    out = term.command("list workers")
    assert out.startswith("Error: ") and "NODE" in out, out
    out = term.command("select cluster x")
    assert out.startswith("Error: "), out
    assert term.command("set output-format json") == ""
    out = term.command("version")
    doc = json.loads(out)
    assert doc["shell"]["product"] == "wampfabric" and doc["master"]["product"] == "wampfabric", out
    term.command("set output-format table")
