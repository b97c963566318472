"""``reverseproxy``: HTTP requests forwarded to an upstream HTTP server, the answer streamed back.

Config (Crossbar.io's shape): ``host``, ``port`` (default 80), ``path`` (the upstream path the
mount point maps to; default ''), ``forwarded_port`` and ``forwarded_proto`` (sent as
X-Forwarded-Port / X-Forwarded-Proto instead of the listening port's own).  wampfabric adds
``options``: ``timeout`` (seconds the upstream may take to answer and between blocks of its
body; default 30: 504 when exceeded before the answer, a cut connection after),
``connect_timeout`` (default 5: 502), ``max_connections`` (kept-alive pool size, default 100),
``max_body_size`` (request bodies, default 1 MiB: 413) and ``tls`` (https upstream).

Hop-by-hop headers (Connection and the headers it names, Keep-Alive, TE, Trailer,
Transfer-Encoding, Upgrade, Proxy-*) are dropped both ways; X-Forwarded-For (appended to),
X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Port are set; Host is the upstream's (as
Crossbar.io).  The upstream's body is passed as received (no decompression) block by block,
each write waiting while the client's socket buffer is full.

WebSocket upgrades are proxied: the front hands the connection over (``takeover``), the
upgrade request goes to the upstream on a connection of its own (hop-by-hop headers dropped
as above, ``Connection: Upgrade`` and ``Upgrade`` kept, X-Forwarded-* set), and once the
upstream answers 101 the bytes flow both ways as they come (each way pausing its reader
while the other side's socket buffer is full); when either side closes, both are closed.
An upstream that refuses the upgrade (any other status) has its answer passed to the client
with ``Connection: close``, and nothing more the client sends reaches the upstream.
Unreachable: 502; no answer within ``timeout``: 504.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from ..transport.web import WebService
from .mount import raw_rest, split_mount

log = logging.getLogger("wampfabric.web.proxy")

_TEXT = "text/plain; charset=utf-8"

HOP_BY_HOP = frozenset(("connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
                        "proxy-connection", "proxy-authenticate", "proxy-authorization"))

# request headers not forwarded as received: the proxy sets Host, aiohttp the body's length; the
# front has answered Expect: 100-continue already
_SET_BY_CLIENT = frozenset(("host", "content-length", "expect"))
# response headers the front writes itself
_SET_BY_FRONT = frozenset(("date", "server"))


def end_to_end(headers, connection: str) -> list:
    """``headers`` ((name, value) pairs) without the hop-by-hop ones: the fixed set, Proxy-*,
    and the names listed in ``connection`` (the Connection header's value)."""
    named = {t.strip().lower() for t in connection.split(",") if t.strip()}
    return [(k, v) for k, v in headers
            if (lk := k.lower()) not in HOP_BY_HOP and lk not in named and not lk.startswith("proxy-")]


class ReverseProxyWebService(WebService):
    """``reverseproxy``: forwards HTTP requests to ``host:port`` + ``path``."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        options = config.get("options", {})
        self.host = config["host"]
        self.port = int(config.get("port", 80))
        self.base = config.get("path", "").rstrip("/")
        self.scheme = "https" if options.get("tls") else "http"
        self.forwarded_port = config.get("forwarded_port")
        self.forwarded_proto = config.get("forwarded_proto")
        self.timeout = float(options.get("timeout", 30.0))
        self.connect_timeout = float(options.get("connect_timeout", 5.0))
        self.max_connections = int(options.get("max_connections", 100))
        self.max_body_size = options.get("max_body_size", WebService.max_body_size)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.origin = f"{self.scheme}://{host}:{self.port}"
        self.host_header = host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"
        self.session = None  # made on the first request, in the worker's loop
        self.tunnels: set = set()  # proxied WebSocket connections

    def _session(self):
        if self.session is None:
            import aiohttp  # here: a worker without a reverse proxy does not import it

            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=15.0,
                                             enable_cleanup_closed=True)
            self.session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout,
                                              sock_read=self.timeout))
        return self.session

    def handle(self, request, subpath: str):
        return self._forward(request, subpath)

    def _upstream_headers(self, request, transport=None) -> list:
        transport = transport or request.connection.transport
        headers = end_to_end(request.headers.items(), request.headers.get("connection", ""))
        out = [(k, v) for k, v in headers if k not in _SET_BY_CLIENT and not k.startswith("x-forwarded-")]
        peer = transport.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) else ""
        prior = request.headers.get("x-forwarded-for")
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        out.append(("X-Forwarded-Proto", self.forwarded_proto or ("https" if request.is_secure else "http")))
        if "host" in request.headers:
            out.append(("X-Forwarded-Host", request.headers["host"]))
        port = self.forwarded_port
        if port is None:
            sock = transport.get_extra_info("sockname")
            port = sock[1] if isinstance(sock, tuple) else None
        if port is not None:
            out.append(("X-Forwarded-Port", str(port)))
        out.append(("Host", self.host_header))
        return out

    async def _forward(self, request, subpath: str) -> None:
        import aiohttp
        from yarl import URL

        mount, _ = split_mount(request, subpath)
        target = (self.base.encode() + raw_rest(request, mount)) or b"/"
        if not target.startswith(b"/"):
            target = b"/" + target
        if request.query:
            target += b"?" + request.query.encode("latin-1")
        url = URL(self.origin + target.decode("latin-1"), encoded=True)
        body = request.body
        try:
            resp = await self._session().request(
                request.method, url, headers=self._upstream_headers(request),
                data=body if body or "content-length" in request.headers or "transfer-encoding" in request.headers
                else None,
                allow_redirects=False, compress=None)
        except aiohttp.ConnectionTimeoutError:
            return self._bad_gateway(request, f"connecting took longer than {self.connect_timeout:g} s")
        except asyncio.TimeoutError:
            log.warning("reverse proxy to %s: %s %r: the upstream did not answer within %g s", self.origin,
                        request.method, request.path, self.timeout)
            if not request.closed:
                request.respond(504, b"the upstream server did not answer in time\n", None, _TEXT)
            return
        except aiohttp.ClientError as e:
            return self._bad_gateway(request, f"{type(e).__name__}: {e}")
        request.add_close_callback(resp.close)  # the client went: so does the upstream connection
        try:
            await self._relay(request, resp)
        finally:
            resp.release()

    def _bad_gateway(self, request, why: str) -> None:
        log.warning("reverse proxy to %s: %s %r: %s", self.origin, request.method, request.path, why)
        if not request.closed:
            request.respond(502, b"bad gateway: the upstream server cannot be reached\n", None, _TEXT)

    async def _relay(self, request, resp) -> None:
        import aiohttp

        headers = end_to_end(((k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers),
                             resp.headers.get("Connection", ""))
        headers = [(k, v) for k, v in headers if k.lower() not in _SET_BY_FRONT]
        if request.closed:
            return
        no_body = request.head or resp.status in (204, 304) or resp.status < 200
        if no_body:
            # a HEAD answer's Content-Length describes the GET body: the front keeps it
            request.start_response(resp.status, headers)
            request.finish()
            return
        content = resp.content
        try:
            first = await content.readany()
            if content.at_eof() and "content-length" not in resp.headers:
                request.respond(resp.status, first, headers)
                return
            request.start_response(resp.status, headers)
            data = first
            while data:
                if request.closed:
                    return
                request.write(data)
                await request.drain()
                data = await content.readany()
        except (asyncio.TimeoutError, aiohttp.ClientError) as e:
            log.warning("reverse proxy to %s: %s %r: the upstream's answer broke off: %s: %s", self.origin,
                        request.method, request.path, type(e).__name__, e)
            if request.closed:
                return
            if not request.responded:
                request.respond(504 if isinstance(e, asyncio.TimeoutError) else 502,
                                b"the upstream server's answer broke off\n", None, _TEXT)
            else:
                request.connection.transport.abort()
            return
        if not request.closed:
            request.finish()

    # -- WebSocket upgrades: a byte pipe to the upstream ------------------------------------------

    def takeover(self, request, transport, tail: bytes) -> None:
        """The front hands over a WebSocket upgrade request's connection (reading paused)."""
        tunnel = _Tunnel(self, request, transport, tail)
        self.tunnels.add(tunnel)
        asyncio.ensure_future(tunnel.run())

    def _upgrade_head(self, request, transport) -> bytes:
        mount, _ = split_mount(request, request.subpath)
        target = (self.base.encode() + raw_rest(request, mount)) or b"/"
        if not target.startswith(b"/"):
            target = b"/" + target
        if request.query:
            target += b"?" + request.query.encode("latin-1")
        headers = self._upstream_headers(request, transport)
        headers += [("Connection", "Upgrade"), ("Upgrade", request.headers.get("upgrade", "websocket"))]
        lines = [b"GET %s HTTP/1.1\r\n" % target]
        lines += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers]
        lines.append(b"\r\n")
        return b"".join(lines)

    def close(self) -> None:
        for tunnel in list(self.tunnels):
            tunnel.close()
        session, self.session = self.session, None
        if session is not None and not session.closed:
            asyncio.ensure_future(session.close())


