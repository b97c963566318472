"""Write coalescing: one write per connection per event-loop turn.

A router turn typically produces several messages for the same peer (a
burst of INVOCATIONs for one callee, EVENTs for one subscriber).  Writing
each one with its own ``send()`` syscall dominated the router's CPU profile,
so connections queue framed messages and a single ``call_soon`` callback
per loop turn hands each dirty connection's queue to its transport with one
``writelines`` (uvloop: one ``writev``).
"""

from __future__ import annotations

import asyncio


class Coalescer:
    __slots__ = ("_loop", "_dirty", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._dirty: list = []
        self._scheduled = False

    def mark(self, conn) -> None:
        """``conn`` has queued output; its ``flush()`` runs at the end of this turn."""
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
