"""Loading a node directory's ``config.json`` / ``config.yaml``.

``load_config`` reports every error it finds (``ConfigErrors``, one line each, with the file and
the JSON path): those of ``config.check.check_config`` (each item on its own) and those only the
node directory can tell (``check_node_config``), which ``start`` would otherwise meet while
booting: listening ports and Unix socket paths used twice (or too long), static web directories,
the Python packages and modules web services load (``static`` from a package and its resource
directory, ``resource`` classes, ``wsgi``/``asgi`` modules: found on the router worker's Python
path without being imported), archive files (there, readable, a ZIP or tar archive, matching
``hashes``), directories of file cookie stores, TLS files (that must load) and guest executables
and working directories that are not there.  Workers that start would skip (``options.disabled``) are
not checked against the node directory.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import shutil
import ssl
import sys
import tarfile
import zipfile
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


def _started_web_services(config: dict):
    """``(worker, JSON path, service)`` of the web path services of the workers start would start."""
    for i, worker in _started_workers(config):
        for j, transport in enumerate(_as_list(worker.get("transports"))):
            transport = _as_dict(transport)
            tpath = f"$.workers[{i}].transports[{j}]"
            for spath, svc in (*_web_services(transport.get("paths"), f"{tpath}.paths"),
                               *_web_services(_as_dict(transport.get("web")).get("paths"), f"{tpath}.web.paths")):
                yield worker, spath, svc


def _check_static_directories(config: dict, cbdir: Path) -> list:
    errors = []
    for _, spath, svc in _started_web_services(config):
        directory = svc.get("directory", ".")
        if svc.get("type") != "static" or "package" in svc or not isinstance(directory, str):
            continue
        full = (cbdir / directory).resolve()
        if not full.is_dir():
            what = "is not a directory" if full.exists() else "does not exist"
            errors.append(ConfigError(f"{spath}.directory",
                                      f"directory '{directory}' {what} ({full}; relative to the node directory)"))
    return errors


# -- what a router worker imports for its web services -----------------------------------------------

_PYTHON_PATH = "on the router worker's Python path: the node directory, options.pythonpath, PYTHONPATH, installed packages"


def _worker_python_path(worker: dict, cbdir: Path) -> list:
    """Where the router worker looks for modules (``NativeWorkerProcess.spawn``: its ``options.pythonpath``
    relative to the node directory, wampfabric's own, the PYTHONPATH of its environment; its current
    directory, the node directory; the interpreter's, which is this one)."""
    import wampfabric
    from .process import create_process_env

    options = _as_dict(worker.get("options"))
    paths = [str(cbdir)]
    paths += [os.path.abspath(os.path.join(cbdir, p)) for p in _as_list(options.get("pythonpath")) if isinstance(p, str)]
    paths.append(str(Path(wampfabric.__file__).resolve().parent.parent))
    paths += [p for p in create_process_env(options).get("PYTHONPATH", "").split(os.pathsep) if p]
    paths += [p for p in sys.path if p]
    return paths


def find_module(name: str, path: list):
    """``(spec, None)``: module ``name`` (dotted) is on ``path``, found without importing anything (no
    package's code runs); ``(None, why)`` in the words of the ``ModuleNotFoundError`` importing it
    would raise."""
    if name in sys.builtin_module_names:
        return importlib.machinery.ModuleSpec(name, None), None
    search, spec = path, None
    parts = name.split(".")
    for k in range(len(parts)):
        here = ".".join(parts[:k + 1])
        if search is None:
            parent = ".".join(parts[:k])
            return None, f"No module named '{here}'; '{parent}' is not a package"
        try:
            spec = importlib.machinery.PathFinder.find_spec(here, list(search))
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return None, f"No module named '{here}'"
        search = spec.submodule_search_locations
    return spec, None


def _check_web_imports(config: dict, cbdir: Path) -> list:
    """The Python modules and package resources the web services load at start: ``static`` with
    ``package``/``resource``, ``resource`` (``classname``), ``wsgi`` and ``asgi`` (``module``); the
    messages are those of the service's start failure."""
    errors = []
    paths: dict = {}  # id(worker) -> its Python path
    for worker, spath, svc in _started_web_services(config):
        kind = svc.get("type")
        if kind == "static" and isinstance(svc.get("package"), str) and isinstance(svc.get("resource"), str):
            key, name = "package", svc["package"]
            failed = f"static service: cannot find resource '{svc['resource']}' of package '{name}'"
        elif kind == "resource" and isinstance(svc.get("classname"), str) and "." in svc["classname"]:
            key, name = "classname", svc["classname"].rpartition(".")[0]
            failed = f"resource service: cannot import '{svc['classname']}'"
        elif kind in ("wsgi", "asgi") and isinstance(svc.get("module"), str):
            key, name = "module", svc["module"]
            failed = f"{kind} service: cannot import module '{name}'"
        else:
            continue
        path = paths.get(id(worker))
        if path is None:
            path = paths[id(worker)] = _worker_python_path(worker, cbdir)
        spec, why = find_module(name, path)
        if spec is None:
            errors.append(ConfigError(f"{spath}.{key}", f"{failed}: ModuleNotFoundError: {why} ({_PYTHON_PATH})"))
        elif key == "package":
            errors += _check_package_resource(spec, failed, svc["resource"], f"{spath}.resource")
    return errors


def _check_package_resource(spec, failed: str, resource: str, where: str) -> list:
    """``resource`` must be a directory of the package (what ``importlib.resources.files`` would give);
    a package that is not in plain directories (a zip) is left to start."""
    if spec.submodule_search_locations is not None:
        bases = [Path(p) for p in spec.submodule_search_locations]
    elif spec.origin and spec.has_location:
        bases = [Path(spec.origin).parent]
    else:
        return []
    bases = [b for b in bases if b.is_dir()]
    if not bases:
        return []
    for base in bases:
        if (base / resource).resolve().is_dir():
            return []
    full = (bases[0] / resource).resolve()
    what = "is not a directory" if full.exists() else "does not exist"
    return [ConfigError(where, f"{failed}: '{full}' {what}")]


def _check_archives(config: dict, cbdir: Path) -> list:
    """An ``archive`` service's file must be there and be a readable ZIP or tar archive with one of
    the ``hashes`` (nothing is ever downloaded)."""
    errors = []
    for _, spath, svc in _started_web_services(config):
        name = svc.get("archive")
        if svc.get("type") != "archive" or not isinstance(name, str):
            continue
        full = (cbdir / name).resolve()
        where = f"{spath}.archive"
        if not full.is_file():
            what = "is not a file" if full.exists() else "does not exist"
            why = " (wampfabric never downloads it from 'origin')" if "origin" in svc else ""
            errors.append(ConfigError(where, f"archive service: archive file '{full}' {what}{why}; '{name}' is "
                                             f"relative to the node directory"))
            continue
        try:
            with open(full, "rb") as f:
                f.read(1)
            if not zipfile.is_zipfile(full) and not tarfile.is_tarfile(full):
                errors.append(ConfigError(where, f"archive service: '{full}' is neither a ZIP nor a tar archive"))
                continue
            hashes = [h.lower() for h in _as_list(svc.get("hashes")) if isinstance(h, str)]
            if hashes:
                digest = hashlib.sha256()
                with open(full, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                if digest.hexdigest() not in hashes:
                    errors.append(ConfigError(f"{spath}.hashes", f"archive service: '{full}' has SHA-256 "
                                                                 f"{digest.hexdigest()}, not one of 'hashes'"))
        except OSError as e:
            errors.append(ConfigError(where, f"archive service: cannot read '{full}': {e.strerror or e}"))
        except (tarfile.TarError, EOFError) as e:
            errors.append(ConfigError(where, f"archive service: cannot read '{full}': {type(e).__name__}: {e}"))
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
    for check in (_check_endpoint_clashes, _check_static_directories, _check_web_imports, _check_archives,
                  _check_cookie_stores, _check_tls_files, _check_guests):
        try:
            errors += check(config, cbdir)
        except Exception as e:  # a malformed item the config checker has reported already
            if not isinstance(e, (KeyError, TypeError, ValueError, AttributeError)):
                raise
    return errors
