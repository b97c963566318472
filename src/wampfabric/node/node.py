"""A node: node key, config, and the router workers it runs.

This version runs its router workers inside the node process; the process
model with a node controller and worker processes builds on this (see
docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

from ..router.realm import Router
from .checkconfig import ConfigError
from .config import find_config, load_config
from .keys import load_or_create_node_key

log = logging.getLogger("wampfabric.node")


class RouterWorker:
    """A router worker: a ``Router`` with its realms and transports."""

    def __init__(self, node: "Node", worker_id: str, config: dict):
        self.node = node
        self.worker_id = worker_id
        self.config = config
        self.router = Router(node_id=node.node_id, worker_id=worker_id)
        self.transports: dict = {}

    async def start(self) -> None:
        for realm_cfg in self.config.get("realms", []):
            self.router.start_realm(realm_cfg)
        for i, tcfg in enumerate(self.config.get("transports", [])):
            await self.start_transport(tcfg.get("id", f"transport{i + 1:03d}"), tcfg)

    async def start_transport(self, transport_id: str, config: dict):
        cls = self.node.personality.ROUTER_TRANSPORTS[config["type"]]
        transport = cls(self.router, transport_id, config, self.node.cbdir, self.node.personality)
        await transport.start()
        self.transports[transport_id] = transport
        log.info("Router %s: %s started", self.worker_id, transport.description)
        return transport

    async def stop(self) -> None:
        for tid, t in list(self.transports.items()):
            await t.stop()
            del self.transports[tid]
        for name in list(self.router.realms):
            self.router.stop_realm(name)


class Node:
    def __init__(self, personality, cbdir: Path, config_name: str | None = None):
        self.personality = personality
        self.cbdir = Path(cbdir).resolve()
        self.config_path = find_config(self.cbdir, config_name)
        self.config: dict = {}
        self.key = None
        self.node_id = "node1"
        self.workers: dict[str, RouterWorker] = {}
        self._stopped: asyncio.Event | None = None

    def load_keys(self) -> None:
        self.key, created = load_or_create_node_key(self.cbdir)
        if created:
            log.info("New node key pair generated: public key %s (key.priv mode 0600)", self.key.public_hex)
        else:
            log.info("Node key loaded: public key %s", self.key.public_hex)

    def load_config(self) -> None:
        self.config = load_config(self.config_path, self.personality)
        self.node_id = self.config.get("controller", {}).get("id") or os.uname().nodename.split(".")[0] or "node1"
        log.info("Node configuration loaded from %s", self.config_path)

    async def start(self) -> None:
        self._stopped = asyncio.Event()
        count = {}
        for worker_cfg in self.config.get("workers", []):
            kind = worker_cfg["type"]
            count[kind] = count.get(kind, 0) + 1
            worker_id = worker_cfg.get("id", f"worker{len(self.workers) + 1:03d}")
            worker = RouterWorker(self, worker_id, worker_cfg)
            try:
                await worker.start()
            except OSError as e:
                await worker.stop()
                raise NodeStartError(f"worker '{worker_id}' could not start: {e}") from None
            self.workers[worker_id] = worker
        log.info("Node %s ready (%d worker(s): %s)", self.node_id, len(self.workers),
                 ", ".join(f"{n} {k}" for k, n in count.items()) or "none")

    async def stop(self) -> None:
        for wid, w in list(self.workers.items()):
            await w.stop()
            del self.workers[wid]
        if self._stopped is not None:
            self._stopped.set()

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: asyncio.ensure_future(self._on_signal(s)))
        await self._stopped.wait()

    async def _on_signal(self, sig) -> None:
        log.info("Received %s, shutting down node ..", signal.Signals(sig).name)
        await self.stop()


def tune_gc() -> None:
    """Garbage collector settings for a long-running router.

    A router holds many long-lived objects per session and the hot path
    creates no reference cycles (sessions break theirs on close), yet with
    the default thresholds the cyclic GC re-traversed every live session
    during a burst of joins: 30% of the router's CPU (py-spy --native).
    Startup objects are frozen out of the collector, and young collections
    run after 50,000 net allocations instead of 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class NodeStartError(Exception):
    pass


def run_node(personality, cbdir: Path, config_name: str | None = None) -> int:
    """Run a node in the foreground until SIGINT/SIGTERM; returns the exit code."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        uvloop = None

    node = Node(personality, cbdir, config_name)
    try:
        node.load_config()
        node.load_keys()
    except ConfigError as e:
        log.error("Invalid node configuration: %s", e)
        return 1
    except Exception as e:  # key file problems
        log.error("%s", e)
        return 1

    async def main() -> int:
        try:
            await node.start()
        except NodeStartError as e:
            log.error("%s", e)
            await node.stop()
            return 1
        tune_gc()
        await node.run_until_stopped()
        log.info("Node stopped")
        return 0

    if uvloop is not None:
        return uvloop.run(main())
    return asyncio.run(main())
