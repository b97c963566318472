"""WAMP message classes (Basic + Advanced Profile), sans-I/O.

Every class has

* ``MESSAGE_TYPE`` (the wire code) and ``NAME`` (used in error texts),
* ``__slots__`` and a keyword-friendly constructor (no validation: objects
  built by our own code are trusted),
* ``parse(wmsg)`` -- a classmethod building the object from the decoded wire
  list with strict validation, raising :class:`ProtocolError` with a text of
  the form ``"CALL: <what is wrong>"``,
* ``marshal()`` -- the wire list again.

The module-level :func:`parse` dispatches on ``wmsg[0]``.

Validation rules (spec "Messages"):

* message length must be one of the lengths the spec lists for the type,
* ``id``: ``int`` (``bool`` rejected) in ``[1, 2**53]``,
* ``dict``: a ``dict`` with ``str`` keys (Options/Details, ArgumentsKw),
* ``uri``: only checked to be a ``str`` here; the URI syntax is checked by
  the router with :mod:`wampfabric.protocol.uri` because a bad URI is answered
  with ``wamp.error.invalid_uri`` rather than being a protocol violation,
* ``list``: ``list``.
* Well-known Options/Details attributes are type-checked (e.g.
  ``PUBLISH.Options.acknowledge|bool``, ``SUBSCRIBE.Options.match``), since the
  WAMP test vectors require wrongly typed ones to be a protocol violation.
  A well-known attribute set to None (``null``; JavaScript clients such as
  wampy send ``undefined`` for unset options, which the serializers decode
  to None) counts as absent and is removed from the dict, see ``_check_meta``.
  Unknown attributes are ignored ("Extensibility": they MUST be ignored).
  Nested application payload (Arguments / ArgumentsKw contents) is never
  inspected ("Structure": routers need not parse the payload).

Payload Passthru Mode ("Payload Passthru Mode", Advanced Profile)
------------------------------------------------------------------
When a CALL/PUBLISH/YIELD/... carries ``ppt_scheme`` in its Options/Details,
the spec puts the payload as *one binary item* in the Arguments position,
``[..., [Payload|binary]]``, with ArgumentsKw absent or empty.
Autobahn/Crossbar (and the WAMP test vectors) use the older naming
``enc_algo``/``enc_serializer``/``enc_key`` and put the binary *directly* in
the Arguments position: ``[..., Payload|binary]``.

Both layouts are accepted on parse; the binary is stored in ``.payload``
(``args``/``kwargs`` are then None).  ``marshal()`` writes ``[payload]`` if the
message's Options/Details have a non-empty ``ppt_scheme`` and the bare binary
otherwise.  Since a router copies the ``ppt_*``/``enc_*`` attributes from
CALL to INVOCATION (and PUBLISH to EVENT, YIELD to RESULT), the layout a
sender used is the one the receiver gets.  A bare binary is only accepted when
a ``ppt_scheme`` or ``enc_algo`` attribute announces passthru mode.

Empty Arguments / ArgumentsKw ("Empty Arguments and Keyword Arguments")
------------------------------------------------------------------------
Parsing keeps what was sent (``args == []`` stays ``[]``).  ``marshal()``
follows the spec's SHOULD: an empty/None ArgumentsKw is omitted, and an
empty/None Arguments list is omitted unless ArgumentsKw follows it.
"""

from itertools import islice as _islice

from .errors import ProtocolError

__all__ = [
    "MAX_ID",
    "is_valid_id",
    "short_repr",
    "Message",
    "Hello",
    "Welcome",
    "Abort",
    "Challenge",
    "Authenticate",
    "Goodbye",
    "Error",
    "Publish",
    "Published",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "Event",
    "EventReceived",
    "Call",
    "Cancel",
    "Result",
    "Register",
    "Registered",
    "Unregister",
    "Unregistered",
    "Invocation",
    "Interrupt",
    "Yield",
    "MESSAGE_CLASSES",
    "parse",
]

#: IDs are integers in [1, 2**53] (spec "IDs").
MAX_ID = 9007199254740992

_new = object.__new__


def is_valid_id(x) -> bool:
    """True if *x* is a WAMP id: an ``int`` (not ``bool``) in ``[1, 2**53]``."""
    return type(x) is int and 0 < x <= MAX_ID


# ---------------------------------------------------------------------------
# error helpers (only called on the failure path)
# ---------------------------------------------------------------------------


class _Tok(str):
    """Punctuation written by :func:`short_repr` (as opposed to a str value)."""


_OPEN = {list: _Tok("["), tuple: _Tok("("), dict: _Tok("{")}
_CLOSE = {list: _Tok("]"), tuple: _Tok(")"), dict: _Tok("}")}
_SEP, _COLON = _Tok(", "), _Tok(": ")


