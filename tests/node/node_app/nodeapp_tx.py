"""A Twisted-flavoured component (Crossbar.io containers run these)."""

from autobahn.twisted.wamp import ApplicationSession
from twisted.internet.defer import inlineCallbacks


class TxBackend(ApplicationSession):
    @inlineCallbacks
    def onJoin(self, details):
        from twisted.internet import reactor

        yield self.register(lambda a, b: a * b, "com.example.tx_mul")
        yield self.register(lambda: type(reactor).__name__, "com.example.tx_reactor")
