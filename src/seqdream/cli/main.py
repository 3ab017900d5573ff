"""`seqdream serve | worker | generate | watch | keys | usage | verify`."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from seqdream.config import Settings
from seqdream.logs import configure as configure_logging
from seqdream.numbers import CREDITS, MAX_ACTIVE, RATE_PER_MIN, BadValue, Quantity, day_span, parse_weight

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from seqdream.auth.keys import KeyRing
    from seqdream.db import Database
    from seqdream.services import Services

# Plain help text (click's): no type noise such as "<bool>" beside every flag.
app = typer.Typer(
    help="Self-hosted Seedream V4 image service (WaveSpeed-compatible API).",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)  # fmt: skip
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(
    help="Database schema (serve and worker upgrade it on start).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")


def _read_settings(**overrides: object) -> Settings:
    """The settings every command reads: a bad one is reported by name (exit status 2), not a traceback."""
    from pydantic import ValidationError

    values: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        typer.secho(f"invalid setting: {problems}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def _settings(**overrides: object) -> Settings:
    """Settings for a command that runs a model, with the CPU thread pools sized before anything imports torch."""
    from seqdream.cpu.threads import configure_threads, model_thread_hint

    settings = _read_settings(**overrides)
    from seqdream.builtin import resolve_model
    from seqdream.cpu.allocator import keep_large_buffers

    configure_threads(settings.threads, model_thread_hint(resolve_model(settings.model)))
    keep_large_buffers()  # image-sized buffers are reused, not mapped afresh for every output
    return settings


def _exit_now(pool: Any) -> None:
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
def _stopped_by(error: type[Exception], status: int) -> Iterator[None]:
    """`error` raised inside stops the command with its message as one red line and exit `status`:
    1 for a dependency that cannot be used as it starts, 2 for a file a setting names."""
    try:
        yield
    except error as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(status) from exc


@contextmanager
def _services(settings: Settings) -> Iterator[Services]:
    """The services for a command, closed when it ends: every database connection with them, so
    that SQLite folds its write-ahead log back into the database file (no -wal file is left beside it)."""
    from seqdream.dependencies import CannotStart
    from seqdream.services import Services

    with _stopped_by(CannotStart, 1):
        services = Services.from_settings(settings)
    try:
        yield services
    finally:
        services.close()


@contextmanager
def _database(settings: Settings, *, migrated: bool = False) -> Iterator[Database]:
    """The configured database (`migrated`: brought up to date first, as serve and worker open it),
    closed as `_services` is."""
    from seqdream.db import migrate
    from seqdream.dependencies import CannotStart

    with _stopped_by(CannotStart, 1):
        db = migrate.open_database(settings, upgraded=migrated)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def _keys(settings: Settings) -> Iterator[KeyRing]:
    """The key ring alone: key commands open the database, not the services (a fraction of a second)."""
    from seqdream.auth.keys import KeyRing

    with _database(settings, migrated=True) as db:
        yield KeyRing(db)


def _check_provenance(services: Any) -> None:
    """Load the signer now, so a bad certificate stops the start with one clear line."""
    from seqdream.provenance.marking import ProvenanceSetupError

    with _stopped_by(ProvenanceSetupError, 2):
        services.marker  # noqa: B018 - loads it


def _trust_anchors(settings: Settings) -> str:
    """The anchors `verify` trusts, read now: a configured file that cannot be used stops the command
    (serve, verify) with one clear line."""
    from seqdream.provenance.verify import TrustAnchorsError, trust_anchors

    with _stopped_by(TrustAnchorsError, 2):
        return trust_anchors(settings.c2pa_trust_anchors, settings.data_dir)


@app.command()
def serve(
    host: str | None = typer.Option(None, metavar="HOST", help="Interface to bind [SEQDREAM_HOST, default 127.0.0.1]."),
    port: int | None = typer.Option(None, metavar="PORT", help="Port [SEQDREAM_PORT, default 8000]."),
    workers: int | None = typer.Option(
        None, metavar="N", help="In-process workers; 0 = API only [SEQDREAM_INLINE_WORKERS, default 1]."
    ),
    model: str | None = typer.Option(
        None, metavar="MODEL", help="Model id or local folder [SEQDREAM_MODEL, default: built-in]."
    ),
    no_auth: bool = typer.Option(False, "--no-auth", help="Development only: accept requests without an API key."),
) -> None:
    """Run the HTTP API (and, by default, one in-process worker)."""
    from seqdream.api.app import create_app
    from seqdream.api.server import serve as run_server
    from seqdream.api.state import running_or_none
    from seqdream.cpu.threads import thread_report

    settings = _settings(host=host, port=port, inline_workers=workers, model=model, auth_disabled=no_auth or None)
    configure_logging(settings.log_level)
    _trust_anchors(settings)
    with _services(settings) as services:
        if settings.inline_workers:
            _check_provenance(services)
        if not settings.auth_disabled and services.keys.count_active() == 0:
            created = services.keys.create("default")
            typer.secho(
                f"No API keys yet, so one was created. It is shown only this once:\n\n    {created.secret}\n\n"
                f"Use it as 'Authorization: Bearer <key>'. Manage keys with 'seqdream keys'.",
                fg=typer.colors.GREEN,
                err=True,
            )
    report = thread_report()
    logging.getLogger("seqdream").info(
        "CPU thread pools: torch %s, images %s (from %s)", report["torch"], report["images"], report["reason"]
    )
    application = create_app(settings)
    run_server(application, settings)
    state = running_or_none(application)
    _exit_now(state.workers if state is not None else None)


@app.command(short_help="Run workers against the configured database, here.")
def worker(
    concurrency: int = typer.Option(
        1, metavar="N", min=1, max=16, help="Worker threads in this process (they share one model)."
    ),
    metrics_port: int | None = typer.Option(
        None, metavar="PORT", min=0, max=65535, help="Serve /metrics, /health/live and /health/ready on PORT."
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", metavar="HOST", help="Interface the metrics port binds (0.0.0.0: every one, as in a container)."
    ),
    device: str | None = typer.Option(
        None, metavar="DEVICE", help="cpu, mps, cuda or cuda:N: one worker process per GPU [SEQDREAM_DEVICE]."
    ),
) -> None:
    """Run workers against the configured database, in this process, until interrupted."""
    from seqdream.health import announce, heartbeat, serve_worker_status
    from seqdream.jobs.worker import WorkerPool

    settings = _settings(device=device)
    configure_logging(settings.log_level)
    with _services(settings) as services:
        _check_provenance(services)
        url = None
        pool: WorkerPool | None = None  # the readiness probe reads it once the workers start
        if metrics_port is not None:
            from prometheus_client import generate_latest

            from seqdream.metrics import process_registry

            registry = process_registry(
                services.jobs, services.webhooks, lambda: services.engines.state, settings.metrics_key_labels
            )

            try:
                url = serve_worker_status(
                    metrics_host,
                    metrics_port,
                    lambda: generate_latest(registry),
                    lambda: services.readiness(pool, runs_workers=True),
                )
            except OSError as exc:  # a host that does not resolve, a port in use or not ours to bind
                typer.secho(
                    f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}", fg=typer.colors.RED, err=True
                )
                raise typer.Exit(1) from exc
        announce(url)
        dispatcher = services.start_webhooks()
        wake = threading.Event()  # set by a NOTIFY of a new task (PostgreSQL): claim at once, not at the next poll
        pool = services.start_workers(concurrency, wake=wake, on_finished=lambda _job_id: dispatcher.wake.set())
        listener = services.listen(on_new_job=wake.set, on_job_ended=lambda _job_id: dispatcher.wake.set())
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: pool.on_signal())
        beats = 0
        while not pool.stop.wait(0.5):  # the pool restarts a worker thread that ends; only a signal stops this
            beats += 1
            if beats % 10 == 0:  # every 5 s: `seqdream health` reads a fresh heartbeat
                heartbeat()
        pool.shutdown(settings.shutdown_grace_s)
        dispatcher.shutdown()
        if listener is not None:
            listener.close()
    _exit_now(pool)


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


@app.command(short_help="Exit 0 if this host's seqdream process is healthy.")
def health(timeout: float = typer.Option(3.0, metavar="SECONDS", help="Seconds to wait for the answer.")) -> None:
    """Exit 0 if the seqdream process of this host/container is alive (serve or worker), else 1."""
    from seqdream.health import check

    healthy, why = check(timeout)
    typer.echo(why, err=not healthy)
    raise typer.Exit(0 if healthy else 1)


@app.command()
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

    from seqdream.api.schemas import EditSequentialRequest
    from seqdream.engines.base import Steps
    from seqdream.images.decode import ImageInputError, open_image, reference_limits
    from seqdream.jobs.planner import plan_job, resolve_seed
    from seqdream.jobs.request import JobRequest
    from seqdream.services import build_engine

    settings = _settings(model=model)
    configure_logging("warning")
    try:
        request = EditSequentialRequest(
            prompt=prompt, size=size, max_images=max_images, seed=seed, images=[str(p) for p in image]
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    try:  # read as verify reads: at most one byte past the limit (a device or a pipe may never end)
        references = [
            open_image(_read_bounded(path, settings.max_image_bytes), **reference_limits(settings)) for path in image
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

        result = engine.generate(plan, progress)
    for index, picture in enumerate(result.images):
        path = out / f"seqdream-{used_seed}-{index + 1}.png"
        picture.save(path)
        typer.echo(str(path))
    typer.echo(f"seed {used_seed}, {result.inference_ms} ms", err=True)


_UNSET = "keep"  # an option left out of `keys update`


def _option(parse: Any, *args: Any, **kwargs: Any) -> Any:
    """A value parsed by seqdream.numbers, a bad one reported as typer's usage error (exit status 2)."""
    try:
        return parse(*args, **kwargs)
    except BadValue as exc:
        raise typer.BadParameter(str(exc)) from None


