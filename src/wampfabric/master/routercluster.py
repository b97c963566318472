"""Router clusters on the master: their definitions and what each member node should run (issue 16,
"Router clusters (master)"; the design document's "RLinks" and "Master node controller components").

A part of the mrealm controller (``master/mrealm.py`` ``PARTS``), on the mrealm database the
heartbeat part opened (``.db-mrealm-<oid>``, tables in master/schema.py). Procedures under
``crossbarfabriccenter.mrealm.routercluster.``, names and arguments as Crossbar.io 26.10's
(``crossbar/master/cluster/routercluster.py``); events ``on_routercluster_created`` / ``_deleted`` /
``_starting`` / ``_started`` / ``_stopping`` / ``_stopped``, ``on_routercluster_node_added`` /
``_removed``, ``on_workergroup_added`` / ``_removed`` (one positional argument: the object).

Who may: the mrealm's router roles (master/roles.py: guest reads, user also starts and stops, admin
and owner change); ``get_routercluster_wiring`` (it holds tickets) only owner, admin and ``backend``.

Definitions (differences from Crossbar.io stated):

- **status**: ``"STOPPED"`` or ``"RUNNING"``; ``start_*`` makes a definition RUNNING at once (the
  events ``..._starting`` and ``..._started`` follow each other); the change engine then wires each
  member node that is online (``stat_routercluster`` shows the nodes). A worker group's status follows
  its cluster's.
- **worker group**: ``scale`` router workers on *every* member node (Crossbar.io spreads ``scale``
  workers over the nodes), named ``<group name>_<k>``, k = 1..scale (at most the membership's
  ``hardlimit``; its ``softlimit`` is stored, not used).
- **membership** (``add_routercluster_node(cluster, node, config)``): where the node's router
  workers listen. Worker k of a group listens for clients on ``client_port + offset + k - 1`` and for
  the other workers' links on ``link_port + offset + k - 1``, ``offset`` being the number of workers
  of the cluster's groups before it (by name) on that node; ``client_interface`` / ``link_interface``
  the listening addresses (default all); ``link_host`` where the other nodes reach the link listener
  (default the node's ``cluster_ip``, else 127.0.0.1).

What a member node runs for a RUNNING cluster, for each worker group with a RUNNING arealm
(``wiring``, read by the change engine through ``get_routercluster_wiring(node_oid)``):

- router workers ``<group>_<k>``;
- on each, every RUNNING arealm of the group as a realm (realm ID = name) with the arealm's roles
  and the role ``wampfabric.rlink`` (everything, caller and publisher disclosed) for the links;
- transport ``client``: WebSocket on the client port, with the arealms' principals (cryptosign
  ``authorized_keys``, ``ticket``), each bound to its realm and role;
- transport ``link``: WebSocket on the link port, cryptosign, one principal per member node (authid
  = node name, its public key from the pairing, role ``wampfabric.rlink``);
- links (``start_router_realm_link``) making all router workers of the group, on all member nodes,
  a full mesh: the pair's link is configured on the worker that sorts first by (node name, worker
  ID), with ID ``to_<peer node>_<peer worker>``, cryptosign with the node key (authid = node name).

``managed`` lists the worker IDs of every worker group of the mrealm: the engine stops those a node
runs without wanting them (a node removed from a cluster, a stopped cluster).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from ..client.session import ApplicationError
from .api import ALREADY_EXISTS, INVALID_ARGUMENT, NO_SUCH_OBJECT, NOT_AUTHORIZED, publish, register_all
from .schema import (MrealmSchema, RouterCluster, RouterClusterNodeMembership, RouterWorkerGroup)

log = logging.getLogger("wampfabric.master.routercluster")

PREFIX = "crossbarfabriccenter.mrealm.routercluster."
NOT_STOPPED = "crossbar.error.not_stopped"
CANNOT_START = "crossbar.error.cannot_start"
CANNOT_STOP = "crossbar.error.cannot_stop"

STOPPED, RUNNING = "STOPPED", "RUNNING"
ONLINE, OFFLINE = "online", "offline"

# names of clusters and worker groups: one URI component (worker IDs are <group>_<k>)
NAME = re.compile(r"[a-z][a-z0-9_\-]{0,63}")
DEFAULT_CLIENT_PORT = 8080
DEFAULT_LINK_PORT = 8180
RLINK_ROLE = "wampfabric.rlink"
RLINK_MARKER = "wampfabric.rlink.leg"  # the topic rlink legs subscribe to (rlink/view.py)
CLIENT_TRANSPORT = "client"
LINK_TRANSPORT = "link"
WIRING_READERS = ("owner", "admin", "backend")

ZERO = uuid.UUID(int=0)


# -- shared by routercluster.py and arealm.py --------------------------------------------------------

def parse_oid(value, what: str) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ApplicationError(INVALID_ARGUMENT, f"invalid {what} {value!r}: a UUID string")


def out(record) -> dict:
    """A record as the API returns it: UUIDs as strings."""
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in record.marshal().items()}


def who(details) -> dict:
    return {"session": getattr(details, "caller", None), "authid": getattr(details, "caller_authid", None),
            "authrole": getattr(details, "caller_authrole", None)}


def check_element(obj: dict, what: str) -> dict:
    """label, description, tags of a configuration element."""
    fields = {}
    for key, kind in (("label", str), ("description", str), ("tags", list)):
        value = obj.get(key)
        if value is not None and not isinstance(value, kind):
            raise ApplicationError(INVALID_ARGUMENT, f"{what}.{key}: must be a {kind.__name__} or null")
        fields[key] = value
    if fields["tags"] is not None and not all(isinstance(t, str) for t in fields["tags"]):
        raise ApplicationError(INVALID_ARGUMENT, f"{what}.tags: must be a list of strings")
    return fields


def check_keys(obj, what: str, allowed) -> dict:
    if not isinstance(obj, dict):
        raise ApplicationError(INVALID_ARGUMENT, f"{what}: must be an object, not {type(obj).__name__}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ApplicationError(INVALID_ARGUMENT, f"{what}: unknown key(s) {', '.join(unknown)} "
                                                 f"(known: {', '.join(sorted(allowed))})")
    return obj


class MrealmPart:
    """A part of the mrealm controller that registers ``PROCEDURES`` under ``PREFIX`` and keeps its
    definitions in the mrealm database."""

    PREFIX = ""
    PROCEDURES: tuple = ()
    ATTR = ""

    async def start(self, controller) -> None:
        self.controller = controller
        self.master = controller.master
        self.store = controller.master.store
        self.mrealm_oid = controller.mrealm_oid
        self.name = controller.name
        self.db = controller.heartbeats.db
        self.schema = MrealmSchema.attach(self.db)
        setattr(controller, self.ATTR, self)
        await register_all(controller, self.PREFIX, self, self.PROCEDURES)

    async def stop(self) -> None:
        if getattr(self.controller, self.ATTR, None) is self:
            setattr(self.controller, self.ATTR, None)

    def publish(self, event: str, obj) -> None:
        publish(self.controller, self.PREFIX + event, obj)

    def owner_oid(self, details):
        authid = getattr(details, "caller_authid", None)
        user = self.store.user_by_email(authid) if isinstance(authid, str) else None
        return user.oid if user is not None else None

    def node_record(self, node):
        """A node of this mrealm by oid or name (no_such_object otherwise)."""
        record = None
        if isinstance(node, str):
            try:
                oid = uuid.UUID(node)
            except ValueError:
                record = self.store.node_by_name(self.mrealm_oid, node)
            else:
                record = self.store.node(oid)
        elif node is not None and not isinstance(node, str):
            raise ApplicationError(INVALID_ARGUMENT, f"invalid node {node!r}: an oid or a node name")
        if record is None or record.mrealm_oid != self.mrealm_oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no node {node!r} in management realm '{self.name}'")
        return record

    def node_status(self, node_oid) -> str:
        view = self.controller.nodes
        st = view.by_oid.get(node_oid) if view is not None else None
        return st.status if st is not None else OFFLINE


def workers_per_node(wg, membership) -> int:
    n = wg.scale or 0
    if membership.hardlimit is not None:
        n = min(n, max(membership.hardlimit, 0))
    return n


def worker_ids(wg, membership) -> list[str]:
    return [f"{wg.name}_{k}" for k in range(1, workers_per_node(wg, membership) + 1)]


class RouterClusterManager(MrealmPart):
    """See the module docstring."""

    PREFIX = PREFIX
    ATTR = "routerclusters"
    PROCEDURES = (
        "list_routerclusters", "get_routercluster", "get_routercluster_by_name", "create_routercluster",
        "delete_routercluster", "start_routercluster", "stop_routercluster", "stat_routercluster",
        "list_routercluster_nodes", "add_routercluster_node", "remove_routercluster_node", "get_routercluster_node",
        "list_routercluster_workergroups", "add_routercluster_workergroup", "remove_routercluster_workergroup",
        "get_routercluster_workergroup", "get_routercluster_workergroup_by_name", "get_routercluster_wiring",
    )

    # -- clusters ----------------------------------------------------------------------------------

    def _cluster(self, txn, routercluster_oid):
        oid = parse_oid(routercluster_oid, "routercluster_oid")
        rc = self.schema.routerclusters.get(txn, oid)
        if rc is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no router cluster with oid {oid}")
        return rc

    def list_routerclusters(self, return_names=None, details=None) -> list:
        with self.db.begin() as txn:
            if return_names:
                return sorted(rc.name for rc in self.schema.routerclusters.select(txn))
            return [str(k) for k in self.schema.routerclusters.select(txn, return_keys=True, return_values=False)]

    def get_routercluster(self, routercluster_oid, details=None) -> dict:
        with self.db.begin() as txn:
            return out(self._cluster(txn, routercluster_oid))

    def get_routercluster_by_name(self, routercluster_name, details=None) -> dict:
        with self.db.begin() as txn:
            rc = self.schema.idx_routerclusters_by_name.get_record(txn, routercluster_name) \
                if isinstance(routercluster_name, str) else None
        if rc is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no router cluster named {routercluster_name!r}")
        return out(rc)

    def create_routercluster(self, routercluster, details=None) -> dict:
        check_keys(routercluster, "routercluster", ("name", "label", "description", "tags"))
        name = routercluster.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ApplicationError(INVALID_ARGUMENT, f"routercluster.name: invalid name {name!r} (lower case "
                                                     f"letters, digits, '_' and '-', beginning with a letter)")
        rc = RouterCluster(oid=uuid.uuid4(), name=name, status=STOPPED, changed=time.time_ns(),
                           owner_oid=self.owner_oid(details), **check_element(routercluster, "routercluster"))
        with self.db.begin(write=True) as txn:
            if self.schema.idx_routerclusters_by_name.get(txn, name) is not None:
                raise ApplicationError(ALREADY_EXISTS, f"a router cluster named '{name}' exists already")
            self.schema.routerclusters.insert(txn, rc.oid, rc)
        res = out(rc)
        log.info("Router cluster '%s' created in mrealm '%s' (oid %s)", name, self.name, rc.oid)
        self.publish("on_routercluster_created", res)
        return res

    def _arealms_on(self, txn, wg_oids) -> list:
        return [a for a in self.schema.arealms.select(txn) if a.workergroup_oid in wg_oids]

    def delete_routercluster(self, routercluster_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            if rc.status != STOPPED:
                raise ApplicationError(NOT_STOPPED, f"router cluster '{rc.name}' is {rc.status}: stop it first")
            wgs = list(s.idx_workergroups_by_cluster.select(txn, prefix=(rc.oid,)))
            running = [a.name for a in self._arealms_on(txn, set(wgs)) if a.status == RUNNING]
            if running:
                raise ApplicationError(NOT_STOPPED, f"router cluster '{rc.name}': application realm(s) "
                                                    f"{', '.join(sorted(running))} run on its worker groups")
            for key in list(s.routercluster_node_memberships.select(txn, prefix=(rc.oid,), return_keys=True,
                                                                    return_values=False)):
                s.routercluster_node_memberships.delete(txn, key)
            for wg_oid in wgs:
                s.router_workergroups.delete(txn, wg_oid)
            s.routerclusters.delete(txn, rc.oid)
        res = out(rc)
        log.info("Router cluster '%s' deleted from mrealm '%s'", rc.name, self.name)
        self.publish("on_routercluster_deleted", res)
        return res

    def _set_status(self, routercluster_oid, status: str, details):
        s = self.schema
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            if status == RUNNING and rc.status != STOPPED:
                raise ApplicationError(CANNOT_START, f"cannot start router cluster '{rc.name}': it is {rc.status}")
            if status == STOPPED and rc.status != RUNNING:
                raise ApplicationError(CANNOT_STOP, f"cannot stop router cluster '{rc.name}': it is {rc.status}")
            rc.status = status
            rc.changed = time.time_ns()
            s.routerclusters.put(txn, rc.oid, rc)
            for wg_oid in list(s.idx_workergroups_by_cluster.select(txn, prefix=(rc.oid,))):
                wg = s.router_workergroups.get(txn, wg_oid)
                if wg is not None:
                    wg.status, wg.changed = status, rc.changed
                    s.router_workergroups.put(txn, wg.oid, wg)
        return rc

    def start_routercluster(self, routercluster_oid, details=None) -> dict:
        rc = self._set_status(routercluster_oid, RUNNING, details)
        info = {"oid": str(rc.oid), "status": "STARTING", "changed": rc.changed, "who": who(details)}
        log.info("Router cluster '%s' (mrealm '%s') started by '%s'", rc.name, self.name, info["who"]["authid"])
        self.publish("on_routercluster_starting", info)
        info = dict(info, status=RUNNING)
        self.publish("on_routercluster_started", info)
        return info

    def stop_routercluster(self, routercluster_oid, details=None) -> dict:
        rc = self._set_status(routercluster_oid, STOPPED, details)
        info = {"oid": str(rc.oid), "status": "STOPPING", "changed": rc.changed, "who": who(details)}
        log.info("Router cluster '%s' (mrealm '%s') stopped by '%s'", rc.name, self.name, info["who"]["authid"])
        self.publish("on_routercluster_stopping", info)
        info = dict(info, status=STOPPED)
        self.publish("on_routercluster_stopped", info)
        return info

    def stat_routercluster(self, routercluster_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin() as txn:
            rc = self._cluster(txn, routercluster_oid)
            members = list(s.routercluster_node_memberships.select(txn, prefix=(rc.oid,)))
            wgs = self._wgs(txn, rc)
            arealms = self._arealms_on(txn, {wg.oid for wg in wgs})
        nodes = []
        for m in members:
            record = self.store.node(m.node_oid)
            if record is None:
                continue
            nodes.append({"node_oid": str(m.node_oid), "name": record.authid, "status": self.node_status(m.node_oid),
                          "workers": [wid for wg in sorted(wgs, key=lambda g: g.name) for wid in worker_ids(wg, m)]})
        return {"oid": str(rc.oid), "name": rc.name, "status": rc.status,
                "nodes": sorted(nodes, key=lambda n: n["name"]),
                "workergroups": [{"oid": str(wg.oid), "name": wg.name, "scale": wg.scale}
                                 for wg in sorted(wgs, key=lambda g: g.name)],
                "arealms": [{"oid": str(a.oid), "name": a.name, "status": a.status,
                             "workergroup_oid": str(a.workergroup_oid)} for a in sorted(arealms, key=lambda a: a.name)]}

    # -- nodes ---------------------------------------------------------------------------------------

    def list_routercluster_nodes(self, routercluster_oid, return_names=None, filter_by_status=None,
                                 details=None) -> list:
        if filter_by_status not in (None, ONLINE, OFFLINE):
            raise ApplicationError(INVALID_ARGUMENT, f"invalid filter_by_status {filter_by_status!r}: "
                                                     f"'online', 'offline' or null")
        with self.db.begin() as txn:
            rc = self._cluster(txn, routercluster_oid)
            oids = [k[1] for k in self.schema.routercluster_node_memberships.select(
                txn, prefix=(rc.oid,), return_keys=True, return_values=False)]
        if filter_by_status is not None:
            oids = [o for o in oids if self.node_status(o) == filter_by_status]
        if return_names:
            records = [self.store.node(o) for o in oids]
            return sorted(r.authid for r in records if r is not None)
        return [str(o) for o in oids]

    @staticmethod
    def _membership_config(config) -> dict:
        check_keys(config, "config", ("softlimit", "hardlimit", "client_port", "client_interface", "link_port",
                                      "link_interface", "link_host"))
        fields = {}
        for key in ("softlimit", "hardlimit", "client_port", "link_port"):
            value = config.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ApplicationError(INVALID_ARGUMENT, f"config.{key}: must be an integer or null, not {value!r}")
            fields[key] = value
        for key in ("client_port", "link_port"):
            if fields[key] is not None and not 1 <= fields[key] <= 65535:
                raise ApplicationError(INVALID_ARGUMENT, f"config.{key}: must be 1..65535, not {fields[key]}")
        for key in ("hardlimit", "softlimit"):
            if fields[key] is not None and fields[key] < 0:
                raise ApplicationError(INVALID_ARGUMENT, f"config.{key}: must be >= 0")
        for key in ("client_interface", "link_interface", "link_host"):
            value = config.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ApplicationError(INVALID_ARGUMENT, f"config.{key}: must be a host name or address, or null")
            fields[key] = value
        fields.setdefault("client_port", None)
        if fields["client_port"] is None:
            fields["client_port"] = DEFAULT_CLIENT_PORT
        if fields["link_port"] is None:
            fields["link_port"] = DEFAULT_LINK_PORT
        return fields

    def _membership_out(self, m) -> dict:
        res = out(m)
        record = self.store.node(m.node_oid)
        res["node"] = record.authid if record is not None else None
        return res

    def add_routercluster_node(self, routercluster_oid, node_oid, config=None, details=None) -> dict:
        fields = self._membership_config(config or {})
        record = self.node_record(node_oid)
        s = self.schema
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            key = (rc.oid, record.oid)
            if s.routercluster_node_memberships.has(txn, key):
                raise ApplicationError(ALREADY_EXISTS, f"node '{record.authid}' is a member of router cluster "
                                                       f"'{rc.name}' already")
            m = RouterClusterNodeMembership(cluster_oid=rc.oid, node_oid=record.oid, changed=time.time_ns(), **fields)
            s.routercluster_node_memberships.insert(txn, key, m)
        res = self._membership_out(m)
        log.info("Node '%s' added to router cluster '%s' (mrealm '%s')", record.authid, rc.name, self.name)
        self.publish("on_routercluster_node_added", res)
        return res

    def _membership(self, txn, rc, record):
        m = self.schema.routercluster_node_memberships.get(txn, (rc.oid, record.oid))
        if m is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"node '{record.authid}' is not a member of router cluster "
                                                   f"'{rc.name}'")
        return m

    def remove_routercluster_node(self, routercluster_oid, node_oid, details=None) -> dict:
        record = self.node_record(node_oid)
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            m = self._membership(txn, rc, record)
            self.schema.routercluster_node_memberships.delete(txn, (rc.oid, record.oid))
        res = self._membership_out(m)
        log.info("Node '%s' removed from router cluster '%s' (mrealm '%s')", record.authid, rc.name, self.name)
        self.publish("on_routercluster_node_removed", res)
        return res

    def get_routercluster_node(self, routercluster_oid, node_oid, details=None) -> dict:
        record = self.node_record(node_oid)
        with self.db.begin() as txn:
            rc = self._cluster(txn, routercluster_oid)
            return self._membership_out(self._membership(txn, rc, record))

    # -- worker groups -------------------------------------------------------------------------------

    def _wgs(self, txn, rc) -> list:
        s = self.schema
        wgs = [s.router_workergroups.get(txn, o) for o in s.idx_workergroups_by_cluster.select(txn, prefix=(rc.oid,))]
        return [wg for wg in wgs if wg is not None]

    def list_routercluster_workergroups(self, routercluster_oid, return_names=None, filter_by_status=None,
                                        details=None) -> list:
        with self.db.begin() as txn:
            rc = self._cluster(txn, routercluster_oid)
            wgs = [wg for wg in self._wgs(txn, rc) if filter_by_status is None or wg.status == filter_by_status]
        return [wg.name for wg in wgs] if return_names else [str(wg.oid) for wg in wgs]

    def add_routercluster_workergroup(self, routercluster_oid, workergroup, details=None) -> dict:
        # Crossbar.io's shell sends the cluster's oid in the worker group too
        check_keys(workergroup, "workergroup", ("name", "scale", "label", "description", "tags", "cluster_oid"))
        if workergroup.get("cluster_oid") not in (None, routercluster_oid):
            raise ApplicationError(INVALID_ARGUMENT, "workergroup.cluster_oid: not the router cluster's oid")
        scale = workergroup.get("scale", 1)
        if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
            raise ApplicationError(INVALID_ARGUMENT, f"workergroup.scale: must be an integer 1..64, not {scale!r}")
        oid = uuid.uuid4()
        name = workergroup.get("name")
        if name is None:
            name = f"cwg_{str(oid)[:8]}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ApplicationError(INVALID_ARGUMENT, f"workergroup.name: invalid name {name!r} (lower case "
                                                     f"letters, digits, '_' and '-', beginning with a letter)")
        s = self.schema
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            if s.idx_workergroups_by_cluster.get(txn, (rc.oid, name)) is not None:
                raise ApplicationError(ALREADY_EXISTS, f"router cluster '{rc.name}' has a worker group '{name}' "
                                                       f"already")
            wg = RouterWorkerGroup(oid=oid, cluster_oid=rc.oid, name=name, scale=scale, status=rc.status,
                                   changed=time.time_ns(), **check_element(workergroup, "workergroup"))
            s.router_workergroups.insert(txn, oid, wg)
        res = out(wg)
        log.info("Worker group '%s' (scale %d) added to router cluster '%s' (mrealm '%s')", name, scale, rc.name,
                 self.name)
        self.publish("on_workergroup_added", res)
        return res

    def _wg(self, txn, rc, workergroup_oid):
        oid = parse_oid(workergroup_oid, "workergroup_oid")
        wg = self.schema.router_workergroups.get(txn, oid)
        if wg is None or wg.cluster_oid != rc.oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no worker group with oid {oid} in router cluster '{rc.name}'")
        return wg

    def remove_routercluster_workergroup(self, routercluster_oid, workergroup_oid, details=None) -> dict:
        with self.db.begin(write=True) as txn:
            rc = self._cluster(txn, routercluster_oid)
            wg = self._wg(txn, rc, workergroup_oid)
            running = [a.name for a in self._arealms_on(txn, {wg.oid}) if a.status == RUNNING]
            if running:
                raise ApplicationError(NOT_STOPPED, f"worker group '{wg.name}': application realm(s) "
                                                    f"{', '.join(sorted(running))} run on it")
            self.schema.router_workergroups.delete(txn, wg.oid)
        res = out(wg)
        log.info("Worker group '%s' removed from router cluster '%s' (mrealm '%s')", wg.name, rc.name, self.name)
        self.publish("on_workergroup_removed", res)
        return res

    def get_routercluster_workergroup(self, routercluster_oid, workergroup_oid, details=None) -> dict:
        with self.db.begin() as txn:
            rc = self._cluster(txn, routercluster_oid)
            return out(self._wg(txn, rc, workergroup_oid))

    def get_routercluster_workergroup_by_name(self, routercluster_name, workergroup_name, details=None) -> dict:
        with self.db.begin() as txn:
            rc = self.schema.idx_routerclusters_by_name.get_record(txn, routercluster_name) \
                if isinstance(routercluster_name, str) else None
            if rc is None:
                raise ApplicationError(NO_SUCH_OBJECT, f"no router cluster named {routercluster_name!r}")
            wg = self.schema.idx_workergroups_by_cluster.get_record(txn, (rc.oid, workergroup_name)) \
                if isinstance(workergroup_name, str) else None
        if wg is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no worker group named {workergroup_name!r} in router cluster "
                                                   f"'{rc.name}'")
        return out(wg)

    # -- the wiring (read by the change engine) --------------------------------------------------------

    def get_routercluster_wiring(self, node_oid, details=None) -> dict:
        role = getattr(details, "caller_authrole", None)
        if role not in WIRING_READERS:
            raise ApplicationError(NOT_AUTHORIZED, f"only owner and admin of management realm '{self.name}' may "
                                                   f"read a node's wiring (it holds credentials)")
        return self.wiring(self.node_record(node_oid))

    def wiring(self, node) -> dict:
        """What ``node`` (a Node record) should run for the router clusters (see the module docstring)."""
        s = self.schema
        managed: set[str] = set()
        workers: list[dict] = []
        clusters: list[str] = []
        with self.db.begin() as txn:
            for rc in sorted(s.routerclusters.select(txn), key=lambda r: r.name):
                wgs = sorted(self._wgs(txn, rc), key=lambda g: g.name)
                for wg in wgs:
                    managed.update(f"{wg.name}_{k}" for k in range(1, (wg.scale or 0) + 1))
                if rc.status != RUNNING:
                    continue
                members = {m.node_oid: m for m in s.routercluster_node_memberships.select(txn, prefix=(rc.oid,))}
                if node.oid not in members:
                    continue
                clusters.append(rc.name)
                nodes = {}
                for oid in members:
                    record = self.store.node(oid)
                    if record is not None and record.mrealm_oid == self.mrealm_oid:
                        nodes[oid] = record
                arealms = [a for a in s.arealms.select(txn) if a.status == RUNNING]
                offsets = {oid: 0 for oid in nodes}
                for wg in wgs:
                    # every member's workers of this group, in mesh order: (node name, worker ID)
                    slots = []
                    for oid, record in nodes.items():
                        m = members[oid]
                        for k, wid in enumerate(worker_ids(wg, m), 1):
                            slots.append((record.authid, wid, oid, offsets[oid] + k - 1))
                    for oid in nodes:
                        offsets[oid] += workers_per_node(wg, members[oid])
                    slots.sort()
                    on_wg = sorted((a for a in arealms if a.workergroup_oid == wg.oid), key=lambda a: a.name)
                    if not on_wg:
                        continue
                    realms = [self._realm_config(txn, a) for a in on_wg]
                    client_auth = self._client_auth(txn, on_wg)
                    link_auth = {"cryptosign": {"type": "static", "principals": {
                        record.authid: {"authorized_keys": [record.pubkey], "role": RLINK_ROLE}
                        for record in nodes.values() if record.pubkey}}}
                    for i, (nname, wid, oid, index) in enumerate(slots):
                        if oid != node.oid:
                            continue
                        m = members[oid]
                        links = []
                        for pname, pwid, poid, pindex in slots[i + 1:]:
                            pm, precord = members[poid], nodes[poid]
                            host = pm.link_host or precord.cluster_ip or "127.0.0.1"
                            port = (pm.link_port or DEFAULT_LINK_PORT) + pindex
                            for a in on_wg:
                                links.append({"realm_id": a.name, "id": f"to_{pname}_{pwid}", "config": {
                                    "realm": a.name,
                                    "transport": {"type": "websocket", "url": f"ws://{host}:{port}/",
                                                  "endpoint": {"type": "tcp", "host": host, "port": port}},
                                    "authentication": {"cryptosign": {"authid": node.authid}},
                                    "forward_local_events": True, "forward_remote_events": True,
                                    "forward_local_invocations": True, "forward_remote_invocations": True}})
                        workers.append({
                            "id": wid, "cluster": rc.name, "workergroup": wg.name,
                            "realms": [{"id": r["name"], "config": r} for r in realms],
                            "transports": [
                                {"id": CLIENT_TRANSPORT, "config": _listening(
                                    (m.client_port or DEFAULT_CLIENT_PORT) + index, m.client_interface, client_auth)},
                                {"id": LINK_TRANSPORT, "config": _listening(
                                    (m.link_port or DEFAULT_LINK_PORT) + index, m.link_interface, link_auth)}],
                            "links": links})
        wanted = {w["id"] for w in workers}
        return {"node_oid": str(node.oid), "node": node.authid, "clusters": clusters,
                "managed": sorted(managed | wanted), "workers": workers}

    def _realm_config(self, txn, arealm) -> dict:
        s = self.schema
        roles = []
        for key in s.arealm_role_associations.select(txn, prefix=(arealm.oid,), return_keys=True,
                                                      return_values=False):
            role = s.roles.get(txn, key[1])
            if role is None or role.name == RLINK_ROLE:
                continue
            perms = []
            for poid in s.idx_permissions_by_role.select(txn, prefix=(role.oid,)):
                p = s.permissions.get(txn, poid)
                if p is None:
                    continue
                perms.append({"uri": p.uri, "match": p.match or "exact",
                              "allow": {"call": bool(p.allow_call), "register": bool(p.allow_register),
                                        "publish": bool(p.allow_publish), "subscribe": bool(p.allow_subscribe)},
                              "disclose": {"caller": bool(p.disclose_caller),
                                           "publisher": bool(p.disclose_publisher)},
                              "cache": bool(p.cache)})
            roles.append({"name": role.name, "permissions": perms})
        roles.sort(key=lambda r: r["name"])
        roles.append({"name": RLINK_ROLE, "permissions": [{
            "uri": "", "match": "prefix",
            "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
            "disclose": {"caller": True, "publisher": True}, "cache": True}, {
            # named exactly: what makes the links' sessions rlink legs (docs/clustering.md)
            "uri": RLINK_MARKER, "match": "exact", "allow": {"subscribe": True}, "cache": True}]})
        return {"name": arealm.name, "roles": roles}

    def _client_auth(self, txn, arealms) -> dict:
        s = self.schema
        cryptosign: dict = {}
        ticket: dict = {}
        for a in arealms:
            for p in s.principals.select(txn):
                if p.arealm_oid != a.oid:
                    continue
                role = s.roles.get(txn, p.role_oid) if p.role_oid is not None else None
                if role is None:
                    continue
                if p.authid in cryptosign or p.authid in ticket:
                    log.error("Router cluster wiring (mrealm '%s'): principal '%s' of arealm '%s' skipped: an "
                              "arealm on the same worker group has a principal with that authid", self.name,
                              p.authid, a.name)
                    continue
                base = {"realm": a.name, "role": role.name}
                if p.authextra:
                    base["extra"] = p.authextra  # the transport's principal key for authextra
                if p.authorized_keys:
                    cryptosign[p.authid] = dict(base, authorized_keys=list(p.authorized_keys))
                if p.ticket:
                    ticket[p.authid] = dict(base, ticket=p.ticket)
        auth = {}
        if cryptosign:
            auth["cryptosign"] = {"type": "static", "principals": cryptosign}
        if ticket:
            auth["ticket"] = {"type": "static", "principals": ticket}
        if not auth:  # nobody may join (an anonymous default would let everybody in)
            auth["ticket"] = {"type": "static", "principals": {}}
        return auth


def _listening(port: int, interface, auth: dict) -> dict:
    endpoint = {"type": "tcp", "port": port}
    if interface:
        endpoint["interface"] = interface
    return {"type": "websocket", "endpoint": endpoint, "auth": auth}
