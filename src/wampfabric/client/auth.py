"""Client-side authentication: what a ``ClientSession`` sends in HELLO and how it
answers CHALLENGE, one object per authentication method.

    session = await connect("ws://127.0.0.1:8080/ws", "realm1",
                            auth=[Cryptosign(private_key_hex, authid="alice")])

A list of authenticators offers several methods (HELLO ``authmethods`` in the list's
order); the router picks one and the matching object answers its CHALLENGE.  The
crypto of the router side lives in ``protocol/auth.py``; signing with a private key
(which only a client holds) lives here.
"""

from __future__ import annotations

import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..protocol import auth as crypto
from .session import AuthenticationError


class Authenticator:
    """One authentication method: ``method``, the HELLO ``authid``/``authextra`` it adds,
    and ``on_challenge(session, extra) -> (signature, extra)``."""

    method = ""

    def __init__(self, authid: str | None = None, authextra: dict | None = None):
        self.authid = authid
        self.authextra = dict(authextra or {})

    def on_challenge(self, session, extra: dict) -> tuple[str, dict]:  # pragma: no cover - interface
        raise NotImplementedError


class Anonymous(Authenticator):
    method = "anonymous"

    def on_challenge(self, session, extra):
        raise AuthenticationError("anonymous authentication got a CHALLENGE")


class Ticket(Authenticator):
    """``ticket``: the secret itself is the answer (use it over TLS only)."""

    method = "ticket"

    def __init__(self, ticket: str, authid: str | None = None, authextra: dict | None = None):
        super().__init__(authid, authextra)
        self.ticket = ticket

    def on_challenge(self, session, extra):
        return self.ticket, {}


class WampCra(Authenticator):
    """``wampcra``: HMAC-SHA256 of the challenge; salted secrets are derived as the
    challenge's ``salt``/``iterations``/``keylen`` say."""

    method = "wampcra"

    def __init__(self, secret: str, authid: str | None = None, authextra: dict | None = None):
        super().__init__(authid, authextra)
        self.secret = secret

    def on_challenge(self, session, extra):
        challenge = extra.get("challenge")
        if not isinstance(challenge, str):
            raise AuthenticationError("wampcra CHALLENGE without a challenge string")
        key = self.secret
        if "salt" in extra:
            key = crypto.wampcra_derive_key(self.secret, extra["salt"], extra.get("iterations", 1000),
                                            extra.get("keylen", 32))
        return crypto.wampcra_sign(key, challenge), {}


def load_private_key(key) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, the 32-octet seed, or its hex text."""
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, str):
        try:
            key = binascii.a2b_hex(key.strip())
        except (binascii.Error, ValueError):
            raise ValueError("an Ed25519 private key in hex must be 64 hex digits") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("an Ed25519 private key is 32 octets (64 hex digits)")
    return Ed25519PrivateKey.from_private_bytes(bytes(key))


class Cryptosign(Authenticator):
    """``cryptosign`` (WAMP-Cryptosign, Ed25519): HELLO carries ``authextra.pubkey``; the
    answer is the signature followed by the signed 32 octets (the challenge, XORed with
    the TLS channel id when ``channel_binding="tls-unique"``)."""

    method = "cryptosign"

    def __init__(self, private_key, authid: str | None = None, authextra: dict | None = None,
                 channel_binding: str | None = None):
        super().__init__(authid, authextra)
        if channel_binding not in (None, "tls-unique"):
            raise ValueError(f"unknown channel binding {channel_binding!r} (only 'tls-unique')")
        self.key = load_private_key(private_key)
        self.public_key = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                             serialization.PublicFormat.Raw).hex()
        self.channel_binding = channel_binding
        self.authextra.setdefault("pubkey", self.public_key)
        if channel_binding:
            self.authextra["channel_binding"] = channel_binding

    def on_challenge(self, session, extra):
        challenge = extra.get("challenge")
        try:
            challenge = binascii.a2b_hex(challenge)
        except (TypeError, binascii.Error, ValueError):
            raise AuthenticationError("cryptosign CHALLENGE without a hex challenge") from None
        if len(challenge) != 32:
            raise AuthenticationError("cryptosign challenge is not 32 octets")
        channel_id = None
        if self.channel_binding:
            get = getattr(session.transport, "channel_id", None)
            channel_id = get(self.channel_binding) if get else None
            if channel_id is None:
                raise AuthenticationError(f"channel binding {self.channel_binding} needs a TLS connection")
        message = crypto.cryptosign_message(challenge, channel_id)
        return (self.key.sign(message) + message).hex(), {}
