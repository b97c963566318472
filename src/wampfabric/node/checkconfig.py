"""Node configuration checking (Crossbar.io config version 2).

Every error names the JSON path of the offending item and says what is
wrong; the loader adds the file name.  Checkers never raise anything but
``ConfigError``, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import re

from ..protocol.uri import check_uri


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


def check_port(value, path: str) -> None:
    check_type(value, int, path)
    if not 0 <= value <= 65535:
        raise ConfigError(path, f"invalid TCP port {value} (must be 0..65535)")


# -- endpoints -------------------------------------------------------------------

def check_listening_endpoint(ep, path: str) -> None:
    check_type(ep, dict, path)
    kind = ep.get("type")
    if kind == "tcp":
        check_dict(ep, path, {"type": str, "port": int},
                   {"host": str, "interface": str, "backlog": int, "version": int, "shared": bool,
                    "user_timeout": int, "tls": dict})
        check_port(ep["port"], f"{path}.port")
        if ep.get("version", 4) not in (4, 6):
            raise ConfigError(f"{path}.version", f"must be 4 or 6, not {ep['version']!r}")
        if ep.get("backlog", 1) < 1:
            raise ConfigError(f"{path}.backlog", "must be a positive integer")
        if "tls" in ep:
            tls = check_dict(ep["tls"], f"{path}.tls", {"key": str, "certificate": str},
                             {"chain_certificates": list, "ca_certificates": list, "ciphers": str, "dhparam": str})
            for k in ("chain_certificates", "ca_certificates"):
                for i, v in enumerate(tls.get(k, [])):
                    check_type(v, str, f"{path}.tls.{k}[{i}]")
    elif kind == "unix":
        check_dict(ep, path, {"type": str, "path": str}, {"backlog": int})
        if not ep["path"]:
            raise ConfigError(f"{path}.path", "must not be empty")
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: tcp, unix)")
    else:
        raise ConfigError(f"{path}.type", f"invalid endpoint type '{kind}' (one of: tcp, unix)")


# -- transports --------------------------------------------------------------------

SERIALIZERS = ("json", "msgpack", "cbor", "ubjson", "flatbuffers")
SUPPORTED_SERIALIZERS = ("json", "msgpack", "cbor")


def check_serializers(value, path: str) -> None:
    check_type(value, list, path)
    if not value:
        raise ConfigError(path, "must name at least one serializer")
    for i, s in enumerate(value):
        check_type(s, str, f"{path}[{i}]")
        if s not in SUPPORTED_SERIALIZERS:
            raise ConfigError(f"{path}[{i}]", f"unsupported serializer '{s}' (supported: {', '.join(SUPPORTED_SERIALIZERS)})")


WEBSOCKET_OPTIONS = {
    "allowed_origins": list, "allow_null_origin": bool, "enable_webstatus": bool, "max_frame_size": int,
    "max_message_size": int, "auto_fragment_size": int, "fail_by_drop": bool, "open_handshake_timeout": int,
    "close_handshake_timeout": int, "auto_ping_interval": int, "auto_ping_timeout": int, "auto_ping_size": int,
    "auto_ping_restart_on_any_traffic": bool, "compression": dict, "require_websocket_subprotocol": bool,
    "enable_flash_policy": bool, "flash_policy": str, "echo_close_codereason": bool, "tcp_nodelay": bool,
    "utf8validate_incoming": bool, "mask_server_frames": bool, "require_masking": bool, "apply_mask": bool,
    "max_outgoing_buffer": int, "show_server_version": bool, "enable_hybi10": bool, "enable_rfc6455": bool,
    "server": str, "external_port": int, "allowed_origins_pattern": list, "trust_x_forwarded_for": bool,
    "per_message_compression": dict,
}


def check_websocket_options(opts, path: str) -> None:
    check_dict(opts, path, {}, WEBSOCKET_OPTIONS)
    for key in ("max_frame_size", "max_message_size", "auto_ping_interval", "auto_ping_timeout",
                "max_outgoing_buffer", "open_handshake_timeout", "close_handshake_timeout"):
        if key in opts and opts[key] < 0:
            raise ConfigError(f"{path}.{key}", "must not be negative")
    for i, o in enumerate(opts.get("allowed_origins", [])):
        check_type(o, str, f"{path}.allowed_origins[{i}]")


AUTH_PROVIDER_KEYS = {
    "static": {},
    "dynamic": {"authenticator": str, "authenticator-realm": str},
    "function": {"create": str},
}
# per authmethod: (static principals attribute, principal attributes)
AUTH_PRINCIPALS = {
    "ticket": ("principals", {"ticket": str, "role": str, "realm": str, "extra": dict}),
    "wampcra": ("users", {"secret": str, "role": str, "realm": str, "salt": str, "iterations": int, "keylen": int,
                          "extra": dict}),
    "cryptosign": ("principals", {"authorized_keys": list, "role": str, "realm": str, "extra": dict}),
    "scram": ("principals", {"kdf": str, "iterations": int, "memory": int, "salt": str, "stored-key": str,
                             "server-key": str, "role": str, "realm": str, "extra": dict}),
    "tls": ("principals", {"certificate-sha1": str, "certificate-sha256": str, "role": str, "realm": str,
                           "extra": dict}),
}


def check_auth(auth, path: str) -> None:
    check_type(auth, dict, path)
    for method, cfg in auth.items():
        p = f"{path}.{method}"
        if method == "anonymous":
            kind = check_type(cfg, dict, p).get("type", "static")
            extra = AUTH_PROVIDER_KEYS.get(kind)
            if extra is None:
                raise ConfigError(f"{p}.type", f"invalid type '{kind}' (one of: static, dynamic, function)")
            check_dict(cfg, p, {}, {"type": str, "role": str, "realm": str, "authid": str, **extra})
        elif method in AUTH_PRINCIPALS:
            check_type(cfg, dict, p)
            kind = cfg.get("type")
            if kind is None:
                raise ConfigError(p, "missing mandatory attribute 'type' (one of: static, dynamic, function)")
            extra = AUTH_PROVIDER_KEYS.get(kind)
            if extra is None:
                raise ConfigError(f"{p}.type", f"invalid type '{kind}' (one of: static, dynamic, function)")
            table, attrs = AUTH_PRINCIPALS[method]
            if kind == "static":
                check_dict(cfg, p, {"type": str, table: dict}, {})
                for authid, principal in cfg[table].items():
                    pp = f"{p}.{table}['{authid}']"
                    check_dict(principal, pp, {"role": str}, attrs)
                    if method == "ticket" and "ticket" not in principal:
                        raise ConfigError(pp, "missing mandatory attribute 'ticket'")
                    if method == "wampcra" and "secret" not in principal:
                        raise ConfigError(pp, "missing mandatory attribute 'secret'")
                    if method == "cryptosign":
                        keys = principal.get("authorized_keys")
                        if not keys:
                            raise ConfigError(pp, "missing mandatory attribute 'authorized_keys'")
                        for i, k in enumerate(keys):
                            if not (isinstance(k, str) and len(k) == 64
                                    and all(c in "0123456789abcdefABCDEF" for c in k)):
                                raise ConfigError(f"{pp}.authorized_keys[{i}]",
                                                  "must be an Ed25519 public key as 64 hex digits")
                    if method == "tls" and not ("certificate-sha1" in principal or "certificate-sha256" in principal):
                        raise ConfigError(pp, "missing mandatory attribute 'certificate-sha1' (or 'certificate-sha256')")
                    if method == "scram":
                        for k in ("kdf", "iterations", "salt", "stored-key", "server-key"):
                            if k not in principal:
                                raise ConfigError(pp, f"missing mandatory attribute '{k}'")
                        if principal["kdf"] not in ("argon2id-13", "argon2id13", "pbkdf2"):
                            raise ConfigError(f"{pp}.kdf", "must be 'argon2id-13' or 'pbkdf2'")
            else:
                required = {"type": str, **({"create": str} if kind == "function" else {"authenticator": str})}
                check_dict(cfg, p, required, extra)
        elif method == "cookie":
            check_dict(cfg, p, {}, {"type": str})
        elif method in ("cryptosign-proxy", "anonymous-proxy"):
            raise ConfigError(p, f"authentication method '{method}' is not supported by this version yet")
        else:
            raise ConfigError(p, f"unknown authentication method '{method}'")


def check_cookie(cfg, path: str) -> None:
    check_dict(cfg, path, {}, {"name": str, "length": int, "max_age": int, "store": dict})
    if "store" in cfg:
        store = check_dict(cfg["store"], f"{path}.store", {"type": str}, {"filename": str})
        if store["type"] not in ("memory", "file"):
            raise ConfigError(f"{path}.store.type", f"invalid cookie store type '{store['type']}' (memory, file)")
    if not 8 <= cfg.get("length", 24) <= 64:
        raise ConfigError(f"{path}.length", "must be 8..64")


def check_websocket_settings(cfg, path: str, extra_required=None) -> None:
    """Attributes shared by a ``websocket`` transport and a ``websocket`` web service."""
    if "cookie" in cfg:
        check_cookie(cfg["cookie"], f"{path}.cookie")
    if "serializers" in cfg:
        check_serializers(cfg["serializers"], f"{path}.serializers")
    if "options" in cfg:
        check_websocket_options(cfg["options"], f"{path}.options")
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_listening_transport_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "serializers": list, "options": dict, "auth": dict, "url": str, "debug": bool,
                "cookie": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    check_websocket_settings(cfg, path)


def check_listening_transport_rawsocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "serializers": list, "options": dict, "auth": dict, "debug": bool,
                "max_message_size": int})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    if "serializers" in cfg:
        check_serializers(cfg["serializers"], f"{path}.serializers")
    if "options" in cfg:
        opts = check_dict(cfg["options"], f"{path}.options", {}, {"max_message_size": int, "max_outgoing_buffer": int})
        mms = opts.get("max_message_size")
        if mms is not None and not 512 <= mms <= 16 * 1024 * 1024:
            raise ConfigError(f"{path}.options.max_message_size", f"must be 512..16777216 (RawSocket limit), not {mms}")
    if "max_message_size" in cfg:
        # legacy spelling: move it into options
        cfg.setdefault("options", {}).setdefault("max_message_size", cfg["max_message_size"])
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_listening_transport_web(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict, "paths": dict},
               {"id": str, "options": dict, "auth": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    paths = cfg["paths"]
    if not paths:
        raise ConfigError(f"{path}.paths", "must map at least one path to a service")
    for p, svc in paths.items():
        ppath = f"{path}.paths['{p}']"
        if p != "/" and not re.fullmatch(r"[A-Za-z0-9_\-.~]+(/[A-Za-z0-9_\-.~]+)*", p):
            raise ConfigError(ppath, f"invalid path '{p}' (use '/' for the root, else segments without leading '/')")
        check_web_path_service(svc, ppath, personality)
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_web_path_service(svc, path: str, personality) -> None:
    check_type(svc, dict, path)
    kind = svc.get("type")
    if kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type'")
    checker = personality.WEB_SERVICE_CHECKERS.get(kind)
    if checker is None:
        known = ", ".join(sorted(personality.WEB_SERVICE_CHECKERS))
        raise ConfigError(f"{path}.type", f"unknown web service type '{kind}' (available: {known})")
    checker(svc, path, personality)


def check_web_path_service_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"serializers": list, "options": dict, "auth": dict, "url": str,
                                          "debug": bool, "cookie": dict})
    check_websocket_settings(cfg, path)


def check_web_path_service_static(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"directory": str, "package": str, "resource": str, "options": dict})
    if "directory" not in cfg and "package" not in cfg:
        raise ConfigError(path, "missing mandatory attribute 'directory'")
    if "options" in cfg:
        check_dict(cfg["options"], f"{path}.options", {},
                   {"enable_directory_listing": bool, "mime_types": dict, "cache_timeout": (int, type(None)),
                    "default_file": str})


def check_web_path_service_nodeinfo(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {})


# -- realms ------------------------------------------------------------------------

ACTIONS = ("call", "register", "publish", "subscribe")


def check_permission(perm, path: str) -> None:
    check_dict(perm, path, {"uri": str},
               {"match": str, "allow": dict, "disclose": dict, "cache": bool})
    match = perm.get("match")
    if match is not None and match not in ("exact", "prefix", "wildcard"):
        raise ConfigError(f"{path}.match", f"invalid match policy '{match}' (one of: exact, prefix, wildcard)")
    uri = perm["uri"]
    effective = match or ("prefix" if uri.endswith("*") else "exact")
    check_uri_value = uri[:-1] if (match is None and uri.endswith("*")) else uri
    if check_uri_value and not check_uri(check_uri_value.rstrip(".") if effective == "prefix" else check_uri_value,
                                         False, effective != "exact"):
        raise ConfigError(f"{path}.uri", f"invalid URI '{uri}' for match policy '{effective}'")
    if "allow" in perm:
        check_dict(perm["allow"], f"{path}.allow", {}, {a: bool for a in ACTIONS})
    if "disclose" in perm:
        check_dict(perm["disclose"], f"{path}.disclose", {}, {"caller": bool, "publisher": bool})


def check_role(role, path: str) -> None:
    check_dict(role, path, {"name": str}, {"permissions": list, "authorizer": str})
    if "permissions" in role and "authorizer" in role:
        raise ConfigError(path, "a role has either 'permissions' or an 'authorizer', not both")
    if "authorizer" in role and not check_uri(role["authorizer"], False):
        raise ConfigError(f"{path}.authorizer", f"invalid authorizer procedure URI '{role['authorizer']}'")
    for i, perm in enumerate(role.get("permissions", [])):
        check_permission(perm, f"{path}.permissions[{i}]")


def check_realm(realm, path: str) -> None:
    check_dict(realm, path, {"name": str}, {"roles": list, "options": dict, "store": dict, "id": str})
    if not check_uri(realm["name"], False):
        raise ConfigError(f"{path}.name", f"invalid realm name '{realm['name']}' (must be a valid WAMP URI)")
    names = set()
    for i, role in enumerate(realm.get("roles", [])):
        check_role(role, f"{path}.roles[{i}]")
        if role["name"] in names:
            raise ConfigError(f"{path}.roles[{i}].name", f"duplicate role '{role['name']}'")
        names.add(role["name"])
    if "options" in realm:
        opts = check_dict(realm["options"], f"{path}.options", {},
                          {"uri_check": str, "enable_meta_api": bool, "bridge_meta_api": bool,
                           "event_dispatching_chunk_size": int})
        if opts.get("uri_check", "strict") not in ("strict", "loose"):
            raise ConfigError(f"{path}.options.uri_check", "must be 'strict' or 'loose'")


# -- workers -----------------------------------------------------------------------

def check_router_worker(worker, path: str, personality) -> None:
    check_dict(worker, path, {"type": str},
               {"id": str, "options": dict, "manhole": dict, "realms": list, "transports": list,
                "components": list, "connections": list})
    if "options" in worker:
        check_dict(worker["options"], f"{path}.options", {},
                   {"title": str, "disabled": (bool, str), "pythonpath": list, "cpu_affinity": list, "env": dict,
                    "reactor": dict, "expose_controller": bool, "expose_shared": bool})
    names = set()
    for i, realm in enumerate(worker.get("realms", [])):
        check_realm(realm, f"{path}.realms[{i}]")
        if realm["name"] in names:
            raise ConfigError(f"{path}.realms[{i}].name", f"duplicate realm '{realm['name']}'")
        names.add(realm["name"])
    ids = set()
    for i, transport in enumerate(worker.get("transports", [])):
        tpath = f"{path}.transports[{i}]"
        check_type(transport, dict, tpath)
        kind = transport.get("type")
        if kind is None:
            raise ConfigError(tpath, "missing mandatory attribute 'type'")
        checker = personality.ROUTER_TRANSPORT_CHECKERS.get(kind)
        if checker is None:
            known = ", ".join(sorted(personality.ROUTER_TRANSPORT_CHECKERS))
            raise ConfigError(f"{tpath}.type", f"unknown transport type '{kind}' (available: {known})")
        checker(transport, tpath, personality)
        tid = transport.get("id")
        if tid is not None:
            if tid in ids:
                raise ConfigError(f"{tpath}.id", f"duplicate transport id '{tid}'")
            ids.add(tid)
    if worker.get("components"):
        raise ConfigError(f"{path}.components", "router components are not supported by this version yet")


WORKER_CHECKERS = {"router": check_router_worker}


def check_config(config, personality) -> dict:
    path = "$"
    check_dict(config, path, {}, {"$schema": str, "version": int, "controller": dict, "workers": list})
    version = config.get("version", 1)
    if version != 2:
        raise ConfigError(f"{path}.version", f"unsupported config version {version!r} (only version 2 is supported)")
    controller = config.get("controller", {})
    check_dict(controller, f"{path}.controller", {},
               {"id": str, "options": dict, "manhole": dict, "transport": dict, "fabric": dict,
                "enable_docker": bool, "connections": list, "blockchain": (dict, type(None))})
    if "id" in controller and not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", controller["id"]):
        raise ConfigError(f"{path}.controller.id",
                          f"invalid node id '{controller['id']}' (must match ^[a-z][a-z0-9_]{{2,63}}$)")
    ids = set()
    for i, worker in enumerate(config.get("workers", [])):
        wpath = f"{path}.workers[{i}]"
        check_type(worker, dict, wpath)
        kind = worker.get("type")
        if kind is None:
            raise ConfigError(wpath, "missing mandatory attribute 'type'")
        checker = WORKER_CHECKERS.get(kind)
        if checker is None:
            if kind in ("container", "guest", "proxy", "xbrmm", "hostmonitor", "websocket-testee"):
                raise ConfigError(f"{wpath}.type", f"worker type '{kind}' is not supported by this version yet")
            raise ConfigError(f"{wpath}.type", f"unknown worker type '{kind}' (available: {', '.join(WORKER_CHECKERS)})")
        checker(worker, wpath, personality)
        wid = worker.get("id")
        if wid is not None:
            if wid in ids:
                raise ConfigError(f"{wpath}.id", f"duplicate worker id '{wid}'")
            ids.add(wid)
    return config
