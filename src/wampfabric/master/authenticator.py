"""The master's authenticator: cryptosign only, users and nodes (protocol §3, §4).

It is the ``function`` provider of the master's WebSocket transport (``master init`` writes it into
``config.json``)::

    "auth": {"cryptosign": {"type": "function", "create": "wampfabric.master.authenticator.create"}}

and runs in the router worker, in-process: no socket, no listener and no role grants anything
without a key (D2). The router has already checked that ``authextra.pubkey`` is 64 hex digits; once
this function returns a principal, the router sends the CHALLENGE and verifies the signature, so a
principal is only granted to whoever holds the private key.

Users (HELLO without ``authrole: "node"``):

- realm null or ``com.crossbario.fabric`` -> the global realm, role ``user``;
- realm = an mrealm name -> the user's role there from ``users_mrealm_roles`` (the one requested
  in HELLO if the user has it, else the highest the user has); no role, or no such mrealm: ABORT
  ``wamp.error.not_authorized`` ``no realm "<name>" or user not permitted`` (the same text for
  both, so nothing tells whether an mrealm exists);
- the superuser's key (``CROSSBAR_FABRIC_SUPERUSER``): authid ``superuser``, role ``user``
  globally, ``owner`` (or the role requested) on every mrealm; only with the key;
- an unknown (email, key) pair: the activation flow of protocol §3 (codes written to the master
  log and to ``activation-codes/<email>.code`` (0600) in the node directory).

The master's own key (``key.pub`` of its node directory), over the Unix socket ``sock2`` only:
authid ``backend``, role ``backend`` on the global realm or an mrealm (the change engine). An
activation with the right code yields a principal whose ``on_success`` the router calls after it
has verified the signature: only then is the code consumed and the user created.

Nodes (``authrole: "node"``, realm null): the key is looked up in ``nodes``; unpaired ->
``fabric.auth-failed.node-unpaired`` at once (no CHALLENGE); paired -> realm = its mrealm's name,
authid = its pairing name, authextra = its pairing authextra (the router adds ``x_cb_*``); while a
session of that node is joined, a second one is refused (``fabric.auth-failed.node-already-connected``,
D7); a node that asks for a realm is refused (the master assigns it).
"""

from __future__ import annotations

import logging

from ..client.session import ApplicationError
from .roles import ROLE_NAMES, ROLE_NUMBERS
from . import runtime as rt

log = logging.getLogger("wampfabric.master.authenticator")

GLOBAL_REALM = "com.crossbario.fabric"

ERROR_INVALID_PARAMETERS = "fabric.auth-failed.invalid-parameters"
ERROR_PENDING_ACTIVATION = "fabric.auth-failed.pending-activation"
ERROR_NO_PENDING_ACTIVATION = "fabric.auth-failed.no-pending-activation"
ERROR_INVALID_ACTIVATION_CODE = "fabric.auth-failed.invalid-activation-code"
ERROR_NODE_UNPAIRED = "fabric.auth-failed.node-unpaired"
ERROR_NODE_ALREADY_CONNECTED = "fabric.auth-failed.node-already-connected"
ERROR_NEW_USER = "fabric.auth-failed.new-user-auth-code-sent"
ERROR_REGISTERED_USER = "fabric.auth-failed.registered-user-auth-code-sent"
ERROR_NOT_AUTHORIZED = "wamp.error.not_authorized"
BACKEND_AUTHID = "backend"


def create(config: dict, controller=None):
    """The ``function`` provider's factory (router/auth.py): returns the authenticator."""
    return authenticate


async def authenticate(realm, authid, details: dict) -> dict:
    """``(realm, authid, details)`` -> a principal, or ApplicationError (the ABORT the peer gets)."""
    master = rt.current()
    extra = details.get("authextra") or {}
    pubkey = extra.get("pubkey")
    authrole = details.get("authrole")
    if not isinstance(pubkey, str):
        raise ApplicationError(ERROR_INVALID_PARAMETERS, "authextra.pubkey is mandatory")
    pubkey = pubkey.lower()
    if master.master_pubkey is not None and pubkey == master.master_pubkey:
        return authenticate_backend(master, realm, details)
    if authrole == "node":
        return authenticate_node(master, realm, pubkey)
    return authenticate_user(master, realm, authid, authrole, pubkey, extra)


