"""Scenario-wide state: failure propagation and the measurement phase."""

from __future__ import annotations

import asyncio
import time


class BenchFailure(Exception):
    """A verification or protocol failure: the scenario is invalid."""


WARMUP, MEASURE, DRAIN = 0, 1, 2


class Run:
    """Shared state of one scenario run."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.failed: asyncio.Future = loop.create_future()
        self.phase = WARMUP
        self.running = True  # issue new requests?
        # never let an unobserved failure warn at exit
        self.failed.add_done_callback(lambda f: f.cancelled() or f.exception())

    def fail(self, msg: str) -> None:
        if not self.failed.done():
            self.failed.set_exception(BenchFailure(msg))
        self.running = False

    def check(self) -> None:
        if self.failed.done():
            self.failed.result()  # raises

    async def sleep_or_fail(self, seconds: float) -> None:
        """Sleep, but wake up (and raise) immediately if the run fails."""
        try:
            await asyncio.wait_for(asyncio.shield(self.failed), seconds)
        except asyncio.TimeoutError:
            return
        self.check()

    async def wait_until(self, pred, timeout: float, what: str, poll: float = 0.005) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            self.check()
            if time.monotonic() > deadline:
                raise BenchFailure(f"timeout after {timeout:.1f}s waiting for {what}")
            await asyncio.sleep(poll)
        self.check()
