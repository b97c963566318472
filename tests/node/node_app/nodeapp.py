"""Application components run by the node runtime tests (tests/node/test_node_runtime.py)."""

import asyncio
import os

from autobahn.asyncio.wamp import ApplicationSession


class Backend(ApplicationSession):
    """Container component: registers a procedure and publishes ticks."""

    async def onJoin(self, details):
        prefix = (self.config.extra or {}).get("prefix", "com.example")
        await self.register(lambda a, b: a + b, f"{prefix}.add2")
        await self.register(os.getpid, f"{prefix}.pid")
        print(f"backend joined {details.realm}", flush=True)  # a plain print lands in the worker log
        self._ticker = asyncio.ensure_future(self._tick(prefix))

    async def _tick(self, prefix):
        n = 0
        while True:
            n += 1
            self.publish(f"{prefix}.tick", n)
            await asyncio.sleep(0.1)

    def onLeave(self, details):
        self._ticker.cancel()
        super().onLeave(details)


class RouterSide(ApplicationSession):
    """Router component: runs inside the router worker."""

    async def onJoin(self, details):
        await self.register(lambda s: f"router says {s}", "com.example.router_echo")


class Failing(ApplicationSession):
    async def onJoin(self, details):
        raise RuntimeError("this component fails on purpose")


def on_join(session, details):
    """Function component ('callbacks': {'join': ...})."""
    return session.register(lambda x: x * 10, "com.example.fn_times10")


class Quitter(ApplicationSession):
    """Leaves as soon as it has joined (a component that has done its job)."""

    async def onJoin(self, details):
        self.leave()


class Flaky(ApplicationSession):
    """Counts its runs, then fails (leaves with an error reason) shortly after joining."""

    runs = 0

    async def onJoin(self, details):
        Flaky.runs += 1
        await self.register(lambda: Flaky.runs, "com.flaky.runs")
        if Flaky.runs < 3:
            await asyncio.sleep(0.2)
            self.leave("com.example.error.failed", "failing on purpose")
