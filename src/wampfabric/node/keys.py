"""The node key: an Ed25519 key pair in ``key.priv`` / ``key.pub``.

The files use Crossbar.io's format, so a node directory can move between
Crossbar.io and wampfabric in both directions: a header line, a blank line, then
``tag: value`` lines.  Crossbar.io ignores everything before the first blank
line, refuses tags it does not know and requires ``creator``, ``created-at``,
``machine-id`` and ``public-key-ed25519`` (plus ``private-key-ed25519`` in
``key.priv``); we write exactly those.  Its optional tags (``node-authid``,
``node-cluster-ip``, ``public-adr-eth``, ``private-key-eth``) are kept when we
read a file Crossbar.io wrote.  ``key.priv`` is created with mode 0600 (never
readable by others, not even briefly).
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..common.keyfile import KeyFileError, private_key, read_tags


class KeyError_(Exception):
    pass


# tags of the private key file that key.pub must not repeat
PRIVATE_TAGS = ("private-key-ed25519", "private-key-eth")


def _parse_tags(path: Path) -> dict:
    """The ``tag: value`` lines of a key file (common/keyfile.py, strictly: the header before the
    first blank line and ``#`` comments skipped, any other line must be a tag)."""
    try:
        return read_tags(path, strict=True)
    except KeyFileError as e:
        raise KeyError_(str(e)) from None


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


PRIVATE_HEADER = "Crossbar.io node private key - KEEP THIS SAFE!\n\n"
PUBLIC_HEADER = "Crossbar.io node public key\n\n"


def _key_file_text(header: str, tags: dict) -> str:
    return header + "".join(f"{k}: {v}\n" for k, v in tags.items())


def _public_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if k not in PRIVATE_TAGS}


class NodeKey:
    def __init__(self, private: Ed25519PrivateKey):
        self.private = private

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_hex(self) -> str:
        return self.public_bytes.hex()

    @property
    def private_hex(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        ).hex()


def generate_key_files(cbdir: Path) -> NodeKey:
    key = NodeKey(Ed25519PrivateKey.generate())
    tags = {
        "creator": f"{getpass.getuser()}@{socket.gethostname()}",
        "created-at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "machine-id": platform.node(),
        "public-key-ed25519": key.public_hex,
        "private-key-ed25519": key.private_hex,
    }
    if not cbdir.is_dir():  # only `init` creates a node directory
        raise KeyError_(f"node directory {cbdir} does not exist")
    _write_private(cbdir / "key.priv", _key_file_text(PRIVATE_HEADER, tags), 0o600)
    (cbdir / "key.pub").write_text(_key_file_text(PUBLIC_HEADER, _public_tags(tags)))
    return key


def load_or_create_node_key(cbdir: Path) -> tuple[NodeKey, bool]:
    """Load the node key, creating it on first use; returns (key, created)."""
    priv = cbdir / "key.priv"
    if not priv.exists():
        return generate_key_files(cbdir), True
    tags = _parse_tags(priv)
    try:
        key = NodeKey(private_key(priv, tags))
    except KeyFileError as e:
        raise KeyError_(str(e)) from None
    pub = cbdir / "key.pub"
    if pub.exists():
        ptags = _parse_tags(pub)
        if ptags.get("public-key-ed25519") != key.public_hex:
            raise KeyError_(f"{pub}: public key does not match the private key in {priv}")
    else:
        pub.write_text(_key_file_text(PUBLIC_HEADER, _public_tags(tags)))
    return key, False
