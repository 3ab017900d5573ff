"""The PostgreSQL the tests may use (SEQDREAM_TEST_POSTGRES_URL; CI starts one with .ci/start-postgres).

Tests that use it start from an empty schema. Under pytest-xdist each worker process gets a database
of its own beside the configured one, so one worker emptying its schema never pulls tables from
under another's test."""

from __future__ import annotations

import functools
import os

import pytest
from sqlalchemy import create_engine, make_url, text

from seqdream.db import Database

CONFIGURED = os.environ.get("SEQDREAM_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not CONFIGURED, reason="SEQDREAM_TEST_POSTGRES_URL is not set")


@functools.cache
def own_database() -> str:
    """This test process's database: the configured one, or one per xdist worker ("…_gw0"), made once."""
    if not CONFIGURED:
        pytest.skip("SEQDREAM_TEST_POSTGRES_URL is not set")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return CONFIGURED
    url = make_url(CONFIGURED)
    name = f"{url.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE runs outside a transaction
    try:
        with admin.connect() as connection:
            if connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}) is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def empty_postgres() -> str:
    """The URL of this process's database with an empty public schema, as a new deployment has."""
    url = own_database()
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    finally:
        db.dispose()
    return url
