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
    "per_message_compression": dict, "hello_timeout": int,
}


def check_websocket_options(opts, path: str) -> None:
    check_dict(opts, path, {}, WEBSOCKET_OPTIONS)
    for key in ("max_frame_size", "max_message_size", "auto_ping_interval", "auto_ping_timeout",
                "max_outgoing_buffer", "open_handshake_timeout", "close_handshake_timeout", "hello_timeout"):
        if key in opts and opts[key] < 0:
            raise ConfigError(f"{path}.{key}", "must not be negative")
    for i, o in enumerate(opts.get("allowed_origins", [])):
        check_type(o, str, f"{path}.allowed_origins[{i}]")


AUTH_PROVIDER_KEYS = {
    "static": {},
    "dynamic": {"authenticator": str, "authenticator-realm": str, "authenticator-role": str},
    "function": {"create": str, "config": dict, "expose_controller": bool},
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
        opts = check_dict(cfg["options"], f"{path}.options", {},
                          {"max_message_size": int, "max_outgoing_buffer": int, "hello_timeout": int})
        for key in ("max_outgoing_buffer", "hello_timeout"):
            if key in opts and opts[key] < 0:
                raise ConfigError(f"{path}.options.{key}", "must not be negative")
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


def check_listening_transport_universal(cfg, path: str, personality) -> None:
    """Crossbar.io's ``universal`` transport: ``rawsocket``, ``websocket`` (path -> WebSocket
    service) and ``web`` (``paths``) on one endpoint."""
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "rawsocket": dict, "websocket": dict, "web": dict, "auth": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    if not any(k in cfg for k in ("rawsocket", "websocket", "web")):
        raise ConfigError(path, "a universal transport needs at least one of 'rawsocket', 'websocket', 'web'")
    if "rawsocket" in cfg:
        rs = check_dict(cfg["rawsocket"], f"{path}.rawsocket", {},
                        {"serializers": list, "options": dict, "auth": dict, "max_message_size": int, "debug": bool})
        check_listening_transport_rawsocket(dict(rs, type="rawsocket", endpoint=cfg["endpoint"]),
                                            f"{path}.rawsocket", personality)
    seen = set()
    for p, ws in check_type(cfg.get("websocket", {}), dict, f"{path}.websocket").items():
        wpath = f"{path}.websocket['{p}']"
        check_type(ws, dict, wpath)
        check_web_path_service_websocket(dict(ws, type="websocket"), wpath, personality)
        seen.add(p.strip("/"))
    if "web" in cfg:
        web = check_dict(cfg["web"], f"{path}.web", {"paths": dict}, {"options": dict})
        for p, svc in web["paths"].items():
            ppath = f"{path}.web.paths['{p}']"
            if p.strip("/") in seen:
                raise ConfigError(ppath, f"path '{p}' is already a WebSocket path of this transport")
            check_web_path_service(svc, ppath, personality)
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


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


def check_web_path_service(svc, path: str, personality) -> None:
    checker_for(svc, path, personality.WEB_SERVICE_CHECKERS, "web service")(svc, path, personality)


def check_web_path_service_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"serializers": list, "options": dict, "auth": dict, "url": str,
                                          "debug": bool, "cookie": dict})
    check_websocket_settings(cfg, path)


def check_web_path_service_static(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str}, {"directory": str, "package": str, "resource": str, "options": dict})
    if "package" in cfg or "resource" in cfg:
        # the static service serves 'directory' only: without this, it served the node directory (key.priv!)
        key = "package" if "package" in cfg else "resource"
        raise ConfigError(f"{path}.{key}", "static files from a Python package are not supported by this version "
                                           "yet: use 'directory'")
    if "directory" not in cfg:
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
                           "event_dispatching_chunk_size": int, "strict_progressive_call_results": bool,
                           "max_pending_calls": int, "max_pending_invocations": int, "default_call_timeout": int,
                           "max_uri_length": int, "max_retained_bytes": int, "max_history_bytes": int})
        if opts.get("uri_check", "loose") not in ("loose", "strict"):
            raise ConfigError(f"{path}.options.uri_check",
                              "must be 'loose' (the default: URI components not empty, without whitespace, "
                              "'.' or '#') or 'strict' (components of [0-9a-z_] only)")
        if not 128 <= opts.get("max_uri_length", 4096) <= 1_000_000:
            raise ConfigError(f"{path}.options.max_uri_length",
                              "must be 128 .. 1000000 (characters of a topic or procedure URI; default 4096)")
        for key in ("max_pending_calls", "max_pending_invocations", "default_call_timeout"):
            if opts.get(key, 1) < (0 if key == "default_call_timeout" else 1):
                raise ConfigError(f"{path}.options.{key}", f"must be {'>= 0' if key == 'default_call_timeout' else '>= 1'}")
        for key in ("max_retained_bytes", "max_history_bytes"):
            if opts.get(key, 0) < 0:
                raise ConfigError(f"{path}.options.{key}",
                                  "must be >= 0 (bytes of kept events in the realm; 0 keeps none; default 64 MiB)")
    if "store" in realm:
        check_store(realm["store"], f"{path}.store")


