"""Connecting a ``ClientSession`` to a router: where (a URL or a Crossbar.io connecting
transport config), once (``connect``), or for as long as wanted (``Client``: reconnects
with a bounded, jittered backoff and calls hooks on join and leave, so that an uplink can
resynchronise its registrations and subscriptions).

Transports, as a URL::

    ws://host:port/path   wss://...          WebSocket (TLS)
    rs://host:port        rss://host:port    RawSocket over TCP (TLS)
    unix:/path/to/socket                     RawSocket over a Unix socket

or as a Crossbar.io connecting transport (the ``transport`` of a container component,
an rlink, ``controller.fabric.transport``)::

    {"type": "websocket", "url": "ws://localhost:8080/ws", "serializers": ["cbor"],
     "endpoint": {"type": "tcp", "host": "localhost", "port": 8080,
                  "tls": {"hostname": "localhost", "ca_certificates": ["ca.pem"]}}}
    {"type": "rawsocket", "serializer": "cbor", "endpoint": {"type": "unix", "path": "router.sock"}}
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl as ssl_module
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from ..protocol.rawsocket import MAX_FRAME_LENGTH
from .rawsocket import open_rawsocket
from .session import ApplicationError, ClientSession
from .tls import client_tls_context
from .websocket import DEFAULT_MAX_MESSAGE_SIZE, open_websocket

log = logging.getLogger("wampfabric.client")

DEFAULT_SERIALIZERS = ("cbor", "msgpack", "json")
DEFAULT_TIMEOUT = 10.0


class TransportConfigError(ValueError):
    """A transport URL or config this client cannot use."""


@dataclass
class TransportSpec:
    """Where and how to connect, normalized from a URL or a Crossbar.io transport config."""

    kind: str  # "websocket" | "rawsocket"
    host: str | None = None
    port: int | None = None
    path: str | None = None  # Unix socket
    url: str | None = None  # WebSocket URL (Host header and resource)
    ssl: ssl_module.SSLContext | None = None
    server_hostname: str | None = None
    serializers: list = field(default_factory=lambda: list(DEFAULT_SERIALIZERS))
    max_message_size: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    auto_ping_interval: float | None = None  # seconds of silence from the peer before a ping (None: no pings)
    auto_ping_timeout: float = 10.0  # seconds to wait for the pong before the connection is dropped
    # TCP: a vanished peer host is dropped by the kernel within about this many seconds (client/tcp.py)
    tcp_timeout: float | None = None

    def describe(self) -> str:
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"{self.kind} {self.url or where}{' (TLS)' if self.ssl else ''}"


def _serializer_list(value, where: str) -> list:
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if name not in DEFAULT_SERIALIZERS:
            raise TransportConfigError(f"{where}: unknown serializer {name!r} (one of: {', '.join(DEFAULT_SERIALIZERS)})")
    if not names:
        raise TransportConfigError(f"{where}: no serializer")
    return names


def _from_url(url: str, serializers, ssl) -> TransportSpec:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        if not parts.path:
            raise TransportConfigError(f"{url}: no socket path")
        return TransportSpec("rawsocket", path=parts.path, serializers=serializers)
    if scheme not in ("ws", "wss", "rs", "rss"):
        raise TransportConfigError(f"{url}: unknown scheme {scheme!r} (ws, wss, rs, rss, unix)")
    secure = scheme in ("wss", "rss")
    try:
        port = parts.port
    except ValueError as e:
        raise TransportConfigError(f"{url}: {e}") from None
    if not parts.hostname:
        raise TransportConfigError(f"{url}: no host")
    if scheme in ("rs", "rss") and port is None:
        raise TransportConfigError(f"{url}: a RawSocket URL needs a port")
    spec = TransportSpec("websocket" if scheme in ("ws", "wss") else "rawsocket", host=parts.hostname,
                         port=port or (443 if secure else 80), serializers=serializers)
    if spec.kind == "websocket":
        spec.url = url
    if secure:
        spec.ssl = ssl or client_tls_context()
    return spec


def _from_config(config: dict, serializers, ssl, cbdir) -> TransportSpec:
    kind = config.get("type")
    if kind not in ("websocket", "rawsocket"):
        raise TransportConfigError(f"transport type {kind!r} (one of: websocket, rawsocket)")
    ep = config.get("endpoint")
    if not isinstance(ep, dict):
        raise TransportConfigError("transport without an 'endpoint'")
    spec = TransportSpec(kind)
    if "serializers" in config or "serializer" in config:
        spec.serializers = _serializer_list(config.get("serializers") or config.get("serializer"), "transport")
    if serializers:
        spec.serializers = serializers
    if ep.get("type") == "tcp":
        spec.host, spec.port = ep.get("host", "127.0.0.1"), ep.get("port")
        if not isinstance(spec.port, int):
            raise TransportConfigError("tcp endpoint without a port")
        if "tls" in ep or ssl is not None:
            spec.ssl = ssl or client_tls_context(ep.get("tls"), cbdir)
            spec.server_hostname = (ep.get("tls") or {}).get("hostname")
    elif ep.get("type") == "unix":
        spec.path = os.path.join(cbdir, ep["path"]) if "path" in ep else None
        if not spec.path:
            raise TransportConfigError("unix endpoint without a path")
    else:
        raise TransportConfigError(f"endpoint type {ep.get('type')!r} (one of: tcp, unix)")
    if "timeout" in ep:
        spec.timeout = float(ep["timeout"])
    options = config.get("options") or {}
    if "max_message_size" in options:
        spec.max_message_size = int(options["max_message_size"])
    if kind == "websocket":
        scheme = "wss" if spec.ssl else "ws"
        spec.url = config.get("url") or (f"{scheme}://{spec.host}:{spec.port}/" if spec.host else f"{scheme}://localhost/")
    # milliseconds, as Crossbar.io's WebSocket options; on RawSocket they send PING frames (the spec's,
    # which Crossbar.io's RawSocket does not answer: leave them off towards it)
    for key in ("auto_ping_interval", "auto_ping_timeout", "tcp_timeout"):
        value = options.get(key)
        if value is None or value == 0:  # 0: not set (off; a link's defaults apply)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise TransportConfigError(f"options.{key} must be a number of milliseconds, not {value!r}")
        setattr(spec, key, value / 1000.0)
    return spec


def transport_spec(transport, *, serializers=None, ssl=None, cbdir: str | os.PathLike = ".") -> TransportSpec:
    """A ``TransportSpec`` from a URL, a Crossbar.io connecting transport config, or a spec."""
    if isinstance(transport, TransportSpec):
        return transport
    serializers = _serializer_list(serializers, "serializers") if serializers else None
    if isinstance(transport, str):
        return _from_url(transport, serializers or list(DEFAULT_SERIALIZERS), ssl)
    if isinstance(transport, dict):
        return _from_config(transport, serializers, ssl, cbdir)
    raise TransportConfigError(f"a transport is a URL or a config dict, not {type(transport).__name__}")


async def open_transport(client: ClientSession, spec: TransportSpec):
    """Connect ``spec`` and attach ``client`` (not yet joined)."""
    if spec.kind == "websocket":
        return await open_websocket(client, spec.url, serializers=spec.serializers, path=spec.path, ssl=spec.ssl,
                                    server_hostname=spec.server_hostname, timeout=spec.timeout,
                                    max_message_size=spec.max_message_size or DEFAULT_MAX_MESSAGE_SIZE,
                                    auto_ping_interval=spec.auto_ping_interval,
                                    auto_ping_timeout=spec.auto_ping_timeout, tcp_timeout=spec.tcp_timeout)
    return await open_rawsocket(client, path=spec.path, host=spec.host, port=spec.port,
                                serializer=spec.serializers[0], ssl=spec.ssl, server_hostname=spec.server_hostname,
                                max_message_size=spec.max_message_size or MAX_FRAME_LENGTH, timeout=spec.timeout,
                                auto_ping_interval=spec.auto_ping_interval, auto_ping_timeout=spec.auto_ping_timeout,
                                tcp_timeout=spec.tcp_timeout)


async def connect(transport, realm: str | None, *, auth=None, authid: str | None = None,
                  authrole: str | None = None, authextra: dict | None = None, serializers=None, ssl=None,
                  cbdir: str | os.PathLike = ".", timeout: float | None = None) -> ClientSession:
    """Connect and join ``realm`` (None: the router's default, as fabric nodes do); returns
    the joined session, raises ``ApplicationError`` (ABORT) or ``OSError``/``ConnectionError``."""
    spec = transport_spec(transport, serializers=serializers, ssl=ssl, cbdir=cbdir)
    timeout = spec.timeout if timeout is None else timeout
    client = ClientSession()
    await asyncio.wait_for(open_transport(client, spec), timeout)
    try:
        await asyncio.wait_for(client.join(realm, authid=authid, authrole=authrole, authextra=authextra, auth=auth),
                               timeout)
    except BaseException:
        client._lost("join failed")
        raise
    return client


class Backoff:
    """Delays between connection attempts: ``initial * factor**(n-1)`` for the n-th retry,
    at most ``maximum`` seconds, each shortened by a random part of up to ``jitter`` (0..1)
    so that many clients of one router do not come back in step; ``max_attempts`` failed
    attempts in a row end the retrying (None: never)."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0, jitter: float = 0.5,
                 max_attempts: int | None = None):
        if not (initial > 0 and maximum >= initial and factor >= 1 and 0 <= jitter <= 1):
            raise ValueError("backoff needs initial > 0, maximum >= initial, factor >= 1, 0 <= jitter <= 1")
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self.max_attempts = max_attempts

    def delay(self, attempt: int) -> float:
        d = min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        return d * (1.0 - self.jitter * random.random())


