"""The master's databases: the global schema (``.db-controller``) and one schema per management
realm (``.db-mrealm-<mrealm oid>``), in the master's node directory.

Reads like the design document's examples::

    gdb = open_global_db(cbdir); gschema = GlobalSchema.attach(gdb)
    with gdb.begin() as txn:
        print(gschema.usage.count(txn))
    mdb = open_mrealm_db(cbdir, oid); ms = MrealmSchema.attach(mdb)
    with mdb.begin() as txn:
        ms.mnode_logs.count(txn)
        ms.mworker_logs.select(txn, return_keys=True, reverse=True, limit=1)

Tables (key -> value; the encoding is wampfabric.db's docstring):

global ``.db-controller`` (default maxsize 128 MiB)
    ``users``               user oid (UUID) -> User; indexes ``users/by_email`` (str),
                            ``users/by_pubkey`` (str, hex)
    ``mrealms``             mrealm oid (UUID) -> ManagementRealm; index ``mrealms/by_name`` (str)
    ``users_mrealm_roles``  (user oid, mrealm oid) (UUID, UUID) -> UserMrealmRole
    ``nodes``               node oid (UUID) -> Node; indexes ``nodes/by_pubkey`` (str, hex),
                            ``nodes/by_authid`` ((mrealm oid, authid): UUID, str)
    ``activation_tokens``   token oid (UUID) -> ActivationToken; index
                            ``activation_tokens/by_email_pubkey`` ((email, pubkey): str, str)
    ``usage``               (timestamp, mrealm oid) (ns, UUID) -> MasterNodeUsage; indexes
                            ``usage/by_mrealm`` ((mrealm oid, timestamp): UUID, ns),
                            ``usage/pending`` ((timestamp, mrealm oid), records with status 1 only)
    ``node_configs``        node oid (UUID) -> NodeConfig: the node's desired state (the change
                            engine applies it; master/nodeconfig.py)

per mrealm ``.db-mrealm-<oid>`` (default maxsize 1 GiB)
    ``mnode_logs``          (timestamp, node oid) (ns, UUID) -> MNodeLog
    ``mworker_logs``        (timestamp, node oid, worker id) (ns, UUID, str) -> MWorkerLog
    ``routerclusters``      cluster oid (UUID) -> RouterCluster; index ``routerclusters/by_name`` (str)
    ``routercluster_node_memberships``
                            (cluster oid, node oid) (UUID, UUID) -> RouterClusterNodeMembership
    ``router_workergroups`` worker group oid (UUID) -> RouterWorkerGroup; index
                            ``router_workergroups/by_cluster`` ((cluster oid, name): UUID, str)
    ``arealms``             arealm oid (UUID) -> ApplicationRealm; index ``arealms/by_name`` (str)
    ``roles``               role oid (UUID) -> Role; index ``roles/by_name`` (str)
    ``permissions``         permission oid (UUID) -> Permission; index ``permissions/by_role``
                            ((role oid, uri, permission oid): UUID, str, UUID)
    ``arealm_role_associations``
                            (arealm oid, role oid) (UUID, UUID) -> ApplicationRealmRoleAssociation
    ``principals``          principal oid (UUID) -> Principal; index ``principals/by_authid``
                            ((arealm oid, authid): UUID, str)

The router cluster tables are master/routercluster.py's and master/arealm.py's (Crossbar.io keeps
them in the mrealm database too); ``status`` there is a string, ``"STOPPED"`` or ``"RUNNING"``.

Timestamps are integers, nanoseconds since the Unix epoch (UTC); public keys are the 64-hex
Ed25519 keys as Crossbar.io writes them, except MasterNodeUsage.pubkey (32 bytes, as the design
document's metering records show).
"""

from __future__ import annotations

import os
import re
import uuid
import weakref
from pathlib import Path

from ..db import (Database, RecordValue, Record, StrKey, Table, TimestampKey, TupleKey,
                  UuidKey)
from ..protocol.metering import MSG_TYPES

