"""A small asyncio WAMP client for wampfabric's own sessions (node and worker
controllers, router service agents, the management bridge).  Applications use
autobahn; this client exists so the platform does not depend on it."""

from .session import ApplicationError, ClientSession, Result

__all__ = ["ApplicationError", "ClientSession", "Result"]
