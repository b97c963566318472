"""What a router worker reports for the edge's worker heartbeats: ``get_router_realm_stats``
(Crossbar.io's names) from the realm's counters, with acknowledged publications counted as
``published``.  A real router core with sessions fed raw WAMP messages (no network)."""

from __future__ import annotations

from wampfabric.personality import Personality
from wampfabric.protocol.serializers import SERIALIZERS_BY_NAME
from wampfabric.router.session import RouterSession
from wampfabric.worker.router import RouterWorker

SER = SERIALIZERS_BY_NAME["json"]
PERMS = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True, "subscribe": True}}]


class Peer:
    serializer = SER
    peer = "test"
    auth_config = None

    def __init__(self):
        self.received = []

    def send(self, data):
        self.received.append(SER.unserialize_one(data))

    def close(self):
        pass


def session(router, realm):
    peer = Peer()
    s = RouterSession(router, peer)
    s.on_message(SER.serialize([1, realm, {"roles": {"publisher": {}, "subscriber": {}, "caller": {},
                                                      "callee": {}}}]))
    assert peer.received[-1][0] == 2, peer.received
    return s, peer


class Unattached:
    """The worker's management session, not connected: its events go nowhere."""

    is_attached = False


async def test_router_realm_stats_count_messages_by_type():
    worker = RouterWorker(Unattached(), "rw1", "node1", ".", Personality)
    worker.start_router_realm("realm001", {"name": "realm1", "roles": [{"name": "anonymous", "permissions": PERMS}]})
    assert worker.get_router_realm_stats() == {"realm001": {"roles": 2, "sessions": 0, "messages": dict.fromkeys(
        ("call", "yield", "invocation", "result", "publish", "published", "event", "register", "registered",
         "subscribe", "subscribed", "error"), 0)}}  # the meta API's own session is not counted
    callee, cp = session(worker.router, "realm1")
    caller, _ = session(worker.router, "realm1")
    sub, _ = session(worker.router, "realm1")
    callee.on_message(SER.serialize([64, 1, {}, "com.proc"]))
    sub.on_message(SER.serialize([32, 1, {}, "com.topic"]))
    for i in range(4):
        caller.on_message(SER.serialize([48, 10 + i, {}, "com.proc", [i]]))
        inv = cp.received[-1]
        assert inv[0] == 68
        callee.on_message(SER.serialize([70, inv[1], {}, [i]]))
    for i, ack in enumerate((True, True, False)):
        caller.on_message(SER.serialize([16, 20 + i, {"acknowledge": ack}, "com.topic", [i]]))
    stats = worker.get_router_realm_stats()
    assert set(stats) == {"realm001"}
    st = stats["realm001"]
    assert st["sessions"] == 3 and st["roles"] == 2  # anonymous and the built-in trusted role
    assert st["messages"] == {"call": 4, "yield": 4, "invocation": 4, "result": 4, "publish": 3, "published": 2, "event": 3,
                 "register": 1, "registered": 1, "subscribe": 1, "subscribed": 1, "error": 0}
    assert worker.get_router_realm_stats("realm001") == stats
