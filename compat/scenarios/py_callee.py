"""autobahn-python callee for compat/scenarios/callee_modes.py.

    python py_callee.py URL SERIALIZER PREFIX

Registers PREFIX.progress (n progressive results, then the final one), PREFIX.slow
(finishes after 1.5 s unless interrupted) and PREFIX.echo; prints {"status": "ready"},
serves until stdin closes, then prints {"invocations": [...]} (what it was asked and
how each invocation ended)."""

import asyncio
import json
import os
import sys

from autobahn.wamp.types import CallResult, RegisterOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pyconnect import connect, leave  # noqa: E402


async def main():
    url, serializer, prefix = sys.argv[1:4]
    log = []
    s, _ = await connect(url, serializer)

    async def progress(n, details=None):
        log.append({"proc": "progress", "receive_progress": bool(details and details.progress)})
        for i in range(n):
            if details and details.progress:
                details.progress(i, step=i)
        return CallResult("done", n, final=True)

    async def slow(details=None):
        entry = {"proc": "slow"}
        log.append(entry)
        print(json.dumps({"invoked": "slow"}), flush=True)  # the caller cancels only after this line
        try:
            await asyncio.sleep(1.5)
            entry["end"] = "finished"
            return "finished"
        except asyncio.CancelledError:
            entry["end"] = "interrupted"
            raise

    opts = RegisterOptions(details_arg="details")
    await s.register(progress, f"{prefix}.progress", options=opts)
    await s.register(slow, f"{prefix}.slow", options=opts)
    await s.register(lambda *a, **kw: CallResult(*a, **kw), f"{prefix}.echo")
    print(json.dumps({"status": "ready"}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await leave(s)
    print(json.dumps({"invocations": log}), flush=True)


asyncio.run(main())
