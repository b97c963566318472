"""Fixtures of the authentication tests."""

from __future__ import annotations

import pytest

from support.cookienode import cookie_config
from support.nodes import start_node, stop_node


@pytest.fixture(scope="module")
def cookie_node():
    """A node of ``cookienode.cookie_config``, one per test module."""
    node = start_node(cookie_config)
    yield node
    stop_node(node)
