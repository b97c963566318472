"""The uplink: an edge node's connection to its master node (docs/fabric.md, "Edge node").

``Uplink`` is the edge personality's node extension.  At node start it finds the master,
first found (as Crossbar.io's edge, protocol §1):

1. ``<cbdir>/key.activate``, the activation file a master's watch-to-pair writes beside the
   node key (``management-url``; its ``public-key-ed25519`` must be this node's);
2. the environment variable ``CROSSBAR_FABRIC_URL`` (``ws://``, ``wss://``, ``rs://``, ``rss://``,
   ``unix:``);
3. ``controller.fabric.transport`` of the node config (a connecting websocket or rawsocket
   transport over tcp, TLS or unix; ``null`` switches it off).

With none, the node runs standalone (logged once) and watches for ``key.activate`` to appear.

It connects with the network client (``client.Client``: reconnects with backoff, 5 s doubling up
to 60 s) and the node key: cryptosign, HELLO realm null, authrole ``node``, authextra ``pubkey``
(``trustroot``, ``challenge`` null; ``channel_binding`` ``tls-unique`` on TLS, else null).  The
master answers with the node's management name (WELCOME authid) and mrealm (WELCOME realm).  An
unpaired node (ABORT ``fabric.auth-failed.node-unpaired``) keeps trying, one log line per attempt
saying how to pair it (Crossbar.io's edge exits: D6); a lost uplink is tried again the same way
while the node keeps serving its clients.

On every join: a session on the node management realm, the management bridge (``bridge.py``),
the uplink check (``crossbarfabriccenter.mrealm.get_status``, again every 5 s while the master
answers ``no_such_procedure``) and the heartbeats (``heartbeat.py``).  On leave they stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path

from ..client.auth import Cryptosign
from ..client.connection import Backoff, Client, TransportConfigError, transport_spec
from ..client.session import ApplicationError
from ..common.keyfile import KeyFileError, read_tags
from ..protocol.errors import NO_SUCH_PROCEDURE
from ..transport.local import connect_local
from .bridge import ManagementBridge
from .heartbeat import Heartbeats, MessageCounters, heartbeat_settings

log = logging.getLogger("wampfabric.edge")

ACTIVATION_FILE = "key.activate"
FABRIC_URL_ENV = "CROSSBAR_FABRIC_URL"
NODE_UNPAIRED = "fabric.auth-failed.node-unpaired"
UPLINK_CHECK = "crossbarfabriccenter.mrealm.get_status"
UPLINK_CHECK_RETRY = 5.0
ACTIVATION_POLL = 2.0

#: the tags a master writes into ``key.activate`` (Crossbar.io's watch-to-pair)
ACTIVATION_TAGS = ("created-at", "management-url", "management-realm", "management-realm-oid", "node-oid",
                   "node-cluster-ip", "node-authid", "activation-code", "public-key-ed25519")


class ActivationError(ValueError):
    """A ``key.activate`` this node cannot use."""


def parse_activation_file(path: Path) -> dict:
    """The tags of an activation file: a header, a blank line, then ``tag: value`` lines (the
    format of the node key files).  Unknown or repeated tags and a missing ``management-url``
    are errors."""
    try:
        tags = read_tags(path, strict=True, header=True, known=ACTIVATION_TAGS)
    except KeyFileError as e:
        raise ActivationError(str(e)) from None
    if not tags.get("management-url"):
        raise ActivationError(f"{path}: no 'management-url'")
    return tags


def activation_url(cbdir: Path, pubkey: str) -> str | None:
    """The master URL of ``<cbdir>/key.activate`` (None: no such file); ``ActivationError`` when it
    is unusable or names another node's key."""
    path = Path(cbdir) / ACTIVATION_FILE
    if not path.exists():
        return None
    tags = parse_activation_file(path)
    key = tags.get("public-key-ed25519")
    if key and key.lower() != pubkey.lower():
        raise ActivationError(f"{path} is for public key {key}, not this node's ({pubkey})")
    return tags["management-url"]


