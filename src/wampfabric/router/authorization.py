"""Static, role-based authorization (deny unless a permission allows).

A realm's ``roles`` config lists, per role, ``permissions`` entries::

    {"uri": "com.example.", "match": "prefix",
     "allow": {"call": true, "register": false, "publish": true, "subscribe": true},
     "disclose": {"caller": false, "publisher": false}, "cache": true}

For a URI the single best permission applies (exact, then longest prefix,
then wildcard), as in Crossbar.io.  A missing ``match`` is ``exact``, except
for the legacy spelling of a trailing ``*`` (``"com.example.*"`` or ``"*"``),
which means a prefix.
"""

from __future__ import annotations

from .urimap import EXACT, PREFIX, UriMap

ACTIONS = ("call", "register", "publish", "subscribe")

# (allowed, disclose) answers
DENY = (False, False)


class Permission:
    __slots__ = ("uri", "match", "allow", "disclose_caller", "disclose_publisher", "cache")

    def __init__(self, cfg: dict):
        uri = cfg.get("uri", "")
        match = cfg.get("match")
        if match is None:
            if uri.endswith("*"):
                uri, match = uri[:-1], PREFIX
            else:
                match = EXACT
        self.uri = uri
        self.match = match
        allow = cfg.get("allow", {})
        self.allow = {a: bool(allow.get(a, False)) for a in ACTIONS}
        disclose = cfg.get("disclose", {})
        self.disclose_caller = bool(disclose.get("caller", False))
        self.disclose_publisher = bool(disclose.get("publisher", False))
        self.cache = bool(cfg.get("cache", True))

    def answer(self, action: str) -> tuple[bool, bool]:
        if not self.allow.get(action, False):
            return DENY
        if action == "call":
            return True, self.disclose_caller
        if action == "publish":
            return True, self.disclose_publisher
        return True, False


class RouterRole:
    """One role of a realm with its static permissions."""

    __slots__ = ("name", "config", "_map", "_cache")

    CACHE_LIMIT = 10000

    def __init__(self, name: str, permissions: list[dict], config: dict | None = None):
        self.name = name
        self.config = config if config is not None else {"name": name, "permissions": permissions}
        self._map = UriMap()
        for p in permissions:
            perm = Permission(p)
            self._map.set(perm.uri, perm.match, perm)
        self._cache: dict = {}

    def authorize(self, uri: str, action: str) -> tuple[bool, bool]:
        """Return ``(allowed, disclose)`` for ``action`` on ``uri``."""
        key = (uri, action)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        perm = self._map.best(uri)
        answer = DENY if perm is None else perm.answer(action)
        if perm is not None and perm.cache:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = answer
        return answer


class TrustedRole:
    """The role of router-internal sessions: everything is allowed."""

    __slots__ = ("name", "config")

    def __init__(self, name: str = "trusted"):
        self.name = name
        self.config = {"name": name}

    def authorize(self, uri: str, action: str) -> tuple[bool, bool]:
        return True, False
