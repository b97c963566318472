"""What a realm keeps for the router-to-router links that reach it (rlink/, docs/clustering.md
"Multi-hop"): its router ID and the link-state records the links flood through the link graph.

A realm does not run links itself (a link runs in the worker where it is configured and has a leg
on each of its two routers); so that routers not linked directly still reach each other, every
link puts what it knows (which routers it links, what each of its two routers subscribes and
registers) into both routers' ``LinkState``, and copies newer records it finds on one router to
the other.  The realm keeps the newest record per key and tells its legs about the newer ones
(topic ``STATE_TOPIC``, delivered to legs only).  Records are plain dicts:

- ``{"key": "link:<a>:<b>", "seq", "a", "b", "up", "ttl"}``: routers ``a`` < ``b`` are linked
  (``up``); forgotten ``ttl`` seconds after it was last put (the link refreshes it more often),
  so a link whose both ends went away leaves no trace;
- ``{"key": "router:<id>", "seq", "router", "subs", "regs"}``: a router's own interest (what
  sessions that are not legs subscribe and register); forgotten when no link record names it.

``seq`` orders versions of one key (a publisher's nanosecond clock).  Nothing here runs per
routed message.
"""

from __future__ import annotations

import secrets
import time

#: URIs under this prefix are for router links only: legs publish there (the broker refuses
#: everybody else and delivers legs' publications there to legs only), legs register there
RLINK_PREFIX = "wampfabric.rlink."
#: newer link-state records, published by the router to its legs
STATE_TOPIC = "wampfabric.rlink.state"

MAX_RECORDS = 20_000  # link and router records in all: a realm holds the state of a large graph, bounded
MAX_KEY = 400
MAX_TTL = 3600.0


class LinkStateError(ValueError):
    """A record a leg put is unusable (the meta procedure answers it as invalid_argument)."""


class LinkState:
    def __init__(self):
        #: this realm's router ID for links: random per realm start (a restarted router is a new one)
        self.id = secrets.token_hex(8)
        self.records: dict[str, dict] = {}
        self._expires: dict[str, float] = {}  # link record key -> monotonic time it is forgotten

    def get(self) -> list[dict]:
        self._prune()
        return list(self.records.values())

    def put(self, records) -> list[dict]:
        """Keep the records newer than what is kept; returns those (what legs are told)."""
        if not isinstance(records, list):
            raise LinkStateError("records must be a list")
        now = time.monotonic()
        newer = []
        for rec in records:
            key = _check(rec)
            old = self.records.get(key)
            if old is not None and old["seq"] >= rec["seq"]:
                if old["seq"] == rec["seq"] and key in self._expires:  # the same refresh again
                    self._expires[key] = now + float(rec.get("ttl") or MAX_TTL)
                continue
            if old is None and len(self.records) >= MAX_RECORDS:
                self._prune()
                if len(self.records) >= MAX_RECORDS:
                    raise LinkStateError(f"too many link-state records (at most {MAX_RECORDS})")
            self.records[key] = rec
            if key.startswith("link:"):
                self._expires[key] = now + min(float(rec.get("ttl") or MAX_TTL), MAX_TTL)
            newer.append(rec)
        return newer

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, t in self._expires.items() if t < now]:
            del self._expires[key]
            self.records.pop(key, None)
        named = set()
        for key in self._expires:
            rec = self.records[key]
            named.add(rec["a"])
            named.add(rec["b"])
        for key in [k for k, r in self.records.items() if k.startswith("router:") and r["router"] not in named]:
            del self.records[key]


def _check(rec) -> str:
    if not isinstance(rec, dict):
        raise LinkStateError("a record must be a dict")
    key, seq = rec.get("key"), rec.get("seq")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise LinkStateError("a record needs a 'key' (a string)")
    if type(seq) is not int:
        raise LinkStateError(f"record '{key[:80]}': 'seq' must be an integer")
    if key.startswith("link:"):
        a, b = rec.get("a"), rec.get("b")
        if not (isinstance(a, str) and isinstance(b, str) and key == f"link:{a}:{b}" and a < b):
            raise LinkStateError(f"record '{key[:80]}': a link record needs 'a' < 'b' naming its key")
        ttl = rec.get("ttl")
        if ttl is not None and not (isinstance(ttl, (int, float)) and 0 < ttl <= MAX_TTL):
            raise LinkStateError(f"record '{key[:80]}': 'ttl' must be a number of seconds up to {MAX_TTL:.0f}")
    elif key.startswith("router:"):
        if rec.get("router") != key[7:] or not isinstance(rec.get("subs", []), list) \
                or not isinstance(rec.get("regs", []), list):
            raise LinkStateError(f"record '{key[:80]}': a router record needs 'router' naming its key, "
                                 "lists 'subs' and 'regs'")
    else:
        raise LinkStateError(f"record '{key[:80]}': unknown kind (link: or router:)")
    return key