def _rate(value: str) -> int | None:
    """'60/min', '2/s', '600/h' or '60' (per minute) to submits per minute; 'default': the service's;
    '0' or 'unlimited': no limit. A key's rate is whole submits a minute: '90/h' is refused with the
    nearest two, not rounded, and '0/min' (no submits at all) points to 'unlimited' and to revoking."""
    text = value.strip().lower().replace(" ", "")
    if text == "default":
        return None
    if text in ("0", "unlimited"):
        return 0
    number, _, unit = text.partition("/")
    minute, second, hour = Fraction(1), Fraction(60), Fraction(1, 60)  # exact: 600/h is 10/min, no more
    per = {"": minute, "m": minute, "min": minute, "minute": minute, "s": second, "sec": second, "second": second}
    per |= {"h": hour, "hour": hour}
    form = "write it as N/min, N/s or N/h (or 'default', 'unlimited')"
    try:
        count = Quantity("rate", 0, RATE_PER_MIN.high * 60).parse(number) if unit in per else None  # N/h
    except BadValue as exc:
        raise typer.BadParameter(f"{exc}; {form}") from None
    if count is None:
        raise typer.BadParameter(f"rate: {value!r}: {form}")
    if count == 0:
        raise typer.BadParameter(
            f"rate: {value!r} would refuse every submit; for no limit write 'unlimited', and to stop a key, revoke it"
        )
    per_minute = count * per[unit]
    if per_minute.denominator != 1:
        low, high = math.floor(per_minute), math.ceil(per_minute)
        nearest = f"{high}/min" if low == 0 else f"{low}/min or {high}/min"
        raise typer.BadParameter(
            f"rate: {value!r} is {float(per_minute):.3g} a minute; a key's rate is whole submits a minute: "
            f"write {nearest}"
        )
    if per_minute > RATE_PER_MIN.high:
        raise typer.BadParameter(f"rate: {value!r} is {per_minute} a minute; the most is {RATE_PER_MIN.high}/min")
    return int(per_minute)


