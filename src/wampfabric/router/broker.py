"""The broker: subscriptions and event dispatch (spec: basic/publish_subscribe,
advanced/pubsub_*).

Hot path notes: an EVENT is built once per matching subscription and
serialized once per serializer in use among its receivers (not once per
receiver); receivers are written to directly through their transports.
Meta events (advanced/meta_api_subscriptions) cost one dict lookup when
nobody subscribed to them.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone

import cbor2
import msgpack

from ..common.timefmt import utcstr
from ..protocol import errors as E
from ..protocol.errors import SerializationError
from ..protocol.messages import Published, Subscribed, Unsubscribed
from .ids import global_id
from .urimap import EXACT, MATCH_POLICIES, UriMap

log = logging.getLogger("wampfabric.router.broker")

MSG_PUBLISH, MSG_SUBSCRIBE, MSG_UNSUBSCRIBE, MSG_UNSUBSCRIBED, MSG_EVENT = 16, 32, 34, 35, 36
PPT_KEYS = ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
ENC_KEYS = ("enc_algo", "enc_serializer", "enc_key")
RETAINED_FILTERED_KEPT = 16  # retained events with black/white lists kept per topic besides the general one
RETAINED_TOPICS_KEPT = 100_000  # topics with a retained event; the oldest retention goes beyond that
# Bytes of kept events per realm (realm options "max_retained_bytes", "max_history_bytes"): a client
# allowed to publish must not make the router hold payload without limit after it left.  Kept events
# are stored serialized (see pack_tail), so what is counted is what is held.
MAX_RETAINED_BYTES = 64 * 2**20
MAX_HISTORY_BYTES = 64 * 2**20
# charged per kept event besides its serialized payload, topic, publisher and black/white lists:
# its record, details and dict/deque entries (measured with tracemalloc: ~430 bytes for a retained
# topic with one event, ~590 for a history entry with a "topic" detail)
KEPT_EVENT_OVERHEAD = 448
HISTORY_EVENT_OVERHEAD = 592
# charged for a payload neither MessagePack nor CBOR can encode (kept as objects; only in-process
# sessions can publish those)
UNPACKABLE_PAYLOAD_COST = 4096


def _msgpack_load(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# (encode, decode) pairs for kept payloads, tried in order: not the WAMP serializers, whose decoders
# refuse what a peer must not send (e.g. integer map keys) but an in-process session may publish
_STORE_CODECS = ((msgpack.Packer(use_bin_type=True, autoreset=True).pack, _msgpack_load),  # ext types too
                 (cbor2.dumps, cbor2.loads))  # integers beyond 64 bits too


def pack_tail(tail: list) -> tuple:
    """A kept event's payload (``[args]``, ``[args, kwargs]`` or a passthru payload) as ``(decode,
    stored, nbytes)``: serialized with MessagePack (else CBOR), so a payload of many small items
    costs the router its encoded size, not many times that as Python objects; ``decode`` None when
    kept as is (empty, or encodable by neither)."""
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


def passthru_tail(payload, meta: dict, details: dict) -> list:
    """A passthru payload (advanced/payload_passthru_mode) as the tail of the forwarded
    message, copying the attributes that describe it into ``details``: spec layout
    ``[Payload]`` with ``ppt_*``; autobahn's ``enc_*`` layout keeps the bare payload."""
    if meta.get("ppt_scheme"):
        for k in PPT_KEYS:
            if k in meta:
                details[k] = meta[k]
        return [[payload]]
    for k in ENC_KEYS:
        if k in meta:
            details[k] = meta[k]
    return [payload]
FILTER_KEYS = ("eligible", "exclude", "eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole")


