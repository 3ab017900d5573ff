"""A migrated database of each kind: a SQLite file, and PostgreSQL when SEQDREAM_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from seqdream.db import Database, migrate

POSTGRES_URL = os.environ.get("SEQDREAM_TEST_POSTGRES_URL")


def empty_postgres() -> str:
    db = Database(POSTGRES_URL or "")
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.dispose()
    return POSTGRES_URL or ""


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seqdream.db'}"
    if not POSTGRES_URL:
        pytest.skip("SEQDREAM_TEST_POSTGRES_URL is not set")
    return empty_postgres()


@pytest.fixture()
def db(database_url: str) -> Database:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()
