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

from .busypoll import poller_of


class Coalescer:
    __slots__ = ("_loop", "_dirty", "_scheduled", "_poller")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._dirty: list = []
        self._scheduled = False
        # the loop's adaptive busy-poller (router workers), told of every turn with output
        self._poller = poller_of(loop)

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
        if self._poller is not None:
            self._poller.activity()


class QueuedWriter:
    """Output side of a coalesced connection (mixin of the WebSocket listener and
    the RawSocket protocol): frames are queued and written once per loop turn.

    The connection provides ``service`` (with ``coalescer`` and
    ``max_outgoing_buffer``), the attributes ``_out``, ``_out_size`` and
    ``_closed``, ``_stream()`` (its asyncio transport) and ``_overflow()``
    (what to do when the peer does not read)."""

    __slots__ = ()

    def _queue(self, header: bytes, data: bytes) -> None:
        out = self._out
        if not out:
            self.service.coalescer.mark(self)
        out.append(header)
        out.append(data)
        self._out_size += len(data)
        if self._out_size > self.service.max_outgoing_buffer:
            self._overflow()

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        self._out_size = 0
        if self._closed:
            return
        stream = self._stream()
        stream.writelines(out)
        if stream.get_write_buffer_size() > self.service.max_outgoing_buffer:
            self._overflow()
