"""``wampfabric shell``: the management shell of a master (docs/shell.md).

- ``profile.py``: profiles (master URL, key pair, default mrealm) in ``~/.wampfabric`` or
  ``$WAMPFABRIC_SHELL_DIR``;
- ``context.py``: ``ShellContext``, the connections to the master (global realm, mrealms) and
  calls whose errors become one-line ``ShellError``s;
- ``commands.py``: every verb/noun (``COMMANDS``), their arguments, the parser both the one-shot
  and the interactive mode use, and live names for completion;
- ``output.py``: tables, JSON, YAML;
- ``cli.py``: the click command (one-shot, ``init``, ``auth``, interactive without a verb);
- ``interactive.py``: the interactive mode (history, completion, help); ``monitor.py``: the live
  view of an mrealm.
"""
