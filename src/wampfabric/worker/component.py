"""Application components hosted by container workers (and router workers).

A component config (Crossbar.io format)::

    {"type": "class", "classname": "pkg.mod.MySession", "realm": "realm1",
     "extra": {...}, "transport": {"type": "websocket", "url": "ws://127.0.0.1:8080/ws",
                                   "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": 8080},
                                   "serializers": ["cbor", "msgpack", "json"]}}

- ``class``: a subclass of autobahn-python's ``ApplicationSession``, asyncio
  flavour, or Twisted flavour when Twisted is installed (the container then
  runs Twisted's asyncio reactor on its own event loop);
- ``function``: ``"callbacks": {"join": "pkg.mod.on_join", "leave": ...}``,
  callables given the (asyncio) session: ``on_join(session, details)``.

Container components connect to a router over ``websocket`` or ``rawsocket``
(``tcp`` or ``unix`` endpoint).  Router components (no ``transport``)
attach to their own router in-process.

``ComponentRunner`` runs one component: ``start()`` returns once the session
has joined (and ``onJoin`` completed) or raises ``crossbar.error.cannot_start``;
when the session is gone it calls ``on_exit(runner)`` with ``runner.failed``
telling whether that was a failure (``onJoin`` raised, the connection failed
or was lost, or the session was closed with a reason other than a normal
goodbye) -- restart policies act on that.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import time

from ..client.session import ApplicationError
from ..common.timefmt import utcstr
from ..protocol import errors as E
from ..protocol.crossbar_errors import CANNOT_START, CLASS_IMPORT_FAILED, INVALID_CONFIGURATION

log = logging.getLogger("wampfabric.worker.component")

CLEAN_REASONS = (E.CLOSE_NORMAL, E.GOODBYE_AND_OUT)

JOIN_TIMEOUT = 30.0


def _import(qualname: str, what: str):
    modname, _, attr = qualname.rpartition(".")
    if not modname:
        raise ApplicationError(INVALID_CONFIGURATION,
                               f"{what} '{qualname}' must be a qualified name (module.attribute)")
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "twisted":  # a Twisted-flavoured component
            raise ApplicationError(CLASS_IMPORT_FAILED, f"{what} '{qualname}' needs Twisted, which is not installed: "
                                   f"pip install 'wampfabric[twisted]'") from None
        raise ApplicationError(CLASS_IMPORT_FAILED,
                               f"cannot import module '{modname}' for {what} '{qualname}': {type(e).__name__}: {e}") from None
    except Exception as e:
        raise ApplicationError(CLASS_IMPORT_FAILED,
                               f"cannot import module '{modname}' for {what} '{qualname}': {type(e).__name__}: {e}") from None
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ApplicationError(CLASS_IMPORT_FAILED, f"module '{modname}' has no attribute '{attr}'") from None


def add_pythonpath(paths, cbdir) -> None:
    for p in reversed(paths or []):
        p = os.path.abspath(os.path.join(cbdir, p))
        if p not in sys.path:
            sys.path.insert(0, p)


def is_twisted_class(cls) -> bool:
    return any(c.__module__.startswith("autobahn.twisted") for c in getattr(cls, "__mro__", ()))


def component_flavour(config: dict) -> str:
    """``twisted`` or ``asyncio`` (imports the component class)."""
    if config["type"] == "class":
        return "twisted" if is_twisted_class(_import(config["classname"], "class")) else "asyncio"
    return "asyncio"


def make_session_factory(config: dict):
    """Return ``(make(ComponentConfig) -> session, flavour)`` for a component config."""
    kind = config["type"]
    if kind == "class":
        cls = _import(config["classname"], "class")
        if not isinstance(cls, type) or not hasattr(cls, "onJoin"):
            raise ApplicationError(INVALID_CONFIGURATION,
                                   f"'{config['classname']}' is not an ApplicationSession class")
        return cls, ("twisted" if is_twisted_class(cls) else "asyncio")
    if kind == "function":
        from autobahn.asyncio.wamp import ApplicationSession

        callbacks = {ev: _import(name, f"{ev} callback") for ev, name in config.get("callbacks", {}).items()}

        def make(cfg):
            s = ApplicationSession(cfg)
            for ev, fn in callbacks.items():
                s.on(ev, fn)
            return s

        return make, "asyncio"
    raise ApplicationError(INVALID_CONFIGURATION, f"invalid component type '{kind}'")


def _serializers(names, flavour: str):
    from autobahn.wamp import serializer as S

    table = {"json": getattr(S, "JsonSerializer", None), "msgpack": getattr(S, "MsgPackSerializer", None),
             "cbor": getattr(S, "CBORSerializer", None)}
    out = [table[n]() for n in (names or ["cbor", "msgpack", "json"]) if table.get(n) is not None]
    return out or None


# -- connectors: async connect(create) where create() makes the session -------------------------

def client_connector(config: dict, cbdir: str, flavour: str):
    """Connect a container component through its configured transport."""
    tcfg = config["transport"]
    ep = tcfg["endpoint"]
    kind = tcfg["type"]
    names = tcfg.get("serializers") or ([tcfg["serializer"]] if tcfg.get("serializer") else None)
    path = os.path.join(cbdir, ep["path"]) if ep["type"] == "unix" else None
    host = ep.get("host", "127.0.0.1")
    port = ep.get("port")
    url = tcfg.get("url") or (f"ws://{host}:{port}/" if port else "ws://localhost/")

    if flavour == "twisted":
        async def connect(create):
            from twisted.internet import reactor
            from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint

            if kind == "websocket":
                from autobahn.twisted.websocket import WampWebSocketClientFactory

                factory = WampWebSocketClientFactory(create, url=url, serializers=_serializers(names, flavour))
            else:
                from autobahn.twisted.rawsocket import WampRawSocketClientFactory

                sers = _serializers(names, flavour)
                factory = WampRawSocketClientFactory(create, serializer=sers[0] if sers else None)
            endpoint = (UNIXClientEndpoint(reactor, path) if path else
                        TCP4ClientEndpoint(reactor, host, port, timeout=ep.get("timeout", 10)))
            proto = await endpoint.connect(factory).asFuture(asyncio.get_running_loop())
            return proto.transport
        return connect

    async def connect(create):
        loop = asyncio.get_running_loop()
        if kind == "websocket":
            from autobahn.asyncio.websocket import WampWebSocketClientFactory

            factory = WampWebSocketClientFactory(create, url=url, serializers=_serializers(names, flavour))
        else:
            from autobahn.asyncio.rawsocket import WampRawSocketClientFactory

            sers = _serializers(names, flavour)
            factory = WampRawSocketClientFactory(create, serializer=sers[0] if sers else None)
        if path:
            transport, _ = await loop.create_unix_connection(factory, path)
        else:
            transport, _ = await asyncio.wait_for(loop.create_connection(factory, host, port),
                                                  ep.get("timeout", 10))
        return transport
    return connect


class AutobahnLocalTransport:
    """An autobahn ``ITransport`` attached straight to a router (router components).

    Messages are serialized with msgpack between the two sides (router
    components are off the hot path), and router -> component delivery is
    deferred to the end of the loop turn like every other transport's."""

    def __init__(self, router, session, auth_config: dict, peer: str = "component"):
        from autobahn.wamp.serializer import MsgPackSerializer
        from autobahn.wamp.types import TransportDetails

        from ..protocol.serializers import create_serializer
        from ..router.session import RouterSession

        self._ab_serializer = MsgPackSerializer()
        self._serializer = self._ab_serializer
        self.serializer = create_serializer("msgpack")  # router side
        self.auth_config = auth_config
        self.peer = peer
        self.transport_details = TransportDetails(peer=peer)
        self.session = session
        self.is_closed = False
        self._queue: list = []
        self._loop = asyncio.get_running_loop()
        self.router_session = RouterSession(router, self)

    # component side (autobahn ITransport)
    def send(self, msg) -> None:
        if isinstance(msg, (bytes, bytearray)):  # router side: RouterSession -> component
            if self.is_closed:
                return
            if not self._queue:
                self._loop.call_soon(self._deliver)
            self._queue.append(bytes(msg))
            return
        if self.is_closed:
            return
        payload, _ = self._ab_serializer.serialize(msg)
        self.router_session.on_message(payload)

    def _deliver(self) -> None:
        queue, self._queue = self._queue, []
        for data in queue:
            if self.is_closed:
                return
            for m in self._ab_serializer.unserialize(data, True):
                self.session.onMessage(m)

    def isOpen(self) -> bool:
        return not self.is_closed

    def close(self) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        self._loop.call_soon(self._closed)

    abort = close

    def _closed(self) -> None:
        self.router_session.on_close()
        self.session.onClose(True)

    def get_channel_id(self, channel_id_type=None):
        return None


