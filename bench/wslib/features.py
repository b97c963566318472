"""Feature checks against each echo server in servers.py.

Each server is started with ``--ping-interval 0.5 --max-size 1048576`` and
probed for what the router needs:

subprotocol   client offers "wamp.2.json, wamp.2.msgpack" -> response carries
              Sec-WebSocket-Protocol: wamp.2.json; offering none -> HTTP 400
http_get      plain GET /info on the same port -> 200 text/html naming the path
origin        Origin: http://denied.example -> 403 before the upgrade
fragmented    BINARY(fin=0) + CONT(fin=0) + CONT(fin=1) -> one echoed message
max_size      one 2 MiB frame -> closed (code reported); 2 x 600 KB fragments ->
              closed (reassembled size > limit)
auto_ping     client that never answers PING -> server pings and drops it
deflate       websockets client offering permessage-deflate -> negotiated?

    python bench/wslib/features.py [--libs "picows websockets aiohttp wsproto"]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

import uvloop
import picows
from picows import WSListener, WSMsgType

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Recorder(WSListener):
    def __init__(self):
        super().__init__()
        self.frames = []  # (type, fin, payload)
        self.close_code = None
        self.pings = 0
        self.disconnected_at = None
        self.got = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport, frame):
        t = frame.msg_type
        if t == WSMsgType.PING:
            self.pings += 1
            return
        if t == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        self.frames.append((t, frame.fin, frame.get_payload_as_bytes()))
        if frame.fin and not self.got.done():
            self.got.set_result(None)

    def on_ws_disconnected(self, transport):
        self.disconnected_at = time.monotonic()
        if not self.got.done():
            self.got.set_result(None)

    def message(self) -> bytes:
        return b"".join(p for _t, _f, p in self.frames)


async def connect(port, protocols="wamp.2.msgpack", origin=None, **kw):
    headers = {}
    if protocols:
        headers["Sec-WebSocket-Protocol"] = protocols
    if origin:
        headers["Origin"] = origin
    return await picows.ws_connect(Recorder, f"ws://127.0.0.1:{port}/ws",
                                   extra_headers=headers, max_frame_size=64 << 20, **kw)


async def check(lib: str, port: int) -> dict[str, str]:
    res = {}

    # subprotocol: client preference order, and reject when none offered
    tr, _ = await connect(port, "wamp.2.json, wamp.2.msgpack")
    got = tr.response.headers.get("Sec-WebSocket-Protocol")
    tr.disconnect()
    try:
        tr2, _ = await connect(port, None)
        tr2.disconnect()
        none = "accepted (no subprotocol)"
    except picows.WSHandshakeError as e:
        none = f"rejected {e.response.status.value if e.response else '?'}"
    res["subprotocol"] = f"{'OK' if got == 'wamp.2.json' else 'FAIL'}: chose {got}; none offered -> {none}"

    # plain HTTP GET on the same port
    def get():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=3) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    try:
        status, ctype, body = await asyncio.to_thread(get)
        ok = status == 200 and b"path: /info" in body
        res["http_get"] = f"{'OK' if ok else 'FAIL'}: {status} {ctype} {len(body)} B"
    except Exception as e:  # noqa: BLE001
        res["http_get"] = f"FAIL: {e!r}"

    # Origin check before upgrade
    try:
        tr, _ = await connect(port, origin="http://denied.example")
        tr.disconnect()
        res["origin"] = "FAIL: denied origin accepted"
    except picows.WSHandshakeError as e:
        st = e.response.status.value if e.response else None
        res["origin"] = f"{'OK' if st == 403 else 'FAIL'}: denied origin -> {st}"

    # fragmented message
    tr, lis = await connect(port)
    tr.send(WSMsgType.BINARY, b"abc", fin=False)
    tr.send(WSMsgType.CONTINUATION, b"def", fin=False)
    tr.send(WSMsgType.CONTINUATION, b"ghi", fin=True)
    await asyncio.wait_for(lis.got, 3)
    msg = lis.message()
    res["fragmented"] = (f"{'OK' if msg == b'abcdefghi' else 'FAIL'}: echoed {msg!r} "
                         f"in {len(lis.frames)} frame(s)")
    tr.disconnect()

    # max size: single big frame, and fragments adding up past the limit
    out = []
    for label, frames in (("2MiB frame", [(WSMsgType.BINARY, b"x" * (2 << 20), True)]),
                          ("2x600KB fragments", [(WSMsgType.BINARY, b"x" * 600_000, False),
                                                 (WSMsgType.CONTINUATION, b"x" * 600_000, True)])):
        tr, lis = await connect(port)
        for t, p, fin in frames:
            tr.send(t, p, fin=fin)
        try:
            await asyncio.wait_for(tr.wait_disconnected(), 3)
            code = lis.close_code.value if lis.close_code is not None else "no CLOSE frame"
            out.append(f"{label} -> closed ({code})")
        except asyncio.TimeoutError:
            out.append(f"{label} -> NOT closed (echoed {len(lis.message())} B)")
            tr.disconnect()
    res["max_size"] = ("OK: " if all("closed" in o and "NOT" not in o for o in out) else "FAIL: ") + "; ".join(out)

    # auto ping: a client that never answers PING must be dropped by the server
    t0 = time.monotonic()
    tr, lis = await connect(port, enable_auto_pong=False)
    try:
        await asyncio.wait_for(tr.wait_disconnected(), 5)
        dt = lis.disconnected_at - t0
        res["auto_ping"] = f"OK: {lis.pings} PING(s), dropped after {dt:.1f}s" + \
            (f" (close {lis.close_code.value})" if lis.close_code is not None else "")
    except asyncio.TimeoutError:
        res["auto_ping"] = f"FAIL: {lis.pings} PING(s), not dropped in 5s"
        tr.disconnect()

    # permessage-deflate offered by a websockets client
    from websockets.asyncio.client import connect as wsconnect
    async with wsconnect(f"ws://127.0.0.1:{port}/ws", subprotocols=["wamp.2.msgpack"],
                         compression="deflate", ping_interval=None) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        await ws.send(b"z" * 10_000)
        echo = await ws.recv()
        res["deflate"] = (f"{'negotiated' if ext else 'not negotiated'}: "
                          f"{ext or '-'}; echo {'OK' if echo == b'z' * 10_000 else 'FAIL'}")
    return res


async def run_one(lib: str) -> dict[str, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "servers.py"), lib, "--port", str(port),
         "--ping-interval", "0.5", "--max-size", str(1 << 20)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("READY"), line
        return await check(lib, port)
    finally:
        proc.terminate()
        proc.wait(5)


async def main(libs):
    import logging
    logging.basicConfig(level=logging.CRITICAL)
    results = {}
    for lib in libs:
        try:
            results[lib] = await run_one(lib)
        except Exception as e:  # noqa: BLE001
            results[lib] = {"error": repr(e)}
    keys = ["subprotocol", "http_get", "origin", "fragmented", "max_size", "auto_ping", "deflate"]
    for lib, res in results.items():
        print(f"### {lib}")
        for k in keys + [k for k in res if k not in keys]:
            if k in res:
                print(f"- {k}: {res[k]}")
        print()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", default="picows websockets aiohttp wsproto")
    a = ap.parse_args()
    uvloop.run(main(a.libs.split()))
