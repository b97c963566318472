"""Hosts apart on one machine: Linux network namespaces joined by veth pairs to a switch.

``Network(tag)`` makes a switch namespace holding a bridge; ``net.host("edge1")`` makes a
namespace (a "host") with ``lo`` up and one interface ``eth0`` whose veth peer is a port of the
bridge, addressed ``10.<a>.<b>.<n>/24``. Nothing is created in the root namespace: no interface,
address or route of the machine changes, and names and addresses cannot clash with another run
(namespace names carry the tag, this process's pid and random hex; interface names live inside
the namespaces).

- ``host.popen(argv)`` runs a process inside (``ip netns exec``, its own session, so its whole
  process group can be signalled); ``host.run(argv)`` waits for it.
- ``host.connect(ip, port)`` returns a connected socket of the host's network stack, made by
  the calling thread entering the namespace (``setns``) just for the ``socket()`` call: asyncio
  clients in the test process (``loop.create_connection(factory, sock=...)``) then talk from that
  host, across its veth. ``host.free_port()`` and ``host.wait_port()`` likewise.
- ``net.cut(host)`` sets the host's port on the switch down (a pulled cable: the host's eth0 loses
  its carrier, packets are dropped, no connection is told); ``net.restore(host)`` sets it up.
- ``net.close()`` SIGKILLs every process still in any of the namespaces (``ip netns pids``: all
  of them were started by this network's user, the names are unique) and deletes the
  namespaces, which removes their interfaces; it is safe to call twice and after a partial setup.

``Network`` raises ``NetnsUnavailable`` with the precise reason when the machine does not allow
namespaces (no ``ip``, not root, a container without CAP_SYS_ADMIN ...), found by trying.
"""

from __future__ import annotations

