"""`seqdream serve | worker | health | generate | verify | watch | usage | keys | db`: the command table.

One module a part: run (serve, worker, health), generate, verify, tasks (watch, usage), keys and db;
what they share (settings, opening and closing the services, stopping with one clear line) is in
`common`. Each command imports what it needs when it runs, so `seqdream keys list` never loads torch.
"""

from __future__ import annotations

import typer

from seqdream.cli import generate, run, tasks, verify
from seqdream.cli.db import db_app
from seqdream.cli.keys import keys_app

# Plain help text (click's): no type noise such as "<bool>" beside every flag.
app = typer.Typer(
    help="Self-hosted Seedream V4 image service (WaveSpeed-compatible API).",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)  # fmt: skip


def _version(value: bool) -> None:
    if value:
        from seqdream import __version__

        typer.echo(f"seqdream {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hosted Seedream V4 image service (WaveSpeed-compatible API)."""


app.command()(run.serve)
app.command(short_help="Run workers against the configured database, here.")(run.worker)
app.command(short_help="Exit 0 if this host's seqdream process is healthy.")(run.health)
app.command()(generate.generate)
app.command("verify", short_help="Check images for this service's marks.")(verify.verify_command)
app.command("watch", short_help="Follow a task until it ends.")(tasks.watch)
app.command("usage", short_help="Tasks, images and model seconds per key and day.")(tasks.usage_command)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


if __name__ == "__main__":
    app()
