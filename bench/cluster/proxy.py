"""A minimal forwarding TCP proxy, written for the measurement in bench/cluster/run.py (what a
proxy worker in front of router workers costs): every accepted connection gets a connection to
the backend, bytes are copied both ways unchanged (no parsing; reading pauses while the other
side's write buffer is full).  ``python bench/cluster/proxy.py LISTEN_PORT BACKEND_PORT``
(both on 127.0.0.1), uvloop."""

from __future__ import annotations

import asyncio
import sys


class Pipe(asyncio.Protocol):
    def __init__(self):
        self.transport = None
        self.peer: "Pipe | None" = None
        self.early: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(256 * 1024)

    def data_received(self, data):
        peer = self.peer
        if peer is None or peer.transport is None:
            self.early.append(data)
        else:
            peer.transport.write(data)

    def pause_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc):
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def main(listen: int, backend: int) -> None:
    loop = asyncio.get_running_loop()

    def accepted():
        front = Pipe()

        async def link():
            try:
                _, back = await loop.create_connection(Pipe, "127.0.0.1", backend)
            except OSError:
                front.transport.close()
                return
            back.peer, front.peer = front, back
            for a, b in ((front, back), (back, front)):
                for chunk in a.early:
                    b.transport.write(chunk)
                a.early.clear()
        loop.create_task(link())
        return front

    server = await loop.create_server(accepted, "127.0.0.1", listen, backlog=1024)
    print("proxy ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
