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

from ..protocol.uri import quote_uri
from .session import authorizer_session
from .urimap import EXACT, PREFIX, UriCache, UriMap, pattern_key

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


def _literal_prefix(uri: str, match: str) -> str:
    """The string every URI matched by the pattern starts with."""
    if match == PREFIX:
        return uri
    comps = uri.split(".")
    lead = []
    for c in comps:
        if not c:
            break
        lead.append(c)
    return ".".join(lead) + ("." if len(lead) < len(comps) else "")


def _wild_compatible(a: str, b: str) -> bool:
    """Could two wildcard patterns (or a wildcard and an exact URI) match a common URI?"""
    ca, cb = a.split("."), b.split(".")
    return len(ca) == len(cb) and all(x == y or not x or not y for x, y in zip(ca, cb))


def _covers(perm: "Permission", uri: str, match: str) -> bool:
    """Does ``perm`` match every URI that the pattern (uri, match) matches?"""
    if perm.match == PREFIX:
        return _literal_prefix(uri, match).startswith(perm.uri)
    if perm.match == "wildcard" and match == "wildcard":
        cp, cu = perm.uri.split("."), uri.split(".")
        return len(cp) == len(cu) and all(not p or (p == u and u) for p, u in zip(cp, cu))
    return False  # an exact permission covers no pattern; a wildcard one no prefix pattern


def _overlaps(perm: "Permission", uri: str, match: str) -> bool:
    """Could ``perm`` and the pattern (uri, match) match a common URI?"""
    if perm.match == EXACT:
        if match == PREFIX:
            return perm.uri.startswith(uri)
        return _wild_compatible(uri, perm.uri)
    if perm.match == PREFIX:
        lit = _literal_prefix(uri, match)
        return perm.uri.startswith(lit) or lit.startswith(perm.uri)
    if match == "wildcard":
        return _wild_compatible(uri, perm.uri)
    lit = _literal_prefix(perm.uri, "wildcard")
    return lit.startswith(uri) or uri.startswith(lit)


def _rank(perm: "Permission") -> tuple:
    if perm.match == EXACT:
        return (3, len(perm.uri))
    if perm.match == PREFIX:
        return (2, len(perm.uri))
    return (1, sum(1 for c in perm.uri.split(".") if c))


class RouterRole:
    """One role of a realm with its static permissions."""

    __slots__ = ("name", "config", "_map", "_answers", "_cache", "_perms")

    CACHE_LIMIT = 10000  # cached answers per role: entries ...
    CACHE_BYTES = 4 * 1024 * 1024  # ... and bytes of the URIs they keep alive

    def __init__(self, name: str, permissions: list[dict], config: dict | None = None):
        self.name = name
        self.config = config if config is not None else {"name": name, "permissions": permissions}
        self._map = UriMap()
        self._perms = []
        for p in permissions:
            perm = Permission(p)
            self._map.set(perm.uri, perm.match, perm)
            self._perms.append(perm)
        self._answers = UriCache(self.CACHE_LIMIT, self.CACHE_BYTES)
        self._cache = self._answers.map

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
            self._answers.put(key, answer, uri)
        return answer


    def names_exactly(self, uri: str, action: str) -> bool:
        """Whether a permission names ``uri`` itself (match exact) and allows ``action`` on it: what
        makes a session an rlink leg (router/broker.py), which a catch-all prefix rule must not."""
        return any(p.match == EXACT and p.uri == uri and p.allow.get(action) for p in self._perms)

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        """Authorize a pattern-based subscription/registration: a permission must
        allow ``action`` on *every* URI the pattern matches, and no more specific
        permission that denies it may overlap the pattern (otherwise a role allowed
        one exact URI could subscribe to everything below it)."""
        allowing = [p for p in self._perms if p.allow.get(action) and _covers(p, uri, match)]
        if not allowing:
            return DENY
        best = max(allowing, key=_rank)
        for p in self._perms:
            if not p.allow.get(action) and _rank(p) > _rank(best) and _overlaps(p, uri, match):
                return DENY
        return True, False


class TrustedRole:
    """The role of router-internal sessions: everything is allowed."""

    __slots__ = ("name", "config")

    def __init__(self, name: str = "trusted"):
        self.name = name
        self.config = {"name": name}

    dynamic = False

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        return True, False

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        return True, False

    def names_exactly(self, uri: str, action: str) -> bool:
        return True


class DenyRole:
    """Stands in for a role that was stopped while sessions still had it."""

    __slots__ = ("name", "config")
    dynamic = False

    def __init__(self, name: str):
        self.name = name
        self.config = {"name": name}

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        return DENY

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        return DENY

    def names_exactly(self, uri: str, action: str) -> bool:
        return False


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
            return cache.map.get((uri, action))
        return None

    def authorize_pattern(self, uri: str, match: str, action: str, session=None):
        # the authorizer sees options.match; its answer is kept apart from the exact URI's
        return self.authorize(pattern_key(uri, match), action, session)

    def names_exactly(self, uri: str, action: str) -> bool:
        return False  # an authorizer's yes cannot be told from a catch-all: not an rlink leg

    def ask(self, session, uri: str, action: str, options: dict, done) -> None:
        """Call the authorizer; ``done((allowed, disclose), cache)`` runs with its answer."""
        def on_result(result):
            if isinstance(result, bool):
                answer, cache = (result, False), False
            elif isinstance(result, dict) and isinstance(result.get("allow"), bool):
                answer = (result["allow"], bool(result.get("disclose", False)))
                cache = bool(result.get("cache", False))
            else:
                log.warning("authorizer %s returned an invalid answer %.200r: denied", self.authorizer, result)
                answer, cache = DENY, False
            done(answer, cache)

        def on_error(error):
            log.warning("authorizer %s failed for %s on %s: %.500s (denied)", self.authorizer, action, quote_uri(uri),
                        error)
            done(DENY, False)

        meta = self.realm.meta
        if meta is None:
            done(DENY, False)
            return
        meta.call(self.authorizer, [authorizer_session(session), uri, action, options], on_result, on_error)
