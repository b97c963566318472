"""What the master's components share: registering procedures whose errors reach the caller as
WAMP errors with their own URI, and the tick loops."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time

from autobahn.wamp.exception import ApplicationError as WampError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from ..client.session import ApplicationError
from ..common.timefmt import utcstr
from ..db.errors import DatabaseError, DatabaseFull

log = logging.getLogger("wampfabric.master")

NO_SUCH_OBJECT = "crossbar.error.no_such_object"
ALREADY_EXISTS = "crossbar.error.already_exists"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NOT_AUTHORIZED = "wamp.error.not_authorized"
DATABASE_FULL = "crossbar.error.database_full"


def _wrap(fn):
    """Our ApplicationError (and database errors) as autobahn's, so the caller gets the URI."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    async def call(*args, **kwargs):
        try:
            signature.bind(*args, **kwargs)
        except TypeError as e:
            # wrong number or names of arguments: the caller's mistake, said plainly
            raise WampError(INVALID_ARGUMENT, f"{fn.__name__}: {e}") from None
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except ApplicationError as e:
            raise WampError(e.error, *e.args_) from None
        except DatabaseFull as e:
            log.error("%s", e)
            raise WampError(DATABASE_FULL, f"the master's database is full: {e}") from None
        except DatabaseError as e:
            log.error("database error in %s: %s", fn.__name__, e)
            raise WampError("wamp.error.runtime_error", f"database error: {e}") from None

    return call


async def register_all(session, prefix: str, obj, names) -> None:
    """Register ``obj.<name>`` as ``<prefix><name>`` for each name, with call details."""
    for name in names:
        await session.register(_wrap(getattr(obj, name)), f"{prefix}{name}",
                               options=RegisterOptions(details_arg="details"))


def publish(session, topic: str, *args) -> None:
    if session.is_attached():
        session.publish(topic, *args, options=PublishOptions(acknowledge=False))


class Ticker:
    """Publishes ``{now, tick}`` on ``topic`` every ``period`` seconds (first at once)."""

    def __init__(self, session, topic: str, period: float):
        self.session = session
        self.topic = topic
        self.period = period
        self.tick = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            self.tick += 1
            publish(self.session, self.topic, {"now": utcstr(time.time()), "tick": self.tick})
            await asyncio.sleep(self.period)

