"""The network client (``wampfabric.client``) against real routers: a wampfabric node and
Crossbar.io 26.10 (skipped when bench/.venv-crossbar is absent), both started from the same
Crossbar.io config.  Every transport (WebSocket and RawSocket over TCP, TLS and Unix
sockets) with every serializer; ticket and cryptosign authentication with right and wrong
credentials, cryptosign bound to the TLS channel; progressive results and cancel; and the
reconnecting ``Client`` riding out a router that is killed and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.nodes import REPO, Node, free_port, start_node, stop_node, wait_port
from support.tls import make_ed_key, make_pki
from wampfabric.client import ApplicationError, Backoff, Client, Cryptosign, Ticket, connect

CROSSBAR = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"
PERMS = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
          "disclose": {"caller": True, "publisher": True}, "cache": True}]
TICKET = "s3cret-ticket"


def client_config(pki: dict, user_key: str):
    """Every client-facing transport kind, anonymous; one TCP WebSocket with ticket and
    cryptosign; the TLS WebSocket with anonymous and cryptosign."""

    def config(ports, rs_path):
        ports.clear()
        ports.update(ws=free_port(), rs=free_port(), wss=free_port(), rss=free_port(), auth=free_port())
        root = Path(rs_path).parent
        tls = {"key": pki["server.key"], "certificate": pki["server.pem"]}
        sers = ["json", "msgpack", "cbor"]
        cryptosign = {"type": "static", "principals": {"carol": {"authorized_keys": [user_key], "role": "user"}}}
        anonymous = {"type": "static", "role": "anonymous"}

        def tcp(port, **extra):
            return {"type": "tcp", "interface": "127.0.0.1", "port": ports[port], **extra}

        return {"version": 2, "controller": {}, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
            {"name": "anonymous", "permissions": PERMS}, {"name": "user", "permissions": PERMS}]}],
            "transports": [
                {"type": "websocket", "endpoint": tcp("ws"), "serializers": sers},
                {"type": "websocket", "endpoint": {"type": "unix", "path": str(root / "ws.sock")}, "serializers": sers},
                {"type": "rawsocket", "endpoint": tcp("rs"), "serializers": sers},
                {"type": "rawsocket", "endpoint": {"type": "unix", "path": rs_path}, "serializers": sers},
                {"type": "websocket", "endpoint": tcp("wss", tls=tls), "serializers": sers,
                 "auth": {"anonymous": anonymous, "cryptosign": cryptosign}},
                {"type": "rawsocket", "endpoint": tcp("rss", tls=tls), "serializers": sers},
                {"type": "websocket", "endpoint": tcp("auth"), "serializers": sers,
                 "auth": {"ticket": {"type": "static", "principals": {"bob": {"ticket": TICKET, "role": "user"}}},
                          "cryptosign": cryptosign}},
            ]}]}

    return config


def start_router(kind: str, config_factory) -> Node:
    with pytest.MonkeyPatch.context() as mp:
        if kind == "crossbar":
            mp.setenv("WAMPFABRIC_TEST_AGAINST", "crossbar")
        else:
            mp.delenv("WAMPFABRIC_TEST_AGAINST", raising=False)
        return start_node(config_factory)


def kill_router(node: Node) -> None:
    try:
        os.killpg(node.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    node.proc.wait()


def restart_router(kind: str, node: Node) -> None:
    """Start the router again in its node directory, on the same ports."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("WAMPFABRIC_TEST_AGAINST", None)
    if kind == "crossbar":
        env["WAMPFABRIC_TEST_AGAINST"] = "crossbar"
    cmd = [str(CROSSBAR), "start", "--cbdir", str(node.cbdir)] if kind == "crossbar" else \
        [sys.executable, "-m", "wampfabric", "start", "--cbdir", str(node.cbdir)]
    for sock in node.root.glob("*.sock"):
        sock.unlink()
    with open(node.log_path, "ab") as logf:
        node.proc = subprocess.Popen(cmd, cwd=node.root, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
    for port in node.ports.values():
        wait_port(port, node.proc)


@pytest.fixture(scope="module")
def keys():
    return {"user": make_ed_key(), "stranger": make_ed_key()}


@pytest.fixture(scope="module", params=["wampfabric", "crossbar"])
def router(request, tmp_path_factory, keys):
    kind = request.param
    if kind == "crossbar" and not CROSSBAR.exists():
        pytest.skip("Crossbar.io is not installed (bench/setup_crossbar.sh)")
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    node = start_router(kind, client_config(pki, keys["user"][1]))
    node.kind = kind
    node.pki = pki
    yield node
    stop_node(node)


def client_tls(router) -> dict:
    """The Crossbar.io connecting endpoint ``tls`` for the test CA."""
    return {"hostname": "localhost", "ca_certificates": [router.pki["ca.pem"]]}


def transport(router, name: str, serializer: str):
    """A transport config (Crossbar.io's connecting transport format) of the router's transport ``name``."""
    p = router.ports
    unix_ws = str(router.root / "ws.sock")
    return {
        "ws": {"type": "websocket", "url": f"ws://127.0.0.1:{p['ws']}/", "serializers": [serializer],
               "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p["ws"]}},
        "ws-unix": {"type": "websocket", "url": "ws://localhost/", "serializers": [serializer],
                    "endpoint": {"type": "unix", "path": unix_ws}},
        "wss": {"type": "websocket", "url": f"wss://localhost:{p['wss']}/", "serializers": [serializer],
                "endpoint": {"type": "tcp", "host": "localhost", "port": p["wss"], "tls": client_tls(router)}},
        "rs": {"type": "rawsocket", "serializer": serializer,
               "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p["rs"]}},
        "rs-unix": {"type": "rawsocket", "serializer": serializer,
                    "endpoint": {"type": "unix", "path": router.rawsocket_path}},
        "rss": {"type": "rawsocket", "serializer": serializer,
                "endpoint": {"type": "tcp", "host": "localhost", "port": p["rss"], "tls": client_tls(router)}},
    }[name]


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest.mark.parametrize("name", ["ws", "ws-unix", "wss", "rs", "rs-unix", "rss"])
async def test_rpc_and_pubsub_over_every_transport_and_serializer(router, name, serializer):
    s = await connect(transport(router, name, serializer), "realm1")
    try:
        assert s.transport.serializer.NAME == serializer
        assert s.details["authrole"] == "anonymous"
        uri = f"com.client.{name.replace('-', '_')}.{serializer}"
        await s.register(uri + ".echo", lambda *a, **kw: {"args": list(a), "kwargs": kw})
        events = asyncio.Queue()
        await s.subscribe(uri + ".topic", lambda *a, **kw: events.put_nowait((a, kw)))
        payload = ["text ü", 2**40, -1.5, None, True, {"nested": [1, 2]}]
        assert await s.call(uri + ".echo", *payload, key="value") == {"args": payload, "kwargs": {"key": "value"}}
        pub = await s.publish(uri + ".topic", 1, "two", three=3, options={"acknowledge": True, "exclude_me": False})
        assert isinstance(pub, int)
        assert await asyncio.wait_for(events.get(), 5) == ((1, "two"), {"three": 3})
        with pytest.raises(ApplicationError) as e:
            await s.call(uri + ".nobody")
        assert e.value.error == "wamp.error.no_such_procedure"
    finally:
        await s.leave()
    # GOODBYE answered (Crossbar.io echoes wamp.close.normal)
    assert not s.is_attached and s.close_reason[0] in ("wamp.close.goodbye_and_out", "wamp.close.normal")


async def test_progressive_results_and_cancel(router):
    callee = await connect(transport(router, "rs", "cbor"), "realm1")
    caller = await connect(transport(router, "ws", "json"), "realm1")
    interrupted = asyncio.get_running_loop().create_future()

    async def count(n, progress=None):
        for i in range(n):
            progress(i)
        return "done"

    async def forever():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set_result(True)
            raise

    def count_now(n, progress=None):  # a plain function sends progressive results too
        for i in range(n):
            progress(i)
        return "now"

    await callee.register("com.client.count", count, progress=True)
    await callee.register("com.client.count_now", count_now, progress=True)
    await callee.register("com.client.forever", forever)
    seen = []
    assert await caller.call("com.client.count", 3, on_progress=seen.append) == "done"
    assert seen == [0, 1, 2]
    seen.clear()
    assert await caller.call("com.client.count_now", 2, on_progress=seen.append) == "now"
    assert seen == [0, 1]
    with pytest.raises(ApplicationError):  # no progress asked for: the endpoint gets progress=None
        await caller.call("com.client.count", 2)
    call = asyncio.ensure_future(caller.call("com.client.forever"))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await asyncio.wait_for(interrupted, 5)
    assert caller.is_attached and callee.is_attached
    await caller.leave()
    await callee.leave()


def auth_transport(router, serializer="cbor"):
    return {"type": "websocket", "url": f"ws://127.0.0.1:{router.ports['auth']}/", "serializers": [serializer],
            "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": router.ports["auth"]}}


async def test_ticket_authentication(router):
    s = await connect(auth_transport(router), "realm1", auth=[Ticket(TICKET, authid="bob")])
    assert (s.details["authid"], s.details["authrole"], s.details["authmethod"]) == ("bob", "user", "ticket")
    await s.leave()
    with pytest.raises(ApplicationError) as e:
        await connect(auth_transport(router), "realm1", auth=[Ticket("wrong", authid="bob")])
    assert e.value.error.startswith("wamp.error.")
    assert "authentication" in e.value.error or "not_authorized" in e.value.error


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
async def test_cryptosign_authentication(router, keys, serializer):
    s = await connect(auth_transport(router, serializer), "realm1", auth=[Cryptosign(keys["user"][0])])
    assert (s.details["authid"], s.details["authrole"], s.details["authmethod"]) == ("carol", "user", "cryptosign")
    await s.leave()
    with pytest.raises(ApplicationError) as e:  # a key the router does not know
        await connect(auth_transport(router, serializer), "realm1", auth=[Cryptosign(keys["stranger"][0])])
    assert e.value.error.startswith("wamp.error.")


async def test_cryptosign_with_tls_channel_binding(router, keys):
    tr = transport(router, "wss", "cbor")
    s = await connect(tr, "realm1", auth=[Cryptosign(keys["user"][0], channel_binding="tls-unique")])
    assert (s.details["authid"], s.details["authmethod"]) == ("carol", "cryptosign")
    await s.leave()
    # the same binding asked over plain TCP cannot be honoured: a clear error, no session
    with pytest.raises(ApplicationError) as e:
        await connect(auth_transport(router), "realm1", auth=[Cryptosign(keys["user"][0], channel_binding="tls-unique")])
    assert e.value.error.startswith("wamp.error.")


async def test_several_methods_offered_the_router_picks_one(router, keys):
    # HELLO offers ticket, then cryptosign, as authid bob: the router takes ticket
    s = await connect(auth_transport(router), "realm1",
                      auth=[Ticket(TICKET, authid="bob"), Cryptosign(keys["user"][0])])
    assert (s.details["authmethod"], s.details["authid"]) == ("ticket", "bob")
    await s.leave()


async def test_reconnect_after_the_router_is_killed_and_restarted(router):
    joins, leaves = [], []

    async def on_join(session, details):
        joins.append(session.session_id)
        await session.register("com.client.uplink.ping", lambda: len(joins))

    client = Client(transport(router, "rs", "cbor"), "realm1", backoff=Backoff(initial=0.1, maximum=0.5),
                    on_join=on_join, on_leave=lambda session, reason: leaves.append(reason))
    try:
        s1 = await client.session(timeout=10)
        while not joins:
            await asyncio.sleep(0.01)
        kill_router(router)
        while not leaves:
            await asyncio.sleep(0.01)
        assert not s1.is_attached
        await asyncio.sleep(0.5)  # a few failed attempts while the router is down
        assert client.attempts >= 2
        await asyncio.get_running_loop().run_in_executor(None, restart_router, router.kind, router)
        s2 = await client.session(timeout=20)
        assert s2 is not s1 and s2.is_attached
        while len(joins) < 2:
            await asyncio.sleep(0.01)
        # the hook registered again on the new session
        other = await connect(transport(router, "ws", "json"), "realm1")
        assert await other.call("com.client.uplink.ping") == 2
        await other.leave()
    finally:
        await client.close()
    assert client.closed and client.current is not None and not client.current.is_attached


async def test_payload_with_keyword_names_the_call_api_uses(router):
    """call_payload / publish_payload pass any keyword argument name, 'options' and 'on_progress'
    included (a proxy such as the edge's management bridge forwards somebody else's payload)."""
    s = await connect(transport(router, "ws", "json"), "realm1")
    try:
        await s.register("com.client.kwnames.echo", lambda *a, **kw: {"args": list(a), "kwargs": kw})
        events = asyncio.Queue()
        await s.subscribe("com.client.kwnames.topic", lambda *a, **kw: events.put_nowait((a, kw)))
        kwargs = {"options": {"x": 1}, "on_progress": "p", "details": 2}
        assert await s.call_payload("com.client.kwnames.echo", [1], kwargs) == {"args": [1], "kwargs": kwargs}
        await s.publish_payload("com.client.kwnames.topic", [], {"options": 3},
                                {"acknowledge": True, "exclude_me": False})
        assert await asyncio.wait_for(events.get(), 5) == ((), {"options": 3})
    finally:
        await s.leave()