def _count(value: str, quantity: Quantity, none_word: str) -> int | None:
    text = value.strip().lower()
    if text == none_word:
        return None
    if text == "unlimited" and quantity is MAX_ACTIVE:
        return 0
    try:
        return quantity.parse(value)
    except BadValue as exc:
        words = f"'{none_word}'" + (" or 'unlimited'" if quantity is MAX_ACTIVE else "")
        raise typer.BadParameter(f"{exc} (or {words})") from None


def _limits(rate: str, max_active: str, credits: str, weight: str) -> dict[str, int | float | None]:
    limits: dict[str, int | float | None] = {}
    if rate != _UNSET:
        limits["rate_per_min"] = _rate(rate)
    if max_active != _UNSET:
        limits["max_active"] = _count(max_active, MAX_ACTIVE, "default")
    if credits != _UNSET:
        limits["credits"] = _count(credits, CREDITS, "unmetered")
    if weight != _UNSET:
        limits["weight"] = None if weight.strip().lower() == "default" else _option(parse_weight, weight)
    return limits


_RATE_HELP = "Submits a minute: N/min, N/s, N/h, 'unlimited' (or 0) or 'default' (SEQDREAM_KEY_RATE_PER_MIN)."
_ACTIVE_HELP = "Tasks queued or running at once: N, 'unlimited' (or 0) or 'default' (SEQDREAM_KEY_MAX_ACTIVE)."
_CREDITS_HELP = "Images the key may still make (each image one credit), or 'unmetered'."
_WEIGHT_HELP = "Share of the workers when keys compete (default 1; 2 gets twice the turns)."


