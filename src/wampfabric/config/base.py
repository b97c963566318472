"""What every config checker shares: ``ConfigError`` (and ``ConfigErrors``, several at once),
the ``Collector`` of independent items' errors, and the checks of JSON types, objects'
attributes and ``type``-selected items.

Every error names the JSON path of the offending item and says what is wrong; the loader
adds the file name.  Checkers never raise anything but ``ConfigError``, so the CLI can print
one line instead of a traceback.
"""

from __future__ import annotations


class ConfigError(Exception):
    """An invalid node configuration."""

    def __init__(self, path: str, message: str, file: str | None = None):
        super().__init__(message)
        self.path = path
        self.message = message
        self.file = file

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"


class ConfigErrors(ConfigError):
    """Several errors of one config, found in independent items (workers, transports, realms,
    components ...): ``errors`` in config order; ``str()`` is one line per error."""

    def __init__(self, errors: list):
        self.errors = list(errors)
        super().__init__(self.errors[0].path, self.errors[0].message, self.errors[0].file)

    @property
    def file(self):
        return self.errors[0].file

    @file.setter
    def file(self, value) -> None:
        for e in self.errors:
            e.file = value

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def config_errors(e: ConfigError) -> list:
    """The single errors of a ``ConfigError`` (one, or those of a ``ConfigErrors``)."""
    return list(e.errors) if isinstance(e, ConfigErrors) else [e]


class Collector:
    """Checks independent items one after the other, collecting their errors instead of
    stopping at the first; ``done()`` raises them (a ``ConfigErrors`` when there are several)."""

    def __init__(self):
        self.errors: list = []

    def run(self, check, *args) -> bool:
        try:
            check(*args)
            return True
        except ConfigError as e:
            self.errors.extend(config_errors(e))
            return False

    def add(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(path, message))

    def done(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "a boolean",
               float: "a number"}


def _tname(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_TYPE_NAMES.get(x, x.__name__) for x in t)
    return _TYPE_NAMES.get(t, t.__name__)


def _jtype(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer", float: "number",
            type(None): "null"}.get(type(v), type(v).__name__)


def check_type(value, types, path: str):
    ok = isinstance(value, types)
    # bool is an int in Python but not in JSON
    if ok and isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        ok = False
    if not ok:
        raise ConfigError(path, f"must be {_tname(types)}, not {_jtype(value)} {value!r}"[:300])
    return value


def check_dict(cfg, path: str, required: dict, optional: dict) -> dict:
    """Check ``cfg`` is an object with the ``required`` keys and no keys
    beyond ``required`` and ``optional`` (both map key -> expected type)."""
    check_type(cfg, dict, path)
    for key, types in required.items():
        if key not in cfg:
            raise ConfigError(path, f"missing mandatory attribute '{key}'")
        check_type(cfg[key], types, f"{path}.{key}")
    for key, value in cfg.items():
        if key in required:
            continue
        if key not in optional:
            allowed = ", ".join(sorted(list(required) + list(optional)))
            raise ConfigError(f"{path}.{key}", f"unknown attribute '{key}' (allowed here: {allowed})")
        check_type(value, optional[key], f"{path}.{key}")
    return cfg


def checker_for(item, path: str, checkers: dict, what: str, unsupported=()):
    """The checker of an object whose ``type`` selects it from ``checkers`` (a personality map)."""
    check_type(item, dict, path)
    kind = item.get("type")
    if kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type'")
    checker = checkers.get(kind)
    if checker is None:
        if kind in unsupported:
            raise ConfigError(f"{path}.type", f"{what} type '{kind}' is not supported by this version yet")
        raise ConfigError(f"{path}.type", f"unknown {what} type '{kind}' (available: {', '.join(sorted(checkers))})")
    return checker


def list_at(cfg: dict, key: str) -> list:
    """``cfg[key]`` if it is a list (else its type error is reported elsewhere: no items)."""
    value = cfg.get(key, [])
    return value if isinstance(value, list) else []
