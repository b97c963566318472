"""URI pattern maps: exact, prefix and wildcard entries with fast lookup.

Used by the broker (all subscriptions matching a topic), the dealer (the one
registration that best matches a procedure) and static authorization (the
permission that best matches a URI).  None of the lookups scans every
pattern:

* exact: one dict lookup;
* prefix: patterns are kept by length; a URI of length L is checked with one
  dict lookup per *distinct* pattern length <= L (string prefixes, as the
  WAMP spec defines prefix matching, not component prefixes);
* wildcard: patterns are grouped by their number of components and kept in a
  trie whose edges are components, "" being the wildcard edge; matching walks
  at most the branches that can match.

:class:`UriCache` remembers answers per URI (URI validity, authorization
answers, the dealer's routes) in a plain dict bounded by entries *and* by the
bytes of the keys it keeps alive.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

EXACT = "exact"
PREFIX = "prefix"
WILDCARD = "wildcard"
MATCH_POLICIES = (EXACT, PREFIX, WILDCARD)

_LEAF = object()  # trie key under which a wildcard pattern's value is stored


class UriCache:
    """Remembers answers keyed by URIs (or by tuples starting with a URI) in a plain
    dict, ``map``, bounded by the number of entries and by the memory of the key
    strings it keeps alive (``sys.getsizeof``: a URI's characters plus the str
    header).  When either bound would be exceeded the dict is emptied and starts
    again: a router sees the same few URIs over and over, a client sending ever new
    URIs only makes the cache start again.

    Owners look up in ``map`` directly (the hot path stays one ``dict.get`` on a
    plain dict) and insert through :meth:`put` only; they may ``map.clear()``
    themselves (the next :meth:`put` notices)."""

    __slots__ = ("map", "max_entries", "max_bytes", "nbytes")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.map: dict = {}
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.map)

    def put(self, key, value, uri: str) -> None:
        """Remember ``value`` under ``key`` (``uri`` being the string in the key); it is
        there afterwards, even if it alone exceeds the bounds (the next put clears it)."""
        m = self.map
        if not m:
            self.nbytes = 0  # (emptied by its owner meanwhile)
        cost = sys.getsizeof(uri) + 64  # the key string and about a dict slot
        if len(m) >= self.max_entries or self.nbytes + cost > self.max_bytes:
            m.clear()
            self.nbytes = 0
        if key not in m:
            self.nbytes += cost
        m[key] = value

    def discard(self, key, uri: str) -> None:
        if self.map.pop(key, _LEAF) is not _LEAF:
            self.nbytes -= sys.getsizeof(uri) + 64

    def clear(self) -> None:
        self.map.clear()
        self.nbytes = 0


class UriMap:
    """Maps (uri, match) to a value; finds the values matching a concrete URI."""

    __slots__ = ("_exact", "_prefix", "_prefix_lengths", "_wild", "_wild_count")

    def __init__(self) -> None:
        self._exact: dict[str, Any] = {}
        self._prefix: dict[str, Any] = {}
        self._prefix_lengths: list[int] = []  # sorted descending: longest first
        self._wild: dict[int, dict] = {}  # n components -> trie
        self._wild_count = 0

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix) + self._wild_count

    # -- mutation ---------------------------------------------------------

    def get(self, uri: str, match: str = EXACT) -> Any:
        if match == EXACT:
            return self._exact.get(uri)
        if match == PREFIX:
            return self._prefix.get(uri)
        node = self._wild.get(uri.count(".") + 1)
        for comp in uri.split("."):
            if node is None:
                return None
            node = node.get(comp)
        return None if node is None else node.get(_LEAF)

    def set(self, uri: str, match: str, value: Any) -> None:
        if match == EXACT:
            self._exact[uri] = value
        elif match == PREFIX:
            if uri not in self._prefix:
                n = len(uri)
                if n not in self._prefix_lengths:
                    self._prefix_lengths.append(n)
                    self._prefix_lengths.sort(reverse=True)
            self._prefix[uri] = value
        elif match == WILDCARD:
            comps = uri.split(".")
            node = self._wild.setdefault(len(comps), {})
            for comp in comps:
                node = node.setdefault(comp, {})
            if _LEAF not in node:
                self._wild_count += 1
            node[_LEAF] = value
        else:
            raise ValueError(f"invalid match policy {match!r}")

    def pop(self, uri: str, match: str = EXACT) -> Any:
        if match == EXACT:
            return self._exact.pop(uri, None)
        if match == PREFIX:
            value = self._prefix.pop(uri, None)
            n = len(uri)
            if value is not None and not any(len(p) == n for p in self._prefix):
                self._prefix_lengths.remove(n)
            return value
        comps = uri.split(".")
        root = self._wild.get(len(comps))
        if root is None:
            return None
        path = [root]
        node = root
        for comp in comps:
            node = node.get(comp)
            if node is None:
                return None
            path.append(node)
        value = node.pop(_LEAF, None)
        if value is None:
            return None
        self._wild_count -= 1
        # prune empty trie nodes bottom-up
        for i in range(len(comps), 0, -1):
            if path[i]:
                break
            del path[i - 1][comps[i - 1]]
        if not root:
            del self._wild[len(comps)]
        return value

    # -- lookup -----------------------------------------------------------

    def match_all(self, uri: str) -> list:
        """All values whose pattern matches ``uri``: exact, then prefixes
        longest first, then wildcards."""
        out = []
        v = self._exact.get(uri)
        if v is not None:
            out.append(v)
        if self._prefix:
            n = len(uri)
            prefix = self._prefix
            for length in self._prefix_lengths:
                if length <= n:
                    v = prefix.get(uri[:length])
                    if v is not None:
                        out.append(v)
        if self._wild_count:
            comps = uri.split(".")
            root = self._wild.get(len(comps))
            if root is not None:
                self._collect(root, comps, 0, out)
        return out

    def best(self, uri: str) -> Any:
        """The single best match per the WAMP precedence rules: exact, then
        the longest prefix, then the wildcard pattern with the most (and
        leftmost-first) concrete components."""
        v = self._exact.get(uri)
        if v is not None:
            return v
        if self._prefix:
            n = len(uri)
            prefix = self._prefix
            for length in self._prefix_lengths:
                if length <= n:
                    v = prefix.get(uri[:length])
                    if v is not None:
                        return v
        if self._wild_count:
            comps = uri.split(".")
            root = self._wild.get(len(comps))
            if root is not None:
                found: list = []
                self._collect(root, comps, 0, found)
                if found:
                    # _collect visits concrete edges before wildcard edges, so
                    # the first result is the most specific, leftmost first
                    return found[0]
        return None

    def _collect(self, node: dict, comps: list, i: int, out: list) -> None:
        if i == len(comps):
            v = node.get(_LEAF)
            if v is not None:
                out.append(v)
            return
        child = node.get(comps[i])
        if child is not None:
            self._collect(child, comps, i + 1, out)
        child = node.get("")
        if child is not None:
            self._collect(child, comps, i + 1, out)

    def values(self) -> Iterator[Any]:
        yield from self._exact.values()
        yield from self._prefix.values()
        for root in self._wild.values():
            stack = [root]
            while stack:
                node = stack.pop()
                for k, child in node.items():
                    if k is _LEAF:
                        yield child
                    else:
                        stack.append(child)


def pattern_key(uri: str, match: str) -> str:
    """Cache key of a pattern (never equal to a URI: URIs have no NUL)."""
    return f"{uri}\x00{match}"
