"""The broker: subscriptions and event dispatch (spec: basic/publish_subscribe,
advanced/pubsub_*).

Hot path notes: an EVENT is built once per matching subscription and
serialized once per serializer in use among its receivers (not once per
receiver); receivers are written to directly through their transports.
Meta events (advanced/meta_api_subscriptions) cost one dict lookup when
nobody subscribed to them.

What the broker keeps of events after dispatching them (retained events, event
histories) the realm's store keeps (router/store.py); the broker asks it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from ..common.logs import RateLimitedLog
from ..common.timefmt import utcstr
from ..protocol import errors as E
from ..protocol.codes import EVENT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, UNSUBSCRIBED
from ..protocol.errors import SerializationError
from ..protocol.messages import Published, Subscribed, Unsubscribed
from ..protocol.payload import args_tail, passthru_tail
from .ids import global_id
from .linkstate import RLINK_PREFIX
from .store import FILTER_KEYS, Filters
from .urimap import EXACT, MATCH_POLICIES, UriMap

log = logging.getLogger("wampfabric.router.broker")

#: the topic every router-to-router link leg subscribes to first (rlink/): a session that
#: subscribes here while its role names this URI in an exact permission is a leg
#: (``RouterSession.rlink``)
RLINK_MARKER = "wampfabric.rlink.leg"

# a publication's lists a leg passes on to the other router (the session-ID lists name sessions
# of this router only: ``eligible`` keeps the event here, ``exclude`` applies here)
_LEG_LISTS = ("eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole")

_unencodable_log = RateLimitedLog(log)


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


class _Retaining(Filters):
    """The lists of a retained publication (all None without lists: admits everybody), so that
    ``Broker._dispatch`` hands rlink legs the retain flag too; ``lists_only`` is the publication's
    own ``Filters`` (or None), what an event history keeps."""

    __slots__ = ("lists_only",)

    def __init__(self, options: dict, filters):
        Filters.__init__(self, options)
        self.lists_only = filters


class _LegsOnly(Filters):
    """The "lists" of links' own traffic (``wampfabric.rlink.*`` published by legs): admits no
    session that is not a leg (``Broker._dispatch`` hands legs the event as for any list)."""

    __slots__ = ()

    def __init__(self):
        Filters.__init__(self, {})

    def admits(self, s) -> bool:
        return False


_LEGS_ONLY = _LegsOnly()
_RESERVED = ("wamp.", RLINK_PREFIX)
RLINK_SEEN = 65536  # forwarded publications remembered against a second delivery (about 5 MB at most)


def _may_match_meta(uri: str, match: str) -> bool:
    """Whether a subscription could receive router-generated events (all on ``wamp.`` topics)."""
    return match != EXACT or uri.startswith("wamp.")


class Subscription:
    __slots__ = ("id", "uri", "match", "subscribers", "created", "history", "persistent")

    def __init__(self, sub_id: int, uri: str, match: str):
        self.id = sub_id
        self.uri = uri
        self.match = match
        # insertion-ordered set of sessions
        self.subscribers: dict = {}
        self.created = time.time()
        # the realm store's handle of this subscription's event history, if it keeps one
        self.history = None
        self.persistent = False  # kept without subscribers (event history)

    def details(self) -> dict:
        return {"id": self.id, "created": utcstr(self.created, whole_ms=True), "uri": self.uri, "match": self.match}


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
        # forwarded publications delivered here lately (rlink/: one publication may arrive over
        # two paths while the link graph changes; the second is dropped)
        self._rlink_seen: OrderedDict = OrderedDict()
        self._meta_subs: dict[str, tuple] = {}
        # subscriptions that may match a meta topic: none (the usual case) -> meta events
        # are skipped before their arguments are even built
        self.meta_candidates = 0
        self.stats = realm.stats
        # retained events and event histories are kept by the realm's store (router/store.py); a
        # subscription is created for each event history up front, so events are kept before
        # anyone subscribes
        self.store = store = realm.store
        self._keep_event = store.keep_event
        for history in store.histories():
            sub = self._create(history.uri, history.match)
            sub.history = history
            sub.persistent = True

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
            session.send_error(SUBSCRIBE, msg.request, E.INVALID_ARGUMENT, [f"invalid match policy {match!r}"])
            return
        if not self.realm.pattern_ok(topic, match):
            session.send_error(SUBSCRIBE, msg.request, E.INVALID_URI,
                               [f"subscribe for invalid topic URI {self.realm.quote_uri(topic)}"])
            return
        answer = session.permission(topic, match, "subscribe", self.subscribe, msg)
        if answer is None:  # a dynamic authorizer decides first; this message is processed again then
            return
        allowed, _ = answer
        if not allowed:
            session.send_error(
                SUBSCRIBE, msg.request, E.NOT_AUTHORIZED,
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
        if topic == RLINK_MARKER and match == EXACT and session.role.names_exactly(topic, "subscribe"):
            session.rlink = True  # a role must name the marker itself: "everything" is not enough
        self.stats["subscribe"] += 1
        session.send(Subscribed(msg.request, sub.id).marshal())
        if self.meta_candidates:
            if created and self.meta_wanted("wamp.subscription.on_create"):
                self.publish_meta("wamp.subscription.on_create", [session.session_id, sub.details()])
            self.publish_meta("wamp.subscription.on_subscribe", [session.session_id, sub.id])
        if options.get("get_retained") and self.store.has_retained():
            self._send_retained(session, sub)

    def unsubscribe(self, session, msg) -> None:
        sub = session.subscriptions.pop(msg.subscription, None)
        if sub is None:
            session.send_error(
                UNSUBSCRIBE, msg.request, E.NO_SUCH_SUBSCRIPTION,
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
            session.send([UNSUBSCRIBED, 0, details])
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
                session.send_error(PUBLISH, msg.request, E.INVALID_URI,
                                   [f"publish with invalid topic URI {self.realm.quote_uri(topic)}"])
            return
        if topic.startswith(_RESERVED) and not session.trusted:  # one test for both on the usual path
            if topic.startswith("wamp."):
                if acknowledge:
                    session.send_error(PUBLISH, msg.request, E.INVALID_URI,
                                       [f"publish to restricted topic URI '{topic}' (wamp.* is reserved for the router)"])
                return
            if not session.rlink:
                if acknowledge:
                    session.send_error(PUBLISH, msg.request, E.NOT_AUTHORIZED,
                                       [f"publish to restricted topic URI '{topic}' ({RLINK_PREFIX}* is reserved for "
                                        "router links)"])
                return
        answer = session.role.authorize(topic, "publish", session)
        if answer is None:
            session.defer_for_authorization(self.publish, msg, topic, "publish")
            return
        allowed, disclose = answer
        if not allowed:
            if acknowledge:
                session.send_error(
                    PUBLISH, msg.request, E.NOT_AUTHORIZED,
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
                filters = Filters(options)
            exclude_me = options.get("exclude_me", True) is not False
            if "forward_for" in options and session.rlink:
                # router-to-router links (rlink/): the EVENTs say who the event was forwarded for,
                # through the same per-event details merge as passthru attributes; from any other
                # session the option is ignored (it would claim somebody else's identity)
                origin = options.get("rlink_origin")
                if origin is not None and self._seen_before(origin):
                    # the same publication over a second path while links change (docs/clustering.md)
                    if acknowledge:
                        session.send(Published(msg.request, global_id()).marshal())
                    return
                ppt = {"forward_for": options["forward_for"]}
                if topic.startswith(RLINK_PREFIX):
                    filters = _LEGS_ONLY  # links' own traffic (events in transit): never to other sessions
                if options.get("rlink_retained"):
                    # a retained event of the other router the leg fetched (get_retained): its
                    # subscribers here get it as get_retained delivers it
                    ppt["retained"] = True
        if msg.payload is not None:
            if options.get("ppt_scheme") and not session.supports("publisher", "payload_passthru_mode"):
                session.protocol_violation("PUBLISH with ppt_scheme from a publisher that did not announce "
                                           "payload_passthru_mode")
                return
            if ppt is None:
                ppt = {}
            tail = passthru_tail(msg.payload, options, ppt)
        else:
            tail = args_tail(msg.args, msg.kwargs)  # once per publish, not per subscription or receiver
        retain = options and options.get("retain")
        subs = self._subs.match_all(topic)
        if subs:
            self._dispatch(subs, topic, publication, session if exclude_me else None, disclose and session, tail, ppt,
                           _Retaining(options, filters) if retain else filters)
        if retain:
            self.store.retain(topic, publication, session.session_id, disclose and
                              (session.session_id, session.authid, session.authrole),
                              tail, ppt, filters, session.session_id if exclude_me else None)
        if acknowledge:
            session.send(Published(msg.request, publication).marshal())
            self.stats["published"] += 1

    def _dispatch(self, subs, topic, publication, excluded, publisher, tail, ppt, filters) -> None:
        """``filters``: the publication's black/white lists, or ``_Retaining`` for a retained one:
        only then is a receiver looked at more closely (rlink legs get the lists and the retain
        flag, see ``_to_leg``)."""
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
            event = [EVENT, sub.id, publication, details, *tail]
            if sub.history is not None and (filters is None or (filters.eligible is None and filters.exclude is None)):
                # pubsub_event_history: events for listed session IDs are not kept; authid/authrole
                # lists are kept with the event and applied to whoever asks for the history
                self._keep_event(sub.history, topic, publication, details, tail,
                                 filters.lists_only if type(filters) is _Retaining else filters)
            last_ser = None
            data = None
            cache = None
            for receiver in sub.subscribers:
                if receiver is excluded:
                    continue
                if filters is not None:
                    if receiver.rlink:
                        delivered += self._to_leg(receiver, event, filters)
                        continue
                    if not filters.admits(receiver):
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

    @staticmethod
    def _to_leg(leg, event: list, filters) -> int:
        """An EVENT to an rlink leg of a publication with black/white lists or retain: the leg
        republishes it on the other router with them (details ``rlink``: the authid/authrole lists,
        ``retain``).  Session-ID lists name sessions of this router: with ``eligible`` the event is
        not forwarded at all, ``exclude`` applies to the leg itself only.  Returns 1 if sent."""
        if filters.eligible is not None or (filters.exclude is not None and leg.session_id in filters.exclude):
            return 0
        extra = {}
        for name in _LEG_LISTS:
            v = getattr(filters, name)
            if v is not None:
                extra[name] = list(v)
        if type(filters) is _Retaining:
            extra["retain"] = True
        details = dict(event[3])
        details["rlink"] = extra
        try:
            leg.send([EVENT, event[1], event[2], details, *event[4:]])
        except SerializationError as e:
            log_unencodable(f"event {event[2]} (not forwarded by router link)", leg.serializer, e)
            return 0
        return 1

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
            self._dispatch(subs, topic, global_id(), None, None, args_tail(args, kwargs), None, None)

    def _seen_before(self, origin) -> bool:
        """Whether a forwarded publication (``"<origin router>:<publication>"``) was delivered
        here already; remembers the last RLINK_SEEN."""
        seen = self._rlink_seen
        if origin in seen:
            return True
        seen[origin] = None
        if len(seen) > RLINK_SEEN:
            seen.popitem(last=False)  # O(1); a plain dict's first key is found past every deleted slot
        return False

    def publish_to_legs(self, topic: str, args: list) -> None:
        """A router-generated event for the realm's rlink legs only (router/linkstate.py)."""
        subs = self._subs.match_all(topic)
        if subs:
            self._dispatch(subs, topic, global_id(), None, None, args_tail(args, None), None, _LEGS_ONLY)

    def publish_internal(self, topic: str, args, kwargs, options: dict, publisher) -> None:
        """Publish on behalf of a session that is leaving (testaments)."""
        subs = self._subs.match_all(topic)
        if not subs:
            return
        filters = Filters(options) if any(k in options for k in FILTER_KEYS) else None
        disclose = publisher if options.get("disclose_me") else None
        tail = args_tail(args, kwargs)
        self._dispatch(subs, topic, global_id(), None, disclose, tail, None, filters)

    def _send_retained(self, session, sub: Subscription) -> None:
        for topic, ret in self.store.retained_for(sub.uri, sub.match, session):
            details = {"retained": True}
            if ret.disclose:
                details["publisher"], details["publisher_authid"], details["publisher_authrole"] = ret.disclose
            if sub.match != EXACT:
                details["topic"] = topic
            if ret.ppt:
                details.update(ret.ppt)
            try:
                session.send([EVENT, sub.id, ret.publication, details, *ret.payload()])
            except SerializationError as e:
                log_unencodable(f"retained event {ret.publication} on topic '{topic[:200]}' (not sent)",
                                session.serializer, e)

    def get_events(self, sub: Subscription, caller=None, limit: int | None = None, reverse: bool = False,
                   topic: str | None = None, **bounds) -> list[dict]:
        """The event history of a subscription (advanced/pubsub_event_history) as the realm store
        answers ``wamp.subscription.get_events`` (see ``RealmStore.get_events``); none when it
        keeps no history."""
        if sub.history is None:
            return []
        return self.store.get_events(sub.history, sub.id, caller, limit, reverse, topic, **bounds)

    def subscription_count(self) -> int:
        return len(self._by_id)
