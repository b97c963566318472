"""Helpers of the metering service tests: signed usage records, the service run as a user runs it
(``wampfabric metering-service serve`` on a free port), plain HTTP against it, and a throw-away
PostgreSQL server (``PgServer``) for the PostgreSQL backend."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.nodes import free_port
from wampfabric.protocol.metering import COUNTER_FIELDS, sign_submission

WAMPFABRIC = str(Path(sys.executable).with_name("wampfabric"))
HOUR = 3600 * 10**9
PERIOD = 300 * 10**9
#: an hour boundary in the recent past (records are stamped with real times)
BASE_HOUR = (time.time_ns() // HOUR - 3) * HOUR


class Master:
    """A master's key pair: ``pub`` (hex), ``sign(record, sent=None, nonce=None) -> body``."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.pub = self.key.public_key().public_bytes_raw().hex()

    def record(self, mrealm_id: str, start: int, period: int = PERIOD, seq: int = 1, **counters) -> dict:
        rec = {"timestamp_from": start, "timestamp": start + period, "mrealm_id": mrealm_id, "pubkey": self.pub,
               "seq": seq, "processed": start + period + 10**9}
        rec.update({c: counters.get(c, 0) for c in COUNTER_FIELDS})
        return rec

    def sign(self, record: dict, sent: int | None = None, nonce: str | None = None) -> bytes:
        return sign_submission(record, self.key, time.time_ns() if sent is None else sent, nonce)


def mrealm() -> str:
    return str(uuid.uuid4())


def counters(i: int) -> dict:
    """Distinct, recognisable counter values for record ``i``."""
    return {c: (i + 1) * (k + 1) for k, c in enumerate(COUNTER_FIELDS)}


class Service:
    """``wampfabric metering-service serve`` in ``directory`` (SQLite) or on ``dsn``."""

    def __init__(self, directory: Path, dsn: str | None = None, max_skew: int | None = None):
        self.dir = Path(directory)
        self.dsn, self.max_skew = dsn, max_skew
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.logfile = self.dir.parent / f"{self.dir.name}-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.dir / "api-token").read_text().strip()

    def start(self, timeout: float = 15.0) -> "Service":
        cmd = [WAMPFABRIC, "metering-service", "serve", "--dir", str(self.dir), "--port", str(self.port)]
        if self.dsn:
            cmd += ["--dsn", self.dsn]
        if self.max_skew is not None:
            cmd += ["--max-skew", str(self.max_skew)]
        env = {k: v for k, v in os.environ.items() if k != "WAMPFABRIC_METERING_DSN"}
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"metering service exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"metering service did not answer /health:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.request("GET", "/health")[0] == 200

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10.0) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
        status, _, data = self.request("POST", "/submit", body, {"Content-Type": content_type})
        return status, json.loads(data)

    def api(self, path: str, token: str | None = "default") -> tuple[int, dict, bytes]:
        headers = {}
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("GET", path, headers=headers)

    def raw(self, data: bytes, timeout: float = 10.0, read_all: bool = True) -> bytes:
        """Send ``data`` as is on a new connection; what comes back until the service closes (or
        the first answer's headers and body when ``read_all`` is false)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
                if not read_all and b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
                    if length and len(rest) >= length[0]:
                        break
            return out


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# -- PostgreSQL -------------------------------------------------------------------------------

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin",
               "/usr/local/bin", "/usr/bin"]


def _pg_bin(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which(name)


class PgServer:
    """A PostgreSQL server of its own in a temporary directory: 127.0.0.1 on a free port, its
    Unix socket inside the directory, trust authentication.  As root, initdb and pg_ctl run as
    the ``postgres`` user (initdb refuses root), so the directory is made in /tmp (the test run's
    own temporary directory is root's, mode 0700) and removed by ``stop``."""

    def __init__(self):
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("the PostgreSQL tests need the PostgreSQL server binaries initdb and pg_ctl (looked in "
                               f"{', '.join(PG_BIN_DIRS)} and PATH; on Debian: apt-get install postgresql-15)")
        self.as_root = os.geteuid() == 0
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="wf-metering-pg-", dir="/tmp" if self.as_root else None))
        self.data, self.sock = self.dir / "data", self.dir / "sock"
        self.sock.mkdir()
        self._dbs = 0
        self.started = False

    def _run(self, *cmd: str) -> None:
        if self.as_root:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}")

    def start(self) -> "PgServer":
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sock}"
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", opts, "-w", "-t", "60",
                  "start")
        self.started = True
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._dbs += 1
        name = f"metering{self._dbs}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