def _describe(key: Any, settings: Settings) -> str:
    def limit(own: int | None, default: int, unit: str = "") -> str:
        value = default if own is None else own
        text = "unlimited" if value == 0 else f"{value}{unit}"
        return text + (" (default)" if own is None else "")

    credits = "unmetered" if key.credits is None else str(key.credits)
    return (
        f"rate {limit(key.rate_per_min, settings.key_rate_per_min, '/min')}, "
        f"active {limit(key.max_active, settings.key_max_active)}, credits {credits}, weight {key.weight or 1:g}"
    )


@keys_app.command("create")
def keys_create(
    name: str = typer.Option("default", metavar="NAME", help="A label to recognise the key by."),
    rate: str = typer.Option(_UNSET, metavar="RATE", help=_RATE_HELP, show_default=False),
    max_active: str = typer.Option(_UNSET, metavar="N", help=_ACTIVE_HELP, show_default=False),
    credits: str = typer.Option(_UNSET, metavar="N", help=_CREDITS_HELP, show_default=False),
    weight: str = typer.Option(_UNSET, metavar="W", help=_WEIGHT_HELP, show_default=False),
) -> None:
    """Create an API key and print it (it is shown only once)."""
    settings = _read_settings()
    with _keys(settings) as keys:
        created = _option(keys.create, name, **_limits(rate, max_active, credits, weight))
        key = keys.find(created.id)
    typer.echo(created.secret)
    typer.echo(f"created key {created.id} ({name}; {_describe(key, settings)}); store it now, it cannot be shown again",
               err=True)  # fmt: skip


@keys_app.command("update")
def keys_update(
    key: str = typer.Argument(..., metavar="KEY", help="Key id, prefix or name from 'seqdream keys list'"),
    rate: str = typer.Option(_UNSET, metavar="RATE", help=_RATE_HELP, show_default=False),
    max_active: str = typer.Option(_UNSET, metavar="N", help=_ACTIVE_HELP, show_default=False),
    credits: str = typer.Option(_UNSET, metavar="N", help=_CREDITS_HELP, show_default=False),
    add_credits: str = typer.Option(
        "0", metavar="N", help="Add N credits (a top-up; -N takes some back; an unmetered key starts at 0)."
    ),
    weight: str = typer.Option(_UNSET, metavar="W", help=_WEIGHT_HELP, show_default=False),
) -> None:
    """Change a key's limits, credits or weight; they apply to the next submit, in every process."""
    settings = _read_settings()
    limits = _limits(rate, max_active, credits, weight)
    added = _option(Quantity("add-credits", -CREDITS.high, CREDITS.high).parse, add_credits, signed=True)
    try:
        with _keys(settings) as keys:
            found = keys.update_limits(key, add_credits=added, **limits)
    except BadValue as exc:
        typer.echo(f"not changed: {exc}", err=True)
        raise typer.Exit(1) from None
    if found is None:
        typer.echo(f"no key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{found.id}  {found.name}: {_describe(found, settings)}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, name, created, revoked, limits)."""
    settings = _read_settings()
    with _keys(settings) as keys:
        listed = keys.list()
    for key in listed:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}…  {key.name:<20} created {key.created_at:%Y-%m-%d %H:%M}  {state}  "
                   f"{_describe(key, settings)}")  # fmt: skip


