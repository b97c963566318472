"""The master's router worker (``cfrouter1``): a router worker that also holds the master.

The master personality names this class for the ``router`` worker type, so the worker process of
``wampfabric master start`` runs it. Before the node applies the worker's config (the global realm,
the WebSocket transport, the domain controller component), ``on_start`` opens the global database
(``.db-controller``, its maxsize from the option ``fabric_center``: the node's
``controller.fabric-center.database``, see master/personality.py), inserts the superuser user when ``CROSSBAR_FABRIC_SUPERUSER`` names a key
file, and starts every mrealm of the database with its roles and controller
(``_initialize_mrealms``): by the time the listener accepts connections, every paired node's realm
exists.
"""

from __future__ import annotations

import logging
import os

from ..worker.router import RouterWorker
from .personality import FABRIC_CENTER_OPTION
from .runtime import SUPERUSER_ENV, MasterRuntime, read_superuser_key
from .schema import GLOBAL_DB_MAXSIZE, MREALM_DB_MAXSIZE
from .store import MasterStore

log = logging.getLogger("wampfabric.master")


class MasterRouterWorker(RouterWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.master: MasterRuntime | None = None

    async def on_start(self) -> None:
        await super().on_start()
        superuser = None
        path = os.environ.get(SUPERUSER_ENV, "").strip()
        if path:
            superuser = read_superuser_key(os.path.expanduser(path))  # ValueError: the worker fails to start
        db = ((self.options.get(FABRIC_CENTER_OPTION) or {}).get("database") or {})
        maxsize = db.get("maxsize", GLOBAL_DB_MAXSIZE)
        store = MasterStore.open(self.cbdir, maxsize=maxsize)
        master = self.master = MasterRuntime(self, store, superuser,
                                             mrealm_maxsize=db.get("mrealm_maxsize", MREALM_DB_MAXSIZE))
        master.install()
        try:
            master.ensure_superuser()
            await master.initialize_mrealms()
        except BaseException:
            master.uninstall()
            store.close()
            raise
        log.info("Master ready (global database %s, maxsize %d bytes; mrealm databases maxsize %d bytes)",
                 store.path, maxsize, master.mrealm_maxsize)

    async def on_stop(self) -> None:
        try:
            await super().on_stop()
        finally:
            if self.master is not None:
                self.master.uninstall()
                self.master.store.close()
                self.master = None
