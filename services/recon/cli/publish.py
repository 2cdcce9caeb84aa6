"""`recon publish --subject SUBJECT FILE`: what a branch system or an operator uses by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from recon.cli._app import app, settings_from
from recon.errors import ConfigError, PermanentFault

SUBJECTS = ("enrolment", "claim", "agreement", "branch-totals", "alert")


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
) -> None:
    """Encode JSON Lines with the subject's current schema and produce them; refused lines are listed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from recon.avro import SchemaCatalogue
    from recon.clock import SystemClock
    from recon.kafka.clients import make_producer
    from recon.publish import Prepared, Preparer, topic_for

    if subject not in SUBJECTS:
        raise ConfigError(f"--subject {subject!r} is not one of {', '.join(SUBJECTS)}: pick one of those")
    settings = settings_from(ctx)
    lines = _read_lines(file)
    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    preparer = Preparer(
        catalogue=catalogue,
        subject=subject,
        config=settings.domain(),
        now_ms=SystemClock().now_ms(),
        validate_domain=not skip_validation,
    )
    target = topic or topic_for(subject, settings)
    err = Console(stderr=True)
    producer = None if dry_run else make_producer(settings, client_id="recon-publish")
    futures, refused = [], 0
    with Progress(
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=len(lines) < 1000 or not err.is_terminal,
    ) as progress:
        task = progress.add_task("lines", total=len(lines))
        for item in preparer.prepare_lines(lines):
            progress.advance(task)
            if not isinstance(item, Prepared):
                refused += 1
                err.print(str(item), markup=False, highlight=False)
            elif producer is not None:
                futures.append(producer.send(target, key=item.key, value=item.value))
    sent = _wait(producer, futures)
    verb = "checked" if dry_run else f"sent to {target}"
    ok = len(futures) if not dry_run else sum(1 for line in lines if line.strip()) - refused
    print(f"{ok} records {verb}, {refused} refused")
    if sent is not None and sent != len(futures):
        raise PermanentFault(f"only {sent} of {len(futures)} records were acknowledged by the broker")
    if refused:
        raise typer.Exit(1)


def _read_lines(file: str) -> list[str]:
    if file == "-":
        return sys.stdin.read().splitlines()
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"{file} does not exist: pass a JSON Lines file, or '-' to read stdin")
    return path.read_text(encoding="utf-8").splitlines()


def _wait(producer: Any, futures: list[Any]) -> int | None:
    from recon.kafka.clients import close_producer

    if producer is None:
        return None
    producer.flush()
    acked = sum(1 for f in futures if f.succeeded())
    close_producer(producer, timeout=10)
    return acked
