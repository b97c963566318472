"""An upstream HTTP server for tests/web/test_proxy.py (aiohttp, run as a subprocess):
``python upstream.py PORT``.  It tells what it received (/echo), streams a large body (/big),
answers late (/slow), and sets hop-by-hop headers on its answer (/hop)."""

import asyncio
import sys

from aiohttp import web


async def echo(request: web.Request):
    body = await request.read()
    return web.json_response({
        "method": request.method, "path": request.raw_path,
        "headers": [[k.decode(), v.decode()] for k, v in request.raw_headers],
        "body": body.decode("latin-1"), "peer_port": request.transport.get_extra_info("peername")[1],
    }, headers={"X-Upstream": "yes", "Set-Cookie": "a=1"})


async def big(request: web.Request):
    total = int(request.query["n"])
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    block = bytes(range(256)) * 256
    sent = 0
    while sent < total:
        n = min(len(block), total - sent)
        await resp.write(block[:n])
        sent += n
    await resp.write_eof()
    return resp


async def sized(request: web.Request):
    return web.Response(body=b"x" * int(request.query["n"]), content_type="application/octet-stream")


async def slow(request: web.Request):
    await asyncio.sleep(float(request.query.get("s", "5")))
    return web.Response(text="late")


async def slow_body(request: web.Request):
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"begun;")
    await asyncio.sleep(5)
    await resp.write(b"never")
    return resp


async def hop(request: web.Request):
    resp = web.Response(text="hop", headers={"Keep-Alive": "timeout=5", "X-Secret": "s", "Proxy-Foo": "p",
                                             "Trailer": "X-T", "Upgrade": "h2c", "X-Kept": "k"})
    resp.headers["Connection"] = "X-Secret"
    return resp


async def status(request: web.Request):
    code = int(request.match_info["code"])
    if code == 302:
        raise web.HTTPFound("/elsewhere")
    return web.Response(status=code)


def main():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/echo{tail:.*}", echo)
    app.router.add_route("*", "/base/echo{tail:.*}", echo)
    app.router.add_get("/base/big", big)
    app.router.add_get("/base/sized", sized)
    app.router.add_get("/base/slow", slow)
    app.router.add_get("/base/slow-body", slow_body)
    app.router.add_get("/base/hop", hop)
    app.router.add_get("/base/status/{code}", status)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
