"""The load generator's WAMP clients, on the raw peer's framing (wampfabric.client.raw).

WampSession: one WAMP session over one picows WebSocket connection, callback based (no
coroutine per message); outgoing messages are queued as masked frames and written once per
event-loop turn.  LeanSession (with LeanJoins): the sessions scenario's joining sessions, one
asyncio.Protocol each with its own handshake and framing, so that the router and not the load
generator bounds joins/s.
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.parse

import picows
from picows import WSListener, WSMsgType, ws_connect

from wampfabric.client.raw import (
    ABORT,
    CLIENT_ROLES,
    ERROR,
    EVENT,
    GOODBYE,
    HELLO,
    INVOCATION,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PUBLISHED,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    UNREGISTERED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
    WELCOME,
    Serializer,
    mask_key,
    ws_client_frame,
    ws_frames,
    ws_handshake_error,
    ws_new_key,
    ws_upgrade_head,
)

from .state import BenchFailure, Run
from .uris import SESSION_TOPIC_PREFIX

HELLO_DETAILS = {"roles": CLIENT_ROLES, "authmethods": ["anonymous"]}

EMPTY = {}

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


# --------------------------------------------------------------------------
# One WAMP session over one picows WebSocket connection
# --------------------------------------------------------------------------
class WampSession(WSListener):
    """Minimal callback-based WAMP client session.

    Hot-path hooks (assigned by the scenario roles):
        on_result(msg), on_event(msg), on_invocation(msg), on_published(msg)
    Control requests (subscribe/register/...) are awaitable.
    """

    def __init__(self, run: Run, ser: Serializer, realm: str, name: str):
        super().__init__()
        self.run = run
        self.ser = ser
        self.realm = realm
        self.name = name
        self.transport = None
        self.session_id = None
        self.joined: asyncio.Future = run.loop.create_future()
        self.goodbye: asyncio.Future = run.loop.create_future()
        self.pending = {}  # request id -> future (control requests only)
        self._req = 0
        self._frag = None
        self._dumps = ser.dumps
        self._loads = ser.loads
        self._opcode = ser.ws_opcode
        self._outq: list = []  # masked frames written at the end of this loop turn
        self._closing = False
        self.on_result = self._unexpected
        self.on_event = self._unexpected
        self.on_invocation = self._unexpected
        self.on_published = self._unexpected

    # -- picows callbacks ---------------------------------------------------
    def on_ws_connected(self, transport):
        self.transport = transport
        self.send([HELLO, self.realm, HELLO_DETAILS])

    def on_ws_disconnected(self, transport):
        if not self._closing:
            self.run.fail(f"{self.name}: connection lost unexpectedly")
            if not self.joined.done():
                self.joined.set_exception(BenchFailure(f"{self.name}: disconnected before WELCOME"))
        if not self.goodbye.done():
            self.goodbye.set_result(None)

    def on_ws_frame(self, transport, frame):
        # fast path: a complete data frame; hot message types dispatched inline
        if frame.fin:
            mt = frame.msg_type
            if mt is _BINARY or mt is _TEXT:
                try:
                    msg = self._loads(frame.get_payload_as_memoryview())
                    t = msg[0]
                    if t == EVENT:
                        self.on_event(msg)
                    elif t == RESULT:
                        self.on_result(msg)
                    elif t == INVOCATION:
                        self.on_invocation(msg)
                    elif t == PUBLISHED:
                        self.on_published(msg)
                    else:
                        self._dispatch(msg)
                except BenchFailure as e:
                    self.run.fail(str(e))
                except Exception as e:  # any bug/garbage is a failed run, loudly
                    self.run.fail(f"{self.name}: error handling message: {e!r}")
                return
        self._slow_frame(transport, frame)

    def _slow_frame(self, transport, frame):
        mt = frame.msg_type
        if mt is _BINARY or mt is _TEXT:
            # first fragment of a fragmented message (complete ones take the fast path)
            self._frag = bytearray(frame.get_payload_as_memoryview())
            return
        elif mt is _CONT:
            if self._frag is None:
                self.run.fail(f"{self.name}: unexpected continuation frame")
                return
            self._frag += frame.get_payload_as_memoryview()
            if not frame.fin:
                return
            payload, self._frag = self._frag, None
        elif mt is _CLOSE:
            if not self._closing:
                self.run.fail(f"{self.name}: router closed the WebSocket "
                              f"(code={frame.get_close_code()}, reason={frame.get_close_reason()!r})")
            self._closing = True
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        else:
            return  # PING is answered by picows (auto pong); ignore PONG
        try:
            self._dispatch(self._loads(payload))
        except BenchFailure as e:
            self.run.fail(str(e))
        except Exception as e:
            self.run.fail(f"{self.name}: error handling message: {e!r}")

    # -- dispatch ---------------------------------------------------------
    def _dispatch(self, msg):
        t = msg[0]
        if t == RESULT:
            self.on_result(msg)
        elif t == EVENT:
            self.on_event(msg)
        elif t == INVOCATION:
            self.on_invocation(msg)
        elif t == PUBLISHED:
            self.on_published(msg)
        elif t in (SUBSCRIBED, REGISTERED, UNSUBSCRIBED, UNREGISTERED):
            fut = self.pending.pop(msg[1], None)
            if fut is None:
                raise BenchFailure(f"{self.name}: reply to unknown request: {msg!r}")
            fut.set_result(msg)
        elif t == WELCOME:
            if self.joined.done():
                raise BenchFailure(f"{self.name}: duplicate WELCOME")
            self.session_id = msg[1]
            self.joined.set_result(msg)
        elif t == ERROR:
            fut = self.pending.pop(msg[2], None)
            err = BenchFailure(f"{self.name}: WAMP ERROR {msg!r}")
            if fut is not None:
                fut.set_exception(err)
            raise err
        elif t == ABORT:
            err = BenchFailure(f"{self.name}: session ABORT {msg!r}")
            if not self.joined.done():
                self.joined.set_exception(err)
            raise err
        elif t == GOODBYE:
            if not self._closing:
                # router-initiated goodbye: acknowledge, but that is a failure
                self.send([GOODBYE, EMPTY, "wamp.close.goodbye_and_out"])
                raise BenchFailure(f"{self.name}: router sent GOODBYE {msg!r}")
            if not self.goodbye.done():
                self.goodbye.set_result(msg)
        else:
            raise BenchFailure(f"{self.name}: unexpected message type {t}: {msg!r}")

    def _unexpected(self, msg):
        raise BenchFailure(f"{self.name}: unexpected message {msg!r}")

    # -- sending ------------------------------------------------------------
    # Messages are queued as masked client frames and written once per event-loop turn
    # with one writelines (one writev), as the router does with its output.  One send()
    # syscall per message (picows' send) cost more than the router's whole work per call
    # on a VM, so the load generator was the limit of rpc; picows still reads,
    # answers pings and closes.
    def send(self, msg) -> None:
        self.send_payload(self._dumps(msg))

    def send_payload(self, payload: bytes) -> None:
        q = self._outq
        if not q:
            self.run.loop.call_soon(self.flush)
        q.append(ws_client_frame(self._opcode, payload, mask_key()))

    def send_now(self, payload: bytes) -> None:
        """Write one message at once (after anything queued), without waiting for the turn's end."""
        self.flush()
        self.transport.underlying_transport.write(ws_client_frame(self._opcode, payload, mask_key()))

    def flush(self) -> None:
        q = self._outq
        if not q:
            return
        self._outq = []
        t = self.transport
        if t is not None and not t.is_disconnected:
            t.underlying_transport.writelines(q)

    def next_id(self) -> int:
        self._req += 1
        return self._req

    async def request(self, msg) -> list:
        fut = self.run.loop.create_future()
        self.pending[msg[1]] = fut
        self.send(msg)
        return await fut

    async def subscribe(self, topic: str, options=EMPTY) -> int:
        reply = await self.request([SUBSCRIBE, self.next_id(), options, topic])
        return reply[2]

    async def register(self, proc: str, options=EMPTY) -> int:
        reply = await self.request([REGISTER, self.next_id(), options, proc])
        return reply[2]

    async def unsubscribe(self, subscription: int) -> None:
        await self.request([UNSUBSCRIBE, self.next_id(), subscription])

    async def pipeline(self, msgs: list, window: int, progress: list | None = None) -> list:
        """Send control requests (SUBSCRIBE/REGISTER/...) keeping up to `window`
        of them unanswered, instead of waiting for each reply before the next
        request. Returns the replies in request order. `progress[0]` (if given)
        is incremented per reply, so a caller can report how far a timed-out
        pipeline got."""
        n = len(msgs)
        replies: list = [None] * n
        if not n:
            return replies
        loop = self.run.loop
        all_done = loop.create_future()
        all_done.add_done_callback(lambda f: f.cancelled() or f.exception())
        state = [0, 0]  # next index to send, replies received

        def on_reply(i, fut):
            if all_done.done():
                return
            if fut.cancelled() or fut.exception() is not None:
                all_done.set_exception(fut.exception() if not fut.cancelled() else BenchFailure("cancelled"))
                return
            replies[i] = fut.result()
            state[1] += 1
            if progress is not None:
                progress[0] += 1
            if state[1] == n:
                all_done.set_result(None)
            else:
                pump()

        def pump():
            while state[0] < n and state[0] - state[1] < window:
                i = state[0]
                state[0] += 1
                msg = msgs[i]
                fut = loop.create_future()
                fut.add_done_callback(functools.partial(on_reply, i))
                self.pending[msg[1]] = fut
                self.send(msg)

        pump()
        await all_done
        return replies

    async def leave(self, timeout: float = 5.0) -> None:
        """Graceful GOODBYE handshake, then WebSocket close."""
        if self.transport is None or self._closing:
            return
        self._closing = True
        try:
            self.send([GOODBYE, EMPTY, "wamp.close.normal"])
            try:
                await asyncio.wait_for(asyncio.shield(self.goodbye), timeout)
            except asyncio.TimeoutError:
                pass
        finally:
            self.close()

    def close(self) -> None:
        """Close the WebSocket without WAMP GOODBYE."""
        self._closing = True
        if self.transport is not None and not self.transport.is_disconnected:
            self.flush()
            try:
                self.transport.send_close(picows.WSCloseCode.OK)
            except Exception:
                pass
            self.transport.disconnect()