def router_connector(router, config: dict):
    role = config.get("role", "trusted")

    async def connect(create):
        session = create()
        t = AutobahnLocalTransport(router, session, {"anonymous": {"type": "static", "role": role}},
                                   peer=f"component:{config.get('id', '?')}")
        session.onOpen(t)
        return t
    return connect


class ComponentRunner:
    """One running component session (see module docstring)."""

    def __init__(self, component_id: str, config: dict, cbdir: str, connector, on_exit=None,
                 make=None, flavour: str | None = None):
        self.id = component_id
        self.config = config
        self.cbdir = cbdir
        self.connector = connector
        self.on_exit = on_exit
        self._make = make
        self.flavour = flavour
        self.session = None
        self.transport = None
        self.created = time.time()
        self.started = None
        self.status = "starting"
        self.failed = False
        self.error: str | None = None
        self._stop_requested = False
        self._leave_reason: str | None = None
        self._own_leave: tuple | None = None
        self._joined: asyncio.Future | None = None
        self._gone: asyncio.Future | None = None

    def marshal(self) -> dict:
        now = time.time()
        return {"id": self.id, "status": self.status, "started": utcstr(self.started),
                "uptime": (now - self.started) if self.started else None, "config": self.config,
                "failed": self.failed, "error": self.error}

    async def start(self) -> None:
        import txaio
        from autobahn.wamp.types import ComponentConfig

        loop = asyncio.get_running_loop()
        self._joined = loop.create_future()
        self._gone = loop.create_future()
        if self._make is None:
            self._make, self.flavour = make_session_factory(self.config)
        make = self._make
        realm = self.config["realm"]
        extra = self.config.get("extra")

        def create(*_):
            session = make(ComponentConfig(realm=realm, extra=extra))
            self.session = session
            orig_on_join = session.onJoin

            def on_join(details):
                d = txaio.as_future(orig_on_join, details)

                def ok(res):
                    self._on_ready()
                    return res

                def err(fail):
                    e = getattr(fail, "value", fail)
                    self._fail(f"onJoin raised {type(e).__name__}: {e}")
                    log.error("component '%s': onJoin failed: %s: %s", self.id, type(e).__name__, e)
                    try:
                        session.leave("wamp.error.runtime_error", f"onJoin failed: {e}")
                    except Exception:
                        pass
                    return None

                txaio.add_callbacks(d, ok, err)
                return d

            session.onJoin = on_join
            orig_leave = session.leave

            def leave(reason=None, message=None):
                # the component's own reason counts (the router answers any GOODBYE with a normal one)
                if self._own_leave is None:
                    self._own_leave = (reason or "wamp.close.normal", message)
                return orig_leave(reason, message)

            session.leave = leave
            session.on("leave", self._on_leave)
            session.on("disconnect", self._on_disconnect)
            return session

        try:
            self.transport = await self.connector(create)
        except ApplicationError:
            raise
        except Exception as e:
            self._fail(f"cannot connect: {type(e).__name__}: {e}")
            self.status = "failed"
            raise ApplicationError(CANNOT_START, f"component '{self.id}': {self.error}") from None
        deadline = loop.time() + JOIN_TIMEOUT
        while not self._joined.done():
            # the connection may close before any session exists (e.g. a refused handshake)
            await asyncio.wait([self._joined], timeout=0.1)
            if self._joined.done():
                break
            if self._transport_closed() and self.session is None or loop.time() > deadline:
                self._fail(self.error or ("the connection closed before the session opened"
                                          if loop.time() <= deadline else f"did not join within {JOIN_TIMEOUT}s"))
                self.status = "failed"
                self._close_transport()
                raise ApplicationError(CANNOT_START, f"component '{self.id}': {self.error}")
        self._joined.result()

    def _transport_closed(self) -> bool:
        t = self.transport
        if t is None:
            return False
        is_closing = getattr(t, "is_closing", None)
        if callable(is_closing):
            return is_closing()
        return getattr(t, "disconnected", False) or getattr(t, "connected", 1) == 0

    def _fail(self, error: str) -> None:
        if not self.failed:
            self.failed = True
            self.error = error

    def _on_ready(self) -> None:
        if self.failed:
            return
        self.status = "started"
        self.started = time.time()
        log.info("Component '%s' started (%s, realm '%s')", self.id,
                 self.config.get("classname") or "function", self.config["realm"])
        if not self._joined.done():
            self._joined.set_result(None)

    def _on_leave(self, session, details) -> None:
        reason, message = self._own_leave or (getattr(details, "reason", None), getattr(details, "message", None))
        self._leave_reason = reason
        if reason not in CLEAN_REASONS and not self._stop_requested:
            self._fail(f"session closed: {reason} {message or ''}".strip())

    def _on_disconnect(self, session, was_clean=None, **_) -> None:
        if self.status == "starting" and not self._stop_requested:
            self._fail(self.error or f"disconnected before joining ({self._leave_reason or 'connection lost'})")
        elif self._leave_reason is None and not self._stop_requested:
            self._fail("connection lost")
        self.status = "failed" if self.failed else "stopped"
        if self._joined is not None and not self._joined.done():
            self._joined.set_exception(ApplicationError(CANNOT_START, f"component '{self.id}': {self.error}"))
            self._joined.exception()  # retrieved: no "never retrieved" warning
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
            log.info("Component '%s' %s%s", self.id, self.status, f" ({self.error})" if self.error else "")
            if self.on_exit is not None and not self._stop_requested:
                try:
                    self.on_exit(self)
                except Exception:
                    log.exception("component exit handler failed")

    def _close_transport(self) -> None:
        t = self.transport
        if t is None:
            return
        for name in ("close", "loseConnection", "abort"):
            fn = getattr(t, name, None)
            if fn is not None:
                try:
                    fn()
                except Exception:
                    pass
                return

    async def stop(self, timeout: float = 5.0) -> None:
        self._stop_requested = True
        s = self.session
        if s is not None and self._gone is not None and not self._gone.done():
            try:
                if s.is_attached():
                    s.leave()
                else:
                    self._close_transport()
            except Exception:
                self._close_transport()
            try:
                await asyncio.wait_for(asyncio.shield(self._gone), timeout)
            except asyncio.TimeoutError:
                self._close_transport()
        self.status = "stopped"
