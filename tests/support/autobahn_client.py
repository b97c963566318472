"""autobahn-python (asyncio) client helpers: ``connect`` a session to a test node over WebSocket
(over TCP or a Unix socket), RawSocket over TCP or RawSocket over a Unix socket with any serializer,
await with a timeout (``w``), unique URI suffixes (``uid``) and ``expect_error``.  The ``client``
fixture (tests/conftest.py) closes the sessions it made after the test."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from urllib.parse import urlparse

import pytest
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig, SubscribeOptions

TRANSPORTS = ["websocket", "rawsocket-tcp", "rawsocket-unix"]
SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
# WebSocket only (wamp.2.<name>.batched); autobahn-python's batched JSON ends messages with 0x18
BATCHED = {f"{name}.batched": (lambda cls=cls: cls(batched=True)) for name, cls in SERIALIZERS.items()}
COMBOS = [pytest.param(t, s, id=f"{t}-{s}") for t, s in itertools.product(TRANSPORTS, SERIALIZERS)]
# one combo per transport and per serializer: cheap coverage of everything
DIAGONAL = [
    pytest.param("websocket", "json", id="websocket-json"),
    pytest.param("rawsocket-tcp", "msgpack", id="rawsocket-tcp-msgpack"),
    pytest.param("rawsocket-unix", "cbor", id="rawsocket-unix-cbor"),
]

TIMEOUT = 5.0


async def w(aw, timeout: float = TIMEOUT):
    """Await *aw* with a timeout (every network wait of the tests that use this goes through here)."""
    return await asyncio.wait_for(aw, timeout)


def uid() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# autobahn client helper


class JoinFailed(Exception):
    """The router answered HELLO with ABORT (or closed the transport)."""

    def __init__(self, reason: str, message: str | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class Client(ApplicationSession):
    """ApplicationSession exposing join/leave/disconnect as futures."""

    def __init__(self, config):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined: asyncio.Future = loop.create_future()
        self.left: asyncio.Future = loop.create_future()
        self.disconnected: asyncio.Future = loop.create_future()

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(details.reason, details.message))
        return super().onLeave(details)

    def onDisconnect(self):
        if not self.disconnected.done():
            self.disconnected.set_result(True)
        if not self.joined.done():
            self.joined.set_exception(JoinFailed("transport closed before WELCOME"))
        return super().onDisconnect()

    async def shutdown(self):
        """Leave (if joined) and close the transport, quietly."""
        try:
            if self.is_attached() and not self.left.done():
                self.leave()
                await asyncio.wait_for(asyncio.shield(self.left), 2)
        except Exception:
            pass
        try:
            if self._transport is not None:
                self.disconnect()
            await asyncio.wait_for(asyncio.shield(self.disconnected), 2)
        except Exception:
            pass


async def connect(node, transport: str = "websocket", serializer: str = "json", realm: str | None = None, url: str | None = None,
                  unix_path: str | None = None) -> Client:
    """Connect an autobahn session to *node* and wait until it joined (``websocket`` with
    *unix_path*: WebSocket over that Unix socket, *url* only naming the request).

    Raises :class:`JoinFailed` if the router refuses the session.
    """
    loop = asyncio.get_running_loop()
    created: list[Client] = []

    def make_session():
        s = Client(ComponentConfig(realm=realm or node.realm))
        created.append(s)
        return s

    ser = SERIALIZERS[serializer]() if serializer in SERIALIZERS else BATCHED[serializer]()
    if transport == "websocket":
        url = url or node.ws_url
        u = urlparse(url)
        factory = WampWebSocketClientFactory(make_session, url=url, serializers=[ser])
        if unix_path is not None:
            await w(loop.create_unix_connection(factory, unix_path))
        else:
            await w(loop.create_connection(factory, u.hostname, u.port))
    elif transport == "rawsocket-tcp":
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        await w(loop.create_connection(factory, "127.0.0.1", node.rawsocket_port))
    elif transport == "rawsocket-unix":
        factory = WampRawSocketClientFactory(make_session, serializer=ser)
        await w(loop.create_unix_connection(factory, node.rawsocket_path))
    else:
        raise ValueError(transport)
    # the session object is created once the transport (incl. handshake) is up
    for _ in range(int(TIMEOUT / 0.01)):
        if created:
            break
        await asyncio.sleep(0.01)
    assert created, f"no WAMP session created on {transport}/{serializer}"
    session = created[0]
    try:
        await w(asyncio.shield(session.joined))
    except BaseException:
        await session.shutdown()
        raise
    return session


async def expect_error(aw, uri: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as ei:
        await w(aw)
    assert ei.value.error == uri, f"expected {uri}, got {ei.value.error} {ei.value.args}"
    return ei.value


class Events:
    """An autobahn event handler that records (args, kwargs, details)."""

    def __init__(self):
        self.items: list = []

    def __call__(self, *args, details=None, **kwargs):
        self.items.append((list(args), kwargs, details))

    @property
    def args(self) -> list:
        return [a for a, _, _ in self.items]

    async def wait(self, n: int, timeout: float = TIMEOUT) -> list:
        """Wait until at least ``n`` events arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.items) < n:
            if loop.time() > deadline:
                raise TimeoutError(f"expected {n} events, got {self.items!r}")
            await asyncio.sleep(0.005)
        return self.items


async def subscribe(session, topic, **opts) -> tuple[Events, object]:
    ev = Events()
    sub = await w(session.subscribe(ev, topic, options=SubscribeOptions(details_arg="details", **opts)))
    return ev, sub


async def until(cond, timeout: float = TIMEOUT, what: str = "condition"):
    """Wait until ``cond()`` is true; return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.005)


async def closing_sessions(node, open_):
    """For a fixture: yield ``open_`` (``await open_(...)`` -> a joined session) wrapped so that,
    when resumed after the test, every session it opened is closed and ``node`` is checked alive."""
    opened = []

    async def _open(*args, **kw):
        s = await open_(*args, **kw)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        await s.shutdown()
    node.assert_alive()
