"""`seqdream generate`: images made here, without a server, with a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from seqdream.cli.common import model_settings, read_bounded, stopped_by
from seqdream.logs import configure as configure_logging

if TYPE_CHECKING:
    from PIL import Image

    from seqdream.config import Settings
    from seqdream.engines.base import Steps


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
    """Generate images locally, without a server, with a progress bar. The images carry the marks the
    service's outputs carry (its invisible watermark and signed C2PA manifest, as configured)."""
    import uuid

    from pydantic import ValidationError

    from seqdream.api.envelope import describe_validation_error
    from seqdream.api.schemas import FIELD_RULES, MODELS, EditSequentialRequest
    from seqdream.engines.base import EngineError
    from seqdream.jobs.planner import plan_job, resolve_seed
    from seqdream.jobs.request import JobRequest
    from seqdream.provenance.content_credentials import Ingredient
    from seqdream.provenance.marking import Marker, ProvenanceSetupError
    from seqdream.services import build_engine
    from seqdream.storage.local import LocalBlobStore

    settings = model_settings(model=model)
    configure_logging("warning")
    try:
        request = EditSequentialRequest(
            prompt=prompt, size=size, max_images=max_images, seed=seed, images=[str(p) for p in image]
        )
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_error(exc, FIELD_RULES)) from exc
    references = _read_references(image, settings)
    try:  # before the model runs, not after
        folder = LocalBlobStore(out)
    except OSError as exc:
        raise typer.BadParameter(f"cannot make the folder {out}: {exc.strerror or exc}", param_hint="'--out'") from exc
    with stopped_by(ProvenanceSetupError, 2):  # a certificate that cannot sign stops before the model runs
        marker = Marker.from_settings(settings)
    used_seed = resolve_seed(request.seed)
    job = JobRequest(prompt=request.prompt, size=request.size, max_images=request.max_images)
    typer.echo(f"loading {settings.model} ...", err=True)
    with stopped_by(EngineError, 1):  # a model that cannot be loaded: one line that names it and why
        engine = build_engine(settings)
    plan = plan_job(job, used_seed, [picture for _, picture in references], engine.frame_prompt)  # as a worker plans
    with stopped_by(EngineError, 1):
        result = engine.generate(plan, _progress_reporter(plan.count))
    # Marked as a worker marks a task's outputs; the manifest names this run as its task, and as its
    # model the API model whose request it checked its options with.
    model_id = next(spec.id for spec in MODELS if spec.schema is EditSequentialRequest)
    ingredients = [Ingredient.of(data, picture) for data, picture in references]
    images = marker.mark(result.images, job.inputs_key(model_id, used_seed, [data for data, _ in references]))
    task_id = uuid.uuid4().hex
    for index, picture in enumerate(images):
        name = f"seqdream-{used_seed}-{index + 1}.png"
        data = marker.file(picture, "png", 0, model=model_id, task_id=task_id, index=index, ingredients=ingredients)
        try:
            folder.put(name, data)  # whole or not at all: a full disk leaves no half-written image
        except OSError as exc:
            typer.secho(f"cannot write {out / name}: {exc.strerror or exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc
        typer.echo(str(out / name))
    typer.echo(f"seed {used_seed}, {result.inference_ms} ms", err=True)


def _read_references(paths: list[Path], settings: Settings) -> list[tuple[bytes, Image.Image]]:
    """Each reference's bytes and picture, read as verify reads (at most one byte past the limit: a
    device or a pipe may never end) and decoded as the service decodes an upload."""
    from seqdream.images.decode import ImageInputError, open_image, reference_limits

    references = []
    for path in paths:
        try:
            data = read_bounded(path, settings.max_image_bytes)
            references.append((data, open_image(data, **reference_limits(settings))))
        except OSError as exc:
            raise typer.BadParameter(f"reference image cannot be read: {exc.strerror or exc}") from exc
        except ImageInputError as exc:
            raise typer.BadParameter(f"reference image {exc}") from exc
    return references


def _progress_reporter(count: int) -> Callable[[Steps], None]:
    """A bar on a terminal; piped, a plain line at each quarter of the steps."""
    from tqdm import tqdm

    terminal = sys.stderr.isatty()
    bar = tqdm(total=100, desc=f"{count} image(s)", unit="%", file=sys.stderr, disable=not terminal)
    said = 0

    def progress(steps: Steps) -> None:
        nonlocal said
        bar.update(round(steps.fraction * 100) - bar.n)
        if steps.fraction >= 1:
            bar.close()
        if not terminal and int(steps.fraction * 4) > said:
            said = int(steps.fraction * 4)
            typer.echo(f"step {steps.done} of {steps.total} ({steps.fraction:.0%})", err=True)

    return progress
