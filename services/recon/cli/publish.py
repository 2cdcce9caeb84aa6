"""`recon publish --subject SUBJECT FILE`: what a branch system or an operator uses by hand."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from recon.cli._app import app, settings_from
from recon.errors import ConfigError, PermanentFault

SUBJECTS = ("enrolment", "claim", "agreement", "branch-totals", "alert")
_INLINE_BELOW = 10_000  # fewer lines than this are prepared in this process: no worker to start


@app.command()
def publish(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file, one record per line; '-' reads stdin.")],
    subject: Annotated[
        str, typer.Option("--subject", help="enrolment, claim, agreement, branch-totals or alert.")
    ],
    topic: Annotated[
        str | None, typer.Option(help="Topic to produce to (default: the subject's topic).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every line, send nothing.")] = False,
    skip_validation: Annotated[
        bool,
        typer.Option("--skip-validation", help="Send schema-valid records even if domain rules refuse them."),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=0,
            help="Worker processes preparing records (default: 2, or 1 on one core; 0: none).",
        ),
    ] = None,
) -> None:
    """Encode JSON Lines with the subject's current schema and produce them; refused lines are listed."""
    if subject not in SUBJECTS:
        raise ConfigError(f"--subject {subject!r} is not one of {', '.join(SUBJECTS)}: pick one of those")
    settings = settings_from(ctx)
    lines = _read_lines(file)
    code = run_publish(
        settings,
        lines,
        subject=subject,
        topic=topic,
        dry_run=dry_run,
        skip_validation=skip_validation,
        jobs=jobs,
    )
    if code:
        raise typer.Exit(code)


def run_publish(
    settings: Any,
    lines: list[str],
    *,
    subject: str,
    topic: str | None = None,
    dry_run: bool = False,
    skip_validation: bool = False,
    jobs: int | None = None,
) -> int:
    """Prepare ``lines`` (in worker processes for big inputs), send them in order, wait for every
    acknowledgement; print refusals and the summary. Returns the exit code (1 if any was refused)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from recon.avro import SchemaCatalogue
    from recon.backfill.jobs import Worker, WorkerSpec
    from recon.backfill.pipeline import (
        CHUNK_LINES,
        PUBLISH_PRODUCER_OPTIONS,
        AckedSender,
        Preparing,
        default_jobs,
    )
    from recon.clock import SystemClock
    from recon.kafka.clients import close_producer, make_producer
    from recon.publish import topic_for

    spec = WorkerSpec(
        schemas_dir=settings.schemas_dir,
        max_message_bytes=settings.max_message_bytes,
        config=settings.domain(),
        now_ms=SystemClock().now_ms(),
        validate=not skip_validation,
    )
    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    worker = Worker(spec, catalogue)
    worker.preparer(subject)  # a bad subject fails here, before any process or connection
    workers = 0 if len(lines) < _INLINE_BELOW else (default_jobs() if jobs is None else jobs)
    target = topic or topic_for(subject, settings)
    err = Console(stderr=True)
    refused = ok = 0
    with Preparing(spec, jobs=workers, worker=worker) as preparing:
        producer = None
        if not dry_run:
            producer = make_producer(settings, client_id="recon-publish", **PUBLISH_PRODUCER_OPTIONS)
        sender = AckedSender(producer, target) if producer is not None else None
        try:
            with Progress(
                TextColumn("publishing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=len(lines) < 1000 or not err.is_terminal,
            ) as progress:
                task = progress.add_task("lines", total=len(lines))
                partitions = sender.partitions if sender is not None else 0
                for job, outcome in preparing.outcomes(_chunks(lines, subject, CHUNK_LINES, partitions)):
                    progress.advance(task, job.count)
                    for refusal in outcome.refusals:
                        err.print(str(refusal), markup=False, highlight=False)
                    refused += len(outcome.refusals)
                    ok += len(outcome.messages)
                    if sender is not None:
                        sender.send(job, outcome)
                        sender.settle()
            if sender is not None:
                sender.drain()
        finally:
            if producer is not None:
                close_producer(producer, timeout=10)
    verb = "checked" if dry_run else f"sent to {target}"
    print(f"{ok} records {verb}, {refused} refused")
    if sender is not None and sender.acknowledged != ok:
        raise PermanentFault(f"only {sender.acknowledged} of {ok} records were acknowledged by the broker")
    return 1 if refused else 0


def _chunks(lines: list[str], subject: str, size: int, partitions: int) -> Iterator[Any]:
    from recon.backfill.jobs import Job

    for start in range(0, len(lines), size):
        chunk = lines[start : start + size]
        yield Job(
            kind="lines",
            subject=subject,
            first=start + 1,
            data=chunk,
            count=len(chunk),
            partitions=partitions,
        )


def _read_lines(file: str) -> list[str]:
    if file == "-":
        return sys.stdin.read().splitlines()
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"{file} does not exist: pass a JSON Lines file, or '-' to read stdin")
    return path.read_text(encoding="utf-8").splitlines()
