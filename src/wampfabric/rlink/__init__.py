"""Router-to-router links (rlinks, docs/clustering.md): a realm of this router worker linked to
a realm of another router, events and calls forwarded both ways.

    link.py     RLink: the two legs (in-process here, a network client there), the mirrors
                that forward subscriptions' events and registrations' calls with ``forward_for``,
                and multi-hop: link state flooded, events and calls passed on to routers beyond
    topology.py Topology: the link graph a link knows, shortest paths, routers' interest
    view.py     RouterView: a router's subscriptions and registrations made by sessions that
                are not rlink legs, through the meta API
    manager.py  RLinkManager: the links of a router worker (what its management procedures use)
"""

from .link import RLink
from .manager import RLinkManager

__all__ = ["RLink", "RLinkManager"]
