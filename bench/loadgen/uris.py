"""The URIs of the scenarios, and the pattern sets of the *-patterns scenarios."""

from __future__ import annotations

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
