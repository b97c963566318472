"""The native worker: the management and runtime object of a native worker process.

Each native worker process joins realm ``crossbar`` on the node management
router (over its stdio pipes) with one ``ClientSession`` and registers its
procedures under ``crossbar.worker.<worker_id>.``; management events go out
under the same prefix (design document, "Worker Controllers" and
"Management Events").  ``NativeWorker`` is the base of the worker types
(``RouterWorker``, ``ContainerWorker``), which add their procedures to
``PROCEDURES`` and run what the type runs.  (Crossbar.io calls these classes
``*Controller``; here "controller" is only the node controller.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from ..client.session import ApplicationError
from ..common.management import register_procedures, worker_prefix
from ..common.monitor import ProcessMonitor, process_info, typed_process_stats
from ..common.timefmt import utcstr
from ..config.base import ConfigError
from ..protocol.crossbar_errors import INVALID_CONFIGURATION

log = logging.getLogger("wampfabric.worker")


class NativeWorker:
    """Base of all native worker types."""

    WORKER_TYPE = "native"
    LOGNAME = "Worker"

    PROCEDURES = (
        "get_status",
        "shutdown",
        "get_process_info",
        "get_process_stats",
        "get_process_monitor",
        "get_pythonpath",
        "add_pythonpath",
    )

    def __init__(self, session, worker_id: str, node_id: str, cbdir: str, personality, options: dict | None = None):
        self.session = session
        self.worker_id = worker_id
        self.node_id = node_id
        self.cbdir = cbdir
        self.personality = personality
        self.options = options or {}
        self._uri_prefix = worker_prefix(worker_id)
        self.started = time.time()
        self.monitor = ProcessMonitor(self.WORKER_TYPE)
        self._done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._shutdown_requested = False

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Register the management procedures, start the worker, announce it ready."""
        await register_procedures(self.session, self._uri_prefix, self)
        await self.on_start()
        await self.session.publish(
            f"{self._uri_prefix}.on_worker_ready",
            {"type": self.WORKER_TYPE, "id": self.worker_id, "pid": os.getpid()},
            options={"acknowledge": True},
        )
        log.info("%s worker '%s' ready (pid %d)", self.LOGNAME, self.worker_id, os.getpid())

    async def on_start(self) -> None:
        """Subclass hook: runs after the procedures are registered."""

    async def on_stop(self) -> None:
        """Subclass hook: release everything (listening sockets, components)."""

    def request_exit(self, code: int = 0, reason: str = "") -> None:
        """End the worker: ``wait()`` returns ``code``."""
        if not self._done.done():
            if reason:
                log.info("%s worker '%s' exiting: %s", self.LOGNAME, self.worker_id, reason)
            self._done.set_result(code)

    async def wait(self) -> int:
        return await self._done

    async def stop(self) -> None:
        try:
            await self.on_stop()
        except Exception:
            log.exception("error while stopping worker")
        if self.session.is_attached:
            try:
                await asyncio.wait_for(self.session.leave(), 2)
            except Exception:
                pass

    def publish(self, suffix: str, *args, **kwargs) -> None:
        """Publish a management event ``crossbar.worker.<id>.<suffix>``."""
        if self.session.is_attached:
            self.session.publish(f"{self._uri_prefix}.{suffix}", *args, **kwargs)

    # -- procedures ------------------------------------------------------------------

    def get_status(self, details=None) -> dict:
        return {
            "id": self.worker_id,
            "type": self.WORKER_TYPE,
            "pid": os.getpid(),
            "started": utcstr(self.started),
            "uptime": time.time() - self.started,
            "status": "started" if not self._shutdown_requested else "stopping",
        }

    def shutdown(self, restart: bool = False, mode=None, details=None) -> dict:
        """Stop this worker gracefully (the call returns before it exits)."""
        self._shutdown_requested = True
        info = {"id": self.worker_id, "type": self.WORKER_TYPE, "restart": restart, "mode": mode,
                "who": (details or {}).get("caller")}
        self.publish("on_shutdown_requested", info)
        asyncio.get_running_loop().call_soon(self.request_exit, 0, "shutdown requested")
        return info

    def get_process_info(self, details=None) -> dict:
        return process_info(self.WORKER_TYPE)

    def get_process_stats(self, details=None) -> dict:
        return typed_process_stats(self.WORKER_TYPE)

    def get_process_monitor(self, details=None) -> dict:
        return self.monitor.poll()

    def get_pythonpath(self, details=None) -> list:
        return list(sys.path)

    def add_pythonpath(self, paths: list, prepend: bool = True, details=None) -> list:
        added = []
        for p in paths:
            p = os.path.abspath(os.path.join(self.cbdir, p))
            if p not in sys.path:
                if prepend:
                    sys.path.insert(0, p)
                else:
                    sys.path.append(p)
                added.append(p)
        return added


def check_or_raise(checker, *args) -> None:
    """Run a config checker; a ``ConfigError`` becomes ``crossbar.error.invalid_configuration``."""
    try:
        checker(*args)
    except ConfigError as e:
        raise ApplicationError(INVALID_CONFIGURATION, str(e)) from None
