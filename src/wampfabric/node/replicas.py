"""Every core of one node: a router worker with ``"options": {"replicas": N}`` runs as N
router worker processes behind the same listening ports, linked into a full mesh by rlinks
(issue 16, "Every core of one node"; docs/clustering.md).

The node controller expands the one worker config into N replica configs before it boots
them (``expand``); each replica is then an ordinary router worker, started, listed, stopped
and restarted like any other:

- **IDs**: ``<id>-1`` .. ``<id>-N`` (``<id>`` is the worker's ``id``, or the automatic one).
- **Listening**: every ``tcp`` endpoint of the worker's transports gets ``"shared": true``,
  i.e. ``SO_REUSEPORT``: all replicas bind the same port and the kernel spreads incoming
  connections over them (the checker refuses ``unix`` endpoints and port 0 for N > 1: a path
  or an ephemeral port cannot be shared).
- **Links**: each replica gets one more transport, :data:`LINK_TRANSPORT_ID`: RawSocket on a
  Unix socket in the node directory (mode 0600), ``replica-<id>-<n>.sock``, accepting only
  cryptosign with the node's own key (a principal per replica ID), as role :data:`LINK_ROLE`
  (added to each of the worker's realms: everything, incl. the meta API the links need; no
  disclosure).  For every realm of the worker, replica ``i`` links to each replica ``j > i``
  (one link per pair, link ID ``replica-<id>-<j>``), authenticating with the node key
  (``CBDIR/key.priv``) as authid ``<id>-<i>``.  One link per pair of N routers is a full mesh:
  every subscriber gets every event exactly once, wherever it was published, and every
  procedure is callable from every replica (rlink rules, docs/clustering.md).  The links have
  ``"share_registrations": false``: a replica with callees of its own for a shared
  registration serves its callers with them (no link hop); the others' callees serve it only
  while it has none.
- **Faults**: the replicas restart on failure unless the worker says otherwise
  (``restart`` defaults to ``restart-on-failed`` for replicas, ``restart-never`` for other
  workers); a restarted replica starts its links to the higher replicas at once, and the
  lower replicas' links to it reconnect with their backoff (0.5 s doubling, at most 10 s).

With N = 1 (or no ``replicas``) nothing here runs: the worker config is booted as it is.
"""

from __future__ import annotations

import copy
import os

from ..config.workers import REPLICA_LINK_ROLE as LINK_ROLE, REPLICA_LINK_TRANSPORT_ID as LINK_TRANSPORT_ID
from ..config.workers import replica_count, replica_ids

REPLICA_RESTART = "restart-on-failed"
#: the longest path a Unix socket can have on Linux (sun_path, with its NUL)
MAX_UNIX_PATH = 107


class ReplicaError(Exception):
    """The replicas of a worker cannot be set up (a name clash, a node directory path too long
    for a Unix socket)."""


def socket_path(worker_id: str, index: int) -> str:
    """The link socket of replica ``index`` (relative to the node directory)."""
    return f"replica-{worker_id}-{index}.sock"


def link_role() -> dict:
    return {"name": LINK_ROLE, "permissions": [
        {"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
         "disclose": {"caller": False, "publisher": False}, "cache": True},
        # named exactly: what makes the links' sessions rlink legs (docs/clustering.md)
        {"uri": "wampfabric.rlink.leg", "match": "exact", "allow": {"subscribe": True}, "cache": True}]}


def expand(worker_id: str, worker_cfg: dict, cbdir, node_pubkey: str) -> list[tuple[str, dict]]:
    """``[(replica ID, replica worker config)]`` for a worker config with N > 1 replicas."""
    n = replica_count(worker_cfg)
    ids = replica_ids(worker_id, n)
    for i in range(1, n + 1):
        full = os.path.join(str(cbdir), socket_path(worker_id, i))
        if len(full.encode()) > MAX_UNIX_PATH:
            raise ReplicaError(f"worker '{worker_id}': the replicas' link socket {full} is longer than "
                               f"{MAX_UNIX_PATH} bytes (a Unix socket path): use a shorter node directory or worker ID")
    principals = {rid: {"authorized_keys": [node_pubkey], "role": LINK_ROLE} for rid in ids}
    out = []
    for i, rid in enumerate(ids, 1):
        cfg = copy.deepcopy(worker_cfg)
        cfg["id"] = rid
        options = dict(cfg.get("options") or {})
        options.pop("replicas", None)
        options.setdefault("restart", REPLICA_RESTART)
        options.setdefault("title", f"{worker_id} replica {i}/{n}")
        cfg["options"] = options
        for t in cfg.get("transports", []):
            ep = t.get("endpoint") if isinstance(t, dict) else None
            if isinstance(ep, dict) and ep.get("type") == "tcp":
                ep["shared"] = True
        cfg.setdefault("transports", []).append({
            "type": "rawsocket", "id": LINK_TRANSPORT_ID,
            "endpoint": {"type": "unix", "path": socket_path(worker_id, i)},
            "auth": {"cryptosign": {"type": "static", "principals": copy.deepcopy(principals)}},
        })
        for realm in cfg.get("realms", []):
            realm.setdefault("roles", []).append(link_role())
            links = realm.setdefault("rlinks", [])
            for j in range(i + 1, n + 1):
                links.append({
                    "id": f"replica-{worker_id}-{j}",
                    "realm": realm["name"],
                    # msgpack: both ends are ours, and it encodes a forwarded PUBLISH in 0.55 us
                    # where CBOR (the client's default) takes 2.2 us
                    "transport": {"type": "rawsocket", "serializers": ["msgpack"],
                                  "endpoint": {"type": "unix", "path": socket_path(worker_id, j)}},
                    "authentication": {"cryptosign": {"authid": rid}},
                    # a replica with callees of its own serves them: a call crosses to another
                    # replica only when this one has none for the procedure (docs/clustering.md)
                    "share_registrations": False,
                })
        out.append((rid, cfg))
    return out
