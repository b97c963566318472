"""Helpers of the end-to-end fabric tests: edge nodes started with the CLI (``wampfabric edge keys``,
``wampfabric edge start``) against a master started with the CLI (tests/master/masternode.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError

from support.autobahn_client import w

from support.nodes import REPO

#: Crossbar.io 26.10 in its own venv (bench/setup_crossbar.sh), for the interop tests
CROSSBAR = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"

M = "crossbarfabriccenter.mrealm."
R = "crossbarfabriccenter.remote."


def edge_keys(cbdir: Path) -> str:
    """``wampfabric edge keys``: the public key it prints."""
    r = subprocess.run([sys.executable, "-m", "wampfabric", "edge", "keys", "--cbdir", str(cbdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("public-key-ed25519: ")]
    assert line, r.stdout
    return line[0].split(": ", 1)[1]


class WfEdge:
    """A wampfabric edge node directory (keys, a config with a short heartbeat period) run by
    ``wampfabric edge start`` with ``CROSSBAR_FABRIC_URL``, its log in a file."""

    def __init__(self, root: Path, name: str, master_url: str, period: int = 1, system_stats: bool = False):
        self.name = name
        self.cbdir = root / name
        self.pubkey = edge_keys(self.cbdir)
        self.period = period
        (self.cbdir / "config.json").write_text(json.dumps({"version": 2, "controller": {"fabric": {"heartbeat": {
            "startup_delay": 0, "heartbeat_period": period, "include_system_stats": system_stats}}},
            "workers": []}))
        self.env = {k: v for k, v in os.environ.items() if k != "CROSSBAR_FABRIC_URL"}
        self.env.update(CROSSBAR_FABRIC_URL=master_url, PYTHONUNBUFFERED="1")
        self.log_path = root / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WfEdge":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "wampfabric", "edge", "start", "--cbdir",
                                          str(self.cbdir)], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig) -> None:
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole node (controller and workers)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


async def wait_for(check, timeout: float = 30.0, what: str = "condition", interval: float = 0.1):
    """Poll ``await check()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = await check()
        except ApplicationError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


async def node_status(session, name: str) -> str:
    return (await w(session.call(M + "get_node_by_authid", name)))["status"]


class ShellUser:
    """``crossbar shell init --yes`` in a home of its own: its key is the superuser of the master."""

    def __init__(self, home, url):
        self.env = dict(os.environ, HOME=str(home), CROSSBAR_FABRIC_URL=url)
        self.env.pop("CROSSBAR_FABRIC_SUPERUSER", None)
        r = self.run("init", "--yes")
        assert r.returncode == 0, r.stderr + r.stdout
        self.pubfile = home / ".crossbar" / "default.pub"

    def run(self, *args, timeout=120) -> subprocess.CompletedProcess:
        return subprocess.run([str(CROSSBAR), "shell", *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=self.env["HOME"])


# -- router clusters (issue 16): a master, edges paired into one mrealm, a cluster of them ----------------

RC = M + "routercluster."
AR = M + "arealm."


class TicketClient(ApplicationSession):
    """An autobahn-python session joining with ticket authentication (a principal of an arealm)."""

    def __init__(self, config, authid: str, ticket: str):
        super().__init__(config)
        self._authid, self._ticket = authid, ticket
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["ticket"], authid=self._authid)

    def onChallenge(self, challenge):
        return self._ticket

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(RuntimeError(f"join failed: {details.reason} {details.message}"))
        return super().onLeave(details)

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(RuntimeError("transport closed before WELCOME"))
        if not self.left.done():
            self.left.set_result(None)

    async def close(self):
        try:
            if self.is_attached():
                self.leave()
                await asyncio.wait_for(asyncio.shield(self.left), 2)
        except Exception:
            pass
        try:
            if self._transport is not None:
                self.disconnect()
        except Exception:
            pass


