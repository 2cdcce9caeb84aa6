"""`recon ingest` and `recon reconcile`: the two long-running services."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from recon.cli._app import app, settings_from

IdleExit = Annotated[
    float | None,
    typer.Option(
        "--idle-exit",
        min=0,
        help="Exit once caught up and nothing new came for SECONDS (batch runs, demos, tests).",
    ),
]


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT let the current batch finish, then the service exits cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def ingest(
    ctx: typer.Context,
    idle_exit: IdleExit = None,
    batch_max_records: Annotated[
        int | None, typer.Option(help="Most messages per batch (RECON_BATCH_MAX_RECORDS).")
    ] = None,
    consumer_group: Annotated[
        str | None, typer.Option(help="Kafka consumer group (RECON_CONSUMER_GROUP).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Consume, validate and store enrolment, claim, agreement and branch-total events."""
    from ingest.bootstrap import run
    from recon import logs

    settings = settings_from(ctx, batch_max_records=batch_max_records, consumer_group=consumer_group)
    logs.configure(log_level.upper(), library_interval_seconds=settings.library_log_interval_seconds)
    stop = _stop_on_signals()
    run(settings, stop=stop, idle_exit=idle_exit)


@app.command()
def reconcile(
    ctx: typer.Context,
    idle_exit: IdleExit = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Forget the folded coverage and fold every stored event again first."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Fold new ledger data, evaluate coverage rules, publish alert changes to the alerts topic."""
    from recon import logs
    from reconcile.bootstrap import run as run_reconcile

    settings = settings_from(ctx)
    logs.configure(log_level.upper(), library_interval_seconds=settings.library_log_interval_seconds)
    stop = _stop_on_signals()
    run_reconcile(settings, stop=stop, idle_exit=idle_exit, rebuild=rebuild)
