"""Watch-to-pair: nodes whose key files appear in a directory are paired automatically.

Enabled by the environment variable ``CROSSBAR_WATCH_TO_PAIR`` = a directory (as Crossbar.io's
master with ``auto_default_mrealm.watch_to_pair: "${CROSSBAR_WATCH_TO_PAIR}"``). Every
``CROSSBAR_WATCH_TO_PAIR_PERIOD`` seconds (default 10) the master looks into each subdirectory
(recursively, following symbolic links) for ``key.pub`` files (a node directory), and pairs every
public key it does not know yet with the management realm ``default`` (created, owned by the
superuser, if missing; the superuser key must be configured, it owns the pairings). The node's name
is the key file's ``node-authid`` tag, else ``node-<first 8 hex digits of its oid>``.

Beside the ``key.pub`` it writes ``key.activate`` (unless one exists), in the format Crossbar.io's
edge reads (and ours): a header line, a blank line, ``tag: value`` lines ``created-at``,
``management-url``, ``management-realm``, ``management-realm-oid``, ``node-oid``, ``node-authid``,
``public-key-ed25519`` (and ``node-cluster-ip`` when the key file has one). The management URL
is ``CROSSBAR_FABRIC_URL`` when set, else the master's own WebSocket listener.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..client.session import ApplicationError
from ..common import keyfile
from ..protocol.auth import is_pubkey_hex
from .runtime import NODE_NAME

log = logging.getLogger("wampfabric.master.watch")

ENV_DIR = "CROSSBAR_WATCH_TO_PAIR"
ENV_PERIOD = "CROSSBAR_WATCH_TO_PAIR_PERIOD"
DEFAULT_MREALM = "default"
TAG = re.compile(r"[a-z0-9][a-z0-9\-]*")


def read_tags(path: Path) -> dict:
    """The ``tag: value`` lines of a Crossbar.io key file (common/keyfile.py; header lines without a
    tag are skipped); OSError when it cannot be read."""
    try:
        tags = keyfile.read_tags(path)
    except keyfile.KeyFileError as e:
        raise OSError(e.reason or str(e)) from None
    return {tag: value for tag, value in tags.items() if TAG.fullmatch(tag)}


def scan(root: Path) -> list[tuple[Path, dict]]:
    """(node directory, tags of its key.pub) for every key.pub below the subdirectories of root."""
    found = []
    try:
        subdirs = [e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=True)]
    except OSError as e:
        log.warning("watch-to-pair: cannot read %s: %s", root, e.strerror)
        return found
    for sub in sorted(subdirs):
        for dirpath, _dirs, files in os.walk(sub, followlinks=True):
            if "key.pub" in files:
                path = Path(dirpath) / "key.pub"
                try:
                    found.append((Path(dirpath), read_tags(path)))
                except OSError as e:
                    log.warning("watch-to-pair: cannot read %s: %s", path, e.strerror)
    return found


def management_url(worker) -> str | None:
    """``CROSSBAR_FABRIC_URL``, else the URL of the master's first WebSocket listener."""
    url = os.environ.get("CROSSBAR_FABRIC_URL", "").strip()
    if url:
        return url
    for info in worker.transports.values():
        cfg = info.config
        ep = cfg.get("endpoint", {})
        if ep.get("type") != "tcp":
            continue
        path = ""
        if cfg["type"] == "web":
            ws = [p for p, svc in cfg.get("paths", {}).items() if svc.get("type") == "websocket"]
            if not ws:
                continue
            path = ws[0].strip("/")
        elif cfg["type"] != "websocket":
            continue
        host = ep.get("interface") or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = os.uname().nodename
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if ep.get("tls") else "ws"
        return f"{scheme}://{host}:{ep['port']}/{path}"
    return None