@app.command("verify", short_help="Check images for this service's marks.")
def verify_command(
    images: list[Path] = typer.Argument(..., metavar="IMAGE...", help="Image files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print each report as JSON."),
) -> None:
    """Check images for seqdream's marks (C2PA manifest, invisible watermark).

    Only this service's marks count: a manifest signed by its own certificate (one that chains to its
    local CA or SEQDREAM_C2PA_TRUST_ANCHORS) or its watermark; a manifest anyone else signed is named as such.
    Exit status: 0 when every image carries them, 1 when any has none, 2 when any cannot be read."""
    import json

    from seqdream.provenance.verify import UnreadableImage, verify

    settings = _read_settings()
    anchors = _trust_anchors(settings)
    status = 0
    for path in images:
        try:
            report = verify(
                _read_bounded(path, settings.max_image_bytes),
                trust_anchors=anchors,
                service_id=settings.provenance_service_id,
                max_bytes=settings.max_image_bytes,
                max_pixels=settings.max_image_pixels,
            )
        except OSError as exc:
            typer.echo(f"{path}: cannot be read: {exc.strerror or 'input/output error'}", err=True)
            status = 2
            continue
        except UnreadableImage as exc:
            typer.echo(f"{path}: {exc}", err=True)
            status = 2
            continue
        if not report.from_seqdream:
            status = max(status, 1)
        tasks = _tasks_with_tag(settings, report.watermark.tag) if report.watermark.ours else []
        if as_json:
            answer = report.as_dict()
            answer["watermark"]["tasks"] = tasks
            typer.echo(json.dumps({"file": str(path), **answer}))
            continue
        manifest, mark = report.c2pa, report.watermark
        if not manifest.present:
            c2pa_text = "no C2PA manifest"
        else:
            signer = {
                "this service": "signed by this service",
                "another party": "signed by another party, not this service",
                "nobody": "INVALID signature or tampered",
            }[report.signed_by or "nobody"]
            named = ", ".join(report.task_ids) or "?"
            c2pa_text = f"C2PA manifest claiming {manifest.claim_generator} ({signer}; task {named})"
        if mark.found:
            owner = "this service" if mark.ours else f"another seqdream service (tag {mark.service})"
            made_by = f" (made by task {', '.join(tasks)})" if tasks else ""
            mark_text = f"watermark of {owner}, content tag {mark.content_tag}{made_by}"
        else:
            mark_text = "no watermark"
        verdict = "AI-generated by this seqdream service" if report.from_seqdream else "no marks of this service"
        typer.echo(f"{path}: {verdict}: {c2pa_text}; {mark_text}")
    raise typer.Exit(status)


def _tasks_with_tag(settings: Settings, tag: int | None) -> list[str]:
    """This service's tasks whose images carry watermark content tag `tag`, from its database if there
    is one here (verify works on any machine: without one, or unreadable, it names none)."""
    from sqlalchemy.exc import SQLAlchemyError

    from seqdream.jobs.store import JobStore

    if tag is None or (settings.database_url is None and not (settings.data_dir / "seqdream.db").exists()):
        return []
    try:
        with _database(settings) as db:
            return JobStore(db).with_content_tag(tag)
    except SQLAlchemyError:
        return []


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, at most one past the limit (so a huge file is refused without reading it all)."""
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1)


@app.command("watch", short_help="Follow a task until it ends.")
def watch(
    task: str = typer.Argument(..., metavar="TASK", help="The task's id (data.id of its submit)."),
    interval: float = typer.Option(0.5, metavar="SECONDS", min=0.05, max=60, help="How often to look."),
) -> None:
    """Follow a task in the configured database until it ends: its place in the queue, then each image
    as it is stored, then how it ended (exit status 0 when it completed, 1 otherwise)."""
    import time

    from seqdream.db import JobStatus
    from seqdream.jobs.presentation import progress

    last = ""
    with _services(_read_settings()) as services:
        while True:
            job = services.jobs.get(task) if len(task) <= 64 else None
            if job is None:
                typer.echo(f"no task {task!r} in this service's database", err=True)
                raise typer.Exit(2)
            where = progress(job, *services.jobs.standing(job))
            line = _standing_line(job.status, where)
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


@app.command("usage", short_help="Tasks, images and model seconds per key and day.")
def usage_command(
    start: str = typer.Option(None, "--from", metavar="DAY", help="First day, YYYY-MM-DD (UTC); default 30 days ago."),
    end: str = typer.Option(None, "--to", metavar="DAY", help="Last day, YYYY-MM-DD (UTC), included; default today."),
) -> None:
    """Print every key's tasks, images and model seconds per day and model."""
    from seqdream.db.models import utcnow
    from seqdream.tenancy.usage import MAX_DAYS, USAGE_DAYS, day_range, totals, usage

    first, last = _option(day_span, start, end, utcnow().date(), default_days=USAGE_DAYS, max_days=MAX_DAYS)
    with _services(_read_settings()) as services:
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


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., metavar="KEY", help="Key id or prefix from 'seqdream keys list'"),
) -> None:
    """Revoke a key: requests using it get 401 from then on."""
    with _keys(_read_settings()) as keys:
        revoked = keys.revoke(key)
    if not revoked:
        typer.echo(f"no active key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the configured database and print its revision."""
    from seqdream.db import migrate

    with _database(_read_settings(), migrated=True) as db:
        typer.echo(f"database at revision {migrate.current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    """Print the configured database's schema revision (none before the first start)."""
    from seqdream.db import migrate

    with _database(_read_settings()) as db:
        typer.echo(migrate.current_revision(db) or "none")


if __name__ == "__main__":
    app()
