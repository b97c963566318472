"""TLS endpoints (certificates generated here), client-certificate (``tls``)
authentication and cryptosign with ``tls-unique`` channel binding."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import binascii

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect as ws_connect

from support.nodes import free_port, start_node, stop_node

NOW = datetime.datetime.now(datetime.timezone.utc)


def make_cert(cn, issuer_cert=None, issuer_key=None, ca=False, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = make_cert("Test CA", ca=True)
    server, server_key = make_cert("localhost", ca, ca_key, san="localhost")
    client, client_key = make_cert("client-alice", ca, ca_key)
    rogue_ca, rogue_key = make_cert("Rogue CA", ca=True)
    rogue_client, rogue_client_key = make_cert("client-alice", rogue_ca, rogue_key)
    files = {}
    for name, obj in [("ca.pem", ca), ("server.pem", server), ("server.key", server_key), ("client.pem", client),
                      ("client.key", client_key), ("rogue.pem", rogue_client), ("rogue.key", rogue_client_key)]:
        (d / name).write_bytes(pem(obj))
        files[name] = str(d / name)
    files["client_sha1"] = ":".join(f"{b:02X}" for b in client.fingerprint(hashes.SHA1()))
    return files


@pytest.fixture(scope="module")
def ed_key():
    k = Ed25519PrivateKey.generate()
    priv = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv.hex(), pub.hex()


@pytest.fixture(scope="module")
def tls_node(pki, ed_key):
    ports = {}

    def config(p, rs_path):
        ports.update(ws=free_port(), rs=free_port())
        p.clear()
        p.update(ports)  # start_node waits for every port in this dict
        tls = {"key": pki["server.key"], "certificate": pki["server.pem"], "ca_certificates": [pki["ca.pem"]]}
        perms = [{"uri": "", "match": "prefix", "allow": {"call": True, "register": True, "publish": True,
                                                         "subscribe": True}}]
        return {"version": 2, "workers": [{"type": "router", "realms": [{"name": "realm1", "roles": [
            {"name": "anonymous", "permissions": perms}, {"name": "user", "permissions": perms}]}],
            "transports": [
                {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["ws"],
                                                   "tls": tls},
                 "auth": {"tls": {"type": "static", "principals": {
                     "alice": {"certificate-sha1": pki["client_sha1"], "role": "user"}}},
                     "cryptosign": {"type": "static", "principals": {
                         "bob": {"authorized_keys": [ed_key[1]], "role": "user"}}},
                     "anonymous": {"type": "static", "role": "anonymous"}}},
                {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ports["rs"],
                                                   "tls": tls},
                 "serializers": ["cbor", "msgpack", "json"]},
            ]}]}

    node = start_node(config)
    node.ports.update(ports)
    yield node
    stop_node(node)


def client_ctx(pki, cert="client.pem", key="client.key"):
    ctx = ssl.create_default_context(cafile=pki["ca.pem"])
    if cert:
        ctx.load_cert_chain(pki[cert], pki[key])
    return ctx


def test_plain_client_is_refused_on_tls_port(tls_node):
    with pytest.raises(Exception):
        ws_connect(f"ws://127.0.0.1:{tls_node.ports['ws']}/", subprotocols=["wamp.2.json"], open_timeout=3)
    tls_node.assert_alive()


def test_server_certificate_is_verified_by_client(tls_node, pki):
    bad = ssl.create_default_context()  # system CAs only: our test CA is unknown
    with pytest.raises(ssl.SSLError):
        ws_connect(f"wss://localhost:{tls_node.ports['ws']}/", subprotocols=["wamp.2.json"], ssl=bad,
                   open_timeout=3)


async def _join(url, pki, ctx, authmethods=None, authid=None, authextra=None, on_challenge=None):
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig

    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class S(ApplicationSession):
        def onConnect(self):
            self.join("realm1", authmethods=authmethods, authid=authid, authextra=authextra)

        def onChallenge(self, challenge):
            return on_challenge(self, challenge)

        def onJoin(self, details):
            joined.set_result((self, details))

        def onLeave(self, details):
            if not joined.done():
                joined.set_exception(RuntimeError(details.reason))
            self.disconnect()

    factory = WampWebSocketClientFactory(lambda: S(ComponentConfig("realm1")), url=url, serializers=None)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    await loop.create_connection(factory, "localhost", port, ssl=ctx, server_hostname="localhost")
    return await asyncio.wait_for(joined, 10)


async def test_tls_client_certificate_authentication(tls_node, pki):
    session, details = await _join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki),
                                   authmethods=["tls"])
    assert details.authmethod == "tls" and details.authid == "alice" and details.authrole == "user"
    session.leave()


async def test_tls_authentication_without_certificate_fails(tls_node, pki):
    with pytest.raises(RuntimeError) as e:
        await _join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
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

    session, details = await _join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
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
        await _join(f"wss://localhost:{tls_node.ports['ws']}/", pki, client_ctx(pki, cert=None),
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
