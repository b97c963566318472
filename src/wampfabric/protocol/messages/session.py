"""Session lifecycle messages: HELLO, WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE."""

from ..codes import ABORT, AUTHENTICATE, CHALLENGE, GOODBYE, HELLO, WELCOME
from ..errors import ProtocolError
from ..payload import args_tail
from .base import (
    MAX_ID,
    Message,
    _DICT_OR_NONE,
    _NO_TABLE,
    _ROLES,
    _STR,
    _STRS,
    _STR_OR_NONE,
    _check_meta,
    _err_id,
    _err_len,
    _err_type,
    _new,
)

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


class Hello(Message):
    """``[HELLO, Realm|uri, Details|dict]``.

    ``realm`` may be None: Crossbar.io's fabric shell and nodes send a JSON
    ``null`` realm (meaning "the global management realm"), which is not
    spec-valid but must be accepted by a compatible router.
    """

    __slots__ = ("realm", "details")
    MESSAGE_TYPE = HELLO
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
        return [HELLO, self.realm, self.details]


class Welcome(Message):
    """``[WELCOME, Session|id, Details|dict]``."""

    __slots__ = ("session", "details")
    MESSAGE_TYPE = WELCOME
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
        return [WELCOME, self.session, self.details]


class Abort(Message):
    """``[ABORT, Details|dict, Reason|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("details", "reason", "args", "kwargs")
    MESSAGE_TYPE = ABORT
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
        return [ABORT, self.details, self.reason, *args_tail(self.args, self.kwargs)]


class Challenge(Message):
    """``[CHALLENGE, AuthMethod|string, Extra|dict]``."""

    __slots__ = ("method", "extra")
    MESSAGE_TYPE = CHALLENGE
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
        return [CHALLENGE, self.method, self.extra]


class Authenticate(Message):
    """``[AUTHENTICATE, Signature|string, Extra|dict]``."""

    __slots__ = ("signature", "extra")
    MESSAGE_TYPE = AUTHENTICATE
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
        return [AUTHENTICATE, self.signature, self.extra]


class Goodbye(Message):
    """``[GOODBYE, Details|dict, Reason|uri]``."""

    __slots__ = ("details", "reason")
    MESSAGE_TYPE = GOODBYE
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
        return [GOODBYE, self.details, self.reason]
