"""Bring a database to the current schema with Alembic; safe to run from many processes at once."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from seqdream.config import Settings
from seqdream.db.connection import Database
from seqdream.dependencies import CannotStart, is_database_outage, one_line

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before migrations existed
_PG_LOCK_ID = 0x5E9D2EA1  # any constant shared by every process of the service

log = logging.getLogger(__name__)


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _sqlite_lock(db: Database) -> Iterator[None]:
    database = db.engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def open_database(settings: Settings, *, upgraded: bool = True) -> Database:
    """The configured database, its data folder made and its schema upgraded to the newest (the
    change logged): how every command and process opens it. `upgraded=False`: as it is, read once.
    A CannotStart that names the database (its password hidden) when it cannot be used."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotStart(
            f"cannot make the data folder SEQDREAM_DATA_DIR={settings.data_dir}: {exc.strerror or exc}"
        ) from exc
    db = Database(settings.resolved_database_url)
    where = db.engine.url.render_as_string()  # the password hidden
    try:
        # Read either way: a file that is not a database, a server that refuses, said now.
        before, after = upgrade(db) if upgraded else (current_revision(db),) * 2
    except (SQLAlchemyError, OSError) as exc:
        db.dispose()
        hint = "; is its server running and reachable?" if is_database_outage(exc) and not db.is_sqlite else ""
        raise CannotStart(f"cannot open the database {where}: {one_line(exc)}{hint}") from exc
    if before != after:
        log.info("database %s migrated from %s to %s", where, before or "empty", after)
    return db


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply every migration up to `revision`; returns the revisions before and after. A database
    from before migrations is adopted at the baseline first; concurrent callers wait for each
    other (advisory or file lock)."""
    with _sqlite_lock(db) if db.is_sqlite else nullcontext(), db.engine.begin() as connection:
        if not db.is_sqlite:
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        config = alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        before = MigrationContext.configure(connection).get_current_revision()
        if "jobs" in tables and "alembic_version" not in tables:
            command.stamp(config, BASELINE)
            before = f"{BASELINE} (adopted)"
        command.upgrade(config, revision)
        return before, MigrationContext.configure(connection).get_current_revision()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest migration's revision: what `upgrade` brings a database to."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None  # the package ships its migrations
    return head
