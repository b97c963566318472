"""autobahn-python (asyncio) connection helper of the compat scenarios.

``await connect(url, serializer, ...)`` returns ``(session, details)`` once the
session joined, or raises ``Refused(reason, message)`` when the router answered
with ABORT (or closed the connection)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


class Refused(Exception):
    def __init__(self, reason, message=None):
        super().__init__(reason, message)
        self.reason = reason
        self.message = message


async def connect(url: str, serializer: str, realm: str = "realm1", authmethods=None, authid=None,
                  authextra=None, on_challenge=None, timeout: float = 15.0, source: str | None = None,
                  ssl_ctx=None):
    """``source``: the local address to connect from (e.g. 127.0.0.23), so that a router
    throttling failed authentications per peer address counts each case apart."""
    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class Session(ApplicationSession):
        def onConnect(self):
            self.join(self.config.realm, authmethods=authmethods, authid=authid, authextra=authextra)

        def onChallenge(self, challenge):
            return on_challenge(self, challenge)

        def onJoin(self, details):
            if not joined.done():
                joined.set_result((self, details))

        def onLeave(self, details):
            if not joined.done():
                joined.set_exception(Refused(details.reason, details.message))
            self.disconnect()

        def onDisconnect(self):
            if not joined.done():
                joined.set_exception(Refused("<connection closed>"))

    def make():
        return Session(ComponentConfig(realm))

    ser = SERIALIZERS[serializer]()
    u = urlparse(url)
    if u.scheme in ("ws", "wss"):
        if u.scheme == "wss":
            url = url.replace("wss://", "ws://", 1)  # the factory speaks plain WebSocket over our TLS socket
        factory = WampWebSocketClientFactory(make, url=url, serializers=[ser])
        factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    elif u.scheme == "rs":
        factory = WampRawSocketClientFactory(make, serializer=ser)
    else:
        raise ValueError(url)
    await loop.create_connection(factory, u.hostname, u.port, local_addr=(source, 0) if source else None,
                                 ssl=ssl_ctx, server_hostname=u.hostname if ssl_ctx else None)
    return await asyncio.wait_for(joined, timeout)


async def leave(session) -> None:
    """Leave (GOODBYE) and wait briefly for the transport to go."""
    if session.is_attached():
        try:
            await asyncio.wait_for(session.leave(), 3)
        except Exception:
            pass
    session.disconnect()
