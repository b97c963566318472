"""The node of the advanced profile's tests (``advanced_config``): realm ``realm1`` with the roles
of the default test config plus ``discloser`` (disclose caller and publisher), ``member`` and
``guest``, extra WebSocket transports with fixed authid/authrole (``IDENTITIES``), and an event
store for the ``HISTORY`` topics; raw peers on it announcing exactly the features a test needs.
The fixtures ``anode`` (one such node per test module), ``ac`` (autobahn sessions on it) and
``raw`` (raw peers on it) are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import copy

from support import wamp_raw
from support.autobahn_client import TIMEOUT
from support.nodes import FULL_PERMS, free_port, node_config
from wampfabric.protocol.codes import REGISTER, REGISTERED, WELCOME

QUIET = 0.3  # how long "nothing arrives" is waited for

# ---------------------------------------------------------------------------
# the node: roles with disclosure, fixed authids, event history

HISTORY = [
    {"uri": "com.example.history", "match": "exact", "limit": 100},
    {"uri": "com.example.history5", "match": "exact", "limit": 5},
    {"uri": "com.example.hlog.", "match": "prefix", "limit": 100},
    {"uri": "com.example.hsec", "match": "exact", "limit": 100},
    {"uri": "com.example.hpage", "match": "exact", "limit": 100},
    {"uri": "com.example.hbw", "match": "exact", "limit": 100},
    {"uri": "com.example.hmeta", "match": "exact", "limit": 100},
]

# extra WebSocket transports: port name -> (authrole, authid)
IDENTITIES = {
    "disclose": ("discloser", "dave"),
    "alice": ("member", "alice"),
    "alice2": ("member", "alice"),
    "bob": ("member", "bob"),
    "carol": ("guest", "carol"),
}


def advanced_config(ports: dict, rs_path: str) -> dict:
    cfg = copy.deepcopy(node_config(ports, rs_path))
    worker = cfg["workers"][0]
    realm = worker["realms"][0]
    disclosing = dict(FULL_PERMS, disclose={"caller": True, "publisher": True})
    realm["roles"] += [
        {"name": "discloser", "permissions": [disclosing]},
        {"name": "member", "permissions": [FULL_PERMS]},
        {"name": "guest", "permissions": [FULL_PERMS]},
    ]
    realm["store"] = {"type": "memory", "event-history": copy.deepcopy(HISTORY)}
    for name, (role, authid) in IDENTITIES.items():
        ports[name] = free_port()  # start_node waits for every port in this dict
        worker["transports"].append({
            "type": "websocket",
            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports[name]},
            "serializers": ["json", "msgpack", "cbor"],
            "auth": {"anonymous": {"type": "static", "role": role, "authid": authid}},
        })
    return cfg


def identity_url(node, name: str) -> str:
    return f"ws://127.0.0.1:{node.ports[name]}/"


# ---------------------------------------------------------------------------
# raw peers


def raw_peer(node, features: dict | None = None, *, transport="rawsocket", serializer="msgpack", url=None,
             identity=None):
    """A raw session announcing exactly ``features`` ({role: [feature, ...]}) for all four client roles."""
    roles = {r: {"features": {f: True for f in (features or {}).get(r, ())}}
             for r in ("caller", "callee", "publisher", "subscriber")}
    if identity is not None:
        transport, url = "websocket", identity_url(node, identity)
    if transport == "rawsocket":
        p = wamp_raw.RawSocketPeer(port=node.rawsocket_port, serializer=serializer)
    else:
        p = wamp_raw.WebSocketPeer(url or node.ws_url, serializer)
    reply = p.hello(node.realm, {"roles": roles})
    assert reply is not None and reply[0] == WELCOME, f"raw join failed: {reply}"
    p.welcome = reply
    return p


def nxt(p, timeout: float = TIMEOUT) -> list:
    """The next message of a raw peer (fails if the router closed the connection)."""
    m = p.recv(timeout)
    assert m is not None, "router closed the connection"
    return m


def silent(p, t: float = QUIET) -> None:
    """Nothing arrives at ``p`` within ``t`` seconds."""
    try:
        m = p.recv(t)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {m!r}")


def raw_register(p, proc: str, options: dict | None = None) -> int:
    r = p.request([REGISTER, p.next_id(), options or {}, proc])
    assert r[0] == REGISTERED, r
    return r[2]


async def anxt(p, timeout: float = TIMEOUT) -> list:
    return await asyncio.to_thread(nxt, p, timeout)


async def asilent(p, t: float = QUIET) -> None:
    await asyncio.to_thread(silent, p, t)
