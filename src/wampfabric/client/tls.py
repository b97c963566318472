"""TLS for the client: the client context from Crossbar.io's connecting endpoint ``tls``
keys, and a connection's channel id (what cryptosign channel binding signs; the router's
transports read it here too)."""

from __future__ import annotations

import hashlib
import os
import ssl as ssl_module


def client_tls_context(tls: dict | None = None, cbdir: str | os.PathLike = ".") -> ssl_module.SSLContext:
    """A TLS client context: the system CAs, or ``ca_certificates`` (files) only; an optional
    client ``certificate``/``key`` (Crossbar.io's connecting endpoint ``tls`` keys)."""
    tls = tls or {}
    cas = tls.get("ca_certificates")
    if cas:
        ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)  # verifies the certificate and host name
        for ca in cas:
            ctx.load_verify_locations(cafile=os.path.join(cbdir, ca))
    else:
        ctx = ssl_module.create_default_context()
    if "certificate" in tls:
        ctx.load_cert_chain(os.path.join(cbdir, tls["certificate"]),
                            os.path.join(cbdir, tls["key"]) if "key" in tls else None)
    return ctx


def tls_channel_id(transport, kind: str) -> bytes | None:
    """The WAMP channel id of a TLS connection: SHA-256 of its channel binding data (for
    ``tls-unique``: the first Finished message), 32 octets as cryptosign XORs them into the
    challenge; None without TLS.  Both ends use it: the router's transports and the client's."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    try:
        data = ssl_object.get_channel_binding(kind)
    except ValueError:
        return None
    return hashlib.sha256(data).digest() if data else None
