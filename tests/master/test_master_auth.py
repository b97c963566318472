"""Authentication and authorization on the master, tried as users, nodes and attackers would:
autobahn-python sessions with cryptosign against a master started with the CLI."""

from __future__ import annotations

import os
import stat
import time

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from masternode import GLOBAL, Key, activation_code
from support.autobahn_client import JoinFailed, expect_error, w

M = "crossbarfabriccenter.mrealm."


async def join_fails(connect, master, key, reason, **kw) -> JoinFailed:
    with pytest.raises(JoinFailed) as ei:
        await connect(master, key, **kw)
    assert ei.value.reason == reason, f"{ei.value.reason}: {ei.value.message}"
    return ei.value


async def new_user(connect, master, email):
    """A user who went through activation: (key, session on the global realm)."""
    key = Key()
    await join_fails(connect, master, key, "fabric.auth-failed.new-user-auth-code-sent", authid=email)
    code = activation_code(master, email)
    s = await connect(master, key, authid=email, authextra={"activation_code": code})
    return key, s


@pytest.fixture(scope="module")
def names():
    n = iter(range(1000))
    return lambda stem: f"{stem}{next(n)}"


async def test_superuser_joins_global_and_every_mrealm_with_its_key(master, superuser, connect, names):
    su = await connect(master, superuser)
    details = su.joined.result()
    assert (details.realm, details.authid, details.authrole) == (GLOBAL, "superuser", "user")
    assert details.authmethod == "cryptosign"
    realm = names("su")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    on = await connect(master, superuser, realm=realm)
    assert (on.joined.result().realm, on.joined.result().authrole) == (realm, "owner")
    guest = await connect(master, superuser, realm=realm, authrole="guest")
    assert guest.joined.result().authrole == "guest"
    # the superuser's authid without its key is nobody: "superuser" is not even a valid user id
    await join_fails(connect, master, Key(), "fabric.auth-failed.invalid-parameters", authid="superuser")
    # a wrong signature for the superuser's key fails at the router
    bad = Key()
    bad.pubkey = superuser.pubkey
    await join_fails(connect, master, bad, "wamp.error.authentication_failed")


async def test_new_user_activation_flow(master, connect):
    key = Key()
    email = "alice.flow@example.com"
    e = await join_fails(connect, master, key, "fabric.auth-failed.new-user-auth-code-sent", authid=email)
    assert e.message == f"We have sent an authentication code to {email}."
    path = master.cbdir / "activation-codes" / f"{email}.code"
    code = activation_code(master, email)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(code) == 14 and code[4] == code[9] == "-"
    assert f"Activation code for {email}: {code}" in master.log()
    # no code while one is pending; a wrong code
    await join_fails(connect, master, key, "fabric.auth-failed.pending-activation", authid=email)
    await join_fails(connect, master, key, "fabric.auth-failed.invalid-activation-code", authid=email,
                     authextra={"activation_code": "AAAA-AAAA-AAAA"})
    # the code of one key does not activate another key
    other = Key()
    await join_fails(connect, master, other, "fabric.auth-failed.new-user-auth-code-sent", authid=email)
    s = await connect(master, key, authid=email, authextra={"activation_code": code})
    d = s.joined.result()
    assert (d.realm, d.authid, d.authrole) == (GLOBAL, email, "user")
    await s.close()
    # from now on the key logs in without a code; a code is refused
    s2 = await connect(master, key, authid=email)
    assert s2.joined.result().authid == email
    await join_fails(connect, master, key, "fabric.auth-failed.no-pending-activation", authid=email,
                     authextra={"activation_code": code})
    # the other key of a registered user gets a login code, not a registration
    code2 = activation_code(master, email)
    assert code2 != code


async def test_wrong_codes_cancel_the_activation(master, connect):
    key = Key()
    email = "mallory.guess@example.com"
    await join_fails(connect, master, key, "fabric.auth-failed.new-user-auth-code-sent", authid=email)
    code = activation_code(master, email)
    for _ in range(5):
        e = await join_fails(connect, master, key, "fabric.auth-failed.invalid-activation-code", authid=email,
                             authextra={"activation_code": "AAAA-AAAA-AAAA"})
    assert "cancelled" in e.message
    # the right code comes too late: the activation is gone
    await join_fails(connect, master, key, "fabric.auth-failed.no-pending-activation", authid=email,
                     authextra={"activation_code": code})


