"""The node of the cookie tests: one WebSocket transport (``ports["ws"]``) with cookie tracking
(cookie ``cbtid``, a file store) and the authmethods cookie, ticket (joe/s3cret, role user) and
anonymous; ``hello`` over a raw ``websockets`` connection; ``join_by_cookie`` joins autobahn-python
with the cookie a login set.  The ``cookie_node`` fixture is in tests/auth/conftest.py."""

from __future__ import annotations

import asyncio
import json

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

from support.nodes import free_port
from wampfabric.protocol.codes import HELLO

ROLES = {"subscriber": {}, "caller": {}}


def cookie_config(ports: dict, rs_path: str) -> dict:
    ports.clear()
    ports["ws"] = free_port()
    perms = [{"uri": "com.", "match": "prefix", "allow": {"call": True, "subscribe": True}}]
    return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
        {"name": "user", "permissions": perms},
        {"name": "anonymous", "permissions": perms + [
            {"uri": "wamp.session.get", "match": "exact", "allow": {"call": True}}]}]}],
        "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1",
                                                          "port": ports["ws"]},
                        "cookie": {"name": "cbtid", "max_age": 600, "store": {"type": "file",
                                                                             "filename": "cookies.dat"}},
                        "auth": {"cookie": {},
                                 "ticket": {"type": "static", "principals": {
                                     "joe": {"ticket": "s3cret", "role": "user"}}},
                                 "anonymous": {"type": "static", "role": "anonymous"}}}]}]}


def hello(ws, authmethods, authid=None):
    """Send HELLO on a raw ``websockets`` connection; the router's answer."""
    details = {"roles": ROLES, "authmethods": authmethods}
    if authid:
        details["authid"] = authid
    ws.send(json.dumps([HELLO, "realm1", details]))
    return json.loads(ws.recv(timeout=5))


async def join_by_cookie(node, cbtid: str):
    """Join autobahn-python with authmethod cookie and the cookie ``cbtid``; the SessionDetails."""
    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class S(ApplicationSession):
        def onConnect(self):
            self.join("realm1", authmethods=["cookie"])

        def onJoin(self, details):
            joined.set_result(details)
            self.leave()

        def onLeave(self, details):
            if not joined.done():
                joined.set_exception(RuntimeError(details.reason))
            self.disconnect()

    factory = WampWebSocketClientFactory(lambda: S(ComponentConfig("realm1")), url=f"ws://127.0.0.1:{node.ports['ws']}/",
                                         headers={"Cookie": f"cbtid={cbtid}"})
    await loop.create_connection(factory, "127.0.0.1", node.ports["ws"])
    return await asyncio.wait_for(joined, 10)
