"""Authentication crypto, sans-I/O (spec: advanced/authentication_*.md).

Only computations live here: challenges, signatures and their verification.
Who may authenticate, and as what, is the router's business
(``router/auth.py``).  Every comparison of secrets is constant-time and every
challenge comes from the OS CSPRNG.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def constant_time_equal(a, b) -> bool:
    if isinstance(a, str):
        a = a.encode("utf8")
    if isinstance(b, str):
        b = b.encode("utf8")
    return hmac.compare_digest(a, b)


# -- WAMP-CRA (authentication_cra.md) ------------------------------------------------------

def wampcra_challenge(authid: str, authrole: str, authprovider: str, session: int) -> str:
    """The CHALLENGE string: JSON with a fresh random nonce (single use)."""
    return json.dumps({
        "authid": authid,
        "authrole": authrole,
        "authmethod": "wampcra",
        "authprovider": authprovider,
        "nonce": secrets.token_urlsafe(24),
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "session": session,
    }, separators=(",", ":"))


def wampcra_sign(key, challenge: str) -> str:
    """Base64 HMAC-SHA256 of the challenge with ``key`` (the secret, or for salted
    secrets the derived key's base64 text, exactly as clients use it)."""
    if isinstance(key, str):
        key = key.encode("utf8")
    digest = hmac.new(key, challenge.encode("utf8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def wampcra_derive_key(secret: str, salt: str, iterations: int = 1000, keylen: int = 32) -> str:
    """PBKDF2-HMAC-SHA256 key derivation for salted WAMP-CRA secrets (base64 text)."""
    key = hashlib.pbkdf2_hmac("sha256", secret.encode("utf8"), salt.encode("utf8"), iterations, keylen)
    return base64.b64encode(key).decode("ascii")


def wampcra_verify(key, challenge: str, signature) -> bool:
    if not isinstance(signature, str):
        return False
    return constant_time_equal(wampcra_sign(key, challenge), signature)


# -- WAMP-Cryptosign (authentication_cryptosign.md) ----------------------------------------

def cryptosign_challenge() -> bytes:
    """32 random octets; sent hex-encoded in CHALLENGE.extra.challenge."""
    return secrets.token_bytes(32)


def cryptosign_message(challenge: bytes, channel_id: bytes | None) -> bytes:
    """What the client signs: the challenge, XORed with the TLS channel id when bound."""
    if channel_id is None:
        return challenge
    return bytes(a ^ b for a, b in zip(challenge, channel_id))


def cryptosign_verify(pubkey_hex: str, challenge: bytes, channel_id: bytes | None, signature) -> bool:
    """Check AUTHENTICATE.signature: hex of the 64-octet Ed25519 signature followed
    by the 32 octets that were signed."""
    if not isinstance(signature, str) or len(signature) != 192:
        return False
    try:
        signed = binascii.a2b_hex(signature)
        key = Ed25519PublicKey.from_public_bytes(binascii.a2b_hex(pubkey_hex))
    except (binascii.Error, ValueError):
        return False
    message = cryptosign_message(challenge, channel_id)
    if not constant_time_equal(signed[64:], message):
        return False
    try:
        key.verify(signed[:64], message)
    except InvalidSignature:
        return False
    return True


def is_pubkey_hex(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


# -- WAMP-SCRAM (authentication_scram.md) --------------------------------------------------
#
# Two dialects exist: the spec's ``wamp-scram`` (KDF "argon2id13"/"pbkdf2", channel binding
# input base64-encoded in AuthMessage), and the one autobahn-python and Crossbar.io speak as
# authmethod ``scram`` (KDF "argon2id-13"/"pbkdf2", "c=<binding name>" in AuthMessage).

def scram_nonce() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def scram_auth_message(authid: str, client_nonce: str, nonce: str, salt_b64: str, iterations: int,
                       channel_binding: str | None, cbind_data: str | None, spec_dialect: bool) -> bytes:
    if spec_dialect:
        authid = authid.replace("=", "=3D").replace(",", "=2C")
        flag = "n" if not channel_binding else f"p={channel_binding}"
        cbind_input = (flag + ",,").encode("ascii") + (base64.b64decode(cbind_data) if cbind_data else b"")
        c = base64.b64encode(cbind_input).decode("ascii")
    else:
        c = channel_binding or ""
    return (f"n={authid},r={client_nonce},r={nonce},s={salt_b64},i={iterations},c={c},r={nonce}").encode("utf8")


def scram_salted_password(password: str, kdf: str, salt: bytes, iterations: int, memory: int | None) -> bytes:
    """SaltedPassword as clients compute it (autobahn: the argon2 hash's base64 text)."""
    if kdf in ("argon2id-13", "argon2id13"):
        from argon2.low_level import Type, hash_secret

        encoded = hash_secret(secret=password.encode("utf8"), salt=salt, time_cost=iterations,
                              memory_cost=memory, parallelism=1, hash_len=32, type=Type.ID, version=19)
        return encoded.split(b"$")[-1]
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", password.encode("utf8"), salt, iterations, 32)
    raise ValueError(f"unknown KDF {kdf!r}")


def scram_keys(salted_password: bytes) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) for the authentication database."""
    client_key = hmac.new(salted_password, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), hmac.new(salted_password, b"Server Key", hashlib.sha256).digest()


def scram_verify(stored_key: bytes, server_key: bytes, auth_message: bytes, proof_b64) -> str | None:
    """Check a ClientProof; returns the base64 ServerSignature (the verifier) or None."""
    if not isinstance(proof_b64, str):
        return None
    try:
        proof = base64.b64decode(proof_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(proof) != 32:
        return None
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(client_signature, proof))
    if not constant_time_equal(hashlib.sha256(client_key).digest(), stored_key):
        return None
    return base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode("ascii")
