"""The node controller's section: node id, options (shutdown triggers), management transport, and
``fabric`` (an edge node's uplink to its master: ``transport``, ``heartbeat``; docs/fabric.md), and
``fabric-center`` (a master node's database sizes)."""

from __future__ import annotations

import re

from . import defaults
from .auth import check_auth
from .base import ConfigError, check_dict, check_type
from .transports import check_connecting_transport, check_serializers

NODE_SHUTDOWN_TRIGGERS = ("shutdown_on_shutdown_requested", "shutdown_on_worker_exit",
                          "shutdown_on_worker_exit_with_error", "shutdown_on_last_worker_exit")


def check_controller(controller, path: str, personality) -> None:
    check_dict(controller, path, {},
               {"id": str, "options": dict, "manhole": dict, "transport": dict, "fabric": dict,
                "fabric-center": dict, "enable_docker": bool, "connections": list,
                "blockchain": (dict, type(None))})
    if "id" in controller and not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", controller["id"]):
        raise ConfigError(f"{path}.id",
                          f"invalid node id '{controller['id']}' (must match ^[a-z][a-z0-9_]{{2,63}}$)")
    if "options" in controller:
        opath = f"{path}.options"
        opts = check_dict(controller["options"], opath, {},
                          {"title": str, "shutdown": list, "shutdown_timeout": (int, float), "env": dict,
                           "enable_parallel_worker_start": bool})
        for i, trig in enumerate(opts.get("shutdown", [])):
            check_type(trig, str, f"{opath}.shutdown[{i}]")
            if trig not in NODE_SHUTDOWN_TRIGGERS:
                raise ConfigError(f"{opath}.shutdown[{i}]",
                                  f"invalid shutdown trigger '{trig}' (one of: {', '.join(NODE_SHUTDOWN_TRIGGERS)})")
        if opts.get("shutdown_timeout", defaults.SHUTDOWN_TIMEOUT) <= 0:
            raise ConfigError(f"{opath}.shutdown_timeout", "must be positive")
    if "transport" in controller:
        tpath = f"{path}.transport"
        tr = check_dict(controller["transport"], tpath, {"type": str, "endpoint": dict},
                        {"serializers": list, "auth": dict, "options": dict, "id": str})
        if tr["type"] != "rawsocket":
            raise ConfigError(f"{tpath}.type", "the node management transport must be 'rawsocket'")
        ep = check_dict(tr["endpoint"], f"{tpath}.endpoint", {"type": str, "path": str}, {"backlog": int})
        if ep["type"] != "unix":
            raise ConfigError(f"{tpath}.endpoint.type",
                              "the node management transport listens on a Unix socket only (type 'unix')")
        if not ep["path"] or ep["path"].startswith("/") or ".." in ep["path"].split("/"):
            raise ConfigError(f"{tpath}.endpoint.path", "must be a relative path inside the node directory")
        if "serializers" in tr:
            check_serializers(tr["serializers"], f"{tpath}.serializers")
        if "auth" in tr:
            check_auth(tr["auth"], f"{tpath}.auth")
    if "fabric" in controller:
        check_fabric(controller["fabric"], f"{path}.fabric")
    if "fabric-center" in controller:
        check_fabric_center(controller["fabric-center"], f"{path}.fabric-center")


#: ``controller.fabric-center.database``: a master's database sizes in bytes (global, each mrealm's)
FABRIC_CENTER_DATABASE = {"maxsize": 128 * 2**20, "mrealm_maxsize": 2**30}
_MIN_DB_SIZE = 2**20  # below 1 MiB an LMDB database holds almost nothing beyond its reserve
_MAX_DB_SIZE = 2**44


