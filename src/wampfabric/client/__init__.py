"""wampfabric's WAMP client (asyncio): the sessions of node and worker controllers, the
management bridge, and the network client that uplinks, rlinks and the shell use.
Applications use autobahn; this client exists so the platform does not depend on it.

- ``session.py``: ``ClientSession``, one WAMP session over any transport (every incoming
  message validated by ``protocol/``);
- ``auth.py``: authenticators (anonymous, ticket, wampcra, cryptosign);
- ``rawsocket.py``, ``websocket.py``: the network transports (TCP, TLS, Unix socket);
- ``tls.py``: the client's TLS context and a connection's channel id;
- ``connection.py``: ``connect`` (once) and ``Client`` (reconnecting, with join/leave hooks);
- ``raw.py``: a raw peer that sends exactly what it is told, unchecked (the load generator's
  and the tests' raw clients).
"""

from .session import ApplicationError, ClientSession, Result

# the network client (picows, cryptography) is imported when first used, so that the
# controllers' sessions (``client.session``) start without it
_LAZY = {"Anonymous": "auth", "Cryptosign": "auth", "Ticket": "auth", "WampCra": "auth",
         "Backoff": "connection", "Client": "connection", "TransportConfigError": "connection",
         "connect": "connection", "transport_spec": "connection"}

__all__ = ["ApplicationError", "ClientSession", "Result", *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
