"""A test PKI and the TLS node: certificates generated for the run (a CA, a server certificate for
``localhost``, a client certificate ``client-alice`` and one of the same name from a rogue CA), an
Ed25519 key for cryptosign, and ``tls_config``: a router with a TLS WebSocket transport (tls,
cryptosign and anonymous auth) and a TLS RawSocket transport.  The fixtures ``pki``, ``ed_key`` and
``tls_node`` are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from support.nodes import free_port

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


def make_pki(d: Path) -> dict:
    """PEM files written to ``d``: name -> path, and ``client_sha1``: the client certificate's fingerprint."""
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


def make_ed_key() -> tuple[str, str]:
    """An Ed25519 key pair: (private seed, public key), hex."""
    k = Ed25519PrivateKey.generate()
    priv = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv.hex(), pub.hex()


def tls_config(pki: dict, ed_key: tuple[str, str]):
    """The config factory of the TLS node: ports ``ws`` (TLS WebSocket) and ``rs`` (TLS RawSocket)."""

    def config(ports, rs_path):
        ports.clear()
        ports.update(ws=free_port(), rs=free_port())  # start_node waits for every port in this dict
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

    return config


def client_ctx(pki, cert="client.pem", key="client.key"):
    ctx = ssl.create_default_context(cafile=pki["ca.pem"])
    if cert:
        ctx.load_cert_chain(pki[cert], pki[key])
    return ctx


async def tls_join(url, pki, ctx, authmethods=None, authid=None, authextra=None, on_challenge=None):
    """Join autobahn-python over TLS (``ctx``) to ``url`` (host localhost); (session, SessionDetails)."""
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
