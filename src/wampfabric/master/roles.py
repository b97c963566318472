"""The master's roles: who may do what on the global realm and on the management realms.

Deny unless permitted; every CALL, REGISTER, PUBLISH and SUBSCRIBE is checked (docs/fabric.md,
"Users and roles" and "Security model").

- Global realm ``com.crossbario.fabric``: role ``user`` (every authenticated user) may call the
  domain and mrealm API and subscribe to ``crossbarfabriccenter.`` events; the procedures then
  check the caller's rights on the mrealm in the database. Static permissions (``GLOBAL_ROLES``,
  written into ``config.json`` by ``master init``).
- Management realms: ``owner``, ``admin``, ``user``, ``guest`` (``MrealmRole``), ``node``
  (``NodeRole``) and ``backend`` (``BackendRole``: the master's own components, also installed on
  the global realm by the domain controller). These are in-process role objects (the router's role interface:
  ``authorize(uri, action, session)`` -> ``(allowed, disclose)``), installed on the realm when the
  master starts it: the node role depends on the session's authid, which static permissions
  cannot express, and an in-process check costs no round trip (a dynamic authorizer would).
"""

from __future__ import annotations

from ..router.urimap import PREFIX

FABRIC_PREFIX = "crossbarfabriccenter."
NODE_PREFIX = "crossbarfabriccenter.node."
HEARTBEAT_TOPICS = frozenset(("crossbarfabriccenter.node.on_heartbeat",
                              "crossbarfabriccenter.node.on_worker_heartbeat"))
# the only procedure of the master a node calls (its uplink check, protocol §5)
NODE_CALLABLE = frozenset(("crossbarfabriccenter.mrealm.get_status",))

DENY = (False, False)

# roles on an mrealm, as users_mrealm_roles stores them (Crossbar.io's UserRole numbers)
OWNER, ADMIN, USER, GUEST = 1, 2, 3, 4
ROLE_NAMES = {OWNER: "owner", ADMIN: "admin", USER: "user", GUEST: "guest"}
ROLE_NUMBERS = {v: k for k, v in ROLE_NAMES.items()}

# node procedures nobody may call through the master: Crossbar.io's edge registers its key's
# signing procedures (D1, a signing oracle); we never forward a call to them
NODE_DENIED = frozenset(("sign", "sign_challenge"))

# verbs (the start of a procedure's last URI component) a role may call on an mrealm
READ_VERBS = ("get_", "list_", "show_", "stat_")
OPERATE_VERBS = ("start_", "stop_")


def _perm(uri: str, call=False, subscribe=False) -> dict:
    return {"uri": uri, "match": "prefix",
            "allow": {"call": call, "register": False, "publish": False, "subscribe": subscribe},
            "disclose": {"caller": True, "publisher": False}, "cache": True}


# the global realm's roles (static permissions; the procedures check the caller's mrealm rights)
GLOBAL_ROLES = [
    {"name": "user", "permissions": [
        _perm(FABRIC_PREFIX, subscribe=True),
        _perm("crossbarfabriccenter.domain.", call=True, subscribe=True),
        _perm("crossbarfabriccenter.mrealm.", call=True, subscribe=True),
    ]},
]


def _literal_prefix(uri: str, match: str) -> str:
    """What every URI matched by a pattern starts with (a wildcard stops at its first empty component)."""
    if match == PREFIX:
        return uri
    lead = []
    comps = uri.split(".")
    for c in comps:
        if not c:
            break
        lead.append(c)
    return ".".join(lead) + ("." if len(lead) < len(comps) else "")


def _verb(uri: str) -> str:
    return uri.rpartition(".")[2]


class _Role:
    """The router's role interface (router/authorization.py): no dynamic authorizer to ask."""

    __slots__ = ("name", "config")
    dynamic = False

    def __init__(self, name: str):
        self.name = name
        # what the router's management API shows for the role
        self.config = {"name": name, "permissions": [], "authorizer": f"wampfabric.master.roles.{type(self).__name__}"}

    def names_exactly(self, uri: str, action: str) -> bool:
        return False  # no session of the master's realms is an rlink leg (router/broker.py)


