"""Simulated edge nodes for ``bench/master``: many lightweight nodes in one asyncio process.

Each node is one ``asyncio.Protocol`` that speaks the edge side of the fabric protocol
(docs/fabric.md "Edge node"; protocol reference §4, §5) over WAMP-WebSocket with CBOR, the
way a real edge does, but without a node behind it:

1. TCP connect, WebSocket upgrade (``wamp.2.cbor``);
2. HELLO realm null, authrole ``node``, cryptosign with the node's own Ed25519 key (authextra
   ``pubkey``, ``trustroot``/``challenge``/``channel_binding`` null); the signature over the
   CHALLENGE; WELCOME gives the node's name (authid) and mrealm (realm);
3. REGISTERs ``crossbarfabriccenter.node.<name>.{get_status, get_workers, get_worker,
   get_system_stats}`` and, per worker, ``...worker.<id>.get_process_monitor`` plus the router
   workers' ``get_router_realms|transports|components`` and the container's ``get_components``
   (what the masters ask a node that joins: our node view, Crossbar.io's ``check_and_apply``
   every 10 s, which needs ``workers_by_type``), and answers them from canned values;
4. one uplink check CALL ``crossbarfabriccenter.mrealm.get_status``;
5. after ``go``: every ``--period`` seconds (each node at its own random phase) one node heartbeat
   and 4 worker heartbeats (``controller``, routers ``rw1`` and ``rw2``, container ``cw1``), PUBLISH
   with ``acknowledge: true``, payloads shaped by wampfabric's own edge
   (``wampfabric.edge.heartbeat.node_heartbeat`` / ``worker_heartbeat``: ``pubkey`` in the node
   heartbeat, process figures nested under ``process`` for every worker, router message counts),
   with real system and process readings of this process taken once at start, ``seq`` rising per
   round, ``timestamp`` the send time.

Control: JSON lines on stdin, answers as JSON lines on stdout (one per command):

- ``{"cmd": "join"}`` -> ``{"joined": n, "failed": [...], "seconds": s}`` once every node has
  joined and registered (or failed);
- ``{"cmd": "go"}`` starts the heartbeats; ``{"cmd": "halt"}`` stops them and waits until every
  published heartbeat is acknowledged (at most 30 s);
- ``{"cmd": "kill", "names": [...]}`` closes those nodes' connections at once, without GOODBYE
  (the TCP connection is aborted: what a killed machine's kernel or a SIGKILL leaves behind) ->
  ``{"killed": {name: unix time}}``;
- ``{"cmd": "report"}`` -> counts: heartbeats sent and acknowledged (node, worker), errors;
- ``{"cmd": "acked", "path": P}`` writes every acknowledged heartbeat to P as JSON
  ``[[node name, worker id or "", seq], ...]`` (the run matches them with what was stored);
- ``{"cmd": "quit"}`` leaves every session with GOODBYE and exits.

Nodes come from a JSON file ``[{"name", "seed"}]`` (seed: the 32-byte private key, hex) given
with ``--keys``; ``--url`` is the master's ``ws://host:port/ws``.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import json
import os
import random
import sys
import time
import urllib.parse

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "src"))

from wampfabric.client.raw import (  # noqa: E402
    ABORT, AUTHENTICATE, CALL, CHALLENGE, ERROR, GOODBYE, HELLO, INVOCATION, PUBLISH, PUBLISHED, REGISTER,
    REGISTERED, RESULT, WELCOME, YIELD, mask_key, ws_client_frame, ws_frames, ws_handshake_error, ws_new_key,
    ws_upgrade_head)
from wampfabric.common.monitor import ProcessMonitor, system_stats  # noqa: E402
from wampfabric.edge.heartbeat import MESSAGE_KEYS, node_heartbeat, worker_heartbeat  # noqa: E402

OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 2, 8, 9, 10
NODE_HEARTBEAT = "crossbarfabriccenter.node.on_heartbeat"
WORKER_HEARTBEAT = "crossbarfabriccenter.node.on_worker_heartbeat"
WORKERS = (("controller", "controller"), ("rw1", "router"), ("rw2", "router"), ("cw1", "container"))
ROLES = {"publisher": {"features": {}}, "subscriber": {"features": {}}, "caller": {"features": {}},
         "callee": {"features": {}}}

# state of a node
CONNECTING, UPGRADING, AUTH, JOINED, CLOSED = range(5)


class Templates:
    """Heartbeat payloads with real readings of this process (taken once: the simulator must stay
    cheap), copied per heartbeat with the node's seq and timestamp."""

    def __init__(self, period: int):
        self.period = period
        self.system = system_stats()
        mon = ProcessMonitor("controller")
        mon.poll()
        time.sleep(0.05)
        reading = mon.poll()
        self.monitors = {wtype: dict(reading, type=wtype) for _, wtype in WORKERS}
        self.router = {"sessions": 3, "roles": 2, "messages": {k: 0 for k in MESSAGE_KEYS}}

    def node(self, mrealm: str, seq: int, pubkey: str) -> dict:
        return node_heartbeat(timestamp=time.time_ns(), period=self.period, mrealm=mrealm, seq=seq,
                              workers_by_type={"router": 2, "container": 1}, pubkey=pubkey, system=self.system)

    def worker(self, wtype: str, mrealm: str, seq: int, messages: int) -> dict:
        router = None
        if wtype == "router":
            router = dict(self.router, messages={k: (messages if k in ("publish", "event") else 0)
                                                 for k in MESSAGE_KEYS})
        return worker_heartbeat(worker_type=wtype, monitor=self.monitors[wtype], timestamp=time.time_ns(),
                                period=self.period, mrealm=mrealm, seq=seq, router=router)


