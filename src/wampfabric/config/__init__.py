"""Node configuration (Crossbar.io's version-2 format): the checker and ``ConfigError``.

Below the router, transports, workers and the node controller, which all check
config through it; it imports only ``protocol``."""
