"""The container worker: ``ContainerWorker`` runs application components
(see ``component.py``), each connecting to a router through its configured
transport.

Worker options (Crossbar.io's):

- ``restart``: what to do when a component stops by itself:
  ``restart-never`` (default), ``restart-always``, ``restart-on-failed``;
- ``shutdown``: ``shutdown-manual`` (default: the container keeps running
  without components) or ``shutdown-on-last-component-stopped`` (the
  container exits when its last component is gone: code 0 if that one
  stopped cleanly, 1 if it failed -- then the node's shutdown policy or the
  worker's own restart option applies).

All components of one container run in one flavour: asyncio, or Twisted on
Twisted's asyncio reactor (installed on the container's loop before the
first Twisted component is loaded).  Mixing both in one container is
refused; use two containers.
"""

from __future__ import annotations

import asyncio
import logging

from ..client.session import ApplicationError
from ..config import defaults
from ..config.workers import check_container_component
from .component import ComponentRunner, add_pythonpath, client_connector, make_session_factory
from ..protocol.crossbar_errors import ALREADY_RUNNING, CANNOT_START, INVALID_CONFIGURATION, NO_SUCH_OBJECT
from .native import NativeWorker, check_or_raise

log = logging.getLogger("wampfabric.worker.container")

RESTART_DELAY = 1.0


def install_twisted_reactor() -> None:
    """Run Twisted on this process's asyncio loop (before anything imports the reactor)."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise ApplicationError(CANNOT_START, f"a Twisted reactor ({type(reactor).__name__}) is already installed")
        return
    from twisted.internet import asyncioreactor

    asyncioreactor.install(asyncio.get_running_loop())
    from twisted.internet import reactor

    # the asyncio loop is already running: mark the reactor running without
    # letting it run (or ever stop) the loop itself
    reactor._started = True
    reactor.running = True
    reactor._justStopped = False
    reactor.fireSystemEvent("startup")


class ContainerWorker(NativeWorker):
    WORKER_TYPE = "container"
    LOGNAME = "Container"

    PROCEDURES = NativeWorker.PROCEDURES + (
        "get_components", "get_component", "start_component", "stop_component", "restart_component",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.components: dict[str, ComponentRunner] = {}
        self.restart = self.options.get("restart", defaults.RESTART)
        self.shutdown_mode = self.options.get("shutdown", defaults.CONTAINER_SHUTDOWN)
        self.flavour: str | None = None
        self._pending_restarts: dict[str, asyncio.TimerHandle] = {}
        add_pythonpath(self.options.get("pythonpath"), self.cbdir)

    async def on_stop(self) -> None:
        for h in self._pending_restarts.values():
            h.cancel()
        self._pending_restarts.clear()
        await asyncio.gather(*(self._stop_one(cid) for cid in list(self.components)), return_exceptions=True)

    async def _stop_one(self, cid: str) -> None:
        runner = self.components.pop(cid, None)
        if runner is not None:
            await runner.stop()

    # -- procedures --------------------------------------------------------------------------

    def get_components(self, details=None) -> list:
        return sorted(self.components)

    def get_component(self, component_id: str, details=None) -> dict:
        c = self.components.get(component_id)
        if c is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no component with ID '{component_id}'")
        return c.marshal()

    async def start_component(self, component_id: str, config: dict, details=None) -> dict:
        if component_id in self.components:
            raise ApplicationError(ALREADY_RUNNING, f"a component with ID '{component_id}' is already running")
        check_or_raise(check_container_component, config, "component")
        flavour = "asyncio"
        if config["type"] == "class":
            # Twisted must be on our loop before the component's module imports the reactor
            if self.flavour != "asyncio" and _twisted_available():
                install_twisted_reactor()
        make, flavour = make_session_factory(config)
        if self.flavour is None:
            self.flavour = flavour
        elif self.flavour != flavour:
            raise ApplicationError(INVALID_CONFIGURATION,
                                   f"component '{component_id}' is {flavour}-flavoured, but this container runs "
                                   f"{self.flavour} components; use another container")
        runner = ComponentRunner(component_id, config, self.cbdir, client_connector(config, self.cbdir, flavour),
                                 on_exit=self._component_exited, make=make, flavour=flavour)
        self.components[component_id] = runner
        self.publish("on_component_starting", {"id": component_id})
        try:
            await runner.start()
        except ApplicationError:
            if self.components.get(component_id) is runner:
                del self.components[component_id]
            raise
        info = runner.marshal()
        self.publish("on_component_start", info)
        return info

    async def stop_component(self, component_id: str, details=None) -> dict:
        h = self._pending_restarts.pop(component_id, None)
        if h is not None:
            h.cancel()
        runner = self.components.pop(component_id, None)
        if runner is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no component with ID '{component_id}'")
        await runner.stop()
        info = runner.marshal()
        self.publish("on_component_stop", info)
        self._check_shutdown(failed=False)
        return info

    async def restart_component(self, component_id: str, details=None) -> dict:
        runner = self.components.get(component_id)
        if runner is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no component with ID '{component_id}'")
        await self.stop_component(component_id)
        return await self.start_component(component_id, runner.config)

    # -- faults ------------------------------------------------------------------------------------

    def _component_exited(self, runner: ComponentRunner) -> None:
        if self.components.get(runner.id) is not runner:
            return
        del self.components[runner.id]
        info = runner.marshal()
        self.publish("on_component_stop", info)
        again = self.restart == "restart-always" or (self.restart == "restart-on-failed" and runner.failed)
        if again and not self._shutdown_requested:
            log.info("Component '%s' %s; restarting it in %.1fs (policy %s)", runner.id,
                     "failed" if runner.failed else "stopped", RESTART_DELAY, self.restart)
            loop = asyncio.get_running_loop()
            self._pending_restarts[runner.id] = loop.call_later(
                RESTART_DELAY, lambda: asyncio.ensure_future(self._restart(runner.id, runner.config)))
            return
        self._check_shutdown(failed=runner.failed)

    async def _restart(self, component_id: str, config: dict) -> None:
        self._pending_restarts.pop(component_id, None)
        try:
            await self.start_component(component_id, config)
        except ApplicationError as e:
            log.error("Component '%s' could not be restarted: %s", component_id, e)
            # a failed start counts as a failed run of the component
            fake = ComponentRunner(component_id, config, self.cbdir, None)
            fake.failed, fake.error, fake.status = True, str(e), "failed"
            self.components[component_id] = fake
            self._component_exited(fake)

    def _check_shutdown(self, failed: bool) -> None:
        if self.shutdown_mode == "shutdown-on-last-component-stopped" and not self.components \
                and not self._pending_restarts:
            self.request_exit(1 if failed else 0, "last component stopped")


def _twisted_available() -> bool:
    """Is Twisted installed?  Imported, not looked up: autobahn ships ``twisted/plugins/``,
    so without Twisted ``importlib.util.find_spec("twisted")`` still finds a namespace package."""
    try:
        import twisted.internet  # noqa: F401
    except ImportError:
        return False
    return True
