"""Failed authentications are throttled per peer address and per authid (router worker option
``auth_throttle``, router/auth.py ``AuthThrottle``), and an attacker cannot use that to lock a
real user out.

* ``AuthThrottle`` itself, on a fake clock: budgets, the leak, doubling delays, admission of a
  throttled address, bounded tables, address grouping (IPv4, IPv6 /64, Unix);
* a real node (``auth_throttle`` in the router worker's options) with clients on distinct
  loopback addresses (127.0.0.x as source address):

  - raw peers hammering wrong tickets in parallel from one address: few of the guesses are
    checked at all (the rest refused unchecked), while autobahn-python logs in the real user
    from another address at once;
  - wrong tickets for one authid from many addresses (each within its own budget): the failures
    are answered late, the real user (same authid, another address) logs in at once;
  - closing the connection does not free a late answer's slot.

Timing bounds are generous (counts per seconds, delays of a second against logins of
milliseconds); nothing asserts how fast the router is.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from autobahn.wamp.auth import create_authenticator

from support import wamp_raw as raw
from support.authnode import JoinFailed, login
from support.nodes import start_node, stop_node
from wampfabric.config.base import ConfigError
from wampfabric.config.workers import check_router_worker_options
from wampfabric.router.auth import THROTTLE_DEFAULTS, THROTTLED_MESSAGE, AuthThrottle, address_key
from wampfabric.protocol.codes import AUTHENTICATE, CHALLENGE

FAILED = "wamp.error.authentication_failed"
TICKETS = {"joe": "joe-ticket-7f3a", "ann": "ann-ticket-91c2", "cat": "cat-ticket-55d0"}
OPTIONS = {"address_failures": 5, "address_window": 60, "authid_failures": 5, "authid_window": 60,
           "delay": 1.0, "max_delay": 2.0, "max_pending": 2}


# ---------------------------------------------------------------------------------------------
# AuthThrottle on a fake clock


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_address_budget_then_doubling_delays():
    clock = Clock()
    t = AuthThrottle({"address_failures": 3, "address_window": 30, "authid_failures": 0, "delay": 0.5,
                      "max_delay": 3}, clock)
    delays = [t.failure("10.0.0.1", "joe") for _ in range(8)]
    assert delays == [0, 0, 0, 0.5, 1, 2, 3, 3]
    assert t.failure("10.0.0.2", "joe") == 0  # another address has its own budget
    # the budget leaks back: 3 failures per 30 s, so after 10 s one failure is free again...
    t2 = AuthThrottle({"address_failures": 3, "address_window": 30, "authid_failures": 0}, clock)
    for _ in range(3):
        assert t2.failure("10.0.0.9", None) == 0
    assert t2.throttled("10.0.0.9") is not None
    clock.now += 10.5
    assert t2.throttled("10.0.0.9") is None
    assert t2.failure("10.0.0.9", None) == 0
    assert t2.failure("10.0.0.9", None) > 0  # ... but only one


def test_authid_budget_only_delays():
    clock = Clock()
    t = AuthThrottle({"address_failures": 0, "authid_failures": 2, "delay": 1, "max_delay": 8}, clock)
    delays = [t.failure(f"10.0.1.{i}", "joe") for i in range(5)]  # five addresses, one authid
    assert delays == [0, 0, 1, 2, 4]
    assert not t.addresses  # no address budget: nothing throttles an address
    assert all(t.throttled(f"10.0.1.{i}") is None for i in range(5))


def test_throttled_address_admits_max_pending():
    clock = Clock()
    t = AuthThrottle({"address_failures": 2, "authid_failures": 0, "delay": 1, "max_delay": 1,
                      "max_pending": 2}, clock)
    t.failure("a", None)
    assert t.throttled("a") is None
    t.failure("a", None)
    b = t.throttled("a")
    assert b is not None
    p1, p2, p3 = object(), object(), object()
    assert t.admit(b, p1) and t.admit(b, p2)
    assert not t.admit(b, p3)  # two at work already
    b.active.discard(p1)
    assert t.failure("a", None) == 1  # p1's failure: answered 1 s late, and keeps its slot meanwhile
    assert not t.admit(b, p3)
    clock.now += 1.01
    assert t.admit(b, p3)


def test_tables_are_bounded():
    clock = Clock()
    t = AuthThrottle({"max_tracked": 100}, clock)
    for i in range(5000):
        t.failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"user{i}")
    assert len(t.addresses) == 100 and len(t.authids) == 100
    assert "10.0.19.135" in t.addresses  # the most recent ones stay (i = 4999)
    t.failure("10.9.9.9", "x" * 1_000_000)  # a huge authid is remembered by its hash
    assert max(len(k) for k in t.authids) < 100


def test_defaults():
    t = AuthThrottle()
    assert THROTTLE_DEFAULTS == {"address_failures": 10, "address_window": 60.0, "authid_failures": 10,
                                 "authid_window": 60.0, "delay": 1.0, "max_delay": 30.0, "max_pending": 4,
                                 "max_tracked": 10_000}
    assert [t.failure("10.1.1.1", None) for _ in range(11)][-2:] == [0, 1.0]


@pytest.mark.parametrize("peer,key", [
    ("tcp4:127.0.0.2:51234", "127.0.0.2"),
    ("tcp6:2001:db8:1:2:3:4:5:6:443", "2001:db8:1:2::/64"),
    ("tcp6:2001:db8:1:2:ffff::1:80", "2001:db8:1:2::/64"),
    ("tcp6:::ffff:10.1.2.3:80", "10.1.2.3"),
    ("tcp6:::1:80", "0:0:0:0::/64"),
    ("tcp6:not-an-address:80", "not-an-address"),
    ("unix:/tmp/x.sock", "unix"),
    ("unix:None", "unix"),
])
def test_address_key(peer, key):
    assert address_key(peer) == key


def test_config_check():
    check_router_worker_options({"auth_throttle": dict(OPTIONS)}, "$.workers[0].options")
    check_router_worker_options({"auth_throttle": {"address_failures": 0}}, "$.workers[0].options")
    for bad, where in [({"address_failures": -1}, "address_failures"), ({"delay": "1"}, "delay"),
                       ({"max_pending": 0}, "max_pending"), ({"address_window": 0}, "address_window"),
                       ({"lockout": True}, "lockout")]:
        with pytest.raises(ConfigError) as ei:
            check_router_worker_options({"auth_throttle": bad}, "$.workers[0].options")
        assert f"$.workers[0].options.auth_throttle.{where}" in str(ei.value)


# ---------------------------------------------------------------------------------------------
# a real node


def _config(ports, rs_path):
    auth = {"ticket": {"type": "static", "principals": {a: {"ticket": t, "role": "user"}
                                                        for a, t in TICKETS.items()}}}
    transports = []
    for name, kind in (("rawsocket", "rawsocket"), ("web", "websocket"), ("restricted", "websocket")):
        transports.append({"type": kind, "id": name, "serializers": ["json"], "auth": auth,
                           "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports[name]}})
    return {"version": 2, "controller": {}, "workers": [{
        "type": "router",
        "options": {"auth_throttle": OPTIONS},
        "realms": [{"name": "realm1", "roles": [{"name": "user", "permissions": [
            {"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                     "subscribe": True}}]}]}],
        "transports": transports,
    }]}


@pytest.fixture(scope="module")
def node():
    n = start_node(_config)
    yield n
    stop_node(n)


class SourcePeer(raw.RawSocketPeer):
    """A raw RawSocket peer whose connection comes from ``source`` (a 127.0.0.x address)."""

    def __init__(self, port: int, source: str):
        raw._Peer.__init__(self)
        self.serializer = "json"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        self.sock.sendall(raw.rawsocket_handshake_bytes(raw.RAWSOCKET_SERIALIZER_IDS["json"], 15))
        reply = raw.recv_exactly(self.sock, 4)
        assert len(reply) == 4 and reply[0] == 0x7F, reply


def attempt(node, source: str, authid: str, ticket: str, close_early: bool = False) -> str:
    """One ticket login from ``source``: "welcome", "failed" (the ticket was checked and refused),
    "refused" (refused unchecked: the address is throttled) or "sent" (close_early: the connection
    was closed right after AUTHENTICATE)."""
    with SourcePeer(node.ports["rawsocket"], source) as p:
        p.send([raw.HELLO, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": ["ticket"], "authid": authid}])
        msg = p.recv(15)
        if msg[0] == CHALLENGE:
            p.send([AUTHENTICATE, ticket, {}])
            if close_early:
                return "sent"
            msg = p.recv(15)
        if msg[0] == raw.WELCOME:
            return "welcome"
        assert msg[0] == raw.ABORT and msg[2] == FAILED, msg
        assert ticket not in str(msg)
        if msg[1].get("message") == THROTTLED_MESSAGE:
            return "refused"
        assert msg[1].get("message") == "authentication failed", msg
        return "failed"


def real_user_logins(node, source: str, authid: str = "joe", n: int = 3) -> list[float]:
    """autobahn-python logs in ``n`` times from ``source`` with the right ticket: the seconds each took."""
    async def run():
        took = []
        for _ in range(n):
            t0 = time.monotonic()
            s = await login(f"ws://127.0.0.1:{node.ports['web']}/", authenticators=create_authenticator(
                "ticket", authid=authid, ticket=TICKETS[authid]), source=source)
            took.append(time.monotonic() - t0)
            assert s.joined.result().authid == authid
            await s.shutdown()
        return took

    return asyncio.run(run())


def test_hammering_one_address_is_slowed_and_others_log_in(node):
    """Eight threads from 127.0.0.2 guess ann's ticket for 3 s (unthrottled, a router checks
    hundreds of tickets per second). With a budget of 5 failures and 2 slots answered 1-2 s late,
    only a handful are checked; meanwhile the real users log in from 127.0.0.3 at once."""
    outcomes: list[str] = []
    stop = time.monotonic() + 3.0
    lock = threading.Lock()

    def hammer(k):
        i = 0
        while time.monotonic() < stop:
            r = attempt(node, "127.0.0.2", "ann", f"guess-{k}-{i}")
            i += 1
            with lock:
                outcomes.append(r)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)  # the attack is under way (and 127.0.0.2 throttled) by now
        took = real_user_logins(node, "127.0.0.3", "joe")
        took += real_user_logins(node, "127.0.0.3", "cat", 1)
    finally:
        for t in threads:
            t.join(30)
    checked = outcomes.count("failed")
    assert "welcome" not in outcomes
    assert checked <= 40, f"{checked} wrong tickets checked in 3 s from one address"
    assert outcomes.count("refused") > 0
    assert max(took) < 2.0, f"the real user's logins took {took}"
    node.assert_alive()


def test_failures_for_one_authid_from_many_addresses_are_late_but_its_user_gets_in(node):
    """One wrong ticket for joe from each of 10 addresses (each within its own budget), all at
    once: joe's budget is 5, so 5 failures are answered 1-2 s late; joe himself, from another
    address, logs in at once meanwhile (successes are never delayed: no lockout)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def guess(i):
        t0 = time.monotonic()
        assert attempt(node, f"127.0.0.{10 + i}", "joe", f"wrong-{i}") == "failed"
        with lock:
            latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    took = real_user_logins(node, "127.0.0.3", "joe")
    for t in threads:
        t.join(30)
    assert len(latencies) == 10
    late = [x for x in latencies if x >= 0.95]
    assert len(late) >= 5, f"failure latencies {sorted(latencies)}"
    assert max(took) < 0.9, f"joe's logins took {took} while his failures were answered late"
    # the right ticket from one of those addresses gets in too: the address is within its budget
    assert attempt(node, "127.0.0.12", "joe", TICKETS["joe"]) == "welcome"


def test_closing_the_connection_does_not_free_the_slot(node):
    """From 127.0.0.4: the budget (5), then two wrong tickets whose connections close at once
    (their answers are due 1 and 2 s later): both slots stay taken, so the next HELLO from the
    address is refused unchecked; another address is unaffected."""
    for i in range(5):
        assert attempt(node, "127.0.0.4", "cat", f"wrong-{i}") == "failed"
    assert attempt(node, "127.0.0.4", "cat", "wrong-5", close_early=True) == "sent"
    assert attempt(node, "127.0.0.4", "cat", "wrong-6", close_early=True) == "sent"
    assert attempt(node, "127.0.0.4", "cat", TICKETS["cat"]) == "refused"
    assert attempt(node, "127.0.0.5", "cat", TICKETS["cat"]) == "welcome"
    time.sleep(2.2)  # the late answers are due: the slots are free again
    assert attempt(node, "127.0.0.4", "cat", TICKETS["cat"]) == "welcome"


def test_router_without_option_uses_the_defaults():
    from wampfabric.router.auth import throttle_of
    from wampfabric.router.realm import Router

    t = throttle_of(Router())
    assert (t.address_failures, t.authid_failures, t.max_pending) == (10, 10, 4)
