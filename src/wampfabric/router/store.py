"""The realm store: the events a realm keeps after their publication -- event histories
(advanced/pubsub_event_history) and retained events (advanced/pubsub_event_retention).

The broker routes; what it keeps, it keeps here.  A realm creates its store from its config
(:func:`create_store`), in Crossbar.io's format::

    "store": {"type": "memory", "limit": 100,
              "event-history": [{"uri": "com.example.topic", "match": "exact", "limit": 100}]}

plus the byte budgets among the realm's ``options`` (``max_retained_bytes``, ``max_history_bytes``).
A realm without ``store`` gets a memory store without event histories (retention is always on).

The interface (:class:`RealmStore`), what the broker asks of any store:

``histories()``
    the event histories the config asks for, as handles with ``uri``, ``match`` and ``limit``; the
    broker creates a subscription for each up front (events are kept before anyone subscribes) and
    holds the handle as that subscription's ``history``.
``keep_event(history, topic, publication, details, tail, filters)``
    an event dispatched on a history-keeping subscription: its EVENT ``details`` (as sent, with
    ``topic`` for pattern subscriptions), its payload ``tail`` (``[]``, ``[args]``, ``[args,
    kwargs]`` or a passthru payload: what follows Details in the EVENT) and its black/white lists
    (:class:`Filters` or None; events for listed session IDs are not passed: a session ID does not
    outlive its session).  Called on the publish path, once per history-keeping subscription.
``get_events(history, subscription_id, caller, limit, reverse, topic, **bounds)``
    the meta API's ``wamp.subscription.get_events``: dicts ``{"timestamp", "subscription",
    "publication", "details", "args"?, "kwargs"?}`` in order of occurrence (or reversed), without the
    events ``caller`` could not have received, cut by the time and publication ``bounds``
    (``from_time``, ``after_time``, ``before_time``, ``until_time`` as RFC 3339 strings, ValueError
    when malformed; ``from_publication`` ... ``until_publication``), then by ``limit``.
``retain(topic, publication, publisher, disclose, tail, ppt, filters, exclude_me)``
    keep an event as ``topic``'s retained event: ``disclose`` the ``(session_id, authid, authrole)``
    of a disclosed publisher or None, ``ppt`` the passthru attributes for the details or None,
    ``exclude_me`` the publisher's session ID when it excluded itself, else None.  An event without
    black/white lists supersedes the topic's earlier ones; events with lists are kept beside it.
``has_retained()``
    whether any topic has a retained event (a subscriber asking for them costs nothing otherwise).
``retained_for(uri, match, receiver)``
    ``(topic, event)`` pairs: for each topic ``uri``/``match`` covers, the most recent retained event
    ``receiver`` would have received, an object with ``publication``, ``disclose``, ``ppt`` and
    ``payload()`` (the tail; SerializationError when it cannot be decoded).

All a store reads of a session is what decides whether it may have an event: its ``session_id``
(``exclude_me``) and what :meth:`Filters.admits` reads (``session_id``, ``authid``, ``authrole``).
A store never sends, and knows no transports or subscribers.  Payloads are handed over as the broker
built them and handed back as equal lists; a persistent store serializes them (``pack_tail``
serves) and rebuilds filters from ``Filters.lists()``; its history handles are keyed by ``uri`` and
``match``, subscription IDs being new in every run.  Everything is synchronous: the broker calls on
its publish and subscribe paths, so a persistent store writes without blocking the event loop (an
LMDB write transaction per event, or a batch per loop turn).

The memory store bounds what it holds in bytes per realm (a client allowed to publish must not make
the router hold payload without limit after it left) and keeps payloads serialized (MessagePack,
else CBOR), so a payload of many small items costs the router its encoded size, not many times that
as Python objects.
"""

from __future__ import annotations

import abc
import itertools
import logging
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone

import cbor2
import msgpack

from ..common.logs import RateLimitedLog
from ..common.timefmt import utcstr
from ..protocol.errors import SerializationError
from .urimap import EXACT, UriMap