class WatchToPair:
    def __init__(self, master, domain, root: Path, period: float):
        self.master = master
        self.domain = domain
        self.root = root
        self.period = period
        self._task: asyncio.Task | None = None

    @classmethod
    def from_env(cls, master, domain) -> "WatchToPair | None":
        root = os.environ.get(ENV_DIR, "").strip()
        if not root:
            return None
        path = Path(root).expanduser()
        if not path.is_dir():
            log.error("watch-to-pair disabled: %s=%s is not a directory", ENV_DIR, root)
            return None
        if master.superuser_pubkey is None:
            log.error("watch-to-pair disabled: the pairings need an owner, and no superuser key is configured "
                      "(CROSSBAR_FABRIC_SUPERUSER)")
            return None
        try:
            period = float(os.environ.get(ENV_PERIOD, "10"))
            if not 0 < period <= 86400:
                raise ValueError
        except ValueError:
            log.error("watch-to-pair disabled: %s must be a number of seconds (0 < x <= 86400)", ENV_PERIOD)
            return None
        log.info("Watch-to-pair enabled: %s, every %g s", path, period)
        return cls(master, domain, path, period)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                found = await loop.run_in_executor(None, scan, self.root)
                await self.pair_new(found)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch-to-pair: scan of %s failed", self.root)
            await asyncio.sleep(self.period)

    async def _default_mrealm(self):
        store = self.master.store
        mrealm = store.mrealm_by_name(DEFAULT_MREALM)
        if mrealm is None:
            owner = store.ensure_user("superuser")
            mrealm = store.create_mrealm(DEFAULT_MREALM, owner, label="default mrealm",
                                         description="Default management realm (created by watch-to-pair)",
                                         router_worker=self.master.worker.worker_id)
            log.info("Watch-to-pair: management realm '%s' created (oid %s)", DEFAULT_MREALM, mrealm.oid)
        if not self.master.running(mrealm.name):
            await self.master.start_mrealm(mrealm)
        return mrealm

    async def pair_new(self, found) -> int:
        store = self.master.store
        new = []
        for nodedir, tags in found:
            pubkey = tags.get("public-key-ed25519", "").lower()
            if not is_pubkey_hex(pubkey):
                log.warning("watch-to-pair: %s/key.pub has no valid public-key-ed25519", nodedir)
                continue
            if store.node_by_pubkey(pubkey) is None:
                new.append((nodedir, tags, pubkey))
        if not new:
            return 0
        mrealm = await self._default_mrealm()
        owner = store.ensure_user("superuser")
        paired = 0
        for nodedir, tags, pubkey in new:
            oid_hint = uuid.uuid4()
            authid = tags.get("node-authid")
            if not authid or not NODE_NAME.fullmatch(authid):
                authid = f"node-{str(oid_hint)[:8]}"
            cluster_ip = tags.get("node-cluster-ip") or None
            authextra = {"cluster_ip": cluster_ip, "mrealm_oid": str(mrealm.oid)}
            try:
                node = self.domain.pair(pubkey, mrealm, authid, authextra, owner, cluster_ip)
            except ApplicationError as e:
                log.warning("watch-to-pair: node in %s not paired: %s", nodedir, e)
                continue
            paired += 1
            self.write_activation(nodedir, node, mrealm, pubkey, cluster_ip)
        return paired

    def write_activation(self, nodedir: Path, node: dict, mrealm, pubkey: str, cluster_ip) -> None:
        path = nodedir / "key.activate"
        url = management_url(self.master.worker)
        tags = {
            "created-at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "management-url": url,
            "management-realm": mrealm.name,
            "management-realm-oid": str(mrealm.oid),
            "node-oid": node["oid"],
            "node-cluster-ip": cluster_ip,
            "node-authid": node["authid"],
            "public-key-ed25519": pubkey,
        }
        text = "Crossbar.io node activation\n\n" + "".join(f"{k}: {v}\n" for k, v in tags.items() if v is not None)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            log.warning("watch-to-pair: %s exists: not overwritten", path)
            return
        except OSError as e:
            log.warning("watch-to-pair: cannot write %s: %s", path, e.strerror)
            return
        with os.fdopen(fd, "w") as f:
            f.write(text)
        log.info("Watch-to-pair: node '%s' paired with '%s', %s written", node["authid"], mrealm.name, path)