def short_repr(v, limit: int = 60) -> str:
    """``repr(v)`` cut to *limit* characters (ending in ``...`` when cut), safe for any input.

    ``repr()`` itself is not: a peer's list nested 1,000 deep exceeds Python's recursion
    limit, a CBOR bignum of 5,000 digits exceeds the int-to-str limit, and a 16 MB string
    would be copied whole just to be cut.  Here containers are written iteratively and only
    until *limit* is reached, strings are cut before quoting, big integers are described by
    their size and objects of other types by their type name."""
    parts = []
    size = 0
    stack = [v]
    pop = stack.pop
    push = stack.append
    while stack and size <= limit:
        x = pop()
        t = type(x)
        if t is _Tok:
            r = x
        elif t is list or t is tuple or t is dict:
            push(_CLOSE[t])
            # at most `limit` items: each writes at least one character
            items = list(_islice(x.items(), limit)) if t is dict else x[:limit]
            if t is tuple and len(x) == 1:
                push(_Tok(","))
            for i in range(len(items) - 1, -1, -1):
                if t is dict:
                    push(items[i][1])
                    push(_COLON)
                    push(items[i][0])
                else:
                    push(items[i])
                if i:
                    push(_SEP)
            r = _OPEN[t]
        elif t is str or t is bytes or t is bytearray:
            r = repr(x[: limit + 1])
        elif t is int:
            r = repr(x) if x.bit_length() <= 256 else f"<int of {x.bit_length()} bits>"
        elif t is float or t is bool or x is None:
            r = repr(x)
        else:
            r = f"<{t.__name__}>"
        parts.append(r)
        size += len(r)
    r = "".join(parts)
    return r if size <= limit and not stack else r[: limit - 3] + "..."


def _short(v) -> str:
    return short_repr(v, 60)


def _tname(v) -> str:
    return type(v).__name__


def _err_len(name: str, n: int, allowed: str) -> ProtocolError:
    return ProtocolError(f"{name}: invalid message length {n} (expected {allowed})")


def _err_id(name: str, field: str, v) -> ProtocolError:
    return ProtocolError(f"{name}: {field} must be an id (integer in [1, 2**53]), got {_short(v)}")


def _err_type(name: str, field: str, expected: str, v) -> ProtocolError:
    return ProtocolError(f"{name}: {field} must be {expected}, got {_tname(v)}")


# ---------------------------------------------------------------------------
# Options / Details checking
# ---------------------------------------------------------------------------
# A table maps an attribute name to (predicate, description).  Predicates are
# tiny functions; they run only for attributes that are actually present.


def _is_bool(v):
    return v is True or v is False


def _is_str(v):
    return type(v) is str


def _is_str_or_none(v):
    return v is None or type(v) is str


def _is_dict(v):
    return type(v) is dict


def _is_dict_or_none(v):
    return v is None or type(v) is dict


def _is_uint(v):
    # bounded like ids: a CBOR bignum timeout would otherwise reach the router's arithmetic
    return type(v) is int and 0 <= v <= MAX_ID


def _is_posint(v):
    return type(v) is int and 0 < v <= MAX_ID


def _is_list_of_ids(v):
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not int or not 0 < x <= MAX_ID:
            return False
    return True


def _is_list_of_str(v):
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not str:
            return False
    return True


def _is_forward_for(v):
    # Router-to-router links: list of {session, authid, authrole} dicts.
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not dict:
            return False
    return True


def _is_roles(v):
    # HELLO/WELCOME.Details.roles: dict role -> dict, at least one role
    # ("Session Establishment": a peer must support at least one role).
    if type(v) is not dict or not v:
        return False
    for k, x in v.items():
        if type(k) is not str or type(x) is not dict:
            return False
    return True


def _one_of(*values):
    allowed = frozenset(values)

    def check(v):
        return type(v) is str and v in allowed

    return check, "one of " + ", ".join(repr(x) for x in values)


def _custom_or_one_of(*values):
    # Autobahn's payload encryption identifiers: a predefined value or a
    # custom 'x_...' one.
    allowed = frozenset(values)

    def check(v):
        return type(v) is str and (v in allowed or (v.startswith("x_") and len(v) > 2))

    return check, "one of " + ", ".join(repr(x) for x in values) + " or 'x_<custom>'"


_BOOL = (_is_bool, "a bool")
_STR = (_is_str, "a string")
_STR_OR_NONE = (_is_str_or_none, "a string or null")
_DICT = (_is_dict, "a dict")
_DICT_OR_NONE = (_is_dict_or_none, "a dict or null")
_UINT = (_is_uint, "an integer in [0, 2**53]")
_POSINT = (_is_posint, "an integer in [1, 2**53]")
_ID = (is_valid_id, "an id")
_IDS = (_is_list_of_ids, "a list of ids")
_STRS = (_is_list_of_str, "a list of strings")
_FORWARD_FOR = (_is_forward_for, "a list of dicts")
_ROLES = (_is_roles, "a non-empty dict of role dicts")
_MATCH = _one_of("exact", "prefix", "wildcard")

