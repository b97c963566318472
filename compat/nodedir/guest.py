"""The compat node's guest worker: a plain autobahn-python (asyncio) program that
connects back to the node's ``backend`` RawSocket transport (port in argv[1])
and registers ``compat.guest.hello``.  Both routers start it the same way."""

import asyncio
import sys

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.types import ComponentConfig


class Guest(ApplicationSession):
    async def onJoin(self, details):
        await self.register(lambda who="world": f"hello {who} from the guest", "compat.guest.hello")
        await self.register(lambda: sys.argv[2:], "compat.guest.argv")
        print("guest joined", flush=True)

    def onDisconnect(self):
        asyncio.get_event_loop().stop()


def main():
    port = int(sys.argv[1])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    factory = WampRawSocketClientFactory(lambda: Guest(ComponentConfig("realm1")), serializer=JsonSerializer())
    for _ in range(100):  # the router may still be starting its transports
        try:
            loop.run_until_complete(loop.create_connection(factory, "127.0.0.1", port))
            break
        except OSError:
            loop.run_until_complete(asyncio.sleep(0.1))
    else:
        sys.exit("guest: cannot connect to 127.0.0.1:%d" % port)
    loop.run_forever()


if __name__ == "__main__":
    main()
