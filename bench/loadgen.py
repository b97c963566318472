#!/usr/bin/env python3
"""Raw-WAMP load generator for benchmarking WAMP routers (wampfabric, Crossbar.io).

Speaks WAMP v2 directly over WebSocket (picows client, callback based: no
coroutine per message; outgoing messages are queued as masked frames and
written once per event-loop turn) with msgpack (default) or JSON serialization. It does
not use autobahn or any other WAMP library. The sessions that join in the
sessions scenario use an even leaner client (LeanSession: one asyncio.Protocol
per connection, its own WebSocket handshake and framing, a callback state
machine), so that the router and not the load generator bounds joins/s.

It *verifies while it measures*:
  * rpc / latency: every call returns exactly its own args, every call is
    answered exactly once, the callee sees every invocation;
  * pubsub: every subscriber receives every event exactly once and in order;
  * sessions: every session receives exactly the one event published to its
    own topic;
  * pubsub-patterns / rpc-patterns: as pubsub / rpc in every phase, plus: no
    event or invocation ever reaches a non-matching pattern, an EVENT on a
    pattern subscription carries Details.topic, every call is routed to the
    registration the spec's precedence picks (exact, then longest prefix, then
    wildcard) with Details.procedure for a pattern registration, and every
    pattern gets its own subscription/registration id.
Any violation makes the scenario fail (exit code 1, "ok": false in JSON).

Scenarios:
  rpc       1 callee registers com.bench.echo; N callers (default 4) each keep
            K calls outstanding (default 16): calls/s, latency p50/p99.
  pubsub    S subscribers (default 8) on com.bench.topic, 1 publisher with
            acknowledge=true keeping P publishes outstanding (default 32):
            events/s delivered (sum over subscribers), publishes/s.
  latency   1 caller, sequential calls: latency p50/p99.
  sessions  M sessions (default 2000) join with bounded concurrency (default 50)
            and each subscribes to its own topic: joins/s, router RSS/session.
  pubsub-patterns
            pubsub on com.bench.topic in 3 phases (each warm-up + window):
            base (8 exact subscribers, no pattern in the router); exact (the
            same after --prefix-patterns + --wildcard-patterns, default 10,000
            each, non-matching pattern subscriptions were created, pipelined,
            by --pattern-sessions sessions); patterns (3 of the 8 subscribers
            moved to matching patterns: prefix "com.bench.", wildcards
            "com..topic" and ".bench.topic"). Same fan-out in every phase:
            publishes/s and CPU per event compare directly; ratios to base.
  rpc-patterns
            rpc in 4 phases: base (exact registration, no pattern); then with
            the non-matching pattern registrations and the callee's competing
            patterns (RPC_CALLEE_PATTERNS): exact (call the exact procedure),
            prefix (a procedure whose best match is the longest of two
            prefixes), wildcard (one matched by a wildcard only).

If --router-pid is given, the router's CPU time (user+sys) and RSS are sampled
at the edges of the measurement window, so CPU cost per call/event/join can be
derived. The load generator's own CPU share over the window is always reported.

Usage:
  python bench/loadgen.py --url ws://127.0.0.1:8080/ws --scenario rpc \
      --duration 10 --warmup 2 --router-pid 1234 --json-out /tmp/rpc.json
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import hashlib
import json
import os
import random
import resource
import sys
import time
import urllib.parse
from array import array

import msgpack
import picows
from picows import WSListener, WSMsgType, ws_connect

try:
    import orjson  # type: ignore
except ImportError:  # pragma: no cover
    orjson = None

try:
    import psutil  # type: ignore
except ImportError:  # pragma: no cover
    psutil = None

# --------------------------------------------------------------------------
# WAMP v2 message codes
# --------------------------------------------------------------------------
HELLO = 1
WELCOME = 2
ABORT = 3
GOODBYE = 6
ERROR = 8
PUBLISH = 16
PUBLISHED = 17
SUBSCRIBE = 32
SUBSCRIBED = 33
UNSUBSCRIBE = 34
UNSUBSCRIBED = 35
EVENT = 36
CALL = 48
RESULT = 50
REGISTER = 64
REGISTERED = 65
UNREGISTER = 66
UNREGISTERED = 67
INVOCATION = 68
YIELD = 70

ECHO_PROC = "com.bench.echo"
PUBSUB_TOPIC = "com.bench.topic"
SESSION_TOPIC_PREFIX = "com.bench.s."

# pubsub-patterns: the measured topic and the pattern subscriptions that match
# it (each held by one of the measured subscribers, the others stay exact)
PATTERN_TOPIC = PUBSUB_TOPIC  # "com.bench.topic"
PATTERN_TOPIC_MATCHING = [("com.bench.", "prefix"), ("com..topic", "wildcard"), (".bench.topic", "wildcard")]

# rpc-patterns: the procedures called and the callee's registrations. Every
# called procedure is matched by several of them; the dealer must pick the
# expected one (exact, then longest prefix, then wildcard).
RPC_EXACT_PROC = "com.bench.rpc.echo"
RPC_PREFIX_PROC = "com.bench.rpc.deep.echo"
RPC_WILDCARD_PROC = "com.bench.wc.echo"
RPC_CALLEE_PATTERNS = [
    ("com.bench.rpc.", "prefix"),         # matches RPC_EXACT_PROC and RPC_PREFIX_PROC
    ("com.bench.rpc.deep.", "prefix"),    # longest prefix of RPC_PREFIX_PROC
    ("com.bench..echo", "wildcard"),      # matches RPC_EXACT_PROC and RPC_WILDCARD_PROC
    ("com.bench.rpc..echo", "wildcard"),  # matches RPC_PREFIX_PROC
]
# (phase, procedure called, registration it must be routed to)
RPC_PATTERN_PHASES = [
    ("exact", RPC_EXACT_PROC, (RPC_EXACT_PROC, "exact")),
    ("prefix", RPC_PREFIX_PROC, ("com.bench.rpc.deep.", "prefix")),
    ("wildcard", RPC_WILDCARD_PROC, ("com.bench..echo", "wildcard")),
]


def _shapes(n: int, shapes: list) -> list:
    """n distinct URIs: shape k % len(shapes) formatted with i = k."""
    return [shapes[k % len(shapes)].format(i=k) for k in range(n)]


def nonmatching_topic_patterns(n_prefix: int, n_wildcard: int) -> list:
    """(uri, match) subscriptions that do NOT match PATTERN_TOPIC but share
    leading components / its component count with it (so a matcher cannot
    dismiss them on the first component or on the length alone)."""
    return ([(u, "prefix") for u in _shapes(n_prefix, ["com.bench.p{i}.", "com.bench.t{i}."])] +
            [(u, "wildcard") for u in _shapes(n_wildcard, [
                "com..w{i}", ".bench.w{i}", "com.w{i}.", ".w{i}.topic", "com.bench..w{i}"])])


def nonmatching_procedure_patterns(n_prefix: int, n_wildcard: int) -> list:
    """(uri, match) registrations that match none of the RPC_*_PROC procedures."""
    return ([(u, "prefix") for u in _shapes(n_prefix, ["com.bench.rpc.p{i}.", "com.bench.p{i}."])] +
            [(u, "wildcard") for u in _shapes(n_wildcard, [
                "com.bench..w{i}", "com..w{i}.echo", ".bench.w{i}.echo",        # 4 components
                "com.bench.rpc..w{i}", "com.bench..w{i}.echo"])])               # 5 components

HELLO_DETAILS = {
    "roles": {
        "caller": {"features": {}},
        "callee": {"features": {}},
        "publisher": {"features": {}},
        "subscriber": {"features": {}},
    },
    "authmethods": ["anonymous"],
}

EMPTY = {}

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class BenchFailure(Exception):
    """A verification or protocol failure: the scenario is invalid."""


# --------------------------------------------------------------------------
# Serializers
# --------------------------------------------------------------------------
class Serializer:
    __slots__ = ("name", "subprotocol", "frame_type", "dumps", "loads")

    def __init__(self, name: str):
        self.name = name
        if name == "msgpack":
            self.subprotocol = "wamp.2.msgpack"
            self.frame_type = WSMsgType.BINARY
            packer = msgpack.Packer(use_bin_type=True)
            self.dumps = packer.pack
            self.loads = msgpack.unpackb  # raw=False, use_list=True by default
        elif name == "json":
            self.subprotocol = "wamp.2.json"
            self.frame_type = WSMsgType.TEXT
            if orjson is not None:
                self.dumps = orjson.dumps
                self.loads = orjson.loads
            else:  # pragma: no cover
                self.dumps = lambda o: json.dumps(o, separators=(",", ":")).encode()
                self.loads = lambda b: json.loads(bytes(b))
        else:
            raise ValueError(f"unknown serializer {name!r}")


# --------------------------------------------------------------------------
# Scenario-wide state: failure propagation and measurement phase
# --------------------------------------------------------------------------
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
        self._opcode = 2 if ser.frame_type is WSMsgType.BINARY else 1
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
        q.append(ws_client_frame(self._opcode, payload, _mask_key()))

    def send_now(self, payload: bytes) -> None:
        """Write one message at once (after anything queued), without waiting for the turn's end."""
        self.flush()
        self.transport.underlying_transport.write(ws_client_frame(self._opcode, payload, _mask_key()))

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
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# LeanSession states
L_CONNECT, L_HTTP, L_WELCOME, L_SUBSCRIBED, L_JOINED, L_CLOSING, L_CLOSED = range(7)
_L_STATE_NAMES = ("connecting", "waiting for the WebSocket handshake (101)", "waiting for WELCOME",
                  "waiting for SUBSCRIBED", "joined", "closing", "closed")
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_CLOSE_NORMAL = (1000).to_bytes(2, "big")
_MAX_HTTP_RESPONSE = 16384


