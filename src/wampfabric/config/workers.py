"""Workers: router, container and guest workers, their options and components, worker ids."""

from __future__ import annotations

import os

from ..protocol.uri import check_uri
from . import defaults
from .auth import check_auth_throttle
from .base import Collector, ConfigError, check_dict, check_type, checker_for, list_at
from .realms import check_realm
from .transports import check_connecting_transport


RESTART_POLICIES = ("restart-never", "restart-always", "restart-on-failed")
CONTAINER_SHUTDOWN = ("shutdown-manual", "shutdown-on-last-component-stopped")


def check_env(env, path: str) -> None:
    check_dict(env, path, {}, {"inherit": (bool, list), "vars": dict})
    if isinstance(env.get("inherit"), list):
        for i, name in enumerate(env["inherit"]):
            check_type(name, str, f"{path}.inherit[{i}]")
    for k, v in env.get("vars", {}).items():
        check_type(v, (str, int, float, bool), f"{path}.vars.{k}")


def check_restart(value, path: str) -> None:
    check_type(value, str, path)
    if value not in RESTART_POLICIES:
        raise ConfigError(path, f"invalid restart policy '{value}' (one of: {', '.join(RESTART_POLICIES)})")


NATIVE_WORKER_OPTIONS = {"title": str, "disabled": (bool, str), "pythonpath": list, "cpu_affinity": list,
                         "env": dict, "reactor": dict, "expose_controller": bool, "expose_shared": bool,
                         "restart": str}


def _check_native_options(options, path: str, extra: dict) -> None:
    check_dict(options, path, {}, {**NATIVE_WORKER_OPTIONS, **extra})
    for i, p in enumerate(options.get("pythonpath", [])):
        check_type(p, str, f"{path}.pythonpath[{i}]")
    if "env" in options:
        check_env(options["env"], f"{path}.env")
    if "restart" in options:
        check_restart(options["restart"], f"{path}.restart")


#: the most replicas of one router worker (a bound against typos: 1000 processes is no node)
MAX_REPLICAS = 256
#: what the replicas of a router worker add to its config (node/replicas.py): not the user's to name
REPLICA_LINK_TRANSPORT_ID = "replica-links"
REPLICA_LINK_ROLE = "wampfabric.replica"


def check_replicas(value, path: str) -> None:
    """``replicas``: how many router worker processes serve this worker's config behind its ports
    (an integer 1 .. MAX_REPLICAS, or ``"auto"``: one per CPU core)."""
    if value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
        raise ConfigError(path, f"must be an integer 1..{MAX_REPLICAS} (router worker processes sharing this "
                                f"worker's listening ports) or \"auto\" (one per CPU core), not {value!r}")


def replicas_asked(worker) -> bool:
    """Does a router worker config ask for more than one process (``replicas`` > 1 or ``"auto"``)?"""
    options = worker.get("options") if isinstance(worker, dict) else None
    n = options.get("replicas", 1) if isinstance(options, dict) else 1
    return n == "auto" or (isinstance(n, int) and not isinstance(n, bool) and n > 1)


def _check_replicated(worker, path: str) -> None:
    """What N processes of one config cannot share: a Unix socket path, an ephemeral port (each
    replica would get its own), the names the replicas' links use."""
    rpath = f"{path}.options.replicas"
    for i, t in enumerate(list_at(worker, "transports")):
        if not isinstance(t, dict):
            continue
        ep = t.get("endpoint")
        if isinstance(ep, dict) and ep.get("type") == "unix":
            raise ConfigError(f"{path}.transports[{i}].endpoint.type",
                              f"a router worker with replicas ({rpath}) cannot listen on a Unix socket "
                              "(N processes cannot bind one path; use a tcp endpoint, which they share)")
        if isinstance(ep, dict) and ep.get("type") == "tcp" and ep.get("port") == 0:
            raise ConfigError(f"{path}.transports[{i}].endpoint.port",
                              f"a router worker with replicas ({rpath}) needs a fixed port (with port 0 every "
                              "replica would listen on a port of its own)")
        if t.get("id") == REPLICA_LINK_TRANSPORT_ID:
            raise ConfigError(f"{path}.transports[{i}].id",
                              f"transport ID '{REPLICA_LINK_TRANSPORT_ID}' is reserved for the links between "
                              f"replicas ({rpath})")
    for i, realm in enumerate(list_at(worker, "realms")):
        for j, role in enumerate(realm.get("roles", []) if isinstance(realm, dict) else []):
            if isinstance(role, dict) and role.get("name") == REPLICA_LINK_ROLE:
                raise ConfigError(f"{path}.realms[{i}].roles[{j}].name",
                                  f"role '{REPLICA_LINK_ROLE}' is reserved for the links between replicas ({rpath})")


