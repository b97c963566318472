"""The node key: an Ed25519 key pair in ``key.priv`` / ``key.pub``.

The files use Crossbar.io's tagged text format (``tag: value`` lines), so a
node directory can move between Crossbar.io and wampfabric.  ``key.priv`` is
created with mode 0600 (never readable by others, not even briefly).
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

from .. import __version__


class KeyError_(Exception):
    pass


def _parse_tags(path: Path) -> dict:
    tags = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise KeyError_(f"{path}: line {lineno}: expected 'tag: value'")
        k, v = line.split(":", 1)
        tags[k.strip()] = v.strip()
    return tags


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _header(kind: str) -> str:
    return (
        f"Crossbar.io node {kind} key - KEEP THIS SAFE!\n\n" if kind == "private"
        else f"Crossbar.io node {kind} key\n\n"
    )


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
        "node-software": f"wampfabric {__version__}",
        "public-key-ed25519": key.public_hex,
    }
    pub = "".join(f"{k}: {v}\n" for k, v in tags.items())
    priv = pub + f"private-key-ed25519: {key.private_hex}\n"
    cbdir.mkdir(parents=True, exist_ok=True)
    _write_private(cbdir / "key.priv", "# " + _header("private").strip() + "\n\n" + priv, 0o600)
    (cbdir / "key.pub").write_text("# " + _header("public").strip() + "\n\n" + pub)
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
        pub.write_text("".join(f"{k}: {v}\n" for k, v in tags.items() if k != "private-key-ed25519"))
    return key, False
