"""wampfabric: routed real-time messaging (WAMP) in Python."""

__version__ = "0.1.0"