import ctypes
import os
import random
import secrets
import signal
import socket
import subprocess
import time

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be used here (the message says why)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise NetnsUnavailable("the 'ip' command (iproute2) is not installed") from None
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, ["ip", *args], r.stdout, r.stderr)
    return r


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Host:
    """One network namespace with ``lo`` and ``eth0`` (address ``ip``)."""

    def __init__(self, network: "Network", role: str, ns: str, ip: str, port: str):
        self.network = network
        self.role = role
        self.ns = ns  # the namespace's name (``ip netns``)
        self.ip = ip
        self.port = port  # the bridge port on the switch that is this host's cable

    def __repr__(self) -> str:
        return f"<Host {self.role} {self.ns} {self.ip}>"

    # -- processes ----------------------------------------------------------------------------------------

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        """Start ``argv`` inside the namespace (``ip netns exec`` execs it: the pid is the
        process's own) in a new session."""
        kw.setdefault("start_new_session", True)
        return subprocess.Popen(self.argv(argv), **kw)

    def run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(self.argv(argv), **kw)

    def pids(self) -> list[int]:
        r = _ip("netns", "pids", self.ns, check=False)
        return [int(x) for x in r.stdout.split()] if r.returncode == 0 else []

    # -- sockets of this host, made by the calling thread -----------------------------------------------

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM) -> socket.socket:
        """A socket of this namespace's network stack (the calling thread enters the namespace for
        the ``socket()`` call only; a socket keeps the namespace it was made in)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(os.path.join(NETNS_DIR, self.ns), os.O_RDONLY)
            try:
                _setns(target)
                try:
                    return socket.socket(family, type)
                finally:
                    _setns(own)  # an error here would leave the thread elsewhere: raise it
            finally:
                os.close(target)
        finally:
            os.close(own)

    def connect(self, host: str, port: int, timeout: float = 5.0) -> socket.socket:
        """A TCP connection from this host, non-blocking once connected (for asyncio)."""
        s = self.socket()
        try:
            s.settimeout(timeout)
            s.connect((host, port))
            s.setblocking(False)
            return s
        except BaseException:
            s.close()
            raise

    def free_port(self, host: str | None = None) -> int:
        """A TCP port free on this host (below the ephemeral range, as tests/support/nodes.py)."""
        while True:
            port = random.randrange(20000, 32000)
            with self.socket() as s:
                try:
                    s.bind((host or self.ip, port))
                    return port
                except OSError:
                    continue

    def wait_port(self, host: str, port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process {proc.args} exited with {proc.returncode} before {host}:{port} "
                                   f"opened in {self.ns}")
            try:
                self.connect(host, port, timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{host}:{port} did not open in {self.ns} within {timeout} s") from None
                time.sleep(0.05)


class Network:
    """A switch namespace with a bridge and the hosts on it (see the module docstring)."""

    def __init__(self, tag: str = "wf"):
        self.prefix = f"{tag}{os.getpid()}{secrets.token_hex(2)}"
        self.subnet = f"10.{random.randrange(1, 255)}.{random.randrange(0, 256)}"
        self.namespaces: list[str] = []
        self.hosts: dict[str, Host] = {}
        self.switch = self._add_ns("sw")
        try:
            self._sw("link", "add", "br0", "type", "bridge")
            self._sw("link", "set", "br0", "up")
            self._sw("link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            self.close()
            raise NetnsUnavailable(f"cannot make a bridge in a network namespace: {' '.join(e.cmd)}: "
                                   f"{e.stderr.strip()}") from None

    def _add_ns(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        r = _ip("netns", "add", name, check=False)
        if r.returncode != 0:
            if not self.namespaces:
                raise NetnsUnavailable(f"'ip netns add {name}' failed: {r.stderr.strip()} "
                                       f"(network namespaces need root / CAP_SYS_ADMIN)")
            raise RuntimeError(f"'ip netns add {name}' failed: {r.stderr.strip()}")
        self.namespaces.append(name)
        return name

    def _sw(self, *args: str) -> subprocess.CompletedProcess:
        return _ip("-n", self.switch, *args)

    def host(self, role: str) -> Host:
        """A new namespace plugged into the switch; its address is ``<subnet>.<n>``, n from 2 up
        in order of creation."""
        if role in self.hosts:
            raise ValueError(f"host {role!r} exists")
        n = len(self.hosts) + 2
        ns = self._add_ns(role)
        port = f"p{n}"
        ip = f"{self.subnet}.{n}"
        self._sw("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._sw("link", "set", port, "master", "br0")
        self._sw("link", "set", port, "up")
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        h = Host(self, role, ns, ip, port)
        self.hosts[role] = h
        return h

    def check(self, host: Host) -> None:
        """Raise NetnsUnavailable if processes or sockets cannot be put into ``host``'s namespace."""
        r = host.run(["true"], timeout=30)
        if r.returncode != 0:
            raise NetnsUnavailable(f"'ip netns exec {host.ns} true' failed: {r.stderr.strip()}")
        try:
            host.socket().close()
        except OSError as e:
            raise NetnsUnavailable(f"cannot enter network namespace {host.ns} from the test process: {e}") from None

    def cut(self, host: Host) -> None:
        """Pull ``host``'s cable: its port on the switch goes down."""
        self._sw("link", "set", host.port, "down")

    def restore(self, host: Host) -> None:
        self._sw("link", "set", host.port, "up")

    def carrier(self, host: Host) -> bool:
        """Whether ``host``'s eth0 has its link (the switch's port is up)."""
        r = _ip("-n", host.ns, "-o", "link", "show", "eth0")
        return "NO-CARRIER" not in r.stdout and "LOWER_UP" in r.stdout

    def close(self) -> None:
        """Kill whatever still runs in the namespaces, then delete them (and so their interfaces)."""
        for ns in self.namespaces:
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.namespaces):
            deadline = time.monotonic() + 5
            while _ip("netns", "pids", ns, check=False).stdout.split() and time.monotonic() < deadline:
                time.sleep(0.05)
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()
        self.hosts.clear()

    def __enter__(self) -> "Network":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def network_or_skip(tag: str, roles):
    """A pytest fixture body: a ``Network`` with a host per role (the first one checked), yielded
    and closed afterwards; the test is skipped, with the reason, where namespaces cannot be made."""
    import pytest

    try:
        network = Network(tag)
    except NetnsUnavailable as e:
        pytest.skip(f"network namespaces unavailable: {e}")
    try:
        for role in roles:
            network.host(role)
        network.check(network.hosts[roles[0]])
    except NetnsUnavailable as e:
        network.close()
        pytest.skip(f"network namespaces unavailable: {e}")
    except BaseException:
        network.close()
        raise
    try:
        yield network
    finally:
        network.close()
