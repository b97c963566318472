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
  python bench/loadgen --url ws://127.0.0.1:8080/ws --scenario rpc \
      --duration 10 --warmup 2 --router-pid 1234 --json-out /tmp/rpc.json

The package (bench/loadgen/):
  clients.py    WampSession (picows, callbacks, coalesced masked frames), connect_session;
                LeanJoins / LeanSession, the sessions scenario's joining sessions
  actors.py     the roles on a session: callees, callers, subscribers, publisher
  scenarios.py  the scenarios (each verifies what it measures) and the readiness probe
  stats.py      CPU/RSS sampling over the measurement window, latency percentiles, phases
  uris.py       the URIs and the pattern sets of the scenarios
  state.py      Run (one scenario's failure and phase state), BenchFailure
  cli.py        command line, JSON result, exit code
The framing, serializers and message codes are the raw WAMP peer's (wampfabric.client.raw),
shared with the tests' raw peers (tests/support/wamp_raw.py).
"""
