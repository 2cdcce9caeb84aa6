"""One backfill of one file: read it, prepare in workers, send in order, record what was acknowledged.

The order of a run, and what a stop at each step leaves:
1. the file's SHA-256 names its progress file; a complete one means nothing to do (unless
   ``restart``); otherwise reading starts at its position;
2. jobs (blocks, chunks of lines) are prepared in workers: a block is decoded and validated whole
   before anything of it is sent; refused records are listed and counted, never sent;
3. the parent sends each job's messages in file order and, as acknowledgements come in, moves the
   position (every record before it acknowledged or refused) and rewrites the progress file at most
   every ``save_every`` seconds;
4. at the end (or on SIGINT/SIGTERM, or at a broken block) it waits for the acknowledgements of what
   it sent, writes the progress file a last time, and reports.
A kill at any point loses nothing: the progress file only ever claims acknowledged records, so a
rerun sends again at most what was sent after its last write, and ingest drops those by event id.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

from recon.backfill import state as states
from recon.backfill.jobs import Job, Outcome, Worker, WorkerSpec
from recon.backfill.pipeline import AckedSender, Preparing
from recon.backfill.sources import block_jobs, is_container, line_jobs
from recon.errors import ConfigError, PermanentFault, ReconError


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What to backfill and how."""

    path: Path
    subject: str | None
    topic: str | None
    state_dir: Path | None
    restart: bool = False
    jobs: int = 1
    rate: float | None = None
    """Most records per second (None: as fast as the broker takes them)."""
    save_every: float = 1.0


@dataclass(frozen=True, slots=True)
class Result:
    file: str
    topic: str
    sent: int
    """Records acknowledged in this run."""
    refused: int
    sent_before: int
    refused_before: int
    interrupted: bool
    state_file: Path
    nothing_to_do: bool = False


class BlockRefused(ReconError):
    """A block of a container file (or the file itself) cannot be read; nothing of it was sent."""

    exit_code = 4


class Progress(Protocol):
    """What the run reports as it goes (a rich bar on a terminal, log lines otherwise)."""

    def start(self, file: str, total_bytes: int, done_bytes: int) -> None: ...
    def advance(self, size: int, sent: int, refused: int) -> None: ...
    def refusal(self, text: str) -> None: ...
    def stop(self) -> None: ...


def backfill(
    request: Request,
    settings: Any,
    *,
    progress: Progress,
    make_producer: Callable[[], Any],
    now_ms: int,
    stop: threading.Event | None = None,
) -> Result:
    from recon.avro import SchemaCatalogue
    from recon.avro._container import ContainerError, read_header
    from recon.publish import topic_for

    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    spec = WorkerSpec(
        schemas_dir=settings.schemas_dir,
        max_message_bytes=settings.max_message_bytes,
        config=settings.domain(),
        now_ms=now_ms,
    )
    name = str(request.path)
    with _open(request.path) as stream:
        container = is_container(stream)
        header = None
        if container:
            try:
                header = read_header(stream, catalogue)
            except ContainerError as exc:
                raise BlockRefused(f"{name}: {exc}; nothing was sent") from None
            subject = header.version.subject
            if request.subject is not None and request.subject != subject:
                raise ConfigError(
                    f"{name} holds {subject} records (schema {subject} v{header.version.version}), "
                    f"not {request.subject}: drop --subject or pass the right file"
                )
        elif request.subject is None:
            raise ConfigError(f"{name} is not an Avro container file: for JSON Lines pass --subject")
        else:
            subject = request.subject
        topic = request.topic or topic_for(subject, settings)
        sha = states.file_sha256(stream)
        state_dir = request.state_dir or request.path.resolve().parent / ".recon-backfill"
        state_file = states.state_path(state_dir, sha, topic)
        state = states.load(state_file, sha256=sha, topic=topic, file=name)
        if request.restart:
            state = states.State(sha256=sha, topic=topic, file=name)
        if state.complete:
            return Result(name, topic, 0, 0, state.acknowledged, state.refused, False, state_file, True)
        worker = Worker(spec, catalogue)
        worker.preparer(subject)
        size = request.path.stat().st_size
        with Preparing(spec, jobs=request.jobs, worker=worker) as preparing:
            producer = make_producer()
            try:
                sender = AckedSender(producer, topic)
                if container:
                    assert header is not None  # set above for container files
                    jobs = block_jobs(stream, header, state.position, partitions=sender.partitions)
                else:
                    jobs = line_jobs(stream, subject, state.position, partitions=sender.partitions)
                first_block = header.end if header is not None else 0
                start_offset = state.position.offset if state.position else first_block
                progress.start(name, size, start_offset)
                loop = _Loop(request, sender, progress, state, state_file, stop or threading.Event())
                with _signals_stop(loop.stop):
                    loop.run(preparing.outcomes(jobs), container=container)
            finally:
                from recon.kafka.clients import close_producer

                close_producer(producer, timeout=10)
                progress.stop()
        result = Result(
            name,
            topic,
            loop.acknowledged,
            loop.refused,
            state.acknowledged,
            state.refused,
            loop.interrupted,
            state_file,
        )
        if loop.problem is not None:
            total = state.acknowledged + loop.acknowledged
            raise BlockRefused(
                f"{name}: {loop.problem}; nothing of that block was sent, {total} records before it were "
                f"(acknowledged; progress in {state_file}): re-export the file from that block on"
            )
        return result


