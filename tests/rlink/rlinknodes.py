"""Router nodes linked by rlinks, started with the CLI as a user starts them.

Each node: one router worker ``router1`` with realm ``realm1`` and a WebSocket listener on a
free port: anonymous clients get role ``user``; the links log in with ticket ``rlink`` /
``secret`` as role ``rlink``; test users ``alice`` and ``bob`` (role ``user``) and ``carol``
(role ``guest``) with ticket ``secret`` too (``ab_client``: an autobahn-python session as one of
them).  The management socket ``node.sock`` gives the tests the
management API (``crossbar.worker.router1.*_router_realm_link*``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.nodes import free_port, stop_node, wait_port

from wampfabric.client.connection import connect

ALL = {"call": True, "register": True, "publish": True, "subscribe": True}
WORKER = "crossbar.worker.router1"


#: what makes a link's session an rlink leg: its role names the marker topic exactly
LEG_PERMISSION = {"uri": "wampfabric.rlink.leg", "match": "exact", "allow": {"subscribe": True}}


def perms(disclose: bool, leg: bool = False) -> list:
    return [{"uri": "", "match": "prefix", "allow": ALL, "disclose": {"caller": disclose, "publisher": disclose},
             "cache": True}] + ([LEG_PERMISSION] if leg else [])


def link_config(to_port: int, link_id: str | None = None, **extra) -> dict:
    cfg = {"realm": "realm1",
           "transport": {"type": "websocket", "url": f"ws://127.0.0.1:{to_port}/",
                         "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": to_port}},
           "authentication": {"ticket": {"authid": "rlink", "ticket": "secret"}}}
    if link_id:
        cfg["id"] = link_id
    cfg.update(extra)
    return cfg


USERS = {"alice": "user", "bob": "user", "carol": "guest"}


def router_config(port: int, links=(), disclose: bool = True, user_disclose: bool | None = None) -> dict:
    """``user_disclose``: the ``user``/``guest`` roles' disclose (default: ``disclose``, which
    the ``rlink`` role has)."""
    ud = disclose if user_disclose is None else user_disclose
    principals = {"rlink": {"ticket": "secret", "role": "rlink"}}
    principals.update({name: {"ticket": "secret", "role": role} for name, role in USERS.items()})
    return {
        "version": 2,
        "controller": {"transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}},
        "workers": [{
            "type": "router", "id": "router1",
            "realms": [{"name": "realm1", "roles": [{"name": "user", "permissions": perms(ud)},
                                                    {"name": "guest", "permissions": perms(ud)},
                                                    {"name": "rlink", "permissions": perms(disclose, leg=True)}],
                        **({"rlinks": list(links)} if links else {})}],
            "transports": [{
                "type": "websocket", "id": "ws",
                "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                "auth": {"anonymous": {"type": "static", "role": "user"},
                         "ticket": {"type": "static", "principals": principals}},
            }],
        }],
    }


@dataclass
class RNode:
    name: str
    root: Path
    cbdir: Path
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path = field(default=None)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "start", "--cbdir", str(self.cbdir)],
                                         cwd=self.root, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"node {self.name} did not start:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_node(self)  # SIGTERM to the process group, SIGKILL after 10 s

    def kill(self) -> None:
        """SIGKILL to the whole process group (the node and its workers)."""
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    async def manage(self):
        return await connect(f"unix:{self.cbdir / 'node.sock'}", "crossbar")

    async def client(self):
        return await connect(self.url, "realm1")


def make_nodes(n: int, links: dict | None = None, disclose: bool = True, user_disclose: bool | None = None,
               link_extra: dict | None = None) -> list[RNode]:
    """``n`` node directories; ``links[i]`` lists the indexes node i links to (config file),
    each link's config with ``link_extra``."""
    ports = [free_port() for _ in range(n)]
    nodes = []
    for i in range(n):
        root = Path(tempfile.mkdtemp(prefix=f"wf-rlink{i}-"))
        cbdir = root / ".crossbar"
        cbdir.mkdir()
        cfg = router_config(ports[i], [link_config(ports[j], f"to{j}", **(link_extra or {}))
                                       for j in (links or {}).get(i, ())], disclose, user_disclose)
        (cbdir / "config.json").write_text(json.dumps(cfg, indent=2))
        nodes.append(RNode(f"n{i}", root, cbdir, ports[i], log_path=root / "node.log"))
    return nodes


def mesh(n: int) -> dict:
    """Full mesh: node i links to every j > i (one link per pair)."""
    return {i: list(range(i + 1, n)) for i in range(n)}


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        r = predicate()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def link_info(mgmt, link_id: str) -> dict:
    return await mgmt.call(f"{WORKER}.get_router_realm_link", "realm001", link_id)


async def links_connected(nodes: list[RNode], links: dict) -> None:
    """Until every configured link is connected."""
    for i, targets in links.items():
        m = await nodes[i].manage()
        try:
            for j in targets:
                async def up(j=j):
                    try:
                        return (await link_info(m, f"to{j}"))["connected"]
                    except Exception:
                        return False
                await wait_for(up, 30, f"link n{i} -> n{j}")
        finally:
            await m.leave()


async def ab_client(node: RNode, authid: str | None = None, ticket: str = "secret"):
    """An autobahn-python session on ``node``'s realm1: anonymous, or ticket as ``authid``."""
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class Session(ApplicationSession):
        def onConnect(self):
            if authid:
                self.join("realm1", authmethods=["ticket"], authid=authid)
            else:
                self.join("realm1", authmethods=["anonymous"])

        def onChallenge(self, challenge):
            return ticket

        def onJoin(self, details):
            if not joined.done():
                joined.set_result(self)

        def onLeave(self, details):
            if not joined.done():
                joined.set_exception(RuntimeError(f"join refused: {details.reason} {details.message}"))
            self.disconnect()

    factory = WampWebSocketClientFactory(lambda: Session(ComponentConfig(realm="realm1")), url=node.url)
    await asyncio.wait_for(loop.create_connection(factory, "127.0.0.1", node.port), 10)
    return await asyncio.wait_for(joined, 10)
