"""The link graph as one link knows it (docs/clustering.md "Multi-hop"): the link-state records
its two routers hold (router/linkstate.py), shortest paths over the links that are up, and which
routers' subscriptions match a topic.

Every link computes the same paths from the same records: breadth-first from a router, the
neighbours of each router taken in the order of their IDs, so the first hop towards every other
router is one and the same wherever it is computed.  An event bound for several routers is split
by first hop at every router it passes, so each destination gets it once and no router sees it
twice (explicit multicast along shortest paths).
"""

from __future__ import annotations

import time


class Interest:
    """A router's subscriptions (uri, match) as a topic matcher."""

    __slots__ = ("exact", "prefixes", "wildcards")

    def __init__(self, subs):
        self.exact = set()
        self.prefixes = []
        self.wildcards = []
        for item in subs:
            if not (isinstance(item, (list, tuple)) and len(item) >= 2):
                continue
            uri, match = item[0], item[1]
            if not isinstance(uri, str):
                continue
            if match == "prefix":
                self.prefixes.append(uri)
            elif match == "wildcard":
                self.wildcards.append(uri.split("."))
            else:
                self.exact.add(uri)

    def matches(self, topic: str) -> bool:
        if topic in self.exact:
            return True
        for p in self.prefixes:
            if topic.startswith(p):
                return True
        if self.wildcards:
            comps = topic.split(".")
            for pattern in self.wildcards:
                if len(pattern) == len(comps) and all(not p or p == c for p, c in zip(pattern, comps)):
                    return True
        return False


class Topology:
    """Link-state records by key, the newest of each; ``version`` changes with the graph (the
    links that are up), not with a router's interest."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self._down_since: dict[str, float] = {}  # link record key -> monotonic time it said down
        self.version = 0
        self._hops: dict[str, tuple] = {}  # root -> (version, {target: first hop}, [targets by distance])
        self._interest: dict[str, tuple] = {}  # router -> (seq, Interest)

    def merge(self, rec) -> bool:
        """Keep ``rec`` if it is newer than what is kept (True then)."""
        if not isinstance(rec, dict):
            return False
        key, seq = rec.get("key"), rec.get("seq")
        if not isinstance(key, str) or type(seq) is not int:
            return False
        is_link = key.startswith("link:")
        if not (is_link or key.startswith("router:")):
            return False
        old = self.records.get(key)
        if old is not None and old["seq"] >= seq:
            return False
        self.records[key] = rec
        if is_link:
            if rec.get("up"):
                self._down_since.pop(key, None)
            else:
                self._down_since.setdefault(key, time.monotonic())
            if old is None or old.get("up") != rec.get("up"):
                self.version += 1  # the paths change (router records do not change them)
        return True

    def expire(self, kept: float) -> None:
        """Forget link records that said down for ``kept`` seconds, and router records no link
        record names any more (routers that went away)."""
        now = time.monotonic()
        gone = [k for k, t in self._down_since.items() if now - t > kept]
        for key in gone:
            del self._down_since[key]
            self.records.pop(key, None)
        if not gone:
            return
        named = set()
        for key, rec in self.records.items():
            if key.startswith("link:"):
                named.add(rec.get("a"))
                named.add(rec.get("b"))
        for key in [k for k, r in self.records.items() if k.startswith("router:") and r.get("router") not in named]:
            del self.records[key]
            self._interest.pop(key[7:], None)

    def seq(self, key: str) -> int:
        rec = self.records.get(key)
        return rec["seq"] if rec is not None else -1

    # -- paths ------------------------------------------------------------------------------------

    def _adjacency(self) -> dict[str, list]:
        adj: dict[str, set] = {}
        for key, rec in self.records.items():
            if key.startswith("link:") and rec.get("up"):
                a, b = rec.get("a"), rec.get("b")
                if isinstance(a, str) and isinstance(b, str) and a != b:
                    adj.setdefault(a, set()).add(b)
                    adj.setdefault(b, set()).add(a)
        return {k: sorted(v) for k, v in adj.items()}

    def first_hops(self, root: str) -> dict[str, str]:
        """Every router reachable from ``root`` -> the neighbour of ``root`` its path starts with."""
        return self._paths(root)[0]

    def by_distance(self, root: str) -> list[str]:
        """The routers reachable from ``root``, nearest first (ties by ID order of the search)."""
        return self._paths(root)[1]

    def hops(self, root: str) -> dict[str, int]:
        """Every router reachable from ``root`` -> how many links away."""
        return self._paths(root)[2]

    def _paths(self, root: str) -> tuple:
        hit = self._hops.get(root)
        if hit is not None and hit[0] == self.version:
            return hit[1:]
        adj = self._adjacency()
        first: dict[str, str] = {}
        order: list[str] = []
        dist: dict[str, int] = {}
        frontier = []
        for n in adj.get(root, ()):
            first[n] = n
            dist[n] = 1
            order.append(n)
            frontier.append(n)
        seen = {root, *frontier}
        while frontier:
            nxt = []
            for r in frontier:
                for n in adj.get(r, ()):
                    if n not in seen:
                        seen.add(n)
                        first[n] = first[r]
                        dist[n] = dist[r] + 1
                        order.append(n)
                        nxt.append(n)
            frontier = nxt
        if len(self._hops) > 256:
            self._hops.clear()
        self._hops[root] = (self.version, first, order, dist)
        return first, order, dist

    def behind(self, root: str, neighbour: str) -> list[str]:
        """The routers whose path from ``root`` starts with ``neighbour`` (``neighbour`` first)."""
        first = self.first_hops(root)
        return [r for r in self.by_distance(root) if first[r] == neighbour]

    # -- interest ---------------------------------------------------------------------------------

    def router(self, router_id: str) -> dict | None:
        return self.records.get("router:" + router_id)

    def interest(self, router_id: str) -> Interest | None:
        rec = self.router(router_id)
        if rec is None:
            return None
        hit = self._interest.get(router_id)
        if hit is not None and hit[0] == rec["seq"]:
            return hit[1]
        matcher = Interest(rec.get("subs") or ())
        if len(self._interest) > 4096:
            self._interest.clear()
        self._interest[router_id] = (rec["seq"], matcher)
        return matcher

    def subscriptions(self, router_id: str) -> set[tuple[str, str]]:
        rec = self.router(router_id)
        out = set()
        for item in (rec or {}).get("subs") or ():
            if isinstance(item, (list, tuple)) and len(item) >= 2 and isinstance(item[0], str):
                out.add((item[0], item[1]))
        return out

    def registrations(self, router_id: str) -> dict[tuple[str, str], str]:
        rec = self.router(router_id)
        out = {}
        for item in (rec or {}).get("regs") or ():
            if isinstance(item, (list, tuple)) and len(item) >= 3 and isinstance(item[0], str):
                out[(item[0], item[1])] = item[2]
        return out