async def test_users_see_only_mrealms_they_have_a_role_on(master, superuser, connect, names):
    su = await connect(master, superuser)
    hidden = names("hidden")
    await w(su.call(M + "create_mrealm", {"name": hidden}))
    _, alice = await new_user(connect, master, "alice.filter@example.com")
    mine = names("alice")
    created = await w(alice.call(M + "create_mrealm", {"name": mine}))
    assert created["name"] == mine
    assert await w(alice.call(M + "list_mrealms", return_names=True)) == [mine]  # D9
    assert await w(alice.call(M + "list_mrealms")) == [created["oid"]]
    assert hidden in await w(su.call(M + "list_mrealms", return_names=True))
    # an mrealm without a role looks like one that does not exist
    await expect_error(alice.call(M + "get_mrealm_by_name", hidden), "crossbar.error.no_such_object")
    await expect_error(alice.call(M + "delete_mrealm_by_name", hidden), "crossbar.error.no_such_object")
    await expect_error(alice.call(M + "get_mrealm_by_name", "nosuchrealm"), "crossbar.error.no_such_object")


async def test_a_user_without_a_role_cannot_join_an_mrealm(master, superuser, connect, names):
    su = await connect(master, superuser)
    realm = names("private")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    key, _ = await new_user(connect, master, "eve.norole@example.com")
    e = await join_fails(connect, master, key, "wamp.error.not_authorized", authid="eve.norole@example.com",
                         realm=realm)
    assert e.message == f'no realm "{realm}" or user not permitted'
    # the same answer for an mrealm that does not exist (nothing tells which exist)
    e2 = await join_fails(connect, master, key, "wamp.error.not_authorized", authid="eve.norole@example.com",
                          realm="doesnotexist")
    assert e2.message == 'no realm "doesnotexist" or user not permitted'


async def test_roles_on_an_mrealm(master, superuser, connect, names):
    owner_key, owner = await new_user(connect, master, "olga.owner@example.com")
    realm = names("roles")
    await w(owner.call(M + "create_mrealm", {"name": realm}))
    guest_key, guest = await new_user(connect, master, "gus.guest@example.com")
    # only the owner sets roles
    await expect_error(guest.call(M + "set_roles_on_mrealm_for_user", realm, "gus.guest@example.com", ["owner"]),
                       "crossbar.error.no_such_object")
    await w(owner.call(M + "set_roles_on_mrealm_for_user", realm, "gus.guest@example.com", ["guest"]))
    assert await w(guest.call(M + "list_mrealms", return_names=True)) == [realm]
    # a guest may see, not pair, delete or give itself roles
    node_key = Key()
    await expect_error(guest.call(M + "pair_node", node_key.pubkey, realm, "edge1", None), "wamp.error.not_authorized")
    await expect_error(guest.call(M + "delete_mrealm_by_name", realm), "wamp.error.not_authorized")
    await expect_error(guest.call(M + "set_roles_on_mrealm_for_user", realm, "gus.guest@example.com", ["owner"]),
                       "wamp.error.not_authorized")
    # on the mrealm itself: the role is the one given; a higher one is refused
    on = await connect(master, guest_key, authid="gus.guest@example.com", realm=realm)
    assert on.joined.result().authrole == "guest"
    await join_fails(connect, master, guest_key, "wamp.error.not_authorized", authid="gus.guest@example.com",
                     realm=realm, authrole="owner")
    status = await w(on.call(M + "get_status"))
    assert status["realm"] == realm and status["type"] == "management"
    # a guest reads, it does not operate (the procedure need not even exist: the router refuses first)
    await expect_error(on.call("crossbarfabriccenter.remote.node.start_worker", "x", "rw1", "router"),
                       "wamp.error.not_authorized")
    # no human role may register or publish in the fabric's namespace (posing as a node or the master)
    owner_on = await connect(master, owner_key, authid="olga.owner@example.com", realm=realm)
    assert owner_on.joined.result().authrole == "owner"
    await expect_error(owner_on.register(lambda: None, "crossbarfabriccenter.node.edge1.get_status"),
                       "wamp.error.not_authorized")
    await expect_error(owner_on.publish("crossbarfabriccenter.node.on_heartbeat", "edge1", {},
                                        options=PublishOptions(acknowledge=True)), "wamp.error.not_authorized")
    # an owner operates: the router lets the call through to the remote API (which knows no node 'x')
    await expect_error(owner_on.call("crossbarfabriccenter.remote.node.start_worker", "x", "rw1", "router"),
                       "crossbar.error.no_such_object")
    # users on the global realm cannot register there either
    await expect_error(owner.register(lambda: None, "crossbarfabriccenter.domain.get_license2"),
                       "wamp.error.not_authorized")


