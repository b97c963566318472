"""An activation code is consumed only after the router has verified the cryptosign signature: an
attacker who knows the victim's email, public key and activation code, but not the private key,
activates nothing (the token stays pending, no user is created, the victim's code still works)."""

from __future__ import annotations

import pytest

from masternode import Key, activation_code, fabric_connect
from support.autobahn_client import JoinFailed
from wampfabric.master.schema import ActivationToken, GlobalSchema, open_global_db


def tokens_and_user(master, email):
    db = open_global_db(master.cbdir, readonly=True)
    try:
        gs = GlobalSchema.attach(db)
        with db.begin() as txn:
            tokens = [t for t in gs.activation_tokens.select(txn) if t.email == email]
            user = gs.idx_users_by_email.get_record(txn, email)
        return tokens, user
    finally:
        db.close()


async def test_right_code_with_a_wrong_signature_activates_nothing(master):
    email = "victim@example.com"
    victim = Key()
    with pytest.raises(JoinFailed) as e:
        await fabric_connect(master.url, victim, authid=email)
    assert e.value.reason == "fabric.auth-failed.new-user-auth-code-sent"
    code = activation_code(master, email)

    # the attacker: the victim's public key in HELLO, the right code, a signature of another key
    attacker = Key()
    attacker.pubkey = victim.pubkey
    for _ in range(2):
        with pytest.raises(JoinFailed) as e:
            await fabric_connect(master.url, attacker, authid=email, authextra={"activation_code": code})
        assert e.value.reason == "wamp.error.authentication_failed", e.value
    tokens, user = tokens_and_user(master, email)
    assert [t.status for t in tokens] == [ActivationToken.PENDING]
    assert user is None
    # a wrong signature is no wrong code: the activation is not counted down
    assert not tokens[0].extra.get("failed")

    # the victim, with the key, activates with the same code
    s = await fabric_connect(master.url, victim, authid=email, authextra={"activation_code": code})
    try:
        assert s.joined.result().authid == email
    finally:
        await s.close()
    tokens, user = tokens_and_user(master, email)
    assert [t.status for t in tokens] == [ActivationToken.ACTIVE]
    assert user is not None and user.email == email


async def test_registered_users_new_key_with_a_wrong_signature(master):
    """The same for a second key of a registered user (registered-user-auth-code-sent)."""
    email = "bob@example.com"
    k1 = Key()
    with pytest.raises(JoinFailed):
        await fabric_connect(master.url, k1, authid=email)
    s = await fabric_connect(master.url, k1, authid=email,
                             authextra={"activation_code": activation_code(master, email)})
    await s.close()
    (master.cbdir / "activation-codes" / f"{email}.code").unlink()
    k2 = Key()
    with pytest.raises(JoinFailed) as e:
        await fabric_connect(master.url, k2, authid=email)
    assert e.value.reason == "fabric.auth-failed.registered-user-auth-code-sent"
    code = activation_code(master, email)
    attacker = Key()
    attacker.pubkey = k2.pubkey
    with pytest.raises(JoinFailed):
        await fabric_connect(master.url, attacker, authid=email, authextra={"activation_code": code})
    tokens, _ = tokens_and_user(master, email)
    assert sorted(t.status for t in tokens if t.pubkey == k2.pubkey) == [ActivationToken.PENDING]
    # without a code the pending activation is still there
    with pytest.raises(JoinFailed) as e:
        await fabric_connect(master.url, k2, authid=email)
    assert e.value.reason == "fabric.auth-failed.pending-activation"
