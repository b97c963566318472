"""The remote API of an mrealm (protocol §6 "Remote forwarding"): calls to a node's management
procedures through the master.

A part of the mrealm controller (``master/mrealm.py``). One prefix registration per API on the
controller's in-process session (``LocalTransport``: the arguments are passed on as they came,
no serialization in the master):

- ``crossbarfabriccenter.remote.node.<procedure>(node, *args, **kwargs)`` ->
  ``crossbarfabriccenter.node.<name>.<procedure>(*args, **kwargs)``;
- ``crossbarfabriccenter.remote.{worker,router,container}.<procedure>(node, worker_id, *args,
  **kwargs)`` -> ``crossbarfabriccenter.node.<name>.worker.<worker_id>.<procedure>(*args, **kwargs)``.

``node`` is the node's oid or its name; it and ``worker_id`` may be given positionally or as keywords
(``node_id``, ``node_oid`` or ``node``; ``worker_id``), as Crossbar.io's shell sends ``start worker``
(``start_worker(node_id="edge1", worker_id="rw1", worker_type="router", worker_options={})``, D5):
for ``remote.node`` a ``worker_id`` keyword belongs to the node's procedure and is passed on.

Errors: a node not paired into this mrealm -> ``crossbar.error.no_such_object``; a paired node
without a session (or silent, see master/nodes.py) -> ``crossbar.error.node_offline``; the node's
own errors come back as the node raised them (URI and arguments); a procedure name with a dot
-> ``wamp.error.invalid_argument``. Keyword arguments of any name are passed on (``call_payload``),
except ``details``: the forwarder's own session hands it the invocation details under that name.

Who may: the mrealm's role objects (``master/roles.py``, ``MrealmRole``) authorize the CALL by the
procedure's last URI component before it reaches the forwarder: guest ``get_*``, ``list_*``,
``show_*``, ``stat_*``; user also ``start_*``, ``stop_*``; admin and owner everything. The
forwarder itself refuses ``sign`` and ``sign_challenge`` for everyone (D1: Crossbar.io's edge
registers them). Node events are republished as ``crossbarfabriccenter.remote.node.*`` /
``remote.worker.*`` by the node view (master/nodes.py).
"""

from __future__ import annotations

import logging

from ..client.session import ApplicationError
from .api import INVALID_ARGUMENT, NO_SUCH_OBJECT, NOT_AUTHORIZED
from .roles import NODE_DENIED

log = logging.getLogger("wampfabric.master.remote")

REMOTE = "crossbarfabriccenter.remote."
APIS = ("node", "worker", "router", "container")
NODE_OFFLINE = "crossbar.error.node_offline"
NODE_KEYWORDS = ("node_id", "node_oid", "node")


class RemoteApi:
    """The remote API part of an mrealm controller (see the module docstring)."""

    async def start(self, controller) -> None:
        self.controller = controller
        self.view = controller.nodes
        self.local = controller.local
        for api in APIS:
            await self.local.register(f"{REMOTE}{api}.", self._forwarder(api), options={"match": "prefix"},
                                      details=True)

    async def stop(self) -> None:
        pass

    def _forwarder(self, api: str):
        prefix = f"{REMOTE}{api}."
        by_worker = api != "node"

        async def forward(*args, details=None, **kwargs):
            procedure = (details or {}).get("procedure") or ""
            name = procedure[len(prefix):]
            if not name or "." in name:
                raise ApplicationError(INVALID_ARGUMENT, f"no remote procedure {procedure!r}: "
                                                         f"{prefix}<procedure> with one URI component")
            if name in NODE_DENIED:
                raise ApplicationError(NOT_AUTHORIZED, f"{procedure}: no call reaches a node's {name}")
            if args:
                node, args = args[0], args[1:]
            else:
                node = next((kwargs.pop(k) for k in NODE_KEYWORDS if k in kwargs), None)
            if node is None:
                raise ApplicationError(INVALID_ARGUMENT, f"{procedure}: the node (its oid or name) is missing")
            worker_id = None
            if by_worker:
                if args:
                    worker_id, args = args[0], args[1:]
                else:
                    worker_id = kwargs.pop("worker_id", None)
                if not isinstance(worker_id, str) or not worker_id or "." in worker_id or "#" in worker_id:
                    raise ApplicationError(INVALID_ARGUMENT, f"{procedure}: invalid or missing worker_id "
                                                             f"{worker_id!r}")
            st = self.view.resolve(node)
            if st is None:
                raise ApplicationError(NO_SUCH_OBJECT, f"no node {node!r} in management realm "
                                                       f"'{self.controller.name}'")
            if st.session is None:
                raise ApplicationError(NODE_OFFLINE, f"node '{st.name}' ({st.oid}) of management realm "
                                                     f"'{self.controller.name}' is offline")
            if by_worker:
                target = f"crossbarfabriccenter.node.{st.name}.worker.{worker_id}.{name}"
            else:
                target = f"crossbarfabriccenter.node.{st.name}.{name}"
            log.debug("remote %s -> %s (caller %s)", procedure, target, (details or {}).get("caller_authid"))
            return await self.local.call_payload(target, args, kwargs)

        return forward
