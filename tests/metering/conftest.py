"""Fixtures of the metering service tests: a PostgreSQL server of the test session (``pg``; the
PostgreSQL tests fail, never skip, where its binaries are missing), a fresh database per test
(``pg_url``), the store ``target`` of both backends (parametrised ``sqlite`` / ``postgresql``), and
``service``: the service started with the CLI, stopped after the test."""

from __future__ import annotations

import pytest

from meteringsvc import PgServer, Service


@pytest.fixture(scope="session")
def pg():
    try:
        server = PgServer()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg):
    return pg.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """A store target of each backend: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "metering.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def service(tmp_path):
    """``service(dsn=None, max_skew=None) -> Service`` (started; stopped after the test)."""
    started = []

    def _make(dsn=None, max_skew=None, directory=None):
        s = Service(directory or tmp_path / f"svc{len(started)}", dsn=dsn, max_skew=max_skew)
        started.append(s)
        return s.start()

    yield _make
    for s in started:
        s.stop()
