"""The management bridge: the node's management API on the master (protocol §5, design document
"Management Events").

While the uplink is joined, a session on the node management realm (``crossbar``, in-process,
role ``trusted``) and the uplink session on the mrealm are bridged:

- **calls**: every ``crossbar.*`` procedure registered on the node management router (exact
  match; found with ``wamp.registration.list``/``get`` and followed with
  ``wamp.registration.on_create``/``on_delete``, so a worker's procedures come and go with it) is
  registered on the master as ``crossbarfabriccenter.node.<node_id>.<suffix>``; an invocation is
  forwarded to the local procedure with its positional and keyword arguments (both work, D5) and
  the result or error goes back; the master cancelling its call cancels the local one;
- **events**: every local event ``crossbar.*`` is published on the master as
  ``crossbarfabriccenter.node.<node_id>.<suffix>`` (``acknowledge=true``), under the names the node
  really publishes (``...worker.<id>.on_realm_started``, ``...on_worker_ready``: D8), in the order
  they happened.

Nothing that signs with the node key is exposed (D1): the node has no such procedure, and a
procedure whose last URI component is ``sign`` or ``sign_challenge`` is never forwarded even if
one appears.
"""

from __future__ import annotations

import asyncio
import logging

from ..client.session import ApplicationError

log = logging.getLogger("wampfabric.edge")

LOCAL_PREFIX = "crossbar."
REMOTE_PREFIX = "crossbarfabriccenter.node."

#: never forwarded, whatever registers them: signatures with the node key (D1)
NEVER_FORWARDED = frozenset(("sign", "sign_challenge"))


def remote_uri(node_id: str, local_uri: str) -> str:
    """``crossbar.X`` -> ``crossbarfabriccenter.node.<node_id>.X``."""
    if not local_uri.startswith(LOCAL_PREFIX) or len(local_uri) == len(LOCAL_PREFIX):
        raise ValueError(f"not a node management URI: {local_uri!r}")
    return f"{REMOTE_PREFIX}{node_id}.{local_uri[len(LOCAL_PREFIX):]}"


def local_uri(node_id: str, uri: str) -> str:
    """The inverse of ``remote_uri``."""
    prefix = f"{REMOTE_PREFIX}{node_id}."
    if not uri.startswith(prefix) or len(uri) == len(prefix):
        raise ValueError(f"not a management URI of node {node_id!r}: {uri!r}")
    return LOCAL_PREFIX + uri[len(prefix):]


def forwardable(uri: str) -> bool:
    return uri.startswith(LOCAL_PREFIX) and uri.rsplit(".", 1)[-1] not in NEVER_FORWARDED


class _Forward:
    __slots__ = ("uri", "remote", "registration", "gone")

    def __init__(self, uri: str, remote: str):
        self.uri = uri
        self.remote = remote
        self.registration = None  # the master's registration ID once registered
        self.gone = False  # unregistered locally meanwhile


class ManagementBridge:
    """Bridges ``local`` (a session on realm ``crossbar``) and ``uplink`` (the session on the
    mrealm) for node ``node_id``.  ``start()`` forwards what is there and follows changes;
    ``stop()`` ends the following (the uplink's registrations end with its session)."""

    def __init__(self, local, uplink, node_id: str, augment_status=None):
        self.local = local
        self.uplink = uplink
        self.node_id = node_id
        self.augment_status = augment_status  # fills the management_* fields of get_status
        self.forwards: dict[int, _Forward] = {}  # local registration ID -> forward
        self._pending: set[asyncio.Task] = set()

    @property
    def remote_procedures(self) -> list[str]:
        """The procedures registered on the master now."""
        return sorted(f.remote for f in self.forwards.values() if f.registration is not None)

    async def start(self) -> None:
        await self.local.subscribe("wamp.registration.on_create", self._on_create)
        await self.local.subscribe("wamp.registration.on_delete", self._on_delete)
        await self.local.subscribe(LOCAL_PREFIX, self._on_event, options={"match": "prefix"}, details=True)
        regs = await self.local.call("wamp.registration.list")
        for reg_id in [r for ids in (regs or {}).values() for r in ids]:
            try:
                reg = await self.local.call("wamp.registration.get", reg_id)
            except ApplicationError:
                continue  # gone meanwhile
            await self._forward(reg)
        log.info("Management bridge up: %d procedure(s) of node '%s' registered on the master",
                 len(self.remote_procedures), self.node_id)

    async def stop(self) -> None:
        for t in list(self._pending):
            t.cancel()
        self._pending.clear()

    # -- calls ------------------------------------------------------------------------------------

    def _on_create(self, session_id, registration, **_) -> None:
        self._spawn(self._forward(registration))

    def _on_delete(self, session_id, registration_id, **_) -> None:
        fwd = self.forwards.pop(registration_id, None)
        if fwd is None:
            return
        fwd.gone = True
        if fwd.registration is not None:
            self._spawn(self._unregister(fwd))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _forward(self, reg: dict) -> None:
        if not isinstance(reg, dict):
            return
        uri, reg_id = reg.get("uri"), reg.get("id")
        if not isinstance(uri, str) or not uri.startswith(LOCAL_PREFIX) or reg_id in self.forwards:
            return
        if reg.get("match", "exact") != "exact":
            log.debug("not forwarding pattern registration %s (%s)", uri, reg.get("match"))
            return
        if not forwardable(uri):
            log.warning("Refusing to expose %s to the master: the node key never signs for others", uri)
            return
        try:
            fwd = _Forward(uri, remote_uri(self.node_id, uri))
        except ValueError:  # "crossbar." itself: nothing to translate
            return
        self.forwards[reg_id] = fwd
        try:
            registration = await self.uplink.register(fwd.remote, self._forwarder(uri))
        except ApplicationError as e:
            if self.forwards.get(reg_id) is fwd:
                del self.forwards[reg_id]
            if self.uplink.is_attached:
                log.warning("Cannot register %s on the master: %s", fwd.remote, e)
            return
        fwd.registration = registration
        if fwd.gone:
            await self._unregister(fwd)

    async def _unregister(self, fwd: _Forward) -> None:
        reg, fwd.registration = fwd.registration, None
        if reg is None or not self.uplink.is_attached:
            return
        try:
            await self.uplink.unregister(reg)
        except ApplicationError as e:
            log.debug("unregistering %s on the master: %s", fwd.remote, e)

    def _forwarder(self, uri: str):
        local = self.local
        augment = self.augment_status if uri == "crossbar.get_status" else None

        async def forward(*args, **kwargs):
            result = await local.call_payload(uri, args, kwargs)
            if augment is not None and isinstance(result, dict):
                augment(result)
            return result

        forward.__name__ = f"forward<{uri}>"
        return forward

    # -- events ------------------------------------------------------------------------------------

    def _on_event(self, *args, details=None, **kwargs) -> None:
        topic = (details or {}).get("topic")
        if not isinstance(topic, str) or not topic.startswith(LOCAL_PREFIX) or not self.uplink.is_attached:
            return
        try:
            remote = remote_uri(self.node_id, topic)
        except ValueError:
            return
        try:
            ack = self.uplink.publish_payload(remote, args, kwargs, {"acknowledge": True})
        except ApplicationError as e:
            log.warning("Event %s not forwarded: %s", topic, e)
            return
        ack.add_done_callback(lambda f, t=remote: self._published(f, t))

    def _published(self, fut: asyncio.Future, topic: str) -> None:
        if fut.cancelled():
            return
        e = fut.exception()
        if e is not None and self.uplink.is_attached:
            log.warning("Event %s not accepted by the master: %s", topic, e)
