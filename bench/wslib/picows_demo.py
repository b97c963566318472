"""picows recipe demo for the router's HTTP/WebSocket front door.

Server (``python picows_demo.py serve PORT``):

* non-upgrade GET (any path)      -> 200 text/html page naming the path
* upgrade on /ws                  -> 101 + ``Sec-WebSocket-Protocol`` chosen from
                                     the client's offer (client order), 400 if none
* upgrade on /flood               -> sends 64 KB frames until the transport says
                                     ``pause_writing`` (client is not reading), then
                                     waits for ``resume_writing``; logs buffer sizes
* Origin header and path are read from ``WSUpgradeRequest`` and logged

Client checks (``python picows_demo.py check PORT``): subprotocol header as
seen by a websockets client and by a picows client, and backpressure.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop
import picows
from picows import (WSListener, WSMsgType, WSUpgradeRequest, WSUpgradeResponse,
                    WSUpgradeResponseWithListener)

SUPPORTED = ("wamp.2.msgpack", "wamp.2.cbor", "wamp.2.json")


def log(*a):
    print("[server]", *a, flush=True)


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.BINARY, WSMsgType.TEXT):
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), fin=frame.fin)


class Flood(WSListener):
    """Writes until the transport crosses its high-water mark."""

    def on_ws_connected(self, transport):
        self.transport = transport
        self.paused = False
        ut = transport.underlying_transport
        log("flood: transport", type(ut).__module__ + "." + type(ut).__name__,
            "write_buffer_limits", ut.get_write_buffer_limits())
        chunk = b"\0" * 65536
        sent = 0
        # pause_writing() is called synchronously from inside the transport's
        # write once its buffer goes above the high-water mark
        while not self.paused and sent < 256 << 20:
            transport.send(WSMsgType.BINARY, chunk)
            sent += len(chunk)
        log(f"flood: stopped after {sent} B, paused={self.paused}, "
            f"get_write_buffer_size()={ut.get_write_buffer_size()}")

    def pause_writing(self):
        self.paused = True
        log("flood: pause_writing() called, buffer",
            self.transport.underlying_transport.get_write_buffer_size())

    def resume_writing(self):
        self.paused = False
        log("flood: resume_writing() called, buffer",
            self.transport.underlying_transport.get_write_buffer_size())
        self.transport.send_close(picows.WSCloseCode.OK)
        self.transport.disconnect()

    def on_ws_frame(self, transport, frame):
        pass


def listener_factory(request: WSUpgradeRequest):
    path = request.path.decode()            # bytes -> str, includes query string
    origin = request.headers.get("Origin")  # CIMultiDict[str], case-insensitive
    is_upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    log(f"{request.method.decode()} {path} upgrade={is_upgrade} origin={origin!r}")

    if not is_upgrade:
        body = f"<html><body><h1>wampfabric</h1><p>You asked for {path}</p></body></html>".encode()
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_ok_response(
                body, extra_headers={"Content-Type": "text/html; charset=utf-8"}),
            None)  # non-101: picows sends it with Connection: close and disconnects

    if path == "/flood":
        return Flood()  # plain listener -> standard 101, no subprotocol

    offered = [p.strip()
               for v in request.headers.getall("Sec-WebSocket-Protocol", [])
               for p in v.split(",") if p.strip()]
    chosen = next((p for p in offered if p in SUPPORTED), None)
    if chosen is None:
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_error_response(400, b"no supported subprotocol"), None)
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": chosen}),
        Echo())


async def serve(port: int):
    server = await picows.ws_create_server(
        listener_factory, "127.0.0.1", port,
        max_frame_size=16 << 20,
        enable_auto_ping=True, auto_ping_idle_timeout=10, auto_ping_reply_timeout=10)
    log("listening on", port)
    async with server:
        await server.serve_forever()


async def check(port: int):
    # 1) websockets client asks for two subprotocols
    from websockets.asyncio.client import connect
    async with connect(f"ws://127.0.0.1:{port}/ws",
                       subprotocols=["wamp.2.cbor", "wamp.2.msgpack"]) as ws:
        print("websockets client: negotiated subprotocol =", ws.subprotocol,
              "| response header =", ws.response.headers.get("Sec-WebSocket-Protocol"))
        await ws.send(b"\x93\x01\x02\x03")
        print("websockets client: echo =", await ws.recv())

    # 2) picows client: request header via extra_headers, read it back
    class C(WSListener):
        pass
    tr, _ = await picows.ws_connect(
        C, f"ws://127.0.0.1:{port}/ws",
        extra_headers={"Sec-WebSocket-Protocol": "wamp.2.json",
                       "Origin": "https://app.example"})
    print("picows client: response status =", tr.response.status.value,
          "| Sec-WebSocket-Protocol =", tr.response.headers.get("Sec-WebSocket-Protocol"))
    tr.disconnect()

    # 3) backpressure: connect to /flood and stop reading for a second
    class Slow(WSListener):
        def on_ws_connected(self, transport):
            transport.underlying_transport.pause_reading()
            asyncio.get_running_loop().call_later(
                1.0, transport.underlying_transport.resume_reading)

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    tr, _ = await picows.ws_connect(Slow, f"ws://127.0.0.1:{port}/flood")
    await asyncio.wait_for(tr.wait_disconnected(), 10)
    print("picows client: /flood finished")


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    uvloop.run(serve(port) if mode == "serve" else check(port))
