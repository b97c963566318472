"""Authentication: a transport's ``auth`` section (methods, static principals, dynamic and
function authenticators) and the router worker's ``auth_throttle`` option."""

from __future__ import annotations

from .base import ConfigError, check_dict, check_type


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
