"""The node: node key, config, the local node management router, the node
controller and the workers it boots (design document, "Node Booting").

``wampfabric start`` runs this in the foreground: the process is the node
controller.  It

1. loads (or creates) the node key and loads and checks the config;
2. writes the pid file ``node.pid`` in the node directory (refusing to start
   when a live node owns it);
3. starts the node management router (a ``Router`` with the one realm
   ``crossbar``) which never listens on the network -- unless
   ``controller.transport`` asks for a Unix socket in the node directory
   (``management.py``);
4. attaches the ``NodeController`` session through the function-call
   transport, starts the personality's node extensions (``NODE_EXTENSIONS``,
   see ``personality.py``) and boots the workers of the config through the
   personality's ``WORKER_BOOTERS``, which call the management API
   (``crossbar.start_worker``, then ``crossbar.worker.<id>.start_*``),
   exactly as a remote manager would;
5. publishes ``crossbar.on_ready`` and runs until SIGTERM/SIGINT,
   ``crossbar.shutdown`` or a shutdown trigger; then it publishes
   ``crossbar.on_shutdown``, stops all workers (SIGTERM, SIGKILL after a
   timeout), then its extensions, and removes the pid file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from ..client.session import ApplicationError
from ..protocol.crossbar_errors import INVALID_CONFIGURATION
from ..router.realm import Router
from . import pidfile
from ..config.base import ConfigError, config_errors
from .config import disabled_reason, find_config, load_config
from .controller import NODE_SHUTDOWN_ON_WORKER_EXIT, NodeController
from .keys import load_or_create_node_key
from .replicas import ReplicaError, expand, replica_count

log = logging.getLogger("wampfabric.node")

MANAGEMENT_REALM = "crossbar"
from ..config.defaults import SHUTDOWN_TIMEOUT as DEFAULT_WORKER_STOP_TIMEOUT  # noqa: E402


class ExtensionError(Exception):
    """A node extension could not start."""


def management_realm_config() -> dict:
    """Realm ``crossbar``: workers get per-worker roles when they start; ``management``
    is the role of local management clients (Unix socket): they may call and
    subscribe, never register or publish (so they cannot pose as the node or a worker)."""
    return {
        "name": MANAGEMENT_REALM,
        "roles": [{"name": "management", "permissions": [
            {"uri": "", "match": "prefix", "allow": {"call": True, "subscribe": True}}]}],
    }


class Node:
    def __init__(self, personality, cbdir: Path, config_name: str | None = None, loglevel: str = "info"):
        self.personality = personality
        self.cbdir = Path(cbdir).resolve()
        self.config_path = find_config(self.cbdir, config_name)
        self.config: dict = {}
        self.key = None
        self.node_id = "node1"
        self.loglevel = loglevel
        self.realm_name = MANAGEMENT_REALM
        self.router: Router | None = None
        self.management_realm = None
        self.controller: NodeController | None = None
        self.management = None
        self.extensions: list = []  # the personality's node extensions that have started, in order
        self.worker_configs: dict[str, dict] = {}
        self.shutdown_triggers: list[str] = [NODE_SHUTDOWN_ON_WORKER_EXIT]
        self.worker_stop_timeout = DEFAULT_WORKER_STOP_TIMEOUT
        self.exit_code = 0
        self._stopped: asyncio.Event | None = None
        self._shutting_down = False
        self._shutdown_task: asyncio.Future | None = None
        self._counters: dict[str, int] = {}

    def load_keys(self) -> None:
        self.key, created = load_or_create_node_key(self.cbdir)
        if created:
            log.info("New node key pair generated: public key %s (key.priv mode 0600)", self.key.public_hex)
        else:
            log.info("Node key loaded: public key %s", self.key.public_hex)

    def load_config(self) -> None:
        self.config = load_config(self.config_path, self.personality, self.cbdir)
        controller = self.config.get("controller", {})
        self.node_id = controller.get("id") or os.uname().nodename.split(".")[0] or "node1"
        options = controller.get("options", {})
        if "shutdown" in options:
            self.shutdown_triggers = list(options["shutdown"])
        if "shutdown_timeout" in options:
            self.worker_stop_timeout = float(options["shutdown_timeout"])
        log.info("Node configuration loaded from %s", self.config_path)

    # -- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = asyncio.Event()
        self.router = Router(node_id=self.node_id, worker_id="controller")
        self.management_realm = self.router.start_realm(management_realm_config())
        self.controller = NodeController(self)
        await self.controller.start()
        log.info("Node management router started (realm '%s'); node controller attached", self.realm_name)
        tcfg = self.config.get("controller", {}).get("transport")
        if tcfg:
            from .management import ManagementSocket

            self.management = ManagementSocket(self, tcfg)
            await self.management.start()
        for factory in self.personality.NODE_EXTENSIONS:
            ext = factory()
            try:
                await ext.start(self)
            except Exception as e:
                raise ExtensionError(f"node extension {type(ext).__name__}: {type(e).__name__}: {e}") from None
            self.extensions.append(ext)
            log.info("Node extension %s started", type(ext).__name__)

    def _next_id(self, kind: str) -> str:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return f"{kind}{self._counters[kind]:03d}"

    async def boot_from_config(self) -> None:
        """Start the workers of the config through the management API."""
        started = {}
        configured_ids = {w.get("id") for w in self.config.get("workers", []) if isinstance(w, dict)}
        for worker_cfg in self.config.get("workers", []):
            wtype = worker_cfg["type"]
            worker_id = worker_cfg.get("id") or self._next_id("worker")
            reason = disabled_reason(worker_cfg)
            if reason:
                logname = self.personality.worker_logname(wtype)
                log.info("Skip start of worker %s %s (%s)", logname, worker_id, reason)
                continue
            if replica_count(worker_cfg) > 1:
                # one router worker config, N processes behind its ports, linked in a mesh (replicas.py)
                try:
                    replicas = expand(worker_id, worker_cfg, self.cbdir, self.key.public_hex)
                except ReplicaError as e:
                    raise ApplicationError(INVALID_CONFIGURATION, str(e)) from None
                clash = [rid for rid, _ in replicas if rid in self.worker_configs or rid in configured_ids]
                if clash:
                    raise ApplicationError(INVALID_CONFIGURATION, f"worker '{worker_id}': replica ID '{clash[0]}' "
                                                                  "is the ID of another worker")
                log.info("Starting router worker '%s' as %d replicas (%s) sharing its listening ports", worker_id,
                         len(replicas), ", ".join(rid for rid, _ in replicas))
            else:
                replicas = [(worker_id, worker_cfg)]
            # the last replica first: a replica's links go to the higher ones, which then listen already
            for rid, cfg in reversed(replicas):
                self.worker_configs[rid] = cfg
                await self.boot_worker(rid, cfg)
                started[wtype] = started.get(wtype, 0) + 1
        log.info("Node %s ready (%d worker(s): %s)", self.node_id, sum(started.values()),
                 ", ".join(f"{n} {k}" for k, n in started.items()) or "none")

    async def boot_worker(self, worker_id: str, worker_cfg: dict) -> None:
        """Start one worker and everything its config describes (also used to restart it), through
        the personality's booter of its type."""
        wtype = worker_cfg["type"]
        booter = self.personality.WORKER_BOOTERS.get(wtype)
        if booter is None:
            known = ", ".join(sorted(self.personality.WORKER_BOOTERS))
            raise ApplicationError(INVALID_CONFIGURATION,
                                   f"worker '{worker_id}': no booter for worker type '{wtype}' (available: {known})")
        await booter(self, worker_id, worker_cfg)

    # -- stop ----------------------------------------------------------------------------------

    async def shutdown(self, exit_code: int = 0, reason: str = "") -> None:
        """Stop the node (once; later calls wait for the first to finish)."""
        if self._shutdown_task is None:
            self._shutting_down = True
            self.exit_code = exit_code
            self._shutdown_task = asyncio.ensure_future(self._shutdown(reason))
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self, reason: str) -> None:
        exit_code = self.exit_code
        log.info("Node shutting down%s ..", f" ({reason})" if reason else "")
        ctl = self.controller
        if ctl is not None:
            ctl.shutdown_requested = True
            ctl.cancel_restarts()
            info = {"node_id": self.node_id, "reason": reason, "was_clean": exit_code == 0}
            if ctl.session is not None and ctl.session.is_attached:
                try:
                    await asyncio.wait_for(ctl.session.publish("crossbar.on_shutdown", info,
                                                               options={"acknowledge": True}), 2)
                except Exception:
                    pass
            workers = list(ctl.workers.values())
            # containers first (their components talk to the routers), then the rest
            order = sorted(workers, key=lambda w: {"container": 0, "guest": 1}.get(w.TYPE, 2))
            for group in ("container", "guest", None):
                batch = [w for w in order if (w.TYPE == group) or (group is None and w.TYPE not in ("container", "guest"))]
                if batch:
                    await asyncio.gather(*(w.stop(timeout=self.worker_stop_timeout) for w in batch),
                                         return_exceptions=True)
            # what guests that exited earlier left in their process groups
            await ctl.guest_groups.end_all(self.worker_stop_timeout)
            await ctl.guest_groups.close()
        await self._stop_extensions()
        if self.management is not None:
            await self.management.stop()
        if self._stopped is not None:
            self._stopped.set()

    async def _stop_extensions(self) -> None:
        while self.extensions:
            ext = self.extensions.pop()
            name = type(ext).__name__
            try:
                await asyncio.wait_for(ext.stop(), self.worker_stop_timeout)
            except asyncio.TimeoutError:
                log.error("Node extension %s did not stop within %ss", name, self.worker_stop_timeout)
            except Exception as e:
                log.error("Node extension %s failed to stop: %s: %s", name, type(e).__name__, e)
            else:
                log.info("Node extension %s stopped", name)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: asyncio.ensure_future(self._on_signal(s)))

    async def run_until_stopped(self) -> int:
        await self._stopped.wait()
        return self.exit_code

    async def _on_signal(self, sig) -> None:
        if self._shutting_down:
            return
        log.info("Received %s, shutting down node ..", signal.Signals(sig).name)
        await self.shutdown(0, signal.Signals(sig).name)


