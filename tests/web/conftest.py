"""The web tests' node (httpfront.web_config: a web transport with every service of
wampfabric.web and short front timeouts, and a universal transport), one per session."""

from __future__ import annotations

import pytest

from httpfront import web_config
from support.nodes import start_node, stop_node


@pytest.fixture(scope="session")
def wnode():
    n = start_node(web_config)
    yield n
    stop_node(n)
