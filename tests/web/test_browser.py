"""A browser, for real: headless Chromium (Debian's package, installed by
tests/support/os_packages.sh) loads a page from a web transport's static service
(tests/web/browser/index.html, and autobahn-js's browser build, npm `autobahn-browser` pinned in
tests/js/package.json beside the Node.js clients, from tests/js/node_modules on another static path), the page joins the realm over WebSocket on the same port with autobahn-js
and subscribes; autobahn-python publishes, and the event shows up in the page's DOM.

The test drives Chromium over its DevTools protocol (a WebSocket on a loopback port Chromium
picks; ``Runtime.evaluate`` reads the DOM), so it waits for what the page shows instead of
guessing a delay. Skips with the reason where chromium or npm is not installed."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest
from autobahn.wamp.types import PublishOptions

from support import js
from support.autobahn_client import connect, uid, w
from support.nodes import FULL_PERMS, start_node, stop_node

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
AUTOBAHN_DIR = js.JS_DIR / "node_modules" / "autobahn-browser"
# the page's #state, null while the page is still loading
STATE = "(document.getElementById('state') || {}).textContent || null"
ACK = PublishOptions(acknowledge=True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Chromium as root on a machine without a network: no sandbox (root), no GPU, no background
# connections (each of them refused, many at a time), a fresh profile per run
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]

if CHROMIUM is None:
    pytest.skip("chromium is not installed (Debian package `chromium`; `bash tests/support/os_packages.sh` "
                "installs it as root): the browser test is skipped", allow_module_level=True)


def install_autobahn_browser() -> Path:
    """autobahn-js's browser build: tests/js/node_modules, installed from tests/js/package-lock.json
    (``npm ci``, once for parallel pytest processes) when it is missing or older than the lockfile."""
    if shutil.which("npm") is None:
        if (AUTOBAHN_DIR / "autobahn.min.js").exists():
            return AUTOBAHN_DIR
        pytest.skip("npm is not installed: autobahn-js's browser build (npm `autobahn-browser`, "
                    "tests/js/package.json) cannot be installed, the browser test is skipped")
    js.install_deps()
    if not (AUTOBAHN_DIR / "autobahn.min.js").exists():  # installed before the lockfile held it
        pytest.fail(f"{AUTOBAHN_DIR / 'autobahn.min.js'} is missing after `npm ci` in {js.JS_DIR}")
    return AUTOBAHN_DIR


def browser_config(ports: dict, rs_path: str) -> dict:
    """One web transport: the page at /, autobahn-js at /autobahn/, WAMP at /ws (realm1, anyone
    may do anything); start_node also wants a RawSocket and a second port."""
    realm = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [FULL_PERMS]}]}
    web = {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["web"]},
        "paths": {
            "/": {"type": "static", "directory": str(BROWSER_DIR), "options": {"cache_timeout": None}},
            "autobahn": {"type": "static", "directory": str(AUTOBAHN_DIR)},
            "ws": {"type": "websocket", "serializers": ["json", "msgpack"]},
            "lp": {"type": "longpoll"},
        },
    }
    rawsocket = {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["rawsocket"]},
                 "serializers": ["json"]}
    restricted = {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["restricted"]},
                  "serializers": ["json"]}
    return {"version": 2, "controller": {},
            "workers": [{"type": "router", "realms": [realm], "transports": [web, rawsocket, restricted]}]}


@pytest.fixture(scope="module")
def bnode():
    install_autobahn_browser()
    n = start_node(browser_config)
    yield n
    stop_node(n)


class Chromium:
    """A headless Chromium on *url*, with a DevTools protocol client on its page."""

    def __init__(self, url: str):
        self.url = url
        self.profile = tempfile.mkdtemp(prefix="wf-chromium-")
        self.log_path = Path(self.profile) / "chromium.log"
        self.proc: subprocess.Popen | None = None
        self.http: aiohttp.ClientSession | None = None
        self.ws = None
        self.ids = itertools.count(1)

    async def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", self.url],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"  # "<port>\n/devtools/browser/<id>"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"chromium opened no DevTools port in {timeout}s:\n{self.log()}")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        self.http = aiohttp.ClientSession()
        while True:  # the page target appears once the browser has opened the URL
            async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in await r.json() if t.get("type") == "page" and t.get("url", "").startswith(self.url)]
            if pages:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"chromium shows no page for {self.url}:\n{self.log()}")
            await asyncio.sleep(0.05)
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    async def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}})
        while True:
            msg = await w(self.ws.receive_json(), 10)
            if msg.get("id") == msg_id:
                if "error" in msg or "exceptionDetails" in msg.get("result", {}):
                    raise AssertionError(f"evaluating {expression!r} failed: {msg}")
                return msg["result"]["result"].get("value")

    async def wait_for(self, expression: str, expected, timeout: float = 20.0):
        """Evaluate *expression* until it equals *expected*; the last value in the error otherwise."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value == expected:
                return value
            await asyncio.sleep(0.05)
        html = await self.evaluate("document.documentElement.outerHTML")
        raise AssertionError(f"{expression} is {value!r}, not {expected!r}, after {timeout}s; the page:\n{html}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()
        if self.proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):  # the whole tree: browser, zygote, renderers
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(3)
                    time.sleep(0.2)  # its children leave the group with it
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
async def browser():
    opened: list[Chromium] = []

    async def open_(url: str) -> Chromium:
        c = Chromium(url)
        opened.append(c)
        await c.start()
        return c

    yield open_
    for c in opened:
        await c.close()


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
async def test_page_shows_event_published_by_autobahn_python(bnode, browser, transport):
    """The page joins over WebSocket, or over WAMP-over-long-poll (autobahn-js's own 'longpoll'
    transport on the browser's XMLHttpRequest), and shows the events autobahn-python publishes."""
    topic = f"com.example.browser.{uid()}"
    page = await browser(f"{bnode.web_url}/?topic={topic}&transport={transport}")
    # the page came from the static service, autobahn-js loaded, joined over /ws or /lp and subscribed
    await page.wait_for(STATE, "subscribed")
    assert await page.evaluate("document.getElementById('transport').textContent") == transport
    assert await page.evaluate("document.title") == "wampfabric browser test"
    assert await page.evaluate("document.querySelectorAll('#events li').length") == 0

    publisher = await connect(bnode, "websocket", "msgpack")
    try:
        token = uid()
        await w(publisher.publish(topic, "hello from autobahn-python", token, n=1,
                                  options=ACK))
        await page.wait_for("document.querySelectorAll('#events li.event').length", 1)
        shown = json.loads(await page.evaluate("document.querySelector('#events li.event').textContent"))
        assert shown == {"args": ["hello from autobahn-python", token], "kwargs": {"n": 1}}

        # a second event shows too, in order; one on another topic does not
        await w(publisher.publish(topic + ".other", "not for the page", options=ACK))
        await w(publisher.publish(topic, 2, options=ACK))
        await page.wait_for("document.querySelectorAll('#events li.event').length", 2)
        texts = await page.evaluate("Array.from(document.querySelectorAll('#events li.event'), e => e.textContent)")
        assert [json.loads(t)["args"] for t in texts] == [["hello from autobahn-python", token], [2]]
    finally:
        await publisher.shutdown()
    bnode.assert_alive()


async def test_page_says_when_the_realm_refuses(bnode, browser):
    """The same page on a realm that does not exist: autobahn-js gets ABORT and the page shows
    why (the test can tell a page that never connected from one that connected and got nothing)."""
    page = await browser(f"{bnode.web_url}/?realm=no.such.realm")
    state = await until_async(lambda: page.evaluate(STATE),
                              lambda v: (v or "").startswith("closed:"), 20)
    assert "no_such_realm" in state, state


async def until_async(get, cond, timeout: float):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await get()
        if cond(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"last value {value!r} after {timeout}s")
