"""Publish & Subscribe messages: PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE,
UNSUBSCRIBED, EVENT, EVENT_RECEIVED."""

from ..codes import EVENT, EVENT_RECEIVED, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE, UNSUBSCRIBED
from ..payload import payload_tail
from .base import (
    MAX_ID,
    Message,
    _BOOL,
    _FORWARD_FOR,
    _FORWARD_ONLY,
    _ID,
    _IDS,
    _MATCH,
    _PPT_TABLE,
    _STR,
    _STRS,
    _UINT,
    _check_meta,
    _err_id,
    _err_len,
    _err_type,
    _new,
    _parse_payload,
)

_PUBLISH_OPTIONS = {
    **_PPT_TABLE,
    "acknowledge": _BOOL,
    "exclude_me": _BOOL,
    "exclude": _IDS,
    "exclude_authid": _STRS,
    "exclude_authrole": _STRS,
    "eligible": _IDS,
    "eligible_authid": _STRS,
    "eligible_authrole": _STRS,
    "retain": _BOOL,
    "disclose_me": _BOOL,
    "transaction_hash": _STR,
}
_SUBSCRIBE_OPTIONS = {
    "match": _MATCH,
    "get_retained": _BOOL,
    "forward_for": _FORWARD_FOR,
}
_UNSUBSCRIBED_DETAILS = {"subscription": _ID, "reason": _STR}
_EVENT_DETAILS = {
    **_PPT_TABLE,
    "publisher": _ID,
    "publisher_authid": _STR,
    "publisher_authrole": _STR,
    "topic": _STR,
    "retained": _BOOL,
    "trustlevel": _UINT,
    "transaction_hash": _STR,
    "x_acknowledged_delivery": _BOOL,
}


