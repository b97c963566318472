"""The function-call transport: an in-process client session attached to a
router with no serialization at all (design document: "function-call
transport (for built-in node controller and service sessions)").

Messages travel as the very lists the peers built; receivers must treat
them as read-only (the broker hands the same EVENT list to every local
subscriber).  Router -> client delivery is deferred to the end of the event
loop turn (like every other transport's coalesced writes), so a local callee
never runs inside the router's own message processing.

What reaches the client here was built by the router itself (its
``RouterSession`` is the only caller of ``send``), so it is handed to
``ClientSession.on_router_message``: an EVENT is not validated a second time
(the router validated the PUBLISH).  Client -> router messages are validated
by the router as any peer's.
"""

from __future__ import annotations

import asyncio

from ..client.session import ClientSession
from ..router.session import PASSTHROUGH, RouterSession


class LocalTransport:
    """Both ends of a function-call connection between a ``ClientSession`` and a ``Router``."""

    serializer = PASSTHROUGH

    def __init__(self, router, client: ClientSession, auth_config: dict, peer: str):
        self.auth_config = auth_config
        self.peer = peer
        self.client = client
        self._receive = client.on_router_message  # trusted: only the router's own messages come here
        self._queue: list = []
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self.router_session = RouterSession(router, self, trusted=auth_config.get("anonymous", {}).get("role") == "trusted")

    # router side: RouterSession -> client
    def send(self, msg: list) -> None:
        if self._closed:
            return
        if not self._queue:
            self._loop.call_soon(self._deliver)
        self._queue.append(msg)

    def _deliver(self) -> None:
        queue, self._queue = self._queue, []
        receive = self._receive
        for msg in queue:
            if self._closed:
                return
            receive(msg)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon(self._closed_both)

    def _closed_both(self) -> None:
        self.router_session.on_close()
        self.client.on_close()

    # client side: client -> RouterSession
    def send_message(self, msg: list) -> None:
        if self._closed:
            return
        self.router_session.on_message(msg)


async def connect_local(router, realm: str, role: str = "trusted", authid: str | None = None,
                        peer: str = "local") -> ClientSession:
    """Attach a new in-process session to ``router`` and join ``realm``.

    ``role`` is the authrole it gets (``trusted``: every realm's built-in role
    for router-internal sessions, allowed everything, including ``wamp.*``)."""
    client = ClientSession()
    auth = {"anonymous": {"type": "static", "role": role}}
    if authid:
        auth["anonymous"]["authid"] = authid
    client.transport = LocalTransport(router, client, auth, peer)
    await client.join(realm)
    return client
