"""What every WAMP message class shares: the id rule, the checks of Options/Details
and payload elements (raising :class:`ProtocolError` texts of the form ``"CALL: <what is
wrong>"``), :func:`short_repr` for error texts, the :class:`Message` base class, and
:class:`Error`, the reply of both profiles."""

from itertools import islice as _islice

from ..codes import CALL, ERROR, INVOCATION, PUBLISH, REGISTER, SUBSCRIBE, UNREGISTER, UNSUBSCRIBE
from ..errors import ProtocolError
from ..payload import payload_tail

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
_NO_TABLE: dict = {}
_ERROR_DETAILS = _PPT_TABLE
_FORWARD_ONLY = {"forward_for": _FORWARD_FOR}


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
# ERROR: the reply of both profiles
# ---------------------------------------------------------------------------


#: Request types an ERROR may answer.  Any other REQUEST.Type is a protocol
#: error (spec "Protocol Errors": "Receiving ERROR message with invalid
#: REQUEST.Type").
ERROR_REQUEST_TYPES = frozenset((PUBLISH, SUBSCRIBE, UNSUBSCRIBE, CALL, REGISTER, UNREGISTER, INVOCATION))


class Error(Message):
    """``[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri
    (, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request_type", "request", "details", "error", "args", "kwargs", "payload")
    MESSAGE_TYPE = ERROR
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
        return [ERROR, self.request_type, self.request, self.details, self.error,
                *payload_tail(self.args, self.kwargs, self.payload, self.details)]
