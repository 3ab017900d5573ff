"""`seqdream serve`, `seqdream worker` and `seqdream health`: the processes that run the service."""

from __future__ import annotations

import logging
import signal
import threading

import typer

from seqdream.cli.common import check_provenance, exit_now, model_settings, open_services, trust_anchors_or_stop
from seqdream.logs import configure as configure_logging


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
    from seqdream.api.server import STARTUP_FAILURE, CannotListen
    from seqdream.api.server import serve as run_server
    from seqdream.api.state import running_or_none
    from seqdream.cpu.threads import thread_report

    settings = model_settings(host=host, port=port, inline_workers=workers, model=model, auth_disabled=no_auth or None)
    configure_logging(settings.log_level)
    trust_anchors_or_stop(settings)
    with open_services(settings) as services:
        if settings.inline_workers:
            check_provenance(services)
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
    try:
        run_server(application, settings)
    except CannotListen as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(STARTUP_FAILURE) from None
    state = running_or_none(application)
    exit_now(state.workers if state is not None else None)


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
    from seqdream.jobs.pool import WorkerPool

    settings = model_settings(device=device)
    configure_logging(settings.log_level)
    with open_services(settings) as services:
        check_provenance(services)
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
    exit_now(pool)


def health(timeout: float = typer.Option(3.0, metavar="SECONDS", help="Seconds to wait for the answer.")) -> None:
    """Exit 0 if the seqdream process of this host/container is alive (serve or worker), else 1."""
    from seqdream.health import check

    healthy, why = check(timeout)
    typer.echo(why, err=not healthy)
    raise typer.Exit(0 if healthy else 1)