# Payload passthru attributes, spec naming (ppt_*) and Autobahn naming (enc_*).
# The spec says a router "shall not inspect and analyze the ppt_ options", so
# only their types are checked; the enc_* value sets are what Autobahn and the
# test vectors define.
_PPT_TABLE = {
    "ppt_scheme": _STR,
    "ppt_serializer": _STR,
    "ppt_cipher": _STR,
    "ppt_keyid": _STR,
    "enc_algo": _custom_or_one_of("null", "cryptobox", "mqtt", "xbr"),
    "enc_serializer": _custom_or_one_of(
        "null", "json", "msgpack", "cbor", "ubjson", "opaque", "flatbuffers"
    ),
    "enc_key": _STR,
    "forward_for": _FORWARD_FOR,
}

_HELLO_DETAILS = {
    "roles": _ROLES,
    "authmethods": _STRS,
    "authid": _STR_OR_NONE,
    "authrole": _STR_OR_NONE,
    "authextra": _DICT_OR_NONE,
    "agent": _STR,
}
_WELCOME_DETAILS = {
    "roles": _ROLES,
    "authid": _STR_OR_NONE,
    "authrole": _STR_OR_NONE,
    "authmethod": _STR_OR_NONE,
    "authprovider": _STR_OR_NONE,
    "authextra": _DICT_OR_NONE,
    "agent": _STR,
}
_NO_TABLE: dict = {}
_ERROR_DETAILS = _PPT_TABLE
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
_FORWARD_ONLY = {"forward_for": _FORWARD_FOR}
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
_CALL_OPTIONS = {
    **_PPT_TABLE,
    "timeout": _UINT,
    "receive_progress": _BOOL,
    "progress": _BOOL,
    "disclose_me": _BOOL,
    "transaction_hash": _STR,
}
_CANCEL_OPTIONS = {"mode": _one_of("skip", "kill", "killnowait"), "forward_for": _FORWARD_FOR}
_RESULT_DETAILS = {**_PPT_TABLE, "progress": _BOOL}
_REGISTER_OPTIONS = {
    "match": _MATCH,
    "invoke": _one_of("single", "roundrobin", "random", "first", "last"),
    "concurrency": _POSINT,
    "disclose_caller": _BOOL,
    "force_reregister": _BOOL,
    "forward_for": _FORWARD_FOR,
}
_UNREGISTERED_DETAILS = {"registration": _ID, "reason": _STR}
_INVOCATION_DETAILS = {
    **_PPT_TABLE,
    "caller": _ID,
    "caller_authid": _STR,
    "caller_authrole": _STR,
    "procedure": _STR,
    "receive_progress": _BOOL,
    "progress": _BOOL,
    "timeout": _UINT,
    "trustlevel": _UINT,
}
_INTERRUPT_OPTIONS = {"mode": _one_of("kill", "killnowait"), "reason": _STR, "forward_for": _FORWARD_FOR}
_YIELD_OPTIONS = {**_PPT_TABLE, "progress": _BOOL}


def _check_meta(name: str, field: str, d, table: dict) -> None:
    """Validate an Options/Details/Extra element: dict, str keys, known attrs.

    A known attribute whose value is None (JSON ``null``, or a JavaScript
    ``undefined`` decoded by the serializer) and whose check does not accept
    None is treated as absent: it is removed from *d* (so the router's
    ``options.get(k, default)`` / ``k in options`` see no attribute).  All
    Options/Details attributes are optional; a required one (HELLO/WELCOME
    ``roles``) is then reported as missing by the caller.
    """
    if type(d) is not dict:
        raise _err_type(name, field, "a dict", d)
    nulls = None
    for k, v in d.items():
        if type(k) is not str:
            raise ProtocolError(f"{name}: {field} keys must be strings, got {_short(k)}")
        chk = table.get(k)
        if chk is not None and not chk[0](v):
            if v is None:
                # failure path only: the valid case pays nothing for this
                if nulls is None:
                    nulls = [k]
                else:
                    nulls.append(k)
                continue
            raise ProtocolError(f"{name}: {field}.{k} must be {chk[1]}, got {_short(v)}")
    if nulls is not None:
        for k in nulls:
            del d[k]


# ---------------------------------------------------------------------------
# application payload (Arguments / ArgumentsKw / passthru payload)
# ---------------------------------------------------------------------------


