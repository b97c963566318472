"""Tiny raw WAMP peers for tests: no WAMP library, just sockets and codecs.

Used where a real WAMP client library would refuse (or check client-side)
what a test wants to put on the wire: invalid URIs, unknown subscription ids,
protocol violations, broken handshakes, oversized frames ...

The raw peer itself is ``wampfabric.client.raw`` (shared with the load
generator); this module keeps the names the tests import and adds:

* :class:`WebSocketPeer`, WAMP-over-WebSocket via the ``websockets`` sync
  client (a test dependency).

:class:`RawSocketPeer` (RawSocket over TCP or a Unix socket) and
:class:`WebSocketPeer` are synchronous and expose the same small API:
``send(msg)``, ``send_bytes(payload)``, ``recv(timeout)`` (``None`` once the
router closed the connection), ``hello(realm)``, ``request(msg)`` and ``close()``.
"""

from __future__ import annotations

from wampfabric.client.raw import (  # noqa: F401  (the names the tests import)
    ABORT,
    CALL,
    CLIENT_ROLES,
    DEFAULT_TIMEOUT,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INVOCATION,
    OP_BINARY,
    PUBLISH,
    PUBLISHED,
    RAWSOCKET_SERIALIZER_IDS,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTER,
    UNREGISTERED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    WELCOME,
    YIELD,
    Closed,
    RawSocketPeer,
    abort_socket,
    decode,
    encode,
    open_socket,
    rawsocket_frame,
    rawsocket_handshake_bytes,
    recv_exactly,
    wait_closed,
    ws_frame,
    ws_handshake_socket,
    ws_upgrade_request,
)
from wampfabric.client.raw import Peer as _Peer


class WebSocketPeer(_Peer):
    """WAMP-over-WebSocket using the ``websockets`` sync client."""

    def __init__(self, url: str, serializer: str = "json", subprotocols: list[str] | None = None):
        super().__init__()
        from websockets.sync.client import connect

        self.serializer = serializer
        # ``connect(...).__enter__()``: a connection without the ``with`` block, on websockets
        # versions where connect() returns the connection and on those where it is a context manager
        self.ws = connect(
            url,
            subprotocols=subprotocols or [f"wamp.2.{serializer}"],
            proxy=None,
            compression=None,
            max_size=None,
            open_timeout=DEFAULT_TIMEOUT,
            close_timeout=1,
            ping_interval=None,
        ).__enter__()

    def send_bytes(self, payload: bytes) -> None:
        # WAMP-over-WebSocket: JSON goes in text frames, binary serializers in binary frames
        if self.serializer == "json":
            self.ws.send(payload.decode("utf8"))
        else:
            self.ws.send(payload)

    def send_frame(self, payload: bytes | str) -> None:
        """Send *payload* as is (``str`` -> text frame, ``bytes`` -> binary frame)."""
        self.ws.send(payload)

    def recv_bytes(self, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        from websockets.exceptions import ConnectionClosed

        try:
            data = self.ws.recv(timeout=timeout)
        except ConnectionClosed:
            return None
        except TimeoutError:
            raise TimeoutError(f"nothing received within {timeout}s") from None
        return data.encode("utf8") if isinstance(data, str) else data

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
