"""Shared fixtures. The helpers they use live in tests/support/ (nodes.py: free ports, node configs,
starting and stopping nodes; wamp_raw.py: a raw WAMP peer; authnode.py: the authentication test node);
``pytest`` puts tests/ on sys.path (pyproject.toml), so tests import them as ``support.*``."""

from __future__ import annotations

import pytest

from support.nodes import start_node, stop_node


@pytest.fixture(scope="session")
def node():
    n = start_node()
    yield n
    stop_node(n)
