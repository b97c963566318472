"""Adaptive busy-polling of a router's event loop.

A request/response round trip through the router wakes the router twice (the
request, then the answer).  When the router's CPU has gone idle in between, each
wake-up pays for the idle CPU to come back: on the virtual machines we measured
(haltpoll disabled, the common cloud default) that is tens of microseconds per
hop, and it accounted for most of a sequential call's latency through the
router (docs/decisions.md, "Adaptive busy-polling in router workers").

So after a loop turn that produced output, the loop keeps polling its sockets
without sleeping (``call_soon`` keeps the next ``epoll_wait`` at timeout 0) for a
short *window*; data that arrives within the window is handled at once.  The
window adapts the way the Linux guest ``haltpoll`` governor does:

* the loop slept, and the next activity came within ``max`` of the previous one
  (a longer window would have caught it): the window doubles, from ``start`` up
  to ``max``;
* the loop slept, and the gap was longer than ``max`` (sparse traffic, polling
  would only burn CPU): the window halves, and drops to 0 below ``start``;
* activity during the window: it stays.

An idle router or one with sparse traffic does not poll at all; a router whose
traffic keeps gaps below ``max`` stays awake (up to one core) while that traffic
lasts.  A polling turn without activity calls ``sched_yield``, so a peer process
sharing the router's CPU runs at once rather than after the window.  ``max`` = 0
turns polling off (router worker option ``busy_poll_us``).
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref

from ..config.defaults import BUSY_POLL_US as DEFAULT_MAX_US  # router worker option busy_poll_us
DEFAULT_START_US = 50

_monotonic = time.monotonic
# a polling loop steps aside for anything else runnable on its CPU (a client sharing the core
# must not wait for the window to run out); without other tasks it returns at once
_yield = getattr(os, "sched_yield", lambda: None)
_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BusyPoll]" = weakref.WeakKeyDictionary()


class BusyPoll:
    __slots__ = ("_loop", "max", "start", "window", "polling", "_last", "_polled", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop, max_us: float = DEFAULT_MAX_US,
                 start_us: float = DEFAULT_START_US):
        self._loop = loop
        self.max = max_us / 1e6
        self.start = min(start_us, max_us) / 1e6
        self.window = 0.0  # current polling window (seconds); 0 = the loop sleeps at once
        self.polling = False  # a polling window is open
        self._last = float("-inf")  # time of the last activity
        self._polled = self._last  # the last activity seen by the previous poll

    def activity(self) -> None:
        """A loop turn produced output (called once per turn by the write coalescer)."""
        now = _monotonic()
        if self.polling:
            self._last = now
            return
        # the loop slept since the last activity: adapt the window to the gap
        if now - self._last <= self.max:
            self.window = min(self.max, max(self.start, self.window * 2))
        else:
            half = self.window / 2
            self.window = half if half >= self.start else 0.0
        self._last = now
        if self.window:
            self.polling = True
            self._loop.call_soon(self._poll)

    def _poll(self) -> None:
        last = self._last
        if _monotonic() - last < self.window:
            if last == self._polled:
                _yield()  # a turn without activity: the loop is only waiting
            self._polled = last
            self._loop.call_soon(self._poll)
        else:
            self.polling = False


def install(loop: asyncio.AbstractEventLoop, max_us: float = DEFAULT_MAX_US,
            start_us: float = DEFAULT_START_US) -> BusyPoll | None:
    """Turn busy-polling on for ``loop`` (``max_us`` = 0: off); returns the poller."""
    if max_us <= 0:
        _by_loop.pop(loop, None)
        return None
    poller = BusyPoll(loop, max_us, start_us)
    _by_loop[loop] = poller
    return poller


def poller_of(loop: asyncio.AbstractEventLoop) -> BusyPoll | None:
    """The loop's poller, if busy-polling was installed on it."""
    return _by_loop.get(loop)