def authenticate_node(master, realm, pubkey: str) -> dict:
    if realm is not None:
        raise ApplicationError(ERROR_INVALID_PARAMETERS,
                               "a node must not request a realm: the master assigns its management realm")
    node = master.store.node_by_pubkey(pubkey)
    if node is None:
        log.info("unpaired node with public key %s refused", pubkey)
        raise ApplicationError(ERROR_NODE_UNPAIRED,
                               "This node is unpaired. Please pair the node with management realm first.")
    mrealm = master.store.mrealm(node.mrealm_oid)
    if mrealm is None or mrealm.name not in master.router.realms:
        raise ApplicationError(ERROR_NOT_AUTHORIZED, "the management realm of this node is not running")
    if master.node_session(mrealm.name, node.authid) is not None:
        log.warning("node '%s' (mrealm '%s', key %s) is already connected: second session refused",
                    node.authid, mrealm.name, pubkey)
        raise ApplicationError(ERROR_NODE_ALREADY_CONNECTED,
                               "A node with this pubkey/node_id/authid is already connected.")
    authextra = dict(node.authextra or {})
    return {"realm": mrealm.name, "authid": node.authid, "role": "node", "pubkey": pubkey,
            "extra": authextra or None}


def _role_on(master, user, realm: str, authrole) -> str:
    """The role name a user takes on mrealm ``realm`` (ApplicationError if none)."""
    refused = ApplicationError(ERROR_NOT_AUTHORIZED, f'no realm "{realm}" or user not permitted')
    mrealm = master.store.mrealm_by_name(realm)
    if mrealm is None or realm not in master.router.realms:
        raise refused
    roles = sorted(master.store.roles(user.oid, mrealm.oid)) if user is not None else []
    if not roles:
        raise refused
    if authrole is None:
        return ROLE_NAMES[roles[0]]
    if ROLE_NUMBERS.get(authrole) not in roles:
        raise refused
    return authrole


def authenticate_user(master, realm, authid, authrole, pubkey: str, extra: dict) -> dict:
    global_realm = realm is None or realm == GLOBAL_REALM
    if master.superuser_pubkey is not None and pubkey == master.superuser_pubkey:
        if global_realm:
            return {"realm": GLOBAL_REALM, "authid": "superuser", "role": "user", "pubkey": pubkey}
        role = authrole if authrole in ROLE_NUMBERS else "owner"
        if realm not in master.router.realms or master.store.mrealm_by_name(realm) is None:
            raise ApplicationError(ERROR_NOT_AUTHORIZED, f'no realm "{realm}" or user not permitted')
        return {"realm": realm, "authid": "superuser", "role": role, "pubkey": pubkey}

    activation_code = extra.get("activation_code")
    if not isinstance(authid, str) or not rt.valid_email(authid):
        raise ApplicationError(ERROR_INVALID_PARAMETERS,
                               "Invalid parameters in authentication: authid must be the user's email address")
    if activation_code is not None and not isinstance(activation_code, str):
        raise ApplicationError(ERROR_INVALID_PARAMETERS, "Invalid parameters in authentication: activation_code")
    state = master.activation_state(authid, pubkey, activation_code,
                                    bool(extra.get("request_new_activation_code")))
    # state is the user once the (email, key) pair is active, or the right code not used yet
    # (PendingActivation): anything else raised
    pending = state if isinstance(state, rt.PendingActivation) else None
    user = pending.user if pending is not None else state
    if global_realm:
        principal = {"realm": GLOBAL_REALM, "authid": authid, "role": "user", "pubkey": pubkey}
    else:
        principal = {"realm": realm, "authid": authid, "role": _role_on(master, user, realm, authrole),
                     "pubkey": pubkey}
    if pending is not None:
        # the code is consumed (and a new user created) only once the router has verified the
        # signature: someone with the email, the public key and the code but not the private key
        # activates nothing
        principal["on_success"] = pending.confirm
    return principal


def authenticate_backend(master, realm, details: dict) -> dict:
    """The master's own key: role ``backend`` (its components: the change engine), over the Unix
    socket only (the master's ``sock2``, mode 0600); on the global realm or a running mrealm."""
    peer = ((details.get("transport") or {}).get("peer") or "")
    if not peer.startswith("unix"):
        log.warning("the master's own key was offered over %s: refused (backend sessions use the Unix socket)", peer)
        raise ApplicationError(ERROR_NOT_AUTHORIZED, "the master's key authenticates only over its Unix socket")
    if realm is None or realm == GLOBAL_REALM:
        return {"realm": GLOBAL_REALM, "authid": BACKEND_AUTHID, "role": "backend", "pubkey": master.master_pubkey}
    if realm not in master.router.realms or master.store.mrealm_by_name(realm) is None:
        raise ApplicationError(ERROR_NOT_AUTHORIZED, f'no realm "{realm}" or user not permitted')
    return {"realm": realm, "authid": BACKEND_AUTHID, "role": "backend", "pubkey": master.master_pubkey}
