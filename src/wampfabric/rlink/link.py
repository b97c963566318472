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

A republished event carries ``forward_for`` (the original publisher, or the forwarding leg
when the publisher was not disclosed), and a leg never republishes an event that has one.
Subscriptions and registrations made by legs are not mirrored (see ``view.py``).  Routers not
linked directly reach each other through the links between (multi-hop): the link floods link
state between its two routers (router IDs, which routers are linked, what each wants:
``topology.py``), mirrors onto a router what the routers beyond the peer want too, and sends
events and calls for those on the links' transit topics and procedures, split by next hop along
shortest paths.  Together: no loops, and exactly once to every subscriber in any connected
topology; in a full mesh nothing is beyond a peer and the path is one hop (docs/clustering.md).

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
from ..router.linkstate import DOWN_KEPT_S, RLINK_PREFIX, STATE_TOPIC
from ..transport.local import LocalTransport
from .topology import Topology
from .view import MARKER, RouterView, pipelined

log = logging.getLogger("wampfabric.rlink")

DEFAULT_PING_S = 10.0

#: multi-hop (docs/clustering.md): how often a link forgets what went away everywhere (link
#: records that said down for DOWN_KEPT_S, and the routers no link names any more)
STATE_PRUNE_S = 60.0
MAX_HOPS = 32  # an event or call in transit passes at most this many routers
#: forwarded publishes carry ``rlink_origin`` (the receiving router delivers a publication that
#: comes over two paths once) while a link sees routers beyond its peer, and for this long after
#: the link graph changed; a full mesh that has not changed for that long pays nothing for it
ORIGIN_MARKED_S = 30.0
TRANSIT_EVENTS = RLINK_PREFIX + "transit."  # + router ID: events for routers beyond that one
TRANSIT_CALLS = RLINK_PREFIX + "call."  # + router ID: calls for routers beyond that one

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
    the leg's subscriptions) is dropped, so that it is forwarded once; ``_last_publication`` is
    the publication the event handler is forwarding (its ``rlink_origin``)."""

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

    def on_message(msg):
        if type(msg) is list and len(msg) > 2 and msg[0] == EVENT:
            if msg[2] == session._last_publication:
                return
            session._last_publication = msg[2]  # also what the event handler forwards it as
        inner(msg)

    session._last_publication = None
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

    def __init__(self, link: "RLink", kind: str, side: str, actor, view, peer, home):
        self.link, self.kind = link, kind
        self.side = side  # "local" or "remote": the actor's router
        self.actor, self.view, self.peer = actor, view, peer
        self.home = home  # the view of the actor's own router
        self.done: dict = {}  # key -> subscription / registration id of the actor session
        self.failed: dict = {}  # key -> error URI (e.g. a registration that exists there already)
        self.session = None
        # multi-hop: the routers beyond the peer's (reached through it, nearest first) and what
        # the peer's router has itself (calls for anything else are passed on beyond it)
        self.beyond: list[str] = []
        self.direct: set = set()

    async def sync(self) -> None:
        actor, view = self.actor(), self.view()
        if actor is not self.session:  # a new (or no) session: the old one's took theirs along
            self.session = actor
            self.done.clear()
            self.failed.clear()
        link = self.link
        if actor is None or not actor.is_attached or view is None or self.peer() is None:
            wanted = {}
            self.beyond = []
        elif self.kind == "events":
            wanted = dict.fromkeys(view.wanted_subscriptions())
            self.beyond = link.beyond(self.side)
            for router in self.beyond:  # their events reach them through the peer's router
                wanted.update(dict.fromkeys(link.topo.subscriptions(router)))
        else:
            wanted = view.wanted_registrations()
            self.direct = set(wanted)
            self.beyond = link.beyond(self.side)
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
            if self.beyond:
                # procedures of routers beyond the peer's: registered here while this router has
                # no callee of its own for them (calls pass on hop by hop, see _endpoint)
                mine = home.wanted_registrations() if home is not None else {}
                for router in self.beyond:
                    for k, v in link.topo.registrations(router).items():
                        if k not in wanted and k not in mine:
                            wanted[k] = v
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
        return await actor.register(uri, self._endpoint(uri, key), options, details=True, progress=True)

    def _event_handler(self, uri: str):
        link = self.link
        actor = self.actor

        def on_event(*args, details, **kwargs):
            if "forward_for" in details:
                return  # came over a link: one hop only
            peer = self.peer()
            if peer is None or not peer.is_attached:
                return
            leg = actor()
            options = {"forward_for": [_identity(details, "publisher", leg)]}
            here = link.ids[self.side]
            if here is not None and (self.beyond or time.monotonic() < link.mark_origin_until):
                # the publication's identity across the link graph: a router that gets it over
                # two paths while links change delivers it once (the broker's _seen_before)
                options["rlink_origin"] = f"{here}:{leg._last_publication}"

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
            topic = details.get("topic")
            if topic is None:
                topic = uri  # an exact subscription: never a link's own topic (views ignore those)
            elif topic.startswith(RLINK_PREFIX):
                return  # the links' own events (link state) reach legs with patterns too: not forwarded
            beyond = self.beyond
            if beyond:
                # multi-hop: which routers through the peer's want it (the peer's among them or not)
                topo = link.topo
                there = link.ids[link.other(self.side)]
                dest = [r for r in beyond if (m := topo.interest(r)) is not None and m.matches(topic)]
                if dest:
                    options.pop("retain", None)  # retained events go one hop (docs/clustering.md)
                    options.pop("rlink_retained", None)
                    link.send_transit(peer, there, dest, [here, there], topic, args, kwargs, options)
                mine = topo.interest(there)
                if mine is not None and not mine.matches(topic):
                    return
            try:
                peer.publish_payload(topic, args, kwargs, options)
            except ApplicationError:
                return
            link.forwarded_events += 1

        return on_event

    def _endpoint(self, uri: str, key):
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
            procedure = details.get("procedure") or uri
            on_progress = progress if progress is not None else None
            if self.beyond and key not in self.direct:
                # a procedure of a router beyond the peer's: the nearest that has it, hop by hop
                there = link.ids[link.other(self.side)]
                topo = link.topo
                target = next((r for r in self.beyond if key in topo.registrations(r)), None)
                hop = topo.first_hops(there).get(target) if target is not None else None
                if hop is not None:
                    return await peer.call_payload(TRANSIT_CALLS + hop, [procedure, target, list(args), kwargs],
                                                   None, options, on_progress)
            return await peer.call_payload(procedure, args, kwargs, options, on_progress)

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
        self.fw = fw
        if fw["forward_local_events"]:
            self.mirrors.append(_Mirror(self, "events", "remote", remote, lview, local, rview))
        if fw["forward_remote_events"]:
            self.mirrors.append(_Mirror(self, "events", "local", local, rview, remote, lview))
        if fw["forward_local_invocations"]:
            self.mirrors.append(_Mirror(self, "calls", "remote", remote, lview, local, rview))
        if fw["forward_remote_invocations"]:
            self.mirrors.append(_Mirror(self, "calls", "local", local, rview, remote, lview))
        # multi-hop (docs/clustering.md): both routers' IDs (None: that router keeps no link
        # state, e.g. Crossbar.io: the link goes one hop), the link graph as this link knows it,
        # the record versions each router is known to hold, what the link made for transit
        self.ids: dict = {"local": None, "remote": None}
        self.topo = Topology()
        self.known: dict = {"local": {}, "remote": {}}
        self._transit: dict = {"local": [], "remote": []}  # side -> [(kind, id)] its leg made
        self._pruner: asyncio.Task | None = None
        # until when forwarded publishes carry rlink_origin (see ORIGIN_MARKED_S)
        self.mark_origin_until = 0.0
        self._synced_version = -1

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
        await self._state_up("local", self.local)
        self._pruner = asyncio.get_running_loop().create_task(self._prune())
        self.client = Client(spec, self.config["realm"], auth=auth, cbdir=self.cbdir, backoff=self.backoff,
                             on_join=self._remote_joined, on_leave=self._remote_left,
                             on_failure=self._failed, log_retries=False)
        self.client.start()

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
        if self.remote is not None:
            # the other routers route around this link at once: the down record is put on both
            # routers before the legs leave
            puts = self._link_record(False)
            if puts:
                await asyncio.wait(puts, timeout=2.0)
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
        await self._state_up("remote", session)
        self.remote, self.remote_view = session, view
        # make before break: the mirrors both ways first, then the link says it is up (the others
        # stop sending this router's events around it only once they go over it; a publication
        # that comes both ways meanwhile is delivered once: rlink_origin)
        self.changed()
        await self.settled()
        await self._transit_up()
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
        self._link_record(False)  # the other routers route around this link at once
        self.ids["remote"] = None
        self.known["remote"] = {}
        self._transit["remote"] = []
        asyncio.get_running_loop().create_task(self._transit_down("local"))
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
            if self.topo.version != self._synced_version:
                # the link graph changed: publications may travel two paths for a while
                self._synced_version = self.topo.version
                self.mark_origin_until = time.monotonic() + ORIGIN_MARKED_S
            self._router_records()
            for m in self.mirrors:
                try:
                    await m.sync()
                except Exception:
                    log.exception("rlink %s: sync failed", self.id)

    # -- multi-hop: link state and transit (docs/clustering.md "Multi-hop") -------------------------

    @staticmethod
    def other(side: str) -> str:
        return "remote" if side == "local" else "local"

    def _session(self, side: str):
        return self.local if side == "local" else self.remote

    def beyond(self, side: str) -> list[str]:
        """The routers reached from this side's router through the other side's router, but not
        that one itself, nearest first (empty without link state)."""
        here, there = self.ids[side], self.ids[self.other(side)]
        if here is None or there is None:
            return []
        return [r for r in self.topo.behind(here, there) if r != there]

    async def _state_up(self, side: str, session) -> None:
        """Learn the router's ID and link state; without them (Crossbar.io, an older router, a
        role without the rights) the link goes one hop."""
        self.ids[side] = None
        try:
            await session.subscribe(STATE_TOPIC, self._state_handler(side, session), details=True)
            got = await session.call("wampfabric.rlink.state.get")
            router = got["router"]
        except Exception as e:  # noqa: BLE001 (an error answer or an unusable one)
            log.info("rlink %s: the %s router keeps no link state for us (%s): events and calls go one hop",
                     self.id, "local" if side == "local" else "other", e)
            return
        self.ids[side] = router
        self._records(side, got.get("records") or [])

    def _state_handler(self, side: str, session):
        def on_state(records=None, *rest, details=None, **kwargs):
            if self._session(side) is session or (side == "remote" and self.remote is None):
                self._records(side, records if isinstance(records, list) else [])
        return on_state

    def _records(self, side: str, records: list) -> None:
        """Records a router holds: kept when newer, and passed to the other router when it is not
        known to hold them (flooding: every link passes them on, so every router gets them)."""
        known = self.known[side]
        other = self.other(side)
        known_there = self.known[other]
        changed = False
        fresh = []
        for rec in records:
            if not isinstance(rec, dict) or not isinstance(rec.get("key"), str) or type(rec.get("seq")) is not int:
                continue
            key, seq = rec["key"], rec["seq"]
            if seq > known.get(key, -1):
                known[key] = seq
            if self.topo.merge(rec):
                changed = True
            if seq > known_there.get(key, -1) and seq >= self.topo.seq(key):
                fresh.append(rec)
        if fresh:
            self._put(other, fresh)
        if changed:
            self.changed()

    def _put(self, side: str, records: list, own: bool = False):
        session = self._session(side)
        if session is None or self.ids[side] is None or not session.is_attached:
            return
        known = self.known[side]
        for rec in records:
            known[rec["key"]] = max(known.get(rec["key"], -1), rec["seq"])

        async def put():
            try:
                await session.call("wampfabric.rlink.state.put", records, own)
            except Exception as e:  # noqa: BLE001 (gone meanwhile, or refused: logged, the next refresh retries)
                log.debug("rlink %s: link state not put: %s", self.id, e)
                for rec in records:
                    if known.get(rec["key"]) == rec["seq"]:
                        known.pop(rec["key"], None)

        return asyncio.get_running_loop().create_task(put())

    def _publish_own(self, records: list) -> list:
        """This link's records (its link record, its routers' interest), put through its own legs:
        a router marks this link down itself when the leg there goes (router/linkstate.py).
        Returns the puts under way."""
        for rec in records:
            self.topo.merge(rec)
        return [t for t in (self._put("local", records, True), self._put("remote", records, True)) if t is not None]

    def _link_record(self, up: bool) -> list:
        a, b = self.ids["local"], self.ids["remote"]
        if a is None or b is None:
            return []
        a, b = sorted((a, b))
        return self._publish_own([{"key": f"link:{a}:{b}", "seq": time.time_ns(), "a": a, "b": b, "up": up}])

    def _router_records(self) -> None:
        """Each router's own interest (what sessions that are not legs subscribe and register),
        when it differs from the record the link graph has and some router is not linked to it
        directly (only those use it)."""
        out = []
        for side, view in (("local", self.local_view), ("remote", self.remote_view)):
            router = self.ids[side]
            if router is None or view is None:
                continue
            if all(d == 1 for d in self.topo.hops(router).values()):
                # linked directly to every router it reaches (a full mesh: clusters, replicas):
                # nobody is beyond anybody, its interest travels on no record
                continue
            subs = sorted([u, m] for u, m in view.wanted_subscriptions())
            regs = sorted([u, m, i] for (u, m), i in view.wanted_registrations().items())
            rec = self.topo.router(router)
            if rec is not None and rec.get("subs") == subs and rec.get("regs") == regs:
                continue
            out.append({"key": f"router:{router}", "seq": time.time_ns(), "router": router, "subs": subs,
                        "regs": regs})
        if out:
            self._publish_own(out)

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(STATE_PRUNE_S)
            try:
                self.topo.expire(DOWN_KEPT_S)
                records = self.topo.records
                for known in self.known.values():  # nothing kept of records gone everywhere
                    for key in [k for k in known if k not in records]:
                        del known[key]
            except Exception:
                log.exception("rlink %s: pruning the link state", self.id)

    async def _transit_up(self) -> None:
        """What passes events and calls on to routers beyond: on each router, the leg subscribes
        to the events in transit for the other router and registers its calls in transit."""
        here, there = self.ids["local"], self.ids["remote"]
        if here is None or there is None:
            return
        await self._transit_down("local")
        self._transit["remote"] = []
        # the other router gets what this link knows and it lacks (it gave its own at the join)
        self._put("remote", [rec for key, rec in self.topo.records.items()
                             if rec["seq"] > self.known["remote"].get(key, -1)])
        # (side whose leg takes them, the router they go to, events on?, calls on?)
        for side, to, events, calls in (
                ("local", there, self.fw["forward_remote_events"], self.fw["forward_remote_invocations"]),
                ("remote", here, self.fw["forward_local_events"], self.fw["forward_local_invocations"])):
            session = self._session(side)
            made = self._transit[side]
            try:
                if events:
                    made.append(("sub", await session.subscribe(
                        TRANSIT_EVENTS + to, self._transit_events(side, session), details=True)))
                if calls:
                    made.append(("reg", await session.register(
                        TRANSIT_CALLS + to, self._transit_calls(side, session), details=True, progress=True)))
            except ApplicationError as e:
                log.warning("rlink %s: cannot pass events and calls on through the %s router: %s", self.id,
                            side, e)
        self._link_record(True)

    def _transit_down(self, side: str):
        """Undo what this side's leg made for transit (what it made from now on is not touched)."""
        made, self._transit[side] = self._transit[side], []
        return self._undo(self._session(side), made)

    @staticmethod
    async def _undo(session, made) -> None:
        if session is None or not session.is_attached:
            return
        for kind, ident in made:
            try:
                await (session.unsubscribe(ident) if kind == "sub" else session.unregister(ident))
            except Exception:  # noqa: BLE001 (gone meanwhile)
                pass

    def send_transit(self, session, at: str, dest: list, path: list, topic, args, kwargs, options) -> None:
        """Publish an event bound for routers ``dest`` on router ``at`` (through ``session``, a leg
        there), one publication per next hop, for the legs there that lead on."""
        hops = self.topo.first_hops(at)
        groups: dict[str, list] = {}
        for r in dest:
            hop = hops.get(r)
            if hop is not None and hop not in path:
                groups.setdefault(hop, []).append(r)
        for hop, routers in groups.items():
            try:
                session.publish_payload(TRANSIT_EVENTS + hop, [topic, args, kwargs],
                                        {"dest": routers, "path": path, "options": options},
                                        {"forward_for": options["forward_for"]})
            except ApplicationError:
                continue

    def _transit_events(self, side: str, session):
        """Events in transit on this side's router for the other side's router."""
        other = self.other(side)

        def on_transit(*args, details, dest=None, path=None, options=None, **_):
            if "forward_for" not in details or len(args) < 3 or not isinstance(dest, list) \
                    or not isinstance(path, list) or len(path) >= MAX_HOPS or not isinstance(options, dict):
                return  # only legs publish there (the router sees to it); anything else is not ours
            peer = self._session(other)
            me = self.ids[other]
            if peer is None or not peer.is_attached or me is None or me in path:
                return
            topic, eargs, ekwargs = args[0], args[1], args[2]
            if me in dest:
                try:
                    peer.publish_payload(topic, eargs, ekwargs, options)
                except ApplicationError:
                    return
                self.forwarded_events += 1
            rest = [r for r in dest if r != me]
            if rest:
                self.send_transit(peer, me, rest, path + [me], topic, eargs, ekwargs, options)

        return on_transit

    def _transit_calls(self, side: str, session):
        """Calls in transit on this side's router for the other side's router."""
        other = self.other(side)

        async def call(*args, details, progress, **_):
            forward_for = details.get("forward_for")
            if not isinstance(forward_for, list) or len(args) < 4:
                raise ApplicationError("wamp.error.not_authorized", "for router links only")
            if len(forward_for) >= MAX_HOPS:
                raise ApplicationError("wamp.error.no_such_procedure", "too many router links on the way")
            peer = self._session(other)
            me = self.ids[other]
            if peer is None or not peer.is_attached or me is None:
                raise ApplicationError("wamp.error.no_such_procedure", f"router link {self.id} is down")
            procedure, target, cargs, ckwargs = args[0], args[1], args[2], args[3]
            leg = session.details or {}
            options = {"forward_for": forward_for + [{"session": session.session_id, "authid": leg.get("authid"),
                                                      "authrole": leg.get("authrole")}]}
            if details.get("timeout"):
                options["timeout"] = details["timeout"]
            self.forwarded_calls += 1
            if target == me:
                return await peer.call_payload(procedure, cargs or [], ckwargs, options, progress)
            hop = self.topo.first_hops(me).get(target)
            if hop is None or hop == self.ids[side]:
                raise ApplicationError("wamp.error.no_such_procedure",
                                       f"no route to the router of procedure '{procedure}'")
            return await peer.call_payload(TRANSIT_CALLS + hop, [procedure, target, cargs, ckwargs], None, options,
                                           progress)

        return call

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
            # multi-hop: this router's and the other's link ID (None: one hop), and the routers
            # reachable from here with their distance, first hop and how much they want
            "router": self.ids["local"],
            "peer": self.ids["remote"],
            "routers": self._reachable(),
        }

    def _reachable(self) -> dict:
        here = self.ids["local"]
        if here is None:
            return {}
        topo = self.topo
        first, dist = topo.first_hops(here), topo.hops(here)
        out = {}
        for r in topo.by_distance(here):
            rec = topo.router(r) or {}
            out[r] = {"hops": dist[r], "via": first[r], "subscriptions": len(rec.get("subs") or ()),
                      "registrations": len(rec.get("regs") or ())}
        return out


