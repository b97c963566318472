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

import logging

from .urimap import EXACT, PREFIX, UriMap

log = logging.getLogger("wampfabric.router.authorization")

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

    dynamic = False

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
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

    dynamic = False

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        return True, False


class DenyRole:
    """Stands in for a role that was stopped while sessions still had it."""

    __slots__ = ("name", "config")
    dynamic = False

    def __init__(self, name: str):
        self.name = name
        self.config = {"name": name}

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        return DENY


class DynamicRole:
    """A role whose permissions an ``authorizer`` procedure decides (Crossbar.io:
    ``{"name": "user", "authorizer": "com.example.authorize"}``).

    The authorizer is called as ``authorize(session_details, uri, action, options)``
    and answers a bool or ``{"allow": bool, "disclose": bool, "cache": bool}``.
    Answers with ``cache`` are kept per session until the realm's roles change.
    ``authorize`` returns None when the authorizer has to be asked; the session
    then holds its messages until the answer is in (see RouterSession).
    """

    __slots__ = ("name", "config", "authorizer", "realm")
    dynamic = True

    def __init__(self, name: str, authorizer: str, config: dict, realm):
        self.name = name
        self.config = config
        self.authorizer = authorizer
        self.realm = realm

    def authorize(self, uri: str, action: str, session=None):
        cache = session.authz_cache if session is not None else None
        if cache:
            return cache.get((uri, action))
        return None

    def ask(self, session, uri: str, action: str, options: dict, done) -> None:
        """Call the authorizer; ``done((allowed, disclose), cache)`` runs with its answer."""
        from .realm import session_info

        def on_result(result):
            if isinstance(result, bool):
                answer, cache = (result, False), False
            elif isinstance(result, dict) and isinstance(result.get("allow"), bool):
                answer = (result["allow"], bool(result.get("disclose", False)))
                cache = bool(result.get("cache", False))
            else:
                log.warning("authorizer %s returned an invalid answer %r: denied", self.authorizer, result)
                answer, cache = DENY, False
            done(answer, cache)

        def on_error(error):
            log.warning("authorizer %s failed for %s on %s: %s (denied)", self.authorizer, action, uri, error)
            done(DENY, False)

        service = self.realm.service
        if service is None:
            done(DENY, False)
            return
        service.call(self.authorizer, [session_info(session), uri, action, options], on_result, on_error)