async def pair(su, realm, name, authextra=None) -> tuple[Key, dict]:
    key = Key()
    node = await w(su.call(M + "pair_node", key.pubkey, realm, name, authextra))
    return key, node


async def test_node_authentication(master, superuser, connect, names):
    su = await connect(master, superuser)
    realm = names("nodes")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    # unpaired: refused at once, before any challenge
    stranger = Key()
    with pytest.raises(JoinFailed) as ei:
        await connect(master, stranger, authrole="node")
    assert ei.value.reason == "fabric.auth-failed.node-unpaired"
    key, node = await pair(su, realm, "edge1", {"note": "example", "on_start_apply_config": False})
    s = await connect(master, key, authrole="node")
    d = s.joined.result()
    assert (d.realm, d.authid, d.authrole) == (realm, "edge1", "node")
    assert d.authextra["note"] == "example" and d.authextra["on_start_apply_config"] is False
    assert d.authextra["x_cb_node"] == "center1" and d.authextra["x_cb_worker"] == "cfrouter1"
    assert s.challenged
    # a second session with the same key while the first is joined (D7)
    await join_fails(connect, master, key, "fabric.auth-failed.node-already-connected", authrole="node")
    assert s.is_attached()
    # a node that asks for a realm, even its own, is refused
    await s.close()
    await join_fails(connect, master, key, "fabric.auth-failed.invalid-parameters", authrole="node", realm=realm)
    # after the first session left, the node joins again
    s2 = await connect(master, key, authrole="node")
    assert s2.joined.result().authid == "edge1"


async def test_a_node_reaches_nothing_of_another_node(master, superuser, connect, names):
    su = await connect(master, superuser)
    realm = names("iso")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    k1, _ = await pair(su, realm, "edge1")
    k2, _ = await pair(su, realm, "edge2")
    n1 = await connect(master, k1, authrole="node")
    n2 = await connect(master, k2, authrole="node")
    await w(n2.register(lambda: "edge2 status", "crossbarfabriccenter.node.edge2.get_status"))
    await w(n1.register(lambda: "edge1 status", "crossbarfabriccenter.node.edge1.get_status"))
    await w(n1.register(lambda: None, "crossbarfabriccenter.node.edge1.worker.",
                        options=RegisterOptions(match="prefix")))
    # outside its prefix (another node's, a prefix covering others, the master's API)
    for uri, opts in (("crossbarfabriccenter.node.edge2.get_workers", None),
                      ("crossbarfabriccenter.node.edge", RegisterOptions(match="prefix")),
                      ("crossbarfabriccenter.node.", RegisterOptions(match="prefix")),
                      ("crossbarfabriccenter.node..get_status", RegisterOptions(match="wildcard")),
                      ("crossbarfabriccenter.mrealm.get_nodes", None),
                      ("com.example.proc", None)):
        await expect_error(n1.register(lambda: None, uri, options=opts), "wamp.error.not_authorized")
    # calling another node, or itself, or the remote API
    await expect_error(n1.call("crossbarfabriccenter.node.edge2.get_status"), "wamp.error.not_authorized")
    await expect_error(n1.call("crossbarfabriccenter.node.edge1.get_status"), "wamp.error.not_authorized")
    await expect_error(n1.call("crossbarfabriccenter.remote.node.get_status", "edge2"), "wamp.error.not_authorized")
    # publishing as another node, subscribing to anything
    await expect_error(n1.publish("crossbarfabriccenter.node.edge2.on_ready", options=PublishOptions(acknowledge=True)),
                       "wamp.error.not_authorized")
    await w(n1.publish("crossbarfabriccenter.node.edge1.on_ready", options=PublishOptions(acknowledge=True)))
    await w(n1.publish("crossbarfabriccenter.node.on_heartbeat", "edge1", {}, options=PublishOptions(acknowledge=True)))
    await expect_error(n1.subscribe(lambda *a: None, "crossbarfabriccenter.node.edge2.on_ready"),
                       "wamp.error.not_authorized")
    await expect_error(n1.subscribe(lambda *a: None, "crossbarfabriccenter.mrealm.on_tick"),
                       "wamp.error.not_authorized")
    # the one call a node makes: its uplink check
    status = await w(n1.call(M + "get_status"))
    assert status["realm"] == realm and status["nodes"] == 2 and status["nodes_online"] == 2
    # the owner reaches the node's procedures through the router
    owner = await connect(master, superuser, realm=realm)
    assert await w(owner.call("crossbarfabriccenter.node.edge2.get_status")) == "edge2 status"