async def ticket_connect(host: str, port: int, realm: str, authid: str, ticket: str,
                         timeout: float = 5.0) -> TicketClient:
    """A joined TicketClient on ``ws://host:port/`` (an exception when the router refuses or is not there)."""
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.serializer import CBORSerializer
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    made: list[TicketClient] = []

    def make():
        s = TicketClient(ComponentConfig(realm=realm), authid, ticket)
        made.append(s)
        return s

    factory = WampWebSocketClientFactory(make, url=f"ws://{host}:{port}/", serializers=[CBORSerializer()])
    transport, _ = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    deadline = loop.time() + timeout
    while not made:
        if loop.time() > deadline:
            transport.close()
            raise TimeoutError("no session created")
        await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(asyncio.shield(made[0].joined), timeout)
    except BaseException:
        await made[0].close()
        transport.close()
        raise
    return made[0]


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free ports (a worker group of scale n listens on port .. port + n - 1)."""
    import socket

    from support.nodes import _ports_given, free_port

    while True:
        first = free_port()
        ok = True
        for port in range(first + 1, first + n):
            if port in _ports_given:
                ok = False
                break
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            _ports_given.update(range(first, first + n))
            return first


class ClusterFabric:
    """A master (``master init/start``, with its change engine) and edge nodes (``edge start``) paired
    into one mrealm, and a router cluster of them defined through the management API
    (``define``): a worker group, an arealm with role ``app`` (everything under ``com.example.``)
    and a ticket principal. The change engine wires it; ``client(name)`` joins the arealm on a node.
    Reusable (tests/fabric/test_routercluster.py; the network namespace test passes ``membership``
    per node: ``link_host`` / interfaces of the veth addresses, and its own ``edge_factory``)."""

    REALM = "realm1"
    AUTHID = "client1"
    TICKET = "secret-ticket-1"

    def __init__(self, root: Path, names=("edge1", "edge2", "edge3"), mrealm: str = "m1", edge_factory=None):
        from masternode import Key, Master

        self.root = root
        self.names = list(names)
        self.mrealm = mrealm
        self.superuser = Key()
        self.master = Master(superuser=self.superuser)
        self.edge_factory = edge_factory or (lambda name, url: WfEdge(root, name, url))
        self.edges: dict[str, WfEdge] = {}
        self.ports: dict[str, tuple[int, int]] = {}  # node -> (client port, link port) of its first worker
        self.hosts: dict[str, str] = {}  # node -> the host clients use
        self.session = None  # the superuser on the mrealm (role owner)
        self._sessions: list = []
        self.defs: dict = {}

    async def start(self) -> "ClusterFabric":
        from masternode import fabric_connect

        self.master.init()
        self.master.start()
        self.master.wait_log("Change engine ready")
        g = await fabric_connect(self.master.url, self.superuser, realm=None)
        self._sessions.append(g)
        await w(g.call(M + "create_mrealm", {"name": self.mrealm}))
        for name in self.names:
            self.edges[name] = edge = self.edge_factory(name, self.master.url)
            await w(g.call(M + "pair_node", edge.pubkey, self.mrealm, name, None))
        self.master.wait_log(f"Change engine: following management realm '{self.mrealm}'")
        self.session = await fabric_connect(self.master.url, self.superuser, realm=self.mrealm)
        self._sessions.append(self.session)
        for edge in self.edges.values():
            edge.start()
        for name in self.names:
            await wait_for(lambda n=name: self._online(n), 60, f"{name} online")
        return self

    async def _online(self, name) -> bool:
        return await node_status(self.session, name) == "online"

    async def define(self, scale: int = 1, membership: dict | None = None, start: bool = True) -> dict:
        """Cluster ``cluster1`` of all nodes (each with free client and link ports, ``scale`` of
        each in a row, unless ``membership[name]`` says), worker group ``wg1`` of ``scale``, arealm ``realm1`` with role
        ``app`` and principal ``client1`` (ticket); started unless ``start`` is false."""
        s = self.session
        c = await w(s.call(RC + "create_routercluster", {"name": "cluster1"}))
        for name in self.names:
            cfg = dict((membership or {}).get(name) or {})
            cfg.setdefault("client_port", free_ports(scale))
            cfg.setdefault("link_port", free_ports(scale))
            self.ports[name] = (cfg["client_port"], cfg["link_port"])
            self.hosts[name] = cfg.get("link_host") or "127.0.0.1"
            await w(s.call(RC + "add_routercluster_node", c["oid"], name, cfg))
        wg = await w(s.call(RC + "add_routercluster_workergroup", c["oid"], {"name": "wg1", "scale": scale}))
        role = await w(s.call(AR + "create_role", {"name": "app"}))
        await w(s.call(AR + "add_role_permission", role["oid"], "com.example.", {
            "match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True,
            "allow_subscribe": True, "disclose_caller": True, "disclose_publisher": True}))
        arealm = await w(s.call(AR + "create_arealm", {"name": self.REALM}))
        await w(s.call(AR + "add_arealm_role", arealm["oid"], role["oid"]))
        principal = await w(s.call(AR + "add_principal", arealm["oid"], {
            "authid": self.AUTHID, "role_oid": role["oid"], "ticket": self.TICKET}))
        self.defs = {"cluster": c, "workergroup": wg, "role": role, "arealm": arealm, "principal": principal}
        if start:
            await w(s.call(RC + "start_routercluster", c["oid"]))
            await w(s.call(AR + "start_arealm", arealm["oid"], wg["oid"]))
        return self.defs

    async def client(self, name: str, timeout: float = 30.0, worker: int = 1) -> TicketClient:
        """A client of ``realm1`` on node ``name`` (its router worker ``worker``), once it can join."""
        port = self.ports[name][0] + worker - 1
        host = self.hosts.get(name, "127.0.0.1")

        async def attempt():
            try:
                return await ticket_connect(host, port, self.REALM, self.AUTHID, self.TICKET)
            except (OSError, RuntimeError, asyncio.TimeoutError):
                return None
        c = await wait_for(attempt, timeout, f"a client joining {self.REALM} on {name} ({host}:{port})", 0.2)
        self._sessions.append(c)
        return c

    def track(self, session) -> None:
        """Close ``session`` (a TicketClient) with the fabric."""
        self._sessions.append(session)

    async def node_call(self, name: str, suffix: str, *args):
        """A management procedure of a node through the master (``crossbarfabriccenter.node.<name>.<suffix>``)."""
        return await w(self.session.call(f"crossbarfabriccenter.node.{name}.{suffix}", *args))

    async def close(self) -> None:
        for s in reversed(self._sessions):
            try:
                await s.close()
            except Exception:
                pass
        for edge in self.edges.values():
            try:
                edge.stop()
            except Exception:
                pass
        self.master.stop()
