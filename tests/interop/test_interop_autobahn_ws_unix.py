"""autobahn-python (asyncio) speaks WAMP over WebSocket to the router's listener on a Unix-socket
endpoint (``"endpoint": {"type": "unix", "path": ...}`` of a ``websocket`` transport, as Crossbar.io
serves it): a call and a publish/subscribe with each serializer.

Before, picows set TCP options (TCP_NODELAY) on every accepted connection; a Unix socket refuses
them (EOPNOTSUPP), so the router dropped each connection before the upgrade and no client joined.
The router's log shows no traceback."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from support.autobahn_client import SERIALIZERS, closing_sessions, connect, uid, w
from support.nodes import node_config, start_node, stop_node

WS_SOCKET = "ws.sock"  # beside the node's RawSocket Unix socket (the node directory's parent)


def unix_ws_config(ports, rs_path):
    cfg = copy.deepcopy(node_config(ports, rs_path))
    cfg["workers"][0]["transports"].append({
        "type": "websocket",
        "endpoint": {"type": "unix", "path": str(Path(rs_path).with_name(WS_SOCKET))},
        "serializers": list(SERIALIZERS),
    })
    return cfg


@pytest.fixture(scope="module")
def unode():
    n = start_node(unix_ws_config)
    yield n
    stop_node(n)


@pytest.fixture
async def ws_unix(unode):
    """``await ws_unix(serializer)`` -> an autobahn session joined over WebSocket on the Unix socket."""
    path = str(Path(unode.rawsocket_path).with_name(WS_SOCKET))

    async def open_(serializer):
        return await connect(unode, "websocket", serializer, url="ws://localhost/", unix_path=path)

    async for open_session in closing_sessions(unode, open_):
        yield open_session


@pytest.mark.parametrize("serializer", list(SERIALIZERS))
async def test_call_and_pubsub_over_websocket_on_a_unix_socket(unode, ws_unix, serializer):
    callee, caller = await ws_unix(serializer), await ws_unix(serializer)
    assert callee.session_id != caller.session_id
    proc, topic = f"com.unixws.add.{uid()}", f"com.unixws.topic.{uid()}"

    await w(callee.register(lambda a, b, **kw: {"sum": a + b, "kw": kw}, proc))
    assert await w(caller.call(proc, 2, 3, x="y")) == {"sum": 5, "kw": {"x": "y"}}

    got: asyncio.Queue = asyncio.Queue()
    await w(callee.subscribe(lambda *a, **kw: got.put_nowait((a, kw)), topic, options=SubscribeOptions()))
    await w(caller.publish(topic, 1, "two", k=[3], options=PublishOptions(acknowledge=True)))
    assert await w(got.get()) == ((1, "two"), {"k": [3]})

    assert "Traceback" not in unode.log()
