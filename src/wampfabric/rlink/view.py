"""What one router has that a link forwards: its subscriptions and registrations made by
sessions that are not rlink legs, followed through the WAMP meta API (a snapshot, then
``wamp.subscription.on_*`` / ``wamp.registration.on_*``).  The same code watches the local
router (through the in-process leg) and the other one (through the network leg).

Rlink legs mark themselves by subscribing to ``MARKER`` before anything else; what only legs
subscribe or register is no interest of the router (links forward one hop, so nothing a link
made needs forwarding again, and two links can never keep each other's forwarding alive)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..router.broker import RLINK_MARKER
from ..router.linkstate import RLINK_PREFIX

log = logging.getLogger("wampfabric.rlink")

#: the topic every rlink leg subscribes to first: how links recognise each other's sessions, and
#: how a router knows its legs (the broker marks a session that subscribes here)
MARKER = RLINK_MARKER

#: requests a link keeps in flight while it takes a snapshot or (re)makes its mirrors (one round
#: trip per item would make a link with thousands of subscriptions slow to (re)connect)
PIPELINE = 256


async def pipelined(items, fn, width: int = PIPELINE) -> list:
    """``fn(item)`` for every item, up to ``width`` at a time; results (or exceptions) in order."""
    out = []
    items = list(items)
    for i in range(0, len(items), width):
        out.extend(await asyncio.gather(*(fn(x) for x in items[i:i + width]), return_exceptions=True))
    return out

_SUB_EVENTS = ("on_create", "on_subscribe", "on_unsubscribe", "on_delete")
_REG_EVENTS = ("on_create", "on_register", "on_unregister", "on_delete")


def _ignored(uri: str) -> bool:
    return uri.startswith(("wamp.", RLINK_PREFIX))  # the router's own, and the links' (the marker too)


class RouterView:
    """Subscriptions and registrations of one router realm, with their members' session IDs,
    and the session IDs of the rlink legs there.  ``on_change()`` runs after every change."""

    def __init__(self, session, on_change: Callable[[], None]):
        self.session = session
        self.on_change = on_change
        self.subs: dict[int, list] = {}  # subscription id -> [uri, match, set(session ids)]
        self.regs: dict[int, list] = {}  # registration id -> [uri, match, invoke, set(session ids)]
        self.legs: set[int] = set()
        self.marker_ids: set[int] = set()

    async def start(self) -> None:
        s = self.session
        for name in _SUB_EVENTS:
            await s.subscribe(f"wamp.subscription.{name}", getattr(self, f"_sub_{name}"))
        for name in _REG_EVENTS:
            await s.subscribe(f"wamp.registration.{name}", getattr(self, f"_reg_{name}"))
        # the snapshot (what changes meanwhile arrives as events and is merged), pipelined
        async def sub(sub_id):
            return (await s.call("wamp.subscription.get", sub_id),
                    await s.call("wamp.subscription.list_subscribers", sub_id))

        async def reg(reg_id):
            return (await s.call("wamp.registration.get", reg_id),
                    await s.call("wamp.registration.list_callees", reg_id))

        listed = await s.call("wamp.subscription.list")
        ids = [i for group in (listed or {}).values() for i in group]
        for sub_id, got in zip(ids, await pipelined(ids, sub)):
            if isinstance(got, BaseException):
                continue  # gone meanwhile
            d, members = got
            self._sub_on_create(None, d, notify=False)
            for sid in members or ():
                self._sub_on_subscribe(sid, sub_id, notify=False)
        listed = await s.call("wamp.registration.list")
        ids = [i for group in (listed or {}).values() for i in group]
        for reg_id, got in zip(ids, await pipelined(ids, reg)):
            if isinstance(got, BaseException):
                continue
            d, members = got
            self._reg_on_create(None, d, notify=False)
            for sid in members or ():
                self._reg_on_register(sid, reg_id, notify=False)
        self.on_change()

    # -- what the links forward ------------------------------------------------------------

    def wanted_subscriptions(self) -> set[tuple[str, str]]:
        """(uri, match) of the subscriptions with a subscriber that is not an rlink leg."""
        legs = self.legs
        return {(uri, match) for uri, match, members in self.subs.values()
                if not _ignored(uri) and any(sid not in legs for sid in members)}

    def wanted_registrations(self) -> dict[tuple[str, str], str]:
        """(uri, match) -> invoke policy of the registrations with a callee that is not a leg."""
        legs = self.legs
        return {(uri, match): invoke for uri, match, invoke, members in self.regs.values()
                if not _ignored(uri) and any(sid not in legs for sid in members)}

    # -- meta events ---------------------------------------------------------------------------

    def _sub_on_create(self, session_id, details, notify=True):
        if not isinstance(details, dict) or "id" not in details:
            return
        entry = self.subs.get(details["id"])
        if entry is None:
            self.subs[details["id"]] = [details.get("uri"), details.get("match", "exact"), set()]
        if details.get("uri") == MARKER:
            self.marker_ids.add(details["id"])

    def _sub_on_subscribe(self, session_id, sub_id, notify=True):
        entry = self.subs.get(sub_id)
        if entry is None:
            return
        entry[2].add(session_id)
        if sub_id in self.marker_ids:
            self.legs.add(session_id)
        if notify:
            self.on_change()

    def _sub_on_unsubscribe(self, session_id, sub_id):
        entry = self.subs.get(sub_id)
        if entry is not None:
            entry[2].discard(session_id)
        if sub_id in self.marker_ids:
            self.legs.discard(session_id)
        self.on_change()

    def _sub_on_delete(self, session_id, sub_id):
        self.subs.pop(sub_id, None)
        self.marker_ids.discard(sub_id)
        self.on_change()

    def _reg_on_create(self, session_id, details, notify=True):
        if not isinstance(details, dict) or "id" not in details:
            return
        if details["id"] not in self.regs:
            self.regs[details["id"]] = [details.get("uri"), details.get("match", "exact"),
                                        details.get("invoke", "single"), set()]

    def _reg_on_register(self, session_id, reg_id, notify=True):
        entry = self.regs.get(reg_id)
        if entry is None:
            return
        entry[3].add(session_id)
        if notify:
            self.on_change()

    def _reg_on_unregister(self, session_id, reg_id):
        entry = self.regs.get(reg_id)
        if entry is not None:
            entry[3].discard(session_id)
        self.on_change()

    def _reg_on_delete(self, session_id, reg_id):
        self.regs.pop(reg_id, None)
        self.on_change()
