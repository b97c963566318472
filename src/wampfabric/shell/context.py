"""The shell's connections to a master: one session on the global realm, one per mrealm, opened
when first needed with the profile's key (cryptosign), and calls whose every failure becomes a
one-line ``ShellError``."""

from __future__ import annotations

import asyncio

from ..client import ApplicationError, ClientSession, Cryptosign, connect
from .profile import Profile, ProfileError

GLOBAL = None  # the master's global realm com.crossbario.fabric (a HELLO without a realm)
DEFAULT_TIMEOUT = 30.0


class ShellError(Exception):
    """What the user is told, in one line; the shell exits non-zero with it."""


def error_text(e: BaseException, url: str) -> str:
    """One line for any failure of a connection or a call."""
    if isinstance(e, ShellError):
        return str(e)
    if isinstance(e, ApplicationError):
        message = " ".join(str(a) for a in e.args_ if isinstance(a, (str, int, float)))
        return f"{e.error}: {message}" if message else e.error
    if isinstance(e, asyncio.TimeoutError):
        return f"the master at {url} did not answer in time"
    if isinstance(e, ConnectionRefusedError):
        return f"cannot reach the master at {url}: connection refused (is it running?)"
    if isinstance(e, OSError):
        return f"cannot reach the master at {url}: {e.strerror or e}"
    if isinstance(e, ProfileError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class ShellContext:
    """The connections of one shell run.  ``realm`` is the mrealm of mrealm commands (the
    profile's default unless given)."""

    def __init__(self, profile: Profile, realm: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.profile = profile
        self.realm = realm or profile.realm
        self.timeout = timeout
        self._sessions: dict[str | None, ClientSession] = {}
        self._key = None
        self.progress_enabled = True  # long operations show a status line on stderr (a terminal only)

    @property
    def url(self) -> str:
        return self.profile.url

    def _auth(self, authextra: dict | None = None):
        if self._key is None:
            self._key = self.profile.private_key()
        return [Cryptosign(self._key, authid=self.profile.authid, authextra=dict(authextra or {}))]

    async def session(self, mrealm: str | None = GLOBAL) -> ClientSession:
        """The joined session on the global realm (``None``) or on an mrealm (its name)."""
        s = self._sessions.get(mrealm)
        if s is not None and s.is_attached:
            return s
        try:
            s = await connect(self.url, mrealm, auth=self._auth(), timeout=self.timeout)
        except ApplicationError as e:
            where = f"mrealm '{mrealm}'" if mrealm else "the master"
            raise ShellError(f"{where} refused the session: {error_text(e, self.url)}") from None
        except asyncio.TimeoutError:
            where = f"mrealm '{mrealm}'" if mrealm else "the global realm"
            raise ShellError(f"no session on {where} of the master at {self.url} within {self.timeout:g} s "
                             f"(connecting and joining)") from None
        except (OSError, ProfileError, ConnectionError) as e:
            raise ShellError(error_text(e, self.url)) from None
        self._sessions[mrealm] = s
        return s

    async def authenticate(self, authextra: dict) -> dict:
        """One session on the global realm with ``authextra`` in HELLO (the activation flow of
        protocol §3: ``activation_code``, ``request_new_activation_code``); the WELCOME details.
        The master's ABORT is raised as it came (``ApplicationError``: reason and message), a
        connection failure as ShellError."""
        try:
            s = await connect(self.url, GLOBAL, auth=self._auth(authextra), timeout=self.timeout)
        except ApplicationError:
            raise
        except (OSError, asyncio.TimeoutError, ProfileError, ConnectionError) as e:
            raise ShellError(error_text(e, self.url)) from None
        details = dict(s.details or {})
        try:
            await asyncio.wait_for(s.leave(), 5)
        except Exception:
            pass
        return details

    def progress(self, text: str):
        """A context manager showing ``text`` with a spinner on stderr while a long operation runs,
        when stderr is a terminal (and ``progress_enabled``); nothing otherwise."""
        import contextlib
        import sys

        if not (self.progress_enabled and sys.stderr.isatty()):
            return contextlib.nullcontext()
        from rich.console import Console

        return Console(stderr=True).status(text)

    def need_realm(self) -> str:
        if not self.realm:
            raise ShellError("this command needs a management realm: --realm MREALM (or `realm` in the profile)")
        return self.realm

    async def call(self, mrealm: str | None, procedure: str, *args, **kwargs):
        """Call ``procedure`` on the global realm (mrealm None) or an mrealm; ShellError on failure."""
        s = await self.session(mrealm)
        try:
            return await asyncio.wait_for(s.call_payload(procedure, args, kwargs), self.timeout)
        except asyncio.TimeoutError:
            raise ShellError(f"no answer to {procedure} from the master at {self.url} within "
                             f"{self.timeout:g} s") from None
        except (ApplicationError, OSError, ConnectionError) as e:
            raise ShellError(error_text(e, self.url)) from None

    async def close(self) -> None:
        for s in list(self._sessions.values()):
            try:
                if s.is_attached:
                    await asyncio.wait_for(s.leave(), 5)
            except Exception:
                pass
        self._sessions.clear()
