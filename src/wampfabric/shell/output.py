"""The shell's output: readable tables (rich) by default, ``--output json`` / ``yaml`` for scripts."""

from __future__ import annotations

import io
import json
import shutil
import sys
from typing import Any

FORMATS = ("table", "json", "yaml")


def _plain(value: Any) -> Any:
    """JSON-able: bytes as hex, anything else unknown as its str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "args") and hasattr(value, "kwargs"):  # a call Result with several values
        return {"args": _plain(value.args), "kwargs": _plain(value.kwargs)}
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(_plain(value), separators=(",", ":"), sort_keys=True)
    return str(value)


def render(result: Any, fmt: str = "table", columns: list[str] | None = None, title: str | None = None) -> str:
    """The text to print for ``result``."""
    data = _plain(result)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip()
    return _table(data, columns, title)


def _table(data: Any, columns: list[str] | None, title: str | None) -> str:
    from rich.console import Console
    from rich.table import Table

    if data is None:
        return "ok"
    if not isinstance(data, (dict, list)):
        return str(data)
    if isinstance(data, list) and not all(isinstance(d, dict) for d in data):
        return "\n".join(_cell(d) for d in data) if data else "(none)"
    table = Table(title=title, show_header=True, header_style="bold", box=None, pad_edge=False)
    if isinstance(data, dict):
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for k in sorted(data):
            table.add_row(k, _cell(data[k]))
    else:
        if not data:
            return "(none)"
        cols = list(columns or [])
        if not cols:
            for row in data:
                cols += [k for k in row if k not in cols]
        for c in cols:
            table.add_column(c, overflow="fold")
        for row in data:
            table.add_row(*(_cell(row.get(c)) for c in cols))
    buf = io.StringIO()
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 160
    Console(file=buf, width=width, color_system=None, highlight=False, soft_wrap=False).print(table)
    # rich pads every cell to its column's width: no trailing spaces in what we print
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")