def replica_count(worker_cfg) -> int:
    """How many processes a worker config asks for (1 unless it is a router worker with
    ``options.replicas``; ``"auto"``: one per CPU core, ``os.cpu_count()``)."""
    if not isinstance(worker_cfg, dict) or worker_cfg.get("type") != "router":
        return 1
    options = worker_cfg.get("options")
    n = options.get("replicas", 1) if isinstance(options, dict) else 1
    if n == "auto":
        return max(1, os.cpu_count() or 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


def replica_ids(worker_id: str, n: int) -> list[str]:
    """The worker IDs of a worker's ``n`` replicas."""
    return [f"{worker_id}-{i}" for i in range(1, n + 1)]


def check_router_worker_options(options, path: str, personality=None) -> None:
    _check_native_options(options, path, {"busy_poll_us": int, "auth_throttle": dict, "replicas": (int, str)})
    if "replicas" in options:
        check_replicas(options["replicas"], f"{path}.replicas")
    bp = options.get("busy_poll_us", defaults.BUSY_POLL_US)
    if isinstance(bp, bool) or not 0 <= bp <= 100_000:
        raise ConfigError(f"{path}.busy_poll_us", f"must be an integer 0..100000 (microseconds; 0 = off), not {bp!r}")
    if "auth_throttle" in options:
        check_auth_throttle(options["auth_throttle"], f"{path}.auth_throttle")


def check_container_worker_options(options, path: str, personality=None) -> None:
    _check_native_options(options, path, {"shutdown": str})
    if options.get("shutdown", defaults.CONTAINER_SHUTDOWN) not in CONTAINER_SHUTDOWN:
        raise ConfigError(f"{path}.shutdown",
                          f"invalid shutdown mode '{options['shutdown']}' (one of: {', '.join(CONTAINER_SHUTDOWN)})")


def check_native_worker_options(worker_type: str, options, path: str, personality) -> None:
    checker = personality.NATIVE_WORKERS[worker_type]["check_options"]
    checker(options, path, personality)


COMPONENT_CALLBACKS = ("join", "leave", "connect", "disconnect", "ready")


def _check_component(comp, path: str, extra_required: dict, extra_optional: dict) -> None:
    check_type(comp, dict, path)
    kind = comp.get("type")
    common = {"id": str, "extra": (dict, list, str, int, float, bool, type(None)), **extra_optional}
    if kind == "class":
        check_dict(comp, path, {"type": str, "classname": str, "realm": str, **extra_required}, common)
    elif kind == "function":
        check_dict(comp, path, {"type": str, "realm": str, "callbacks": dict, **extra_required}, common)
        for ev, fn in comp["callbacks"].items():
            if ev not in COMPONENT_CALLBACKS:
                raise ConfigError(f"{path}.callbacks.{ev}",
                                  f"unknown callback '{ev}' (one of: {', '.join(COMPONENT_CALLBACKS)})")
            check_type(fn, str, f"{path}.callbacks.{ev}")
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: class, function)")
    else:
        raise ConfigError(f"{path}.type", f"invalid component type '{kind}' (one of: class, function)")
    if not check_uri(comp["realm"], False):
        raise ConfigError(f"{path}.realm", f"invalid realm name '{comp['realm']}'")


def check_container_component(comp, path: str) -> None:
    _check_component(comp, path, {"transport": dict}, {})
    check_connecting_transport(comp["transport"], f"{path}.transport")


def check_router_component(comp, path: str) -> None:
    _check_component(comp, path, {}, {"role": str, "references": list})


def _check_ids(items: list, path: str, what: str) -> None:
    ids = set()
    for i, item in enumerate(items):
        iid = item.get("id") if isinstance(item, dict) else None
        if iid is not None:
            check_type(iid, str, f"{path}[{i}].id")
            if iid in ids:
                raise ConfigError(f"{path}[{i}].id", f"duplicate {what} id '{iid}'")
            ids.add(iid)


def _check_typed(item, path: str, checkers: dict, what: str, personality) -> None:
    checker_for(item, path, checkers, what)(item, path, personality)


