"""A migrated database of each kind: a SQLite file, and PostgreSQL when SEQDREAM_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqdream.db import Database, migrate
from support.postgres import empty_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seqdream.db'}"
    return empty_postgres()  # skips when no PostgreSQL is configured


@pytest.fixture()
def db(database_url: str) -> Database:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()
