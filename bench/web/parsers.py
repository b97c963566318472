"""HTTP request parsers compared for the web front (docs/decisions.md, "Web services"): httptools,
aiohttp's C parser and h11, per request, for a keep-alive GET and a small JSON POST.

httptools and h11 are not dependencies yet; to run it::

    .venv/bin/pip install --target /tmp/hbpkgs httptools h11
    PYTHONPATH=/tmp/hbpkgs .venv/bin/python bench/web/parsers.py
"""

import asyncio
import time

import aiohttp
import h11
import httptools
from aiohttp.http_parser import HttpRequestParser

REQ = (b"GET /static/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\n"
       b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n")
POST = (b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
        b"Content-Length: 45\r\n\r\n" + b'{"topic": "com.example.t", "args": ["hello"]}')
N = 200000

def bench(name, fn):
    t = time.perf_counter()
    for _ in range(N):
        fn()
    dt = time.perf_counter() - t
    print(f"{name}: {dt / N * 1e6:.2f} us/request")

class P:
    __slots__ = ("url", "headers", "body", "done")
    def __init__(self):
        self.headers = []; self.body = b""; self.done = False
    def on_url(self, u): self.url = u
    def on_header(self, k, v): self.headers.append((k, v))
    def on_body(self, b): self.body += b
    def on_message_complete(self): self.done = True

for label, data in (("GET", REQ), ("POST", POST)):
    def ht():
        p = P(); parser = httptools.HttpRequestParser(p); parser.feed_data(data); assert p.done
    bench(f"httptools {label} (new parser per request)", ht)
    p = P(); parser = httptools.HttpRequestParser(p)
    def ht_keep():
        p.done = False; p.headers = []; p.body = b""
        parser.feed_data(data); assert p.done
    bench(f"httptools {label} (keep-alive parser)", ht_keep)
    def hh():
        c = h11.Connection(h11.SERVER); c.receive_data(data)
        while True:
            e = c.next_event()
            if isinstance(e, h11.EndOfMessage) or e is h11.NEED_DATA: break
    bench(f"h11 {label}", hh)

    async def aio():
        loop = asyncio.get_running_loop()
        class Proto:  # the protocol hooks aiohttp's parser calls (flow control)
            def pause_reading(self, **kw):
                pass

            def resume_reading(self, **kw):
                pass
        parser = HttpRequestParser(Proto(), loop, 2**16, max_line_size=8190, max_field_size=8190)
        def one():
            msgs, upgraded, tail = parser.feed_data(data)
            assert msgs
        bench(f"aiohttp C parser {label} (keep-alive)", one)
    try:
        asyncio.run(aio())
    except Exception as e:
        print("aiohttp parser:", type(e).__name__, e)
print("httptools", httptools.__version__, "h11", h11.__version__, "aiohttp", aiohttp.__version__)
