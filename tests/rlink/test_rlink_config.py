"""The ``rlinks`` of a realm in the config checker: Crossbar.io's shape, every wrong value named
by its JSON path."""

from __future__ import annotations

import copy

import pytest

from rlinknodes import link_config, router_config

from wampfabric.config.base import ConfigError, config_errors
from wampfabric.config.check import check_config
from wampfabric.personality import Personality


def _check(links):
    cfg = router_config(8080, links)
    return check_config(copy.deepcopy(cfg), Personality())


def test_full_link_accepted():
    _check([link_config(9000, "l1", authid="x", exclude_authid=["a"], exclude_authrole=["b"],
                        forward_local_events=True, forward_remote_events=False,
                        forward_local_invocations=True, forward_remote_invocations=False),
            link_config(9001, "l2", authentication={"cryptosign": {"authid": "node-a"}}),
            link_config(9002, authentication={"cryptosign": {"privkey": "ab" * 32}}),
            link_config(9003, authentication={"anonymous": {}}),
            link_config(9004, share_registrations=False), link_config(9005, share_registrations=True)])


@pytest.mark.parametrize("link, where, words", [
    ({"transport": link_config(1)["transport"]}, "rlinks[0]", "'realm'"),
    ({**link_config(1), "realm": "bad realm"}, "rlinks[0].realm", "invalid realm"),
    ({**link_config(1), "transport": {"type": "udp", "endpoint": {}}}, "rlinks[0].transport.type", "websocket"),
    ({**link_config(1), "forward_local_events": "yes"}, "rlinks[0].forward_local_events", ""),
    ({**link_config(1), "exclude_authid": [1]}, "rlinks[0].exclude_authid[0]", ""),
    ({**link_config(1), "share_registrations": "false"}, "rlinks[0].share_registrations", "must be a boolean"),
    ({**link_config(1), "share_registrations": 0}, "rlinks[0].share_registrations", "must be a boolean"),
    ({**link_config(1), "color": 1}, "rlinks[0].color", "unknown attribute"),
    ({**link_config(1), "authentication": {}}, "rlinks[0].authentication", "exactly one"),
    ({**link_config(1), "authentication": {"ticket": {"authid": "x"}}}, "rlinks[0].authentication.ticket",
     "'ticket'"),
    ({**link_config(1), "authentication": {"cryptosign": {"privkey": "zz"}}},
     "rlinks[0].authentication.cryptosign.privkey", "64 hex"),
])
def test_wrong_links_named_by_path(link, where, words):
    with pytest.raises(ConfigError) as e:
        _check([link])
    errors = config_errors(e.value)
    assert len(errors) == 1
    assert f"$.workers[0].realms[0].{where}" in str(errors[0]) and words in str(errors[0])


def test_duplicate_link_ids():
    with pytest.raises(ConfigError) as e:
        _check([link_config(1, "l1"), link_config(2, "l1")])
    assert "duplicate router link ID 'l1'" in str(e.value)


def test_share_registrations_not_bool_on_start_router_realm_link():
    """The worker's ``start_router_realm_link`` checks a link config with the same checker."""
    from wampfabric.config.realms import check_rlink
    with pytest.raises(ConfigError) as e:
        check_rlink({**link_config(1), "share_registrations": "no"}, "rlink")
    assert "rlink.share_registrations" in str(e.value) and "must be a boolean" in str(e.value), str(e.value)