__all__ = [
    "User", "ManagementRealm", "UserMrealmRole", "Node", "ActivationToken", "MasterNodeUsage",
    "MNodeLog", "MWorkerLog", "NodeConfig", "GlobalSchema", "MrealmSchema",
    "RouterCluster", "RouterClusterNodeMembership", "RouterWorkerGroup", "ApplicationRealm", "Role",
    "Permission", "ApplicationRealmRoleAssociation", "Principal",
    "GLOBAL_DB", "MREALM_DB_PREFIX", "GLOBAL_DB_MAXSIZE", "MREALM_DB_MAXSIZE",
    "open_global_db", "open_mrealm_db", "global_db_path", "mrealm_db_path", "find_mrealm_dbs",
    "ROLE_OWNER", "ROLE_ADMIN", "ROLE_USER", "ROLE_GUEST", "ROLE_NAMES",
]

GLOBAL_DB = ".db-controller"
MREALM_DB_PREFIX = ".db-mrealm-"
GLOBAL_DB_MAXSIZE = 128 * 2**20
MREALM_DB_MAXSIZE = 2**30

# roles of a user on an mrealm (users_mrealm_roles), as Crossbar.io numbers them
ROLE_OWNER, ROLE_ADMIN, ROLE_USER, ROLE_GUEST = 1, 2, 3, 4
ROLE_NAMES = {ROLE_OWNER: "owner", ROLE_ADMIN: "admin", ROLE_USER: "user", ROLE_GUEST: "guest"}

# the fields every configuration object has (Crossbar.io's ConfigurationElement)
_ELEMENT = {"oid": "uuid", "label": "str", "description": "str", "tags": "list"}


class User(Record):
    """A user of the domain (``users``): ``registered`` in ns; ``pubkey`` hex or None."""

    FIELDS = {**_ELEMENT, "email": "str", "registered": "int", "pubkey": "str"}


class ManagementRealm(Record):
    """A management realm (``mrealms``): ``owner`` is the creating user's oid, ``created`` in ns."""

    FIELDS = {**_ELEMENT, "name": "str", "created": "int", "owner": "uuid",
              "cf_node": "str", "cf_router_worker": "str", "cf_container_worker": "str"}


class UserMrealmRole(Record):
    """The roles of a user on an mrealm (``users_mrealm_roles``): a list of ROLE_* numbers."""

    FIELDS = {"roles": "list"}
    DEFAULTS = {"roles": []}


class Node(Record):
    """A node paired into an mrealm (``nodes``): ``authid`` is the node's name in the mrealm,
    ``authextra`` the pairing's authextra (sent to the node in WELCOME)."""

    FIELDS = {**_ELEMENT, "owner_oid": "uuid", "pubkey": "str", "cluster_ip": "str",
              "mrealm_oid": "uuid", "authid": "str", "authextra": "dict"}


class ActivationToken(Record):
    """An activation code for a new public key (``activation_tokens``): ``atype`` 1 = login,
    ``status`` 1 pending, 2 active (used), 3 expired; ``created`` / ``completed`` in ns."""

    FIELDS = {"oid": "uuid", "atype": "int", "status": "int", "created": "int", "completed": "int",
              "code": "str", "email": "str", "pubkey": "str"}

    PENDING, ACTIVE, EXPIRED = 1, 2, 3


class NodeConfig(Record):
    """A node's desired state (``node_configs``, keyed by the node's oid): ``config`` a Crossbar.io
    version-2 config whose ``workers`` the change engine starts on the node (master/nodeconfig.py);
    ``exclusive``: it also stops what the node runs beyond it; ``modified`` in ns, ``modified_by``
    the caller's authid; ``version`` counts the changes."""

    FIELDS = {"node_oid": "uuid", "mrealm_oid": "uuid", "config": "dict", "exclusive": "bool",
              "modified": "int", "modified_by": "str", "version": "int"}
    DEFAULTS = {"exclusive": False, "version": 0}


_MSG_TYPES = MSG_TYPES  # wampfabric.protocol.metering: the message types a usage record counts