log = logging.getLogger("wampfabric.router.store")
_not_kept_log = RateLimitedLog(log)

RETAINED_FILTERED_KEPT = 16  # retained events with black/white lists kept per topic besides the general one
RETAINED_TOPICS_KEPT = 100_000  # topics with a retained event; the oldest retention goes beyond that
# Bytes of kept events per realm (realm options "max_retained_bytes", "max_history_bytes").
# Kept events are stored serialized (see pack_tail), so what is counted is what is held.
# ... and HISTORY_LIMIT: events kept per event-history entry when neither it nor the store says (as Crossbar.io)
from ..config.defaults import HISTORY_LIMIT, MAX_HISTORY_BYTES, MAX_RETAINED_BYTES  # noqa: E402
# charged per kept event besides its serialized payload, topic, publisher and black/white lists:
# its record, details and dict/deque entries (figures measured with tracemalloc: docs/decisions.md)
KEPT_EVENT_OVERHEAD = 448
HISTORY_EVENT_OVERHEAD = 592
# charged for a payload neither MessagePack nor CBOR can encode (kept as objects; only in-process
# sessions can publish those)
UNPACKABLE_PAYLOAD_COST = 4096

FILTER_KEYS = ("eligible", "exclude", "eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole")


class Filters:
    """Subscriber black- and whitelisting (advanced/pubsub_subscriber_blackwhite_listing): the lists
    of a PUBLISH's options, applied to each receiver when the event is dispatched and kept with
    the event when it is retained or kept in a history."""

    __slots__ = FILTER_KEYS

    def __init__(self, options: dict):
        for name in FILTER_KEYS:
            v = options.get(name)
            setattr(self, name, None if v is None else set(v))

    def lists(self) -> dict:
        """The lists as PUBLISH options (``Filters(f.lists())`` is an equal object): what a
        persistent store keeps."""
        return {name: list(v) for name in FILTER_KEYS if (v := getattr(self, name)) is not None}

    def nbytes(self) -> int:
        """About the memory these lists hold (set entry and object per member, and strings' text)."""
        n = 0
        for name in FILTER_KEYS:
            v = getattr(self, name)
            if v:
                n += 64 * len(v) + sum(len(x) for x in v if type(x) is str)
        return n

    def admits(self, s) -> bool:
        if self.eligible is not None and s.session_id not in self.eligible:
            return False
        if self.eligible_authid is not None and s.authid not in self.eligible_authid:
            return False
        if self.eligible_authrole is not None and s.authrole not in self.eligible_authrole:
            return False
        if self.exclude is not None and s.session_id in self.exclude:
            return False
        if self.exclude_authid is not None and s.authid in self.exclude_authid:
            return False
        if self.exclude_authrole is not None and s.authrole in self.exclude_authrole:
            return False
        return True


# -- payloads kept serialized ---------------------------------------------------------------------