def check_store(store, path: str) -> None:
    """A realm's event store (Crossbar.io: ``{"type": "memory", "event-history": [...]}``)."""
    check_dict(store, path, {"type": str}, {"event-history": list, "limit": int, "maxsize": int, "path": str})
    if store["type"] != "memory":
        raise ConfigError(f"{path}.type", f"unsupported store type '{store['type']}' (supported: memory)")
    if store.get("limit", 100) < 1:
        raise ConfigError(f"{path}.limit", "must be a positive integer (events kept per event-history entry)")
    for i, entry in enumerate(store.get("event-history", [])):
        p = f"{path}['event-history'][{i}]"
        check_dict(entry, p, {"uri": str}, {"match": str, "limit": int})
        match = entry.get("match", "exact")
        if match not in ("exact", "prefix", "wildcard"):
            raise ConfigError(f"{p}.match", f"invalid match policy '{match}' (one of: exact, prefix, wildcard)")
        if entry.get("limit", 100) < 1:
            raise ConfigError(f"{p}.limit", "must be a positive integer")


# -- workers -----------------------------------------------------------------------

RESTART_POLICIES = ("restart-never", "restart-always", "restart-on-failed")
CONTAINER_SHUTDOWN = ("shutdown-manual", "shutdown-on-last-component-stopped")
NODE_SHUTDOWN_TRIGGERS = ("shutdown_on_shutdown_requested", "shutdown_on_worker_exit",
                          "shutdown_on_worker_exit_with_error", "shutdown_on_last_worker_exit")


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


def check_router_worker_options(options, path: str, personality=None) -> None:
    _check_native_options(options, path, {"busy_poll_us": int, "auth_throttle": dict})
    bp = options.get("busy_poll_us", 0)
    if isinstance(bp, bool) or not 0 <= bp <= 100_000:
        raise ConfigError(f"{path}.busy_poll_us", f"must be an integer 0..100000 (microseconds; 0 = off), not {bp!r}")
    if "auth_throttle" in options:
        check_auth_throttle(options["auth_throttle"], f"{path}.auth_throttle")


# router worker option auth_throttle (router/auth.py AuthThrottle): key -> (type, minimum, maximum)
AUTH_THROTTLE_KEYS = {
    "address_failures": (int, 0, 1_000_000), "address_window": ((int, float), 0.001, 86_400 * 7),
    "authid_failures": (int, 0, 1_000_000), "authid_window": ((int, float), 0.001, 86_400 * 7),
    "delay": ((int, float), 0, 3600), "max_delay": ((int, float), 0, 3600),
    "max_pending": (int, 1, 1_000_000), "max_tracked": (int, 1, 10_000_000),
}


def check_auth_throttle(cfg, path: str) -> None:
    check_dict(cfg, path, {}, {k: t for k, (t, _, _) in AUTH_THROTTLE_KEYS.items()})
    for key, (_, lo, hi) in AUTH_THROTTLE_KEYS.items():
        if key in cfg and not lo <= cfg[key] <= hi:
            raise ConfigError(f"{path}.{key}", f"must be {lo}..{hi}, not {cfg[key]!r}")


def check_container_worker_options(options, path: str, personality=None) -> None:
    _check_native_options(options, path, {"shutdown": str})
    if options.get("shutdown", "shutdown-manual") not in CONTAINER_SHUTDOWN:
        raise ConfigError(f"{path}.shutdown",
                          f"invalid shutdown mode '{options['shutdown']}' (one of: {', '.join(CONTAINER_SHUTDOWN)})")


def check_native_worker_options(worker_type: str, options, path: str, personality) -> None:
    checker = personality.NATIVE_WORKERS[worker_type]["checkconfig_options"]
    checker(options, path, personality)


def check_connecting_endpoint(ep, path: str) -> None:
    check_type(ep, dict, path)
    kind = ep.get("type")
    if kind == "tcp":
        check_dict(ep, path, {"type": str, "port": int}, {"host": str, "version": int, "timeout": int, "tls": dict})
        check_port(ep["port"], f"{path}.port")
        if "tls" in ep:
            raise ConfigError(f"{path}.tls", "TLS client endpoints are not supported yet by this version")
    elif kind == "unix":
        check_dict(ep, path, {"type": str, "path": str}, {"timeout": int})
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: tcp, unix)")
    else:
        raise ConfigError(f"{path}.type", f"invalid endpoint type '{kind}' (one of: tcp, unix)")


