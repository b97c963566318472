"""``wsgi``: any WSGI (PEP 3333) application behind the HTTP front, in a bounded thread pool.

Config (Crossbar.io's shape): ``module`` and ``object`` name the application (the module is
imported from the worker's Python path: the router worker's ``options.pythonpath``, relative
to the node directory, is on it, as in Crossbar.io), ``minthreads`` (default 0) and
``maxthreads`` (default 20).  wampfabric adds ``queue`` (requests that may wait for a thread;
default: ``maxthreads``; beyond threads + queue a request gets 503 at once) and
``max_body_size`` (bytes; default 1 MiB, 413 above).

The request is complete when the front hands it over (body included), so the environ is built
on the event loop and the application runs in a pool thread; what it produces goes back to the
loop one block at a time, the thread waiting while the client's socket buffer is full
(backpressure), so a streamed iterable is sent as it is produced and a slow client costs no
memory.  An application that raises is a logged line and a 500 (or a cut connection if the
response had started); one that blocks holds its thread only.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import importlib
import io
import logging
import sys
import threading

from ..transport.web import WebService
from .mount import split_mount
from .simple import ServiceStartError

log = logging.getLogger("wampfabric.web.wsgi")

_TEXT = "text/plain; charset=utf-8"

# hop-by-hop headers (RFC 7230 6.1): an application must not set them (PEP 3333); the front frames
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"))


def import_app(config: dict, what: str):
    """The application object ``config['object']`` of module ``config['module']``."""
    mod_name, obj_name = config["module"], config["object"]
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        raise ServiceStartError(f"{what}: cannot import module '{mod_name}': {type(e).__name__}: {e} "
                                f"(Python path: {sys.path})") from None
    try:
        app = getattr(mod, obj_name)
    except AttributeError:
        raise ServiceStartError(f"{what}: module '{mod_name}' has no object '{obj_name}'") from None
    if not callable(app):
        raise ServiceStartError(f"{what}: '{mod_name}.{obj_name}' is not callable")
    return app


class _Errors:
    """``wsgi.errors``: what the application writes there becomes log lines."""

    def __init__(self, name: str):
        self.name = name
        self.buf = ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, _, self.buf = self.buf.partition("\n")
            if line:
                log.warning("WSGI app %s: %s", self.name, line)
        return len(s)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.buf:
            line, self.buf = self.buf, ""
            log.warning("WSGI app %s: %s", self.name, line)


class _Pool:
    """At most ``maxthreads`` threads (``minthreads`` started at once) and at most ``queue`` jobs
    waiting for one; ``submit`` says False beyond that."""

    def __init__(self, name: str, minthreads: int, maxthreads: int, queue: int):
        self.name = name
        self.maxthreads = maxthreads
        self.queue_size = queue
        self.jobs: collections.deque = collections.deque()
        self.cv = threading.Condition()
        self.threads: list = []
        self.idle = 0
        self.stopping = False
        with self.cv:
            for _ in range(minthreads):
                self._spawn()

    def _spawn(self) -> None:
        t = threading.Thread(target=self._run, name=f"wsgi-{self.name}-{len(self.threads)}", daemon=True)
        self.threads.append(t)
        t.start()

    def submit(self, job) -> bool:
        with self.cv:
            if self.stopping:
                return False
            waiting = len(self.jobs)
            if self.idle > waiting:
                pass
            elif len(self.threads) < self.maxthreads:
                self._spawn()
            elif waiting >= self.queue_size:
                return False
            self.jobs.append(job)
            self.cv.notify()
            return True

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.jobs and not self.stopping:
                    self.idle += 1
                    self.cv.wait()
                    self.idle -= 1
                if self.stopping:
                    return
                job = self.jobs.popleft()
            job.run()

    def stop(self) -> list:
        """Stop taking jobs; the ones still waiting are returned (threads busy in an application
        finish it: they are daemon threads, the process does not wait for them)."""
        with self.cv:
            self.stopping = True
            left = list(self.jobs)
            self.jobs.clear()
            self.cv.notify_all()
        return left


class _Gone(Exception):
    """The client went away: the application's output has nowhere to go."""