def _parse_payload(name: str, wmsg: list, i: int, n: int, meta: dict):
    """Parse the trailing payload elements starting at index *i* (< n).

    Returns ``(args, kwargs, payload)``.  *meta* is the message's
    Options/Details dict (already validated).
    """
    a = wmsg[i]
    if type(a) is list:
        if meta and meta.get("ppt_scheme"):
            # Spec layout: [Payload|binary] as the only Arguments item.
            if len(a) != 1 or type(a[0]) is not bytes:
                raise ProtocolError(
                    f"{name}: in payload passthru mode Arguments must be [Payload|binary]"
                )
            if n > i + 1 and wmsg[i + 1] != {}:
                raise ProtocolError(f"{name}: ArgumentsKw must be absent or empty in payload passthru mode")
            return None, None, a[0]
        if n > i + 1:
            kw = wmsg[i + 1]
            if type(kw) is not dict:
                raise _err_type(name, "ArgumentsKw", "a dict", kw)
            for k in kw:
                if type(k) is not str:
                    raise ProtocolError(f"{name}: ArgumentsKw keys must be strings, got {_short(k)}")
            return a, kw, None
        return a, None, None
    if type(a) is bytes and meta and ("enc_algo" in meta or meta.get("ppt_scheme")):
        # Autobahn layout: the binary payload directly in the Arguments slot.
        if n > i + 1 and wmsg[i + 1] != {}:
            raise ProtocolError(f"{name}: ArgumentsKw must be absent or empty in payload passthru mode")
        return None, None, a
    raise _err_type(name, "Arguments", "a list", a)


def _wrap_payload(meta: dict, payload):
    # See module docstring: spec layout when ppt_scheme is set, else bare.
    return [payload] if meta.get("ppt_scheme") else payload


def _payload_tail(msg, meta) -> list:
    """The Arguments/ArgumentsKw (or passthru payload) elements ending a message."""
    if msg.payload is not None:
        return [_wrap_payload(meta, msg.payload)]
    if msg.kwargs:
        return [msg.args or [], msg.kwargs]
    if msg.args:
        return [msg.args]
    return []


# ---------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------


class Message:
    """Base class of all WAMP messages."""

    __slots__ = ()
    MESSAGE_TYPE: int = 0
    NAME: str = "MESSAGE"

    @classmethod
    def parse(cls, wmsg: list) -> "Message":  # pragma: no cover - abstract
        raise NotImplementedError

    def marshal(self) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        for s in self.__slots__:
            if getattr(self, s) != getattr(other, s):
                return False
        return True

    __hash__ = None  # mutable

    def __repr__(self):
        fields = ", ".join(f"{s}={short_repr(getattr(self, s), 200)}" for s in self.__slots__)
        return f"{type(self).__name__}({fields})"


# ---------------------------------------------------------------------------
# Session lifecycle
# ---------------------------------------------------------------------------


class Hello(Message):
    """``[HELLO, Realm|uri, Details|dict]``.

    ``realm`` may be None: Crossbar.io's fabric shell and nodes send a JSON
    ``null`` realm (meaning "the global management realm"), which is not
    spec-valid but must be accepted by a compatible router.
    """

    __slots__ = ("realm", "details")
    MESSAGE_TYPE = 1
    NAME = "HELLO"

    def __init__(self, realm, details=None):
        self.realm = realm
        self.details = {} if details is None else details

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("HELLO", len(wmsg), "3")
        realm = wmsg[1]
        if realm is not None and type(realm) is not str:
            raise _err_type("HELLO", "Realm", "a string (or null)", realm)
        details = wmsg[2]
        _check_meta("HELLO", "Details", details, _HELLO_DETAILS)
        if "roles" not in details:
            raise ProtocolError("HELLO: Details.roles is missing")
        obj = _new(cls)
        obj.realm = realm
        obj.details = details
        return obj

    def marshal(self):
        return [1, self.realm, self.details]


class Welcome(Message):
    """``[WELCOME, Session|id, Details|dict]``."""

    __slots__ = ("session", "details")
    MESSAGE_TYPE = 2
    NAME = "WELCOME"

    def __init__(self, session, details=None):
        self.session = session
        self.details = {} if details is None else details

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("WELCOME", len(wmsg), "3")
        session = wmsg[1]
        if type(session) is not int or not 0 < session <= MAX_ID:
            raise _err_id("WELCOME", "Session", session)
        details = wmsg[2]
        _check_meta("WELCOME", "Details", details, _WELCOME_DETAILS)
        if "roles" not in details:
            raise ProtocolError("WELCOME: Details.roles is missing")
        obj = _new(cls)
        obj.session = session
        obj.details = details
        return obj

    def marshal(self):
        return [2, self.session, self.details]


