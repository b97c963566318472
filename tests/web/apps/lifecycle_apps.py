"""Plain ASGI applications of tests/web/test_asgi.py's lifecycle tests: each records its
lifespan startup and shutdown in ``lifecycle-<name>.log`` beside this file.  ``slow`` takes a
second to start up and to shut down (what comes before the port listens and what a stop waits
for); ``quick`` starts at once; ``broken`` fails its startup."""

import asyncio
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _record(name: str, what: str) -> None:
    with (HERE / f"lifecycle-{name}.log").open("a") as f:
        f.write(what + "\n")


def _app(name: str, delay: float, fail: bool = False):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await asyncio.sleep(delay)
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": f"{name} cannot start"})
                        return
                    _record(name, "startup")
                    scope["state"]["name"] = name
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.sleep(delay)
                    _record(name, "shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"{scope['state'].get('name')} served".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return app


slow = _app("slow", 1.0)
quick = _app("quick", 0.0)
broken = _app("broken", 0.0, fail=True)
