"""What a realm keeps for the router-to-router links that reach it (rlink/, docs/clustering.md
"Multi-hop"): its router ID and the link-state records the links flood through the link graph.

A realm does not run links itself (a link runs in the worker where it is configured and has a leg
on each of its two routers); so that routers not linked directly still reach each other, every
link puts what it knows (which routers it links, what each of its two routers subscribes and
registers) into both routers' ``LinkState``, and copies newer records it finds on one router to
the other.  The realm keeps the newest record per key and tells its legs about the newer ones
(topic ``STATE_TOPIC``, delivered to legs only).  Records are plain dicts:

- ``{"key": "link:<a>:<b>", "seq", "a", "b", "up"}``: routers ``a`` < ``b`` are linked (``up``).
  A link puts its own record into each of its routers through its leg there (``own``): the realm
  then marks it down itself when that leg's session goes (the process that ran the link died,
  the connection broke), so the others route around it at once and nothing needs refreshing.
  A record that says down is forgotten an hour later;
- ``{"key": "router:<id>", "seq", "router", "subs", "regs"}``: a router's own interest (what
  sessions that are not legs subscribe and register); forgotten with the last link record that
  names it.

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
DOWN_KEPT_S = 3600.0  # a link record that says down, before it is forgotten (a partition healing
                      # late must not bring back an older "up")


class LinkStateError(ValueError):
    """A record a leg put is unusable (the meta procedure answers it as invalid_argument)."""


class LinkState:
    def __init__(self):
        #: this realm's router ID for links: random per realm start (a restarted router is a new one)
        self.id = secrets.token_hex(8)
        self.records: dict[str, dict] = {}
        self._owners: dict[str, int] = {}  # own link record key -> session ID of the leg that put it
        self._down_since: dict[str, float] = {}  # link record key -> monotonic time it said down

    def get(self) -> list[dict]:
        self._prune()
        return list(self.records.values())

    def put(self, records, owner: int | None = None) -> list[dict]:
        """Keep the records newer than what is kept; returns those (what legs are told).
        ``owner``: the session ID of the leg that put its own link's record (see the module)."""
        if not isinstance(records, list):
            raise LinkStateError("records must be a list")
        newer = []
        for rec in records:
            key = _check(rec)
            if owner is not None and key.startswith("link:") and self.id in (rec["a"], rec["b"]):
                self._owners[key] = owner
            old = self.records.get(key)
            if old is not None and old["seq"] >= rec["seq"]:
                continue
            if old is None and len(self.records) >= MAX_RECORDS:
                self._prune()
                if len(self.records) >= MAX_RECORDS:
                    raise LinkStateError(f"too many link-state records (at most {MAX_RECORDS})")
            self._keep(key, rec)
            newer.append(rec)
        return newer

    def leg_gone(self, session_id: int) -> list[dict]:
        """A leg left: the links whose records it put here are down (returns the new records)."""
        out = []
        for key in [k for k, owner in self._owners.items() if owner == session_id]:
            del self._owners[key]
            rec = self.records.get(key)
            if rec is not None and rec.get("up"):
                down = dict(rec, up=False, seq=max(rec["seq"] + 1, time.time_ns()))
                self._keep(key, down)
                out.append(down)
        return out

    def _keep(self, key: str, rec: dict) -> None:
        self.records[key] = rec
        if key.startswith("link:"):
            if rec.get("up"):
                self._down_since.pop(key, None)
            else:
                self._down_since.setdefault(key, time.monotonic())

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, t in self._down_since.items() if now - t > DOWN_KEPT_S]:
            del self._down_since[key]
            self.records.pop(key, None)
            self._owners.pop(key, None)
        named = set()
        for key, rec in self.records.items():
            if key.startswith("link:"):
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
        if not isinstance(rec.get("up"), bool):
            raise LinkStateError(f"record '{key[:80]}': a link record needs 'up' (true or false)")
    elif key.startswith("router:"):
        if rec.get("router") != key[7:] or not isinstance(rec.get("subs", []), list) \
                or not isinstance(rec.get("regs", []), list):
            raise LinkStateError(f"record '{key[:80]}': a router record needs 'router' naming its key, "
                                 "lists 'subs' and 'regs'")
    else:
        raise LinkStateError(f"record '{key[:80]}': unknown kind (link: or router:)")
    return key
