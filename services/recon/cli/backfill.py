"""`recon backfill FILE…`: load what branches exported (Avro container files, JSON Lines) through Kafka."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from recon.cli._app import app, settings_from


@app.command()
def backfill(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="Avro object container files (.avro) or JSON Lines files.")
    ],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The subject of JSON Lines files (container files name their own)."),
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Topic to produce to (default: the subject's topic).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the progress files (default: .recon-backfill/ next to each file)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the progress file: send the whole file again.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=0, help="Worker processes (default: 2, or 1 on one core; 0: none)."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=1, help="Most records per second (spare a busy cluster).")
    ] = None,
) -> None:
    """Publish exported history to the topics, resumably; ingest stays the only writer of the ledger.

    Refused records are listed (line or record number, code, reason) and skipped; the exit code is 1
    if any was. A corrupt or truncated block stops the file (exit 4): nothing of it is sent.
    """
    from rich.console import Console

    from recon.backfill.pipeline import PUBLISH_PRODUCER_OPTIONS, default_jobs
    from recon.backfill.run import Request
    from recon.backfill.run import backfill as run_backfill
    from recon.clock import SystemClock
    from recon.kafka.clients import make_producer

    settings = settings_from(ctx)
    err = Console(stderr=True)
    refused_any = False
    for path in files:
        request = Request(
            path=path,
            subject=subject,
            topic=topic,
            state_dir=state_dir,
            restart=restart,
            jobs=default_jobs() if jobs is None else jobs,
            rate=rate,
        )
        progress = _TerminalProgress(err) if err.is_terminal else _LogProgress()
        result = run_backfill(
            request,
            settings,
            progress=progress,
            make_producer=lambda: make_producer(
                settings, client_id="recon-backfill", **PUBLISH_PRODUCER_OPTIONS
            ),
            now_ms=SystemClock().now_ms(),
        )
        if result.nothing_to_do:
            print(
                f"{result.file}: already backfilled to {result.topic} ({result.sent_before} records, "
                f"{result.refused_before} refused; progress in {result.state_file}): nothing sent. "
                "Pass --restart to send it again"
            )
            continue
        earlier = (
            f" (and {result.sent_before} sent, {result.refused_before} refused by earlier runs)"
            if result.sent_before or result.refused_before
            else ""
        )
        print(
            f"{result.file}: {result.sent} records sent to {result.topic}, {result.refused} refused{earlier}"
        )
        refused_any = refused_any or bool(result.refused)
        if result.interrupted:
            print(
                f"{result.file}: interrupted; every acknowledged record is in {result.state_file}: "
                "run the same command again to resume",
                file=sys.stderr,
            )
            raise typer.Exit(130)
    if refused_any:
        raise typer.Exit(1)


class _LogProgress:
    """Plain lines on stderr every few seconds (a log file, a CI job, a pipe)."""

    def __init__(self, every: float = 5.0) -> None:
        self._every = every
        self._started: float | None = None

    def start(self, file: str, total_bytes: int, done_bytes: int) -> None:
        self._file, self._total, self._done = file, max(total_bytes, 1), done_bytes
        self._started = self._last = time.monotonic()
        self._first_done, self._sent, self._refused = done_bytes, 0, 0
        print(f"backfill {file}: starting at byte {done_bytes} of {total_bytes}", file=sys.stderr, flush=True)

    def advance(self, size: int, sent: int, refused: int) -> None:
        self._done += size
        self._sent, self._refused = sent, refused
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - (self._started or now), 1e-9)
        rate = self._sent / elapsed
        byte_rate = (self._done - self._first_done) / elapsed
        eta = (self._total - self._done) / byte_rate if byte_rate > 0 else 0.0
        print(
            f"backfill {self._file}: {self._done / self._total:.0%}, {self._sent} records sent, "
            f"{self._refused} refused, {rate:,.0f} records/s, ETA {_clock(eta)}",
            file=sys.stderr,
            flush=True,
        )

    def refusal(self, text: str) -> None:
        print(f"{self._file}: {text}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self._started is not None:
            self._line(time.monotonic())


class _TerminalProgress:
    """A rich bar over the file's bytes, with records sent, records/s and the time left."""

    def __init__(self, console: Any) -> None:
        self._console = console
        self._bar: Any = None

    def start(self, file: str, total_bytes: int, done_bytes: int) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self._file = file
        self._started = time.monotonic()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[sent]} sent, {task.fields[refused]} refused, {task.fields[rate]}/s"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            Path(file).name, total=total_bytes, completed=done_bytes, sent=0, refused=0, rate="-"
        )

    def advance(self, size: int, sent: int, refused: int) -> None:
        rate = sent / max(time.monotonic() - self._started, 1e-9)
        self._bar.update(
            self._task, advance=size, sent=f"{sent:,}", refused=f"{refused:,}", rate=f"{rate:,.0f}"
        )

    def refusal(self, text: str) -> None:
        self._bar.console.print(f"{self._file}: {text}", markup=False, highlight=False)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
