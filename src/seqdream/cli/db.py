"""`seqdream db upgrade | current`: the database schema's revision."""

from __future__ import annotations

import typer

from seqdream.cli.common import open_database, read_settings

db_app = typer.Typer(
    help="Database schema (serve and worker upgrade it on start).", no_args_is_help=True, rich_markup_mode=None
)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the configured database and print its revision."""
    from seqdream.db import migrate

    with open_database(read_settings(), migrated=True) as db:
        typer.echo(f"database at revision {migrate.current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    """Print the configured database's schema revision (none before the first start)."""
    from seqdream.db import migrate

    with open_database(read_settings()) as db:
        typer.echo(migrate.current_revision(db) or "none")