def find_master(cbdir: Path, config: dict, pubkey: str, environ=os.environ):
    """``(transport, source)``: where the master is (a URL or a transport config) and where that
    came from; ``(None, reason)`` when no master is configured.  Raises ``ActivationError`` /
    ``TransportConfigError`` for a source that is there but unusable."""
    url = activation_url(cbdir, pubkey)
    if url:
        return url, f"activation file {Path(cbdir) / ACTIVATION_FILE}"
    url = environ.get(FABRIC_URL_ENV, "").strip()
    if url:
        return url, f"environment variable {FABRIC_URL_ENV}"
    fabric = ((config or {}).get("controller") or {}).get("fabric")
    if isinstance(fabric, dict) and "transport" in fabric:
        if fabric["transport"] is None:
            return None, "controller.fabric.transport is null"
        return fabric["transport"], "controller.fabric.transport"
    return None, f"no {ACTIVATION_FILE}, no {FABRIC_URL_ENV}, no controller.fabric.transport"


def node_authenticator(private_hex: str, spec) -> Cryptosign:
    """Cryptosign with the node key, as Crossbar.io's edge sends it (protocol §4): authextra
    ``pubkey``, ``trustroot`` and ``challenge`` null, ``channel_binding`` ``tls-unique`` over TLS
    (the signature then covers the TLS channel: a relay cannot reuse it), else null."""
    return Cryptosign(private_hex, channel_binding="tls-unique" if spec.ssl else None,
                      authextra={"trustroot": None, "challenge": None, "channel_binding": None})


def describe(transport) -> str:
    return transport if isinstance(transport, str) else (transport.get("url") or str(transport.get("endpoint")))


