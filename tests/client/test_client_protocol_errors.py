"""The network client facing a router that breaks the protocol (a fake router over real
RawSocket and WebSocket connections): the session is closed with ABORT
``wamp.error.protocol_violation``, whoever waits gets an error saying what was wrong, and
nothing crashes.  Also the reconnecting ``Client``'s backoff (bounded, jittered, stops on
close) and the transport URLs and configs it accepts."""

from __future__ import annotations

import asyncio
import logging

import pytest
from websockets.asyncio.server import serve

from support.nodes import free_port
from wampfabric.client import ApplicationError, Backoff, Client, TransportConfigError, connect, transport_spec
from wampfabric.protocol import rawsocket as rs
from wampfabric.protocol.codes import ABORT, CALL, HELLO, REGISTERED, RESULT, SUBSCRIBE, WELCOME
from wampfabric.protocol.serializers import create_serializer

ROLES = {"broker": {}, "dealer": {}}
WELCOME_MSG = [WELCOME, 1234, {"roles": ROLES, "realm": "realm1", "authid": "a", "authrole": "anonymous"}]


class FakeRouter:
    """Answers each received message with what ``respond(msg)`` returns: lists are
    serialized, bytes sent as they are.  ``received`` keeps what the client sent."""

    def __init__(self, respond, serializer="json"):
        self.respond = respond
        self.serializer = create_serializer(serializer)
        self.received: list = []
        self.server = None
        self.port = free_port()

    def _outgoing(self, msg):
        self.received.append(msg)
        for out in self.respond(msg) or ():
            yield out if isinstance(out, bytes) else self.serializer.serialize(out)

    async def start_rawsocket(self):
        async def handle(reader, writer):
            try:
                await reader.readexactly(4)
                writer.write(rs.build_handshake_reply(15, self.serializer.RAWSOCKET_ID))
                frames = rs.FrameReader(rs.MAX_FRAME_LENGTH)
                while data := await reader.read(65536):
                    for _, payload in frames.feed(data):
                        for out in self._outgoing(self.serializer.unserialize_one(payload)):
                            writer.write(rs.encode_frame(out))
            except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        return f"rs://127.0.0.1:{self.port}"

    async def start_websocket(self):
        async def handle(ws):
            async for data in ws:
                for out in self._outgoing(self.serializer.unserialize_one(data)):
                    await ws.send(out.decode("utf8", "replace") if not self.serializer.BINARY else out)

        self.server = await serve(handle, "127.0.0.1", self.port, subprotocols=[self.serializer.SUBPROTOCOL])
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self, kind):
        return await (self.start_rawsocket() if kind == "rawsocket" else self.start_websocket())

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def on_hello(*replies):
    return lambda msg: replies if msg[0] == HELLO else ()


CASES = {
    "undecodable": (on_hello(b"{not json"), "undecodable json message"),
    "invalid-welcome": (on_hello([WELCOME, "not-an-id", {"roles": ROLES}]), "WELCOME: Session"),
    "welcome-without-roles": (on_hello([WELCOME, 1234, {}]), "WELCOME: Details.roles is missing"),
    "router-bound-message": (on_hello([CALL, 1, {}, "com.example.proc"]), "a client does not accept CALL"),
    "not-a-message": (on_hello([]), "invalid message: empty list"),
    "result-before-welcome": (on_hello([RESULT, 1, {}]), "RESULT before the session was established"),
}


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_malformed_message_while_joining_aborts_with_a_clear_error(kind, case, caplog):
    respond, expected = CASES[case]
    router = FakeRouter(respond)
    url = await router.start(kind)
    try:
        with caplog.at_level(logging.WARNING, logger="wampfabric.client"):
            with pytest.raises(ApplicationError) as e:
                await connect(url, "realm1", serializers=["json"], timeout=5)
        assert e.value.error == "wamp.error.protocol_violation"
        assert expected in str(e.value)
        await asyncio.sleep(0.05)
        aborts = [m for m in router.received if m[0] == ABORT]
        assert aborts and aborts[0][2] == "wamp.error.protocol_violation" and expected in aborts[0][1]["message"]
        assert not [r for r in caplog.records if r.exc_info], "no tracebacks"
    finally:
        await router.stop()


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
async def test_a_malformed_reply_closes_an_established_session(kind, caplog):
    def respond(msg):
        if msg[0] == HELLO:
            return [WELCOME_MSG]
        if msg[0] == CALL:  # a RESULT whose request is not an id
            return [[RESULT, "one", {}]]
        return ()

    router = FakeRouter(respond)
    url = await router.start(kind)
    try:
        s = await connect(url, "realm1", serializers=["json"], timeout=5)
        left = []
        s.on_leave.append(left.append)
        with pytest.raises(ApplicationError) as e:
            await asyncio.wait_for(s.call("com.example.proc"), 5)
        assert e.value.error == "wamp.error.protocol_violation" and "RESULT: Request" in str(e.value)
        assert not s.is_attached and left == ["wamp.error.protocol_violation"]
        assert s.close_reason[0] == "wamp.error.protocol_violation"
        await asyncio.sleep(0.05)
        assert router.received[-1][0] == ABORT
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        await router.stop()