MAX_UPGRADE_HEAD = 64 * 1024  # the upstream's answer head to an upgrade request


def _plain(status: int, message: str) -> bytes:
    body = message.encode() + b"\n"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, {502: b"Bad Gateway", 504: b"Gateway Timeout"}[status],
                                                 len(body), body))


class _Side(asyncio.Protocol):
    """One connection of a tunnel (the client's or the upstream's)."""

    def __init__(self, tunnel: "_Tunnel", upstream: bool):
        self.tunnel = tunnel
        self.upstream = upstream
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.tunnel.received(self, data)

    def eof_received(self):
        self.tunnel.close()
        return False

    def connection_lost(self, exc) -> None:
        self.tunnel.close()

    # this side's socket buffer is full: the other side stops reading until it drains
    def pause_writing(self) -> None:
        self.tunnel.other(self).pause()

    def resume_writing(self) -> None:
        self.tunnel.other(self).resume()


class _Tunnel:
    """A WebSocket upgrade proxied to the upstream: the upgrade request, the upstream's answer
    head checked, then bytes both ways (state: 'connecting', 'head', 'open', 'refused', 'closed')."""

    def __init__(self, service: ReverseProxyWebService, request, transport, tail: bytes):
        self.service = service
        self.request = request
        self.tail = tail
        self.client = _Side(self, upstream=False)
        self.client.transport = transport
        self.upstream = _Side(self, upstream=True)
        self.state = "connecting"
        self.head = bytearray()
        self.left = None      # 'refused': body bytes still to pass on, if the upstream said how many
        self.timer = None
        self.client_paused = True  # the front hands the connection over with reading paused
        self.upstream_paused = False
        transport.set_protocol(self.client)

    def other(self, side: _Side) -> "_SideControl":
        return _SideControl(self, not side.upstream)

    async def run(self) -> None:
        try:
            await self.open()
        except Exception as e:  # a bug: a log line, and the client is not left hanging
            log.error("reverse proxy to %s: WebSocket %r: %s: %s", self.service.origin, self.request.path,
                      type(e).__name__, e)
            self._answer(502, "bad gateway")

    async def open(self) -> None:
        svc = self.service
        loop = asyncio.get_running_loop()
        kw = {}
        if svc.scheme == "https":
            kw = {"ssl": ssl.create_default_context(), "server_hostname": svc.host}
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self.upstream, svc.host, svc.port, **kw),
                                   svc.connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            why = f"connecting took longer than {svc.connect_timeout:g} s" if isinstance(e, asyncio.TimeoutError) \
                else f"{type(e).__name__}: {e}"
            log.warning("reverse proxy to %s: WebSocket %r: %s", svc.origin, self.request.path, why)
            self._answer(502, "bad gateway: the upstream server cannot be reached")
            return
        if self.state == "closed":  # the client went meanwhile
            self.upstream.transport.close()
            return
        self.state = "head"
        self.upstream.transport.write(svc._upgrade_head(self.request, self.client.transport))
        self.timer = loop.call_later(svc.timeout, self._head_timeout)

    def _head_timeout(self) -> None:
        self.timer = None
        if self.state == "head":
            log.warning("reverse proxy to %s: WebSocket %r: the upstream did not answer within %g s",
                        self.service.origin, self.request.path, self.service.timeout)
            self._answer(504, "the upstream server did not answer in time")

    def _answer(self, status: int, message: str) -> None:
        transport = self.client.transport
        if self.state != "closed" and not transport.is_closing():
            transport.write(_plain(status, message))
        self.close()

    def received(self, side: _Side, data: bytes) -> None:
        state = self.state
        if state == "open":
            dest = self.client.transport if side.upstream else self.upstream.transport
            if not dest.is_closing():
                dest.write(data)
        elif not side.upstream:
            return  # before the upgrade, or after a refusal: nothing of the client's goes on
        elif state == "head":
            self._head_received(data)
        elif state == "refused":
            self._pass_refusal(data)

    def _head_received(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_UPGRADE_HEAD:
                log.warning("reverse proxy to %s: WebSocket %r: the upstream's answer head is larger than %d bytes",
                            self.service.origin, self.request.path, MAX_UPGRADE_HEAD)
                self._answer(502, "bad gateway: the upstream's answer is not HTTP")
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        head, rest = bytes(self.head[:end]), bytes(self.head[end + 4:])
        self.head = bytearray()
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            log.warning("reverse proxy to %s: WebSocket %r: the upstream's answer is not HTTP: %r",
                        self.service.origin, self.request.path, lines[0][:100])
            self._answer(502, "bad gateway: the upstream's answer is not HTTP")
            return
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
        connection = next((v for k, v in headers if k.lower() == "connection"), "")
        kept = end_to_end(headers, connection)
        out = [lines[0] + b"\r\n"]
        if status == 101:
            kept += [("Connection", "Upgrade")] + [(k, v) for k, v in headers if k.lower() == "upgrade"]
        else:
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            chunked = any(k.lower() == "transfer-encoding" for k, v in headers)
            if length is not None and length.isdigit() and not chunked:
                self.left = int(length)
                kept.append(("Content-Length", length))
            elif status in (204, 304) or status < 200:
                self.left = 0
            elif chunked:
                kept.append(("Transfer-Encoding", "chunked"))
            kept.append(("Connection", "close"))
        out += [f"{k}: {v}\r\n".encode("latin-1") for k, v in kept]
        out.append(b"\r\n")
        self.client.transport.write(b"".join(out))
        if status == 101:
            self.state = "open"
            if rest:
                self.client.transport.write(rest)
            if self.tail:
                self.upstream.transport.write(self.tail)
            self.tail = b""
            self._resume_client()
        else:
            log.info("reverse proxy to %s: WebSocket %r refused by the upstream: %d", self.service.origin,
                     self.request.path, status)
            self.state = "refused"
            self._pass_refusal(rest)

    def _pass_refusal(self, data: bytes) -> None:
        """A refused upgrade's answer body: to the client, then both closed."""
        if self.left is not None:
            data = data[:self.left]
            self.left -= len(data)
        if data:
            self.client.transport.write(data)
        if self.left == 0:
            self.close()

    def _resume_client(self) -> None:
        if self.client_paused and not self.client.transport.is_closing():
            self.client_paused = False
            self.client.transport.resume_reading()

    def close(self) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()  # what is buffered for it still goes out first
        self.service.tunnels.discard(self)


class _SideControl:
    """Flow control of one side of a tunnel, as the other side sees it."""

    __slots__ = ("tunnel", "upstream")

    def __init__(self, tunnel: _Tunnel, upstream: bool):
        self.tunnel = tunnel
        self.upstream = upstream

    def pause(self) -> None:
        t = self.tunnel
        if self.upstream:
            if not t.upstream_paused and t.upstream.transport is not None:
                t.upstream_paused = True
                t.upstream.transport.pause_reading()
        elif not t.client_paused:
            t.client_paused = True
            t.client.transport.pause_reading()

    def resume(self) -> None:
        t = self.tunnel
        if t.state == "closed":
            return
        if self.upstream:
            if t.upstream_paused and t.upstream.transport is not None:
                t.upstream_paused = False
                t.upstream.transport.resume_reading()
        elif t.state == "open":
            t._resume_client()