class Uplink:
    """The edge node's uplink to its master (a node extension: ``start(node)``, ``stop()``)."""

    def __init__(self, backoff: Backoff | None = None):
        self.node = None
        self.backoff = backoff or Backoff(initial=5.0, maximum=60.0, factor=2.0, jitter=0.1)
        self.client: Client | None = None
        self.where = None
        self.node_id: str | None = None  # the management name the master gave (WELCOME authid)
        self.mrealm: str | None = None  # the management realm (WELCOME realm)
        self.welcome: dict = {}
        self.counters = MessageCounters()
        self.seq = 0  # heartbeat rounds sent in this process
        self.bridge: ManagementBridge | None = None
        self._local = None
        self._heartbeats: Heartbeats | None = None
        self._check: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._lost = False

    # -- node extension -----------------------------------------------------------------------------

    async def start(self, node) -> None:
        self.node = node
        self.settings = heartbeat_settings(node.config.get("controller"))
        transport, source = find_master(node.cbdir, node.config, node.key.public_hex)
        if transport is None:
            log.info("No master configured (%s): the edge node runs standalone; it connects when a master "
                     "writes %s", source, Path(node.cbdir) / ACTIVATION_FILE)
            self._watch = asyncio.ensure_future(self._watch_activation())
            return
        log.info("Master from %s: %s", source, describe(transport))
        self._connect(transport)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.client is not None:
            await self.client.close()
        await self._detach()

    # -- connecting -------------------------------------------------------------------------------------

    def _connect(self, transport) -> None:
        node = self.node
        spec = transport_spec(transport, cbdir=node.cbdir)  # TransportConfigError: the node does not start
        if spec.kind == "websocket" and spec.auto_ping_interval is None:
            # a dead uplink (a cut cable, a master host gone) tells nobody: without pings the edge
            # would notice it only when TCP gives up retransmitting (~15 min).  Pinged after one
            # heartbeat period without a word from the master and dropped when the pong is a period
            # late, the edge starts reconnecting within ~2-3 periods (the master marks it offline
            # after two); the transport's own auto_ping_interval / auto_ping_timeout (ms) win.
            period = float(self.settings["heartbeat_period"])
            options = (transport.get("options") or {}) if isinstance(transport, dict) else {}
            timeout = spec.auto_ping_timeout if options.get("auto_ping_timeout") else period
            spec = dataclasses.replace(spec, auto_ping_interval=period, auto_ping_timeout=timeout)
        if spec.tcp_timeout is None:
            # over TCP also below WAMP (client/tcp.py), RawSocket uplinks included (no pings unless the
            # transport's options ask: Crossbar.io's RawSocket does not answer them): the kernel drops a
            # vanished master host within about two heartbeat periods
            spec = dataclasses.replace(spec, tcp_timeout=2 * float(self.settings["heartbeat_period"]))
        self.where = spec.describe()
        auth = node_authenticator(node.key.private_hex, spec)
        self.client = Client(spec, None, auth=[auth], authrole="node", backoff=self.backoff, cbdir=node.cbdir,
                             on_join=self._on_join, on_leave=self._on_leave, on_failure=self._on_failure,
                             log_retries=False).start()

    async def _watch_activation(self) -> None:
        path = Path(self.node.cbdir) / ACTIVATION_FILE
        refused = None
        while True:
            await asyncio.sleep(ACTIVATION_POLL)
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == refused:
                continue
            try:
                url = activation_url(self.node.cbdir, self.node.key.public_hex)
                log.info("Found activation file %s: master %s", path, url)
                self._connect(url)
                return
            except (ActivationError, TransportConfigError) as e:
                log.error("Activation file not used: %s", e)
                refused = stamp

    def _on_failure(self, error, attempt, delay) -> None:
        if self._lost:
            self._lost = False
            log.warning("Uplink to the master at %s lost (%s); reconnecting in %.0f s while the node keeps serving",
                        self.where, error, delay)
        elif isinstance(error, ApplicationError) and error.error == NODE_UNPAIRED:
            log.warning("This node is not paired with a management realm of the master at %s. Pair its public key "
                        "%s (the master's pair_node, e.g. 'crossbar shell pair node %s MREALM NAME'); "
                        "trying again in %.0f s", self.where, self.node.key.public_hex,
                        Path(self.node.cbdir) / "key.pub", delay)
        else:
            what = str(error) if isinstance(error, ApplicationError) else f"{type(error).__name__}: {error}"
            if isinstance(error, asyncio.TimeoutError):
                what = "timed out"
            log.warning("Cannot connect to the master at %s: %s; trying again in %.0f s", self.where, what, delay)

    async def _on_join(self, session, details: dict) -> None:
        self.node_id = details.get("authid")
        self.mrealm = details.get("realm")
        self.welcome = details
        log.info("Connected to the master at %s: node '%s' in management realm '%s' (session %s)", self.where,
                 self.node_id, self.mrealm, session.session_id)
        if not self.node_id or not self.mrealm:
            log.error("The master did not say this node's name and management realm (WELCOME authid %r, realm %r):"
                      " leaving", self.node_id, self.mrealm)
            await session.leave()
            return
        try:
            self._local = await connect_local(self.node.router, self.node.realm_name, role="trusted",
                                              authid="uplink", peer="uplink")
            self.bridge = ManagementBridge(self._local, session, self.node_id, self._augment_status)
            await self.bridge.start()
        except Exception as e:  # the uplink is useless without its bridge: start over
            if session.is_attached:
                log.error("Management bridge failed: %s: %s; reconnecting", type(e).__name__, e)
                await session.leave()
            return
        self._check = asyncio.ensure_future(self._uplink_check(session))
        self._heartbeats = Heartbeats(self.settings, self.node_id, self.mrealm, self.node.key.public_hex,
                                      self.counters, self.seq)
        self._heartbeats.start(self._local, session)

    async def _on_leave(self, session, reason) -> None:
        if not self.client.closed:
            self._lost = True
        await self._detach()

    async def _detach(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
        if self._heartbeats is not None:
            await self._heartbeats.stop()
            self.seq = self._heartbeats.seq
            self._heartbeats = None
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None
        local, self._local = self._local, None
        if local is not None and local.is_attached:
            try:
                await local.leave()
            except Exception:
                pass

    def _augment_status(self, status: dict) -> None:
        """``crossbar.get_status`` as the master sees it: with this node's management identity."""
        s = self.client.current if self.client else None
        extra = {k: v for k, v in (self.welcome.get("authextra") or {}).items() if not k.startswith("x_cb_")}
        for key, value in (("management_realm", self.mrealm), ("management_node_id", self.node_id),
                           ("management_session_id", s.session_id if s else None),
                           ("management_node_extra", extra)):
            if status.get(key) is None:
                status[key] = value

    async def _uplink_check(self, session) -> None:
        while session.is_attached:
            try:
                status = await session.call(UPLINK_CHECK)
            except ApplicationError as e:
                if e.error == NO_SUCH_PROCEDURE and session.is_attached:
                    log.info("Uplink check: the master's management realm does not answer yet; again in %.0f s",
                             UPLINK_CHECK_RETRY)
                    await asyncio.sleep(UPLINK_CHECK_RETRY)
                    continue
                if session.is_attached:
                    log.warning("Uplink check failed: %s", e)
                return
            realm = status.get("realm") if isinstance(status, dict) else None
            log.info("Uplink check: management realm '%s' of the master answers", realm or self.mrealm)
            return