def check_fabric_center(fc, path: str) -> None:
    """``controller.fabric-center`` (a master node): ``database`` with ``maxsize`` (the global
    database ``.db-controller``) and ``mrealm_maxsize`` (each ``.db-mrealm-<oid>``), integers in
    bytes, 1 MiB .. 16 TiB; ``heartbeats`` with ``retention`` (s, >= 600: two metering
    intervals) and ``prune_interval`` (s, 1 .. 86400); ``metering`` (check_metering)."""
    check_dict(fc, path, {}, {"database": dict, "heartbeats": dict, "metering": dict})
    if "metering" in fc:
        metering = check_metering(fc["metering"], f"{path}.metering")
        retention = (fc.get("heartbeats") or {}).get("retention")
        if type(retention) is int and retention < 2 * metering["period"]:
            raise ConfigError(f"{path}.heartbeats.retention",
                              f"must be at least two metering periods ({2 * metering['period']} s), not {retention}")
    if "heartbeats" in fc:
        # heartbeat retention of the mrealm databases (master/retention.py checks the same at start)
        hpath = f"{path}.heartbeats"
        hb = check_dict(fc["heartbeats"], hpath, {}, {"retention": int, "prune_interval": int})
        for key, lo, hi in (("retention", 600, 10 * 365 * 86_400), ("prune_interval", 1, 86_400)):
            if key in hb and not lo <= hb[key] <= hi:
                raise ConfigError(f"{hpath}.{key}", f"must be an integer number of seconds from {lo} to {hi}, "
                                                    f"not {hb[key]}")
    if "database" in fc:
        dpath = f"{path}.database"
        db = check_dict(fc["database"], dpath, {}, {k: int for k in FABRIC_CENTER_DATABASE})
        for key in FABRIC_CENTER_DATABASE:
            if key in db and not _MIN_DB_SIZE <= db[key] <= _MAX_DB_SIZE:
                raise ConfigError(f"{dpath}.{key}", f"must be between {_MIN_DB_SIZE} (1 MiB) and {_MAX_DB_SIZE} "
                                                    f"(16 TiB) bytes, not {db[key]}")


#: ``controller.fabric-center.metering``: usage aggregation and submission (master/metering.py):
#: ``period`` s per usage record, ``grace`` s after an interval's end before it is aggregated;
#: ``submit``: ``url`` of the metering service (None: ``CROSSBAR_METERING_URL``, else records stay
#: local), ``timeout`` s per POST, ``period``: the longest backoff (s) between failed rounds,
#: ``maxerrors``: failed records that end a round (Crossbar.io's shape, each knob used: D11)
METERING_DEFAULTS = {"period": 300, "grace": 5, "submit": {"url": None, "timeout": 5, "period": 300, "maxerrors": 10}}
_METERING_LIMITS = {"period": (1, 86_400), "grace": (0, 3_600)}
_SUBMIT_LIMITS = {"timeout": (1, 300), "period": (1, 86_400), "maxerrors": (1, 100_000)}


def check_metering(section, path: str) -> dict:
    """``controller.fabric-center.metering`` with the defaults filled in (METERING_DEFAULTS);
    ConfigError naming the path otherwise.  ``submit.url`` stays None when not given."""
    m = check_dict(section, path, {}, {"period": int, "grace": int, "submit": dict})
    out = {k: m.get(k, v) for k, v in METERING_DEFAULTS.items() if k != "submit"}
    for key, (lo, hi) in _METERING_LIMITS.items():
        if type(out[key]) is not int or not lo <= out[key] <= hi:
            raise ConfigError(f"{path}.{key}", f"must be an integer number of seconds from {lo} to {hi}, "
                                               f"not {out[key]!r}")
    spath = f"{path}.submit"
    sub = check_dict(m.get("submit", {}), spath, {}, {"url": (str, type(None)), "timeout": int, "period": int,
                                                      "maxerrors": int})
    sub = dict(METERING_DEFAULTS["submit"], **sub)
    for key, (lo, hi) in _SUBMIT_LIMITS.items():
        if type(sub[key]) is not int or not lo <= sub[key] <= hi:
            raise ConfigError(f"{spath}.{key}", f"must be an integer from {lo} to {hi}, not {sub[key]!r}")
    check_metering_url(sub["url"], f"{spath}.url")
    out["submit"] = sub
    return out


