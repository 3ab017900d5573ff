"""Alembic migrations: a new database, a database from before migrations, concurrent starts."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, column, insert, inspect, table, text

from seqdream.db import Base, Database, migrate
from seqdream.db.models import UTCDateTime
from seqdream.jobs.store import JobStore
from support.postgres import empty_postgres, needs_postgres
from support.servers import TEST_ENV

HEAD = migrate.head_revision()  # the newest migration


def schema_differences(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def first_schema_without_version(db: Database) -> None:
    """What seqdream 0.4 left behind: the tables of `create_all`, no alembic_version."""
    migrate.upgrade(db, "0001")
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


def insert_old_job(db: Database, seed: int, status: str) -> None:
    """A job row as the first schema held it: only that schema's columns (the ORM's insert names
    columns that later migrations added: 0003's `failure`, 0004's `fair_rank`)."""
    first_schema_jobs = table(
        "jobs",
        *(column(name) for name in ("id", "model", "status", "seed", "error", "attempts")),
        column("created_at", UTCDateTime()),
        *(column(name, JSON) for name in ("request", "outputs", "has_nsfw_contents")),
    )
    with db.engine.begin() as connection:
        connection.execute(
            insert(first_schema_jobs).values(
                id="old-job", model="m", request={"prompt": "kept"}, seed=seed, status=status, outputs=[],
                has_nsfw_contents=[], error="", attempts=0, created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )  # fmt: skip


def test_new_database_gets_todays_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    migrate.upgrade(db)
    assert migrate.current_revision(db) == HEAD
    assert schema_differences(db) == []


@needs_postgres
def test_postgres_upgrade_from_the_first_schema_gets_todays_models() -> None:
    db = Database(empty_postgres())
    first_schema_without_version(db)
    insert_old_job(db, seed=1, status="created")
    migrate.upgrade(db)
    assert migrate.current_revision(db) == HEAD
    assert schema_differences(db) == []
    assert [job.request["prompt"] for job in JobStore(db).recent()] == ["kept"]


def test_database_from_before_migrations_is_adopted_and_keeps_its_jobs(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    first_schema_without_version(db)
    old_tables = set(inspect(db.engine).get_table_names())
    assert "webhook_deliveries" not in old_tables and "alembic_version" not in old_tables
    insert_old_job(db, seed=7, status="failed")

    migrate.upgrade(db)

    assert migrate.current_revision(db) == HEAD
    assert schema_differences(db) == []
    stored = JobStore(db).get("old-job")
    assert stored is not None and stored.seed == 7 and stored.request["prompt"] == "kept"
    assert stored.failure is None  # added by 0003; unknown for jobs that failed before it


def _upgrade(url: str) -> None:  # runs in a child process
    migrate.upgrade(Database(url))


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    first_schema_without_version(Database(url))
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_upgrade, args=(url,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    db = Database(url)
    assert migrate.current_revision(db) == HEAD
    assert schema_differences(db) == []


@pytest.mark.slow
def test_cli_db_upgrade(tmp_path: Path) -> None:
    env = {**os.environ, **TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "seqdream.cli.main", "db", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert cli("current").stdout.strip() == "none"
    upgraded = cli("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {HEAD}" in upgraded.stdout
    assert cli("current").stdout.strip() == HEAD