class MrealmRole(_Role):
    """A user's role on a management realm (owner, admin, user, guest).

    - call: procedures under ``crossbarfabriccenter.``: guest reads (the last URI component starts
      with get_, list_, show_ or stat_), user also starts and stops (start_, stop_), admin and owner
      call everything (owner-only actions -- deleting the mrealm, setting roles, pairing -- are
      procedures of the global realm, checked there);
    - subscribe: events under ``crossbarfabriccenter.`` (a pattern only if all it matches is there);
    - register, publish: never (a user must not pose as a node or as the master);
    - never a node's ``sign`` / ``sign_challenge`` (Crossbar.io's edge registers them: D1).
    """

    __slots__ = ("level",)

    def __init__(self, name: str):
        super().__init__(name)
        self.level = ROLE_NUMBERS[name]

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        if not uri.startswith(FABRIC_PREFIX):
            return DENY
        if action == "subscribe":
            return True, False
        if action != "call":
            return DENY
        if uri.startswith(NODE_PREFIX) and _verb(uri) in NODE_DENIED:
            return DENY
        if self.level <= ADMIN:
            return True, True
        verb = _verb(uri)
        if verb.startswith(READ_VERBS) or (self.level <= USER and verb.startswith(OPERATE_VERBS)):
            return True, True
        return DENY

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        if action == "subscribe" and _literal_prefix(uri, match).startswith(FABRIC_PREFIX):
            return True, False
        return DENY


class NodeRole(_Role):
    """A paired edge node on its management realm (D1: a node reaches nothing of another node).

    - register: only ``crossbarfabriccenter.node.<its authid>.`` (exact or pattern inside it);
    - publish: its heartbeats (``crossbarfabriccenter.node.on_heartbeat``, ``...on_worker_heartbeat``)
      and its own events ``crossbarfabriccenter.node.<its authid>.``, with the publisher disclosed
      (the master checks that a heartbeat comes from the node it names);
    - call: ``crossbarfabriccenter.mrealm.get_status`` only;
    - subscribe: nothing.
    """

    __slots__ = ()

    def __init__(self, name: str = "node"):
        super().__init__(name)

    @staticmethod
    def own_prefix(session) -> str:
        return f"{NODE_PREFIX}{session.authid}."

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        if session is None or not session.authid:
            return DENY
        if action == "register":
            return (True, False) if uri.startswith(self.own_prefix(session)) else DENY
        if action == "publish":
            if uri in HEARTBEAT_TOPICS or uri.startswith(self.own_prefix(session)):
                return True, True
            return DENY
        if action == "call":
            return (True, True) if uri in NODE_CALLABLE else DENY
        return DENY

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        if action == "register" and session is not None and session.authid:
            prefix = self.own_prefix(session)
            if _literal_prefix(uri, match).startswith(prefix):
                return True, False
        return DENY


class BackendRole(_Role):
    """The master's own components (the change engine), authenticated with the master's key over
    its Unix socket, on the global realm and on every mrealm:

    - call: procedures under ``crossbarfabriccenter.`` (the mrealm API and nodes' management
      procedures: the change engine starts workers on nodes), never a node's ``sign`` /
      ``sign_challenge`` (D1); the domain API's procedures answer it only where they say so;
    - subscribe: events under ``crossbarfabriccenter.``;
    - register, publish: never.
    """

    __slots__ = ()

    def __init__(self, name: str = "backend"):
        super().__init__(name)

    def authorize(self, uri: str, action: str, session=None) -> tuple[bool, bool]:
        if not uri.startswith(FABRIC_PREFIX):
            return DENY
        if action == "subscribe":
            return True, False
        if action == "call":
            if uri.startswith(NODE_PREFIX) and _verb(uri) in NODE_DENIED:
                return DENY
            return True, True
        return DENY

    def authorize_pattern(self, uri: str, match: str, action: str, session=None) -> tuple[bool, bool]:
        if action == "subscribe" and _literal_prefix(uri, match).startswith(FABRIC_PREFIX):
            return True, False
        return DENY


def mrealm_role_objects() -> dict:
    """The role objects of a management realm, by name."""
    roles = {name: MrealmRole(name) for name in ROLE_NAMES.values()}
    roles["node"] = NodeRole()
    roles["backend"] = BackendRole()
    return roles
