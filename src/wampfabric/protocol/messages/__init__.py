"""WAMP message classes (Basic + Advanced Profile), sans-I/O.

Every class has

* ``MESSAGE_TYPE`` (the wire code) and ``NAME`` (used in error texts),
* ``__slots__`` and a keyword-friendly constructor (no validation: objects
  built by our own code are trusted),
* ``parse(wmsg)`` -- a classmethod building the object from the decoded wire
  list with strict validation, raising :class:`ProtocolError` with a text of
  the form ``"CALL: <what is wrong>"``,
* ``marshal()`` -- the wire list again.

The package-level :func:`parse` dispatches on ``wmsg[0]``.  The classes live in
one module per profile: ``session`` (HELLO ... GOODBYE), ``pubsub``, ``rpc``;
``base`` has the shared checks, the :class:`Message` base class and ERROR (the
reply of both profiles).  Import them from here.

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
Both layouts (see :mod:`wampfabric.protocol.payload`: ``[Payload|binary]``
with ``ppt_scheme``, Autobahn's bare binary with ``enc_*``) are accepted on
parse; the binary is stored in ``.payload`` (``args``/``kwargs`` are then
None).  ``marshal()`` writes the layout the message's Options/Details announce.
A bare binary is only accepted when a ``ppt_scheme`` or ``enc_algo`` attribute
announces passthru mode.

Empty Arguments / ArgumentsKw ("Empty Arguments and Keyword Arguments")
------------------------------------------------------------------------
Parsing keeps what was sent (``args == []`` stays ``[]``).  ``marshal()``
follows the spec's SHOULD: an empty/None ArgumentsKw is omitted, and an
empty/None Arguments list is omitted unless ArgumentsKw follows it.
"""

from ..errors import ProtocolError
from .base import ERROR_REQUEST_TYPES, MAX_ID, Error, Message, _short, _tname, is_valid_id, short_repr
from .pubsub import Event, EventReceived, Publish, Published, Subscribe, Subscribed, Unsubscribe, Unsubscribed
from .rpc import (Call, Cancel, Interrupt, Invocation, Register, Registered, Result, Unregister, Unregistered,
                  Yield)
from .session import Abort, Authenticate, Challenge, Goodbye, Hello, Welcome

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
    "ERROR_REQUEST_TYPES",
    "MESSAGE_CLASSES",
    "parse",
]

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
