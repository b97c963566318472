"""The edge personality: a node managed by a master node (docs/fabric.md, "Edge node").

- ``uplink.py``: the node extension that finds the master (``key.activate``,
  ``CROSSBAR_FABRIC_URL``, ``controller.fabric.transport``) and stays connected to it;
- ``bridge.py``: the management bridge (local ``crossbar.*`` procedures and events on the master
  as ``crossbarfabriccenter.node.<node_id>.*``);
- ``heartbeat.py``: node and worker heartbeats;
- ``personality.py``, ``cli.py``: ``EdgePersonality`` and ``wampfabric edge ...``.
"""
