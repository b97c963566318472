"""Test helpers for the master: a master node started with the CLI as a user starts it, Ed25519
keys in Crossbar.io's key file format, and autobahn-python sessions authenticating with cryptosign
the way Crossbar.io's shell (users) and edge (nodes) do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.autobahn_client import JoinFailed
from support.nodes import REPO, free_port, wait_port

WAMPFABRIC = [sys.executable, "-m", "wampfabric"]
GLOBAL = "com.crossbario.fabric"
T = 30.0


def cli(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([*WAMPFABRIC, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(env or os.environ, PYTHONUNBUFFERED="1"), cwd=REPO)


class Key:
    """An Ed25519 key pair."""

    def __init__(self):
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        self.cryptosign = CryptosignKey.from_bytes(raw)
        self.pubkey = self.cryptosign.public_key()

    def write_pub(self, path: Path, **tags) -> Path:
        """A public key file as Crossbar.io's shell writes ``default.pub`` (a header, a blank line, tags)."""
        lines = ["Crossbar.io user public key", "", "creator: test@localhost",
                 *(f"{k}: {v}" for k, v in tags.items()), f"public-key-ed25519: {self.pubkey}"]
        path.write_text("\n".join(lines) + "\n")
        return path


class Master:
    """A master node directory made by ``wampfabric master init`` and run by ``master start``."""

    def __init__(self, env: dict | None = None, superuser: Key | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="wf-master-"))
        self.cbdir = self.root / "master"
        self.port = free_port()
        self.superuser = superuser
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        if superuser is not None:
            self.env["CROSSBAR_FABRIC_SUPERUSER"] = str(superuser.write_pub(self.root / "superuser.pub"))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "master.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def init(self, throttle: bool = False) -> subprocess.CompletedProcess:
        """``master init``; unless ``throttle``, the router's failed-authentication throttle is
        widened in the config (the tests fail many authentications on purpose, all from 127.0.0.1,
        and would wait for late ABORTs)."""
        r = cli("master", "init", "--cbdir", str(self.cbdir), "--listen", f"127.0.0.1:{self.port}", env=self.env)
        assert r.returncode == 0, r.stderr + r.stdout
        if not throttle:
            path = self.cbdir / "config.json"
            cfg = json.loads(path.read_text())
            cfg["workers"][0].setdefault("options", {})["auth_throttle"] = {"address_failures": 100000,
                                                                            "authid_failures": 100000}
            path.write_text(json.dumps(cfg, indent=2))
        return r

    def start(self, wait=True) -> "Master":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([*WAMPFABRIC, "master", "start", "--cbdir", str(self.cbdir)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root,
                                         start_new_session=True)
        if wait:
            try:
                wait_port(self.port, self.proc, timeout=T)
                self.wait_log("Node center1 ready")
            except Exception:
                self.kill()
                raise RuntimeError(f"master did not start:\n{self.log()[-4000:]}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = T, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in master log:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 20) -> int | None:
        """``wampfabric master stop`` (SIGTERM, waits); then make sure nothing is left."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            cli("master", "stop", "--cbdir", str(self.cbdir), env=self.env, timeout=timeout + 10)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class FabricSession(ApplicationSession):
    """A cryptosign session as Crossbar.io's shell (user) or edge (node, ``authrole="node"``) opens it."""

    def __init__(self, config, key: Key, realm, authid=None, authrole=None, authextra=None, gate=None):
        super().__init__(config)
        self.gate = gate  # an asyncio.Event: the answer to the CHALLENGE waits for it
        self.key = key
        self._join_realm = realm
        self._authid = authid
        self._authrole = authrole
        self._authextra = {"pubkey": key.pubkey, "trustroot": None, "challenge": None, "channel_binding": None,
                           **(authextra or {})}
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self.challenged = False

    def onConnect(self):
        self.join(self._join_realm, authmethods=["cryptosign"], authid=self._authid, authrole=self._authrole,
                  authextra=self._authextra)

    def onChallenge(self, challenge):
        self.challenged = True
        if self._authextra.get("channel_binding") == "tls-unique":
            cid = self._transport.transport_details.channel_id["tls-unique"]
            return self.key.cryptosign.sign_challenge(challenge, channel_id=cid, channel_id_type="tls-unique")
        if self.gate is None:
            return self.key.cryptosign.sign_challenge(challenge)

        async def answer():
            await self.gate.wait()
            return await self.key.cryptosign.sign_challenge(challenge)
        return asyncio.ensure_future(answer())

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(details.reason, details.message))
        return super().onLeave(details)

    def onDisconnect(self):
        if not self.joined.done():
            self.joined.set_exception(JoinFailed("transport closed before WELCOME"))
        if not self.left.done():
            self.left.set_result(None)

    async def close(self):
        try:
            if self.is_attached():
                self.leave()
                await asyncio.wait_for(asyncio.shield(self.left), 3)
        except Exception:
            pass
        try:
            if self._transport is not None:
                self.disconnect()
        except Exception:
            pass


SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


async def fabric_connect(url: str, key: Key, realm=None, authid=None, authrole=None, authextra=None,
                         serializer="cbor", timeout=10.0, gate=None, ssl=None) -> FabricSession:
    """A joined session, or JoinFailed(reason, message) with the router's ABORT."""
    from urllib.parse import urlparse

    loop = asyncio.get_running_loop()
    made = []

    def make():
        s = FabricSession(ComponentConfig(realm=realm), key, realm, authid, authrole, authextra, gate)
        made.append(s)
        return s

    u = urlparse(url)
    factory = WampWebSocketClientFactory(make, url=url, serializers=[SERIALIZERS[serializer]()])
    tls = {"ssl": ssl, "server_hostname": u.hostname} if ssl is not None else {}
    await asyncio.wait_for(loop.create_connection(factory, u.hostname, u.port, **tls), timeout)
    deadline = loop.time() + timeout
    while not made:
        if loop.time() > deadline:
            raise TimeoutError("no session created")
        await asyncio.sleep(0.01)
    s = made[0]
    try:
        await asyncio.wait_for(asyncio.shield(s.joined), timeout)
    except BaseException:
        await s.close()
        raise
    return s


def activation_code(master: Master, email: str, timeout: float = 10) -> str:
    path = master.cbdir / "activation-codes" / f"{email}.code"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"no activation code file {path}")
