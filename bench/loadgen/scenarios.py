"""The scenarios: each connects its sessions, measures one or more windows and verifies
everything it measured (any violation raises BenchFailure)."""

from __future__ import annotations

import asyncio
import resource
import time

import picows

from wampfabric.client.raw import CALL, PUBLISH, REGISTER, SUBSCRIBE, Serializer

from .actors import Caller, EchoCallee, PatternSubscriber, Publisher, RoutedCallee, Subscriber
from .clients import EMPTY, LeanJoins, WampSession, connect_session
from .state import DRAIN, MEASURE, WARMUP, BenchFailure, Run
from .stats import ProcSampler, Window, latency_stats, per_unit_us, summarize_phases
from .uris import (
    ECHO_PROC,
    PATTERN_TOPIC,
    PATTERN_TOPIC_MATCHING,
    PUBSUB_TOPIC,
    RPC_CALLEE_PATTERNS,
    RPC_EXACT_PROC,
    RPC_PATTERN_PHASES,
    SESSION_TOPIC_PREFIX,
    nonmatching_procedure_patterns,
    nonmatching_topic_patterns,
)


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
    ser = Serializer(a.serializer, fast=True)
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


async def connect_subscribers(run: Run, a, ser: Serializer, sessions: list, topic: str) -> list:
    """--subscribers sessions (appended to `sessions`), each a Subscriber of `topic`."""
    subs = []
    for i in range(a.subscribers):
        s = await connect_session(run, a.url, ser, a.realm, f"sub{i}")
        sessions.append(s)
        sub = Subscriber(run, s, i)
        await sub.start(topic)
        subs.append(sub)
    return subs


async def scenario_pubsub(run: Run, a) -> dict:
    ser = Serializer(a.serializer, fast=True)
    sessions = []
    try:
        subs = await connect_subscribers(run, a, ser, sessions, PUBSUB_TOPIC)
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
    ser = Serializer(a.serializer, fast=True)
    n_match = len(PATTERN_TOPIC_MATCHING)
    if a.subscribers <= n_match:
        raise BenchFailure(f"pubsub-patterns needs --subscribers > {n_match}")
    sessions: list = []
    setup_sessions: list = []
    try:
        subs = await connect_subscribers(run, a, ser, sessions, PATTERN_TOPIC)
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
    ser = Serializer(a.serializer, fast=True)
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
    ser = Serializer(a.serializer, fast=True)
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
    ser = Serializer(a.serializer, fast=True)
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
