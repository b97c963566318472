"""Loading a node directory's ``config.json`` / ``config.yaml``.

``load_config`` reports every error it finds (``ConfigErrors``, one line each, with the file and
the JSON path): those of ``config.check.check_config`` (each item on its own) and those only the
node directory can tell (``check_node_config``), which ``start`` would otherwise meet while
booting: listening ports and Unix socket paths used twice (or too long), static web directories,
directories of file cookie stores, TLS files (that must load) and guest executables and working
directories that are not there.  Workers that start would skip (``options.disabled``) are
not checked against the node directory.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
from pathlib import Path

from ..config.base import ConfigError, ConfigErrors, config_errors
from ..config.check import check_config

CONFIG_NAMES = ("config.json", "config.yaml", "config.yml")


def find_config(cbdir: Path, name: str | None = None) -> Path:
    if name:
        p = Path(name)
        return p if p.is_absolute() else cbdir / p
    for n in CONFIG_NAMES:
        if (cbdir / n).exists():
            return cbdir / n
    return cbdir / CONFIG_NAMES[0]


def load_config(path: Path, personality, cbdir: Path | None = None, node_checks: bool = True) -> dict:
    """Read, parse and check a node config; raise ``ConfigError`` naming the file (``ConfigErrors``
    for several errors).  ``cbdir``: the node directory (default: the config file's directory);
    ``node_checks``: also check it against the node directory (``check_node_config``)."""
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
    errors = []
    try:
        check_config(config, personality)
    except ConfigError as e:
        errors = config_errors(e)
    if node_checks and isinstance(config, dict):
        errors += check_node_config(config, Path(cbdir) if cbdir is not None else path.parent)
    for e in errors:
        e.file = file
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return config


def disabled_reason(worker_cfg: dict) -> str | None:
    """``options.disabled``: ``true``, or the name of an environment variable that disables when set
    to 1/true/yes/on.  Returns the reason of the design document's log line, or None."""
    options = worker_cfg.get("options", {})
    disabled = options.get("disabled") if isinstance(options, dict) else None
    if disabled is True:
        return "disabled from config parameter"
    if isinstance(disabled, str) and disabled:
        if os.environ.get(disabled, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"disabled from envvar {disabled}"
    return None


# -- what only the node directory tells ------------------------------------------------------------

def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _started_workers(config: dict):
    """``(index, worker)`` of the workers start would start."""
    for i, worker in enumerate(_as_list(config.get("workers"))):
        if isinstance(worker, dict) and not disabled_reason(worker):
            yield i, worker


def _listening_endpoints(config: dict):
    """``(JSON path, endpoint)`` of every endpoint the node would listen on."""
    for i, worker in _started_workers(config):
        for j, transport in enumerate(_as_list(worker.get("transports"))):
            ep = _as_dict(transport).get("endpoint")
            if isinstance(ep, dict):
                yield f"$.workers[{i}].transports[{j}].endpoint", ep
    ep = _as_dict(_as_dict(_as_dict(config.get("controller")).get("transport")).get("endpoint"))
    if ep:
        yield "$.controller.transport.endpoint", ep


_WILDCARDS = ("0.0.0.0", "::", "")
_LOCALHOST = {4: "127.0.0.1", 6: "::1"}


def _tcp_address(ep: dict):
    """``(ipv6, host)`` the endpoint binds, ``localhost`` as the address it resolves to."""
    from ..transport.endpoints import tcp_bind_address  # (as tls_context below: not at import)

    ipv6, host = tcp_bind_address(ep)
    if host == "localhost":
        host = _LOCALHOST[6 if ipv6 else 4]
    return ipv6, host


def _tcp_overlap(a, b) -> bool:
    (a6, ah), (b6, bh) = a, b
    if a6 == b6:
        return ah == bh or ah in _WILDCARDS or bh in _WILDCARDS
    return "::" in (ah, bh)  # an IPv6 wildcard socket is dual-stack: it takes the IPv4 port too (Linux default)


def _check_endpoint_clashes(config: dict, cbdir: Path) -> list:
    errors = []
    tcp, unix = [], {}
    for path, ep in _listening_endpoints(config):
        if ep.get("type") == "tcp":
            port = ep.get("port")
            host = ep.get("host", ep.get("interface"))
            if not isinstance(port, int) or isinstance(port, bool) or port == 0 or not isinstance(host, (str, type(None))):
                continue
            addr = _tcp_address(ep)
            for other_path, other_ep, other_addr in tcp:
                if other_ep["port"] == port and _tcp_overlap(addr, other_addr) \
                        and not (ep.get("shared") and other_ep.get("shared")):
                    errors.append(ConfigError(
                        f"{path}.port", f"port {port} on {addr[1] or '*'} is already used by {other_path} "
                                        f"(port {port} on {other_addr[1] or '*'}): the node could not listen on both "
                                        f"(unless both endpoints are 'shared')"))
                    break
            tcp.append((path, ep, addr))
        elif ep.get("type") == "unix" and isinstance(ep.get("path"), str) and ep["path"]:
            full = Path(os.path.normpath(cbdir / ep["path"]))
            if full in unix:
                errors.append(ConfigError(f"{path}.path", f"Unix socket {full} is already used by {unix[full]}"))
            else:
                unix[full] = path
                if not full.parent.is_dir():
                    errors.append(ConfigError(f"{path}.path", f"directory {full.parent} does not exist"))
                elif len(os.fsencode(full)) > UNIX_PATH_MAX:
                    errors.append(ConfigError(f"{path}.path", f"Unix socket path {full} is too long "
                                                              f"({len(os.fsencode(full))} bytes; at most {UNIX_PATH_MAX})"))
    return errors


UNIX_PATH_MAX = 107  # sun_path is 108 bytes on Linux, with the terminating NUL


def _web_services(services, path: str):
    """``(JSON path, service)`` of a web transport's path services (nested ``paths`` too)."""
    for p, svc in _as_dict(services).items():
        if isinstance(svc, dict):
            spath = f"{path}['{p}']"
            yield spath, svc
            yield from _web_services(svc.get("paths"), f"{spath}.paths")


def _check_static_directories(config: dict, cbdir: Path) -> list:
    errors = []
    for i, worker in _started_workers(config):
        for j, transport in enumerate(_as_list(worker.get("transports"))):
            transport = _as_dict(transport)
            tpath = f"$.workers[{i}].transports[{j}]"
            services = [*_web_services(transport.get("paths"), f"{tpath}.paths"),
                        *_web_services(_as_dict(transport.get("web")).get("paths"), f"{tpath}.web.paths")]
            for spath, svc in services:
                directory = svc.get("directory", ".")
                if svc.get("type") != "static" or "package" in svc or not isinstance(directory, str):
                    continue
                full = (cbdir / directory).resolve()
                if not full.is_dir():
                    what = "is not a directory" if full.exists() else "does not exist"
                    errors.append(ConfigError(f"{spath}.directory",
                                              f"directory '{directory}' {what} ({full}; relative to the node directory)"))
    return errors


def _check_cookie_stores(config: dict, cbdir: Path) -> list:
    """A ``file`` cookie store is opened (created) in an existing directory."""
    errors = []
    for i, worker in _started_workers(config):
        for j, transport in enumerate(_as_list(worker.get("transports"))):
            transport = _as_dict(transport)
            tpath = f"$.workers[{i}].transports[{j}]"
            holders = [(tpath, transport),
                       *_web_services(transport.get("paths"), f"{tpath}.paths"),
                       *_web_services(transport.get("websocket"), f"{tpath}.websocket"),
                       *_web_services(_as_dict(transport.get("web")).get("paths"), f"{tpath}.web.paths")]
            for hpath, holder in holders:
                store = _as_dict(_as_dict(holder.get("cookie")).get("store"))
                filename = store.get("filename", "cookies.dat")
                if store.get("type") != "file" or not isinstance(filename, str):
                    continue
                full = cbdir / filename
                if not full.parent.is_dir():
                    errors.append(ConfigError(f"{hpath}.cookie.store.filename",
                                              f"directory {full.parent} does not exist"))
    return errors


def _check_tls_files(config: dict, cbdir: Path) -> list:
    from ..transport.endpoints import tls_context

    errors = []
    for path, ep in _listening_endpoints(config):
        tls = ep.get("tls")
        if not isinstance(tls, dict):
            continue
        missing = False
        for key in ("key", "certificate", "chain_certificates", "ca_certificates"):
            names = tls.get(key)
            for k, name in ([(None, names)] if isinstance(names, str) else enumerate(_as_list(names))):
                if isinstance(name, str) and not (cbdir / name).is_file():
                    where = f"{path}.tls.{key}" + (f"[{k}]" if k is not None else "")
                    errors.append(ConfigError(where, f"file '{name}' not found ({cbdir / name})"))
                    missing = True
        if missing or not isinstance(tls.get("key"), str) or not isinstance(tls.get("certificate"), str):
            continue
        try:
            tls_context(tls, cbdir)
        except (OSError, ssl.SSLError, ValueError, TypeError) as e:
            errors.append(ConfigError(f"{path}.tls", f"cannot use the TLS key and certificates: {e}"))
    return errors


def _is_executable(fn: str) -> bool:
    return os.path.exists(fn) and os.access(fn, os.X_OK) and not os.path.isdir(fn)


def _check_guests(config: dict, cbdir: Path) -> list:
    """What ``GuestWorkerProcess.resolve`` and the spawn need: the working directory and the executable."""
    errors = []
    for i, worker in _started_workers(config):
        if worker.get("type") != "guest" or not isinstance(worker.get("executable"), str):
            continue
        options = _as_dict(worker.get("options"))
        workdir = options.get("workdir", ".")
        if not isinstance(workdir, str):
            continue
        wd = os.path.abspath(os.path.join(cbdir, workdir))
        if not os.path.isdir(wd):
            errors.append(ConfigError(f"$.workers[{i}].options.workdir", f"directory '{workdir}' does not exist ({wd})"))
            continue
        exe = worker["executable"]
        if not _is_executable(os.path.abspath(os.path.join(wd, exe))):
            found = shutil.which(exe)
            if found is None or not _is_executable(found):
                errors.append(ConfigError(f"$.workers[{i}].executable", f"could not find an executable for '{exe}'"))
    return errors


def check_node_config(config: dict, cbdir: Path) -> list:
    """The errors start would meet in the node directory (a list of ``ConfigError``)."""
    errors = []
    for check in (_check_endpoint_clashes, _check_static_directories, _check_cookie_stores, _check_tls_files,
                  _check_guests):
        try:
            errors += check(config, cbdir)
        except Exception as e:  # a malformed item the config checker has reported already
            if not isinstance(e, (KeyError, TypeError, ValueError, AttributeError)):
                raise
    return errors
