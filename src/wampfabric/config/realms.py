"""Realms: names, roles and their permissions or authorizers, options, the event store."""

from __future__ import annotations

from ..protocol.uri import check_uri
from . import defaults
from .base import ConfigError, check_dict, check_type
from .transports import check_connecting_transport


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
    check_dict(realm, path, {"name": str}, {"roles": list, "options": dict, "store": dict, "id": str,
                                            "rlinks": list})
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
        if opts.get("uri_check", defaults.URI_CHECK) not in ("loose", "strict"):
            raise ConfigError(f"{path}.options.uri_check",
                              "must be 'loose' (the default: URI components not empty, without whitespace, "
                              "'.' or '#') or 'strict' (components of [0-9a-z_] only)")
        if not 128 <= opts.get("max_uri_length", defaults.MAX_URI_LENGTH) <= 1_000_000:
            raise ConfigError(f"{path}.options.max_uri_length",
                              "must be 128 .. 1000000 (characters of a topic or procedure URI; "
                              f"default {defaults.MAX_URI_LENGTH})")
        for key in ("max_pending_calls", "max_pending_invocations", "default_call_timeout"):
            if opts.get(key, 1) < (0 if key == "default_call_timeout" else 1):
                raise ConfigError(f"{path}.options.{key}", f"must be {'>= 0' if key == 'default_call_timeout' else '>= 1'}")
        for key, default in (("max_retained_bytes", defaults.MAX_RETAINED_BYTES),
                             ("max_history_bytes", defaults.MAX_HISTORY_BYTES)):
            if opts.get(key, default) < 0:
                raise ConfigError(f"{path}.options.{key}", "must be >= 0 (bytes of kept events in the realm; "
                                                           f"0 keeps none; default {default >> 20} MiB)")
    if "store" in realm:
        check_store(realm["store"], f"{path}.store")
    ids = set()
    for i, link in enumerate(realm.get("rlinks", [])):
        check_rlink(link, f"{path}.rlinks[{i}]")
        if "id" in link:
            if link["id"] in ids:
                raise ConfigError(f"{path}.rlinks[{i}].id", f"duplicate router link ID '{link['id']}'")
            ids.add(link["id"])


RLINK_FORWARD = ("forward_local_events", "forward_remote_events", "forward_local_invocations",
                 "forward_remote_invocations")


def check_rlink(link, path: str) -> None:
    """A router-to-router link of a realm (Crossbar.io's shape, docs/clustering.md): the other
    router's ``realm`` and connecting ``transport``, how to authenticate there, what to forward;
    ``share_registrations`` (wampfabric, default true): false keeps the calls of a shared
    registration on a router that has callees of its own for it."""
    check_dict(link, path, {"realm": str, "transport": dict},
               {"id": str, "authid": str, "authentication": dict, "exclude_authid": list,
                "exclude_authrole": list, "share_registrations": bool, **{k: bool for k in RLINK_FORWARD}})
    if not link["realm"] or not check_uri(link["realm"], False):
        raise ConfigError(f"{path}.realm", f"invalid realm name '{link['realm']}' (must be a valid WAMP URI)")
    check_connecting_transport(link["transport"], f"{path}.transport")
    for key in ("exclude_authid", "exclude_authrole"):
        for j, v in enumerate(link.get(key, [])):
            check_type(v, str, f"{path}.{key}[{j}]")
    if "authentication" in link:
        check_rlink_authentication(link["authentication"], f"{path}.authentication")


def check_rlink_authentication(auth, path: str) -> None:
    """One method: ``{"ticket": {"ticket", "authid"?}}``, ``{"cryptosign": {"authid"?,
    "privkey"?}}`` (without ``privkey``: the node key, CBDIR/key.priv) or ``{"anonymous": {}}``."""
    check_dict(auth, path, {}, {"ticket": dict, "cryptosign": dict, "anonymous": dict})
    if len(auth) != 1:
        raise ConfigError(path, "exactly one authentication method (one of: anonymous, cryptosign, ticket)")
    if "ticket" in auth:
        check_dict(auth["ticket"], f"{path}.ticket", {"ticket": str}, {"authid": str})
    elif "cryptosign" in auth:
        cs = check_dict(auth["cryptosign"], f"{path}.cryptosign", {}, {"authid": str, "privkey": str})
        key = cs.get("privkey")
        if key is not None and (len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key)):
            raise ConfigError(f"{path}.cryptosign.privkey", "must be an Ed25519 private key as 64 hex digits")
    else:
        check_dict(auth["anonymous"], f"{path}.anonymous", {}, {"authrole": str})


def check_store(store, path: str) -> None:
    """A realm's event store (Crossbar.io: ``{"type": "memory", "event-history": [...]}``)."""
    check_dict(store, path, {"type": str}, {"event-history": list, "limit": int, "maxsize": int, "path": str})
    if store["type"] != "memory":
        raise ConfigError(f"{path}.type", f"unsupported store type '{store['type']}' (supported: memory)")
    if store.get("limit", defaults.HISTORY_LIMIT) < 1:
        raise ConfigError(f"{path}.limit", "must be a positive integer (events kept per event-history entry)")
    for i, entry in enumerate(store.get("event-history", [])):
        p = f"{path}['event-history'][{i}]"
        check_dict(entry, p, {"uri": str}, {"match": str, "limit": int})
        match = entry.get("match", "exact")
        if match not in ("exact", "prefix", "wildcard"):
            raise ConfigError(f"{p}.match", f"invalid match policy '{match}' (one of: exact, prefix, wildcard)")
        if entry.get("limit", defaults.HISTORY_LIMIT) < 1:
            raise ConfigError(f"{p}.limit", "must be a positive integer")