def parse_rfc3339(value: str) -> float:
    """An RFC 3339 timestamp as POSIX seconds (ValueError when malformed)."""
    if not isinstance(value, str):
        raise ValueError("timestamp must be an RFC 3339 string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class RateLimitedLog:
    """A warning a client can cause at will (one per message it sends): one line a second at
    most, the next line counting those left out."""

    __slots__ = ("_last", "_left_out")

    def __init__(self) -> None:
        self._last = 0.0
        self._left_out = 0

    def warning(self, fmt: str, *args) -> None:
        now = time.monotonic()
        if now - self._last < 1.0:
            self._left_out += 1
            return
        more = f" ({self._left_out} more since the last such line)" if self._left_out else ""
        self._last = now
        self._left_out = 0
        log.warning(fmt + "%s", *args, more)


_unencodable_log = RateLimitedLog()
_not_kept_log = RateLimitedLog()


def log_not_kept(what: str, size: int, budget: str, limit: int) -> None:
    """Log that an event is not kept, being larger than a realm's whole budget."""
    _not_kept_log.warning("%s not kept: %d bytes, more than the realm's %s %d", what, size, budget, limit)


def log_unencodable(what: str, ser, e: Exception) -> None:
    """Log that ``what`` cannot be encoded in serializer ``ser``."""
    _unencodable_log.warning("%s cannot be encoded in %s: %s", what, ser.NAME, e)


def _unencodable(ser, topic: str, publication: int, e: SerializationError) -> bool:
    """An event this serializer cannot encode (e.g. a MessagePack extension type for JSON, an
    integer beyond 64 bits for JSON or MessagePack): its receivers using that serializer are
    skipped, with a log line, everybody else gets the event.  The publisher is not at fault and
    is not told (an acknowledged publish still gets PUBLISHED: the event was published).
    Returns False, the mark of such a serializer in ``Broker._dispatch``."""
    log_unencodable(f"event {publication} on topic '{topic[:200]}' (skipped for those subscribers)", ser, e)
    return False


def _may_match_meta(uri: str, match: str) -> bool:
    """Whether a subscription could receive router-generated events (all on ``wamp.`` topics)."""
    return match != EXACT or uri.startswith("wamp.")


class Subscription:
    __slots__ = ("id", "uri", "match", "subscribers", "created", "history", "history_limit", "persistent")

    def __init__(self, sub_id: int, uri: str, match: str):
        self.id = sub_id
        self.uri = uri
        self.match = match
        # insertion-ordered set of sessions
        self.subscribers: dict = {}
        self.created = time.time()
        # event history, if the realm's store keeps it for this subscription: (time, topic, publication,
        # details, codec, stored payload, filters, bytes charged, sequence number), at most history_limit
        self.history: deque | None = None
        self.history_limit = 0
        self.persistent = False  # kept without subscribers (event history)

    def details(self) -> dict:
        return {"id": self.id, "created": utcstr(self.created, whole_ms=True), "uri": self.uri, "match": self.match}


class _Retained:
    """A retained event of a topic (advanced/pubsub_event_retention)."""

    __slots__ = ("publication", "publisher", "disclose", "codec", "tail", "ppt", "filters", "exclude_me", "seq",
                 "size")
    _seq = 0

    def __init__(self, publication, publisher, disclose, tail, ppt, filters, exclude_me, topic):
        _Retained._seq += 1
        self.seq = _Retained._seq
        self.publication = publication
        self.publisher = publisher
        self.disclose = disclose
        self.codec, self.tail, size = pack_tail(tail)  # the payload as bytes (see pack_tail)
        self.ppt = ppt
        self.filters = filters
        self.exclude_me = exclude_me
        size += len(topic) + KEPT_EVENT_OVERHEAD
        if disclose:
            size += len(disclose[1] or "") + len(disclose[2] or "")
        if filters is not None:
            size += filters.nbytes()
        self.size = size


class Broker:
    FEATURES = {
        "publisher_identification": True,
        "publisher_exclusion": True,
        "subscriber_blackwhite_listing": True,
        "pattern_based_subscription": True,
        "payload_passthru_mode": True,
        "event_retention": True,
        "event_history": True,
        "subscription_revocation": True,
        "subscription_meta_api": True,
        "session_meta_api": True,
    }

    def __init__(self, realm):
        self.realm = realm
        self._subs = UriMap()
        self._by_id: dict[int, Subscription] = {}
        # meta topic -> (generation, matching subscriptions); the generation changes whenever a
        # subscription that may match a meta topic (a "wamp." URI or any pattern) is created or
        # removed, so meta events cost one dict lookup when nobody listens (every join and
        # subscribe publishes several)
        self._generation = 0
        self._meta_subs: dict[str, tuple] = {}
        # subscriptions that may match a meta topic: none (the usual case) -> meta events
        # are skipped before their arguments are even built
        self.meta_candidates = 0
        # topic -> [general retained event or None, deque of recent retained events with black/white
        # lists or None], ordered by each topic's latest retention (the least recent goes first)
        self._retained: OrderedDict[str, list] = OrderedDict()
        options = realm.config.get("options") or {}
        self.max_retained_bytes = options.get("max_retained_bytes", MAX_RETAINED_BYTES)
        self.retained_bytes = 0  # charged for the retained events kept (see _Retained.size)
        self.stats = realm.stats
        # event history: realm "store" config, e.g. {"type": "memory", "limit": 100, "event-history":
        # [{"uri": "com.example.topic", "match": "exact", "limit": 100}]} (an entry's limit defaults
        # to the store's, as in Crossbar.io); a subscription is created for each entry up front, so
        # events are kept before anyone subscribes.  All histories of the realm together hold at most
        # max_history_bytes (realm option): the oldest event of any history goes first.
        self.max_history_bytes = options.get("max_history_bytes", MAX_HISTORY_BYTES)
        self.history_bytes = 0
        self._histories: list[Subscription] = []
        self._history_seq = itertools.count()
        store = realm.config.get("store") or {}
        for entry in store.get("event-history", []):
            sub = self._create(entry["uri"], entry.get("match", EXACT))
            sub.history = deque()
            sub.history_limit = entry.get("limit", store.get("limit", 100))
            sub.persistent = True
            self._histories.append(sub)

    # -- subscriptions -------------------------------------------------------------

    def _create(self, uri: str, match: str) -> Subscription:
        sub = Subscription(global_id(), uri, match)
        self._subs.set(uri, match, sub)
        self._by_id[sub.id] = sub
        if _may_match_meta(uri, match):
            self._generation += 1
            self.meta_candidates += 1
        return sub

    def subscription(self, sub_id: int) -> Subscription | None:
        return self._by_id.get(sub_id)

    def lookup(self, topic: str, match: str = EXACT) -> Subscription | None:
        return self._subs.get(topic, match)

    def match(self, topic: str) -> list[Subscription]:
        return self._subs.match_all(topic)

    def subscriptions(self):
        return self._by_id.values()

    def subscribe(self, session, msg) -> None:
        topic = msg.topic
        options = msg.options
        match = options.get("match") or EXACT
        if match not in MATCH_POLICIES:
            session.send_error(MSG_SUBSCRIBE, msg.request, E.INVALID_ARGUMENT, [f"invalid match policy {match!r}"])
            return
        if not self.realm.pattern_ok(topic, match):
            session.send_error(MSG_SUBSCRIBE, msg.request, E.INVALID_URI,
                               [f"subscribe for invalid topic URI {self.realm.quote_uri(topic)}"])
            return
        answer = session.permission(topic, match, "subscribe", self.subscribe, msg)
        if answer is None:  # a dynamic authorizer decides first; this message is processed again then
            return
        allowed, _ = answer
        if not allowed:
            session.send_error(
                MSG_SUBSCRIBE, msg.request, E.NOT_AUTHORIZED,
                [f"session is not authorized to subscribe to topic '{topic}'"],
            )
            return
        sub = self._subs.get(topic, match)
        created = sub is None
        if created:
            sub = self._create(topic, match)
        elif sub.persistent and not sub.subscribers:
            created = True  # a history-keeping subscription gets its first subscriber: announce it now
        elif session in sub.subscribers:
            # spec: subscribing again returns the existing subscription
            session.send(Subscribed(msg.request, sub.id).marshal())
            return
        sub.subscribers[session] = None
        session.subscriptions[sub.id] = sub
        self.stats["subscribe"] += 1
        session.send(Subscribed(msg.request, sub.id).marshal())
        if self.meta_candidates:
            if created and self.meta_wanted("wamp.subscription.on_create"):
                self.publish_meta("wamp.subscription.on_create", [session.session_id, sub.details()])
            self.publish_meta("wamp.subscription.on_subscribe", [session.session_id, sub.id])
        if options.get("get_retained") and self._retained:
            self._send_retained(session, sub)

    def unsubscribe(self, session, msg) -> None:
        sub = session.subscriptions.pop(msg.subscription, None)
        if sub is None:
            session.send_error(
                MSG_UNSUBSCRIBE, msg.request, E.NO_SUCH_SUBSCRIPTION,
                [f"session is not subscribed to subscription ID {msg.subscription}"],
            )
            return
        session.send(Unsubscribed(msg.request).marshal())
        self._drop(sub, session)

    def _drop(self, sub: Subscription, session) -> None:
        sub.subscribers.pop(session, None)
        if self.meta_candidates:
            self.publish_meta("wamp.subscription.on_unsubscribe", [session.session_id, sub.id])
        if not sub.subscribers:
            if not sub.persistent:
                self._subs.pop(sub.uri, sub.match)
                self._by_id.pop(sub.id, None)
                if _may_match_meta(sub.uri, sub.match):
                    self._generation += 1
                    self.meta_candidates -= 1
            # a history-keeping subscription stays (keeping events), but for subscribers it is gone
            if self.meta_candidates:
                self.publish_meta("wamp.subscription.on_delete", [session.session_id, sub.id])

    def remove_subscriber(self, sub: Subscription, session, reason: str | None = None) -> None:
        """Revoke a subscriber's subscription (advanced/pubsub_subscription_revocation)."""
        session.subscriptions.pop(sub.id, None)
        if session.supports("subscriber", "subscription_revocation"):
            details = {"subscription": sub.id}
            if reason:
                details["reason"] = reason
            session.send([MSG_UNSUBSCRIBED, 0, details])
        self._drop(sub, session)

    def detach(self, session) -> None:
        subs = list(session.subscriptions.values())
        session.subscriptions.clear()
        for sub in subs:
            self._drop(sub, session)

    # -- publish -------------------------------------------------------------

    def publish(self, session, msg) -> None:
        topic = msg.topic
        options = msg.options
        acknowledge = options.get("acknowledge", False)
        if not self.realm.uri_ok(topic):
            if acknowledge:
                session.send_error(MSG_PUBLISH, msg.request, E.INVALID_URI,
                                   [f"publish with invalid topic URI {self.realm.quote_uri(topic)}"])
            return
        if topic.startswith("wamp.") and not session.trusted:
            if acknowledge:
                session.send_error(MSG_PUBLISH, msg.request, E.INVALID_URI,
                                   [f"publish to restricted topic URI '{topic}' (wamp.* is reserved for the router)"])
            return
        answer = session.role.authorize(topic, "publish", session)
        if answer is None:
            session.defer_for_authorization(self.publish, msg, topic, "publish")
            return
        allowed, disclose = answer
        if not allowed:
            if acknowledge:
                session.send_error(
                    MSG_PUBLISH, msg.request, E.NOT_AUTHORIZED,
                    [f"session not authorized to publish to topic '{topic}'"],
                )
            return
        self.stats["publish"] += 1
        publication = global_id()
        filters = None
        exclude_me = True
        ppt = None
        if options:
            if options.get("disclose_me"):
                disclose = True
            if any(k in options for k in FILTER_KEYS):
                filters = _Filters(options)
            exclude_me = options.get("exclude_me", True) is not False
        if msg.payload is not None:
            if options.get("ppt_scheme") and not session.supports("publisher", "payload_passthru_mode"):
                session.protocol_violation("PUBLISH with ppt_scheme from a publisher that did not announce "
                                           "payload_passthru_mode")
                return
            ppt = {}
            tail = passthru_tail(msg.payload, options, ppt)
        elif msg.kwargs:
            tail = [msg.args or [], msg.kwargs]
        elif msg.args:
            tail = [msg.args]
        else:
            tail = []
        subs = self._subs.match_all(topic)
        if subs:
            self._dispatch(subs, topic, publication, session if exclude_me else None, disclose and session, tail, ppt,
                           filters)
        if options and options.get("retain"):
            self._retain(topic, _Retained(publication, session.session_id, disclose and
                                          (session.session_id, session.authid, session.authrole),
                                          tail, ppt, filters, session.session_id if exclude_me else None, topic))
        if acknowledge:
            session.send(Published(msg.request, publication).marshal())

    def _retain(self, topic: str, ret: _Retained) -> None:
        """Keep ``ret`` as the retained event of ``topic`` (advanced/pubsub_event_retention).
        Bounded memory (retention is best effort, says the spec): at most RETAINED_TOPICS_KEPT
        topics and max_retained_bytes in all; beyond, the topic whose latest retention is the
        oldest loses its retained events first."""
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

    def _keep_history(self, sub: Subscription, topic: str, publication: int, details: dict, tail: list,
                      filters) -> None:
        """Append an event to a subscription's history (advanced/pubsub_event_history): at most its
        limit there, at most max_history_bytes in all the realm's histories (the oldest event of any
        of them goes first)."""
        codec, stored, size = pack_tail(tail)
        size += len(topic) + HISTORY_EVENT_OVERHEAD
        if filters is not None:
            size += filters.nbytes()
        if size > self.max_history_bytes:
            log_not_kept(f"event {publication} on topic '{topic[:200]}' (history)", size, "max_history_bytes",
                         self.max_history_bytes)
            return
        history = sub.history
        if len(history) >= sub.history_limit:
            self.history_bytes -= history.popleft()[7]
        history.append((time.time(), topic, publication, details, codec, stored, filters, size,
                        next(self._history_seq)))
        self.history_bytes += size
        while self.history_bytes > self.max_history_bytes:
            oldest = min((s for s in self._histories if s.history), key=lambda s: s.history[0][8])
            self.history_bytes -= oldest.history.popleft()[7]

    def _dispatch(self, subs, topic, publication, excluded, publisher, tail, ppt, filters) -> None:
        delivered = 0
        for sub in subs:
            details = {}
            if publisher:
                details["publisher"] = publisher.session_id
                details["publisher_authid"] = publisher.authid
                details["publisher_authrole"] = publisher.authrole
            if sub.match != EXACT:
                details["topic"] = topic
            if ppt:
                details.update(ppt)
            event = [MSG_EVENT, sub.id, publication, details, *tail]
            if sub.history is not None and (filters is None or (filters.eligible is None and filters.exclude is None)):
                # pubsub_event_history: events for listed session IDs are not kept; authid/authrole
                # lists are kept with the event and applied to whoever asks for the history
                self._keep_history(sub, topic, publication, details, tail, filters)
            last_ser = None
            data = None
            cache = None
            for receiver in sub.subscribers:
                if receiver is excluded:
                    continue
                if filters is not None and not filters.admits(receiver):
                    continue
                ser = receiver.serializer
                if ser is not last_ser:
                    if last_ser is None:
                        try:
                            data = ser.serialize(event)
                        except SerializationError as e:
                            data = _unencodable(ser, topic, publication, e)
                    else:
                        if cache is None:
                            cache = {last_ser: data}
                        data = cache.get(ser)
                        if data is None:
                            try:
                                data = ser.serialize(event)
                            except SerializationError as e:
                                data = _unencodable(ser, topic, publication, e)
                            cache[ser] = data
                    last_ser = ser
                if data is False:
                    continue  # the event cannot be encoded in this subscriber's serializer: skipped (logged)
                receiver.send_raw(data)
                delivered += 1
        self.stats["event"] += delivered

    def _meta_match(self, topic: str) -> list:
        hit = self._meta_subs.get(topic)
        if hit is not None and hit[0] == self._generation:
            return hit[1]
        subs = self._subs.match_all(topic)
        if len(self._meta_subs) > 1024:  # meta topics are a small fixed set; bound it anyway
            self._meta_subs.clear()
        self._meta_subs[topic] = (self._generation, subs)
        return subs

    def meta_wanted(self, topic: str) -> bool:
        """Whether a router-generated event on ``topic`` would reach a subscriber (callers skip
        building costly arguments when not)."""
        if not self.meta_candidates:
            return False
        for sub in self._meta_match(topic):
            if sub.subscribers:
                return True
        return False

    def publish_meta(self, topic: str, args: list, kwargs: dict | None = None) -> None:
        """Publish a router-generated event on a ``wamp.`` meta topic to the realm's subscribers."""
        if not self.meta_candidates:
            return
        subs = self._meta_match(topic)
        if subs:
            self._dispatch(subs, topic, global_id(), None, None, [args, kwargs] if kwargs else [args], None, None)

    def publish_internal(self, topic: str, args, kwargs, options: dict, publisher) -> None:
        """Publish on behalf of a session that is leaving (testaments)."""
        subs = self._subs.match_all(topic)
        if not subs:
            return
        filters = _Filters(options) if any(k in options for k in FILTER_KEYS) else None
        disclose = publisher if options.get("disclose_me") else None
        tail = [args or [], kwargs] if kwargs else ([args] if args else [])
        self._dispatch(subs, topic, global_id(), None, disclose, tail, None, filters)

    def _send_retained(self, session, sub: Subscription) -> None:
        if sub.match == EXACT:
            slots = [(sub.uri, self._retained.get(sub.uri))]
        else:
            probe = UriMap()
            probe.set(sub.uri, sub.match, True)
            slots = [(t, r) for t, r in self._retained.items() if probe.best(t)]
        for topic, slot in slots:
            if slot is None:
                continue
            # the most recent retained event this subscriber would have received
            ret = None
            for cand in sorted([c for c in (slot[0], *(slot[1] or ())) if c is not None], key=lambda c: -c.seq):
                if cand.exclude_me == session.session_id:
                    continue
                if cand.filters is not None and not cand.filters.admits(session):
                    continue
                ret = cand
                break
            if ret is None:
                continue
            details = {"retained": True}
            if ret.disclose:
                details["publisher"], details["publisher_authid"], details["publisher_authrole"] = ret.disclose
            if sub.match != EXACT:
                details["topic"] = topic
            if ret.ppt:
                details.update(ret.ppt)
            try:
                session.send([MSG_EVENT, sub.id, ret.publication, details, *unpack_tail(ret.codec, ret.tail)])
            except SerializationError as e:
                log_unencodable(f"retained event {ret.publication} on topic '{topic[:200]}' (not sent)",
                                session.serializer, e)

    def get_events(self, sub: Subscription, caller=None, limit: int | None = None, reverse: bool = False,
                   topic: str | None = None, **filters) -> list[dict]:
        """The event history of a subscription (advanced/pubsub_event_history), in order
        of occurrence (or reversed), without events the caller could not have received,
        filtered by time (RFC 3339 strings) and publication bounds; ``limit`` cuts the
        result after filtering (pagination: pass the last publication as ``after_publication``)."""
        if sub.history is None:
            return []
        events = [e for e in sub.history if e[6] is None or caller is None or e[6].admits(caller)]
        if topic is not None:
            events = [e for e in events if e[1] == topic]
        for key, cmp in (("from_time", lambda t, b: t >= b), ("after_time", lambda t, b: t > b),
                         ("before_time", lambda t, b: t < b), ("until_time", lambda t, b: t <= b)):
            if filters.get(key) is not None:
                bound = parse_rfc3339(filters[key])
                events = [e for e in events if cmp(e[0], bound)]
        pubs = [e[2] for e in events]
        for key in ("from_publication", "after_publication", "before_publication", "until_publication"):
            pub = filters.get(key)
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
            rec = {"timestamp": utcstr(ts, whole_ms=True), "subscription": sub.id, "publication": publication,
                   "details": details}
            try:
                tail = unpack_tail(codec, stored)
            except SerializationError as e:  # what pack_tail wrote it can read; a bug otherwise
                log.error("event %s of the history of subscription %s cannot be decoded: %s", publication, sub.id, e)
                continue
            if tail:
                rec["args"] = tail[0]
                if len(tail) > 1:
                    rec["kwargs"] = tail[1]
            out.append(rec)
        return out

    def subscription_count(self) -> int:
        return len(self._by_id)


class _Filters:
    """Subscriber black- and whitelisting (advanced/pubsub_subscriber_blackwhite_listing)."""

    __slots__ = FILTER_KEYS

    def __init__(self, options: dict):
        for name in FILTER_KEYS:
            v = options.get(name)
            setattr(self, name, None if v is None else set(v))

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