def check_router_worker(worker, path: str, personality) -> None:
    check_type(worker, dict, path)
    c = Collector()  # each realm, transport and component is checked (and reported) on its own
    c.run(check_dict, worker, path, {"type": str},
          {"id": str, "options": dict, "manhole": dict, "realms": list, "transports": list,
           "components": list, "connections": list})
    if "options" in worker:  # the personality's rule (a master's router worker has its own)
        check_options = (personality.NATIVE_WORKERS["router"]["check_options"] if personality is not None
                         else check_router_worker_options)
        c.run(check_options, worker["options"], f"{path}.options", personality)
    names = set()
    for i, realm in enumerate(list_at(worker, "realms")):
        c.run(check_realm, realm, f"{path}.realms[{i}]")
        name = realm.get("name") if isinstance(realm, dict) else None
        if isinstance(name, str):
            if name in names:
                c.add(f"{path}.realms[{i}].name", f"duplicate realm '{name}'")
            names.add(name)
    for i, transport in enumerate(list_at(worker, "transports")):
        c.run(_check_typed, transport, f"{path}.transports[{i}]", personality.ROUTER_TRANSPORT_CHECKERS, "transport",
              personality)
    c.run(_check_ids, list_at(worker, "transports"), f"{path}.transports", "transport")
    for i, comp in enumerate(list_at(worker, "components")):
        if c.run(check_router_component, comp, f"{path}.components[{i}]") and comp["realm"] not in names:
            c.add(f"{path}.components[{i}].realm", f"no realm '{comp['realm']}' on this router worker")
    c.run(_check_ids, list_at(worker, "components"), f"{path}.components", "component")
    if worker.get("connections"):
        c.add(f"{path}.connections", "connections are not supported by this version yet")
    if replicas_asked(worker):
        c.run(_check_replicated, worker, path)
    c.done()


def check_container_worker(worker, path: str, personality) -> None:
    check_type(worker, dict, path)
    c = Collector()  # each component is checked (and reported) on its own
    c.run(check_dict, worker, path, {"type": str},
          {"id": str, "options": dict, "manhole": dict, "components": list, "connections": list})
    if "options" in worker:
        c.run(check_container_worker_options, worker["options"], f"{path}.options", personality)
    for i, comp in enumerate(list_at(worker, "components")):
        c.run(check_container_component, comp, f"{path}.components[{i}]")
    c.run(_check_ids, list_at(worker, "components"), f"{path}.components", "component")
    if worker.get("connections"):
        c.add(f"{path}.connections", "connections are not supported by this version yet")
    c.done()


def check_guest_worker(worker, path: str, personality=None) -> None:
    check_dict(worker, path, {"type": str, "executable": str}, {"id": str, "arguments": list, "options": dict})
    for i, a in enumerate(worker.get("arguments", [])):
        check_type(a, (str, int, float), f"{path}.arguments[{i}]")
    options = worker.get("options", {})
    opath = f"{path}.options"
    check_dict(options, opath, {}, {"env": dict, "workdir": str, "stdin": (str, dict), "stdout": str,
                                    "stderr": str, "watch": dict, "disabled": (bool, str), "restart": str,
                                    "title": str})
    if "env" in options:
        check_env(options["env"], f"{opath}.env")
    if "restart" in options:
        check_restart(options["restart"], f"{opath}.restart")
    for name in ("stdout", "stderr"):
        if options.get(name, "log") not in ("log", "drop", "close"):
            raise ConfigError(f"{opath}.{name}", f"must be one of: log, drop, close (not '{options[name]}')")
    stdin = options.get("stdin")
    if isinstance(stdin, str) and stdin != "close":
        raise ConfigError(f"{opath}.stdin", "must be 'close' or an object {type: json, value, close}")
    if isinstance(stdin, dict):
        check_dict(stdin, f"{opath}.stdin", {"type": str},
                   {"value": (dict, list, str, int, float, bool, type(None)), "close": bool})
        if stdin["type"] != "json":
            raise ConfigError(f"{opath}.stdin.type", "must be 'json'")
    if "watch" in options:
        raise ConfigError(f"{opath}.watch", "watching directories is not supported by this version yet")


MAX_WORKER_ID_LENGTH = 255


def worker_id_problem(wid) -> str | None:
    """What makes ``wid`` unfit to name a worker, or None.  A worker's procedures and events are
    ``crossbar.worker.<id>.*`` (loose URIs, like the worker's authrole ``crossbar.worker.<id>``), so
    the id is one URI component: not empty, without whitespace, '.' or '#'."""
    if not isinstance(wid, str):
        return "must be a string"
    if not wid:
        return "must not be empty (leave 'id' out for an automatic one)"
    if wid == "controller":
        return "'controller' is reserved"
    if len(wid) > MAX_WORKER_ID_LENGTH:
        return f"longer than {MAX_WORKER_ID_LENGTH} characters"
    bad = sorted({ch for ch in wid if ch in ".#" or ch.isspace()})
    if bad or not check_uri(f"crossbar.worker.{wid}", False):
        return (f"must not contain {', '.join(repr(ch) for ch in bad) or 'that'} (whitespace, '.' and '#' cannot be "
                "in a URI component: the worker's procedures and events are crossbar.worker.<id>.*)")
    return None


WORKER_CHECKERS = {"router": check_router_worker, "container": check_container_worker, "guest": check_guest_worker}
