"""Log output in Crossbar.io's line format:
``2026-11-27T21:42:15+0000 [Controller  32657] message``.

Worker processes write their lines in the same format (``[Router    1234]``)
to their stdout; the controller passes them through (records with
``extra={"raw": True}``)."""

from __future__ import annotations

import logging
import os
import sys
import time


class NodeLogFormatter(logging.Formatter):
    def __init__(self, kind: str = "Controller"):
        super().__init__()
        self.prefix = f"[{kind:<10} {os.getpid():>6}]"

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "raw", False):
            # a worker's line, already formatted (with the worker's prefix)
            return record.getMessage()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created))
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return f"{ts} {self.prefix} {msg}"


def setup_logging(level: str = "info", kind: str = "Controller") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(NodeLogFormatter(kind))
    root.addHandler(handler)
    root.setLevel({"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                   "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
                   "none": logging.CRITICAL + 10}.get(level, logging.INFO))
    # picows logs every dropped connection at error level with a traceback; that is
    # the peer's fault, not ours
    logging.getLogger("picows").setLevel(logging.WARNING)


class RateLimitedLog:
    """Warnings a client can cause at will (one per message it sends) on ``logger``: one line a
    second at most, the next line counting those left out."""

    __slots__ = ("_logger", "_last", "_left_out")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last = float("-inf")  # monotonic time starts near 0 at boot
        self._left_out = 0

    def warning(self, fmt: str, *args) -> None:
        now = time.monotonic()
        if now - self._last < 1.0:
            self._left_out += 1
            return
        more = f" ({self._left_out} more since the last such line)" if self._left_out else ""
        self._last = now
        self._left_out = 0
        self._logger.warning(fmt + "%s", *args, more)
