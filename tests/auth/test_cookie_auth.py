"""Cookie tracking and the ``cookie`` authmethod on WebSocket transports."""

from __future__ import annotations

import json

from websockets.sync.client import connect as ws_connect

from support.cookienode import hello, join_by_cookie
from wampfabric.protocol.codes import ABORT, AUTHENTICATE, CALL, CHALLENGE, RESULT, WELCOME
from wampfabric.transport.cookies import create_cookie_store


def test_cookie_set_then_used_for_authentication(cookie_node):
    url = f"ws://127.0.0.1:{cookie_node.ports['ws']}/"
    with ws_connect(url, subprotocols=["wamp.2.json"]) as ws:
        cookie = ws.response.headers["Set-Cookie"]
        assert cookie.startswith("cbtid=") and "HttpOnly" in cookie
        cbtid = cookie.split(";")[0].split("=", 1)[1]
        # no authenticated cookie yet: "cookie" is skipped, ticket is used
        msg = hello(ws, ["cookie", "ticket"], "joe")
        assert msg[0] == CHALLENGE and msg[1] == "ticket"
        ws.send(json.dumps([AUTHENTICATE, "s3cret", {}]))
        msg = json.loads(ws.recv(timeout=5))
        assert msg[0] == WELCOME and msg[2]["authmethod"] == "ticket"
    # a new connection with the cookie is authenticated by it, as joe/user
    with ws_connect(url, subprotocols=["wamp.2.json"], additional_headers={"Cookie": f"cbtid={cbtid}"}) as ws:
        assert "Set-Cookie" not in ws.response.headers
        msg = hello(ws, ["cookie", "ticket"])
        assert msg[0] == WELCOME, msg
        # as Crossbar.io: the method of the login that set the cookie, authprovider "cookie"
        assert (msg[2]["authmethod"], msg[2]["authprovider"]) == ("ticket", "cookie"), msg
        assert msg[2]["authid"] == "joe" and msg[2]["authrole"] == "user"
    # the store file is private
    store = cookie_node.cbdir / "cookies.dat"
    assert store.stat().st_mode & 0o777 == 0o600


def test_unknown_or_forged_cookie_does_not_authenticate(cookie_node):
    url = f"ws://127.0.0.1:{cookie_node.ports['ws']}/"
    with ws_connect(url, subprotocols=["wamp.2.json"], additional_headers={"Cookie": "cbtid=forged"}) as ws:
        assert "Set-Cookie" in ws.response.headers  # a fresh cookie replaces the unknown one
        msg = hello(ws, ["cookie"])
        assert msg[0] == ABORT and msg[2] == "wamp.error.no_auth_method"


def test_anonymous_login_marks_the_cookie(cookie_node):
    """As Crossbar.io: a cookie of an anonymous login later joins as that anonymous principal
    (same authid); it grants nothing the transport's anonymous config does not."""
    url = f"ws://127.0.0.1:{cookie_node.ports['ws']}/"
    with ws_connect(url, subprotocols=["wamp.2.json"]) as ws:
        cbtid = ws.response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        first = hello(ws, ["anonymous"])
        assert first[0] == WELCOME
    with ws_connect(url, subprotocols=["wamp.2.json"], additional_headers={"Cookie": f"cbtid={cbtid}"}) as ws:
        msg = hello(ws, ["cookie"])
        assert msg[0] == WELCOME, msg
        assert (msg[2]["authmethod"], msg[2]["authprovider"]) == ("anonymous", "cookie"), msg
        assert (msg[2]["authid"], msg[2]["authrole"]) == (first[2]["authid"], first[2]["authrole"])


def test_file_store_survives_a_restart(tmp_path):
    cfg = {"name": "cbtid", "max_age": 600, "store": {"type": "file", "filename": "c.dat"}}
    s1 = create_cookie_store(cfg, tmp_path)
    cbtid = s1.create()
    s1.set_identity(cbtid, {"authid": "joe", "authrole": "user", "authrealm": "realm1", "authmethod": "ticket"})
    s2 = create_cookie_store(cfg, tmp_path)
    assert s2.identity(cbtid)["authid"] == "joe"
    expired = create_cookie_store(dict(cfg, max_age=0), tmp_path)
    assert expired.identity(cbtid) is None


async def test_autobahn_python_authenticates_by_cookie(cookie_node):
    """The cookie a browser-like client got after a ticket login authenticates autobahn-python."""
    url = f"ws://127.0.0.1:{cookie_node.ports['ws']}/"
    with ws_connect(url, subprotocols=["wamp.2.json"]) as ws:
        cbtid = ws.response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert hello(ws, ["ticket"], "joe")[0] == CHALLENGE
        ws.send(json.dumps([AUTHENTICATE, "s3cret", {}]))
        assert json.loads(ws.recv(timeout=5))[0] == WELCOME

    details = await join_by_cookie(cookie_node, cbtid)
    assert (details.authmethod, details.authprovider, details.authid, details.authrole) == (
        "ticket", "cookie", "joe", "user")


def test_session_meta_api_does_not_hand_out_cookies(cookie_node):
    """A cbtid logs in as its session's user: another session allowed ``wamp.session.get`` must not
    learn it (Crossbar.io 26.10 shows ``http_cbtid`` and the Cookie header there)."""
    url = f"ws://127.0.0.1:{cookie_node.ports['ws']}/"
    with ws_connect(url, subprotocols=["wamp.2.json"]) as joe:
        cbtid = joe.response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert hello(joe, ["ticket"], "joe")[0] == CHALLENGE
        joe.send(json.dumps([AUTHENTICATE, "s3cret", {}]))
        welcome = json.loads(joe.recv(timeout=5))
        assert welcome[0] == WELCOME, welcome
        # joe's next connection sends the cookie, as a browser does
        with ws_connect(url, subprotocols=["wamp.2.json"],
                        additional_headers={"Cookie": f"cbtid={cbtid}", "Authorization": "Basic am9lOnMzY3JldA=="}) as joe2:
            w2 = hello(joe2, ["cookie"])
            assert w2[0] == WELCOME and w2[2]["authid"] == "joe", w2
            with ws_connect(url, subprotocols=["wamp.2.json"]) as spy:
                assert hello(spy, ["anonymous"])[0] == WELCOME
                for sid in (welcome[1], w2[1]):
                    spy.send(json.dumps([CALL, 1, {}, "wamp.session.get", [sid]]))
                    result = json.loads(spy.recv(timeout=5))
                    assert result[0] == RESULT, result
                    info = result[3][0]
                    assert info["authid"] == "joe"
                    t = info["transport"]
                    assert t["http_cbtid"] is None, t
                    assert not {"cookie", "authorization"} & set(t["http_headers_received"]), t
                    assert "Set-Cookie" not in t["http_headers_sent"], t
                    assert cbtid not in json.dumps(info)
                    assert "user-agent" in t["http_headers_received"]  # the rest is there, as Crossbar.io