class MasterNodeUsage(Record):
    """An aggregated usage metering record (``usage``), one per mrealm per interval.

    ``timestamp_from`` .. ``timestamp``: the interval (ns); ``pubkey``: the master's public key
    (32 bytes); ``seq``: the heartbeat loop iteration that aggregated it; ``count``: worker
    heartbeat records aggregated; ``nodes``: node-seconds; ``controllers`` ... ``marketmakers``:
    worker-seconds of each worker type; ``sessions``: session-seconds; ``msgs_*``: messages in the
    interval; ``processed`` (aggregated) / ``sent`` (acknowledged by the metering service): ns;
    ``status`` 1 received (local, to submit), 2 submitted, 3 refused for good (a conflicting record
    at the service); ``status_message``: why the last submission failed; ``metering_id``: the
    metering service's UUID of the record (master/metering.py).
    """

    FIELDS = {
        "timestamp": "int", "timestamp_from": "int", "mrealm_id": "uuid", "pubkey": "bytes",
        "seq": "int", "count": "int", "nodes": "int", "controllers": "int", "routers": "int",
        "containers": "int", "guests": "int", "proxies": "int", "hostmonitors": "int",
        "marketmakers": "int", "sessions": "int",
        **{f"msgs_{m}": "int" for m in _MSG_TYPES},
        "processed": "int", "sent": "int", "status": "int", "status_message": "str",
        "metering_id": "uuid",
    }
    DEFAULTS = {name: 0 for name, kind in FIELDS.items()
                if kind == "int" and name not in ("timestamp", "timestamp_from", "processed", "sent")}

    RECEIVED, SUBMITTED, FAILED = 1, 2, 3


class MNodeLog(Record):
    """A node heartbeat as stored (``mnode_logs``): ``timestamp`` = the master's receive time,
    ``sent`` = the node's own time (ns); ``workers`` = count per worker type; ``cpu``, ``memory``,
    ``network``, ``disk`` = the heartbeat's system stats as sent."""

    FIELDS = {"timestamp": "int", "node_id": "uuid", "mrealm_id": "uuid", "period": "int",
              "state": "int", "session": "int", "sent": "int", "seq": "int", "workers": "dict",
              "cpu": "dict", "memory": "dict", "network": "dict", "disk": "dict"}


class MWorkerLog(Record):
    """A worker heartbeat as stored (``mworker_logs``): ``timestamp`` = receive time, ``sent`` =
    the node's time (ns); ``process`` = the process stats; ``router`` = for router workers
    ``{"sessions", "roles", "messages": {type: count}}``."""

    FIELDS = {"timestamp": "int", "node_id": "uuid", "worker_id": "str", "mrealm_id": "uuid",
              "period": "int", "type": "str", "state": "int", "sent": "int", "seq": "int",
              "process": "dict", "router": "dict"}


class RouterCluster(Record):
    """A router cluster definition (``routerclusters``): ``changed`` in ns, ``owner_oid`` the
    creating user; ``status`` "STOPPED" / "RUNNING"."""

    FIELDS = {**_ELEMENT, "name": "str", "status": "str", "changed": "int", "owner_oid": "uuid"}


class RouterClusterNodeMembership(Record):
    """A node of a router cluster (``routercluster_node_memberships``): Crossbar.io's
    ``softlimit`` (stored, not used) / ``hardlimit`` (at most this many router workers of each of the
    cluster's worker groups on the node), and
    where the node's router workers listen: worker k (1-based) of a worker group for clients on
    ``client_port + offset + k - 1``, for the other workers' links on ``link_port + offset + k - 1``
    (master/routercluster.py); ``link_host`` is where the other nodes reach the link listener."""

    FIELDS = {"cluster_oid": "uuid", "node_oid": "uuid", "softlimit": "int", "hardlimit": "int",
              "client_port": "int", "client_interface": "str", "link_port": "int", "link_interface": "str",
              "link_host": "str", "changed": "int"}


class RouterWorkerGroup(Record):
    """A router worker group of a cluster (``router_workergroups``): ``scale`` router workers on every
    member node, named ``<name>_<k>``."""

    FIELDS = {**_ELEMENT, "cluster_oid": "uuid", "name": "str", "scale": "int", "status": "str",
              "changed": "int"}
    DEFAULTS = {"scale": 1}


class ApplicationRealm(Record):
    """An application realm (``arealms``): started on a router worker group (``workergroup_oid``);
    ``webcluster_oid`` is always None here (no web clusters)."""

    FIELDS = {**_ELEMENT, "name": "str", "status": "str", "workergroup_oid": "uuid", "webcluster_oid": "uuid",
              "changed": "int", "owner_oid": "uuid"}


class Role(Record):
    """An application role of the mrealm (``roles``), given to arealms by association."""

    FIELDS = {**_ELEMENT, "name": "str", "created": "int", "owner_oid": "uuid"}


