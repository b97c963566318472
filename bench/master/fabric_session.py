"""The superuser's session for bench/master: autobahn-python (asyncio) over WAMP-WebSocket with
CBOR, cryptosign with the superuser's key as Crossbar.io's shell authenticates (protocol
reference §3: authextra ``pubkey``, realm None for the global realm or an mrealm's name).

    async with Superuser(url, seed, realm=None) as s:
        await s.call("crossbarfabriccenter.mrealm.pair_node", pubkey, "bench", "node0001", None)
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import cryptosign
from autobahn.wamp.serializer import CBORSerializer
from autobahn.wamp.types import ComponentConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_seed() -> bytes:
    """A fresh Ed25519 private key (32 bytes)."""
    return os.urandom(32)


def pubkey_of(seed: bytes) -> str:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


class _Session(ApplicationSession):
    key: cryptosign.CryptosignKey

    def __init__(self, config):
        super().__init__(config)
        self.joined_f = asyncio.get_running_loop().create_future()
        self.left_f = asyncio.get_running_loop().create_future()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["cryptosign"], authid="superuser",
                  authextra={"pubkey": self.key.public_key(binary=False), "trustroot": None, "challenge": None,
                             "channel_binding": None})

    def onChallenge(self, challenge):
        return self.key.sign_challenge(challenge)

    def onJoin(self, details):
        if not self.joined_f.done():
            self.joined_f.set_result(details)

    def onLeave(self, details):
        if not self.joined_f.done():
            self.joined_f.set_exception(RuntimeError(f"join refused: {details.reason} {details.message}"))
        if not self.left_f.done():
            self.left_f.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.joined_f.done():
            self.joined_f.set_exception(RuntimeError("connection lost before WELCOME"))
        if not self.left_f.done():
            self.left_f.set_result(None)


class Superuser:
    def __init__(self, url: str, seed: bytes, realm: str | None = None, timeout: float = 30.0):
        self.url = url
        self.key = cryptosign.CryptosignKey.from_bytes(seed)
        self.realm = realm
        self.timeout = timeout
        self.session: _Session | None = None

    async def __aenter__(self) -> _Session:
        loop = asyncio.get_running_loop()
        key = self.key
        made: list = []

        def make():
            s = type("SuperuserSession", (_Session,), {"key": key})(ComponentConfig(realm=self.realm))
            made.append(s)
            return s

        u = urllib.parse.urlsplit(self.url)
        factory = WampWebSocketClientFactory(make, url=self.url, serializers=[CBORSerializer()])
        transport, _ = await asyncio.wait_for(loop.create_connection(factory, u.hostname, u.port), self.timeout)
        for _ in range(1000):
            if made:
                break
            await asyncio.sleep(0.01)
        if not made:
            transport.close()
            raise RuntimeError("no WAMP session was created")
        self.session = made[0]
        try:
            await asyncio.wait_for(asyncio.shield(self.session.joined_f), self.timeout)
        except BaseException:
            transport.close()
            raise
        return self.session

    async def __aexit__(self, *exc) -> None:
        s = self.session
        if s is not None and s.is_attached():
            try:
                s.leave()
                await asyncio.wait_for(asyncio.shield(s.left_f), 5)
            except Exception:
                pass
        if s is not None and s.transport is not None:
            s.transport.close()