class _Loop:
    def __init__(
        self,
        request: Request,
        sender: AckedSender,
        progress: Progress,
        state: states.State,
        state_file: Path,
        stop: threading.Event,
    ) -> None:
        self.request, self.sender, self.progress = request, sender, progress
        self.state, self.state_file, self.stop = state, state_file, stop
        self.refused = 0
        self.interrupted = False
        self.problem: str | None = None
        self._saved_at = 0.0
        self._refusals_done = 0  # refusals behind the sender's position, this run

    @property
    def acknowledged(self) -> int:
        return self.sender.acknowledged

    def run(self, outcomes: Iterator[tuple[Job, Outcome]], *, container: bool) -> None:
        try:
            self._run(outcomes, container=container)
        except PermanentFault:
            self._save(complete=False)  # what was acknowledged before the broker refused stays done
            raise

    def _run(self, outcomes: Iterator[tuple[Job, Outcome]], *, container: bool) -> None:
        what = "record" if container else "line"
        started = time.monotonic()
        for job, outcome in outcomes:
            if outcome.problem is not None:
                self.problem = f"block {outcome.block}: {outcome.problem}"
                break
            for refusal in outcome.refusals:
                self.progress.refusal(f"{what} {refusal.line}: {refusal.code}: {refusal.reason}")
            self.refused += len(outcome.refusals)
            self.sender.send(job, outcome)
            self._settle()
            self.progress.advance(job.size, self.sender.sent, self.refused)
            if self.request.rate:
                ahead = self.sender.sent / self.request.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop.wait(ahead)
            if self.stop.is_set():
                self.interrupted = True
                break
        self._finish()

    def _settle(self) -> None:
        if self.sender.settle() and time.monotonic() - self._saved_at >= self.request.save_every:
            self._save(complete=False)

    def _finish(self) -> None:
        try:
            self.sender.drain(timeout=60)
        finally:
            self.sender.settle()
            clean = not self.interrupted and self.problem is None and self.sender.idle
            self._save(complete=clean)

    def _save(self, *, complete: bool) -> None:
        position = self.sender.position or self.state.position
        refused = self.state.refused + self.sender.refused_done
        states.save(
            self.state_file,
            replace(
                self.state,
                position=position,
                acknowledged=self.state.acknowledged + self.sender.acknowledged,
                refused=refused,
                complete=complete,
            ),
        )
        self._saved_at = time.monotonic()


class _signals_stop:  # a context manager, read as a phrase
    """SIGINT and SIGTERM set ``stop``: the run then waits for its acks, saves, and reports."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._old: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, lambda *_: self._stop.set())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _open(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist or is not a file: pass an .avro or JSON Lines export")
    try:
        return path.open("rb")
    except OSError as exc:
        raise PermanentFault(f"{path} cannot be read ({type(exc).__name__})") from None
