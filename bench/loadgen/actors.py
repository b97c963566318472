"""The roles a session plays in a scenario: hot paths are plain callbacks (no coroutine per
message), every message checked against what was sent."""

from __future__ import annotations

import time
from array import array

from wampfabric.client.raw import CALL, PUBLISH, YIELD

from .clients import EMPTY, WampSession
from .state import BenchFailure, Run
from .uris import ECHO_PROC


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


class RoutedCallee(EchoCallee):
    """Echo callee holding several registrations (exact, prefix, wildcard).

    In each measured phase every call goes to one procedure, and every
    invocation must arrive on the one registration the dealer has to pick for
    it (exact, then longest prefix, then wildcard); for a pattern registration
    INVOCATION.Details.procedure must be the procedure actually called."""

    def __init__(self, sess: WampSession):
        super().__init__(sess)
        self.regs = {}  # (uri, match) -> registration id
        self.names = {}  # registration id -> "match uri"
        self.expect_proc = None  # INVOCATION.Details.procedure, pattern registrations only

    async def add(self, uri: str, match: str = "exact") -> int:
        rid = await self.sess.register(uri, EMPTY if match == "exact" else {"match": match})
        if rid in self.names:
            raise BenchFailure(f"callee: registration id {rid} returned twice ({match} {uri!r})")
        self.regs[(uri, match)] = rid
        self.names[rid] = f"{match} {uri!r}"
        return rid

    def expect(self, uri: str, match: str, proc: str) -> None:
        self.registration = self.regs[(uri, match)]
        self.expect_proc = None if match == "exact" else proc
        self.called = proc

    def on_invocation(self, msg):
        # [INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, (Args|list, (ArgsKw|dict))]
        if msg[2] != self.registration:
            raise BenchFailure(f"callee: call to {self.called!r} was routed to registration "
                               f"{self.names.get(msg[2], msg[2])}, expected {self.names[self.registration]}: {msg!r}")
        if self.expect_proc is not None and msg[3].get("procedure") != self.expect_proc:
            raise BenchFailure(f"callee: INVOCATION.Details.procedure should be {self.expect_proc!r}: {msg!r}")
        EchoCallee.on_invocation(self, msg)  # count and echo


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