async def connect_session(run: Run, url: str, ser: Serializer, realm: str, name: str,
                          timeout: float = 10.0) -> WampSession:
    sess = WampSession(run, ser, realm, name)
    transport, _ = await ws_connect(
        lambda: sess, url,
        extra_headers={"Sec-WebSocket-Protocol": ser.subprotocol},
        websocket_handshake_timeout=timeout,
    )
    proto = transport.response.headers.get("Sec-WebSocket-Protocol")
    if proto != ser.subprotocol:
        sess.close()
        raise BenchFailure(f"{name}: router did not select subprotocol {ser.subprotocol!r} (got {proto!r})")
    try:
        await asyncio.wait_for(asyncio.shield(sess.joined), timeout)
    except asyncio.TimeoutError:
        sess.close()
        raise BenchFailure(f"{name}: no WELCOME within {timeout}s")
    return sess


# --------------------------------------------------------------------------
# Lean join client (sessions scenario)
# --------------------------------------------------------------------------
# The sessions scenario measures how fast the *router* accepts sessions, so the
# load generator's cost per join must stay well below the router's. Instead of
# connect_session (picows ws_connect, a listener object, coroutines, generic
# dispatch), every session is one small asyncio.Protocol driven by callbacks:
# a precomputed HTTP upgrade request, a 101 check, masked client frames with
# precomputed HELLO, a minimal frame parser and a state machine
# HTTP -> WELCOME -> SUBSCRIBED -> JOINED. One task per connection (the
# connect), no coroutine or future per message.
# LeanSession states
L_CONNECT, L_HTTP, L_WELCOME, L_SUBSCRIBED, L_JOINED, L_CLOSING, L_CLOSED = range(7)
_L_STATE_NAMES = ("connecting", "waiting for the WebSocket handshake (101)", "waiting for WELCOME",
                  "waiting for SUBSCRIBED", "joined", "closing", "closed")