class Abort(Message):
    """``[ABORT, Details|dict, Reason|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("details", "reason", "args", "kwargs")
    MESSAGE_TYPE = 3
    NAME = "ABORT"

    def __init__(self, details, reason, args=None, kwargs=None):
        self.details = {} if details is None else details
        self.reason = reason
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 3 <= n <= 5:
            raise _err_len("ABORT", n, "3 to 5")
        details = wmsg[1]
        _check_meta("ABORT", "Details", details, _NO_TABLE)
        reason = wmsg[2]
        if type(reason) is not str:
            raise _err_type("ABORT", "Reason", "a string", reason)
        args = kwargs = None
        if n > 3:
            args = wmsg[3]
            if type(args) is not list:
                raise _err_type("ABORT", "Arguments", "a list", args)
            if n > 4:
                kwargs = wmsg[4]
                _check_meta("ABORT", "ArgumentsKw", kwargs, _NO_TABLE)
        obj = _new(cls)
        obj.details = details
        obj.reason = reason
        obj.args = args
        obj.kwargs = kwargs
        return obj

    def marshal(self):
        msg = [3, self.details, self.reason]
        if self.kwargs:
            msg.append(self.args or [])
            msg.append(self.kwargs)
        elif self.args:
            msg.append(self.args)
        return msg


class Challenge(Message):
    """``[CHALLENGE, AuthMethod|string, Extra|dict]``."""

    __slots__ = ("method", "extra")
    MESSAGE_TYPE = 4
    NAME = "CHALLENGE"

    def __init__(self, method, extra=None):
        self.method = method
        self.extra = {} if extra is None else extra

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("CHALLENGE", len(wmsg), "3")
        method = wmsg[1]
        if type(method) is not str:
            raise _err_type("CHALLENGE", "AuthMethod", "a string", method)
        extra = wmsg[2]
        _check_meta("CHALLENGE", "Extra", extra, _NO_TABLE)
        obj = _new(cls)
        obj.method = method
        obj.extra = extra
        return obj

    def marshal(self):
        return [4, self.method, self.extra]


class Authenticate(Message):
    """``[AUTHENTICATE, Signature|string, Extra|dict]``."""

    __slots__ = ("signature", "extra")
    MESSAGE_TYPE = 5
    NAME = "AUTHENTICATE"

    def __init__(self, signature, extra=None):
        self.signature = signature
        self.extra = {} if extra is None else extra

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("AUTHENTICATE", len(wmsg), "3")
        signature = wmsg[1]
        if type(signature) is not str:
            raise _err_type("AUTHENTICATE", "Signature", "a string", signature)
        extra = wmsg[2]
        _check_meta("AUTHENTICATE", "Extra", extra, _NO_TABLE)
        obj = _new(cls)
        obj.signature = signature
        obj.extra = extra
        return obj

    def marshal(self):
        return [5, self.signature, self.extra]


class Goodbye(Message):
    """``[GOODBYE, Details|dict, Reason|uri]``."""

    __slots__ = ("details", "reason")
    MESSAGE_TYPE = 6
    NAME = "GOODBYE"

    def __init__(self, details, reason):
        self.details = {} if details is None else details
        self.reason = reason

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("GOODBYE", len(wmsg), "3")
        details = wmsg[1]
        _check_meta("GOODBYE", "Details", details, _NO_TABLE)
        reason = wmsg[2]
        if type(reason) is not str:
            raise _err_type("GOODBYE", "Reason", "a string", reason)
        obj = _new(cls)
        obj.details = details
        obj.reason = reason
        return obj

    def marshal(self):
        return [6, self.details, self.reason]


#: Request types an ERROR may answer.  Any other REQUEST.Type is a protocol
#: error (spec "Protocol Errors": "Receiving ERROR message with invalid
#: REQUEST.Type").
ERROR_REQUEST_TYPES = frozenset((16, 32, 34, 48, 64, 66, 68))


class Error(Message):
    """``[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri
    (, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request_type", "request", "details", "error", "args", "kwargs", "payload")
    MESSAGE_TYPE = 8
    NAME = "ERROR"

    def __init__(self, request_type, request, details, error, args=None, kwargs=None, payload=None):
        self.request_type = request_type
        self.request = request
        self.details = {} if details is None else details
        self.error = error
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 5 <= n <= 7:
            raise _err_len("ERROR", n, "5 to 7")
        request_type = wmsg[1]
        if type(request_type) is not int or request_type not in ERROR_REQUEST_TYPES:
            raise ProtocolError(f"ERROR: invalid REQUEST.Type {_short(request_type)}")
        request = wmsg[2]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("ERROR", "Request", request)
        details = wmsg[3]
        if type(details) is not dict:
            raise _err_type("ERROR", "Details", "a dict", details)
        if details:
            _check_meta("ERROR", "Details", details, _ERROR_DETAILS)
        error = wmsg[4]
        if type(error) is not str:
            raise _err_type("ERROR", "Error", "a string", error)
        obj = _new(cls)
        obj.request_type = request_type
        obj.request = request
        obj.details = details
        obj.error = error
        if n > 5:
            obj.args, obj.kwargs, obj.payload = _parse_payload("ERROR", wmsg, 5, n, details)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [8, self.request_type, self.request, self.details, self.error, *_payload_tail(self, self.details)]


# ---------------------------------------------------------------------------
# Publish & Subscribe
# ---------------------------------------------------------------------------


class Publish(Message):
    """``[PUBLISH, Request|id, Options|dict, Topic|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "topic", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = 16
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
        return [16, self.request, self.options, self.topic, *_payload_tail(self, self.options)]


class Published(Message):
    """``[PUBLISHED, PUBLISH.Request|id, Publication|id]``."""

    __slots__ = ("request", "publication")
    MESSAGE_TYPE = 17
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
        return [17, self.request, self.publication]


class Subscribe(Message):
    """``[SUBSCRIBE, Request|id, Options|dict, Topic|uri]``."""

    __slots__ = ("request", "topic", "options")
    MESSAGE_TYPE = 32
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
        return [32, self.request, self.options, self.topic]


class Subscribed(Message):
    """``[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]``."""

    __slots__ = ("request", "subscription")
    MESSAGE_TYPE = 33
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
        return [33, self.request, self.subscription]


class Unsubscribe(Message):
    """``[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id(, Options|dict)]``.

    The optional Options element is not in the spec text but is listed by the
    WAMP test vectors (router-to-router links put ``forward_for`` there).
    """

    __slots__ = ("request", "subscription", "options")
    MESSAGE_TYPE = 34
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
            return [34, self.request, self.subscription, self.options]
        return [34, self.request, self.subscription]


class Unsubscribed(Message):
    """``[UNSUBSCRIBED, UNSUBSCRIBE.Request|id(, Details|dict)]``.

    With "Subscription Revocation" the broker sends ``[UNSUBSCRIBED, 0,
    Details|dict]``; request 0 is therefore accepted when Details is present.
    """

    __slots__ = ("request", "details")
    MESSAGE_TYPE = 35
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
            return [35, self.request, self.details]
        return [35, self.request]


class Event(Message):
    """``[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict
    (, PUBLISH.Arguments|list(, PUBLISH.ArgumentsKw|dict))]``."""

    __slots__ = ("subscription", "publication", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = 36
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
        return [36, self.subscription, self.publication, self.details, *_payload_tail(self, self.details)]


class EventReceived(Message):
    """``[EVENT_RECEIVED, EVENT.Publication|id]`` (acknowledged event delivery).

    Not in the spec text; the WAMP test vectors and Autobahn use the
    provisional code 337 ("should be 37 on ratification").
    """

    __slots__ = ("publication",)
    MESSAGE_TYPE = 337
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
        return [337, self.publication]


# ---------------------------------------------------------------------------
# Remote Procedure Calls
# ---------------------------------------------------------------------------


class Call(Message):
    """``[CALL, Request|id, Options|dict, Procedure|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "procedure", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = 48
    NAME = "CALL"

    def __init__(self, request, procedure, options=None, args=None, kwargs=None, payload=None):
        self.request = request
        self.procedure = procedure
        self.options = {} if options is None else options
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 4 <= n <= 6:
            raise _err_len("CALL", n, "4 to 6")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("CALL", "Request", request)
        options = wmsg[2]
        if type(options) is not dict:
            raise _err_type("CALL", "Options", "a dict", options)
        if options:
            _check_meta("CALL", "Options", options, _CALL_OPTIONS)
        procedure = wmsg[3]
        if type(procedure) is not str:
            raise _err_type("CALL", "Procedure", "a string", procedure)
        obj = _new(cls)
        obj.request = request
        obj.procedure = procedure
        obj.options = options
        if n > 4:
            obj.args, obj.kwargs, obj.payload = _parse_payload("CALL", wmsg, 4, n, options)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [48, self.request, self.options, self.procedure, *_payload_tail(self, self.options)]


class Cancel(Message):
    """``[CANCEL, CALL.Request|id, Options|dict]``."""

    __slots__ = ("request", "options")
    MESSAGE_TYPE = 49
    NAME = "CANCEL"

    def __init__(self, request, options=None):
        self.request = request
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("CANCEL", len(wmsg), "3")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("CANCEL", "Request", request)
        options = wmsg[2]
        _check_meta("CANCEL", "Options", options, _CANCEL_OPTIONS)
        obj = _new(cls)
        obj.request = request
        obj.options = options
        return obj

    def marshal(self):
        return [49, self.request, self.options]


class Result(Message):
    """``[RESULT, CALL.Request|id, Details|dict(, YIELD.Arguments|list(, YIELD.ArgumentsKw|dict))]``."""

    __slots__ = ("request", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = 50
    NAME = "RESULT"

    def __init__(self, request, details=None, args=None, kwargs=None, payload=None):
        self.request = request
        self.details = {} if details is None else details
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 3 <= n <= 5:
            raise _err_len("RESULT", n, "3 to 5")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("RESULT", "Request", request)
        details = wmsg[2]
        if type(details) is not dict:
            raise _err_type("RESULT", "Details", "a dict", details)
        if details:
            _check_meta("RESULT", "Details", details, _RESULT_DETAILS)
        obj = _new(cls)
        obj.request = request
        obj.details = details
        if n > 3:
            obj.args, obj.kwargs, obj.payload = _parse_payload("RESULT", wmsg, 3, n, details)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [50, self.request, self.details, *_payload_tail(self, self.details)]


class Register(Message):
    """``[REGISTER, Request|id, Options|dict, Procedure|uri]``."""

    __slots__ = ("request", "procedure", "options")
    MESSAGE_TYPE = 64
    NAME = "REGISTER"

    def __init__(self, request, procedure, options=None):
        self.request = request
        self.procedure = procedure
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 4:
            raise _err_len("REGISTER", len(wmsg), "4")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("REGISTER", "Request", request)
        options = wmsg[2]
        _check_meta("REGISTER", "Options", options, _REGISTER_OPTIONS)
        procedure = wmsg[3]
        if type(procedure) is not str:
            raise _err_type("REGISTER", "Procedure", "a string", procedure)
        obj = _new(cls)
        obj.request = request
        obj.procedure = procedure
        obj.options = options
        return obj

    def marshal(self):
        return [64, self.request, self.options, self.procedure]


class Registered(Message):
    """``[REGISTERED, REGISTER.Request|id, Registration|id]``."""

    __slots__ = ("request", "registration")
    MESSAGE_TYPE = 65
    NAME = "REGISTERED"

    def __init__(self, request, registration):
        self.request = request
        self.registration = registration

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("REGISTERED", len(wmsg), "3")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("REGISTERED", "Request", request)
        registration = wmsg[2]
        if type(registration) is not int or not 0 < registration <= MAX_ID:
            raise _err_id("REGISTERED", "Registration", registration)
        obj = _new(cls)
        obj.request = request
        obj.registration = registration
        return obj

    def marshal(self):
        return [65, self.request, self.registration]


class Unregister(Message):
    """``[UNREGISTER, Request|id, REGISTERED.Registration|id(, Options|dict)]``.

    As for UNSUBSCRIBE, the optional Options (``forward_for``) is an
    implementation-specific extension mentioned by the test vectors.
    """

    __slots__ = ("request", "registration", "options")
    MESSAGE_TYPE = 66
    NAME = "UNREGISTER"

    def __init__(self, request, registration, options=None):
        self.request = request
        self.registration = registration
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 3 <= n <= 4:
            raise _err_len("UNREGISTER", n, "3 or 4")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("UNREGISTER", "Request", request)
        registration = wmsg[2]
        if type(registration) is not int or not 0 < registration <= MAX_ID:
            raise _err_id("UNREGISTER", "Registration", registration)
        if n == 4:
            options = wmsg[3]
            _check_meta("UNREGISTER", "Options", options, _FORWARD_ONLY)
        else:
            options = {}
        obj = _new(cls)
        obj.request = request
        obj.registration = registration
        obj.options = options
        return obj

    def marshal(self):
        if self.options:
            return [66, self.request, self.registration, self.options]
        return [66, self.request, self.registration]


class Unregistered(Message):
    """``[UNREGISTERED, UNREGISTER.Request|id(, Details|dict)]``.

    "Registration Revocation": ``[UNREGISTERED, 0, Details|dict]``.
    """

    __slots__ = ("request", "details")
    MESSAGE_TYPE = 67
    NAME = "UNREGISTERED"

    def __init__(self, request, details=None):
        self.request = request
        self.details = {} if details is None else details

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 2 <= n <= 3:
            raise _err_len("UNREGISTERED", n, "2 or 3")
        request = wmsg[1]
        if type(request) is not int or not (0 < request <= MAX_ID or (request == 0 and n == 3)):
            raise _err_id("UNREGISTERED", "Request", request)
        if n == 3:
            details = wmsg[2]
            _check_meta("UNREGISTERED", "Details", details, _UNREGISTERED_DETAILS)
        else:
            details = {}
        obj = _new(cls)
        obj.request = request
        obj.details = details
        return obj

    def marshal(self):
        if self.details or self.request == 0:
            return [67, self.request, self.details]
        return [67, self.request]


class Invocation(Message):
    """``[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict
    (, CALL.Arguments|list(, CALL.ArgumentsKw|dict))]``."""

    __slots__ = ("request", "registration", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = 68
    NAME = "INVOCATION"

    def __init__(self, request, registration, details=None, args=None, kwargs=None, payload=None):
        self.request = request
        self.registration = registration
        self.details = {} if details is None else details
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 4 <= n <= 6:
            raise _err_len("INVOCATION", n, "4 to 6")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("INVOCATION", "Request", request)
        registration = wmsg[2]
        if type(registration) is not int or not 0 < registration <= MAX_ID:
            raise _err_id("INVOCATION", "Registration", registration)
        details = wmsg[3]
        if type(details) is not dict:
            raise _err_type("INVOCATION", "Details", "a dict", details)
        if details:
            _check_meta("INVOCATION", "Details", details, _INVOCATION_DETAILS)
        obj = _new(cls)
        obj.request = request
        obj.registration = registration
        obj.details = details
        if n > 4:
            obj.args, obj.kwargs, obj.payload = _parse_payload("INVOCATION", wmsg, 4, n, details)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [68, self.request, self.registration, self.details, *_payload_tail(self, self.details)]


class Interrupt(Message):
    """``[INTERRUPT, INVOCATION.Request|id, Options|dict]``."""

    __slots__ = ("request", "options")
    MESSAGE_TYPE = 69
    NAME = "INTERRUPT"

    def __init__(self, request, options=None):
        self.request = request
        self.options = {} if options is None else options

    @classmethod
    def parse(cls, wmsg):
        if len(wmsg) != 3:
            raise _err_len("INTERRUPT", len(wmsg), "3")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("INTERRUPT", "Request", request)
        options = wmsg[2]
        _check_meta("INTERRUPT", "Options", options, _INTERRUPT_OPTIONS)
        obj = _new(cls)
        obj.request = request
        obj.options = options
        return obj

    def marshal(self):
        return [69, self.request, self.options]


class Yield(Message):
    """``[YIELD, INVOCATION.Request|id, Options|dict(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = 70
    NAME = "YIELD"

    def __init__(self, request, options=None, args=None, kwargs=None, payload=None):
        self.request = request
        self.options = {} if options is None else options
        self.args = args
        self.kwargs = kwargs
        self.payload = payload

    @classmethod
    def parse(cls, wmsg):
        n = len(wmsg)
        if not 3 <= n <= 5:
            raise _err_len("YIELD", n, "3 to 5")
        request = wmsg[1]
        if type(request) is not int or not 0 < request <= MAX_ID:
            raise _err_id("YIELD", "Request", request)
        options = wmsg[2]
        if type(options) is not dict:
            raise _err_type("YIELD", "Options", "a dict", options)
        if options:
            _check_meta("YIELD", "Options", options, _YIELD_OPTIONS)
        obj = _new(cls)
        obj.request = request
        obj.options = options
        if n > 3:
            obj.args, obj.kwargs, obj.payload = _parse_payload("YIELD", wmsg, 3, n, options)
        else:
            obj.args = obj.kwargs = obj.payload = None
        return obj

    def marshal(self):
        return [70, self.request, self.options, *_payload_tail(self, self.options)]


# ---------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------

#: message type code -> message class
MESSAGE_CLASSES: dict = {
    c.MESSAGE_TYPE: c
    for c in (
        Hello,
        Welcome,
        Abort,
        Challenge,
        Authenticate,
        Goodbye,
        Error,
        Publish,
        Published,
        Subscribe,
        Subscribed,
        Unsubscribe,
        Unsubscribed,
        Event,
        EventReceived,
        Call,
        Cancel,
        Result,
        Register,
        Registered,
        Unregister,
        Unregistered,
        Invocation,
        Interrupt,
        Yield,
    )
}

# type code -> bound parse classmethod (saves an attribute lookup per message)
_PARSERS = {code: cls.parse for code, cls in MESSAGE_CLASSES.items()}


def parse(wmsg) -> Message:
    """Build a message object from a decoded WAMP message (a list).

    Raises :class:`ProtocolError` for anything that is not a valid message:
    not a list, empty, a non-integer or unknown type code, or an invalid
    message of a known type.
    """
    if type(wmsg) is not list:
        raise ProtocolError(f"invalid message: expected a list, got {_tname(wmsg)}")
    if not wmsg:
        raise ProtocolError("invalid message: empty list")
    code = wmsg[0]
    # type() check first: True == 1 and 1.0 == 1 would otherwise hit the dict
    if type(code) is not int:
        raise ProtocolError(f"invalid message type {_short(code)}")
    p = _PARSERS.get(code)
    if p is None:
        raise ProtocolError(f"unknown message type {_short(code)}")
    return p(wmsg)
