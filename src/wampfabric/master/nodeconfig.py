"""The desired state of an mrealm's nodes: ``set_node_config`` / ``get_node_config`` (docs/fabric.md,
"Change engine").

A router component on each mrealm realm (``NodeConfigApi``, component id ``nodeconfig-<mrealm
oid>``), started and stopped with the realm by ``MasterRuntime.start_mrealm`` / ``stop_mrealm``.
It stores a node's desired state in the global database (``node_configs``, keyed by the node's
oid, master/schema.py) and announces changes; the change engine (master/changeengine.py, in its
own container worker) applies it to the node.

- ``crossbarfabriccenter.mrealm.set_node_config(node, config, exclusive=False)``: ``node`` is the
  node's oid or its name in this mrealm; ``config`` a Crossbar.io version-2 node config (``version``
  may be left out) whose ``workers`` are the node's desired workers, checked like ``wampfabric
  check`` checks a config, plus: every worker, realm, transport and component has an ``id`` (the
  engine compares by ID), and no ``controller`` section (a node's controller is its own). ``None``
  removes the desired state. ``exclusive``: the engine also stops what the node runs beyond the
  config. Returns the stored record; publishes ``crossbarfabriccenter.mrealm.on_node_config_changed
  (node_oid, {"node", "version", "exclusive"})`` (not the config: it may hold credentials).
- ``crossbarfabriccenter.mrealm.get_node_config(node)`` -> ``{"node_oid", "node", "config",
  "exclusive", "version", "modified", "modified_by"}`` or None.

Who may: owner and admin of the mrealm (both procedures: a config holds transports' credentials),
and the master's ``backend`` (the change engine) may read. Errors: an unknown node ->
``crossbar.error.no_such_object``; a bad config -> ``wamp.error.invalid_argument`` naming the
JSON path (``$.workers[0].transports[0].endpoint.port: ...``); a full database ->
``crossbar.error.database_full``.
"""

from __future__ import annotations

import logging
import time
import uuid

from autobahn.asyncio.wamp import ApplicationSession

from ..client.session import ApplicationError
from ..config.base import ConfigError, ConfigErrors
from ..config.check import check_config
from ..personality import Personality
from . import runtime as rt
from .api import INVALID_ARGUMENT, NO_SUCH_OBJECT, NOT_AUTHORIZED, publish, register_all
from .schema import GlobalSchema, NodeConfig

log = logging.getLogger("wampfabric.master.nodeconfig")

MREALM = "crossbarfabriccenter.mrealm."
WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "backend")
# the lists of a worker's items the engine compares by ID
ITEM_LISTS = {"router": ("realms", "transports", "components"), "container": ("components",)}


# -- storage (the global database; used by the domain controller when nodes go) --------------------

def _schema(store) -> GlobalSchema:
    return GlobalSchema.attach(store.db)


def read_node_config(store, node_oid):
    with store.db.begin() as txn:
        return _schema(store).node_configs.get(txn, node_oid)


def delete_node_configs(store, node_oids) -> None:
    """Forget the desired state of nodes that are unpaired (their oids are never used again)."""
    s = _schema(store)
    with store.db.begin(write=True) as txn:
        for oid in node_oids:
            s.node_configs.delete(txn, oid)


# -- checking ----------------------------------------------------------------------------------------

def check_node_config(config) -> dict:
    """The desired state as stored, or ConfigError (with its JSON path)."""
    if not isinstance(config, dict):
        raise ConfigError("$", f"a node config must be an object, not {type(config).__name__}")
    if "controller" in config:
        raise ConfigError("$.controller", "a node's controller section is its own: the master sets only workers")
    config = {"version": 2, **config}
    check_config(config, Personality)
    for i, worker in enumerate(config.get("workers", [])):
        wpath = f"$.workers[{i}]"
        if not isinstance(worker.get("id"), str):
            raise ConfigError(f"{wpath}.id", "the master compares workers by ID: every worker needs an 'id'")
        for key in ITEM_LISTS.get(worker.get("type"), ()):
            seen = set()
            for j, item in enumerate(worker.get(key, [])):
                ipath = f"{wpath}.{key}[{j}]"
                iid = item.get("id")
                if not isinstance(iid, str) or not iid:
                    raise ConfigError(f"{ipath}.id", f"the master compares {key} by ID: every item needs an 'id'")
                if iid in seen:
                    raise ConfigError(f"{ipath}.id", f"duplicate ID '{iid}' in {key}")
                seen.add(iid)
    return config


