"""Time formats of the management and meta APIs."""

from __future__ import annotations

import time


def utcstr(ts: float | None, whole_ms: bool = False) -> str | None:
    """``ts`` (POSIX seconds) as RFC 3339 UTC with milliseconds, e.g. 2026-12-03T06:22:31.123Z; None stays None.

    The milliseconds are truncated in one of two ways, kept as they were because they differ in the
    last digit for about one time.time() value in ten thousand (and for about half of psutil's
    two-decimal create times): by default those of the fraction of the second, ``(ts % 1) * 1000``
    (the management API: node, workers); with ``whole_ms`` those of ``int(ts * 1000)`` (the router's
    meta API: created of subscriptions and registrations, timestamps of the event history), where
    ``ts`` may not be None.
    """
    if whole_ms:
        ms = int(ts * 1000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"
