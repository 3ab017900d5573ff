"""What every command shares: its settings, the services or database it opens and closes, and one way
to stop with a clear line instead of a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from seqdream.config import Settings
from seqdream.numbers import BadValue

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from seqdream.auth.keys import KeyRing
    from seqdream.db import Database
    from seqdream.services import Services


def read_settings(**overrides: object) -> Settings:
    """The settings every command reads: a bad one is reported by name (exit status 2), not a traceback."""
    from pydantic import ValidationError

    values: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(error) for error in exc.errors())
        typer.secho(f"invalid setting: {problems}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def _setting_problem(error: Any) -> str:
    """'port (SEQDREAM_PORT): Input should be ...': the setting, the variable that sets it, and why."""
    from seqdream.api.envelope import validation_message

    name = ".".join(map(str, error["loc"]))
    why = validation_message(error)
    return f"{name} (SEQDREAM_{name.upper()}): {why}" if error["loc"] else why


def model_settings(**overrides: object) -> Settings:
    """Settings for a command that runs a model, with the CPU thread pools sized before anything imports torch."""
    from seqdream.cpu.threads import configure_threads, model_thread_hint

    settings = read_settings(**overrides)
    from seqdream.builtin import resolve_model
    from seqdream.cpu.allocator import keep_large_buffers

    configure_threads(settings.threads, model_thread_hint(resolve_model(settings.model)))
    keep_large_buffers()  # image-sized buffers are reused, not mapped afresh for every output
    return settings


def exit_now(pool: Any) -> None:
    """Everything is shut down, the database closed and any running job handed back. Exit at once:
    a worker thread may still be inside a denoising step (native code), and letting the interpreter
    tear down under it aborts the process; idle, the teardown of torch's modules alone takes ~2 s."""
    if pool is not None and pool.alive():
        logging.getLogger("seqdream").info("exiting while a handed-back job's step winds down")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextmanager
def stopped_by(error: type[Exception], status: int) -> Iterator[None]:
    """`error` raised inside stops the command with its message as one red line and exit `status`:
    1 for a dependency that cannot be used as it starts, 2 for a file a setting names."""
    try:
        yield
    except error as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(status) from exc


@contextmanager
def open_services(settings: Settings) -> Iterator[Services]:
    """The services for a command, closed when it ends: every database connection with them, so
    that SQLite folds its write-ahead log back into the database file (no -wal file is left beside it)."""
    from seqdream.dependencies import CannotStart
    from seqdream.services import Services

    with stopped_by(CannotStart, 1):
        services = Services.from_settings(settings)
    try:
        yield services
    finally:
        services.close()


@contextmanager
def open_database(settings: Settings, *, migrated: bool = False) -> Iterator[Database]:
    """The configured database (`migrated`: brought up to date first, as serve and worker open it),
    closed as `open_services` is."""
    from seqdream.db import migrate
    from seqdream.dependencies import CannotStart

    with stopped_by(CannotStart, 1):
        db = migrate.open_database(settings, upgraded=migrated)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def open_keys(settings: Settings) -> Iterator[KeyRing]:
    """The key ring alone: key commands open the database, not the services (a fraction of a second)."""
    from seqdream.auth.keys import KeyRing

    with open_database(settings, migrated=True) as db:
        yield KeyRing(db)


def check_provenance(services: Any) -> None:
    """Load the signer now, so a bad certificate stops the start with one clear line."""
    from seqdream.provenance.marking import ProvenanceSetupError

    with stopped_by(ProvenanceSetupError, 2):
        services.marker  # noqa: B018 - loads it


def trust_anchors_or_stop(settings: Settings) -> str:
    """The anchors `verify` trusts, read now: a configured file that cannot be used stops the command
    (serve, verify) with one clear line."""
    from seqdream.provenance.verify import TrustAnchorsError, trust_anchors

    with stopped_by(TrustAnchorsError, 2):
        return trust_anchors(settings.c2pa_trust_anchors, settings.data_dir)


def parsed(parse: Any, *args: Any, **kwargs: Any) -> Any:
    """A value parsed by seqdream.numbers, a bad one reported as typer's usage error (exit status 2)."""
    try:
        return parse(*args, **kwargs)
    except BadValue as exc:
        raise typer.BadParameter(str(exc)) from None


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, at most one past the limit (so a huge file is refused without reading it all)."""
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1)
