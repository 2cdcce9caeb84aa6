"""The write queue: batch N is committed on a thread of its own while batch N+1 is polled and decoded.

One writer thread takes batches from a bounded queue and commits them one at a time, in the order
they were submitted (poll order). The database drivers (sqlite3, psycopg) release the GIL while the
database works, so the loop's Python work and the write overlap.

Contract:
- ``submit`` blocks while ``depth`` batches wait (backpressure: memory stays bounded) and raises the
  writer's error, if it has one, instead of queueing.
- The first error of ``commit`` (what survived its own retries: permanent, or past the retry budget)
  stops the writer for good: nothing queued after the failed batch is committed (its offsets would
  skip the failed batch's messages), every later call raises that error, and the caller stops.
- ``drain`` returns once everything submitted is committed (or raises the error): before a
  rebalance gives partitions away, before a batch is validated against agreements still queued,
  and at exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Commits submitted items in order on one thread.

    Usage::

        writer = BatchWriter(commit_one, depth=2)
        writer.start()
        writer.submit(batch)   # returns at once unless `depth` batches already wait
        writer.drain()         # all submitted batches committed
        writer.close()
    """

    _STOP = object()

    def __init__(self, commit: Callable[[T], None], *, depth: int, name: str = "ingest-writer") -> None:
        if depth < 1:
            raise ValueError("the write queue needs a depth of at least 1")
        self._commit = commit
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def failed(self) -> BaseException | None:
        return self._error

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: T) -> None:
        """Queue ``item`` behind the others; wait while the queue is full. Raises the writer's error."""
        while True:
            self.raise_if_failed()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def held(self) -> int:
        """Batches submitted and not yet committed: the one being written and those waiting."""
        return self._queue.unfinished_tasks

    def idle(self) -> bool:
        """Nothing queued and nothing being written (a snapshot)."""
        return self._queue.unfinished_tasks == 0

    def drain(self) -> None:
        """Wait until every submitted item is committed; raises the writer's error instead."""
        self._queue.join()
        self.raise_if_failed()

    def close(self) -> None:
        """Stop the thread after what is queued (committed, or dropped after an error)."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is self._STOP:
                    return
                if self._error is None:
                    try:
                        self._commit(item)  # type: ignore[arg-type]
                    except BaseException as exc:  # handed to the loop, which stops the service
                        self._error = exc
            finally:
                self._queue.task_done()