class Publish(Message):
    """``[PUBLISH, Request|id, Options|dict, Topic|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "topic", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = PUBLISH
    NAME = "PUBLISH"

    def __init__(self, request, topic, options=None, args=None, kwargs=None, payload=None):
        self.request = request
        self.topic = topic
        self.options = {} if options is None else options
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 4 <= n <= 6:
            raise _err_len("PUBLISH", n, "4 to 6")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("PUBLISH", "Request", request)
        options = wmsg[2]
        if type(options) is not dict:
            raise _err_type("PUBLISH", "Options", "a dict", options)
        if options:
            _check_meta("PUBLISH", "Options", options, _PUBLISH_OPTIONS)
        topic = wmsg[3]
        if type(topic) is not str:
            raise _err_type("PUBLISH", "Topic", "a string", topic)
        obj = _new(cls)
        obj.request = request
        obj.topic = topic
        obj.options = options
        if n > 4:
            obj.args, obj.kwargs, obj.payload = _parse_payload("PUBLISH", wmsg, 4, n, options)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [PUBLISH, self.request, self.options, self.topic,
                *payload_tail(self.args, self.kwargs, self.payload, self.options)]


class Published(Message):
    """``[PUBLISHED, PUBLISH.Request|id, Publication|id]``."""

    __slots__ = ("request", "publication")
    MESSAGE_TYPE = PUBLISHED
    NAME = "PUBLISHED"

    def __init__(self, request, publication):
        self.request = request
        self.publication = publication

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("PUBLISHED", len(wmsg), "3")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("PUBLISHED", "Request", request)
        publication = wmsg[2]
        if type(publication) is not int or not 0 < publication <= MAX_ID:
            raise _err_id("PUBLISHED", "Publication", publication)
        obj = _new(cls)
        obj.request = request
        obj.publication = publication
        return obj

    def marshal(self):
        return [PUBLISHED, self.request, self.publication]


class Subscribe(Message):
    """``[SUBSCRIBE, Request|id, Options|dict, Topic|uri]``."""

    __slots__ = ("request", "topic", "options")
    MESSAGE_TYPE = SUBSCRIBE
    NAME = "SUBSCRIBE"

    def __init__(self, request, topic, options=None):
        self.request = request
        self.topic = topic
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 4:
            raise _err_len("SUBSCRIBE", len(wmsg), "4")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("SUBSCRIBE", "Request", request)
        options = wmsg[2]
        _check_meta("SUBSCRIBE", "Options", options, _SUBSCRIBE_OPTIONS)
        topic = wmsg[3]
        if type(topic) is not str:
            raise _err_type("SUBSCRIBE", "Topic", "a string", topic)
        obj = _new(cls)
        obj.request = request
        obj.topic = topic
        obj.options = options
        return obj

    def marshal(self):
        return [SUBSCRIBE, self.request, self.options, self.topic]


class Subscribed(Message):
    """``[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]``."""

    __slots__ = ("request", "subscription")
    MESSAGE_TYPE = SUBSCRIBED
    NAME = "SUBSCRIBED"

    def __init__(self, request, subscription):
        self.request = request
        self.subscription = subscription

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("SUBSCRIBED", len(wmsg), "3")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("SUBSCRIBED", "Request", request)
        subscription = wmsg[2]
        if type(subscription) is not int or not 0 < subscription <= MAX_ID:
            raise _err_id("SUBSCRIBED", "Subscription", subscription)
        obj = _new(cls)
        obj.request = request
        obj.subscription = subscription
        return obj

    def marshal(self):
        return [SUBSCRIBED, self.request, self.subscription]


class Unsubscribe(Message):
    """``[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id(, Options|dict)]``.

    The optional Options element is not in the spec text but is listed by the
    WAMP test vectors (router-to-router links put ``forward_for`` there).
    """

    __slots__ = ("request", "subscription", "options")
    MESSAGE_TYPE = UNSUBSCRIBE
    NAME = "UNSUBSCRIBE"

    def __init__(self, request, subscription, options=None):
        self.request = request
        self.subscription = subscription
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 3 <= n <= 4:
            raise _err_len("UNSUBSCRIBE", n, "3 or 4")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("UNSUBSCRIBE", "Request", request)
        subscription = wmsg[2]
        if type(subscription) is not int or not 0 < subscription <= MAX_ID:
            raise _err_id("UNSUBSCRIBE", "Subscription", subscription)
        if n == 4:
            options = wmsg[3]
            _check_meta("UNSUBSCRIBE", "Options", options, _FORWARD_ONLY)
        else:
            options = {}
        obj = _new(cls)
        obj.request = request
        obj.subscription = subscription
        obj.options = options
        return obj

    def marshal(self):
        if self.options:
            return [UNSUBSCRIBE, self.request, self.subscription, self.options]
        return [UNSUBSCRIBE, self.request, self.subscription]


class Unsubscribed(Message):
    """``[UNSUBSCRIBED, UNSUBSCRIBE.Request|id(, Details|dict)]``.

    With "Subscription Revocation" the broker sends ``[UNSUBSCRIBED, 0,
    Details|dict]``; request 0 is therefore accepted when Details is present.
    """

    __slots__ = ("request", "details")
    MESSAGE_TYPE = UNSUBSCRIBED
    NAME = "UNSUBSCRIBED"

    def __init__(self, request, details=None):
        self.request = request
        self.details = {} if details is None else details

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 2 <= n <= 3:
            raise _err_len("UNSUBSCRIBED", n, "2 or 3")
        request = wmsg[1]
        if type(request) is not int or not (0 < request <= MAX_ID or (request == 0 and n == 3)):
            raise _err_id("UNSUBSCRIBED", "Request", request)
        if n == 3:
            details = wmsg[2]
            _check_meta("UNSUBSCRIBED", "Details", details, _UNSUBSCRIBED_DETAILS)
        else:
            details = {}
        obj = _new(cls)
        obj.request = request
        obj.details = details
        return obj

    def marshal(self):
        if self.details or self.request == 0:
            return [UNSUBSCRIBED, self.request, self.details]
        return [UNSUBSCRIBED, self.request]


class Event(Message):
    """``[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict
    (, PUBLISH.Arguments|list(, PUBLISH.ArgumentsKw|dict))]``."""

    __slots__ = ("subscription", "publication", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = EVENT
    NAME = "EVENT"

    def __init__(self, subscription, publication, details=None, args=None, kwargs=None, payload=None):
        self.subscription = subscription
        self.publication = publication
        self.details = {} if details is None else details
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 4 <= n <= 6:
            raise _err_len("EVENT", n, "4 to 6")
        subscription = wmsg[1]
        if type(subscription) is not int or not 0 < subscription <= MAX_ID:
            raise _err_id("EVENT", "Subscription", subscription)
        publication = wmsg[2]
        if type(publication) is not int or not 0 < publication <= MAX_ID:
            raise _err_id("EVENT", "Publication", publication)
        details = wmsg[3]
        if type(details) is not dict:
            raise _err_type("EVENT", "Details", "a dict", details)
        if details:
            _check_meta("EVENT", "Details", details, _EVENT_DETAILS)
        obj = _new(cls)
        obj.subscription = subscription
        obj.publication = publication
        obj.details = details
        if n > 4:
            obj.args, obj.kwargs, obj.payload = _parse_payload("EVENT", wmsg, 4, n, details)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [EVENT, self.subscription, self.publication, self.details,
                *payload_tail(self.args, self.kwargs, self.payload, self.details)]


class EventReceived(Message):
    """``[EVENT_RECEIVED, EVENT.Publication|id]`` (acknowledged event delivery).

    Not in the spec text; the WAMP test vectors and Autobahn use the
    provisional code 337 ("should be 37 on ratification").
    """

    __slots__ = ("publication",)
    MESSAGE_TYPE = EVENT_RECEIVED
    NAME = "EVENT_RECEIVED"

    def __init__(self, publication):
        self.publication = publication

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 2:
            raise _err_len("EVENT_RECEIVED", len(wmsg), "2")
        publication = wmsg[1]
        if type(publication) is not int or not 0 < publication <= MAX_ID:
            raise _err_id("EVENT_RECEIVED", "Publication", publication)
        obj = _new(cls)
        obj.publication = publication
        return obj

    def marshal(self):
        return [EVENT_RECEIVED, self.publication]