async def test_nodes_of_one_mrealm_cannot_see_another(master, superuser, connect, names):
    su = await connect(master, superuser)
    r1, r2 = names("left"), names("right")
    for r in (r1, r2):
        await w(su.call(M + "create_mrealm", {"name": r}))
    k1, _ = await pair(su, r1, "edge1")
    k2, _ = await pair(su, r2, "edge1")  # the same name in another mrealm is another node
    n1 = await connect(master, k1, authrole="node")
    n2 = await connect(master, k2, authrole="node")
    assert n1.joined.result().realm == r1 and n2.joined.result().realm == r2
    await w(n2.register(lambda: "right", "crossbarfabriccenter.node.edge1.get_status"))
    await w(n1.register(lambda: "left", "crossbarfabriccenter.node.edge1.get_status"))
    o1 = await connect(master, superuser, realm=r1)
    assert await w(o1.call("crossbarfabriccenter.node.edge1.get_status")) == "left"


async def test_two_sessions_of_one_node_racing_through_the_challenge(master, superuser, connect, names):
    """Both HELLOs pass the authenticator before either session joined: the later one to join is
    closed at once, the first stays."""
    import asyncio

    from masternode import fabric_connect

    su = await connect(master, superuser)
    realm = names("race")
    await w(su.call(M + "create_mrealm", {"name": realm}))
    key, _ = await pair(su, realm, "edge1")
    gate = asyncio.Event()
    tasks = [asyncio.ensure_future(fabric_connect(master.url, key, authrole="node", gate=gate)) for _ in range(2)]
    await asyncio.sleep(0.5)  # both CHALLENGEs are out (the answers wait for the gate)
    gate.set()
    sessions = [s for s in await asyncio.gather(*tasks, return_exceptions=True) if not isinstance(s, BaseException)]
    try:
        assert sessions, "neither session joined"
        left = [s for s in sessions if s.left.done() or not s.is_attached()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len([s for s in sessions if s.is_attached()]) > 1 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        attached = [s for s in sessions if s.is_attached()]
        assert len(attached) == 1, f"{len(attached)} sessions of one node joined ({len(left)} left early)"
        closed = [s for s in sessions if s not in attached]
        for s in closed:
            d = await w(asyncio.shield(s.left))
            assert d is None or d.reason == "fabric.auth-failed.node-already-connected"
        assert await w(attached[0].call(M + "get_status"))
    finally:
        for s in sessions:
            await s.close()


async def test_pending_activations_are_bounded_per_email(master, connect):
    """Each HELLO of a new (email, key) pair makes a pending activation (a database record and a
    mail): at most 3 at once for one email, so that nobody can fill the database or flood somebody's
    mailbox through the master; the first keys' codes still work."""
    email = "bounded.mail@example.com"
    keys = [Key() for _ in range(4)]
    for key in keys[:3]:
        await join_fails(connect, master, key, "fabric.auth-failed.new-user-auth-code-sent", authid=email)
    e = await join_fails(connect, master, keys[3], "fabric.auth-failed.too-many-pending-activations", authid=email)
    assert "pending" in e.message
    assert "Activation for 'bounded.mail@example.com' refused: 3 activations are pending for this email" in master.log()
    # another email is not affected
    await join_fails(connect, master, Key(), "fabric.auth-failed.new-user-auth-code-sent", authid="other.mail@example.com")


def test_pending_activations_bounded_on_the_master_and_expired_ones_purged(tmp_path):
    from wampfabric.master.schema import open_global_db
    from wampfabric.master.store import MasterStore, TooManyActivations

    db = open_global_db(tmp_path)
    try:
        store = MasterStore(db)
        limits = {"ttl": 900, "max_pending": 3, "max_pending_per_email": 3}
        for i in range(3):
            store.add_activation(f"u{i}@example.com", f"{i:064x}", "CODE-CODE-CODE", True, **limits)
        with pytest.raises(TooManyActivations, match="3 activations are pending on this master"):
            store.add_activation("u9@example.com", "9" * 64, "CODE-CODE-CODE", True, **limits)
        # once they are older than the time to live, they are deleted and make room
        time.sleep(0.05)
        store.add_activation("u9@example.com", "9" * 64, "CODE-CODE-CODE", True, **dict(limits, ttl=0.01))
        assert store.activation("u0@example.com", f"{0:064x}") is None
        assert store.activation("u9@example.com", "9" * 64) is not None
    finally:
        db.close()
