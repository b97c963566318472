"""WAMP message type codes (spec "Message Codes and Direction"), defined once.

Everything that writes or dispatches on a message's first element uses these
names instead of bare numbers.  On hot paths, import the names as module
globals (``from ..protocol.codes import EVENT``); see the notes of the modules
that build messages per event or call for how they keep a literal's cost.
"""

HELLO = 1
WELCOME = 2
ABORT = 3
CHALLENGE = 4
AUTHENTICATE = 5
GOODBYE = 6
ERROR = 8
PUBLISH = 16
PUBLISHED = 17
SUBSCRIBE = 32
SUBSCRIBED = 33
UNSUBSCRIBE = 34
UNSUBSCRIBED = 35
EVENT = 36
# acknowledged event delivery: not in the spec text; Autobahn's and the test vectors' provisional code
EVENT_RECEIVED = 337
CALL = 48
CANCEL = 49
RESULT = 50
REGISTER = 64
REGISTERED = 65
UNREGISTER = 66
UNREGISTERED = 67
INVOCATION = 68
INTERRUPT = 69
YIELD = 70

#: code -> the message's name as the spec writes it (used in error and log texts)
NAMES = {
    code: name
    for name, code in tuple(globals().items())
    if name.isupper() and type(code) is int
}

__all__ = [*NAMES.values(), "NAMES"]
