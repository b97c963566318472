"""The metering service (``wampfabric metering-service``): the receiving side of usage metering.

Masters POST signed usage records (wampfabric.protocol.metering) to ``/submit``; the service
checks them against the registered master keys, stores each record once (SQLite or PostgreSQL,
store.py) with hourly sums per master key, and serves the customers' usage to holders of its API
token (service.py).  cli.py is the command group.  docs/metering.md describes it.
"""