def _msgpack_load(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# (encode, decode) pairs for kept payloads, tried in order: not the WAMP serializers, whose decoders
# refuse what a peer must not send (e.g. integer map keys) but an in-process session may publish
_STORE_CODECS = ((msgpack.Packer(use_bin_type=True, autoreset=True).pack, _msgpack_load),  # ext types too
                 (cbor2.dumps, cbor2.loads))  # integers beyond 64 bits too


def pack_tail(tail: list) -> tuple:
    """A kept event's payload (``[args]``, ``[args, kwargs]`` or a passthru payload) as ``(decode,
    stored, nbytes)``: serialized with MessagePack (else CBOR); ``decode`` None when kept as is
    (empty, or encodable by neither)."""
    if not tail:
        return None, tail, 0
    for dumps, loads in _STORE_CODECS:
        try:
            data = dumps(tail)
        except Exception:  # TypeError, OverflowError, ValueError (nesting), CBOREncodeError
            continue
        return loads, data, len(data)
    return None, tail, UNPACKABLE_PAYLOAD_COST


def unpack_tail(decode, stored) -> list:
    """The payload ``pack_tail`` stored (SerializationError if it cannot be decoded)."""
    if decode is None:
        return stored
    try:
        return decode(stored)
    except Exception as e:
        raise SerializationError(f"kept payload cannot be decoded: {e}") from None


def parse_rfc3339(value: str) -> float:
    """An RFC 3339 timestamp as POSIX seconds (ValueError when malformed)."""
    if not isinstance(value, str):
        raise ValueError("timestamp must be an RFC 3339 string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def log_not_kept(what: str, size: int, budget: str, limit: int) -> None:
    """Log that an event is not kept, being larger than a realm's whole budget."""
    _not_kept_log.warning("%s not kept: %d bytes, more than the realm's %s %d", what, size, budget, limit)


# -- the interface --------------------------------------------------------------------------------

class RealmStore(abc.ABC):
    """What the broker asks of a realm store (see the module docstring).  ``config`` is the realm's
    ``store`` config (``{}`` when it has none), ``options`` the realm's ``options``."""

    type = ""

    def __init__(self, config: dict, options: dict) -> None:
        self.config = config

    @abc.abstractmethod
    def histories(self) -> list:
        """The event histories the config asks for (handles with ``uri``, ``match``, ``limit``)."""

    @abc.abstractmethod
    def keep_event(self, history, topic: str, publication: int, details: dict, tail: list, filters) -> None:
        """Keep an event dispatched on the subscription holding ``history``."""

    @abc.abstractmethod
    def get_events(self, history, subscription_id: int, caller=None, limit: int | None = None,
                   reverse: bool = False, topic: str | None = None, **bounds) -> list[dict]:
        """``wamp.subscription.get_events`` of the subscription holding ``history``."""

    @abc.abstractmethod
    def retain(self, topic: str, publication: int, publisher: int, disclose, tail: list, ppt, filters,
               exclude_me) -> None:
        """Keep an event as ``topic``'s retained event."""

    @abc.abstractmethod
    def has_retained(self) -> bool:
        """Whether any topic has a retained event."""

    @abc.abstractmethod
    def retained_for(self, uri: str, match: str, receiver) -> list:
        """``(topic, event)``: per topic covered, the latest retained event ``receiver`` may get."""


# -- the memory store -----------------------------------------------------------------------------

class MemoryHistory:
    """An event history of the memory store: (time, topic, publication, details, codec, stored
    payload, filters, bytes charged, sequence number) records, at most ``limit``."""

    __slots__ = ("uri", "match", "limit", "events")

    def __init__(self, uri: str, match: str, limit: int) -> None:
        self.uri = uri
        self.match = match
        self.limit = limit
        self.events: deque = deque()


class RetainedEvent:
    """A retained event of a topic (advanced/pubsub_event_retention), its payload packed."""

    __slots__ = ("publication", "publisher", "disclose", "codec", "tail", "ppt", "filters", "exclude_me", "seq",
                 "size")
    _seq = 0

    def __init__(self, publication, publisher, disclose, tail, ppt, filters, exclude_me, topic):
        RetainedEvent._seq += 1
        self.seq = RetainedEvent._seq
        self.publication = publication
        self.publisher = publisher
        self.disclose = disclose
        self.codec, self.tail, size = pack_tail(tail)
        self.ppt = ppt
        self.filters = filters
        self.exclude_me = exclude_me
        size += len(topic) + KEPT_EVENT_OVERHEAD
        if disclose:
            size += len(disclose[1] or "") + len(disclose[2] or "")
        if filters is not None:
            size += filters.nbytes()
        self.size = size

    def payload(self) -> list:
        return unpack_tail(self.codec, self.tail)


class MemoryRealmStore(RealmStore):
    """Histories and retained events in memory, bounded per realm by ``max_retained_bytes`` and
    ``max_history_bytes``: beyond a budget the oldest kept events go first."""

    type = "memory"

    def __init__(self, config: dict, options: dict) -> None:
        super().__init__(config, options)
        # topic -> [general retained event or None, deque of recent retained events with black/white
        # lists or None], ordered by each topic's latest retention (the least recent goes first)
        self._retained: OrderedDict[str, list] = OrderedDict()
        self.max_retained_bytes = options.get("max_retained_bytes", MAX_RETAINED_BYTES)
        self.retained_bytes = 0  # charged for the retained events kept (see RetainedEvent.size)
        # all histories of the realm together hold at most max_history_bytes: the oldest event of
        # any history goes first
        self.max_history_bytes = options.get("max_history_bytes", MAX_HISTORY_BYTES)
        self.history_bytes = 0
        self._history_seq = itertools.count()
        limit = config.get("limit", HISTORY_LIMIT)  # an entry's limit defaults to the store's
        self._histories = [MemoryHistory(e["uri"], e.get("match", EXACT), e.get("limit", limit))
                           for e in config.get("event-history", [])]

    # -- event history ------------------------------------------------------------------------

    def histories(self) -> list[MemoryHistory]:
        return list(self._histories)

    def keep_event(self, history: MemoryHistory, topic: str, publication: int, details: dict, tail: list,
                   filters) -> None:
        """Append an event to a history: at most its limit there, at most max_history_bytes in all
        the realm's histories (the oldest event of any of them goes first)."""
        codec, stored, size = pack_tail(tail)
        size += len(topic) + HISTORY_EVENT_OVERHEAD
        if filters is not None:
            size += filters.nbytes()
        if size > self.max_history_bytes:
            log_not_kept(f"event {publication} on topic '{topic[:200]}' (history)", size, "max_history_bytes",
                         self.max_history_bytes)
            return
        events = history.events
        if len(events) >= history.limit:
            self.history_bytes -= events.popleft()[7]
        events.append((time.time(), topic, publication, details, codec, stored, filters, size,
                       next(self._history_seq)))
        self.history_bytes += size
        while self.history_bytes > self.max_history_bytes:
            oldest = min((h for h in self._histories if h.events), key=lambda h: h.events[0][8])
            self.history_bytes -= oldest.events.popleft()[7]

    def get_events(self, history: MemoryHistory, subscription_id: int, caller=None, limit: int | None = None,
                   reverse: bool = False, topic: str | None = None, **bounds) -> list[dict]:
        events = [e for e in history.events if e[6] is None or caller is None or e[6].admits(caller)]
        if topic is not None:
            events = [e for e in events if e[1] == topic]
        for key, cmp in (("from_time", lambda t, b: t >= b), ("after_time", lambda t, b: t > b),
                         ("before_time", lambda t, b: t < b), ("until_time", lambda t, b: t <= b)):
            if bounds.get(key) is not None:
                bound = parse_rfc3339(bounds[key])
                events = [e for e in events if cmp(e[0], bound)]
        pubs = [e[2] for e in events]
        for key in ("from_publication", "after_publication", "before_publication", "until_publication"):
            pub = bounds.get(key)
            if pub is None:
                continue
            if pub not in pubs:
                events, pubs = [], []
                break
            i = pubs.index(pub)
            if key == "from_publication":
                events, pubs = events[i:], pubs[i:]
            elif key == "after_publication":
                events, pubs = events[i + 1:], pubs[i + 1:]
            elif key == "before_publication":
                events, pubs = events[:i], pubs[:i]
            else:
                events, pubs = events[:i + 1], pubs[:i + 1]
        if reverse:
            events.reverse()
        if limit is not None:
            events = events[:limit]
        out = []
        for ts, _topic, publication, details, codec, stored, *_ in events:
            rec = {"timestamp": utcstr(ts, whole_ms=True), "subscription": subscription_id,
                   "publication": publication, "details": details}
            try:
                tail = unpack_tail(codec, stored)
            except SerializationError as e:  # what pack_tail wrote it can read; a bug otherwise
                log.error("event %s of the history of subscription %s cannot be decoded: %s", publication,
                          subscription_id, e)
                continue
            if tail:
                rec["args"] = tail[0]
                if len(tail) > 1:
                    rec["kwargs"] = tail[1]
            out.append(rec)
        return out

    # -- retained events ----------------------------------------------------------------------

    def retain(self, topic: str, publication: int, publisher: int, disclose, tail: list, ppt, filters,
               exclude_me) -> None:
        """Keep an event as the retained event of ``topic``.  Bounded memory (retention is best
        effort, says the spec): at most RETAINED_TOPICS_KEPT topics and max_retained_bytes in all;
        beyond, the topic whose latest retention is the oldest loses its retained events first."""
        ret = RetainedEvent(publication, publisher, disclose, tail, ppt, filters, exclude_me, topic)
        size = ret.size
        retained = self._retained
        if size > self.max_retained_bytes:
            log_not_kept(f"retained event {ret.publication} on topic '{topic[:200]}'", size,
                         "max_retained_bytes", self.max_retained_bytes)
            if ret.filters is None and topic in retained:
                # it supersedes the older ones: a new subscriber must not get those as the latest
                retained.move_to_end(topic, last=False)
                self._forget_retained()
            return
        slot = retained.get(topic)
        if slot is None:
            if len(retained) >= RETAINED_TOPICS_KEPT:
                self._forget_retained()
            slot = retained[topic] = [None, None]
        else:
            retained.move_to_end(topic)
        freed = 0
        if ret.filters is None:
            # an event (nearly: maybe not its publisher) every subscriber would receive;
            # older events with black/white lists are superseded by it
            if slot[0] is not None:
                freed = slot[0].size
            if slot[1]:
                freed += sum(r.size for r in slot[1])
            slot[0] = ret
            slot[1] = None
        else:
            q = slot[1]
            if q is None:
                q = slot[1] = deque()
            elif len(q) >= RETAINED_FILTERED_KEPT:
                freed = q.popleft().size
            q.append(ret)
        self.retained_bytes += size - freed
        while self.retained_bytes > self.max_retained_bytes:
            if len(retained) > 1:
                self._forget_retained()
            elif slot[0] is not None and slot[0] is not ret:  # only this topic left: its older events
                self.retained_bytes -= slot[0].size
                slot[0] = None
            elif slot[1] and slot[1][0] is not ret:
                self.retained_bytes -= slot[1].popleft().size
            else:  # ret alone fits (checked above)
                break

    def _forget_retained(self) -> None:
        """Drop the retained events of the topic whose latest retention is the oldest."""
        _, slot = self._retained.popitem(last=False)
        if slot[0] is not None:
            self.retained_bytes -= slot[0].size
        if slot[1]:
            self.retained_bytes -= sum(r.size for r in slot[1])

    def has_retained(self) -> bool:
        return bool(self._retained)

    def retained_for(self, uri: str, match: str, receiver) -> list[tuple[str, RetainedEvent]]:
        if match == EXACT:
            slot = self._retained.get(uri)
            slots = [] if slot is None else [(uri, slot)]
        else:
            probe = UriMap()
            probe.set(uri, match, True)
            slots = [(t, r) for t, r in self._retained.items() if probe.best(t)]
        out = []
        session_id = receiver.session_id
        for topic, slot in slots:
            # the most recent retained event this receiver would have received
            for cand in sorted([c for c in (slot[0], *(slot[1] or ())) if c is not None], key=lambda c: -c.seq):
                if cand.exclude_me == session_id:
                    continue
                if cand.filters is not None and not cand.filters.admits(receiver):
                    continue
                out.append((topic, cand))
                break
        return out


#: store type -> class (the realm config's ``store.type``)
STORE_TYPES: dict[str, type] = {"memory": MemoryRealmStore}


def create_store(realm_config: dict, types: dict = STORE_TYPES) -> RealmStore:
    """The store a realm config asks for (a memory store when it names none); ValueError for a
    type ``types`` does not have (the config check refuses those first)."""
    config = realm_config.get("store") or {}
    kind = config.get("type", "memory")
    cls = types.get(kind)
    if cls is None:
        raise ValueError(f"unsupported realm store type {kind!r} (supported: {', '.join(sorted(types))})")
    return cls(config, realm_config.get("options") or {})