def _config_error(e: ConfigError) -> ApplicationError:
    lines = [str(x) for x in e.errors] if isinstance(e, ConfigErrors) else [str(e)]
    return ApplicationError(INVALID_ARGUMENT, "invalid node config: " + "; ".join(lines))


# -- the API -------------------------------------------------------------------------------------------

class NodeConfigApi(ApplicationSession):
    """See the module docstring."""

    async def onJoin(self, details):
        self.master = rt.current()
        self.name = details.realm
        self.mrealm_oid = uuid.UUID((self.config.extra or {})["mrealm_oid"])
        await register_all(self, MREALM, self, ("set_node_config", "get_node_config"))
        log.debug("node config API ready on '%s'", self.name)

    def _check_role(self, details, allowed) -> None:
        role = getattr(details, "caller_authrole", None)
        if role not in allowed:
            raise ApplicationError(NOT_AUTHORIZED, f"only {' and '.join(r for r in allowed if r != 'backend')} "
                                                   f"of management realm '{self.name}' may do this")

    def _node(self, node):
        store = self.master.store
        record = None
        if isinstance(node, str):
            try:
                oid = uuid.UUID(node)
            except ValueError:
                record = store.node_by_name(self.mrealm_oid, node)
            else:
                record = store.node(oid)
        if record is None or record.mrealm_oid != self.mrealm_oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no node {node!r} in management realm '{self.name}'")
        return record

    @staticmethod
    def _out(node, rec) -> dict | None:
        if rec is None:
            return None
        return {"node_oid": str(node.oid), "node": node.authid, "config": rec.config, "exclusive": bool(rec.exclusive),
                "version": rec.version, "modified": rec.modified, "modified_by": rec.modified_by}

    def get_node_config(self, node, details=None):
        self._check_role(details, READERS)
        record = self._node(node)
        return self._out(record, read_node_config(self.master.store, record.oid))

    def set_node_config(self, node, config, exclusive=False, details=None):
        self._check_role(details, WRITERS)
        record = self._node(node)
        if not isinstance(exclusive, bool):
            raise ApplicationError(INVALID_ARGUMENT, "exclusive must be true or false")
        store = self.master.store
        s = _schema(store)
        who = getattr(details, "caller_authid", None)
        if config is None:
            with store.db.begin(write=True) as txn:
                s.node_configs.delete(txn, record.oid)
            log.info("Desired state of node '%s' (mrealm '%s') removed by '%s'", record.authid, self.name, who)
            publish(self, MREALM + "on_node_config_changed", str(record.oid),
                    {"node": record.authid, "version": None, "exclusive": False})
            return None
        try:
            config = check_node_config(config)
        except ConfigError as e:
            raise _config_error(e) from None
        with store.db.begin(write=True) as txn:
            old = s.node_configs.get(txn, record.oid)
            rec = NodeConfig(node_oid=record.oid, mrealm_oid=self.mrealm_oid, config=config, exclusive=exclusive,
                             modified=time.time_ns(), modified_by=who, version=(old.version if old else 0) + 1)
            s.node_configs.put(txn, record.oid, rec)
        log.info("Desired state of node '%s' (mrealm '%s') set by '%s': version %d, %d worker(s)%s", record.authid,
                 self.name, who, rec.version, len(config.get("workers", [])), ", exclusive" if exclusive else "")
        publish(self, MREALM + "on_node_config_changed", str(record.oid),
                {"node": record.authid, "version": rec.version, "exclusive": exclusive})
        return self._out(record, rec)