class Node(asyncio.Protocol):
    def __init__(self, sim: "Simulator", name: str, seed: bytes):
        self.sim = sim
        self.name = name  # the name we paired it under (WELCOME's authid must be it)
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        self.pubkey = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw).hex()
        self.state = CONNECTING
        self.transport = None
        self.buf = bytearray()
        self.wskey = ws_new_key()
        self.request = 0
        self.pending_regs = 0
        self.procs: dict = {}  # registration id -> procedure suffix
        self.ready = asyncio.get_running_loop().create_future()
        self.realm = None
        self.session = None
        self.seq = 0
        self.unacked: dict = {}  # publish request id -> [worker id or "", seq]
        self.sent_node = self.sent_worker = self.acked_node = self.acked_worker = 0
        self.kinds: dict = {}  # publish request id -> "node" | "worker"
        self.acked: list = []  # [worker id or "", seq] of every acknowledged heartbeat
        self.errors: list = []
        self.timer = None
        self.closed_at = None

    # -- wire ----------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.state = UPGRADING
        transport.write(self.sim.req_head + self.wskey + b"\r\n\r\n")

    def send(self, msg: list) -> None:
        if self.transport is not None and self.state != CLOSED:
            self.transport.write(ws_client_frame(OP_BINARY, cbor2.dumps(msg), mask_key()))

    def next_id(self) -> int:
        self.request += 1
        return self.request

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.state == UPGRADING:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = bytes(self.buf[:end]), self.buf[end + 4:]
            err = ws_handshake_error(head, self.wskey, "wamp.2.cbor")
            if err:
                return self.fail(err)
            self.state = AUTH
            self.send([HELLO, None, {"roles": ROLES, "authmethods": ["cryptosign"], "authrole": "node",
                                     "authextra": {"pubkey": self.pubkey, "trustroot": None, "challenge": None,
                                                   "channel_binding": None}}])
        frames, end = ws_frames(self.buf)
        if end:
            del self.buf[:end]
        for b0, _masked, payload in frames:
            op = b0 & 0x0F
            if op == OP_BINARY:
                try:
                    self.on_message(cbor2.loads(payload))
                except Exception as e:  # a bug of ours or a broken message: say which
                    self.fail(f"message handling failed: {e!r}")
            elif op == OP_PING:
                self.transport.write(ws_client_frame(OP_PONG, bytes(payload), mask_key()))
            elif op == OP_CLOSE:
                self.lost("WebSocket close from the master")

    def connection_lost(self, exc) -> None:
        if self.state != CLOSED:
            self.lost(f"connection lost: {exc!r}")

    def lost(self, why: str) -> None:
        if self.state != CLOSED and self.closed_at is None:
            self.errors.append(why)
        self.close()

    def fail(self, why: str) -> None:
        self.errors.append(why)
        if not self.ready.done():
            self.ready.set_result(False)
        self.close()

    def close(self) -> None:
        self.state = CLOSED
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()
        if not self.ready.done():
            self.ready.set_result(False)

    # -- WAMP --------------------------------------------------------------------------------------

    def on_message(self, msg: list) -> None:
        code = msg[0]
        if code == PUBLISHED:
            kind = self.kinds.pop(msg[1], None)
            what = self.unacked.pop(msg[1], None)
            if what is not None:
                self.acked.append(what)
            if kind == "node":
                self.acked_node += 1
            elif kind == "worker":
                self.acked_worker += 1
        elif code == INVOCATION:
            self.on_invocation(msg)
        elif code == CHALLENGE:
            challenge = binascii.a2b_hex(msg[2]["challenge"])
            self.send([AUTHENTICATE, (self.key.sign(challenge) + challenge).hex(), {}])
        elif code == WELCOME:
            self.session = msg[1]
            details = msg[2]
            self.realm = details.get("realm")
            if details.get("authid") != self.name:
                return self.fail(f"WELCOME authid {details.get('authid')!r}, expected {self.name!r}")
            self.state = JOINED
            self.register_all()
        elif code == REGISTERED:
            suffix = self.kinds.pop(msg[1], None)
            self.procs[msg[2]] = suffix
            self.pending_regs -= 1
            if self.pending_regs == 0:
                # the uplink check of an edge, once
                self.kinds[self.send_call("crossbarfabriccenter.mrealm.get_status")] = "check"
        elif code == RESULT:
            if self.kinds.pop(msg[1], None) == "check" and not self.ready.done():
                self.ready.set_result(True)
        elif code == ERROR:
            kind = self.kinds.pop(msg[2], None)
            if msg[1] == CALL and kind == "check":
                # a master without the uplink check procedure yet: the node is joined anyway
                if not self.ready.done():
                    self.ready.set_result(True)
                return
            self.errors.append(f"ERROR {msg[4]} for {kind or msg[1]}")
            if msg[1] == REGISTER:
                return self.fail(f"REGISTER {kind} refused: {msg[4]}")
        elif code == ABORT:
            self.fail(f"ABORT {msg[2]}: {msg[1]}")
        elif code == GOODBYE:
            self.send([GOODBYE, {}, "wamp.close.goodbye_and_out"])
            self.lost(f"GOODBYE from the master: {msg[2]}")

    def send_call(self, uri: str, *args) -> int:
        rid = self.next_id()
        self.send([CALL, rid, {}, uri, list(args)])
        return rid

    def register_all(self) -> None:
        prefix = f"crossbarfabriccenter.node.{self.name}."
        suffixes = ["get_status", "get_workers", "get_worker", "get_system_stats"]
        for wid, wtype in WORKERS[1:]:
            suffixes.append(f"worker.{wid}.get_process_monitor")
            if wtype == "router":
                suffixes += [f"worker.{wid}.get_router_realms", f"worker.{wid}.get_router_transports",
                             f"worker.{wid}.get_router_components"]
            else:
                suffixes.append(f"worker.{wid}.get_components")
        self.pending_regs = len(suffixes)
        for s in suffixes:
            rid = self.next_id()
            self.kinds[rid] = s
            self.send([REGISTER, rid, {}, prefix + s])

    def on_invocation(self, msg: list) -> None:
        request, reg = msg[1], msg[2]
        args = msg[4] if len(msg) > 4 else []
        suffix = self.procs.get(reg)
        sim = self.sim
        if suffix == "get_status":
            res = {"title": f"simulated node {self.name}", "started": sim.started, "controller_pid": os.getpid(),
                   "running_workers": 3, "workers_by_type": {"router": 2, "container": 1}, "directory": "/sim",
                   "pubkey": self.pubkey, "management_realm": self.realm, "management_node_id": self.name,
                   "management_session_id": self.session, "management_node_extra": {}, "has_docker": False}
        elif suffix == "get_workers":
            res = [wid for wid, _ in WORKERS[1:]]
        elif suffix == "get_worker":
            wid = args[0] if args else None
            wtype = dict(WORKERS).get(wid)
            if wtype is None or wid == "controller":
                self.send([ERROR, INVOCATION, request, {}, "crossbar.error.no_such_worker", [f"no worker {wid!r}"]])
                return
            res = {"id": wid, "type": wtype, "status": "started", "pid": os.getpid(), "started": sim.started,
                   "startup_time": 0.5}
        elif suffix == "get_system_stats":
            res = sim.templates.system
        elif suffix and suffix.endswith("get_process_monitor"):
            res = sim.templates.monitors["router"]
        else:
            res = []
        self.send([YIELD, request, {}, [res]])

    # -- heartbeats ----------------------------------------------------------------------------------

    def start_heartbeats(self) -> None:
        if self.state != JOINED:
            return
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(random.uniform(0, self.sim.period), self.beat)

    def beat(self) -> None:
        if self.state != JOINED or not self.sim.beating:
            self.timer = None
            return
        self.timer = asyncio.get_running_loop().call_later(self.sim.period, self.beat)
        self.seq += 1
        t = self.sim.templates
        rid = self.next_id()
        self.kinds[rid] = "node"
        self.unacked[rid] = ["", self.seq]
        self.send([PUBLISH, rid, {"acknowledge": True}, NODE_HEARTBEAT,
                   [self.name, t.node(self.realm, self.seq, self.pubkey)]])
        self.sent_node += 1
        for wid, wtype in WORKERS:
            rid = self.next_id()
            self.kinds[rid] = "worker"
            self.unacked[rid] = [wid, self.seq]
            self.send([PUBLISH, rid, {"acknowledge": True}, WORKER_HEARTBEAT,
                       [self.name, wid, t.worker(wtype, self.realm, self.seq, 10 * self.seq)]])
            self.sent_worker += 1


