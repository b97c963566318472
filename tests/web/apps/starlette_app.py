"""A Starlette application served by the ``asgi`` web service in tests/web/test_asgi.py; its
lifespan startup and shutdown are recorded in ``lifespan.log`` beside this file."""

import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

LOG = Path(__file__).resolve().parent / "lifespan.log"


@contextlib.asynccontextmanager
async def lifespan(app):
    with LOG.open("a") as f:
        f.write("startup\n")
    yield {"started": "yes"}
    with LOG.open("a") as f:
        f.write("shutdown\n")


async def index(request: Request):
    return PlainTextResponse("starlette index")


async def hello(request: Request):
    return JSONResponse({"hello": request.path_params["name"], "q": request.query_params.get("q"),
                         "url": str(request.url_for("hello", name="x")), "root_path": request.scope["root_path"],
                         "state": request.state.started})


async def echo(request: Request):
    body = await request.body()
    return JSONResponse({"length": len(body), "json": await request.json() if body else None,
                         "ctype": request.headers.get("content-type")})


async def stream(request: Request):
    async def parts():
        for i in range(4):
            yield f"chunk{i};"
    return StreamingResponse(parts(), media_type="text/plain")


async def fail(request: Request):
    raise RuntimeError("a starlette endpoint that fails")


app = Starlette(lifespan=lifespan, routes=[
    Route("/", index),
    Route("/hello/{name}", hello, name="hello"),
    Route("/echo", echo, methods=["POST"]),
    Route("/stream", stream),
    Route("/fail", fail),
])
