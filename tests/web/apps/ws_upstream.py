"""A WebSocket server behind the reverse proxy in tests/web/test_proxy.py (the ``websockets``
library, run as a subprocess): ``python ws_upstream.py PORT``.

Every connection gets a first text message: JSON of the path and headers it was opened with.
Then: "flood N" sends N binary messages of 1 MiB then "done" (``progress`` counts the bytes
sent so far), "hold S" stops reading for S seconds, "close C" closes with code C, anything else
is echoed (it reads with a small socket buffer and at most one message queued).  A connection to /refuse is refused (403).  On a second connection, "progress"
answers the flood's bytes sent so far and "closed ID" whether the connection opened with
?id=ID has ended."""

import asyncio
import json
import socket
import sys

from websockets.asyncio.server import serve

# what a flood sends: 1 MiB that does not compress (no permessage-deflate either)
BLOCK = bytes((i * 7919 + (i >> 8) * 104729) % 251 for i in range(1 << 20))
progress = {"sent": 0}
closed: set = set()


def refuse(connection, request):
    if "/refuse" in request.path:
        return connection.respond(403, "forbidden here\n")
    return None


async def handler(ws):
    request = ws.request
    conn_id = request.path.partition("id=")[2].partition("&")[0]
    await ws.send(json.dumps({"path": request.path, "headers": list(request.headers.raw_items())}))
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("flood "):
                block = BLOCK
                for _ in range(int(message.split()[1])):
                    await ws.send(block)
                    progress["sent"] += len(block)
                await ws.send("done")
            elif isinstance(message, str) and message.startswith("hold "):
                await asyncio.sleep(float(message.split()[1]))
                await ws.send("held")
            elif isinstance(message, str) and message.startswith("close "):
                await ws.close(int(message.split()[1]), "asked to")
            elif message == "progress":
                await ws.send(str(progress["sent"]))
            elif isinstance(message, str) and message.startswith("closed "):
                await ws.send("yes" if message.split()[1] in closed else "no")
            else:
                await ws.send(message)
    finally:
        if conn_id:
            closed.add(conn_id)


async def main(port: int) -> None:
    # a small receive buffer (accepted connections inherit it): what the proxy sends while this
    # server does not read stays with the proxy, which must then stop reading its client
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.bind(("127.0.0.1", port))
    async with serve(handler, sock=sock, process_request=refuse, max_size=None, max_queue=1, compression=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
