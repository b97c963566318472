"""Adaptive busy-polling of the router's event loop (transport/busypoll.py).

The poller's window follows the gaps between loop turns with output; these tests
drive it with a controlled clock on a real event loop and check what the loop
is asked to do (keep polling, or sleep)."""

from __future__ import annotations

import asyncio

import pytest

from wampfabric.transport import busypoll
from wampfabric.transport.coalesce import Coalescer

US = 1e-6


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, us: float):
        self.t += us * US


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(busypoll, "_monotonic", c)
    return c


async def turns(n: int = 3):
    """Let the loop run a few turns (the poller's callbacks run once per turn)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_ping_pong_traffic_grows_the_window_to_max_and_keeps_polling(clock):
    poller = busypoll.BusyPoll(asyncio.get_running_loop(), max_us=300, start_us=50)
    poller.activity()  # first activity after a long idle: no polling yet
    assert poller.window == 0 and not poller.polling
    windows = []
    for _ in range(6):
        clock.advance(120)  # the answer comes 120 us later, after the loop slept
        poller.activity()
        windows.append(round(poller.window / US))
        clock.advance(400)  # past any window: the poll ends
        await turns()
        assert not poller.polling
        clock.t -= 400 * US
    assert windows[:4] == [50, 100, 200, 300] and windows[4:] == [300, 300]


async def test_activity_within_the_window_keeps_the_loop_polling(clock):
    poller = busypoll.BusyPoll(asyncio.get_running_loop(), max_us=300, start_us=50)
    poller.activity()
    clock.advance(10)
    poller.activity()
    assert poller.polling and poller.window == pytest.approx(50 * US)
    for _ in range(20):  # activity every 30 us: inside the 50 us window
        clock.advance(30)
        await turns(1)
        poller.activity()
        assert poller.polling
    clock.advance(49)
    await turns()
    assert poller.polling  # still inside the window
    clock.advance(2)
    await turns()
    assert not poller.polling  # window passed without activity: the loop may sleep
    assert poller.window == pytest.approx(50 * US)  # success does not change the window


async def test_sparse_traffic_shrinks_the_window_to_zero(clock):
    poller = busypoll.BusyPoll(asyncio.get_running_loop(), max_us=300, start_us=50)
    poller.activity()
    for _ in range(4):  # grow to max
        clock.advance(100)
        poller.activity()
        clock.advance(1000)
        await turns()
        clock.t -= 1000 * US
    assert poller.window == pytest.approx(300 * US)
    seen = []
    for _ in range(4):  # one message every 2 ms: polling cannot catch it
        clock.advance(2000)
        poller.activity()
        seen.append(round(poller.window / US))
        clock.advance(1000)
        await turns()
    assert seen == [150, 75, 0, 0]
    assert not poller.polling


async def test_polling_turns_without_activity_yield_the_cpu(clock, monkeypatch):
    """A peer process sharing the router's core must not wait for the window to run out:
    polling turns in which nothing happened give the CPU away (sched_yield); turns with
    activity (a loaded router) do not."""
    yields = []
    monkeypatch.setattr(busypoll, "_yield", lambda: yields.append(1))
    poller = busypoll.BusyPoll(asyncio.get_running_loop(), max_us=300, start_us=50)
    poller.activity()
    clock.advance(10)
    poller.activity()
    assert poller.polling
    for _ in range(5):  # activity in every turn: no yield
        await turns(1)
        clock.advance(1)
        poller.activity()
    assert not yields
    await turns(3)  # turns without activity
    assert len(yields) >= 2
    clock.advance(1000)
    await turns()
    assert not poller.polling


async def test_idle_loop_has_no_poll_callbacks(clock):
    loop = asyncio.get_running_loop()
    poller = busypoll.BusyPoll(loop, max_us=300, start_us=50)
    poller.activity()
    clock.advance(10)
    poller.activity()
    assert poller.polling
    clock.advance(1000)
    await turns()
    assert not poller.polling
    # nothing is left scheduled: an idle router sleeps in epoll_wait
    ready = loop._ready  # the test loop is asyncio's own
    assert not any(getattr(h, "_callback", None) == poller._poll for h in ready)


async def test_install_off_and_coalescer_wiring():
    loop = asyncio.get_running_loop()
    assert busypoll.install(loop, 0) is None
    assert busypoll.poller_of(loop) is None

    class Conn:
        flushed = 0

        def flush(self):
            Conn.flushed += 1

    c = Coalescer(loop)
    c.mark(Conn())
    await turns()
    assert Conn.flushed == 1

    poller = busypoll.install(loop, 200)
    try:
        assert busypoll.poller_of(loop) is poller and poller.max == pytest.approx(200 * US)
        c2 = Coalescer(loop)
        before = poller._last
        c2.mark(Conn())
        await turns()
        assert Conn.flushed == 2
        assert poller._last != before  # the flush told the poller of the turn's output
    finally:
        busypoll.install(loop, 0)
