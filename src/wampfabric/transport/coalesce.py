"""Write coalescing: one write per connection per event-loop turn.

A router turn typically produces several messages for the same peer (a
burst of INVOCATIONs for one callee, EVENTs for one subscriber).  Writing
each one with its own ``send()`` syscall dominated the router's CPU profile,
so connections queue framed messages and a single ``call_soon`` callback
per loop turn hands each dirty connection's queue to its transport as one
joined buffer (one ``write``; see ``QueuedWriter`` for peers that do not read).
"""

from __future__ import annotations

import asyncio
import socket
import struct

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

    The connection provides ``factory`` (with ``coalescer`` and ``max_outgoing_buffer``),
    the attributes ``_out``, ``_out_size``, ``_limit`` (``FLUSH_STEP``), ``_backlog``
    (``None``) and ``_closed``, ``_stream()``
    (its asyncio transport) and ``_overflow()`` (what to do when the peer does not
    read); it calls ``watch_writes(transport)`` once it has its transport.

    Memory of a peer that does not read (docs/decisions.md): a serialized message can
    cost far more than its length (orjson's ``bytes`` keep a 4 KiB buffer for a 60-byte
    EVENT), so queued frames are never kept as message objects for long:

    - a turn's frames are written as one joined buffer (a partly written turn leaves the
      transport holding one compact object), and a turn that queues more than
      ``FLUSH_STEP`` bytes is flushed early;
    - the transport pauses us as soon as it holds anything it could not write
      (high-water mark 0); while paused, frames are copied into one ``bytearray``
      (``_backlog``), written as one buffer on ``resume_writing`` (TLS transports: see
      ``watch_writes``);
    - the bound counts the bytes really held: the transport's buffer plus the backlog
      plus this turn's frames.

    A peer that reads pays nothing of this beyond one comparison per message."""

    __slots__ = ()

    def _queue(self, header: bytes, data: bytes) -> None:
        out = self._out
        if not out:
            self.factory.coalescer.mark(self)
        out.append(header)
        out.append(data)
        self._out_size += len(data)
        if self._out_size > self._limit:
            if self._out_size > self.factory.max_outgoing_buffer:
                self._overflow()
            else:
                self.flush()  # a big turn: write (or compact) what we have so far

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        if self._closed:
            self._out_size = 0
            return
        stream = self._stream()
        backlog = self._backlog
        if backlog is None:
            # one write(2) of a joined buffer is not slower than a writev of small ones
            stream.write(b"".join(out))
            size = stream.get_write_buffer_size()
            if not size:  # all of it went to the kernel
                self._out_size = 0
                self._limit = FLUSH_STEP
                return
        else:
            for b in out:
                backlog += b
            size = len(backlog) + stream.get_write_buffer_size()
        self._held(size)

    def _held(self, size: int) -> None:
        """``size`` bytes are waiting for the peer to read them."""
        factory = self.factory
        self._out_size = size
        self._limit = min(size + FLUSH_STEP, factory.max_outgoing_buffer)
        if size > factory.max_outgoing_buffer:
            self._overflow()

    # flow control of the transport (asyncio protocol callbacks; picows forwards them)

    def pause_writing(self) -> None:
        stream = self._stream()
        # TLS: the transport keeps our (joined) buffers itself, see watch_writes
        if self._backlog is None and stream is not None and stream.get_extra_info("sslcontext") is None:
            self._backlog = bytearray()

    def resume_writing(self) -> None:
        backlog = self._backlog
        self._backlog = None
        if self._closed:
            return
        if backlog:
            stream = self._stream()
            stream.write(backlog)  # the transport keeps the bytearray if this pauses us again
            if self._backlog is not None:
                self._held(stream.get_write_buffer_size())
                return
        self._out_size = 0
        self._limit = FLUSH_STEP

    def flush_all(self) -> None:
        """Hand everything queued to the transport, backlog included (before a close)."""
        self.flush()
        backlog = self._backlog
        if backlog and not self._closed:
            self._backlog = bytearray()  # still paused; the transport keeps the order
            self._stream().write(backlog)

    def _drop_output(self) -> None:
        """Forget queued output (the connection is being aborted)."""
        self._out = []
        self._out_size = 0
        self._backlog = None


# a turn that queues more than this for one connection is flushed early (bounds the
# message objects alive at once; one write per 16 KiB costs nothing measurable)
FLUSH_STEP = 16 * 1024


_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, drops unsent data


def reset_connection(transport) -> None:
    """Abort ``transport`` so that the kernel drops what it still holds for the peer: a peer that
    does not read would otherwise be fed the kernel's send buffer (megabytes) at the pace of its
    receive window, for minutes, after we gave up on it."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    transport.abort()


def watch_writes(transport) -> None:
    """Have a plain TCP/Unix ``transport`` pause its protocol whenever it holds unwritten
    data.  A TLS transport is left as it is and its pauses are ignored (it holds our
    joined buffers itself, counted by its ``get_write_buffer_size``): with a high-water
    mark of 0, uvloop's TLS transport did not resume a paused protocol."""
    if transport.get_extra_info("sslcontext") is None:
        transport.set_write_buffer_limits(high=0)


def release_memory() -> None:
    """After a slow peer's buffers were dropped (or a crowd of idle connections closed):
    give the freed memory back to the system soon (glibc keeps freed heap memory otherwise;
    figures: docs/decisions.md, "Peers that do not read").  At most one ``malloc_trim`` per
    second, however many connections are cut off."""
    global _trim_pending
    if _trim_pending or _malloc_trim is None:
        return
    _trim_pending = True
    asyncio.get_running_loop().call_later(1.0, _trim)


def _trim() -> None:
    global _trim_pending
    _trim_pending = False
    _malloc_trim(0)


def _find_malloc_trim():
    try:
        import ctypes
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None


_trim_pending = False
_malloc_trim = _find_malloc_trim()
