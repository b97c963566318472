"""Fixtures of the master tests: a running master (``wampfabric master init`` + ``master start``,
with a superuser key) shared by a test module, and a session factory that closes what it opened."""

from __future__ import annotations

import pytest

from masternode import Key, Master, fabric_connect


@pytest.fixture(scope="module")
def superuser() -> Key:
    return Key()


@pytest.fixture(scope="module")
def master(superuser):
    m = Master(superuser=superuser)
    m.init()
    m.start()
    yield m
    m.stop()


@pytest.fixture
async def connect():
    """``await connect(master, key, realm=None, authid=None, authrole=None, authextra=None)``."""
    opened = []

    async def _connect(m, key, **kw):
        s = await fabric_connect(m.url, key, **kw)
        opened.append(s)
        return s

    yield _connect
    for s in opened:
        await s.close()