def check_connecting_transport(tr, path: str) -> None:
    check_type(tr, dict, path)
    kind = tr.get("type")
    if kind == "websocket":
        check_dict(tr, path, {"type": str, "endpoint": dict}, {"url": str, "serializers": list, "options": dict,
                                                                "id": str})
    elif kind == "rawsocket":
        check_dict(tr, path, {"type": str, "endpoint": dict}, {"serializer": str, "serializers": list,
                                                                "options": dict, "id": str})
        if "serializer" in tr:
            check_serializers([tr["serializer"]], f"{path}.serializer")
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: websocket, rawsocket)")
    else:
        raise ConfigError(f"{path}.type", f"invalid transport type '{kind}' (one of: websocket, rawsocket)")
    check_connecting_endpoint(tr["endpoint"], f"{path}.endpoint")
    if "serializers" in tr:
        check_serializers(tr["serializers"], f"{path}.serializers")


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


def _list(cfg: dict, key: str) -> list:
    """``cfg[key]`` if it is a list (else its type error is reported elsewhere: no items)."""
    value = cfg.get(key, [])
    return value if isinstance(value, list) else []


def _check_typed(item, path: str, checkers: dict, what: str, personality) -> None:
    checker_for(item, path, checkers, what)(item, path, personality)


def check_router_worker(worker, path: str, personality) -> None:
    check_type(worker, dict, path)
    c = Collector()  # each realm, transport and component is checked (and reported) on its own
    c.run(check_dict, worker, path, {"type": str},
          {"id": str, "options": dict, "manhole": dict, "realms": list, "transports": list,
           "components": list, "connections": list})
    if "options" in worker:
        c.run(check_router_worker_options, worker["options"], f"{path}.options", personality)
    names = set()
    for i, realm in enumerate(_list(worker, "realms")):
        c.run(check_realm, realm, f"{path}.realms[{i}]")
        name = realm.get("name") if isinstance(realm, dict) else None
        if isinstance(name, str):
            if name in names:
                c.add(f"{path}.realms[{i}].name", f"duplicate realm '{name}'")
            names.add(name)
    for i, transport in enumerate(_list(worker, "transports")):
        c.run(_check_typed, transport, f"{path}.transports[{i}]", personality.ROUTER_TRANSPORT_CHECKERS, "transport",
              personality)
    c.run(_check_ids, _list(worker, "transports"), f"{path}.transports", "transport")
    for i, comp in enumerate(_list(worker, "components")):
        if c.run(check_router_component, comp, f"{path}.components[{i}]") and comp["realm"] not in names:
            c.add(f"{path}.components[{i}].realm", f"no realm '{comp['realm']}' on this router worker")
    c.run(_check_ids, _list(worker, "components"), f"{path}.components", "component")
    if worker.get("connections"):
        c.add(f"{path}.connections", "connections are not supported by this version yet")
    c.done()


def check_container_worker(worker, path: str, personality) -> None:
    check_type(worker, dict, path)
    c = Collector()  # each component is checked (and reported) on its own
    c.run(check_dict, worker, path, {"type": str},
          {"id": str, "options": dict, "manhole": dict, "components": list, "connections": list})
    if "options" in worker:
        c.run(check_container_worker_options, worker["options"], f"{path}.options", personality)
    for i, comp in enumerate(_list(worker, "components")):
        c.run(check_container_component, comp, f"{path}.components[{i}]")
    c.run(_check_ids, _list(worker, "components"), f"{path}.components", "component")
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


def check_controller(controller, path: str, personality) -> None:
    check_dict(controller, path, {},
               {"id": str, "options": dict, "manhole": dict, "transport": dict, "fabric": dict,
                "enable_docker": bool, "connections": list, "blockchain": (dict, type(None))})
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
        if opts.get("shutdown_timeout", 1) <= 0:
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


def check_config(config, personality) -> dict:
    """Check a whole config; every independent item (the controller, each worker and, inside
    them, each realm, transport, component) is checked on its own and all errors are raised
    together (``ConfigErrors``; a single one as a plain ``ConfigError``)."""
    path = "$"
    check_type(config, dict, path)
    version = config.get("version", 1)
    if version != 2:
        raise ConfigError(f"{path}.version", f"unsupported config version {version!r} (only version 2 is supported)")
    c = Collector()
    c.run(check_dict, config, path, {}, {"$schema": str, "version": int, "controller": dict, "workers": list})
    if isinstance(config.get("controller", {}), dict):
        c.run(check_controller, config.get("controller", {}), f"{path}.controller", personality)
    checkers = getattr(personality, "WORKER_CHECKERS", None) or WORKER_CHECKERS
    ids = set()

    def check_worker(worker, wpath):
        checker = checker_for(worker, wpath, checkers, "worker",
                              unsupported=("proxy", "xbrmm", "hostmonitor", "websocket-testee"))
        checker(worker, wpath, personality)

    for i, worker in enumerate(_list(config, "workers")):
        wpath = f"{path}.workers[{i}]"
        c.run(check_worker, worker, wpath)
        wid = worker.get("id") if isinstance(worker, dict) else None
        if isinstance(wid, str):
            if wid in ids:
                c.add(f"{wpath}.id", f"duplicate worker id '{wid}'")
            elif worker_id_problem(wid):
                c.add(f"{wpath}.id", f"invalid worker id {wid[:100]!r}: {worker_id_problem(wid)}")
            ids.add(wid)
    c.done()
    return config
