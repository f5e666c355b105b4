"""Fixtures shared by the service tests that run on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the module that asks for it: a SQLite file, or a throwaway PostgreSQL
    server."""
    from app.migrate import upgrade
    from tests.postgres_server import run_postgres

    if request.param == "postgresql":
        with run_postgres() as url:
            upgrade(url)
            yield url
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('database')}/c.db"
        upgrade(url)
        yield url