def _ws_header(opcode: int, n: int) -> bytes:
    """FIN + opcode, MASK bit + payload length (7, 16 or 64 bit)."""
    if n < 126:
        return bytes((0x80 | opcode, 0x80 | n))
    if n < 65536:
        return bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    return bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")


def _ws_mask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 masking (XOR with the 4-byte key, repeated): one big-int XOR."""
    n = len(payload)
    if not n:
        return payload
    k = (key * ((n + 3) >> 2))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


_getrandbits = random.getrandbits


def _mask_key() -> bytes:
    """A fresh masking key per frame (RFC 6455 5.3); not a secret here, so not from the OS."""
    return _getrandbits(32).to_bytes(4, "big")


def ws_client_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One complete masked client frame."""
    return _ws_header(opcode, len(payload)) + key + _ws_mask(payload, key)


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
        self.req_head = (f"GET {path} HTTP/1.1\r\n"
                         f"Host: {host_hdr}\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         f"Sec-WebSocket-Protocol: {ser.subprotocol}\r\n"
                         "Sec-WebSocket-Key: ").encode("ascii")
        self.opcode = _OP_BINARY if ser.frame_type is WSMsgType.BINARY else _OP_TEXT
        self.hello = ser.dumps([HELLO, realm, HELLO_DETAILS])
        self.hello_hdr = _ws_header(self.opcode, len(self.hello))
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
        r = random.getrandbits(160).to_bytes(20, "big")
        self.key = base64.b64encode(r[:16])  # Sec-WebSocket-Key
        self.mask = r[16:]  # masking key of every frame we send
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
        n = len(data)
        pos = 0
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            ln = b1 & 0x7F
            if ln < 126:
                start = pos + 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                ln = int.from_bytes(data[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + ln
            if end > n:
                break
            if b1 & 0x80:
                self.fail("router sent a masked frame")
                return
            if b0 & 0x70:
                self.fail(f"router sent a frame with RSV bits set (0x{b0:02x}; no extension negotiated)")
                return
            pos = end
            self._frame(b0, data[start:end])
            if self.state >= L_CLOSING:
                return
        if pos < n:
            self.buf = data[pos:]

    # -- WebSocket ------------------------------------------------------------
    def _handshake(self, head: bytes) -> bool:
        g = self.g
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or not status[0].startswith("HTTP/1.") or status[1] != "101":
            self.fail(f"WebSocket upgrade refused: {lines[0]!r}")
            return False
        proto = accept = None
        upgrade = connection = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "sec-websocket-protocol":
                proto = value.strip()
            elif name == "sec-websocket-accept":
                accept = value.strip()
            elif name == "upgrade":
                upgrade = value.strip().lower() == "websocket"
            elif name == "connection":
                connection = "upgrade" in value.lower()
        if proto != g.subprotocol:
            self.fail(f"router did not select subprotocol {g.subprotocol!r} (got {proto!r})")
            return False
        if not (upgrade and connection):
            self.fail("WebSocket handshake response without 'Upgrade: websocket' and 'Connection: Upgrade'")
            return False
        expected = base64.b64encode(hashlib.sha1(self.key + _WS_GUID).digest()).decode("ascii")
        if accept != expected:
            self.fail(f"wrong Sec-WebSocket-Accept {accept!r} (expected {expected!r})")
            return False
        self.state = L_WELCOME
        mask = self.mask
        self.transport.write(g.hello_hdr + mask + _ws_mask(g.hello, mask))
        return True

    def _send(self, payload: bytes, opcode: int = -1) -> None:
        self.transport.write(ws_client_frame(self.g.opcode if opcode < 0 else opcode, payload, self.mask))

    def _frame(self, b0: int, payload: bytes) -> None:
        op = b0 & 0x0F
        fin = b0 & 0x80
        if op == _OP_BINARY or op == _OP_TEXT:
            if self.frag is not None:
                self.fail("new data frame inside a fragmented message")
            elif fin:
                self._message(payload)
            else:
                self.frag = bytearray(payload)
        elif op == _OP_CONT:
            if self.frag is None:
                self.fail("unexpected continuation frame")
                return
            self.frag += payload
            if fin:
                msg, self.frag = bytes(self.frag), None
                self._message(msg)
        elif op == _OP_PING:
            self._send(payload, _OP_PONG)
        elif op == _OP_PONG:
            pass
        elif op == _OP_CLOSE:
            if self.state != L_CLOSING:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                self.g.fail(f"s{self.idx}: router closed the WebSocket (code={code}, reason={reason!r}; "
                            f"{_L_STATE_NAMES[self.state]})")
                self._send(payload[:2], _OP_CLOSE)
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
        self._send(_CLOSE_NORMAL, _OP_CLOSE)


# --------------------------------------------------------------------------
# Roles (hot paths are plain callbacks)
# --------------------------------------------------------------------------
class EchoCallee:
    """Registers ECHO_PROC and yields back exactly the call's args/kwargs."""

    def __init__(self, sess: WampSession):
        self.sess = sess
        self.invocations = 0
        self.registration = None
        sess.on_invocation = self.on_invocation

    async def start(self):
        self.registration = await self.sess.register(ECHO_PROC)

    def on_invocation(self, msg):
        # [INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, (Args|list, (ArgsKw|dict))]
        if msg[2] != self.registration:
            raise BenchFailure(f"callee: invocation for unknown registration {msg!r}")
        self.invocations += 1
        n = len(msg)
        if n == 4:
            self.sess.send([YIELD, msg[1], EMPTY])
        elif n == 5:
            self.sess.send([YIELD, msg[1], EMPTY, msg[4]])
        else:
            self.sess.send([YIELD, msg[1], EMPTY, msg[4], msg[5]])


class RoutedCallee:
    """Echo callee holding several registrations (exact, prefix, wildcard).

    In each measured phase every call goes to one procedure, and every
    invocation must arrive on the one registration the dealer has to pick for
    it (exact, then longest prefix, then wildcard); for a pattern registration
    INVOCATION.Details.procedure must be the procedure actually called."""

    def __init__(self, sess: WampSession):
        self.sess = sess
        self.invocations = 0
        self.regs = {}  # (uri, match) -> registration id
        self.names = {}  # registration id -> "match uri"
        self.expect_reg = None
        self.expect_proc = None  # INVOCATION.Details.procedure, pattern registrations only
        sess.on_invocation = self.on_invocation

    async def add(self, uri: str, match: str = "exact") -> int:
        rid = await self.sess.register(uri, EMPTY if match == "exact" else {"match": match})
        if rid in self.names:
            raise BenchFailure(f"callee: registration id {rid} returned twice ({match} {uri!r})")
        self.regs[(uri, match)] = rid
        self.names[rid] = f"{match} {uri!r}"
        return rid

    def expect(self, uri: str, match: str, proc: str) -> None:
        self.expect_reg = self.regs[(uri, match)]
        self.expect_proc = None if match == "exact" else proc
        self.called = proc

    def on_invocation(self, msg):
        # [INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, (Args|list, (ArgsKw|dict))]
        if msg[2] != self.expect_reg:
            raise BenchFailure(f"callee: call to {self.called!r} was routed to registration "
                               f"{self.names.get(msg[2], msg[2])}, expected {self.names[self.expect_reg]}: {msg!r}")
        if self.expect_proc is not None and msg[3].get("procedure") != self.expect_proc:
            raise BenchFailure(f"callee: INVOCATION.Details.procedure should be {self.expect_proc!r}: {msg!r}")
        self.invocations += 1
        n = len(msg)
        if n == 4:
            self.sess.send([YIELD, msg[1], EMPTY])
        elif n == 5:
            self.sess.send([YIELD, msg[1], EMPTY, msg[4]])
        else:
            self.sess.send([YIELD, msg[1], EMPTY, msg[4], msg[5]])


class Caller:
    """Keeps `outstanding` calls in flight; verifies each result's args."""

    def __init__(self, run: Run, sess: WampSession, caller_id: int, outstanding: int, proc: str = ECHO_PROC):
        self.run = run
        self.sess = sess
        self.cid = caller_id
        self.outstanding = outstanding
        self.proc = proc
        self.inflight = {}  # request id -> (t0_ns, args)
        self.seq = 0
        self.issued = 0
        self.completed = 0
        # latency (ns) of every completed call, in completion order; the
        # measurement window is a slice of it (see Window / mark())
        self.latencies = array("q")
        sess.on_result = self.on_result
        self._dumps = sess._dumps

    def start(self):
        for _ in range(self.outstanding):
            self._issue()

    def _issue(self):
        sess = self.sess
        sess._req += 1
        req = sess._req
        self.seq += 1
        args = [self.cid, self.seq]
        self.inflight[req] = (time.perf_counter_ns(), args)
        self.issued += 1
        sess.send_payload(self._dumps([CALL, req, EMPTY, self.proc, args]))

    def on_result(self, msg):
        now = time.perf_counter_ns()
        # [RESULT, CALL.Request|id, Details|dict, YIELD.Arguments|list, ...]
        entry = self.inflight.pop(msg[1], None)
        if entry is None:
            raise BenchFailure(f"caller {self.cid}: RESULT for unknown or already answered call: {msg!r}")
        t0, args = entry
        if len(msg) != 4 or msg[3] != args:
            if not (len(msg) == 5 and msg[3] == args and not msg[4]):
                raise BenchFailure(f"caller {self.cid}: wrong result for args {args!r}: {msg!r}")
        self.completed += 1
        self.latencies.append(now - t0)
        if self.run.running:
            self._issue()


class Subscriber:
    """Receives every event of one topic, checks exactly-once in-order delivery."""

    def __init__(self, run: Run, sess: WampSession, idx: int):
        self.run = run
        self.sess = sess
        self.idx = idx
        self.subscription = None
        self.next_seq = 0  # next expected publication sequence number == events received
        sess.on_event = self.on_event

    async def start(self, topic: str):
        self.subscription = await self.sess.subscribe(topic)

    def on_event(self, msg):
        # [EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict, PUBLISH.Arguments|list]
        if msg[1] != self.subscription:
            raise BenchFailure(f"subscriber {self.idx}: event for unknown subscription {msg!r}")
        try:
            args = msg[4]
            ok = len(args) == 1 and args[0] == self.next_seq and len(msg) == 5
        except (IndexError, TypeError):
            ok = False
        if not ok:
            raise BenchFailure(f"subscriber {self.idx}: expected event seq {self.next_seq}, got {msg!r} "
                               f"(lost, duplicated or reordered event)")
        self.next_seq += 1


class PatternSubscriber(Subscriber):
    """A Subscriber on a prefix or wildcard subscription: same checks, plus
    EVENT.Details.topic must be the topic actually published to."""

    def __init__(self, run: Run, sess: WampSession, idx: int, topic: str):
        super().__init__(run, sess, idx)
        self.topic = topic

    async def start(self, pattern: str, match: str):
        self.subscription = await self.sess.subscribe(pattern, {"match": match})

    def on_event(self, msg):
        try:
            topic = msg[3].get("topic")
        except (IndexError, AttributeError):
            topic = None
        if topic != self.topic:
            raise BenchFailure(f"subscriber {self.idx}: EVENT.Details.topic should be {self.topic!r}: {msg!r}")
        Subscriber.on_event(self, msg)


class Publisher:
    """Keeps `outstanding` acknowledged publishes in flight."""

    def __init__(self, run: Run, sess: WampSession, topic: str, outstanding: int):
        self.run = run
        self.sess = sess
        self.topic = topic
        self.outstanding = outstanding
        self.inflight = {}  # request id -> seq
        self.seq = 0  # next sequence number to publish
        self.acked = 0
        sess.on_published = self.on_published
        self._dumps = sess._dumps
        self._opts = {"acknowledge": True}

    def start(self):
        for _ in range(self.outstanding):
            self._issue()

    def _issue(self):
        sess = self.sess
        sess._req += 1
        req = sess._req
        self.inflight[req] = self.seq
        sess.send_now(self._dumps([PUBLISH, req, self._opts, self.topic, [self.seq]]))
        self.seq += 1

    def on_published(self, msg):
        # [PUBLISHED, PUBLISH.Request|id, Publication|id]
        if self.inflight.pop(msg[1], None) is None:
            raise BenchFailure(f"publisher: PUBLISHED for unknown or already acknowledged publish {msg!r}")
        self.acked += 1
        if self.run.running:
            self._issue()


# --------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------
class ProcSampler:
    """CPU times (user+sys, seconds) and RSS (bytes) of one process (the router)."""

    def __init__(self, pid):
        self.pid = pid
        self.proc = psutil.Process(pid) if (pid and psutil is not None) else None

    def cpu(self):
        if not self.pid:
            return None
        if self.proc is not None:
            t = self.proc.cpu_times()
            return t.user + t.system
        with open(f"/proc/{self.pid}/stat") as f:  # pragma: no cover
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self):
        if not self.pid:
            return None
        if self.proc is not None:
            return self.proc.memory_info().rss
        with open(f"/proc/{self.pid}/status") as f:  # pragma: no cover
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return None


def machine_busy():
    """(process CPU, irq+softirq CPU) seconds of the whole machine (all cores) since boot."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:  # pragma: no cover
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + (v[7] if len(v) > 7 else 0)) / hz, (v[5] + v[6]) / hz


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Window:
    """Wall clock + router CPU + own CPU over the measurement window."""

    def __init__(self, sampler: ProcSampler, aux_pids=()):
        self.sampler = sampler
        # the router's other processes (e.g. Crossbar's controller): reported apart
        self.aux = [ProcSampler(p) for p in aux_pids if p]

    def _aux_cpu(self):
        total = 0.0
        for s in self.aux:
            try:
                total += s.cpu() or 0.0
            except Exception:  # process gone
                pass
        return total

    def begin(self):
        self.t0 = time.perf_counter()
        self.own0 = self_cpu()
        self.r0 = self.sampler.cpu()
        self.a0 = self._aux_cpu()
        self.m0 = machine_busy()

    def end(self):
        self.t1 = time.perf_counter()
        self.own1 = self_cpu()
        self.r1 = self.sampler.cpu()
        self.a1 = self._aux_cpu()
        self.m1 = machine_busy()

    def result(self) -> dict:
        wall = self.t1 - self.t0
        out = {
            "window_s": wall,
            "loadgen_cpu_s": self.own1 - self.own0,
            "loadgen_cpu_share": (self.own1 - self.own0) / wall if wall > 0 else None,
            "router_cpu_s": None,
            "router_cpu_share": None,
        }
        if self.r0 is not None and self.r1 is not None:
            out["router_cpu_s"] = self.r1 - self.r0
            out["router_cpu_share"] = (self.r1 - self.r0) / wall if wall > 0 else None
            # CPU of the router's other processes (--aux-pids), of every other
            # process on the machine, and interrupt time (mostly softirq for
            # our own loopback traffic)
            aux = max(0.0, self.a1 - self.a0)
            out["router_aux_cpu_share"] = aux / wall if (wall > 0 and self.aux) else None
            other = (self.m1[0] - self.m0[0]) - out["router_cpu_s"] - out["loadgen_cpu_s"] - aux
            out["other_cpu_cores"] = max(0.0, other / wall) if wall > 0 else None
            out["irq_cpu_cores"] = (self.m1[1] - self.m0[1]) / wall if wall > 0 else None
        return out


def percentile(sorted_vals, p: float):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def latency_stats(lat_ns: list) -> dict:
    lat_ns.sort()
    ms = 1e-6
    return {
        "samples": len(lat_ns),
        "lat_p50_ms": percentile(lat_ns, 50) * ms if lat_ns else None,
        "lat_p99_ms": percentile(lat_ns, 99) * ms if lat_ns else None,
        "lat_max_ms": lat_ns[-1] * ms if lat_ns else None,
        "lat_mean_ms": (sum(lat_ns) / len(lat_ns)) * ms if lat_ns else None,
    }


def per_unit_us(cpu_s, count):
    if cpu_s is None or not count:
        return None
    return cpu_s / count * 1e6


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------
async def measure_calls(run: Run, a, callers: list, callee) -> dict:
    """One measured phase of calls: warm-up, window, drain, verification.
    `callers` are fresh Caller objects (not started); `callee` counts invocations."""
    window = Window(ProcSampler(a.router_pid), a.aux_pids)
    inv0 = callee.invocations
    run.phase = WARMUP
    run.running = True
    for c in callers:
        c.start()
    await run.sleep_or_fail(a.warmup)
    run.phase = MEASURE
    window.begin()
    mark0 = [len(c.latencies) for c in callers]
    await run.sleep_or_fail(a.duration)
    mark1 = [len(c.latencies) for c in callers]
    window.end()
    run.phase = DRAIN
    run.running = False

    # drain: every issued call must be answered exactly once
    await run.wait_until(lambda: all(not c.inflight for c in callers), a.drain_timeout,
                         "outstanding calls to complete")
    await asyncio.sleep(0.1)  # catch late duplicates
    run.check()
    issued = sum(c.issued for c in callers)
    completed = sum(c.completed for c in callers)
    if completed != issued:
        raise BenchFailure(f"issued {issued} calls but {completed} completed")
    if callee.invocations - inv0 != issued:
        raise BenchFailure(f"issued {issued} calls but callee saw {callee.invocations - inv0} invocations")

    w = window.result()
    latencies = []
    for c, i0, i1 in zip(callers, mark0, mark1):
        latencies.extend(c.latencies[i0:i1])
    calls = len(latencies)
    return {
        "calls": calls,
        "calls_per_s": calls / w["window_s"],
        "total_calls_verified": issued,
        **latency_stats(latencies),
        **w,
        "router_us_per_call": per_unit_us(w["router_cpu_s"], calls),
    }


async def measure_pubsub(run: Run, a, subs: list, pub) -> dict:
    """One measured phase of publishes: warm-up, window, drain, verification.
    `subs` all receive every event of `pub` (fresh objects, seq 0)."""
    window = Window(ProcSampler(a.router_pid), a.aux_pids)
    run.phase = WARMUP
    run.running = True
    pub.start()
    await run.sleep_or_fail(a.warmup)
    run.phase = MEASURE
    window.begin()
    ev0, pub0 = sum(s.next_seq for s in subs), pub.acked
    await run.sleep_or_fail(a.duration)
    ev1, pub1 = sum(s.next_seq for s in subs), pub.acked
    window.end()
    run.phase = DRAIN
    run.running = False

    await run.wait_until(lambda: not pub.inflight, a.drain_timeout, "outstanding publishes to be acknowledged")
    total = pub.seq
    await run.wait_until(lambda: all(s.next_seq >= total for s in subs), a.drain_timeout,
                         "all subscribers to receive all events")
    await asyncio.sleep(0.2)  # catch late duplicates
    run.check()
    for s in subs:
        if s.next_seq != total:
            raise BenchFailure(f"subscriber {s.idx} received {s.next_seq} events, {total} were published")

    w = window.result()
    events, publishes = ev1 - ev0, pub1 - pub0
    return {
        "events": events,
        "events_per_s": events / w["window_s"],
        "publishes": publishes,
        "publishes_per_s": publishes / w["window_s"],
        "total_publishes_verified": total,
        "total_events_verified": total * len(subs),
        **w,
        "router_us_per_event": per_unit_us(w["router_cpu_s"], events),
        "router_us_per_publish": per_unit_us(w["router_cpu_s"], publishes),
    }


async def scenario_calls(run: Run, a, n_callers: int, outstanding: int) -> dict:
    """rpc (n_callers x outstanding) and latency (1 x 1)."""
    ser = Serializer(a.serializer)
    sessions = []
    try:
        callee_sess = await connect_session(run, a.url, ser, a.realm, "callee")
        sessions.append(callee_sess)
        callee = EchoCallee(callee_sess)
        await callee.start()
        callers = []
        for i in range(n_callers):
            s = await connect_session(run, a.url, ser, a.realm, f"caller{i}")
            sessions.append(s)
            callers.append(Caller(run, s, i, outstanding))
        res = await measure_calls(run, a, callers, callee)
        res.update(callers=n_callers, outstanding_per_caller=outstanding)
        return res
    finally:
        await asyncio.gather(*(s.leave() for s in sessions), return_exceptions=True)


async def scenario_pubsub(run: Run, a) -> dict:
    ser = Serializer(a.serializer)
    sessions = []
    try:
        subs = []
        for i in range(a.subscribers):
            s = await connect_session(run, a.url, ser, a.realm, f"sub{i}")
            sessions.append(s)
            sub = Subscriber(run, s, i)
            await sub.start(PUBSUB_TOPIC)
            subs.append(sub)
        ps = await connect_session(run, a.url, ser, a.realm, "publisher")
        sessions.append(ps)
        pub = Publisher(run, ps, PUBSUB_TOPIC, a.pub_outstanding)
        res = await measure_pubsub(run, a, subs, pub)
        res.update(subscribers=a.subscribers, outstanding_publishes=a.pub_outstanding)
        return res
    finally:
        await asyncio.gather(*(s.leave() for s in sessions), return_exceptions=True)


async def setup_patterns(run: Run, a, ser: Serializer, out_sessions: list, code: int, patterns: list) -> dict:
    """Create the non-matching pattern subscriptions (code=SUBSCRIBE) or
    registrations (code=REGISTER) from --pattern-sessions sessions, pipelined
    (--setup-window requests in flight per session), within --setup-timeout."""
    sampler = ProcSampler(a.router_pid)
    rss0 = sampler.rss()
    k = max(1, a.pattern_sessions)
    t0 = time.perf_counter()
    sessions = []
    for i in range(k):
        s = await connect_session(run, a.url, ser, a.realm, f"patterns{i}")
        out_sessions.append(s)
        sessions.append(s)
    per = [[] for _ in sessions]
    for j, (uri, match) in enumerate(patterns):
        s = sessions[j % k]
        per[j % k].append([code, s.next_id(), {"match": match}, uri])
    progress = [0]
    window = Window(sampler, a.aux_pids)
    window.begin()
    task = asyncio.ensure_future(asyncio.gather(*(s.pipeline(m, a.setup_window, progress)
                                                  for s, m in zip(sessions, per))))
    task.add_done_callback(lambda f: f.cancelled() or f.exception())
    remaining = max(0.1, a.setup_timeout - (time.perf_counter() - t0))
    await asyncio.wait([task, run.failed], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    run.check()
    what = "subscriptions" if code == SUBSCRIBE else "registrations"
    if not task.done():
        task.cancel()
        raise BenchFailure(f"setup: only {progress[0]:,} of {len(patterns):,} pattern {what} were acknowledged "
                           f"within --setup-timeout {a.setup_timeout:g}s")
    replies = task.result()
    window.end()
    elapsed = time.perf_counter() - t0
    ids = {r[2] for rs in replies for r in rs}
    if len(ids) != len(patterns):
        raise BenchFailure(f"setup: {len(patterns):,} distinct pattern {what} got only {len(ids):,} distinct ids")
    rss1 = sampler.rss()
    w = window.result()
    n = len(patterns)
    return {
        "setup_patterns": n,
        "setup_prefix": sum(1 for _, m in patterns if m == "prefix"),
        "setup_wildcard": sum(1 for _, m in patterns if m == "wildcard"),
        "setup_sessions": k,
        "setup_window": a.setup_window,
        "setup_s": elapsed,  # connect + all requests acknowledged
        "setup_per_s": n / w["window_s"],  # requests acknowledged per second (pipelined)
        "setup_router_us_per_pattern": per_unit_us(w["router_cpu_s"], n),
        "setup_rss_per_pattern_bytes": (rss1 - rss0) / n if (rss0 is not None and rss1 is not None) else None,
    }


async def teardown_patterns(run: Run, a, sessions: list, ping: WampSession) -> dict:
    """The pattern-holding sessions leave (GOODBYE); time until the router has
    answered their GOODBYEs and then answers a SUBSCRIBE on `ping` again,
    i.e. until it has removed every pattern and is responsive. Reported, not
    verified (a slow teardown is a warning)."""
    t0 = time.perf_counter()
    await asyncio.gather(*(s.leave(timeout=a.setup_timeout) for s in sessions))
    acked = all(s.goodbye.done() and s.goodbye.result() is not None for s in sessions)
    out = {"teardown_s": None}
    if not acked:
        out["teardown_warning"] = (f"teardown: the router did not answer GOODBYE of the sessions holding "
                                   f"the patterns within {a.setup_timeout:g}s")
        return out
    try:
        await asyncio.wait_for(ping.subscribe("com.bench.ping"), a.setup_timeout)
    except asyncio.TimeoutError:
        out["teardown_warning"] = f"teardown: router unresponsive for {a.setup_timeout:g}s after the patterns' sessions left"
        return out
    out["teardown_s"] = time.perf_counter() - t0
    return out


_PHASE_KEYS = ("calls_per_s", "router_us_per_call", "lat_p50_ms", "lat_p99_ms",
               "events_per_s", "publishes_per_s", "router_us_per_event", "router_us_per_publish",
               "router_cpu_share", "loadgen_cpu_share")


def summarize_phases(phases: dict, rate_key: str, cpu_key: str) -> dict:
    """Flatten per-phase figures to '<phase>_<key>' and add, per pattern phase,
    rate_ratio = rate / base rate (goal > 0.5: less than 2x slower) and
    cpu_ratio = router CPU per op / base CPU per op. The window context
    (loadgen/router/other CPU) at top level is the maximum over the phases."""
    out: dict = {"phases": phases}
    base = phases["base"]
    for name, r in phases.items():
        for k in _PHASE_KEYS:
            if k in r:
                out[f"{name}_{k}"] = r[k]
        if name == "base":
            continue
        out[f"{name}_rate_ratio"] = r[rate_key] / base[rate_key] if base.get(rate_key) else None
        c, cb = r.get(cpu_key), base.get(cpu_key)
        out[f"{name}_cpu_ratio"] = c / cb if (c is not None and cb) else None
    pats = [n for n in phases if n != "base"]
    rr = [out[f"{n}_rate_ratio"] for n in pats if out[f"{n}_rate_ratio"] is not None]
    cr = [out[f"{n}_cpu_ratio"] for n in pats if out[f"{n}_cpu_ratio"] is not None]
    out["worst_rate_ratio"] = min(rr) if rr else None
    out["worst_cpu_ratio"] = max(cr) if cr else None
    out["goal_met"] = (out["worst_rate_ratio"] > 0.5) if rr else None
    for k in ("window_s", "loadgen_cpu_share", "router_cpu_share", "router_aux_cpu_share",
              "other_cpu_cores", "irq_cpu_cores"):
        vals = [r.get(k) for r in phases.values() if r.get(k) is not None]
        out[k] = max(vals) if vals else None
    return out


def _fresh_subscriber(run: Run, sub: Subscriber) -> Subscriber:
    """Same session and subscription, sequence check restarted (next phase)."""
    s2 = Subscriber(run, sub.sess, sub.idx)
    s2.subscription = sub.subscription
    return s2


async def scenario_pubsub_patterns(run: Run, a) -> dict:
    """Phases (same publisher and fan-out, so publishes/s compare directly):
    base      pubsub on PATTERN_TOPIC, no pattern subscription in the router;
    exact     the same after --prefix-patterns + --wildcard-patterns
              non-matching pattern subscriptions were created;
    patterns  then 3 of the subscribers on matching patterns (1 prefix,
              2 wildcard, PATTERN_TOPIC_MATCHING) instead of exact."""
    ser = Serializer(a.serializer)
    n_match = len(PATTERN_TOPIC_MATCHING)
    if a.subscribers <= n_match:
        raise BenchFailure(f"pubsub-patterns needs --subscribers > {n_match}")
    sessions: list = []
    setup_sessions: list = []
    try:
        subs = []
        for i in range(a.subscribers):
            s = await connect_session(run, a.url, ser, a.realm, f"sub{i}")
            sessions.append(s)
            sub = Subscriber(run, s, i)
            await sub.start(PATTERN_TOPIC)
            subs.append(sub)
        ps = await connect_session(run, a.url, ser, a.realm, "publisher")
        sessions.append(ps)
        phases = {}
        # 1. exact-match case: no pattern in the router
        phases["base"] = await measure_pubsub(run, a, subs, Publisher(run, ps, PATTERN_TOPIC, a.pub_outstanding))
        phases["base"]["subscriptions"] = {"exact": a.subscribers}

        # 2. the same exact subscribers, with the non-matching patterns in the router
        setup = await setup_patterns(run, a, ser, setup_sessions, SUBSCRIBE,
                                     nonmatching_topic_patterns(a.prefix_patterns, a.wildcard_patterns))
        subs = [_fresh_subscriber(run, sub) for sub in subs]
        phases["exact"] = await measure_pubsub(run, a, subs, Publisher(run, ps, PATTERN_TOPIC, a.pub_outstanding))
        phases["exact"]["subscriptions"] = {"exact": a.subscribers}

        # 3. n_match of them move from the exact subscription to a matching pattern
        n_exact = a.subscribers - n_match
        subs2 = [_fresh_subscriber(run, sub) for sub in subs[:n_exact]]
        for sub, (pattern, match) in zip(subs[n_exact:], PATTERN_TOPIC_MATCHING):
            await sub.sess.unsubscribe(sub.subscription)
            s2 = PatternSubscriber(run, sub.sess, sub.idx, PATTERN_TOPIC)
            await s2.start(pattern, match)
            subs2.append(s2)
        phases["patterns"] = await measure_pubsub(run, a, subs2, Publisher(run, ps, PATTERN_TOPIC, a.pub_outstanding))
        phases["patterns"]["subscriptions"] = {"exact": n_exact, **{f"{m} {p}": 1 for p, m in PATTERN_TOPIC_MATCHING}}

        teardown = await teardown_patterns(run, a, setup_sessions, ps)
        res = {
            **summarize_phases(phases, "publishes_per_s", "router_us_per_event"),
            **setup,
            **teardown,
            "topic": PATTERN_TOPIC,
            "matching_patterns": [f"{m} {p}" for p, m in PATTERN_TOPIC_MATCHING],
            "total_publishes_verified": sum(r["total_publishes_verified"] for r in phases.values()),
            "total_events_verified": sum(r["total_events_verified"] for r in phases.values()),
            "subscribers": a.subscribers,
            "outstanding_publishes": a.pub_outstanding,
        }
        return res
    finally:
        await asyncio.gather(*(s.leave() for s in sessions + setup_sessions), return_exceptions=True)


async def scenario_rpc_patterns(run: Run, a) -> dict:
    """rpc on an exact registration, then with --prefix-patterns +
    --wildcard-patterns non-matching pattern registrations in the router:
    calls to the exact procedure, to one routed via the longest prefix, and
    to one routed via a wildcard (see RPC_CALLEE_PATTERNS)."""
    ser = Serializer(a.serializer)
    sessions: list = []
    setup_sessions: list = []
    try:
        callee_sess = await connect_session(run, a.url, ser, a.realm, "callee")
        sessions.append(callee_sess)
        callee = RoutedCallee(callee_sess)
        await callee.add(RPC_EXACT_PROC, "exact")
        caller_sessions = []
        for i in range(a.callers):
            s = await connect_session(run, a.url, ser, a.realm, f"caller{i}")
            sessions.append(s)
            caller_sessions.append(s)
        phases = {}

        async def phase(name, proc, reg):
            callee.expect(reg[0], reg[1], proc)
            callers = [Caller(run, s, i, a.outstanding, proc) for i, s in enumerate(caller_sessions)]
            r = await measure_calls(run, a, callers, callee)
            r.update(procedure=proc, routed_to=f"{reg[1]} {reg[0]}")
            phases[name] = r

        # 1. exact-match case: no pattern in the router
        await phase("base", RPC_EXACT_PROC, (RPC_EXACT_PROC, "exact"))
        # 2. the non-matching patterns, the callee's competing patterns, then each route
        setup = await setup_patterns(run, a, ser, setup_sessions, REGISTER,
                                     nonmatching_procedure_patterns(a.prefix_patterns, a.wildcard_patterns))
        for uri, match in RPC_CALLEE_PATTERNS:
            await callee.add(uri, match)
        for name, proc, reg in RPC_PATTERN_PHASES:
            await phase(name, proc, reg)

        teardown = await teardown_patterns(run, a, setup_sessions, caller_sessions[0])
        return {
            **summarize_phases(phases, "calls_per_s", "router_us_per_call"),
            **setup,
            **teardown,
            "callee_registrations": list(callee.names.values()),
            "total_calls_verified": sum(r["total_calls_verified"] for r in phases.values()),
            "callers": a.callers,
            "outstanding_per_caller": a.outstanding,
        }
    finally:
        await asyncio.gather(*(s.leave() for s in sessions + setup_sessions), return_exceptions=True)


async def scenario_sessions(run: Run, a) -> dict:
    """M sessions join (--concurrency joins in flight), each subscribes to its
    own topic: joins/s, join latency, router RSS and CPU per join; then one
    acknowledged event per session topic must reach exactly its session, once.
    The joining sessions are LeanSessions (cheap per join, so the router and
    not the load generator bounds joins/s); the publisher is a WampSession."""
    ser = Serializer(a.serializer)
    n = a.sessions
    sampler = ProcSampler(a.router_pid)
    publisher = None
    # make sure we can hold all sockets
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 256
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
        except (ValueError, OSError):
            pass
    joins = LeanJoins(run, a.url, ser, a.realm, n, a.concurrency)
    try:
        await asyncio.sleep(0.5)  # let the router settle after the readiness probe
        rss0 = sampler.rss()
        window = Window(sampler, a.aux_pids)
        window.begin()
        joins.start()
        await asyncio.wait([joins.done, run.failed], timeout=a.join_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        window.end()
        run.check()
        if not joins.done.done():
            raise BenchFailure(f"sessions did not all join within {a.join_timeout}s "
                               f"({joins.joined} of {n} joined)")
        joins.done.result()
        if joins.joined != n:
            raise BenchFailure(f"only {joins.joined} of {n} sessions joined")

        await asyncio.sleep(1.0)  # settle before reading RSS
        run.check()
        rss1 = sampler.rss()

        # verification: one acknowledged event per session topic, each must
        # arrive exactly once at exactly its own session.
        publisher = await connect_session(run, a.url, ser, a.realm, "publisher")
        acks = {"n": 0}
        inflight = set()

        def on_published(msg):
            if msg[1] not in inflight:
                raise BenchFailure(f"publisher: unexpected PUBLISHED {msg!r}")
            inflight.discard(msg[1])
            acks["n"] += 1

        publisher.on_published = on_published
        opts = {"acknowledge": True}
        for i in range(n):
            req = publisher.next_id()
            inflight.add(req)
            # each session expects exactly one event on its own topic: args [0]
            publisher.send([PUBLISH, req, opts, f"{SESSION_TOPIC_PREFIX}{i}", [0]])
            if i % 200 == 199:
                await asyncio.sleep(0)
        sessions = joins.sessions
        await run.wait_until(lambda: acks["n"] == n, a.drain_timeout, "publishes to be acknowledged")
        await run.wait_until(lambda: all(s.events >= 1 for s in sessions), a.drain_timeout,
                             "every session to receive its event")
        await asyncio.sleep(0.2)
        run.check()
        bad = [s.idx for s in sessions if s.events != 1]
        if bad:
            raise BenchFailure(f"{len(bad)} sessions received a wrong number of events (e.g. s{bad[0]})")

        w = window.result()
        lat = latency_stats(joins.latencies)
        res = {
            "sessions": n,
            "concurrency": joins.concurrency,
            "joins_per_s": n / w["window_s"],
            "join_p50_ms": lat["lat_p50_ms"],
            "join_p99_ms": lat["lat_p99_ms"],
            **w,
            "router_us_per_join": per_unit_us(w["router_cpu_s"], n),
            "rss_before_bytes": rss0,
            "rss_after_bytes": rss1,
            "rss_per_session_bytes": (rss1 - rss0) / n if (rss0 is not None and rss1 is not None) else None,
            "events_verified": n,
        }
        return res
    finally:
        if publisher is not None:
            await publisher.leave()
        await joins.close_all()


async def scenario_probe(run: Run, a) -> dict:
    """Readiness probe: join, register, call once, leave. Retries until --timeout."""
    ser = Serializer(a.serializer)
    deadline = time.monotonic() + a.probe_timeout
    last = None
    while time.monotonic() < deadline:
        r = Run(run.loop)
        s = None
        try:
            s = await connect_session(r, a.url, ser, a.realm, "probe", timeout=2.0)
            callee = EchoCallee(s)
            await asyncio.wait_for(callee.start(), 2.0)
            got = run.loop.create_future()
            s.on_result = lambda m: got.done() or got.set_result(m)
            s.send([CALL, s.next_id(), EMPTY, ECHO_PROC, ["probe"]])
            m = await asyncio.wait_for(got, 2.0)
            if len(m) < 4 or m[3] != ["probe"]:
                raise BenchFailure(f"probe call returned {m!r}")
            await s.leave(2.0)
            return {"ready": True, "session_id": s.session_id}
        except (OSError, asyncio.TimeoutError, BenchFailure, picows.WSError) as e:
            last = e
            if s is not None:
                s.close()
            await asyncio.sleep(0.2)
    raise BenchFailure(f"router not ready after {a.probe_timeout}s: {last!r}")


async def scenario_latency_autobahn(run: Run, a) -> dict:
    """latency as autobahn-python clients see it: an autobahn caller makes sequential calls to an
    autobahn callee (both in this process); the client library's own cost is part of every round
    trip, so this shows what an application gets, not the router alone. Optional scenario."""
    import urllib.parse

    import autobahn
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    url = urllib.parse.urlparse(a.url)
    joined: dict = {}
    transports = []

    class Client(ApplicationSession):
        def onJoin(self, details):
            joined[self.config.extra].set_result(self)

        def onDisconnect(self):
            fut = joined.get(self.config.extra)
            if fut is not None and not fut.done():
                fut.set_exception(BenchFailure(f"{self.config.extra}: disconnected before joining"))

    async def connect(name: str):
        joined[name] = loop.create_future()
        ser = MsgPackSerializer() if a.serializer == "msgpack" else JsonSerializer()
        factory = WampWebSocketClientFactory(lambda: Client(ComponentConfig(a.realm, extra=name)), url=a.url,
                                             serializers=[ser])
        transport, _ = await loop.create_connection(factory, url.hostname, url.port)
        transports.append(transport)
        return await asyncio.wait_for(joined[name], 10.0)

    callee = caller = None
    try:
        callee = await connect("callee")
        caller = await connect("caller")
        await callee.register(lambda x: x, RPC_EXACT_PROC)
        i = 0

        async def call_once() -> int:
            nonlocal i
            i += 1
            t0 = time.perf_counter_ns()
            r = await caller.call(RPC_EXACT_PROC, i)
            dt = time.perf_counter_ns() - t0
            if r != i:
                raise BenchFailure(f"call {i} returned {r!r}")
            return dt

        end = loop.time() + a.warmup
        while loop.time() < end:
            await call_once()
        window = Window(ProcSampler(a.router_pid), a.aux_pids)
        window.begin()
        lat = []
        end = loop.time() + a.duration
        while loop.time() < end:
            lat.append(await call_once())
        window.end()
        w = window.result()
        return {
            "client": f"autobahn-python {autobahn.__version__}",
            "calls": len(lat),
            "calls_per_s": len(lat) / w["window_s"],
            **latency_stats(lat),
            **w,
            "router_us_per_call": per_unit_us(w["router_cpu_s"], len(lat)),
            "total_calls_verified": i,
        }
    finally:
        for s in (caller, callee):
            if s is not None and s.is_attached():
                s.leave()
        await asyncio.sleep(0.1)
        for t in transports:
            t.close()


async def amain(a) -> dict:
    run = Run(asyncio.get_running_loop())
    if a.scenario == "rpc":
        return await scenario_calls(run, a, a.callers, a.outstanding)
    if a.scenario == "latency":
        return await scenario_calls(run, a, 1, 1)
    if a.scenario == "pubsub":
        return await scenario_pubsub(run, a)
    if a.scenario == "sessions":
        return await scenario_sessions(run, a)
    if a.scenario == "pubsub-patterns":
        return await scenario_pubsub_patterns(run, a)
    if a.scenario == "rpc-patterns":
        return await scenario_rpc_patterns(run, a)
    if a.scenario == "latency-autobahn":
        return await scenario_latency_autobahn(run, a)
    if a.scenario == "probe":
        return await scenario_probe(run, a)
    raise SystemExit(f"unknown scenario {a.scenario}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Raw-WAMP load generator (verifying)")
    p.add_argument("--url", required=True, help="router WebSocket URL, e.g. ws://127.0.0.1:8080/ws")
    p.add_argument("--realm", default="realm1")
    p.add_argument("--scenario", required=True, choices=["rpc", "pubsub", "latency", "sessions", "pubsub-patterns",
                                                       "rpc-patterns", "latency-autobahn", "probe"])
    p.add_argument("--serializer", default="msgpack", choices=["msgpack", "json"])
    p.add_argument("--duration", type=float, default=10.0, help="measurement window, seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before the window, seconds")
    p.add_argument("--drain-timeout", type=float, default=20.0)
    p.add_argument("--callers", type=int, default=4)
    p.add_argument("--outstanding", type=int, default=16, help="calls in flight per caller (rpc)")
    p.add_argument("--subscribers", type=int, default=8)
    p.add_argument("--pub-outstanding", type=int, default=32)
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50, help="joins in flight (sessions)")
    p.add_argument("--join-timeout", type=float, default=120.0, help="max time for all sessions to join")
    p.add_argument("--prefix-patterns", type=int, default=10000,
                   help="non-matching prefix subscriptions/registrations (*-patterns)")
    p.add_argument("--wildcard-patterns", type=int, default=10000,
                   help="non-matching wildcard subscriptions/registrations (*-patterns)")
    p.add_argument("--pattern-sessions", type=int, default=4, help="sessions holding those patterns")
    p.add_argument("--setup-window", type=int, default=256,
                   help="SUBSCRIBE/REGISTER requests in flight per session during the pattern setup")
    p.add_argument("--setup-timeout", type=float, default=90.0,
                   help="max time to create the patterns (and to tear them down), seconds")
    p.add_argument("--router-pid", type=int, default=None, help="PID whose CPU/RSS to sample")
    p.add_argument("--aux-pids", type=lambda v: [int(x) for x in v.split(",") if x.strip()], default=[],
                   help="comma-separated PIDs of the router's other processes (CPU reported apart)")
    p.add_argument("--probe-timeout", type=float, default=30.0)
    p.add_argument("--json-out", default=None, help="write the result JSON here (also printed to stdout)")
    p.add_argument("--no-uvloop", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    result = {"scenario": a.scenario, "url": a.url, "serializer": a.serializer,
              "duration": a.duration, "warmup": a.warmup}
    runner = asyncio.run
    loop_name = "asyncio"
    if not a.no_uvloop:
        try:
            import uvloop  # type: ignore
            runner = uvloop.run
            loop_name = "uvloop"
        except ImportError:
            pass
    result["loop"] = loop_name
    t0 = time.perf_counter()
    try:
        result.update(runner(amain(a)))
        result["ok"] = True
        rc = 0
    except BenchFailure as e:
        result["ok"] = False
        result["error"] = str(e)
        rc = 1
    except Exception as e:
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    result["elapsed_s"] = time.perf_counter() - t0
    share = result.get("loadgen_cpu_share")
    if share is not None and share > 0.9:
        result["warning"] = (f"load generator used {share:.0%} of its core during the window: "
                             f"it is likely the bottleneck; figures are a lower bound")
    if not result["ok"]:
        print(f"FAIL [{a.scenario}]: {result['error']}", file=sys.stderr)
    elif "warning" in result:
        print(f"WARNING [{a.scenario}]: {result['warning']}", file=sys.stderr)
    text = json.dumps(result, indent=None, default=str)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(text + "\n")
    print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
