"""One router-to-router link of a realm: two legs and what they forward.

The *local leg* is an in-process session on this router (``LocalTransport``, role
``trusted``); the *remote leg* is a network client session on the other router
(``client.Client``: reconnects with backoff), authenticated as the link's config says.  Each
leg watches its router (``RouterView``) and the link mirrors, per direction, what one router
has onto the other (Crossbar.io's meanings of the four switches, all on by default):

- ``forward_local_events``: for each subscription here, the remote leg subscribes there and
  republishes its events here;
- ``forward_remote_events``: for each subscription there, the local leg subscribes here and
  republishes its events there;
- ``forward_local_invocations``: each registration here is registered there by the remote
  leg, which calls here on every invocation;
- ``forward_remote_invocations``: each registration there is registered here by the local
  leg, which calls there on every invocation.

Events go one hop: a republished event carries ``forward_for`` (the original publisher, or
the forwarding leg when the publisher was not disclosed), and a leg never republishes an
event that has one.  Subscriptions and registrations made by legs are not mirrored (see
``view.py``).  Together: no loops in any topology, and exactly once to every subscriber of a
full mesh (docs/clustering.md).

A router knows its legs (they subscribe to ``MARKER`` first: ``RouterSession.rlink``): only legs
may send ``forward_for``; legs get a publication's authid/authrole black/white lists and its
retain flag in the EVENT details (``rlink``) and republish with them; a leg joins a shared
registration of the same policy as one more callee (standing for the other router's callees), and
the dealer never hands a call that came from a leg to a leg; with ``"share_registrations": false``
a leg registers a procedure only on a router that has no callee of its own for it (each router
serves its own callees, the other's only when it has none).  Mirrors are made pipelined.

Nothing here runs per message on the router's hot path: a realm without links has no leg;
a leg is a session like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from ..client.auth import Anonymous, Cryptosign, Ticket
from ..client.connection import Backoff, Client, transport_spec
from ..client.session import ApplicationError, ClientSession
from ..common.keyfile import private_key
from ..common.timefmt import utcstr
from ..protocol.codes import EVENT
from ..transport.local import LocalTransport
from .view import MARKER, RouterView, pipelined

log = logging.getLogger("wampfabric.rlink")

DEFAULT_PING_S = 10.0

FORWARD_KEYS = ("forward_local_events", "forward_remote_events", "forward_local_invocations",
                "forward_remote_invocations")


def _noop(*args, **kwargs) -> None:
    return None


def node_private_key(cbdir) -> str:
    """The node key's private part (hex) from CBDIR/key.priv (Crossbar.io's tag format;
    KeyFileError, a ValueError, when it has none)."""
    return private_key(Path(cbdir) / "key.priv").private_bytes_raw().hex()


def authenticators(config: dict, cbdir, tls: bool) -> list:
    auth = config.get("authentication") or {}
    authid = config.get("authid")
    if "ticket" in auth:
        t = auth["ticket"]
        return [Ticket(t["ticket"], authid=t.get("authid", authid))]
    if "cryptosign" in auth:
        c = auth["cryptosign"]
        key = c.get("privkey") or node_private_key(cbdir)
        return [Cryptosign(key, authid=c.get("authid", authid), channel_binding="tls-unique" if tls else None)]
    return [Anonymous(authid=authid)]


class _LocalLeg(ClientSession):
    """The in-process leg: an EVENT of a publication already seen (a publication matching two of
    the leg's subscriptions) is dropped, so that it is forwarded once."""

    _last_publication = None

    def on_router_message(self, msg: list) -> None:
        if msg[0] == EVENT and len(msg) > 2:
            if msg[2] == self._last_publication:
                return
            self._last_publication = msg[2]
        ClientSession.on_router_message(self, msg)


def _dedupe_events(session: ClientSession) -> None:
    """The same for a network leg (the client builds the session: its ``on_message`` is
    wrapped).  A router writes the EVENTs of one publication to one receiver one after the
    other, so remembering the last publication is enough."""
    inner = session.on_message
    last = [None]

    def on_message(msg):
        if type(msg) is list and len(msg) > 2 and msg[0] == EVENT:
            if msg[2] == last[0]:
                return
            last[0] = msg[2]
        inner(msg)

    session.on_message = on_message


async def connect_leg(router, realm: str, authid: str) -> ClientSession:
    client = _LocalLeg()
    auth = {"anonymous": {"type": "static", "role": "trusted", "authid": authid}}
    client.transport = LocalTransport(router, client, auth, f"rlink:{authid}")
    await client.join(realm)
    return client


def _identity(details: dict, who: str, leg: ClientSession | None) -> dict:
    """The ``forward_for`` entry of a forwarded event or call: the original publisher or caller
    when it was disclosed, else the leg that forwards it."""
    sid = details.get(who)
    if sid is not None:
        return {"session": sid, "authid": details.get(f"{who}_authid"), "authrole": details.get(f"{who}_authrole")}
    d = leg.details if leg is not None else {}
    return {"session": leg.session_id if leg is not None else 0, "authid": d.get("authid"),
            "authrole": d.get("authrole")}


class _Mirror:
    """One direction of one kind: what ``view()`` has, made by ``actor()`` on the other router,
    forwarded through ``peer()``.  ``sync()`` brings the actor's subscriptions or registrations
    in line with the view (called after every change, one at a time)."""

    def __init__(self, link: "RLink", kind: str, actor, view, peer, home):
        self.link, self.kind = link, kind
        self.actor, self.view, self.peer = actor, view, peer
        self.home = home  # the view of the actor's own router
        self.done: dict = {}  # key -> subscription / registration id of the actor session
        self.failed: dict = {}  # key -> error URI (e.g. a registration that exists there already)
        self.session = None

    async def sync(self) -> None:
        actor, view = self.actor(), self.view()
        if actor is not self.session:  # a new (or no) session: the old one's took theirs along
            self.session = actor
            self.done.clear()
            self.failed.clear()
        if actor is None or not actor.is_attached or view is None or self.peer() is None:
            wanted = {}
        elif self.kind == "events":
            wanted = dict.fromkeys(view.wanted_subscriptions())
        else:
            wanted = view.wanted_registrations()
            home = self.home()
            if home is not None and wanted:
                # a procedure with a callee of its own there: a shared registration of the same
                # policy there takes the leg as one more callee (standing for this router's
                # callees; the dealer never hands a call that came over a link to a leg, so calls
                # go one hop); a single registration, or another policy, is served there alone;
                # so is every one with "share_registrations": false (the leg registers there only
                # while the router has no callee of its own: home's changes re-run this)
                mine = home.wanted_registrations()
                share = self.link.share_registrations
                wanted = {k: v for k, v in wanted.items()
                          if k not in mine or (share and v != "single" and mine[k] == v)}
        # requests are pipelined (many in flight): a link with thousands of subscriptions or
        # registrations (re)makes its mirrors in a few round trips, not one each
        idents = [self.done.pop(k) for k in [k for k in self.done if k not in wanted]]
        if idents and actor is not None:  # (errors: gone already, with the session)
            await pipelined(idents, actor.unsubscribe if self.kind == "events" else actor.unregister)
        for key in [k for k in self.failed if k not in wanted]:
            del self.failed[key]
        todo = [(k, v) for k, v in wanted.items() if k not in self.done]
        if todo and actor is self.actor() and actor.is_attached:
            results = await pipelined(todo, lambda item: self._make(actor, *item))
            for (key, _), result in zip(todo, results):
                if isinstance(result, ApplicationError):
                    if self.failed.get(key) != result.error:
                        log.info("rlink %s: cannot %s '%s' (%s) on the %s router: %s", self.link.id,
                                 "subscribe" if self.kind == "events" else "register", key[0], key[1],
                                 "local" if actor is self.link.local else "remote", result)
                    self.failed[key] = result.error
                elif isinstance(result, BaseException):  # the session went meanwhile
                    log.debug("rlink %s: %s", self.link.id, result)
                else:
                    self.failed.pop(key, None)
                    # withdrawn meanwhile: the change set the link dirty, the next round removes it
                    self.done[key] = result

    async def _make(self, actor, key, invoke):
        uri, match = key
        if self.kind == "events":
            # get_retained: the other router's retained events on it are retained here too
            return await actor.subscribe(uri, self._event_handler(uri), {"match": match, "get_retained": True},
                                         details=True)
        options = {"match": match}
        if invoke and invoke != "single":
            options["invoke"] = invoke
        return await actor.register(uri, self._endpoint(uri), options, details=True, progress=True)

    def _event_handler(self, uri: str):
        link = self.link
        actor = self.actor

        def on_event(*args, details, **kwargs):
            if "forward_for" in details:
                return  # came over a link: one hop only
            peer = self.peer()
            if peer is None or not peer.is_attached:
                return
            options = {"forward_for": [_identity(details, "publisher", actor())]}
            # the publication's authid/authrole black/white lists and retain flag (the broker
            # hands them to legs only) hold on the other router too
            extra = details.get("rlink")
            if extra:
                options.update(extra)
            elif details.get("retained"):  # a retained event (get_retained): retained there too
                options["retain"] = True
                options["rlink_retained"] = True
            if link.exclude_authid:
                options["exclude_authid"] = sorted(set(options.get("exclude_authid", ())) | set(link.exclude_authid))
            if link.exclude_authrole:
                options["exclude_authrole"] = sorted(set(options.get("exclude_authrole", ())) |
                                                     set(link.exclude_authrole))
            try:
                peer.publish_payload(details.get("topic") or uri, args, kwargs, options)
            except ApplicationError:
                return
            link.forwarded_events += 1

        return on_event

    def _endpoint(self, uri: str):
        link = self.link
        actor = self.actor

        async def invoke(*args, details, progress, **kwargs):
            peer = self.peer()
            if peer is None or not peer.is_attached:
                raise ApplicationError("wamp.error.no_such_procedure", f"router link {link.id} is down")
            if "forward_for" in details:
                raise ApplicationError("wamp.error.no_such_procedure",
                                       f"procedure '{details.get('procedure') or uri}' is reachable through "
                                       "router links only (calls go one hop)")
            options = {"forward_for": [_identity(details, "caller", actor())]}
            if details.get("timeout"):
                options["timeout"] = details["timeout"]
            link.forwarded_calls += 1
            return await peer.call_payload(details.get("procedure") or uri, args, kwargs, options,
                                           progress if progress is not None else None)

        return invoke


class RLink:
    """A running link (``marshal()`` is what ``get_router_realm_link`` answers)."""

    def __init__(self, link_id: str, realm_id: str, config: dict, router, realm_name: str, cbdir,
                 on_connect=None, on_disconnect=None, backoff: Backoff | None = None):
        self.id = link_id
        self.realm_id = realm_id
        self.config = config
        self.router = router
        self.realm_name = realm_name
        self.cbdir = cbdir
        self.on_connect, self.on_disconnect = on_connect, on_disconnect
        self.backoff = backoff or Backoff(initial=0.5, maximum=10.0)
        self.started = time.time()
        self.started_by = None
        self.exclude_authid = list(config.get("exclude_authid", []))
        self.exclude_authrole = list(config.get("exclude_authrole", []))
        # false: a router with callees of its own for a shared registration serves them alone
        # (the leg stands in only while it has none: replicas, where every router has callees)
        self.share_registrations = bool(config.get("share_registrations", True))
        self.local: ClientSession | None = None
        self.remote: ClientSession | None = None
        self.local_view: RouterView | None = None
        self.remote_view: RouterView | None = None
        self.client: Client | None = None
        self.connected_since: float | None = None
        self.connects = 0
        self.forwarded_events = 0
        self.forwarded_calls = 0
        self.last_error: str | None = None
        self._dirty = False
        self._syncing: asyncio.Task | None = None
        fw = {k: config.get(k, True) for k in FORWARD_KEYS}
        local, remote = (lambda: self.local), (lambda: self.remote)
        lview, rview = (lambda: self.local_view), (lambda: self.remote_view)
        self.mirrors = []
        if fw["forward_local_events"]:
            self.mirrors.append(_Mirror(self, "events", remote, lview, local, rview))
        if fw["forward_remote_events"]:
            self.mirrors.append(_Mirror(self, "events", local, rview, remote, lview))
        if fw["forward_local_invocations"]:
            self.mirrors.append(_Mirror(self, "calls", remote, lview, local, rview))
        if fw["forward_remote_invocations"]:
            self.mirrors.append(_Mirror(self, "calls", local, rview, remote, lview))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        spec = transport_spec(self.config["transport"], cbdir=self.cbdir)
        if spec.kind == "websocket" and spec.auto_ping_interval is None:
            # a peer that vanishes without closing (host down, link cut) is noticed within
            # DEFAULT_PING_S * 2 unless the transport's options say otherwise
            spec.auto_ping_interval = spec.auto_ping_timeout = DEFAULT_PING_S
        if spec.tcp_timeout is None:
            # over TCP also below WAMP (client/tcp.py): RawSocket links have no pings unless the
            # transport's options ask for them (Crossbar.io's RawSocket does not answer them), and
            # the kernel drops a vanished peer host within DEFAULT_PING_S * 2 with either transport
            spec.tcp_timeout = DEFAULT_PING_S * 2
        auth = authenticators(self.config, self.cbdir, spec.ssl is not None)  # fails early on a missing key
        self.local = await connect_leg(self.router, self.realm_name, f"rlink-{self.id}")
        await self.local.subscribe(MARKER, _noop)
        self.local_view = RouterView(self.local, self.changed)
        await self.local_view.start()
        self.client = Client(spec, self.config["realm"], auth=auth, cbdir=self.cbdir, backoff=self.backoff,
                             on_join=self._remote_joined, on_leave=self._remote_left,
                             on_failure=self._failed, log_retries=False)
        self.client.start()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        self.remote = self.remote_view = None
        if self._syncing is not None:
            self._syncing.cancel()
        if self.local is not None:
            try:
                await self.local.leave()
            except Exception:
                pass
        self.local = self.local_view = None

    async def _remote_joined(self, session: ClientSession, details) -> None:
        _dedupe_events(session)
        try:
            await session.subscribe(MARKER, _noop)
            view = RouterView(session, self.changed)
            await view.start()
        except Exception as e:
            self.last_error = f"cannot watch the other router: {e}"
            log.warning("rlink %s: %s (does its role allow the meta API and %s?)", self.id, self.last_error,
                        MARKER)
            await session.leave()
            return
        self.remote, self.remote_view = session, view
        self.connected_since = time.time()
        self.connects += 1
        self.last_error = None
        log.info("rlink %s: joined realm %s on %s as %s/%s", self.id, self.config["realm"],
                 self.client.spec.describe(), details.get("authid"), details.get("authrole"))
        self.changed()
        if self.on_connect:
            self.on_connect(self)

    def _remote_left(self, session, reason) -> None:
        was = self.remote is not None
        self.remote = self.remote_view = None
        self.connected_since = None
        self.changed()  # withdraws here what the other router had: at once
        if was:
            log.info("rlink %s: link to %s lost (%s)", self.id, self.client.spec.describe(), reason)
            if self.on_disconnect:
                self.on_disconnect(self)

    def _failed(self, error, attempt, delay) -> None:
        self.last_error = str(error) or type(error).__name__
        if attempt in (1, 5) or attempt % 50 == 0:
            log.warning("rlink %s: cannot join %s on %s: %s; retrying in %.1f s (attempt %d)", self.id,
                        self.config["realm"], self.client.spec.describe(), self.last_error, delay, attempt)

    # -- mirroring --------------------------------------------------------------------------

    def changed(self) -> None:
        self._dirty = True
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.get_running_loop().create_task(self._sync())

    async def _sync(self) -> None:
        while self._dirty:
            self._dirty = False
            for m in self.mirrors:
                try:
                    await m.sync()
                except Exception:
                    log.exception("rlink %s: sync failed", self.id)

    async def settled(self) -> None:
        """Until nothing is left to mirror (tests, stop)."""
        while self._syncing is not None and not self._syncing.done():
            await asyncio.shield(self._syncing)

    # -- management API -------------------------------------------------------------------------

    def _held(self, leg) -> dict:
        out = {"subscriptions": [], "registrations": [], "refused": []}
        for m in self.mirrors:
            if leg is None or m.session is not leg:
                continue
            out["subscriptions" if m.kind == "events" else "registrations"].extend(
                sorted(f"{uri} ({match})" if match != "exact" else uri for uri, match in m.done))
            out["refused"].extend(sorted(f"{uri}: {err}" for (uri, _), err in m.failed.items()))
        return out

    def marshal(self) -> dict:
        return {
            "id": self.id,
            "realm": self.realm_id,
            "config": self.config,
            "started": utcstr(self.started),
            "started_by": self.started_by,
            "connected": self.remote is not None,
            "connected_since": utcstr(self.connected_since) if self.connected_since else None,
            "connects": self.connects,
            "last_error": self.last_error,
            # what the legs hold for the link: subscriptions and registrations here (local leg) and there
            "here": self._held(self.local),
            "there": self._held(self.remote),
            "forwarded_events": self.forwarded_events,
            "forwarded_calls": self.forwarded_calls,
        }


