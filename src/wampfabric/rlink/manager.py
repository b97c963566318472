"""The links of one router worker, by realm and link ID: what the worker's management
procedures (``start_router_realm_link`` ...) and its realms' ``rlinks`` config use."""

from __future__ import annotations

import logging
from typing import Callable

from ..client.session import ApplicationError
from ..protocol.crossbar_errors import ALREADY_RUNNING, INVALID_CONFIGURATION, NO_SUCH_OBJECT
from .link import RLink

log = logging.getLogger("wampfabric.rlink")


class RLinkManager:
    """``publish(topic_suffix, payload)`` sends the worker's management events."""

    def __init__(self, router, cbdir, publish: Callable[[str, dict], None]):
        self.router = router
        self.cbdir = cbdir
        self.publish = publish
        self.links: dict[str, dict[str, RLink]] = {}  # realm id -> link id -> link

    def ids(self, realm_id: str) -> list:
        return sorted(self.links.get(realm_id, {}))

    def get(self, realm_id: str, link_id: str) -> RLink:
        link = self.links.get(realm_id, {}).get(link_id)
        if link is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no router link with ID '{link_id}' on realm '{realm_id}'")
        return link

    async def start(self, realm_id: str, realm_name: str, link_id: str, config: dict, caller=None) -> RLink:
        links = self.links.setdefault(realm_id, {})
        if link_id in links:
            raise ApplicationError(ALREADY_RUNNING, f"router link '{link_id}' is already running on realm '{realm_id}'")
        link = RLink(link_id, realm_id, config, self.router, realm_name, self.cbdir,
                     on_connect=self._connected, on_disconnect=self._disconnected)
        link.started_by = caller
        links[link_id] = link
        try:
            await link.start()
        except Exception as e:
            links.pop(link_id, None)
            await link.stop()
            if isinstance(e, ApplicationError):
                raise
            raise ApplicationError(INVALID_CONFIGURATION, f"cannot start router link '{link_id}': {e}") from None
        log.info("rlink %s: started on realm %s -> realm %s on %s", link_id, realm_name, config["realm"],
                 link.client.spec.describe())
        self.publish("on_router_realm_link_started", {"id": link_id, "realm": realm_id, "connected": False})
        return link

    async def stop(self, realm_id: str, link_id: str) -> RLink:
        link = self.get(realm_id, link_id)
        del self.links[realm_id][link_id]
        await link.stop()
        log.info("rlink %s: stopped", link_id)
        self.publish("on_router_realm_link_stopped", {"id": link_id, "realm": realm_id})
        return link

    async def stop_realm(self, realm_id: str) -> None:
        for link_id in list(self.links.get(realm_id, {})):
            try:
                await self.stop(realm_id, link_id)
            except Exception:
                log.exception("stopping router link %s", link_id)
        self.links.pop(realm_id, None)

    def _connected(self, link: RLink) -> None:
        self.publish("on_router_realm_link_connected", {"id": link.id, "realm": link.realm_id})

    def _disconnected(self, link: RLink) -> None:
        self.publish("on_router_realm_link_disconnected", {"id": link.id, "realm": link.realm_id})
