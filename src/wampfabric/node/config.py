"""Loading a node directory's ``config.json`` / ``config.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

from .checkconfig import ConfigError, check_config

CONFIG_NAMES = ("config.json", "config.yaml", "config.yml")


def find_config(cbdir: Path, name: str | None = None) -> Path:
    if name:
        p = Path(name)
        return p if p.is_absolute() else cbdir / p
    for n in CONFIG_NAMES:
        if (cbdir / n).exists():
            return cbdir / n
    return cbdir / CONFIG_NAMES[0]


def load_config(path: Path, personality) -> dict:
    """Read, parse and check a node config; raise ``ConfigError`` naming the file."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("$", "config file not found", file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("$", f"cannot read config file: {e}", file) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError("$", f"invalid YAML{where}: {getattr(e, 'problem', e)}", file) from None
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("$", f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", file) from None
    try:
        return check_config(config, personality)
    except ConfigError as e:
        e.file = file
        raise