class Permission(Record):
    """A permission of a role (``permissions``), Crossbar.io's flat shape: ``match`` "exact", "prefix"
    or "wildcard"; ``allow_*`` / ``disclose_*`` / ``cache`` booleans."""

    FIELDS = {"oid": "uuid", "role_oid": "uuid", "uri": "str", "match": "str", "allow_call": "bool",
              "allow_register": "bool", "allow_publish": "bool", "allow_subscribe": "bool",
              "disclose_caller": "bool", "disclose_publisher": "bool", "cache": "bool", "created": "int"}


class ApplicationRealmRoleAssociation(Record):
    """A role of an arealm (``arealm_role_associations``)."""

    FIELDS = {"arealm_oid": "uuid", "role_oid": "uuid", "changed": "int"}


class Principal(Record):
    """A principal of an arealm (``principals``): its ``authid`` and role, and its credentials
    (inline, unlike Crossbar.io's separate credentials): cryptosign ``authorized_keys`` (64-hex
    Ed25519 public keys) and/or a ``ticket`` (stored as given: the master hands it to the nodes'
    transports; the API never returns it)."""

    FIELDS = {"oid": "uuid", "arealm_oid": "uuid", "authid": "str", "role_oid": "uuid", "authextra": "dict",
              "authorized_keys": "list", "ticket": "str", "modified": "int"}


class GlobalSchema:
    """The tables of the global database (``.db-controller``); see the module docstring."""

    def __init__(self, db: Database):
        self.db = db
        self.users = Table(db, "users", UuidKey(), RecordValue(User))
        self.idx_users_by_email = self.users.add_index("by_email", StrKey(), lambda r: r.email)
        self.idx_users_by_pubkey = self.users.add_index("by_pubkey", StrKey(), lambda r: r.pubkey)

        self.mrealms = Table(db, "mrealms", UuidKey(), RecordValue(ManagementRealm))
        self.idx_mrealms_by_name = self.mrealms.add_index("by_name", StrKey(), lambda r: r.name)

        self.users_mrealm_roles = Table(db, "users_mrealm_roles", TupleKey(UuidKey(), UuidKey()),
                                        RecordValue(UserMrealmRole))

        self.nodes = Table(db, "nodes", UuidKey(), RecordValue(Node))
        self.idx_nodes_by_pubkey = self.nodes.add_index("by_pubkey", StrKey(), lambda r: r.pubkey)
        self.idx_nodes_by_authid = self.nodes.add_index(
            "by_authid", TupleKey(UuidKey(), StrKey()),
            lambda r: None if r.mrealm_oid is None or r.authid is None else (r.mrealm_oid, r.authid))

        self.activation_tokens = Table(db, "activation_tokens", UuidKey(), RecordValue(ActivationToken))
        self.idx_activation_tokens_by_email_pubkey = self.activation_tokens.add_index(
            "by_email_pubkey", TupleKey(StrKey(), StrKey()),
            lambda r: None if r.email is None or r.pubkey is None else (r.email, r.pubkey))

        self.usage = Table(db, "usage", TupleKey(TimestampKey(), UuidKey()), RecordValue(MasterNodeUsage),
                           sequential=True)
        # an mrealm's records in time order (its newest: where its next aggregation starts)
        self.idx_usage_by_mrealm = self.usage.add_index(
            "by_mrealm", TupleKey(UuidKey(), TimestampKey()),
            lambda r: None if r.mrealm_id is None or r.timestamp is None else (r.mrealm_id, r.timestamp))
        # the records still to submit (status 1), oldest first
        self.idx_usage_pending = self.usage.add_index(
            "pending", TupleKey(TimestampKey(), UuidKey()),
            lambda r: (r.timestamp, r.mrealm_id) if r.status == MasterNodeUsage.RECEIVED else None)

        self.node_configs = Table(db, "node_configs", UuidKey(), RecordValue(NodeConfig))

    @classmethod
    def attach(cls, db: Database) -> GlobalSchema:
        """The schema on ``db``; every component attaching to the same Database gets the same one."""
        return _attach(cls, db)


