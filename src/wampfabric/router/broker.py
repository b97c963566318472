"""The broker: subscriptions and event dispatch (spec: basic/publish_subscribe,
advanced/pubsub_*).

Hot path notes: an EVENT is built once per matching subscription and
serialized once per serializer in use among its receivers (not once per
receiver); receivers are written to directly through their transports.
"""

from __future__ import annotations

import logging

from ..protocol import errors as E
from ..protocol.messages import Event, Published, Subscribed, Unsubscribed
from ..protocol.uri import check_pattern, check_uri
from .ids import global_id
from .urimap import EXACT, MATCH_POLICIES, UriMap

log = logging.getLogger("wampfabric.router.broker")

MSG_PUBLISH, MSG_SUBSCRIBE, MSG_UNSUBSCRIBE = 16, 32, 34


class Subscription:
    __slots__ = ("id", "uri", "match", "subscribers", "created")

    def __init__(self, sub_id: int, uri: str, match: str):
        self.id = sub_id
        self.uri = uri
        self.match = match
        # insertion-ordered set of sessions
        self.subscribers: dict = {}


class Broker:
    FEATURES = {
        "publisher_identification": True,
        "publisher_exclusion": True,
        "subscriber_blackwhite_listing": True,
        "pattern_based_subscription": True,
        "payload_passthru_mode": True,
    }

    def __init__(self, realm):
        self.realm = realm
        self._subs = UriMap()
        self._by_id: dict[int, Subscription] = {}
        self.stats = realm.stats

    # -- subscribe / unsubscribe -------------------------------------------

    def subscribe(self, session, msg) -> None:
        topic = msg.topic
        options = msg.options
        match = options.get("match", EXACT)
        if match not in MATCH_POLICIES:
            session.send_error(MSG_SUBSCRIBE, msg.request, E.INVALID_ARGUMENT, [f"invalid match policy {match!r}"])
            return
        if not check_pattern(topic, match, self.realm.strict_uris):
            session.send_error(MSG_SUBSCRIBE, msg.request, E.INVALID_URI, [f"subscribe for invalid topic URI '{topic}'"])
            return
        allowed, _ = session.role.authorize(topic, "subscribe")
        if not allowed:
            session.send_error(
                MSG_SUBSCRIBE, msg.request, E.NOT_AUTHORIZED,
                [f"session is not authorized to subscribe to topic '{topic}'"],
            )
            return
        sub = self._subs.get(topic, match)
        if sub is None:
            sub = Subscription(global_id(), topic, match)
            self._subs.set(topic, match, sub)
            self._by_id[sub.id] = sub
        sub.subscribers[session] = None
        session.subscriptions[sub.id] = sub
        self.stats["subscribe"] += 1
        session.send(Subscribed(msg.request, sub.id).marshal())

    def unsubscribe(self, session, msg) -> None:
        sub = session.subscriptions.pop(msg.subscription, None)
        if sub is None:
            session.send_error(
                MSG_UNSUBSCRIBE, msg.request, E.NO_SUCH_SUBSCRIPTION,
                [f"session is not subscribed to subscription ID {msg.subscription}"],
            )
            return
        self._drop(sub, session)
        session.send(Unsubscribed(msg.request).marshal())

    def _drop(self, sub: Subscription, session) -> None:
        sub.subscribers.pop(session, None)
        if not sub.subscribers:
            self._subs.pop(sub.uri, sub.match)
            self._by_id.pop(sub.id, None)

    def detach(self, session) -> None:
        for sub in session.subscriptions.values():
            self._drop(sub, session)
        session.subscriptions.clear()

    # -- publish -------------------------------------------------------------

    def publish(self, session, msg) -> None:
        topic = msg.topic
        options = msg.options
        acknowledge = options.get("acknowledge", False)
        if not check_uri(topic, self.realm.strict_uris):
            if acknowledge:
                session.send_error(MSG_PUBLISH, msg.request, E.INVALID_URI, [f"publish with invalid topic URI '{topic}'"])
            return
        allowed, disclose = session.role.authorize(topic, "publish")
        if not allowed:
            if acknowledge:
                session.send_error(
                    MSG_PUBLISH, msg.request, E.NOT_AUTHORIZED,
                    [f"session not authorized to publish to topic '{topic}'"],
                )
            return
        self.stats["publish"] += 1
        publication = global_id()
        subs = self._subs.match_all(topic)
        if subs:
            if options:
                if options.get("disclose_me"):
                    disclose = True
                filters = _Filters(options) if (
                    "eligible" in options or "exclude" in options or "eligible_authid" in options
                    or "exclude_authid" in options or "eligible_authrole" in options or "exclude_authrole" in options
                ) else None
                exclude_me = options.get("exclude_me", True)
            else:
                filters = None
                exclude_me = True
            if msg.payload is not None:
                tail = [msg.payload]
            elif msg.kwargs:
                tail = [msg.args or [], msg.kwargs]
            elif msg.args:
                tail = [msg.args]
            else:
                tail = []
            delivered = 0
            for sub in subs:
                details = {}
                if disclose:
                    details["publisher"] = session.session_id
                    details["publisher_authid"] = session.authid
                    details["publisher_authrole"] = session.authrole
                if sub.match != EXACT:
                    details["topic"] = topic
                if msg.payload is not None:
                    for k in ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid"):
                        if k in options:
                            details[k] = options[k]
                event = [36, sub.id, publication, details, *tail]
                last_ser = None
                data = None
                cache = None
                for receiver in sub.subscribers:
                    if receiver is session and exclude_me:
                        continue
                    if filters is not None and not filters.admits(receiver):
                        continue
                    ser = receiver.serializer
                    if ser is not last_ser:
                        if last_ser is None:
                            data = ser.serialize(event)
                        else:
                            if cache is None:
                                cache = {last_ser: data}
                            data = cache.get(ser)
                            if data is None:
                                data = cache[ser] = ser.serialize(event)
                        last_ser = ser
                    receiver.send_raw(data)
                    delivered += 1
            self.stats["event"] += delivered
        if acknowledge:
            session.send(Published(msg.request, publication).marshal())

    # -- introspection (management API / meta API) ---------------------------

    def subscription_count(self) -> int:
        return len(self._by_id)


class _Filters:
    """Subscriber black- and whitelisting (advanced/pubsub_subscriber_blackwhite_listing)."""

    __slots__ = ("eligible", "exclude", "eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole")

    def __init__(self, options: dict):
        def as_set(name):
            v = options.get(name)
            return None if v is None else set(v)

        self.eligible = as_set("eligible")
        self.exclude = as_set("exclude")
        self.eligible_authid = as_set("eligible_authid")
        self.exclude_authid = as_set("exclude_authid")
        self.eligible_authrole = as_set("eligible_authrole")
        self.exclude_authrole = as_set("exclude_authrole")

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
