"""WAMP over RawSocket (spec: advanced/transport_rawsocket) on an asyncio
Protocol: handshake with serializer and max-length negotiation, the spec's
error replies, framing from the sans-I/O ``protocol.rawsocket`` module."""

from __future__ import annotations

import asyncio
import logging

from ..config import defaults
from ..protocol import rawsocket as rs
from ..protocol.errors import ProtocolError
from ..protocol.serializers import SERIALIZERS_BY_RAWSOCKET_ID
from ..router.session import RouterSession
from .coalesce import FLUSH_STEP, Coalescer, QueuedWriter, release_memory, reset_connection, watch_writes
from .endpoints import HelloTimer, PeerOfConnection, channel_id, peer_certificate

log = logging.getLogger("wampfabric.transport.rawsocket")

HANDSHAKE_TIMEOUT = 10.0


class RawSocketServerFactory:
    """The settings of one RawSocket listener (a ``rawsocket`` transport, or the ``rawsocket``
    part of a ``universal`` one) and the factory of its connections' protocols."""

    def __init__(self, router, config: dict):
        self.router = router
        self.config = config
        options = config.get("options", {})
        names = config.get("serializers") or defaults.SERIALIZERS
        self.serializers = {
            sid: ser for sid, ser in SERIALIZERS_BY_RAWSOCKET_ID.items() if ser.NAME in names
        }
        limit = options.get("max_message_size") or config.get("max_message_size") or defaults.MAX_MESSAGE_SIZE
        self.max_outgoing_buffer = options.get("max_outgoing_buffer") or defaults.MAX_OUTGOING_BUFFER
        self.auth_config = config.get("auth")
        # HELLO must come this soon after the RawSocket handshake (and after a GOODBYE); 0: no limit
        self.hello_timeout = options.get("hello_timeout", defaults.HELLO_TIMEOUT_MS) / 1000.0
        # we announce (and enforce) the largest 2**(9+e) not above the configured limit
        self.length_exponent = rs.length_exponent(limit)
        self.max_message_size = rs.max_length(self.length_exponent)
        self.coalescer = Coalescer(asyncio.get_running_loop())

    def __call__(self) -> "WampRawSocketProtocol":
        return WampRawSocketProtocol(self)


class WampRawSocketProtocol(PeerOfConnection, HelloTimer, QueuedWriter, asyncio.Protocol):
    """One RawSocket connection; it is the session's transport."""

    __slots__ = ("factory", "auth_config", "serializer", "session", "_transport", "_handshake", "_reader",
                 "_peer_max", "_closed", "_timer", "_out", "_out_size", "_limit", "_backlog", "_peer")

    def __init__(self, factory: RawSocketServerFactory):
        self.factory = factory
        self.auth_config = factory.auth_config
        self.serializer = None
        self.session = None
        self._transport = None
        self._handshake = b""
        self._reader = None
        self._peer_max = 0
        self._closed = False
        self._timer = None
        self._out: list = []
        self._out_size = 0
        self._limit = FLUSH_STEP
        self._backlog = None
        self._peer = None

    def connection_made(self, transport):
        self._transport = transport
        watch_writes(transport)
        self._timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def _handshake_timeout(self):
        self._timer = None
        if self._reader is None and not self._closed:
            log.info("closing RawSocket connection %s: no handshake within %ss", self.peer, HANDSHAKE_TIMEOUT)
            self._abort()

    def data_received(self, data: bytes):
        if self._reader is None:
            self._handshake += data
            if len(self._handshake) < 4:
                return
            hs, rest = self._handshake[:4], self._handshake[4:]
            self._handshake = b""
            if not self._on_handshake(hs):
                return
            if not rest:
                return
            data = rest
        try:
            frames = self._reader.feed(data)
        except ProtocolError as e:
            log.info("closing RawSocket connection %s: %s", self.peer, e)
            self._abort()
            return
        session = self.session
        for ftype, payload in frames:
            if ftype == 0:
                session.on_message(payload)
                if self._closed:
                    return
            elif ftype == 1:  # PING: answer with a PONG carrying the same payload
                self._queue(rs.frame_header(2, len(payload)), payload)
            # PONG: nothing to do

    def _on_handshake(self, hs: bytes) -> bool:
        try:
            exp, ser_id = rs.parse_handshake(hs, self.factory.serializers)
        except rs.RawSocketHandshakeError as e:
            if e.code is None:
                # not RawSocket at all (wrong magic octet): drop the connection
                log.info("closing connection %s: %s", self.peer, e)
                self._abort()
            else:
                self._refuse(e.code)
            return False
        self.serializer = self.factory.serializers[ser_id]
        self._peer_max = 1 << (9 + exp)
        self._transport.write(rs.build_handshake_reply(self.factory.length_exponent, ser_id))
        self._reader = rs.FrameReader(self.factory.max_message_size)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session = RouterSession(self.factory.router, self)
        self.expect_hello()
        return True

    def _close_idle(self) -> None:
        self._abort()

    def _refuse(self, code: int) -> None:
        log.info("refusing RawSocket handshake from %s (error %d)", self.peer, code)
        self._transport.write(rs.build_error_reply(code))
        self._closed = True
        self._transport.close()

    def connection_lost(self, exc):
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is not None:
            self.session.on_close()

    # -- transport interface for RouterSession ---------------------------------------

    transport_type = "rawsocket"

    def channel_id(self, kind: str) -> bytes | None:
        return channel_id(self._transport, kind)

    def peer_cert(self) -> dict | None:
        return peer_certificate(self._transport)

    def send(self, data: bytes) -> None:
        if self._closed:
            return
        n = len(data)
        if n > self._peer_max:
            log.warning("closing RawSocket connection %s: message of %d bytes exceeds the peer's maximum %d",
                        self.peer, n, self._peer_max)
            self._abort()
            return
        self._queue(rs.frame_header(0, n), data)

    def _stream(self):
        return self._transport

    def _overflow(self) -> None:
        log.warning("closing RawSocket connection %s: peer does not read, outgoing buffer above %d bytes",
                    self.peer, self.factory.max_outgoing_buffer)
        self._closed = True
        self._drop_output()
        reset_connection(self._transport)
        release_memory()

    def close(self) -> None:
        if not self._closed:
            self.flush_all()
            self._closed = True
            self._transport.close()

    def _abort(self) -> None:
        self._closed = True
        self._drop_output()
        self._transport.abort()
