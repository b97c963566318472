"""Protocol-level exceptions and the error / close reason URIs predefined by WAMP.

The URIs are taken from the spec sections "Basic Profile URIs" and
"Advanced Profile URIs", plus a few that appear only in feature sections
(meta API, caller identification, call cancelling).
"""

__all__ = [
    "ProtocolError",
    "SerializationError",
]


class ProtocolError(Exception):
    """The peer violated the WAMP protocol (malformed or unexpected message).

    The message text says what is wrong, prefixed with the WAMP message name
    where one is known, e.g. ``"CALL: Request must be an id, got 0"``.
    Per spec section "Protocol Errors" the session is then aborted with
    ``wamp.error.protocol_violation``.
    """


class SerializationError(ProtocolError):
    """Bytes received could not be decoded (or an object could not be encoded)."""


# -- Session close reasons (GOODBYE / ABORT) ---------------------------------

CLOSE_NORMAL = "wamp.close.normal"
CLOSE_REALM = "wamp.close.close_realm"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
KILLED = "wamp.close.killed"

# -- Basic Profile errors ----------------------------------------------------

INVALID_URI = "wamp.error.invalid_uri"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
CANCELED = "wamp.error.canceled"
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NOT_AUTHORIZED = "wamp.error.not_authorized"
AUTHORIZATION_FAILED = "wamp.error.authorization_failed"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_SUCH_ROLE = "wamp.error.no_such_role"

# The Basic Profile RPC section ("Callee leaving") spells it with two 'l'.
# Both spellings are in the spec text; CANCELED is the one listed in the
# URI reference and the one to send.
CANCELLED = "wamp.error.cancelled"

# -- Advanced Profile: authentication ------------------------------------------

NO_MATCHING_AUTH_METHOD = "wamp.error.no_matching_auth_method"
NO_SUCH_PRINCIPAL = "wamp.error.no_such_principal"
AUTHENTICATION_DENIED = "wamp.error.authentication_denied"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
AUTHENTICATION_REQUIRED = "wamp.error.authentication_required"

# -- Advanced Profile: authorization -------------------------------------------

AUTHORIZATION_DENIED = "wamp.error.authorization_denied"
AUTHORIZATION_REQUIRED = "wamp.error.authorization_required"

# -- Advanced Profile: RPC -----------------------------------------------------

TIMEOUT = "wamp.error.timeout"
OPTION_NOT_ALLOWED = "wamp.error.option_not_allowed"
OPTION_DISALLOWED_DISCLOSE_ME = "wamp.error.option_disallowed.disclose_me"
# Spelling used in the "Caller Identification" section's example.
DISCLOSE_ME_NOT_ALLOWED = "wamp.error.disclose_me.not_allowed"
NETWORK_FAILURE = "wamp.error.network_failure"
UNAVAILABLE = "wamp.error.unavailable"
NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"

# -- Meta API ------------------------------------------------------------------

NO_SUCH_SESSION = "wamp.error.no_such_session"

# -- Not in the spec text, but used by Crossbar.io / Autobahn and expected by
# their clients (kept here so the router does not scatter string literals). --

NO_ELIGIBLE_CALLEE = "wamp.error.no_eligible_callee"
NOT_AUTHENTICATED = "wamp.error.not_authenticated"
