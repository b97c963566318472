"""Crossbar.io 26.10's master node for tests (bench/.venv-crossbar; tests skip without it).

``CrossbarMaster(root).start()`` runs ``crossbar master start --cbdir ROOT/master`` offline on a
free loopback port (the override config of the protocol reference §1: no blockchain, no
``/autobahn`` download), with a superuser key (``CROSSBAR_FABRIC_SUPERUSER``).  ``superuser()``
is an autobahn-python session authenticated as that superuser (cryptosign) on the global realm
or on an mrealm; ``create_mrealm`` and ``pair_node`` call the master's domain API as
``crossbar shell`` does.  ``heartbeats(mrealm)`` reads the stored node and worker heartbeats
read-only with cfxdb/zlmdb from the crossbar venv's python (protocol §9).  ``stop()`` ends the
master's process group (``kill()``: SIGKILL)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import cryptosign
from autobahn.wamp.serializer import CBORSerializer
from autobahn.wamp.types import ComponentConfig

from support.autobahn_client import Client, w
from support.nodes import REPO, free_port, wait_port

CROSSBAR_VENV = REPO / "bench" / ".venv-crossbar"
CROSSBAR = CROSSBAR_VENV / "bin" / "crossbar"
CROSSBAR_PYTHON = CROSSBAR_VENV / "bin" / "python"
GLOBAL_REALM = "com.crossbario.fabric"

requires_crossbar = pytest.mark.skipif(not CROSSBAR.exists(),
                                       reason="Crossbar.io is not installed (bench/setup_crossbar.sh)")

# protocol §9: read the master's LMDB databases read-only (run by the crossbar venv's python)
_READ_HEARTBEATS = r"""
import json, sys, uuid, zlmdb, cfxdb.globalschema, cfxdb.mrealmschema
cbdir, mrealm = sys.argv[1], sys.argv[2]
db = zlmdb.Database(dbpath=cbdir + "/.db-controller", maxsize=128 * 2**20, readonly=True)
gs = cfxdb.globalschema.GlobalSchema.attach(db)
with db.begin() as txn:
    mrealm_oid = gs.idx_mrealms_by_name[txn, mrealm]
out = {"mrealm_oid": str(mrealm_oid), "nodes": [], "workers": []}
mdb = zlmdb.Database(dbpath="%s/.db-mrealm-%s" % (cbdir, mrealm_oid), maxsize=2 * 2**30, readonly=True)
ms = cfxdb.mrealmschema.MrealmSchema.attach(mdb)
with mdb.begin() as txn:
    for rec in ms.mnode_logs.select(txn, return_keys=False):
        out["nodes"].append(rec.marshal())
    for rec in ms.mworker_logs.select(txn, return_keys=False):
        out["workers"].append(rec.marshal())
print(json.dumps(out, default=str))
"""


def override_config(port: int) -> dict:
    """The built-in master config without blockchain and the /autobahn download, on loopback:``port``."""
    return {"version": 2, "controller": {"blockchain": None},
            "workers": [{"transports": ["COPY", "COPY", {"paths": {"autobahn": None},
                                                         "endpoint": {"interface": "127.0.0.1", "port": port}}]},
                        "COPY"]}


class CrossbarMaster:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="wf-cbmaster-"))
        self.cbdir = self.root / "master"
        self.cbdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.superuser_key = cryptosign.CryptosignKey.from_bytes(os.urandom(32))
        self.superuser_file = self.root / "superuser.pub"
        self.superuser_file.write_text(f"public-key-ed25519: {self.superuser_key.public_key(binary=False)}\n")
        (self.cbdir / "config.json").write_text(json.dumps(override_config(self.port)))
        self.log_path = self.root / "master.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> "CrossbarMaster":
        env = {**os.environ, "CROSSBAR_FABRIC_SUPERUSER": str(self.superuser_file)}
        env.pop("CROSSBAR_FABRIC_URL", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(CROSSBAR), "master", "start", "--cbdir", str(self.cbdir)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                         cwd=self.root)
        try:
            wait_port(self.port, self.proc, timeout=timeout)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """The port opens seconds before the master has booted: ready is when the auto-created
        mrealm ``default`` answers ``crossbarfabriccenter.mrealm.get_status`` (its controller runs
        in the last container to start; creating an mrealm before fails)."""
        deadline = time.monotonic() + timeout

        async def ready():
            while True:
                try:
                    s = await self.superuser("default")
                    try:
                        return await w(s.call("crossbarfabriccenter.mrealm.get_status"))
                    finally:
                        await s.shutdown()
                except Exception:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    await asyncio.sleep(0.5)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(ready())
        else:  # called from a test's event loop: wait in a thread of its own
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, ready()).result()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, kill: bool = False, timeout: float = 30.0) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            self.proc = None
            return
        try:
            os.killpg(p.pid, signal.SIGKILL if kill else signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        except ProcessLookupError:
            pass
        # the master's workers are in its process group: nothing of it may stay
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def kill(self) -> None:
        self.stop(kill=True)

    # -- the domain API, as the superuser ------------------------------------------------------------

    async def superuser(self, realm: str | None = None) -> Client:
        """An autobahn session authenticated with the superuser key (realm None: the global realm)."""
        loop = asyncio.get_running_loop()
        created: list[Client] = []
        key = self.superuser_key

        class Superuser(Client):
            def onConnect(self):
                self.join(self.config.realm, authmethods=["cryptosign"], authid="superuser",
                          authextra={"pubkey": key.public_key(binary=False), "trustroot": None, "challenge": None,
                                     "channel_binding": None})

            def onChallenge(self, challenge):
                return key.sign_challenge(challenge)

        def make():
            s = Superuser(ComponentConfig(realm=realm))
            created.append(s)
            return s

        factory = WampWebSocketClientFactory(make, url=self.url, serializers=[CBORSerializer()])
        await w(loop.create_connection(factory, "127.0.0.1", self.port))
        for _ in range(500):
            if created:
                break
            await asyncio.sleep(0.01)
        s = created[0]
        try:
            await w(asyncio.shield(s.joined), 15)
        except BaseException:
            await s.shutdown()
            raise
        return s

    async def create_mrealm(self, name: str) -> dict:
        s = await self.superuser()
        try:
            return await w(s.call("crossbarfabriccenter.mrealm.create_mrealm", {"name": name}), 30)
        finally:
            await s.shutdown()

    async def pair_node(self, pubkey: str, mrealm: str, name: str, authextra: dict | None = None) -> dict:
        s = await self.superuser()
        try:
            return await w(s.call("crossbarfabriccenter.mrealm.pair_node", pubkey, mrealm, name, authextra), 30)
        finally:
            await s.shutdown()

    def heartbeats(self, mrealm: str) -> dict:
        """``{"mrealm_oid", "nodes": [MNodeLog], "workers": [MWorkerLog]}`` as stored (marshalled)."""
        r = subprocess.run([str(CROSSBAR_PYTHON), "-c", _READ_HEARTBEATS, str(self.cbdir), mrealm],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"reading the master's databases failed:\n{r.stderr[-3000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])
