"""Cookie authentication as Crossbar.io 26.10 does it, with autobahn-python: WELCOME names the
method of the login that set the cookie (authprovider "cookie"), and the cookie of an anonymous
login joins as that anonymous principal again."""

from __future__ import annotations

import asyncio
import json

from websockets.sync.client import connect as ws_connect

from auth.test_cookie_auth import cookie_node, hello  # noqa: F401  (fixture)


async def _join_by_cookie(node, cbtid: str):
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig

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


def _login(node, authmethods, authid=None, ticket=None) -> tuple[str, dict]:
    with ws_connect(f"ws://127.0.0.1:{node.ports['ws']}/", subprotocols=["wamp.2.json"]) as ws:
        cbtid = ws.response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        msg = hello(ws, authmethods, authid)
        if ticket is not None:
            assert msg[0] == 4, msg
            ws.send(json.dumps([5, ticket, {}]))
            msg = json.loads(ws.recv(timeout=5))
        assert msg[0] == 2, msg
        return cbtid, msg[2]


async def test_cookie_after_ticket_login_reports_ticket(cookie_node):
    cbtid, _ = await asyncio.to_thread(_login, cookie_node, ["ticket"], "joe", "s3cret")
    details = await _join_by_cookie(cookie_node, cbtid)
    assert (details.authmethod, details.authprovider, details.authid, details.authrole) == (
        "ticket", "cookie", "joe", "user")


async def test_cookie_after_anonymous_login_joins_as_that_principal(cookie_node):
    cbtid, first = await asyncio.to_thread(_login, cookie_node, ["anonymous"])
    details = await _join_by_cookie(cookie_node, cbtid)
    assert (details.authmethod, details.authprovider) == ("anonymous", "cookie")
    assert (details.authid, details.authrole) == (first["authid"], "anonymous")