_CLOSE_NORMAL = (1000).to_bytes(2, "big")
_MAX_HTTP_RESPONSE = 16384


class LeanJoins:
    """Opens `n` sessions, `concurrency` joins in flight, each a LeanSession:
    TCP connect, WebSocket upgrade, HELLO -> WELCOME, SUBSCRIBE -> SUBSCRIBED
    on SESSION_TOPIC_PREFIX + i. `done` resolves when all have subscribed;
    any failure fails the run (run.fail) with the session's name."""

    def __init__(self, run: Run, url: str, ser: Serializer, realm: str, n: int, concurrency: int,
                 join_timeout_each: float = 10.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws":
            raise BenchFailure(f"sessions: only ws:// URLs are supported (got {url!r})")
        self.run = run
        self.loop = run.loop
        self.host = u.hostname
        self.port = u.port or 80
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        host_hdr = u.netloc.rpartition("@")[2]
        self.subprotocol = ser.subprotocol
        # everything but the per-connection Sec-WebSocket-Key
        self.req_head = ws_upgrade_head(host_hdr, path, ser.subprotocol)
        self.opcode = ser.ws_opcode
        self.hello = ser.dumps([HELLO, realm, HELLO_DETAILS])
        self.dumps = ser.dumps
        self.loads = ser.loads
        self.n = n
        self.concurrency = max(1, min(concurrency, n))
        self.join_timeout_each = join_timeout_each
        self.sessions: list = [None] * n
        self.latencies: list = []  # ns, connect to SUBSCRIBED
        self.next_idx = 0
        self.joined = 0
        self.inflight: dict = {}  # idx -> LeanSession being joined
        self.connecting: dict = {}  # idx -> create_connection task
        self.open = 0  # connections made and not yet lost
        self.done: asyncio.Future = self.loop.create_future()
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.all_closed: asyncio.Future | None = None
        self._watchdog = None

    # -- joining --------------------------------------------------------------
    def start(self) -> None:
        self._pump()
        self._watchdog = self.loop.call_later(0.5, self._watch)

    def _pump(self) -> None:
        run = self.run
        while len(self.inflight) < self.concurrency and self.next_idx < self.n and run.running:
            i = self.next_idx
            self.next_idx += 1
            s = LeanSession(self, i)
            self.sessions[i] = s
            self.inflight[i] = s
            task = self.loop.create_task(self.loop.create_connection(s._factory, self.host, self.port))
            self.connecting[i] = task
            task.add_done_callback(s._connect_done)

    def _joined(self, s: "LeanSession") -> None:
        self.latencies.append(time.perf_counter_ns() - s.t0)
        del self.inflight[s.idx]
        self.joined += 1
        if self.joined == self.n:
            if not self.done.done():
                self.done.set_result(None)
        else:
            self._pump()

    def _watch(self) -> None:
        """Per-join timeout (like connect_session's): a join stuck in a state fails the run."""
        self._watchdog = None
        if self.done.done() or self.run.failed.done():
            return
        limit = time.perf_counter_ns() - int(self.join_timeout_each * 1e9)
        for s in self.inflight.values():
            if s.t0 < limit:
                s.fail(f"join not complete within {self.join_timeout_each:g}s "
                       f"({_L_STATE_NAMES[s.state]})")
                return
        self._watchdog = self.loop.call_later(0.5, self._watch)

    def fail(self, msg: str) -> None:
        self.run.fail(msg)
        if not self.done.done():
            self.done.set_exception(BenchFailure(msg))

    # -- teardown -------------------------------------------------------------
    def _lost(self) -> None:
        self.open -= 1
        if self.open == 0 and self.all_closed is not None and not self.all_closed.done():
            self.all_closed.set_result(None)

    async def close_all(self, timeout: float = 5.0) -> None:
        """WebSocket close handshake on every connection (close frame, wait
        for the router's close frame / TCP close), then abort what is left."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for task in list(self.connecting.values()):
            task.cancel()
        self.all_closed = self.loop.create_future()
        for s in self.sessions:
            if s is not None:
                s.close()
        if self.open > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self.all_closed), timeout)
            except asyncio.TimeoutError:
                pass
        for s in self.sessions:
            if s is not None and s.transport is not None and s.state != L_CLOSED:
                s.transport.abort()
        await asyncio.sleep(0)


class LeanSession(asyncio.Protocol):
    """One session of the sessions scenario: a callback-driven state machine."""

    __slots__ = ("g", "idx", "name", "t0", "state", "transport", "key", "mask", "buf", "frag",
                 "session_id", "subscription", "events")

    def __init__(self, g: LeanJoins, idx: int):
        self.g = g
        self.idx = idx
        self.t0 = time.perf_counter_ns()
        self.state = L_CONNECT
        self.transport = None
        self.key = ws_new_key()  # Sec-WebSocket-Key
        self.mask = mask_key()  # masking key of every frame we send
        self.buf = b""
        self.frag = None
        self.session_id = None
        self.subscription = None
        self.events = 0

    def _factory(self):
        return self

    def _connect_done(self, task) -> None:
        g = self.g
        g.connecting.pop(self.idx, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.state = L_CLOSED
            self.fail(f"connect failed: {exc!r}")

    def fail(self, msg: str) -> None:
        self.g.fail(f"s{self.idx}: {msg}")
        if self.transport is not None and self.state != L_CLOSED:
            self.state = L_CLOSING
            self.transport.abort()

    # -- asyncio.Protocol -----------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.g.open += 1
        if self.state != L_CONNECT:  # close_all() ran while connecting
            transport.abort()
            return
        self.state = L_HTTP
        transport.write(self.g.req_head + self.key + b"\r\n\r\n")

    def connection_lost(self, exc) -> None:
        st = self.state
        self.state = L_CLOSED
        if self.transport is not None:
            self.g._lost()
        if st != L_CLOSING and st != L_CLOSED:
            self.g.fail(f"s{self.idx}: connection lost unexpectedly ({_L_STATE_NAMES[st]})"
                        + (f": {exc!r}" if exc else ""))

    def eof_received(self):
        return None  # close the transport; connection_lost reports it

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.state == L_HTTP:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > _MAX_HTTP_RESPONSE:
                    self.fail(f"WebSocket handshake response too long ({len(data)} bytes without end of headers)")
                else:
                    self.buf = data
                return
            if not self._handshake(data[:end]):
                return
            data = data[end + 4:]
            if not data:
                return
        # frames (the router's frames are unmasked)
        frames, pos = ws_frames(data)
        for b0, masked, payload in frames:
            if masked:
                self.fail("router sent a masked frame")
                return
            if b0 & 0x70:
                self.fail(f"router sent a frame with RSV bits set (0x{b0:02x}; no extension negotiated)")
                return
            self._frame(b0, payload)
            if self.state >= L_CLOSING:
                return
        if pos < len(data):
            self.buf = data[pos:]

    # -- WebSocket ------------------------------------------------------------
    def _handshake(self, head: bytes) -> bool:
        g = self.g
        err = ws_handshake_error(head, self.key, g.subprotocol)
        if err is not None:
            self.fail(err)
            return False
        self.state = L_WELCOME
        self.transport.write(ws_client_frame(g.opcode, g.hello, self.mask))
        return True

    def _send(self, payload: bytes, opcode: int = -1) -> None:
        self.transport.write(ws_client_frame(self.g.opcode if opcode < 0 else opcode, payload, self.mask))

    def _frame(self, b0: int, payload: bytes) -> None:
        op = b0 & 0x0F
        fin = b0 & 0x80
        if op == OP_BINARY or op == OP_TEXT:
            if self.frag is not None:
                self.fail("new data frame inside a fragmented message")
            elif fin:
                self._message(payload)
            else:
                self.frag = bytearray(payload)
        elif op == OP_CONT:
            if self.frag is None:
                self.fail("unexpected continuation frame")
                return
            self.frag += payload
            if fin:
                msg, self.frag = bytes(self.frag), None
                self._message(msg)
        elif op == OP_PING:
            self._send(payload, OP_PONG)
        elif op == OP_PONG:
            pass
        elif op == OP_CLOSE:
            if self.state != L_CLOSING:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                self.g.fail(f"s{self.idx}: router closed the WebSocket (code={code}, reason={reason!r}; "
                            f"{_L_STATE_NAMES[self.state]})")
                self._send(payload[:2], OP_CLOSE)
                self.state = L_CLOSING
            self.transport.close()
        else:
            self.fail(f"router sent a frame with unknown opcode {op}")

    # -- WAMP -----------------------------------------------------------------
    def _message(self, payload) -> None:
        try:
            msg = self.g.loads(payload)
            t = msg[0]
        except Exception as e:
            self.fail(f"undecodable message {bytes(payload)[:200]!r}: {e!r}")
            return
        st = self.state
        if st == L_WELCOME and t == WELCOME:
            self.session_id = msg[1]
            self.state = L_SUBSCRIBED
            self._send(self.g.dumps([SUBSCRIBE, 1, EMPTY, f"{SESSION_TOPIC_PREFIX}{self.idx}"]))
        elif st == L_SUBSCRIBED and t == SUBSCRIBED and len(msg) >= 3 and msg[1] == 1:
            self.subscription = msg[2]
            self.state = L_JOINED
            self.g._joined(self)
        elif st == L_JOINED and t == EVENT:
            self._event(msg)
        elif t == ABORT:
            self.fail(f"session ABORT {msg!r}")
        elif t == ERROR:
            self.fail(f"WAMP ERROR {msg!r}")
        elif t == GOODBYE:
            self._send(self.g.dumps([GOODBYE, EMPTY, "wamp.close.goodbye_and_out"]))
            self.fail(f"router sent GOODBYE {msg!r}")
        else:
            self.fail(f"unexpected message ({_L_STATE_NAMES[st]}): {msg!r}")

    def _event(self, msg) -> None:
        # [EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict, PUBLISH.Arguments|list]
        if msg[1] != self.subscription:
            self.fail(f"event for unknown subscription {msg!r}")
            return
        try:
            ok = len(msg) == 5 and msg[4] == [0]
        except Exception:
            ok = False
        if not ok:
            self.fail(f"expected an event with args [0], got {msg!r}")
        elif self.events:
            self.fail(f"received its event twice (duplicated event): {msg!r}")
        else:
            self.events = 1

    def close(self) -> None:
        """Start the WebSocket close handshake (or drop a connection still
        in the HTTP upgrade)."""
        st = self.state
        if st == L_CLOSED or st == L_CLOSING:
            return
        self.state = L_CLOSING
        if st == L_CONNECT:  # connection_made will abort
            return
        if st == L_HTTP:
            self.transport.abort()
            return
        self._send(_CLOSE_NORMAL, OP_CLOSE)