class _Job:
    """One request: the environ, the application run in a pool thread, its output sent back to
    the event loop block by block."""

    __slots__ = ("service", "request", "environ", "loop", "status", "headers", "sent", "gone", "length", "written")

    def __init__(self, service: "WsgiWebService", request, environ: dict, loop):
        self.service = service
        self.request = request
        self.environ = environ
        self.loop = loop
        self.status = None      # (code, headers) once start_response was called
        self.headers = None
        self.sent = False       # the response head went out
        self.gone = False
        self.length = None      # the application's Content-Length
        self.written = 0

    # -- in the pool thread -------------------------------------------------------------------

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit():
            raise ValueError(f"WSGI status must be a string like '200 OK', not {status!r}")
        out = []
        length = None
        for item in headers:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], str)):
                raise ValueError(f"WSGI response headers must be (str, str) tuples, not {item!r}")
            name = item[0].lower()
            if name in HOP_BY_HOP:
                continue
            if name == "content-length":
                if not item[1].isdigit():
                    raise ValueError(f"WSGI response Content-Length {item[1]!r} is not a number")
                length = int(item[1])
            if any(c in item[0] or c in item[1] for c in "\r\n\x00"):
                raise ValueError(f"WSGI response header {item[0]!r} holds a line break")
            out.append(item)
        self.status = int(status[:3])
        self.headers = out
        self.length = length
        return self.write

    def write(self, data: bytes) -> None:
        """The block-writing callable start_response returns (and how the iterable's blocks go)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a WSGI application must produce bytes, not {type(data).__name__}")
        if self.status is None:
            raise AssertionError("the WSGI application wrote before calling start_response()")
        if not data and self.sent:
            return
        first = not self.sent
        self.sent = True
        self._wait(self.loop, self._send, first, bytes(data))

    def _wait(self, loop, fn, *args) -> None:
        fut = concurrent.futures.Future()
        loop.call_soon_threadsafe(fn, fut, *args)
        if fut.result() is False:
            self.gone = True
            raise _Gone()

    def run(self) -> None:
        request = self.request
        if request.closed:
            return
        app = self.service.app
        result = None
        try:
            result = app(self.environ, self.start_response)
            single = None
            if isinstance(result, (list, tuple)) and len(result) == 1 and not self.sent:
                single = result[0]
            if single is not None:
                if self.status is None:
                    raise AssertionError("the WSGI application returned before calling start_response()")
                if not isinstance(single, (bytes, bytearray)):
                    raise TypeError(f"a WSGI application must produce bytes, not {type(single).__name__}")
                self.sent = True
                self._wait(self.loop, self._respond, bytes(single))
            else:
                for data in result:
                    if data:
                        self.write(data)
                if self.status is None:
                    raise AssertionError("the WSGI application returned before calling start_response()")
                if not self.sent:
                    self.sent = True
                    self._wait(self.loop, self._respond, b"")
                else:
                    self._wait(self.loop, self._finish)
        except _Gone:
            pass
        except Exception as e:
            self._failed(e)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:
                    log.error("WSGI app %s: close() of the response failed: %s: %s", self.service.name,
                              type(e).__name__, e)

    def _failed(self, e: Exception) -> None:
        log.error("WSGI app %s failed on %s %r: %s: %s", self.service.name, self.environ["REQUEST_METHOD"],
                  self.request.path, type(e).__name__, e)
        if self.gone:
            return
        self.loop.call_soon_threadsafe(self._error, self.sent)

    # -- on the event loop --------------------------------------------------------------------

    def _respond(self, fut, body: bytes) -> None:
        req = self.request
        if req.closed:
            return fut.set_result(False)
        if self.length is None:
            req.respond(self.status, body, self.headers)
        else:  # the application's own Content-Length (e.g. the GET length of a HEAD answer)
            req.start_response(self.status, self.headers)
            self._body(req, body)
            self._finish(None)
        fut.set_result(True)

    def _body(self, req, data: bytes) -> None:
        """Write ``data``, never beyond a Content-Length the application set."""
        if self.length is not None and not req.head:
            room = self.length - self.written
            if len(data) > room:
                log.error("WSGI app %s produced more than its Content-Length (%d) for %r: cut", self.service.name,
                          self.length, req.path)
                data = data[:room]
            self.written += len(data)
        req.write(data)

    def _send(self, fut, first: bool, data: bytes) -> None:
        req = self.request
        if req.closed:
            return fut.set_result(False)
        if first:
            req.start_response(self.status, self.headers)
        self._body(req, data)
        transport = req.connection.transport
        if transport.get_write_buffer_size() <= req.connection.limits.write_buffer_high:
            return fut.set_result(True)
        drain = asyncio.ensure_future(req.drain())
        drain.add_done_callback(lambda _t: fut.set_result(not req.closed))

    def _finish(self, fut) -> None:
        req = self.request
        if req.closed:
            return fut is not None and fut.set_result(False)
        if self.length is not None and self.written < self.length and not req.head and self.status not in (204, 304):
            log.error("WSGI app %s produced %d bytes of its Content-Length %d for %r: connection cut",
                      self.service.name, self.written, self.length, req.path)
            req.connection.transport.abort()
        else:
            req.finish()
        if fut is not None:
            fut.set_result(True)

    def _error(self, started: bool) -> None:
        req = self.request
        if req.closed:
            return
        if not started and not req.responded:
            req.respond(500, b"internal error\n", None, _TEXT)
        else:  # a response cut short: the client must see it end abnormally
            req.connection.transport.abort()

    def reject(self) -> None:
        req = self.request
        if not req.closed and not req.responded:
            req.respond(503, b"service stopping\n", None, _TEXT)


class WsgiWebService(WebService):
    """``wsgi``: a WSGI application in a bounded thread pool."""

    def __init__(self, transport, config: dict):
        super().__init__(transport, config)
        self.app = import_app(config, "wsgi service")
        self.name = f"{config['module']}.{config['object']}"
        maxthreads = config.get("maxthreads", 20)
        minthreads = min(config.get("minthreads", 0), maxthreads)
        self.pool = _Pool(self.name, minthreads, maxthreads, config.get("queue", maxthreads))
        self.max_body_size = config.get("max_body_size", WebService.max_body_size)

    def handle(self, request, subpath: str):
        job = _Job(self, request, self.environ(request, subpath), asyncio.get_running_loop())
        if not self.pool.submit(job):
            log.warning("WSGI app %s: all %d threads busy and %d requests waiting: 503 to %s", self.name,
                        self.pool.maxthreads, self.pool.queue_size, request.peer)
            request.respond(503, b"service busy, try again later\n", [("Retry-After", "1")], _TEXT)

    def environ(self, request, subpath: str) -> dict:
        mount, rest = split_mount(request, subpath)
        conn_transport = request.connection.transport
        peer = conn_transport.get_extra_info("peername")
        sock = conn_transport.get_extra_info("sockname")
        body = request.body
        env = {
            "REQUEST_METHOD": request.method,
            # PEP 3333: the path's bytes as latin-1 characters
            "SCRIPT_NAME": mount.encode("utf-8").decode("latin-1"),
            "PATH_INFO": rest.encode("utf-8").decode("latin-1"),
            "QUERY_STRING": request.query,
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if request.is_secure else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": _Errors(self.name),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_URI": request.raw_path.decode("latin-1") + ("?" + request.query if request.query else ""),
            "RAW_URI": request.raw_path.decode("latin-1") + ("?" + request.query if request.query else ""),
        }
        if isinstance(peer, tuple):
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = peer[0], str(peer[1])
        else:
            env["REMOTE_ADDR"] = ""
        if isinstance(sock, tuple):
            env["SERVER_NAME"], env["SERVER_PORT"] = sock[0], str(sock[1])
        else:
            env["SERVER_NAME"], env["SERVER_PORT"] = "localhost", "80"
        host = request.headers.get("host")
        if host:
            name, sep, port = host.rpartition(":")
            # 'example.com:8080', '[::1]:8080' -> the name; 'example.com', '[::1]' as they are
            env["SERVER_NAME"] = name if sep and port.isdigit() else host
        if body or "content-length" in request.headers or "transfer-encoding" in request.headers:
            env["CONTENT_LENGTH"] = str(len(body))
        for name, value in request.headers.items():
            if name == "content-type":
                env["CONTENT_TYPE"] = value
            elif name in ("content-length", "transfer-encoding"):
                continue  # the body is complete: CONTENT_LENGTH says how long it is
            elif "_" in name:
                continue  # 'x_a' would pose as 'x-a' (HTTP_X_A): such headers are not passed
            else:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        return env

    def close(self) -> None:
        for job in self.pool.stop():
            job.reject()
