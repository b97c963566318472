"""The shell's command-line parser (shell/commands.py), shared by the one-shot and interactive
modes: arguments, options, JSON values, global options anywhere, selection defaults, and the
one-line usage errors."""

from __future__ import annotations

import pytest

from wampfabric.shell import clusters  # noqa: F401  (its commands are in the table too)
from wampfabric.shell.commands import COMMANDS, UsageError, parse, split_global


def test_arguments_and_options():
    cmd, values = parse(["start", "router-transport", "edge1", "rw1", "t1", "--config", '{"type": "websocket"}'])
    assert (cmd.verb, cmd.noun) == ("start", "router-transport")
    assert values == {"node": "edge1", "worker": "rw1", "transport": "t1", "config": {"type": "websocket"}}
    cmd, values = parse(["list", "nodes", "--online"])
    assert values["online"] is True and values["names"] in (None, False)


@pytest.mark.parametrize("words, text", [
    ([], "a command is a verb and a noun"),
    (["frob"], "unknown verb 'frob'"),
    (["list"], "'list' needs a noun"),
    (["list", "frobs"], "unknown command 'list frobs'"),
    (["show", "node"], "needs NODE"),
    (["show", "node", "a", "b"], "takes 1 argument(s)"),
    (["list", "nodes", "--bogus"], "has no option --bogus"),
    (["list", "nodes", "--online=1"], "is a switch"),
    (["start", "router-transport", "n", "w", "t", "--config"], "--config needs a value"),
    (["start", "router-transport", "n", "w", "t", "--config", "{bad"], "--config: not JSON"),
    (["start", "router-transport", "n", "w", "t", "--config", "3"], "a JSON object is needed"),
    (["start", "router-transport", "n", "w", "t"], "needs --config"),
])
def test_usage_errors(words, text):
    with pytest.raises(UsageError) as e:
        parse(words)
    assert text in str(e.value) and "\n" not in str(e.value)


def test_global_options_anywhere():
    opts, rest = split_global(["list", "--realm", "m2", "nodes", "--output=json"])
    assert opts == {"realm": "m2", "output": "json"} and rest == ["list", "nodes"]
    with pytest.raises(UsageError):
        split_global(["list", "nodes", "--output", "xml"])
    with pytest.raises(UsageError):
        split_global(["list", "nodes", "--realm"])


def test_selection_fills_leading_arguments():
    sel = {"node": "edge1", "worker": "rw1"}
    values = parse(["list", "router-realms"], sel)[1]
    assert (values["node"], values["worker"]) == ("edge1", "rw1")
    values = parse(["list", "router-realms", "rw2"], sel)[1]
    assert (values["node"], values["worker"]) == ("edge1", "rw2")
    values = parse(["list", "router-realms", "edge2", "rw3"], sel)[1]
    assert (values["node"], values["worker"]) == ("edge2", "rw3")
    # a selection never fills an argument of another kind
    with pytest.raises(UsageError):
        parse(["show", "router-realm"], {"node": "edge1"})


def test_every_command_has_help_and_usage():
    for (verb, noun), cmd in COMMANDS.items():
        assert cmd.help and cmd.usage.startswith(f"{verb} {noun}")
        assert cmd.scope in ("global", "mrealm", "local")
