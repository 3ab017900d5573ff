"""`seqdream watch` (one task until it ends) and `seqdream usage` (every key's, per day and model)."""

from __future__ import annotations

from typing import Any

import typer

from seqdream.cli.common import open_services, parsed, read_settings
from seqdream.numbers import cut, day_span


def watch(
    task: str = typer.Argument(..., metavar="TASK", help="The task's id (data.id of its submit)."),
    interval: float = typer.Option(0.5, metavar="SECONDS", min=0.05, max=60, help="How often to look."),
) -> None:
    """Follow a task in the configured database until it ends: its place in the queue (and why no worker
    starts it, if none can), then each image as it is stored, then how it ended (exit status 0 when it
    completed, 1 otherwise)."""
    import time

    from seqdream.db import JobStatus
    from seqdream.jobs.presentation import progress

    last = ""
    with open_services(read_settings()) as services:
        while True:
            job = services.jobs.get(task) if len(task) <= 64 else None
            if job is None:
                typer.echo(f"no task {cut(task, 64)!r} in this service's database", err=True)
                raise typer.Exit(2)
            where = progress(job, *services.jobs.standing(job))
            waiting = services.waiting_reason() if job.status == JobStatus.CREATED.value else None
            line = _standing_line(job.status, where) + (f": {waiting}" if waiting else "")
            if line != last:
                typer.echo(line)
                last = line
            if JobStatus(job.status).is_terminal:
                for key in job.outputs if job.status == JobStatus.COMPLETED.value else []:
                    typer.echo(f"  {key}")
                if job.error:
                    typer.echo(f"  {job.error}", err=True)
                raise typer.Exit(0 if job.status == JobStatus.COMPLETED.value else 1)
            time.sleep(interval)


def _standing_line(status: str, where: dict[str, Any]) -> str:
    """`queued, 2 ahead, about 12 s` / `processing, image 2 of 4, step 3 of 4, about 5 s`."""
    parts = [{"created": "queued"}.get(status, status)]
    if "queue_position" in where:
        parts.append(f"{where['queue_position']} ahead")
    if "images_total" in where:
        parts.append(f"image {min(where['images_done'] + 1, where['images_total'])} of {where['images_total']}")
    if "step" in where:
        parts.append(f"step {where['step']} of {where['steps']}")
    if "eta_s" in where:
        parts.append(f"about {max(1, round(where['eta_s']))} s left")
    return ", ".join(parts)


def usage_command(
    start: str = typer.Option(None, "--from", metavar="DAY", help="First day, YYYY-MM-DD (UTC); default 30 days ago."),
    end: str = typer.Option(None, "--to", metavar="DAY", help="Last day, YYYY-MM-DD (UTC), included; default today."),
) -> None:
    """Print every key's tasks, images and model seconds per day and model."""
    from seqdream.db.models import utcnow
    from seqdream.tenancy.usage import MAX_DAYS, USAGE_DAYS, day_range, totals, usage

    first, last = parsed(day_span, start, end, utcnow().date(), default_days=USAGE_DAYS, max_days=MAX_DAYS)
    with open_services(read_settings()) as services:
        names = {key.id: f"{key.name} ({key.prefix}…)" for key in services.keys.list()}
        with services.db.session() as session:
            by_key = usage(session, *day_range(first, last))
    typer.echo(f"usage {first} to {last} (UTC)")
    if not by_key:
        typer.echo("no finished tasks")
    for key_id, rows in by_key.items():
        total = totals(rows)
        typer.echo(f"\n{names.get(key_id, key_id or 'no key')}: {total['tasks']} tasks ({total['failed']} failed), "
                   f"{total['images']} images, {total['model_seconds']} model seconds")  # fmt: skip
        for row in rows:
            typer.echo(f"  {row.day}  {row.model:<44} {row.tasks:>6} tasks {row.images:>7} images "
                       f"{row.model_seconds:>10.1f} s")  # fmt: skip
