"""TLS endpoints (certificates generated for the run, support/tls.py), client-certificate (``tls``)
authentication and cryptosign with ``tls-unique`` channel binding."""

from __future__ import annotations

import asyncio
import ssl
import binascii

import pytest
from websockets.sync.client import connect as ws_connect

from support.tls import client_ctx, tls_join


def test_plain_client_is_refused_on_tls_port(tls_node):
    with pytest.raises(Exception):
        ws_connect(f"ws://127.0.0.1:{tls_node.ports['ws']}/", subprotocols=["wamp.2.json"], open_timeout=3)
    tls_node.assert_alive()


def test_server_certificate_is_verified_by_client(tls_node, pki):
    bad = ssl.create_default_context()  # system CAs only: our test CA is unknown
    with pytest.raises(ssl.SSLError):
        ws_connect(f"wss://localhost:{tls_node.ports['ws']}/", subprotocols=["wamp.2.json"], ssl=bad,
                   open_timeout=3)


async def test_tls_client_certificate_authentication(tls_node, pki):
    session, details = await tls_join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki),
                                   authmethods=["tls"])
    assert details.authmethod == "tls" and details.authid == "alice" and details.authrole == "user"
    session.leave()


async def test_tls_authentication_without_certificate_fails(tls_node, pki):
    with pytest.raises(RuntimeError) as e:
        await tls_join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
                    authmethods=["tls"])
    assert "authentication_failed" in str(e.value) or "no_auth_method" in str(e.value)


def test_certificate_from_unknown_ca_is_rejected(tls_node, pki):
    with pytest.raises(Exception):
        with ws_connect(f"wss://localhost:{tls_node.ports['ws']}/", subprotocols=["wamp.2.json"],
                        ssl=client_ctx(pki, "rogue.pem", "rogue.key"), open_timeout=3) as ws:
            ws.recv(timeout=3)
    tls_node.assert_alive()


async def test_cryptosign_with_tls_unique_channel_binding(tls_node, pki, ed_key):
    from autobahn.wamp.cryptosign import CryptosignKey

    key = CryptosignKey.from_bytes(binascii.a2b_hex(ed_key[0]))

    def on_challenge(session, challenge):
        assert challenge.extra["channel_binding"] == "tls-unique"
        return key.sign_challenge(challenge, channel_id=session._transport.transport_details.channel_id["tls-unique"],
                                  channel_id_type="tls-unique")

    session, details = await tls_join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
                                   authmethods=["cryptosign"], authid="bob",
                                   authextra={"pubkey": ed_key[1], "channel_binding": "tls-unique"},
                                   on_challenge=on_challenge)
    assert details.authmethod == "cryptosign" and details.authid == "bob"
    session.leave()


async def test_cryptosign_signature_without_binding_is_rejected_when_binding_requested(tls_node, pki, ed_key):
    from autobahn.wamp.cryptosign import CryptosignKey

    key = CryptosignKey.from_bytes(binascii.a2b_hex(ed_key[0]))

    def on_challenge(session, challenge):
        return key.sign_challenge(challenge)  # signs the bare challenge, not bound to this TLS channel

    with pytest.raises(RuntimeError) as e:
        await tls_join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
                    authmethods=["cryptosign"], authid="bob",
                    authextra={"pubkey": ed_key[1], "channel_binding": "tls-unique"}, on_challenge=on_challenge)
    assert "authentication_failed" in str(e.value)


async def test_rawsocket_over_tls(tls_node, pki):
    from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class S(ApplicationSession):
        async def onJoin(self, details):
            await self.register(lambda x: x * 2, "com.tls.double")
            joined.set_result(await self.call("com.tls.double", 21))
            self.leave()

    factory = WampRawSocketClientFactory(lambda: S(ComponentConfig("realm1")))
    await loop.create_connection(factory, "localhost", tls_node.ports["rs"], ssl=client_ctx(pki, cert=None),
                                 server_hostname="localhost")
    assert await asyncio.wait_for(joined, 10) == 42