class Simulator:
    def __init__(self, url: str, keys: list, period: float, concurrency: int = 50):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.req_head = ws_upgrade_head(u.netloc, u.path or "/", "wamp.2.cbor")
        self.period = period
        self.templates = Templates(int(period) if period >= 1 else 1)
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.nodes = [Node(self, k["name"], bytes.fromhex(k["seed"])) for k in keys]
        self.concurrency = concurrency
        self.beating = False

    async def join(self) -> dict:
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        sem = asyncio.Semaphore(self.concurrency)

        async def one(node: Node):
            async with sem:
                try:
                    await loop.create_connection(lambda: node, self.host, self.port)
                    await asyncio.wait_for(asyncio.shield(node.ready), 60)
                except Exception as e:
                    node.fail(f"join failed: {e!r}")

        await asyncio.gather(*(one(n) for n in self.nodes))
        failed = [{"name": n.name, "errors": n.errors[:3]} for n in self.nodes if n.state != JOINED]
        return {"joined": sum(1 for n in self.nodes if n.state == JOINED), "failed": failed[:20],
                "n_failed": len(failed), "seconds": round(time.monotonic() - t0, 3)}

    def go(self) -> dict:
        self.beating = True
        for n in self.nodes:
            n.start_heartbeats()
        return {"going": sum(1 for n in self.nodes if n.state == JOINED), "t": time.time()}

    async def halt(self) -> dict:
        self.beating = False
        for n in self.nodes:
            if n.timer is not None:
                n.timer.cancel()
                n.timer = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(n.unacked for n in self.nodes if n.state == JOINED):
            await asyncio.sleep(0.1)
        return {"halted": time.time(), "unacked": sum(len(n.unacked) for n in self.nodes)}

    def kill(self, names: list) -> dict:
        out = {}
        for n in self.nodes:
            if n.name in names and n.state == JOINED:
                n.closed_at = time.time()
                n.close()  # abort: RST, no GOODBYE, no WebSocket close
                out[n.name] = n.closed_at
        return {"killed": out}

    def acked_keys(self, path: str) -> dict:
        """Every acknowledged heartbeat as [node name, worker id or "", seq], written to ``path``."""
        with open(path, "w") as f:
            json.dump([[n.name, w, s] for n in self.nodes for w, s in n.acked], f)
        return {"written": path, "count": sum(len(n.acked) for n in self.nodes)}

    def report(self) -> dict:
        ns = self.nodes
        return {"nodes": len(ns), "joined": sum(1 for n in ns if n.state == JOINED),
                "sent_node": sum(n.sent_node for n in ns), "sent_worker": sum(n.sent_worker for n in ns),
                "acked_node": sum(n.acked_node for n in ns), "acked_worker": sum(n.acked_worker for n in ns),
                "unacked": sum(len(n.unacked) for n in ns),
                "errors": [f"{n.name}: {e}" for n in ns if n.closed_at is None for e in n.errors][:20],
                "n_errors": sum(len(n.errors) for n in ns if n.closed_at is None)}

    async def quit(self) -> None:
        for n in self.nodes:
            if n.state == JOINED:
                n.send([GOODBYE, {}, "wamp.close.system_shutdown"])
        await asyncio.sleep(0.3)
        for n in self.nodes:
            n.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--keys", required=True, help="JSON file: [{name, seed}]")
    ap.add_argument("--period", type=float, default=2.0)
    a = ap.parse_args()
    with open(a.keys) as f:
        keys = json.load(f)
    sim = Simulator(a.url, keys, a.period)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while True:
        line = await reader.readline()
        if not line:
            await sim.quit()
            return
        cmd = json.loads(line)
        c = cmd.get("cmd")
        if c == "join":
            answer(await sim.join())
        elif c == "go":
            answer(sim.go())
        elif c == "halt":
            answer(await sim.halt())
        elif c == "kill":
            answer(sim.kill(cmd.get("names", [])))
        elif c == "report":
            answer(sim.report())
        elif c == "acked":
            answer(sim.acked_keys(cmd["path"]))
        elif c == "quit":
            await sim.quit()
            answer({"bye": True})
            return
        else:
            answer({"error": f"unknown command {c!r}"})


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
