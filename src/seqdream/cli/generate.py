"""`seqdream generate`: images made here, without a server, with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from seqdream.cli.common import model_settings, read_bounded, stopped_by
from seqdream.logs import configure as configure_logging


def generate(
    prompt: str = typer.Argument(..., metavar="PROMPT", help="What to draw or how to edit the references."),
    image: list[Path] = typer.Option(
        [], "--image", "-i", metavar="IMAGE", exists=True, dir_okay=False, help="Reference image (repeat, up to 10)."
    ),
    size: str = typer.Option("2048*2048", metavar="W*H", help='Output size "W*H", 1024-4096 per side.'),
    max_images: int = typer.Option(1, metavar="N", help="Most images in the group, 1-14."),
    seed: int = typer.Option(-1, metavar="SEED", help="Seed; -1 picks one at random."),
    out: Path = typer.Option(Path("."), "--out", "-o", metavar="DIR", file_okay=False, help="Folder for the images."),
    model: str | None = typer.Option(None, metavar="MODEL", help="Model id or local folder [SEQDREAM_MODEL]."),
) -> None:
    """Generate images locally, without a server, with a progress bar."""
    from pydantic import ValidationError
    from tqdm import tqdm

    from seqdream.api.envelope import describe_validation_error
    from seqdream.api.schemas import FIELD_RULES, EditSequentialRequest
    from seqdream.engines.base import EngineError, Steps
    from seqdream.images.decode import ImageInputError, open_image, reference_limits
    from seqdream.jobs.planner import plan_job, resolve_seed
    from seqdream.jobs.request import JobRequest
    from seqdream.services import build_engine

    settings = model_settings(model=model)
    configure_logging("warning")
    try:
        request = EditSequentialRequest(
            prompt=prompt, size=size, max_images=max_images, seed=seed, images=[str(p) for p in image]
        )
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_error(exc, FIELD_RULES)) from exc
    try:  # read as verify reads: at most one byte past the limit (a device or a pipe may never end)
        references = [
            open_image(read_bounded(path, settings.max_image_bytes), **reference_limits(settings)) for path in image
        ]
    except OSError as exc:
        raise typer.BadParameter(f"reference image cannot be read: {exc.strerror or exc}") from exc
    except ImageInputError as exc:
        raise typer.BadParameter(f"reference image {exc}") from exc
    try:  # before the model runs, not after
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot make the folder {out}: {exc.strerror or exc}", param_hint="'--out'") from exc
    used_seed = resolve_seed(request.seed)
    job = JobRequest(prompt=request.prompt, size=request.size, max_images=request.max_images)
    typer.echo(f"loading {settings.model} ...", err=True)
    with stopped_by(EngineError, 1):  # a model that cannot be loaded: one line that names it and why
        engine = build_engine(settings)
    plan = plan_job(job, used_seed, references, engine.frame_prompt)  # exactly as a worker plans a task
    terminal = sys.stderr.isatty()  # a bar on a terminal; piped, a plain line at each quarter
    with tqdm(total=100, desc=f"{plan.count} image(s)", unit="%", file=sys.stderr, disable=not terminal) as bar:
        said = 0

        def progress(steps: Steps) -> None:
            nonlocal said
            bar.update(round(steps.fraction * 100) - bar.n)
            if not terminal and int(steps.fraction * 4) > said:
                said = int(steps.fraction * 4)
                typer.echo(f"step {steps.done} of {steps.total} ({steps.fraction:.0%})", err=True)

        with stopped_by(EngineError, 1):
            result = engine.generate(plan, progress)
    for index, picture in enumerate(result.images):
        path = out / f"seqdream-{used_seed}-{index + 1}.png"
        picture.save(path)
        typer.echo(str(path))
    typer.echo(f"seed {used_seed}, {result.inference_ms} ms", err=True)
