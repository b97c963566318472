"""WAMP identifiers (spec: basic/building_blocks "IDs").

Global-scope IDs (sessions, publications) are drawn at random from
[1, 2^53]; router-scope IDs (subscriptions, registrations) likewise, so they
reveal nothing about the router's state; session-scope IDs (requests) are
sequential per session and live on the session.
"""

from random import SystemRandom

_rng = SystemRandom()
_bits = __import__("random").getrandbits


def global_id() -> int:
    """A random ID in [1, 2^53]."""
    return _bits(53) + 1


def secure_id() -> int:
    """A random ID from the OS CSPRNG, for IDs that must not be guessable."""
    return _rng.getrandbits(53) + 1
