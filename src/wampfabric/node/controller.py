"""The node controller session: ``crossbar.*`` on the node management router.

It is an ordinary session of realm ``crossbar``, attached in-process
through the function-call transport, registering the node's management
procedures and publishing the node's management events (design document,
"Node Controller" and "Management Events").  Procedures (arguments and
result shapes follow Crossbar.io's, see docs/architecture.md):

``crossbar.get_status``, ``get_system_stats``, ``shutdown``,
``get_workers``, ``get_worker``, ``start_worker``, ``stop_worker``,
``get_worker_log``, ``get_process_info``, ``get_process_stats``,
``get_process_monitor``.

There is deliberately no procedure that signs anything with the node key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from .. import __version__
from ..client.session import ApplicationError
from ..transport.local import connect_local
from ..common.management import NODE_PREFIX, register_procedures, worker_prefix
from ..common.monitor import ProcessMonitor, process_info, process_stats, system_stats, typed_process_stats
from ..common.timefmt import utcstr
from ..config import defaults
from ..config.base import ConfigError
from ..config.workers import check_guest_worker, check_native_worker_options, worker_id_problem
from ..protocol.crossbar_errors import (CANNOT_START, INVALID_ARGUMENT, INVALID_CONFIGURATION, NO_SUCH_WORKER,
                                        SHUTDOWN_REQUESTED, WORKER_ALREADY_RUNNING)
from .process import GuestGroups, GuestWorkerProcess, NativeWorkerProcess, READY_TIMEOUT

log = logging.getLogger("wampfabric.node")

NODE_SHUTDOWN_ON_SHUTDOWN_REQUESTED = "shutdown_on_shutdown_requested"
NODE_SHUTDOWN_ON_WORKER_EXIT = "shutdown_on_worker_exit"
NODE_SHUTDOWN_ON_WORKER_EXIT_WITH_ERROR = "shutdown_on_worker_exit_with_error"
NODE_SHUTDOWN_ON_LAST_WORKER_EXIT = "shutdown_on_last_worker_exit"


def worker_role(worker_id: str) -> dict:
    """The authrole of a native worker on realm ``crossbar``: its own procedures and events only."""
    name = worker_prefix(worker_id)
    prefix = name + "."
    return {
        "name": name,
        "permissions": [
            {"uri": "", "match": "prefix", "allow": {"call": True, "subscribe": True}},
            {"uri": prefix, "match": "prefix",
             "allow": {"call": True, "register": True, "publish": True, "subscribe": True}},
        ],
    }


class GuestProcedures:
    """What the node answers for a guest, which is no WAMP session: its process statistics."""

    PROCEDURES = ("get_process_stats", "get_process_monitor")

    def __init__(self, proc):
        self.proc = proc
        self.monitor = ProcessMonitor("guest", proc.pid)

    def get_process_stats(self, details=None) -> dict:
        return typed_process_stats("guest", self.proc)

    def get_process_monitor(self, details=None) -> dict:
        return self.monitor.poll()


class NodeController:
    """The node controller's management session (``crossbar.*``) and its workers."""

    PROCEDURES = (
        "get_status", "get_system_stats", "shutdown", "get_workers", "get_worker", "start_worker", "stop_worker",
        "get_worker_log", "get_process_info", "get_process_stats", "get_process_monitor",
    )

    def __init__(self, node):
        self.node = node
        self.session = None
        self.workers: dict[str, object] = {}
        self.exited: dict[str, object] = {}  # last incarnation of workers that are gone (for their logs)
        self.started = None
        self.monitor = ProcessMonitor("controller")
        self.shutdown_requested = False
        self._restart_delay: dict[str, tuple] = {}
        self._restarts: dict[str, asyncio.TimerHandle] = {}
        self.guest_groups = GuestGroups()  # process groups of guests (a guest's children are stopped with it)

    async def start(self) -> None:
        self.session = await connect_local(self.node.router, self.node.realm_name, role="trusted",
                                           authid="controller", peer="controller")
        await register_procedures(self.session, NODE_PREFIX, self)
        await self.session.subscribe("crossbar.worker..on_worker_ready", self._on_worker_ready,
                                     options={"match": "wildcard"})
        # a worker asked to shut down through its own procedure exits as requested (no policy applies)
        await self.session.subscribe("crossbar.worker..on_shutdown_requested", self._on_worker_shutdown_requested,
                                     options={"match": "wildcard"})
        self.started = time.time()

    def publish(self, topic: str, *args, **kwargs) -> None:
        if self.session is not None and self.session.is_attached:
            self.session.publish(topic, *args, **kwargs)

    def _on_worker_ready(self, info: dict, **_) -> None:
        worker = self.workers.get(info.get("id")) if isinstance(info, dict) else None
        if worker is not None and not worker.ready.done():
            worker.ready.set_result(info)

    def _on_worker_shutdown_requested(self, info: dict, **_) -> None:
        worker = self.workers.get(info.get("id")) if isinstance(info, dict) else None
        if worker is not None:
            worker.stop_requested = True
            worker.status = "stopping"

    # -- node -----------------------------------------------------------------------------

    def get_status(self, details=None) -> dict:
        by_type: dict[str, int] = {}
        for w in self.workers.values():
            by_type[w.TYPE] = by_type.get(w.TYPE, 0) + 1
        node = self.node
        return {
            "title": f"{node.personality.TITLE} {__version__}",
            "node_id": node.node_id,
            "personality": node.personality.NAME,
            "started": utcstr(self.started),
            "controller_pid": os.getpid(),
            "running_workers": len(self.workers),
            "workers_by_type": by_type,
            "directory": str(node.cbdir),
            "pubkey": node.key.public_hex if node.key else None,
            "ethadr": None,
            "management_realm": None,
            "management_node_id": None,
            "management_session_id": None,
            "management_node_extra": None,
            "has_docker": False,
        }

    def get_system_stats(self, details=None) -> dict:
        return system_stats()

    def get_process_info(self, details=None) -> dict:
        return process_info("controller")

    def get_process_stats(self, details=None) -> dict:
        return typed_process_stats("controller")

    def get_process_monitor(self, details=None) -> dict:
        return self.monitor.poll()

    async def shutdown(self, restart: bool = False, mode=None, details=None) -> dict:
        info = {"node_id": self.node.node_id, "restart": restart, "mode": mode,
                "who": (details or {}).get("caller"), "when": utcstr(time.time()), "was_clean": True}
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.node.shutdown(0, "shutdown requested")))
        return info

    # -- workers -----------------------------------------------------------------------------

    def get_workers(self, filter_types=None, details=None) -> list:
        ft = set(filter_types or ())
        return sorted(wid for wid, w in self.workers.items() if not ft or w.TYPE in ft)

    def _worker(self, worker_id: str):
        w = self.workers.get(worker_id)
        if w is None:
            raise ApplicationError(NO_SUCH_WORKER, f"no worker with ID '{worker_id}'")
        return w

    def get_worker(self, worker_id: str, include_stats: bool = False, details=None) -> dict:
        w = self._worker(worker_id)
        info = w.marshal()
        if include_stats and w.pid:
            try:
                import psutil

                s = process_stats(psutil.Process(w.pid))
                s.pop("cmdline", None)
                info["stats"] = s
            except Exception:
                info["stats"] = None
        return info

    def get_worker_log(self, worker_id: str, limit: int = 100, details=None) -> list:
        w = self.workers.get(worker_id) or self.exited.get(worker_id)
        if w is None:
            raise ApplicationError(NO_SUCH_WORKER, f"no worker with ID '{worker_id}'")
        return w.get_log(limit)

    async def start_worker(self, worker_id: str, worker_type: str, worker_options: dict | None = None,
                           details=None) -> dict:
        """Start a worker: native workers get their ``options``; a guest gets its whole worker config."""
        who = (details or {}).get("caller")
        problem = worker_id_problem(worker_id)
        if problem:
            raise ApplicationError(INVALID_ARGUMENT, f"invalid worker ID {str(worker_id)[:100]!r}: {problem}")
        if worker_id in self.workers:
            raise ApplicationError(WORKER_ALREADY_RUNNING,
                                   f"a worker with ID '{worker_id}' is already running (or starting)")
        if self.shutdown_requested:
            raise ApplicationError(SHUTDOWN_REQUESTED, "the node is shutting down")
        personality = self.node.personality
        config = worker_options if worker_options is not None else {}
        if worker_type == "guest":
            if isinstance(config, dict):
                config = {"type": "guest", **config}
            try:
                check_guest_worker(config, "worker", personality)
            except ConfigError as e:
                raise ApplicationError(INVALID_CONFIGURATION, str(e)) from None
            worker = GuestWorkerProcess(self, worker_id, config, who)
        elif worker_type in personality.NATIVE_WORKERS:
            try:
                check_native_worker_options(worker_type, config, "options", personality)
            except ConfigError as e:
                raise ApplicationError(INVALID_CONFIGURATION, str(e)) from None
            if isinstance(config, dict) and config.get("replicas", 1) != 1:
                # N processes of one worker are the node config's (node/replicas.py): their transports
                # and links are derived from the whole worker config, which this call does not have
                raise ApplicationError(INVALID_CONFIGURATION,
                                       "options.replicas: replicas are configured in the node config only "
                                       "(start_worker starts one worker process)")
            worker = NativeWorkerProcess(self, worker_id, worker_type, config, who,
                                         logname=personality.NATIVE_WORKERS[worker_type]["logname"])
        else:
            known = ", ".join(sorted([*personality.NATIVE_WORKERS, "guest"]))
            raise ApplicationError(INVALID_CONFIGURATION, f"invalid worker type '{worker_type}' (available: {known})")

        self.workers[worker_id] = worker
        starting = {"id": worker_id, "type": worker.TYPE, "status": worker.status, "created": utcstr(worker.created),
                    "who": who}
        self.publish(f"crossbar.on_{worker.TYPE}_starting", starting)
        self.publish("crossbar.on_worker_starting", starting)
        log.info("Starting %s worker '%s' ..", worker.TYPE, worker_id)
        try:
            if worker.TYPE == "guest":
                await worker.spawn()
                await self._register_guest_procedures(worker)
                if not worker.ready.done():  # else it has exited already
                    worker.ready.set_result(None)
            else:
                role = worker_role(worker_id)
                self.node.management_realm.add_role(role)
                await worker.spawn(role["name"])
            await asyncio.wait_for(asyncio.shield(worker.ready), READY_TIMEOUT)
        except Exception as e:
            if self.workers.get(worker_id) is worker:
                del self.workers[worker_id]
            if worker.pid is not None and not worker.exited.done():
                worker.stop_requested = True
                worker.signal(signal.SIGKILL)
            self.node.management_realm.remove_role(worker_prefix(worker_id))
            if isinstance(e, asyncio.TimeoutError):
                msg = f"{worker.TYPE} worker '{worker_id}' was not ready within {READY_TIMEOUT}s"
            else:
                msg = f"{worker.TYPE} worker '{worker_id}' could not start: {e}"
            log.error("%s", msg)
            raise ApplicationError(CANNOT_START, msg, worker.get_log(20)) from None
        worker.status = "started"
        worker.started = time.time()
        info = {"id": worker_id, "type": worker.TYPE, "status": worker.status, "started": utcstr(worker.started),
                "who": who, "pid": worker.pid, "startup_time": worker.started - worker.created}
        log.info("%s worker '%s' started (pid %d, %.2fs)", worker.LOGNAME, worker_id, worker.pid,
                 worker.started - worker.created)
        self.publish(f"crossbar.on_{worker.TYPE}_started", info)
        self.publish("crossbar.on_worker_ready", info)
        return info

    async def stop_worker(self, worker_id: str, kill: bool = False, details=None) -> dict:
        worker = self._worker(worker_id)
        timeout = self.node.worker_stop_timeout
        info = {"id": worker_id, "type": worker.TYPE, "kill": kill, "who": (details or {}).get("caller"),
                "when": utcstr(time.time())}
        self.publish("crossbar.on_stop_requested", info)
        log.info("%s %s worker '%s' (pid %s) ..", "Killing" if kill else "Stopping", worker.TYPE, worker_id, worker.pid)
        code = await worker.stop(kill=kill, timeout=timeout)
        info["exit_code"] = code
        return info

    async def _register_guest_procedures(self, worker) -> None:
        """A guest is no WAMP session: the controller answers its process procedures."""
        import psutil

        try:
            procedures = GuestProcedures(psutil.Process(worker.pid))
        except psutil.NoSuchProcess:
            return  # it has exited already (a guest may just start something and end): it is reported as ended
        worker.registrations = await register_procedures(self.session, worker_prefix(worker.id), procedures)

    async def _unregister_guest_procedures(self, worker) -> None:
        for reg in getattr(worker, "registrations", ()):
            try:
                await self.session.unregister(reg)
            except Exception:
                pass

    # -- faults --------------------------------------------------------------------------------

    def worker_exited(self, worker) -> None:
        """Called by a worker process when it is gone."""
        if self.workers.get(worker.id) is worker:
            del self.workers[worker.id]
        self.exited[worker.id] = worker
        if worker.TYPE != "guest":
            self.node.management_realm.remove_role(worker_prefix(worker.id))
        else:
            asyncio.ensure_future(self._unregister_guest_procedures(worker))
        code = worker.exit_code
        requested = worker.stop_requested or self.shutdown_requested
        sig = -code if code is not None and code < 0 else None
        how = f"signal {signal.Signals(sig).name}" if sig else f"exit code {code}"
        was_started = worker.started is not None
        if requested:
            log.info("%s worker '%s' (pid %s) stopped (%s)", worker.LOGNAME, worker.id, worker.pid, how)
        elif code == 0:
            log.info("%s worker '%s' (pid %s) ended (%s)", worker.LOGNAME, worker.id, worker.pid, how)
        else:
            log.error("%s worker '%s' (pid %s) died (%s)", worker.LOGNAME, worker.id, worker.pid, how)
        event = {"id": worker.id, "type": worker.TYPE, "pid": worker.pid, "exit_code": code, "signal": sig,
                 "requested": requested, "was_clean": code == 0 or requested, "who": worker.who,
                 "when": utcstr(time.time())}
        self.publish("crossbar.on_worker_exit", event)
        if requested or not was_started:
            return
        self._apply_policy(worker, code)

    def _apply_policy(self, worker, code) -> None:
        """An unrequested exit: restart the worker where configured, else apply the shutdown triggers."""
        policy = worker.options.get("restart", defaults.RESTART)
        failed = code != 0
        if policy == "restart-always" or (policy == "restart-on-failed" and failed):
            now = time.monotonic()
            delay, last = self._restart_delay.get(worker.id, (0.5, 0.0))
            if now - last > 30:
                delay = 0.5  # it ran a while: start over with a short delay
            self._restart_delay[worker.id] = (min(delay * 2, 30.0), now + delay)
            log.info("Restarting %s worker '%s' in %.1fs (policy %s)", worker.TYPE, worker.id, delay, policy)
            self._restarts[worker.id] = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(self._restart(worker)))
            return
        triggers = self.node.shutdown_triggers
        reason = None
        if NODE_SHUTDOWN_ON_WORKER_EXIT in triggers:
            reason = f"worker '{worker.id}' exited and trigger '{NODE_SHUTDOWN_ON_WORKER_EXIT}' is active"
        elif failed and NODE_SHUTDOWN_ON_WORKER_EXIT_WITH_ERROR in triggers:
            reason = f"worker '{worker.id}' failed and trigger '{NODE_SHUTDOWN_ON_WORKER_EXIT_WITH_ERROR}' is active"
        elif not self.workers and not self._restarts and NODE_SHUTDOWN_ON_LAST_WORKER_EXIT in triggers:
            reason = f"no worker left and trigger '{NODE_SHUTDOWN_ON_LAST_WORKER_EXIT}' is active"
        if reason:
            log.info("Node shutting down: %s", reason)
            asyncio.ensure_future(self.node.shutdown(1 if failed else 0, reason))
        else:
            log.info("Node continues to run (shutdown triggers: %s)", ", ".join(triggers) or "none")

    async def _restart(self, worker) -> None:
        self._restarts.pop(worker.id, None)
        if self.shutdown_requested:
            return
        try:
            await self.node.boot_worker(worker.id, self.node.worker_configs.get(worker.id) or self._config_of(worker))
        except Exception as e:
            log.error("Restart of %s worker '%s' failed: %s", worker.TYPE, worker.id, e)
            again = self.workers.get(worker.id)
            if again is not None:
                # started, but its config could not be applied: stop it, that counts as a failed run
                again.stop_requested = True
                await again.stop(timeout=self.node.worker_stop_timeout)
            self._apply_policy(worker, 1)

    @staticmethod
    def _config_of(worker) -> dict:
        if worker.TYPE == "guest":
            return worker.config
        return {"type": worker.TYPE, "options": worker.config}

    def cancel_restarts(self) -> None:
        for h in self._restarts.values():
            h.cancel()
        self._restarts.clear()
