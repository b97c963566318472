"""The defaults of node config options: what a transport, realm or worker uses when its config
leaves an option out.  Defined here once, beside the checkers of the same options; the
transports, the router core and the workers read them from here (no copy elsewhere).

Times are in the config's units (milliseconds for transport options, microseconds for
``busy_poll_us``, seconds for ``auth_throttle``); sizes in bytes.
"""

from __future__ import annotations

from ..protocol.rawsocket import MAX_FRAME_LENGTH
from ..protocol import uri as _uri

# -- transports (websocket, rawsocket, web paths, universal) ------------------------------

# serializers offered when a transport lists none (in this order of preference)
SERIALIZERS = ("cbor", "msgpack", "json")
# max_message_size: the RawSocket protocol's own limit (a frame's length has 24 bits), which
# WebSocket transports share so that a message fits both
MAX_MESSAGE_SIZE = MAX_FRAME_LENGTH
# max_outgoing_buffer: bytes held for a peer that does not read before it is cut off
MAX_OUTGOING_BUFFER = 64 * 1024 * 1024
# hello_timeout (ms; 0: no limit): HELLO must come this soon after the transport handshake
HELLO_TIMEOUT_MS = 10_000
# open_handshake_timeout (ms): the WebSocket opening handshake
OPEN_HANDSHAKE_TIMEOUT_MS = 10_000
# auto_ping_interval, auto_ping_timeout (ms; 0: no pings; a timeout of 0 waits one interval)
AUTO_PING_INTERVAL_MS = 0
AUTO_PING_TIMEOUT_MS = 0
# allow_null_origin: the opaque origin "null" (file://, sandboxed frames) may connect
ALLOW_NULL_ORIGIN = True
# cookie (cookie-tracked WebSocket transports): name, length of the id, max_age (seconds)
COOKIE_NAME = "cbtid"
COOKIE_LENGTH = 24
COOKIE_MAX_AGE = 10 * 86_400

# -- realms ----------------------------------------------------------------------------------

URI_CHECK = "loose"
ENABLE_META_API = True
# max_uri_length (characters): the URI rules' own default (protocol/uri.py)
MAX_URI_LENGTH = _uri.MAX_URI_LENGTH
# max_pending_calls / max_pending_invocations: outstanding calls per caller / invocations per
# callee before further ones are refused
MAX_PENDING_CALLS = 10_000
MAX_PENDING_INVOCATIONS = 100_000
# default_call_timeout (ms) of calls that set none; 0: no timeout
DEFAULT_CALL_TIMEOUT = 0
# max_retained_bytes / max_history_bytes: bytes of kept events per realm
MAX_RETAINED_BYTES = 64 * 1024 * 1024
MAX_HISTORY_BYTES = 64 * 1024 * 1024
# store "limit" (and an event-history entry's, which defaults to the store's): events kept per entry
HISTORY_LIMIT = 100

# -- workers ---------------------------------------------------------------------------------

# router worker option busy_poll_us: the longest poll after a turn with output (0: off)
BUSY_POLL_US = 300
# router worker option auth_throttle (router/auth.py AuthThrottle)
AUTH_THROTTLE = {
    "address_failures": 10, "address_window": 60.0, "authid_failures": 10, "authid_window": 60.0,
    "delay": 1.0, "max_delay": 30.0, "max_pending": 4, "max_tracked": 10_000,
}
# native and guest worker option restart
RESTART = "restart-never"
# container worker option shutdown
CONTAINER_SHUTDOWN = "shutdown-manual"

# -- controller -------------------------------------------------------------------------------

# controller option shutdown_timeout (seconds): how long a stopping worker may take before it is killed
SHUTDOWN_TIMEOUT = 10.0
