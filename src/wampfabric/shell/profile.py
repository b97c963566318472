"""Shell profiles: which master, with which key, in which mrealm by default.

The shell directory is ``$WAMPFABRIC_SHELL_DIR`` or ``~/.wampfabric`` (created 0700).  It holds
``config.ini`` and one key pair per profile::

    [shell]
    default = default

    [profile default]
    url = ws://127.0.0.1:9000/ws
    privkey = default.priv         ; relative to the shell directory, or absolute
    authid = alice@example.com     ; the user's email (HELLO authid); none for the superuser key
    realm = m1                     ; the default mrealm of mrealm commands (optional)

The key files use Crossbar.io's format (``tag: value`` lines after a header, ``private-key-ed25519``
in ``<name>.priv`` (mode 0600), ``public-key-ed25519`` in both), so Crossbar.io's shell key
(``~/.crossbar/default.priv``) can be used as it is (``shell init --privkey``), e.g. the key of
``CROSSBAR_FABRIC_SUPERUSER``.
"""

from __future__ import annotations

import configparser
import getpass
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..common import keyfile
from ..common.keyfile import HEX_KEY  # noqa: F401  (commands.py uses it from here)

DIR_ENV = "WAMPFABRIC_SHELL_DIR"
CONFIG = "config.ini"
DEFAULT_URL = "ws://127.0.0.1:9000/ws"
PROFILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
EMAIL = re.compile(r"[A-Za-z0-9_%+\-][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-][A-Za-z0-9.\-]*")  # the master's rule


class ProfileError(Exception):
    """A profile that cannot be used; ``str()`` is one line for the user."""


@dataclass
class Profile:
    name: str
    url: str
    privkey: Path
    authid: str | None = None
    realm: str | None = None

    def private_key(self) -> Ed25519PrivateKey:
        return read_private_key(self.privkey)

    def public_key_hex(self) -> str:
        return self.private_key().public_key().public_bytes_raw().hex()


def shell_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".wampfabric").expanduser()


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key of a Crossbar.io-format private key file; ProfileError otherwise (and when
    others may read the file)."""
    try:
        return keyfile.private_key(Path(path))
    except keyfile.KeyFileError as e:
        raise ProfileError(str(e)) from None


def read_public_key_hex(path: Path) -> str:
    """The Ed25519 public key (64 hex digits) of a Crossbar.io-format key file, public or private
    (``public-key-ed25519``, else derived from ``private-key-ed25519``); ProfileError otherwise."""
    try:
        return keyfile.public_key_hex(Path(path))
    except keyfile.KeyFileError as e:
        raise ProfileError(str(e)) from None


def valid_email(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 254 and EMAIL.fullmatch(value) is not None


def write_key_pair(directory: Path, name: str, authid: str | None) -> Path:
    """A new key pair ``<name>.priv`` (0600, never readable by others) / ``<name>.pub``; returns
    the private key file's path.  Refuses to overwrite."""
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes_raw().hex()
    priv_hex = key.private_bytes_raw().hex()
    tags = {"creator": f"{getpass.getuser()}@{socket.gethostname()}",
            "created-at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "user-id": authid or "", "public-key-ed25519": pub}
    priv = directory / f"{name}.priv"
    body = "".join(f"{k}: {v}\n" for k, v in tags.items())
    try:
        fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ProfileError(f"{priv} exists: not overwriting a key") from None
    with os.fdopen(fd, "w") as f:
        f.write("Crossbar.io user private key - KEEP THIS SAFE!\n\n" + body + f"private-key-ed25519: {priv_hex}\n")
    (directory / f"{name}.pub").write_text("Crossbar.io user public key\n\n" + body)
    return priv


class Profiles:
    """The profiles of a shell directory (``config.ini``)."""

    def __init__(self, directory: Path | None = None):
        self.dir = Path(directory) if directory is not None else shell_dir()
        self.path = self.dir / CONFIG
        self.cp = configparser.ConfigParser(interpolation=None)
        if self.path.exists():
            try:
                self.cp.read(self.path)
            except configparser.Error as e:
                raise ProfileError(f"{self.path}: {str(e).splitlines()[0]}") from None

    def names(self) -> list[str]:
        return [s[len("profile "):] for s in self.cp.sections() if s.startswith("profile ")]

    @property
    def default(self) -> str | None:
        name = self.cp.get("shell", "default", fallback=None)
        if name is None and self.names():
            name = self.names()[0]
        return name

    def has(self, name: str) -> bool:
        return self.cp.has_section(f"profile {name}")

    def set_default(self, name: str) -> None:
        if not self.has(name):
            raise ProfileError(f"no profile '{name}' in {self.path} (profiles: {', '.join(self.names()) or 'none'})")
        if not self.cp.has_section("shell"):
            self.cp.add_section("shell")
        self.cp["shell"]["default"] = name
        self.save()

    def get(self, name: str | None = None) -> Profile:
        name = name or self.default
        if name is None:
            raise ProfileError(f"no shell profile in {self.dir}: run `wampfabric shell init`")
        section = f"profile {name}"
        if not self.cp.has_section(section):
            raise ProfileError(f"no profile '{name}' in {self.path} (profiles: {', '.join(self.names()) or 'none'})")
        sec = self.cp[section]
        priv = Path(sec.get("privkey", f"{name}.priv")).expanduser()
        if not priv.is_absolute():
            priv = self.dir / priv
        return Profile(name=name, url=sec.get("url", DEFAULT_URL), privkey=priv, authid=sec.get("authid") or None,
                       realm=sec.get("realm") or None)

    def put(self, profile: Profile, make_default: bool = False) -> None:
        if not PROFILE_NAME.fullmatch(profile.name):
            raise ProfileError(f"'{profile.name}' is not a profile name (letters, digits, '_', '-', '.')")
        section = f"profile {profile.name}"
        if not self.cp.has_section(section):
            self.cp.add_section(section)
        sec = self.cp[section]
        sec["url"] = profile.url
        try:
            sec["privkey"] = str(profile.privkey.relative_to(self.dir))
        except ValueError:
            sec["privkey"] = str(profile.privkey)
        for key in ("authid", "realm"):
            value = getattr(profile, key)
            if value:
                sec[key] = value
            elif key in sec:
                del sec[key]
        if make_default or not self.cp.has_option("shell", "default"):
            if not self.cp.has_section("shell"):
                self.cp.add_section("shell")
            self.cp["shell"]["default"] = profile.name
        self.save()

    def save(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            self.cp.write(f)
        os.replace(tmp, self.path)
