"""Listening endpoints from Crossbar.io endpoint config (``tcp``, ``unix``), TLS, and what both
connection types share (``PeerOfConnection``, ``HelloTimer``)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import ssl
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..client.tls import tls_channel_id
from ..router.session import NEW
from .coalesce import release_memory

log = logging.getLogger("wampfabric.transport")


def endpoint_description(endpoint: dict) -> str:
    if endpoint["type"] == "unix":
        return f"unix:{endpoint['path']}"
    host = endpoint.get("host", endpoint.get("interface", "0.0.0.0"))
    return f"tcp:{host}:{endpoint['port']}"


def tcp_bind_address(endpoint: dict) -> tuple[bool, str]:
    """``(ipv6, host)`` a ``tcp`` endpoint binds: its ``host`` (or Crossbar.io's ``interface``),
    else the wildcard of its ``version``."""
    version = endpoint.get("version", 4)
    host = endpoint.get("host", endpoint.get("interface"))
    if host is None:
        host = "::" if version == 6 else "0.0.0.0"
    return version == 6 or ":" in host, host


def listening_socket(endpoint: dict, cbdir: str | os.PathLike) -> socket.socket:
    """Create, bind and listen on the socket an endpoint config describes."""
    kind = endpoint["type"]
    backlog = endpoint.get("backlog", 1024)
    if kind == "tcp":
        ipv6, host = tcp_bind_address(endpoint)
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if endpoint.get("shared"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, endpoint["port"]))
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock
    if kind == "unix":
        path = Path(cbdir) / endpoint["path"]
        if path.is_socket():
            path.unlink()  # stale socket of an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            os.chmod(path, endpoint.get("mode", 0o600) if isinstance(endpoint.get("mode"), int) else 0o600)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock
    raise ValueError(f"unsupported endpoint type {kind!r}")


def tls_context(tls: dict, cbdir: str | os.PathLike) -> ssl.SSLContext:
    """A server TLS context from Crossbar.io's ``endpoint.tls`` config.

    ``key`` / ``certificate``: PEM files (relative to the node directory);
    ``chain_certificates``: intermediate CA certificates sent after ours;
    ``ca_certificates``: CAs whose client certificates are accepted (then
    clients may present one: the ``tls`` authmethod uses it);
    ``ciphers``: an OpenSSL cipher string for TLS 1.2 and below.
    """
    base = Path(cbdir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    cert = base / tls["certificate"]
    key = base / tls["key"]
    chain = [base / c for c in tls.get("chain_certificates", [])]
    if chain:
        # the ssl module takes the chain as part of the certificate file
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
            combined = f.name
            f.write(cert.read_text())
            for c in chain:
                f.write("\n" + c.read_text())
        try:
            ctx.load_cert_chain(combined, key)
        finally:
            os.unlink(combined)
    else:
        ctx.load_cert_chain(cert, key)
    cas = tls.get("ca_certificates", [])
    for ca in cas:
        ctx.load_verify_locations(base / ca)
    if cas:
        ctx.verify_mode = ssl.CERT_OPTIONAL
    if "ciphers" in tls:
        ctx.set_ciphers(tls["ciphers"])
    return ctx


#: the WAMP channel id of a TLS connection (cryptosign channel binding), as the client reads it
channel_id = tls_channel_id


def peer_certificate(transport) -> dict | None:
    """The verified client certificate of a TLS connection, in the shape of Crossbar.io's
    ``TransportDetails.peer_cert`` (dynamic authenticators written for it read these keys):
    ``md5``/``sha1``/``sha256`` fingerprints (upper-case hex with colons), ``expired``, ``hash``
    (OpenSSL's subject name hash: not available here, None), ``serial`` (int; a decimal string
    beyond 64 bits, which MessagePack cannot carry),
    ``signature_algorithm``, ``version``, ``not_before``/``not_after`` (``YYYYMMDDhhmmssZ``),
    ``subject``/``issuer`` (short names in lower case, e.g. ``cn``) and ``extensions``
    (``name``, ``value``, ``critical``).  Certificate content that cannot be read is left empty."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return certificate_details(der)


def certificate_details(der: bytes) -> dict:
    """See ``peer_certificate``: the details of one DER certificate."""
    from cryptography import x509

    def fingerprint(algo):
        return ":".join(f"{b:02X}" for b in hashlib.new(algo, der).digest())

    out = {"md5": fingerprint("md5"), "sha1": fingerprint("sha1"), "sha256": fingerprint("sha256"),
           "expired": None, "hash": None, "serial": None, "signature_algorithm": None, "version": None,
           "not_before": None, "not_after": None, "subject": {}, "issuer": {}, "extensions": []}
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return out  # the TLS layer accepted it; the fingerprints still identify it

    def oid_name(oid) -> str:
        name = oid._name
        return oid.dotted_string if name == "Unknown OID" else name

    def names(name) -> dict:
        d = {}
        for attr in name:
            key = attr.rfc4514_attribute_name
            key = oid_name(attr.oid) if key[:1].isdigit() else key
            value = attr.value
            d[key.lower()] = value.decode("utf8", "replace") if isinstance(value, bytes) else value
        return d

    def general_name(gn) -> str:
        for cls, prefix in ((x509.DNSName, "DNS"), (x509.RFC822Name, "email"),
                            (x509.UniformResourceIdentifier, "URI"), (x509.IPAddress, "IP Address")):
            if isinstance(gn, cls):
                return f"{prefix}:{gn.value}"
        return str(gn.value)

    def extension(ext) -> dict:
        if isinstance(ext.value, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
            value = ", ".join(general_name(gn) for gn in ext.value)
        else:
            value = str(ext.value)
        return {"name": oid_name(ext.oid), "value": value, "critical": ext.critical}

    after = cert.not_valid_after_utc
    serial = cert.serial_number
    if not -2**63 <= serial < 2**63:
        # MessagePack carries no integer beyond 64 bits: an authenticator connected with it would
        # never be called (Crossbar.io gives the int); most serials are random 159-bit numbers
        serial = str(serial)
    out.update(expired=datetime.now(timezone.utc) > after, serial=serial,
               version=cert.version.value, not_before=cert.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ"),
               not_after=after.strftime("%Y%m%d%H%M%SZ"))
    try:
        out["signature_algorithm"] = oid_name(cert.signature_algorithm_oid)
    except Exception:
        pass
    for key in ("subject", "issuer"):
        try:
            out[key] = names(getattr(cert, key))
        except ValueError:
            pass
    try:
        out["extensions"] = [extension(e) for e in cert.extensions]
    except Exception:  # e.g. a duplicate extension
        pass
    return out


def peer_of(transport) -> str:
    """Crossbar.io-style peer string of an asyncio transport."""
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple):
        host, port = peername[0], peername[1]
        return f"tcp6:{host}:{port}" if ":" in host else f"tcp4:{host}:{port}"
    return f"unix:{peername or transport.get_extra_info('sockname')}"


class PeerOfConnection:
    """``peer`` of a connection (mixin of the WebSocket listener and the RawSocket protocol,
    which provide ``_stream()``, their asyncio transport, and a ``_peer`` slot).  It is asked
    at WELCOME (``x_cb_peer``) and at close, and uvloop answers ``peername`` with a syscall
    each time: computed once per connection."""

    __slots__ = ()

    @property
    def peer(self) -> str:
        if self._peer is None:
            stream = self._stream()
            if stream is None:
                return "?"
            self._peer = peer_of(stream)
        return self._peer


class HelloTimer:
    """The HELLO timeout of a connection (mixin of the WebSocket listener and the RawSocket
    protocol, which provide ``factory.hello_timeout`` in seconds, ``session``, ``peer``, the slots
    ``_timer`` and ``_closed``, and ``_close_idle()``, closing the connection as their protocol
    says).  A connection that carries no session must send HELLO within ``hello_timeout``."""

    __slots__ = ()

    def expect_hello(self) -> None:
        """The connection carries no session (new, or after a GOODBYE): start the timer."""
        timeout = self.factory.hello_timeout
        if timeout > 0 and not self._closed:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(timeout, self._hello_timeout)

    def hello_arrived(self) -> None:
        """Called by the session: no need to keep the HELLO timer (a timer handle per connection) alive."""
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _hello_timeout(self) -> None:
        self._timer = None
        session = self.session
        if session is not None and session.state == NEW and not self._closed:
            log.info("closing connection %s: no HELLO within %gs (hello_timeout)", self.peer,
                     self.factory.hello_timeout)
            self._close_idle()
            release_memory()  # idle connections come in crowds: one trim after they are gone