class MrealmSchema:
    """The tables of one management realm's database (``.db-mrealm-<oid>``)."""

    def __init__(self, db: Database):
        self.db = db
        self.mnode_logs = Table(db, "mnode_logs", TupleKey(TimestampKey(), UuidKey()), RecordValue(MNodeLog),
                                sequential=True)
        self.mworker_logs = Table(db, "mworker_logs", TupleKey(TimestampKey(), UuidKey(), StrKey()),
                                  RecordValue(MWorkerLog), sequential=True)

        # router clusters and application realms (master/routercluster.py, master/arealm.py)
        self.routerclusters = Table(db, "routerclusters", UuidKey(), RecordValue(RouterCluster))
        self.idx_routerclusters_by_name = self.routerclusters.add_index("by_name", StrKey(), lambda r: r.name)
        self.routercluster_node_memberships = Table(db, "routercluster_node_memberships",
                                                    TupleKey(UuidKey(), UuidKey()),
                                                    RecordValue(RouterClusterNodeMembership))
        self.router_workergroups = Table(db, "router_workergroups", UuidKey(), RecordValue(RouterWorkerGroup))
        self.idx_workergroups_by_cluster = self.router_workergroups.add_index(
            "by_cluster", TupleKey(UuidKey(), StrKey()),
            lambda r: None if r.cluster_oid is None or r.name is None else (r.cluster_oid, r.name))
        self.arealms = Table(db, "arealms", UuidKey(), RecordValue(ApplicationRealm))
        self.idx_arealms_by_name = self.arealms.add_index("by_name", StrKey(), lambda r: r.name)
        self.roles = Table(db, "roles", UuidKey(), RecordValue(Role))
        self.idx_roles_by_name = self.roles.add_index("by_name", StrKey(), lambda r: r.name)
        self.permissions = Table(db, "permissions", UuidKey(), RecordValue(Permission))
        self.idx_permissions_by_role = self.permissions.add_index(
            "by_role", TupleKey(UuidKey(), StrKey(), UuidKey()),
            lambda r: None if r.role_oid is None or r.uri is None else (r.role_oid, r.uri, r.oid))
        self.arealm_role_associations = Table(db, "arealm_role_associations", TupleKey(UuidKey(), UuidKey()),
                                              RecordValue(ApplicationRealmRoleAssociation))
        self.principals = Table(db, "principals", UuidKey(), RecordValue(Principal))
        self.idx_principals_by_authid = self.principals.add_index(
            "by_authid", TupleKey(UuidKey(), StrKey()),
            lambda r: None if r.arealm_oid is None or r.authid is None else (r.arealm_oid, r.authid))

    @classmethod
    def attach(cls, db: Database) -> MrealmSchema:
        """The schema on ``db``; every component attaching to the same Database gets the same one."""
        return _attach(cls, db)


_attached: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _attach(cls, db: Database):
    schemas = _attached.setdefault(db, {})
    if cls not in schemas:
        schemas[cls] = cls(db)
    return schemas[cls]


def global_db_path(cbdir: str | os.PathLike) -> Path:
    return Path(cbdir) / GLOBAL_DB


def mrealm_db_path(cbdir: str | os.PathLike, mrealm_oid: uuid.UUID | str) -> Path:
    oid = mrealm_oid if isinstance(mrealm_oid, uuid.UUID) else uuid.UUID(str(mrealm_oid))
    return Path(cbdir) / f"{MREALM_DB_PREFIX}{oid}"


def open_global_db(cbdir: str | os.PathLike, maxsize: int = GLOBAL_DB_MAXSIZE, readonly: bool = False,
                   **kw) -> Database:
    """The master's global database ``<cbdir>/.db-controller`` (created unless ``readonly``)."""
    return Database(global_db_path(cbdir), maxsize, readonly=readonly, **kw)


def open_mrealm_db(cbdir: str | os.PathLike, mrealm_oid: uuid.UUID | str, maxsize: int = MREALM_DB_MAXSIZE,
                   readonly: bool = False, **kw) -> Database:
    """The database of one management realm ``<cbdir>/.db-mrealm-<oid>`` (created unless ``readonly``)."""
    return Database(mrealm_db_path(cbdir, mrealm_oid), maxsize, readonly=readonly, **kw)


_MREALM_DIR = re.compile(re.escape(MREALM_DB_PREFIX) + r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def find_mrealm_dbs(cbdir: str | os.PathLike) -> list[tuple[uuid.UUID, Path]]:
    """(mrealm oid, path) of every mrealm database directory in ``cbdir``, sorted by oid."""
    found = []
    for entry in Path(cbdir).iterdir():
        m = _MREALM_DIR.match(entry.name)
        if m and entry.is_dir():
            found.append((uuid.UUID(m.group(1)), entry))
    return sorted(found)