Hook = Callable[..., "Awaitable[None] | None"]


class Client:
    """A session that stays up: connects, joins, and after a lost connection (or a failed
    attempt) tries again after ``backoff``, until ``close()``.

    ``on_join(session, details)`` runs after every join (register and subscribe there: a new
    session has none of the old one's), ``on_leave(session, reason)`` after every loss,
    ``on_failure(exception, attempt, delay)`` after a failed attempt or a lost session (return
    False to stop retrying).  Hooks may be coroutine functions.  ``await client.session()``
    gives the current joined session, waiting for one if needed.  ``log_retries=False``: the
    client logs no line per retry (the ``on_failure`` hook says what the user needs to know)."""

    def __init__(self, transport, realm: str | None, *, auth=None, authid: str | None = None,
                 authrole: str | None = None, authextra: dict | None = None, serializers=None, ssl=None,
                 cbdir: str | os.PathLike = ".", backoff: Backoff | None = None, on_join: Hook | None = None,
                 on_leave: Hook | None = None, on_failure: Hook | None = None, timeout: float | None = None,
                 log_retries: bool = True):
        self.spec = transport_spec(transport, serializers=serializers, ssl=ssl, cbdir=cbdir)
        self.realm = realm
        self._join = {"auth": auth, "authid": authid, "authrole": authrole, "authextra": authextra}
        self.backoff = backoff or Backoff()
        self.on_join, self.on_leave, self.on_failure = on_join, on_leave, on_failure
        self.timeout = self.spec.timeout if timeout is None else timeout
        self.log_retries = log_retries
        self.current: ClientSession | None = None
        self.attempts = 0  # failed attempts since the last join
        self.joins = 0
        self.last_error: BaseException | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> "Client":
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def session(self, timeout: float | None = None) -> ClientSession:
        """The joined session (waits for the next join while there is none)."""
        self.start()
        while True:
            if self.current is not None and self.current.is_attached:
                return self.current
            if self._task.done():
                raise ConnectionError(f"client stopped: {self.last_error or 'closed'}")
            waiter = asyncio.ensure_future(self._ready.wait())
            try:
                await asyncio.wait({waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if not self._ready.is_set() and not self._task.done():
                raise asyncio.TimeoutError("no session joined in time")

    async def close(self) -> None:
        """Leave and stop reconnecting."""
        self._closing.set()
        s = self.current
        if s is not None and s.is_attached:
            try:
                await s.leave()
            except Exception:
                pass
        if self._task is not None:
            if not self._task.done():
                self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    async def _hook(self, hook, *args):
        if hook is None:
            return None
        try:
            r = hook(*args)
            if asyncio.iscoroutine(r) or isinstance(r, asyncio.Future):
                r = await r
            return r
        except Exception:
            log.exception("client hook %s failed", getattr(hook, "__name__", hook))
            return None

    async def _run(self) -> None:
        while not self._closing.is_set():
            try:
                s = await connect(self.spec, self.realm, timeout=self.timeout, **self._join)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.attempts += 1
                self.last_error = e
                if not await self._retry(e):
                    return
                continue
            self.attempts = 0
            self.current = s
            self.joins += 1
            self._ready.set()
            await self._hook(self.on_join, s, s.details)
            await s.wait_closed()
            self._ready.clear()
            reason = s.close_reason[0] if s.close_reason else "closed"
            await self._hook(self.on_leave, s, reason)
            if not self._closing.is_set():  # a lost session is not a failed attempt: first delay again
                self.attempts = 0
                self.last_error = ConnectionError(f"session lost ({reason})")
                if not await self._retry(self.last_error, log_it=False):
                    return

    async def _retry(self, error: BaseException, log_it: bool = True) -> bool:
        """Wait before the next attempt; False: stop (closing, out of attempts, or the hook said so)."""
        if self.backoff.max_attempts is not None and self.attempts >= self.backoff.max_attempts:
            log.warning("giving up on %s after %d attempts: %s", self.spec.describe(), self.attempts,
                        _describe(error))
            return False
        delay = self.backoff.delay(self.attempts)
        if not self.log_retries:
            pass
        elif log_it:
            log.warning("cannot join %s on %s: %s; retrying in %.1f s", self.realm, self.spec.describe(),
                        _describe(error), delay)
        else:
            log.info("session on %s lost; reconnecting in %.1f s", self.spec.describe(), delay)
        if await self._hook(self.on_failure, error, self.attempts, delay) is False:
            return False
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
            return False
        except asyncio.TimeoutError:
            return True


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    if isinstance(e, ApplicationError):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
