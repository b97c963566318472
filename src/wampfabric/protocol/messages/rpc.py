"""Remote Procedure Call messages: CALL, CANCEL, RESULT, REGISTER, REGISTERED, UNREGISTER,
UNREGISTERED, INVOCATION, INTERRUPT, YIELD."""

from ..codes import (CALL, CANCEL, INTERRUPT, INVOCATION, REGISTER, REGISTERED, RESULT, UNREGISTER, UNREGISTERED,
                     YIELD)
from ..payload import payload_tail
from .base import (
    MAX_ID,
    Message,
    _BOOL,
    _FORWARD_FOR,
    _FORWARD_ONLY,
    _ID,
    _MATCH,
    _POSINT,
    _PPT_TABLE,
    _STR,
    _UINT,
    _check_meta,
    _err_id,
    _err_len,
    _err_type,
    _new,
    _one_of,
    _parse_payload,
)

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


class Call(Message):
    """``[CALL, Request|id, Options|dict, Procedure|uri(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "procedure", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = CALL
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
        return [CALL, self.request, self.options, self.procedure,
                *payload_tail(self.args, self.kwargs, self.payload, self.options)]


class Cancel(Message):
    """``[CANCEL, CALL.Request|id, Options|dict]``."""

    __slots__ = ("request", "options")
    MESSAGE_TYPE = CANCEL
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
        return [CANCEL, self.request, self.options]


class Result(Message):
    """``[RESULT, CALL.Request|id, Details|dict(, YIELD.Arguments|list(, YIELD.ArgumentsKw|dict))]``."""

    __slots__ = ("request", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = RESULT
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
        return [RESULT, self.request, self.details,
                *payload_tail(self.args, self.kwargs, self.payload, self.details)]


class Register(Message):
    """``[REGISTER, Request|id, Options|dict, Procedure|uri]``."""

    __slots__ = ("request", "procedure", "options")
    MESSAGE_TYPE = REGISTER
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
        return [REGISTER, self.request, self.options, self.procedure]


class Registered(Message):
    """``[REGISTERED, REGISTER.Request|id, Registration|id]``."""

    __slots__ = ("request", "registration")
    MESSAGE_TYPE = REGISTERED
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
        return [REGISTERED, self.request, self.registration]


class Unregister(Message):
    """``[UNREGISTER, Request|id, REGISTERED.Registration|id(, Options|dict)]``.

    As for UNSUBSCRIBE, the optional Options (``forward_for``) is an
    implementation-specific extension mentioned by the test vectors.
    """

    __slots__ = ("request", "registration", "options")
    MESSAGE_TYPE = UNREGISTER
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
            return [UNREGISTER, self.request, self.registration, self.options]
        return [UNREGISTER, self.request, self.registration]


class Unregistered(Message):
    """``[UNREGISTERED, UNREGISTER.Request|id(, Details|dict)]``.

    "Registration Revocation": ``[UNREGISTERED, 0, Details|dict]``.
    """

    __slots__ = ("request", "details")
    MESSAGE_TYPE = UNREGISTERED
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
            return [UNREGISTERED, self.request, self.details]
        return [UNREGISTERED, self.request]


class Invocation(Message):
    """``[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict
    (, CALL.Arguments|list(, CALL.ArgumentsKw|dict))]``."""

    __slots__ = ("request", "registration", "details", "args", "kwargs", "payload")
    MESSAGE_TYPE = INVOCATION
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
        return [INVOCATION, self.request, self.registration, self.details,
                *payload_tail(self.args, self.kwargs, self.payload, self.details)]


class Interrupt(Message):
    """``[INTERRUPT, INVOCATION.Request|id, Options|dict]``."""

    __slots__ = ("request", "options")
    MESSAGE_TYPE = INTERRUPT
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
        return [INTERRUPT, self.request, self.options]


class Yield(Message):
    """``[YIELD, INVOCATION.Request|id, Options|dict(, Arguments|list(, ArgumentsKw|dict))]``."""

    __slots__ = ("request", "options", "args", "kwargs", "payload")
    MESSAGE_TYPE = YIELD
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
        return [YIELD, self.request, self.options,
                *payload_tail(self.args, self.kwargs, self.payload, self.options)]
