"""The publishing pipeline `recon publish`, `recon backfill` and the demo share.

Why this shape: kafka-python's ``send`` is pure Python (~18–30 µs a record on our machines) and so is
preparing a record (parse, encode, decode back, validate: another ~20–27 µs, bench/publish.py). One
process doing both reaches half of what the client can send. So preparing runs in worker processes, a
bounded window of chunks ahead, in input order, while the parent only sends: it reaches most of a bare
producer's rate.

Order: outcomes come back in input order and are sent in that order, so two events of one worker
(one key) reach their partition in file order. Acknowledgements: :class:`AckedSender` keeps each
chunk's futures and tells how far the broker has acknowledged *everything*, refusals counted as done:
the position a resumed run may safely skip to. Nothing here retries a refused record.

Usage::

    with Preparing(spec, jobs=1) as preparing, AckedSender(producer, topic) as sender:
        for job, outcome in preparing.outcomes(iter_jobs()):
            sender.send(job, outcome)
            sender.settle()
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from recon.backfill.jobs import (
    Job,
    Outcome,
    Position,
    Worker,
    WorkerSpec,
    init_process,
    install,
    run_in_process,
)
from recon.errors import PermanentFault

PUBLISH_PRODUCER_OPTIONS: Final[dict[str, Any]] = {
    # Bigger batches and a little linger: fewer, fuller produce requests. Measured on 2 cores
    # (bench/publish.py): 16 KiB batches and 5 ms linger reach ~70% of what these do. No
    # compression: kafka-python compresses in Python-called C per batch, and on a local or LAN
    # broker the CPU costs more than the bytes saved (gzip measured ~40% slower).
    "linger_ms": 20,
    "batch_size": 256 * 1024,
}
CHUNK_LINES: Final = 2_000
"""Lines (or demo records) per job: big enough that a job's pickling overhead is negligible."""


def default_jobs() -> int:
    """Worker processes: two where there are two cores or more. Preparing a record costs about what
    sending it does (~20 µs each), so two workers keep the one sending parent busy and more cannot
    help (the parent is then the limit); on a shared machine two also hold their share of the CPU."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class Preparing:
    """Runs jobs in ``jobs`` worker processes (0: in this process), yielding outcomes in job order,
    at most ``window`` jobs ahead of the consumer (bounded memory whatever the input's size).

    The workers are forked from this process when it can (they then share its loaded catalogue
    and start in milliseconds): create this before any thread (the producer's) starts.
    """

    def __init__(self, spec: WorkerSpec, *, jobs: int, worker: Worker | None = None, window: int = 0) -> None:
        self._spec = spec
        self._jobs = jobs
        self._window = window or max(4, 3 * jobs)
        self._local = worker
        self._pool: Any = None
        if jobs > 0:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            install(worker)  # inherited by forked workers; spawned ones build their own
            try:
                self._pool = context.Pool(jobs, initializer=init_process, initargs=(spec,))
            finally:
                install(None)

    def __enter__(self) -> Preparing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def outcomes(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Outcome]]:
        if self._pool is None:
            worker = self._local or Worker(self._spec)
            self._local = worker
            for job in jobs:
                yield job, worker.run(job)
            return
        pending: collections.deque[tuple[Job, Any]] = collections.deque()
        for job in jobs:
            pending.append((job, self._pool.apply_async(run_in_process, (job,))))
            if len(pending) >= self._window:
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()


@dataclass(slots=True)
class _Tracked:
    job: Job
    futures: list[Any]
    indexes: list[int]
    refusals: list[int]  # job indexes of the refused records
    next: int = 0  # futures before this one are known to be acknowledged


class AckedSender:
    """Sends outcomes to one topic and tracks how far the broker has acknowledged all of them.

    ``position`` is where a resumed run may start: every record before it was acknowledged or
    refused. ``acknowledged`` counts acknowledged records. A record the broker finally refused
    (after the producer's own retries) raises ``PermanentFault`` from :meth:`settle` or :meth:`drain`.
    """

    def __init__(self, producer: Any, topic: str) -> None:
        """Also reads the topic's partition count (``partitions``) for the jobs to use."""
        from kafka.errors import KafkaTimeoutError

        self._producer = producer
        try:
            self.partitions = len(producer.partitions_for(topic) or ())
        except KafkaTimeoutError:
            raise PermanentFault(
                f"the broker has no topic {topic!r} (no metadata for it in time): create it, or start "
                "the local broker with `recon broker start`, which creates the service's topics"
            ) from None
        self._send = producer.send
        self._topic = topic
        self._pending: collections.deque[_Tracked] = collections.deque()
        self.sent = 0
        self.acknowledged = 0
        self.position: Position | None = None
        self._completed = self._partial = 0
        self._refused_completed = self._refused_partial = 0

    def __enter__(self) -> AckedSender:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, job: Job, outcome: Outcome) -> None:
        send, topic = self._send, self._topic
        futures = [send(topic, key=k, value=v, partition=p) for k, v, p in outcome.messages]
        self.sent += len(futures)
        refusals = [r.line - job.first for r in outcome.refusals]
        self._pending.append(_Tracked(job, futures, outcome.indexes, refusals))

    def settle(self) -> bool:
        """Take in the acknowledgements that arrived; True if ``position`` moved."""
        moved = False
        while self._pending:
            tracked = self._pending[0]
            futures, i = tracked.futures, tracked.next
            while i < len(futures) and futures[i].is_done:
                if futures[i].failed():
                    self._refused(tracked, i, futures[i].exception)
                i += 1
            self.acknowledged += i - tracked.next
            tracked.next = i
            job = tracked.job
            if i < len(futures):
                done = tracked.indexes[i]  # the job's records before this one are acknowledged or refused
                if done - job.skip > self._partial:
                    self._partial = done - job.skip
                    self._refused_partial = sum(1 for r in tracked.refusals if r < done)
                    start = job.start
                    self.position, moved = Position(start.offset, start.unit, done, start.first), True
                return moved
            self._pending.popleft()
            self._completed += job.count - job.skip
            self._refused_completed += len(tracked.refusals)
            self._partial = self._refused_partial = 0
            self.position, moved = job.after, True
        return moved

    @property
    def idle(self) -> bool:
        """Everything sent is acknowledged."""
        return not self._pending

    @property
    def refused_done(self) -> int:
        """Refused records before ``position``, in this run."""
        return self._refused_completed + self._refused_partial

    @property
    def records_done(self) -> int:
        """Records (acknowledged or refused) before ``position``, in this run."""
        return self._completed + self._partial

    def drain(self, timeout: float | None = None) -> None:
        """Wait (flush) until everything sent is acknowledged or failed, then settle."""
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=timeout)
        except KafkaTimeoutError:
            self.settle()
            raise PermanentFault(
                f"the broker did not acknowledge {self.sent - self.acknowledged} of the records sent within "
                f"{timeout or 0:.0f} s ({self.acknowledged} were): is it up? A rerun resends only the rest"
            ) from None
        self.settle()

    def _refused(self, tracked: _Tracked, i: int, error: BaseException | None) -> None:
        self.acknowledged += i - tracked.next
        index = tracked.indexes[i]
        what = "line" if tracked.job.kind == "lines" else "record"
        raise PermanentFault(
            f"the broker did not acknowledge {what} {tracked.job.first + index} "
            f"({type(error).__name__ if error else 'no reason given'}); "
            f"{self.acknowledged} records before it were acknowledged"
        )
