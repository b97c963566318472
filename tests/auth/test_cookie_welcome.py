"""Cookie authentication as Crossbar.io 26.10 does it, with autobahn-python: WELCOME names the
method of the login that set the cookie (authprovider "cookie"), and the cookie of an anonymous
login joins as that anonymous principal again."""

from __future__ import annotations

import asyncio
import json

from websockets.sync.client import connect as ws_connect

from support.cookienode import hello, join_by_cookie
from wampfabric.protocol.codes import AUTHENTICATE, CHALLENGE, WELCOME


def _login(node, authmethods, authid=None, ticket=None) -> tuple[str, dict]:
    with ws_connect(f"ws://127.0.0.1:{node.ports['ws']}/", subprotocols=["wamp.2.json"]) as ws:
        cbtid = ws.response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        msg = hello(ws, authmethods, authid)
        if ticket is not None:
            assert msg[0] == CHALLENGE, msg
            ws.send(json.dumps([AUTHENTICATE, ticket, {}]))
            msg = json.loads(ws.recv(timeout=5))
        assert msg[0] == WELCOME, msg
        return cbtid, msg[2]


async def test_cookie_after_ticket_login_reports_ticket(cookie_node):
    cbtid, _ = await asyncio.to_thread(_login, cookie_node, ["ticket"], "joe", "s3cret")
    details = await join_by_cookie(cookie_node, cbtid)
    assert (details.authmethod, details.authprovider, details.authid, details.authrole) == (
        "ticket", "cookie", "joe", "user")


async def test_cookie_after_anonymous_login_joins_as_that_principal(cookie_node):
    cbtid, first = await asyncio.to_thread(_login, cookie_node, ["anonymous"])
    details = await join_by_cookie(cookie_node, cbtid)
    assert (details.authmethod, details.authprovider) == ("anonymous", "cookie")
    assert (details.authid, details.authrole) == (first["authid"], "anonymous")