def run_node(personality, cbdir: Path, config_name: str | None = None, loglevel: str = "info") -> int:
    """Run a node in the foreground until it is stopped; returns the exit code."""
    node = Node(personality, cbdir, config_name, loglevel)
    try:
        node.load_config()
        node.load_keys()
    except ConfigError as e:
        for err in config_errors(e):  # the lines `wampfabric check` prints
            log.error("Invalid node configuration: %s", err)
        return 1
    except Exception as e:  # key file problems
        log.error("%s", e)
        return 1

    try:
        pid_info = pidfile.acquire(node.cbdir)
    except pidfile.AlreadyRunning as e:
        log.error("%s", e)
        return 1
    old = pid_info.get("replaced")
    if old is not None and old.state == pidfile.FOREIGN:
        log.warning("Replaced pid file %s naming a process that is not this node's: %s", pidfile.path(node.cbdir),
                    old.reason)
    elif old is not None:
        log.warning("Removed stale pid file of node process %s (not running)", old.pid or "?")

    async def main() -> int:
        node.install_signal_handlers()
        try:
            await node.start()
            await node.boot_from_config()
        except (ApplicationError, ExtensionError, OSError) as e:
            if node._shutting_down:  # a signal (or crossbar.shutdown) during the boot
                await node.shutdown()
                return node.exit_code
            log.error("Node could not start: %s", e)
            await node.shutdown(1, "start failed")
            return 1
        node.controller.publish("crossbar.on_ready", {"node_id": node.node_id, "pid": os.getpid()})
        return await node.run_until_stopped()

    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover
            uvloop = None
        code = uvloop.run(main()) if uvloop is not None else asyncio.run(main())
    finally:
        pidfile.release(node.cbdir)
    log.info("Node stopped (exit code %d)", code)
    return code
