"""WAMP identifiers (spec: basic/building_blocks "IDs").

Global-scope IDs (sessions, publications) are drawn at random from
[1, 2^53]; router-scope IDs (subscriptions, registrations) likewise, so they
reveal nothing about the router's state; session-scope IDs (requests) are
sequential per session and live on the session.
"""

import os
from random import getrandbits as _bits

_POOL_SIZE = 4096
_pool = b""
_pos = 0


def _reset_pool() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


# a forked child must not hand out its parent's random bytes
os.register_at_fork(after_in_child=_reset_pool)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS CSPRNG, drawn 4 KB at a time: joins need a few random bytes
    each (session ID, anonymous authid), and one ``getrandom`` syscall per join was a
    measurable share of a join's cost.  Bytes are handed out once and never reused."""
    global _pool, _pos
    end = _pos + n
    if end > len(_pool):
        if n > _POOL_SIZE:
            return os.urandom(n)
        _pool, _pos, end = os.urandom(_POOL_SIZE), 0, n
    out = _pool[_pos:end]
    _pos = end
    return out


def global_id() -> int:
    """A random ID in [1, 2^53]."""
    return _bits(53) + 1


def secure_id() -> int:
    """A random ID from the OS CSPRNG, for IDs that must not be guessable."""
    return (int.from_bytes(random_bytes(7), "little") & 0x1F_FFFF_FFFF_FFFF) + 1