async def test_a_reply_of_the_wrong_kind_is_a_protocol_violation():
    def respond(msg):
        if msg[0] == HELLO:
            return [WELCOME_MSG]
        if msg[0] == SUBSCRIBE:  # answered as if it were a REGISTER
            return [[REGISTERED, msg[1], 77]]
        return ()

    router = FakeRouter(respond)
    url = await router.start("rawsocket")
    try:
        s = await connect(url, "realm1", serializers=["json"])
        with pytest.raises(ApplicationError) as e:
            await s.subscribe("com.example.topic", print)
        assert "REGISTERED for request 1, which is a SUBSCRIBE" in str(e.value)
    finally:
        await router.stop()


# -- reconnecting ---------------------------------------------------------------------------


def test_backoff_is_bounded_and_jittered():
    b = Backoff(initial=0.5, maximum=4.0, factor=2.0, jitter=0.5)
    for attempt in range(1, 30):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = {b.delay(attempt) for _ in range(20)}
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert Backoff(initial=1, maximum=1, jitter=0).delay(50) == 1
    with pytest.raises(ValueError):
        Backoff(initial=2, maximum=1)


async def test_client_retries_while_the_router_is_away_and_stops_on_close():
    failures = []
    client = Client(f"rs://127.0.0.1:{free_port()}", "realm1", backoff=Backoff(initial=0.02, maximum=0.05),
                    on_failure=lambda e, attempt, delay: failures.append((type(e), attempt, delay))).start()
    while len(failures) < 3:
        await asyncio.sleep(0.01)
    assert [a for _, a, _ in failures[:3]] == [1, 2, 3] and all(d <= 0.05 for _, _, d in failures)
    assert all(issubclass(t, OSError) for t, _, _ in failures)
    await client.close()
    n = len(failures)
    await asyncio.sleep(0.2)
    assert len(failures) == n and client.closed
    with pytest.raises(ConnectionError):
        await client.session()


async def test_client_gives_up_after_max_attempts():
    client = Client(f"rs://127.0.0.1:{free_port()}", "realm1",
                    backoff=Backoff(initial=0.01, maximum=0.02, max_attempts=3))
    with pytest.raises(ConnectionError) as e:
        await client.session(timeout=5)
    assert "ConnectionRefusedError" in str(e.value) or "Connect call failed" in str(e.value)
    assert client.attempts == 3
    await client.close()


async def test_client_stops_when_the_failure_hook_says_so():
    client = Client(f"rs://127.0.0.1:{free_port()}", "realm1", backoff=Backoff(initial=0.01),
                    on_failure=lambda e, attempt, delay: attempt < 2)
    with pytest.raises(ConnectionError):
        await client.session(timeout=5)
    assert client.attempts == 2
    await client.close()


# -- where to connect ----------------------------------------------------------------------


def test_transport_urls_and_configs():
    ws = transport_spec("wss://example.org/ws", serializers=["msgpack"])
    assert (ws.kind, ws.host, ws.port, ws.url, ws.serializers) == ("websocket", "example.org", 443,
                                                                    "wss://example.org/ws", ["msgpack"])
    assert ws.ssl is not None
    rs_ = transport_spec("rs://127.0.0.1:8081")
    assert (rs_.kind, rs_.port, rs_.ssl) == ("rawsocket", 8081, None)
    unix = transport_spec({"type": "rawsocket", "serializer": "json", "endpoint": {"type": "unix", "path": "r.sock"}},
                          cbdir="/node")
    assert (unix.path, unix.serializers) == ("/node/r.sock", ["json"])
    cfg = transport_spec({"type": "websocket", "url": "ws://localhost:9000/ws", "options": {"auto_ping_interval": 10000},
                          "endpoint": {"type": "tcp", "host": "localhost", "port": 9000, "timeout": 3}})
    assert (cfg.url, cfg.timeout, cfg.auto_ping_interval) == ("ws://localhost:9000/ws", 3.0, 10.0)


@pytest.mark.parametrize("bad, text", [
    ("http://example.org/", "unknown scheme 'http'"),
    ("rs://127.0.0.1", "a RawSocket URL needs a port"),
    ({"type": "mqtt", "endpoint": {}}, "transport type 'mqtt'"),
    ({"type": "websocket", "endpoint": {"type": "tcp", "host": "h"}}, "tcp endpoint without a port"),
    ({"type": "rawsocket", "serializer": "ubjson", "endpoint": {"type": "unix", "path": "x"}}, "unknown serializer"),
])
def test_transport_errors_say_what_is_wrong(bad, text):
    with pytest.raises(TransportConfigError) as e:
        transport_spec(bad)
    assert text in str(e.value)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_websocket_over_a_unix_socket_on_either_event_loop(loop, tmp_path):
    """picows sets TCP options on every connection; over a Unix socket the client must not."""
    import uvloop
    from websockets.asyncio.server import unix_serve

    ser = create_serializer("json")
    path = str(tmp_path / "router.sock")

    async def handle(ws):
        async for data in ws:
            if ser.unserialize_one(data)[0] == HELLO:
                await ws.send(ser.serialize(WELCOME_MSG).decode())

    async def main():
        async with await unix_serve(handle, path, subprotocols=["wamp.2.json"]):
            s = await connect({"type": "websocket", "url": "ws://localhost/", "serializers": ["json"],
                               "endpoint": {"type": "unix", "path": path, "timeout": 5}}, "realm1")
            assert s.session_id == 1234
            s.transport.close()

    (uvloop.run if loop == "uvloop" else asyncio.run)(main())
