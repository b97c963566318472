"""Crossbar.io's key file format, read in one place: the node key (``key.priv`` / ``key.pub``),
the shell's user keys, a master's superuser key file, watch-to-pair's ``key.pub`` files and an
edge's ``key.activate`` all use it.

A file is a header, a blank line, then ``tag: value`` lines (tags are case-insensitive; we
lower-case them). ``read_tags`` reads the tags; ``private_key`` / ``public_key_hex`` read the
Ed25519 key of such a file. Every problem is a ``KeyFileError`` (a ValueError) whose text names
the file and says what is wrong, for one error line without a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
PRIVATE_TAG = "private-key-ed25519"
PUBLIC_TAG = "public-key-ed25519"


class KeyFileError(ValueError):
    """A key file that cannot be read or used (``reason``: the OS's words when it cannot be read)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


def read_tags(path, *, strict: bool = False, header: bool = False, known=None) -> dict:
    """The ``tag: value`` lines of a key file.

    Lenient (the default): lines without a colon (a header), lines starting with a space or ``#``
    are skipped, a repeated tag keeps its first value. ``strict``: the lines after the header (up
    to the first blank line, when there is one) must each be ``tag: value`` (or a ``#`` comment),
    a tag may not repeat and, with ``known``, must be one of them; ``header``: the file must have
    the header and its blank line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise KeyFileError(f"{path}: cannot read the key file: {reason}", reason) from None
    lines = text.splitlines()
    tags: dict = {}
    if not strict:
        for line in lines:
            tag, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "#")):
                tags.setdefault(tag.strip().lower(), value.strip())
        return tags
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    if blank is None and header:
        raise KeyFileError(f"{path}: no blank line after the header (not a key file of this kind)")
    start = blank + 1 if blank is not None else 0
    for lineno, line in enumerate(lines[start:], start + 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise KeyFileError(f"{path}: line {lineno}: expected 'tag: value'")
        tag, value = (x.strip() for x in line.split(":", 1))
        tag = tag.lower()
        if known is not None and tag not in known:
            raise KeyFileError(f"{path}: line {lineno}: unknown tag '{tag}'")
        if tag in tags:
            raise KeyFileError(f"{path}: line {lineno}: tag '{tag}' given twice")
        tags[tag] = value
    return tags


def check_private_mode(path) -> None:
    """A private key file must not be accessible by group or others."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key file: {e.strerror}", e.strerror) from None
    if mode & 0o077:
        raise KeyFileError(f"{path}: the private key file is accessible by others (mode {mode:o}); "
                           f"run: chmod 600 {path}")


def private_key(path, tags: dict | None = None, *, check_mode: bool = True) -> Ed25519PrivateKey:
    """The Ed25519 private key of a key file (``private-key-ed25519``)."""
    if check_mode:
        check_private_mode(path)
    tags = read_tags(path) if tags is None else tags
    hexkey = tags.get(PRIVATE_TAG)
    if not hexkey:
        raise KeyFileError(f"{path}: no '{PRIVATE_TAG}: <hex>' line")
    if not HEX_KEY.fullmatch(hexkey):
        raise KeyFileError(f"{path}: {PRIVATE_TAG} is not 64 hex digits")
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(hexkey))


def public_key_hex(path, tags: dict | None = None, *, derive: bool = True) -> str:
    """The Ed25519 public key (64 lower-case hex digits) of a key file: ``public-key-ed25519``, else
    (``derive``) the public half of ``private-key-ed25519``."""
    tags = read_tags(path) if tags is None else tags
    pub = tags.get(PUBLIC_TAG)
    if pub is None and derive and tags.get(PRIVATE_TAG):
        return private_key(path, tags).public_key().public_bytes_raw().hex()
    if pub is None:
        raise KeyFileError(f"{path}: no '{PUBLIC_TAG}: <hex>' line (not a Crossbar.io key file)")
    if not HEX_KEY.fullmatch(pub):
        raise KeyFileError(f"{path}: {PUBLIC_TAG} is not 64 hex digits")
    return pub.lower()