def check_metering_url(url, path: str) -> None:
    if url is not None and (type(url) is not str or not url.startswith(("http://", "https://"))
                            or len(url) > 2048 or any(c.isspace() for c in url)):
        raise ConfigError(path, f"must be an http:// or https:// URL, not {url!r}")


#: ``controller.fabric.heartbeat``: the design document's five parameters ("Edge Nodes") and defaults
HEARTBEAT_DEFAULTS = {
    "startup_delay": 5,  # seconds before the first heartbeat
    "heartbeat_period": 10,  # seconds between heartbeats
    "include_system_stats": True,  # node heartbeats carry the system statistics
    "send_workers_heartbeats": True,  # one heartbeat per worker (the controller included)
    "aggregate_workers_heartbeats": True,  # a router worker's statistics summed over its realms
}
_HEARTBEAT_TYPES = {"startup_delay": int, "heartbeat_period": int, "include_system_stats": bool,
                    "send_workers_heartbeats": bool, "aggregate_workers_heartbeats": bool}
_TLS_KEYS = {"hostname": str, "ca_certificates": list, "certificate": str, "key": str}


def check_fabric(fabric, path: str) -> None:
    """``controller.fabric``: ``transport`` (a connecting websocket or rawsocket transport over tcp,
    with optional ``tls``, or unix; ``null`` switches the uplink off) and ``heartbeat``."""
    check_dict(fabric, path, {}, {"transport": (dict, type(None)), "heartbeat": dict})
    tr = fabric.get("transport")
    if tr is not None:
        check_fabric_transport(tr, f"{path}.transport")
    if "heartbeat" in fabric:
        hpath = f"{path}.heartbeat"
        hb = check_dict(fabric["heartbeat"], hpath, {}, _HEARTBEAT_TYPES)
        if hb.get("startup_delay", 0) < 0:
            raise ConfigError(f"{hpath}.startup_delay", f"must be 0 or more seconds, not {hb['startup_delay']}")
        if "heartbeat_period" in hb and not 1 <= hb["heartbeat_period"] <= 86400:
            raise ConfigError(f"{hpath}.heartbeat_period",
                              f"must be 1..86400 seconds, not {hb['heartbeat_period']}")


def check_fabric_transport(tr, path: str) -> None:
    """The uplink's connecting transport; unlike a component's, a tcp endpoint may have ``tls``
    (``hostname``, ``ca_certificates``, client ``certificate``/``key``)."""
    check_type(tr, dict, path)
    ep = tr.get("endpoint")
    tls = ep.get("tls") if isinstance(ep, dict) else None
    if tls is not None:
        tr = {**tr, "endpoint": {k: v for k, v in ep.items() if k != "tls"}}
    check_connecting_transport(tr, path)
    if isinstance(ep, dict) and "tls" in ep:
        tpath = f"{path}.endpoint.tls"
        if ep.get("type") != "tcp":
            raise ConfigError(tpath, "TLS needs a tcp endpoint")
        check_dict(tls, tpath, {}, _TLS_KEYS)
        for i, ca in enumerate(tls.get("ca_certificates", [])):
            check_type(ca, str, f"{tpath}.ca_certificates[{i}]")
        if "key" in tls and "certificate" not in tls:
            raise ConfigError(f"{tpath}.key", "a client key needs its 'certificate'")
    url = tr.get("url")
    if tr.get("type") == "websocket" and url is not None:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("ws", "wss"):
            raise ConfigError(f"{path}.url", f"must be a ws:// or wss:// URL, not {url!r}"[:300])
        if (scheme == "wss") != (tls is not None):
            raise ConfigError(f"{path}.url", f"{scheme}:// URL with an endpoint {'with' if tls is not None else 'without'} "
                              "'tls' (use wss:// exactly when the endpoint has 'tls')")
