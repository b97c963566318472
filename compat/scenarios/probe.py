"""Wait until the compat node's container backend and guest have registered their
procedures: ``probe.py rs://host:port TIMEOUT`` exits 0 when both answer."""

import asyncio
import sys
import time

from pyconnect import connect, leave


async def main(url, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            session, _ = await connect(url, "json")
            try:
                while time.monotonic() < deadline:
                    try:
                        await session.call("compat.container.hello")
                        await session.call("compat.guest.hello")
                        return 0
                    except Exception as e:  # not registered yet
                        last = e
                        await asyncio.sleep(0.2)
            finally:
                await leave(session)
        except Exception as e:
            last = e
            await asyncio.sleep(0.3)
    print(f"not ready: {last!r}")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]))))
