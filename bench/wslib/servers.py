"""Minimal WebSocket echo servers, one per candidate library.

Every server behaves the same way, as a WAMP router's transport would:

* a WebSocket upgrade (any path) negotiates a subprotocol from SUBPROTOCOLS,
  choosing the first one in the *client's* order that the server supports;
  no match -> the upgrade is rejected with 400 (WAMP spec: a router must
  not speak an unrequested serializer);
* an upgrade carrying ``Origin: <DENIED_ORIGIN>`` is rejected with 403
  (stands in for an allowed-origins check, proves the header is readable
  before the handshake is accepted);
* a plain (non-upgrade) ``GET`` on the same port gets ``200`` with a small
  HTML page that names the requested path (info page / static files);
* each complete binary or text *message* is echoed back once (fragmented
  messages are reassembled first; for picows, which hands out frames, that
  is done here);
* messages larger than ``--max-size`` close the connection with 1009;
* ``--ping-interval`` > 0 turns on server-side keepalive pings, dropping a
  peer that does not answer within the same time (0 = off, as in the
  throughput benchmark).

Usage::

    python bench/wslib/servers.py {picows,picows-uvloop,websockets,aiohttp,wsproto} \
        [--host 127.0.0.1] [--port 9001] [--max-size 16777216] [--ping-interval 0]

Prints ``READY <pid> <port>`` on stdout once listening. Stop with SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import uvloop

SUBPROTOCOLS = ("wamp.2.msgpack", "wamp.2.cbor", "wamp.2.json")
DENIED_ORIGIN = "http://denied.example"


def pick_subprotocol(offered_header_values) -> str | None:
    """First subprotocol in client order that we support."""
    offered = []
    for value in offered_header_values:
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    for proto in offered:
        if proto in SUBPROTOCOLS:
            return proto
    return None


def info_page(path: str) -> bytes:
    return (
        "<!doctype html><html><head><title>wampfabric</title></head>"
        f"<body><h1>wampfabric bench server</h1><p>path: {path}</p></body></html>"
    ).encode()


# --------------------------------------------------------------------------
# picows: callback-based, frames (not messages) delivered to on_ws_frame
# --------------------------------------------------------------------------
async def run_picows(args, use_aiofastnet: bool | None):
    import picows
    from picows import (WSListener, WSMsgType, WSCloseCode, WSProtocolError,
                        WSUpgradeResponse, WSUpgradeResponseWithListener)

    BINARY = WSMsgType.BINARY
    TEXT = WSMsgType.TEXT
    CONT = WSMsgType.CONTINUATION
    CLOSE = WSMsgType.CLOSE
    max_size = args.max_size

    class EchoListener(WSListener):
        def __init__(self):
            super().__init__()
            self.frag_type = None
            self.frags = None
            self.frag_size = 0
            self.paused = False

        def on_ws_frame(self, transport, frame):
            t = frame.msg_type
            if t == BINARY or t == TEXT:
                if frame.fin:
                    # fast path: one-frame message, echo straight from the
                    # receive buffer (send() copies into picows' write buffer)
                    transport.send(t, frame.get_payload_as_memoryview())
                    return
                if self.frags is not None:
                    raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR,
                                          "new data frame inside a fragmented message")
                self.frag_type = t
                self.frags = [frame.get_payload_as_bytes()]
                self.frag_size = frame.payload_size
            elif t == CONT:
                if self.frags is None:
                    raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR,
                                          "unexpected continuation frame")
                self.frag_size += frame.payload_size
                if self.frag_size > max_size:
                    raise WSProtocolError(WSCloseCode.MESSAGE_TOO_BIG,
                                          "message too big")
                self.frags.append(frame.get_payload_as_bytes())
                if frame.fin:
                    msg = b"".join(self.frags)
                    self.frags = None
                    transport.send(self.frag_type, msg)
            elif t == CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            # PING is answered by picows itself (enable_auto_pong=True);
            # PONG for auto-ping is consumed by picows.

        # backpressure hooks: called by the underlying asyncio transport
        def pause_writing(self):
            self.paused = True

        def resume_writing(self):
            self.paused = False

    def listener_factory(request: picows.WSUpgradeRequest):
        headers = request.headers  # CIMultiDict[str]
        if headers.get("Upgrade", "").lower() != "websocket":
            # plain HTTP request on the same port -> 200 + HTML, then close
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_ok_response(
                    info_page(request.path.decode()),
                    extra_headers={"Content-Type": "text/html; charset=utf-8"}),
                None)
        if headers.get("Origin") == DENIED_ORIGIN:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(403, b"origin not allowed"), None)
        proto = pick_subprotocol(headers.getall("Sec-WebSocket-Protocol", []))
        if proto is None:
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(400, b"no supported WAMP subprotocol"), None)
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(
                extra_headers={"Sec-WebSocket-Protocol": proto}),
            EchoListener())

    kw = {}
    if args.ping_interval > 0:
        kw = dict(enable_auto_ping=True,
                  auto_ping_idle_timeout=args.ping_interval,
                  auto_ping_reply_timeout=args.ping_interval)
    server = await picows.ws_create_server(
        listener_factory, args.host, args.port,
        max_frame_size=args.max_size,
        use_aiofastnet=use_aiofastnet,
        **kw)
    return server


# --------------------------------------------------------------------------
# websockets (new asyncio implementation): coroutine per connection
# --------------------------------------------------------------------------
async def run_websockets(args):
    from http import HTTPStatus
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    def process_request(connection, request):
        if request.headers.get("Upgrade", "").lower() != "websocket":
            body = info_page(request.path)
            return Response(200, "OK", Headers([
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]), body)
        if request.headers.get("Origin") == DENIED_ORIGIN:
            return connection.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        if pick_subprotocol(request.headers.get_all("Sec-WebSocket-Protocol")) is None:
            return connection.respond(HTTPStatus.BAD_REQUEST, "no supported WAMP subprotocol\n")
        return None

    def select_subprotocol(connection, offered):
        for proto in offered:
            if proto in SUBPROTOCOLS:
                return proto
        return None

    async def handler(ws):
        async for msg in ws:
            await ws.send(msg)

    ping = args.ping_interval if args.ping_interval > 0 else None
    server = await serve(
        handler, args.host, args.port,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        subprotocols=list(SUBPROTOCOLS),
        max_size=args.max_size,
        ping_interval=ping, ping_timeout=ping,
        compression="deflate",  # the default; only used if the client offers it
    )
    return server


# --------------------------------------------------------------------------
# aiohttp: web.WebSocketResponse inside an aiohttp web app
# --------------------------------------------------------------------------
async def run_aiohttp(args):
    from aiohttp import web, WSMsgType

    async def handle(request: web.Request):
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(body=info_page(request.path),
                                content_type="text/html", charset="utf-8")
        if request.headers.get("Origin") == DENIED_ORIGIN:
            return web.Response(status=403, text="origin not allowed\n")
        if pick_subprotocol(request.headers.getall("Sec-WebSocket-Protocol", [])) is None:
            return web.Response(status=400, text="no supported WAMP subprotocol\n")
        ws = web.WebSocketResponse(
            protocols=SUBPROTOCOLS,  # aiohttp picks first client-offered one in this list
            max_msg_size=args.max_size,
            heartbeat=args.ping_interval if args.ping_interval > 0 else None,
            compress=True,
        )
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
        return ws

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    return runner


# --------------------------------------------------------------------------
# wsproto: sans-I/O state machine driven from an asyncio.Protocol
# --------------------------------------------------------------------------
async def run_wsproto(args):
    from wsproto import ConnectionType, WSConnection
    from wsproto.connection import ConnectionState
    from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection,
                                Message, Ping, Pong, RejectConnection, RejectData,
                                Request, TextMessage)
    from wsproto.extensions import PerMessageDeflate
    from wsproto.utilities import RemoteProtocolError

    max_size = args.max_size
    loop = asyncio.get_running_loop()
    ping_interval = args.ping_interval

    class WsprotoEcho(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.ws = WSConnection(ConnectionType.SERVER)
            self.parts = []
            self.size = 0
            self.paused = False
            self.ping_handle = None
            self.awaiting_pong = False

        def connection_lost(self, exc):
            if self.ping_handle is not None:
                self.ping_handle.cancel()

        # backpressure hooks (plain asyncio.Protocol)
        def pause_writing(self):
            self.paused = True

        def resume_writing(self):
            self.paused = False

        def _reject(self, status, body, content_type=b"text/plain"):
            ws = self.ws
            self.transport.write(ws.send(RejectConnection(
                status_code=status,
                headers=[(b"content-type", content_type),
                         (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")],
                has_body=True)) + ws.send(RejectData(data=body)))
            self.transport.close()

        def _ping_tick(self):
            # hand-rolled keepalive: wsproto has no timers
            if self.awaiting_pong:
                self.transport.abort()
                return
            self.awaiting_pong = True
            self.transport.write(self.ws.send(Ping(b"ka")))
            self.ping_handle = loop.call_later(ping_interval, self._ping_tick)

        def data_received(self, data):
            ws = self.ws
            try:
                ws.receive_data(data)
            except RemoteProtocolError:
                # not a valid upgrade: treat it as a plain HTTP GET
                self._plain_http(data)
                return
            out = []
            for ev in ws.events():
                if isinstance(ev, (BytesMessage, TextMessage)):
                    self.size += len(ev.data)
                    if self.size > max_size:
                        out.append(ws.send(CloseConnection(1009, "message too big")))
                        self.transport.write(b"".join(out))
                        self.transport.close()
                        return
                    if ev.message_finished:
                        if self.parts:
                            self.parts.append(ev.data)
                            payload = (b"" if isinstance(ev, BytesMessage) else "").join(self.parts)
                            self.parts = []
                        else:
                            payload = ev.data
                        self.size = 0
                        out.append(ws.send(Message(data=payload)))
                    else:
                        self.parts.append(ev.data)
                elif isinstance(ev, Request):
                    origin = None
                    # wsproto exposes Origin via Request.extra_headers
                    for k, v in ev.extra_headers:
                        if k.lower() == b"origin":
                            origin = v.decode()
                    if origin == DENIED_ORIGIN:
                        self._reject(403, b"origin not allowed")
                        return
                    proto = next((p for p in ev.subprotocols if p in SUBPROTOCOLS), None)
                    if proto is None:
                        self._reject(400, b"no supported WAMP subprotocol")
                        return
                    out.append(ws.send(AcceptConnection(
                        subprotocol=proto, extensions=[PerMessageDeflate()])))
                    if ping_interval > 0:
                        self.ping_handle = loop.call_later(ping_interval, self._ping_tick)
                elif isinstance(ev, Ping):
                    out.append(ws.send(ev.response()))
                elif isinstance(ev, Pong):
                    self.awaiting_pong = False
                elif isinstance(ev, CloseConnection):
                    if ws.state != ConnectionState.CLOSED:
                        out.append(ws.send(ev.response()))
                    self.transport.write(b"".join(out))
                    self.transport.close()
                    return
            if out:
                self.transport.write(b"".join(out))

        def _plain_http(self, first_chunk: bytes):
            # wsproto rejects non-upgrade requests with RemoteProtocolError; the
            # application has to answer such requests itself (h11 is available).
            line = first_chunk.split(b"\r\n", 1)[0].split()
            path = line[1].decode() if len(line) > 1 else "/"
            body = info_page(path)
            if ws_state_is_connecting(self.ws):
                try:
                    self._reject(200, body, b"text/html; charset=utf-8")
                    return
                except Exception:
                    pass
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            self.transport.close()

    def ws_state_is_connecting(ws):
        return ws.state == ConnectionState.CONNECTING

    server = await loop.create_server(WsprotoEcho, args.host, args.port)
    return server


async def main_async(args):
    if args.lib == "picows":
        server = await run_picows(args, None)  # default: aiofastnet if installed
    elif args.lib == "picows-uvloop":
        server = await run_picows(args, False)  # plain loop.create_server transport
    elif args.lib == "websockets":
        server = await run_websockets(args)
    elif args.lib == "aiohttp":
        server = await run_aiohttp(args)
    elif args.lib == "wsproto":
        server = await run_wsproto(args)
    else:
        raise SystemExit(f"unknown lib {args.lib}")

    print(f"READY {os.getpid()} {args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if hasattr(server, "cleanup"):
        await server.cleanup()
    else:
        server.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=["picows", "picows-uvloop", "websockets", "aiohttp", "wsproto"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--max-size", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--ping-interval", type=float, default=0.0)
    args = ap.parse_args()
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
