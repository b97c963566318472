"""The management API's URIs and the one way its procedures are registered.

Realm ``crossbar`` on the node management router holds the node's procedures
under ``crossbar.`` and each worker's under ``crossbar.worker.<id>.`` (also its
events and, for a native worker, its authrole; design document, "Management
Events").  Whoever answers management procedures -- the node controller, each
native worker, the node on behalf of a guest -- is an object that names them
in ``PROCEDURES`` and has a method of each name (called with ``details``, the
caller's identity among them); ``register_procedures`` registers them all
under a prefix.  Nothing here imports the session class: any session with
Autobahn's ``register(uri, fn, details=True)`` will do.
"""

from __future__ import annotations

NODE_PREFIX = "crossbar"


def worker_prefix(worker_id: str) -> str:
    """``crossbar.worker.<id>``: the prefix of a worker's procedures and events, and a native
    worker's authrole on realm ``crossbar``."""
    return f"crossbar.worker.{worker_id}"


async def register_procedures(session, prefix: str, provider) -> list:
    """Register each name of ``provider.PROCEDURES`` as ``<prefix>.<name>``, answered by the method
    of that name; returns the registrations in that order (to unregister them)."""
    return [await session.register(f"{prefix}.{name}", getattr(provider, name), details=True)
            for name in provider.PROCEDURES]
