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


class KeyError_(Exception):
    pass


# tags of the private key file that key.pub must not repeat
PRIVATE_TAGS = ("private-key-ed25519", "private-key-eth")


def _parse_tags(path: Path) -> dict:
    """The ``tag: value`` lines of a key file; the header (the lines before the first blank
    line, as Crossbar.io writes it) and ``#`` comments are skipped."""
    lines = path.read_text().splitlines()
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    start = blank + 1 if blank is not None else 0
    tags = {}
    for lineno, line in enumerate(lines[start:], start + 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise KeyError_(f"{path}: line {lineno}: expected 'tag: value'")
        k, v = line.split(":", 1)
        tags[k.strip().lower()] = v.strip()
    return tags


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
    mode = priv.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyError_(f"{priv}: private key file is accessible by others (mode {mode:o}); run: chmod 600 {priv}")
    tags = _parse_tags(priv)
    hexkey = tags.get("private-key-ed25519")
    if not hexkey:
        raise KeyError_(f"{priv}: no 'private-key-ed25519' tag")
    try:
        key = NodeKey(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(hexkey)))
    except ValueError as e:
        raise KeyError_(f"{priv}: invalid private key: {e}") from None
    pub = cbdir / "key.pub"
    if pub.exists():
        ptags = _parse_tags(pub)
        if ptags.get("public-key-ed25519") != key.public_hex:
            raise KeyError_(f"{pub}: public key does not match the private key in {priv}")
    else:
        pub.write_text(_key_file_text(PUBLIC_HEADER, _public_tags(tags)))
    return key, False
