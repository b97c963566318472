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
each write waiting while the client's socket buffer is full.  WebSocket upgrades are not proxied
(the front answers an upgrade request on a non-``websocket`` path with 404).
"""

from __future__ import annotations

import asyncio
import logging

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

    def _upstream_headers(self, request) -> list:
        headers = end_to_end(request.headers.items(), request.headers.get("connection", ""))
        out = [(k, v) for k, v in headers if k not in _SET_BY_CLIENT and not k.startswith("x-forwarded-")]
        peer = request.connection.transport.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) else ""
        prior = request.headers.get("x-forwarded-for")
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        out.append(("X-Forwarded-Proto", self.forwarded_proto or ("https" if request.is_secure else "http")))
        if "host" in request.headers:
            out.append(("X-Forwarded-Host", request.headers["host"]))
        port = self.forwarded_port
        if port is None:
            sock = request.connection.transport.get_extra_info("sockname")
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

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None and not session.closed:
            asyncio.ensure_future(session.close())
