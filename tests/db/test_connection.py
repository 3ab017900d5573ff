"""Every way the service talks to its database records whether the database answered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from seqdream.db import Database
from seqdream.dependencies import DATABASE
from seqdream_devkit.server_process import free_port


def _via_session(db: Database) -> None:
    with db.session() as session:
        session.execute(text("SELECT 1"))


def _via_connection(db: Database) -> None:
    with db.connection() as connection:
        connection.execute(text("SELECT 1"))


@pytest.fixture()
def database_state() -> Iterator[None]:
    yield
    DATABASE.ok()  # leave the process-wide state as the next test expects it


@pytest.mark.parametrize("use", [_via_session, _via_connection], ids=["session", "connection"])
def test_a_refused_database_is_marked_down_and_the_next_answer_marks_it_up(
    use: Callable[[Database], None], tmp_path: Path, database_state: None
) -> None:
    gone = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    with pytest.raises(OperationalError):
        use(gone)
    assert not DATABASE.up and "connection" in DATABASE.reason.lower()
    use(Database(f"sqlite:///{tmp_path / 'here.db'}"))
    assert DATABASE.up
