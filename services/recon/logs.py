"""Structured JSON logs on stderr: one object per line with the record's extra fields.

Callers pass topic, partition, offset and event id as ``extra``; never a NIK, a name or a secret.

The ``kafka`` library's own records are rate-limited (:class:`LibraryLogLimiter`): during a broker
outage kafka-python logs the same failure at every reconnect (up to every 2 s, per connection), so
on-call gets the first line of each cause, then one line per interval saying how many were held back::

    {"level": "error", "logger": "kafka.net.manager", "msg": "Connection failed: ...", ...}
    {"level": "error", "logger": "kafka.net.manager",
     "msg": "Connection failed: ... (repeated 14 times in the last 30 s)", "repeated": 14, ...}

Usage::

    configure("INFO", library_interval_seconds=settings.library_log_interval_seconds)
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["LIBRARY_LOGGER", "JsonFormatter", "LibraryLogLimiter", "configure", "flush_summaries"]

LIBRARY_LOGGER = "kafka"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_SUMMARY = "recon_summary"  # set on the summary records the limiter makes: they pass it unchecked

Cause = tuple[str, str, tuple[str, ...]]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and k != _SUMMARY})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def cause_of(record: logging.LogRecord) -> Cause:
    """What makes two library records "the same": the logger, the message template (``record.msg``,
    before its numbers, addresses and backoffs are put in) and the types of the exceptions involved."""
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    args = record.args if isinstance(record.args, tuple) else ()
    errors = [type(arg).__name__ for arg in args if isinstance(arg, BaseException)]
    if record.exc_info and record.exc_info[0] is not None:
        errors.append(record.exc_info[0].__name__)
    return record.name, template, tuple(errors)


@dataclass(slots=True)
class _Window:
    started: float
    held: int = 0  # records of this cause held back since ``started``
    last: logging.LogRecord | None = None  # the latest of them: its text goes into a summary


class LibraryLogLimiter(logging.Filter):
    """A handler filter letting through, per cause (:func:`cause_of`), the first library record of an
    interval of ``interval`` seconds and counting the rest. Once the interval has passed, the count
    goes out as "... (repeated N times in the last S s)": on the next record of that cause (which then
    carries it, and opens the next interval: a lasting outage is one line per interval), or, if the
    cause has stopped, as a summary of its last held record on the next record of any logger or at
    :meth:`flush` (shutdown). Records of other loggers pass untouched; an ``interval`` of 0 lets
    everything through. What it emits goes to ``emit`` (the handler's ``handle``).

    Nothing personal can reach a summary: it repeats text the library wrote itself, and kafka-python
    never puts record contents in its log lines. It does carry the records' bytes (enrolment keys are
    NIKs), but its ERROR calls (95 in 3.0.12) format connection and protocol state only: addresses,
    node ids, error codes, backoffs, exception text. The consumers here have no deserializer whose
    error could quote a record, and :class:`JsonFormatter` prints an exception's type, not its
    traceback or locals.
    """

    def __init__(
        self,
        *,
        interval: float,
        emit: Callable[[logging.LogRecord], object],
        clock: Callable[[], float] = time.monotonic,
        logger: str = LIBRARY_LOGGER,
    ) -> None:
        super().__init__()
        self._interval = interval
        self._emit = emit
        self._clock = clock
        self._logger = logger
        self._windows: dict[Cause, _Window] = {}
        self._lock = threading.Lock()  # kafka-python logs from its IO thread and the caller's

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False) or self._interval <= 0:
            return True
        library = record.name == self._logger or record.name.startswith(self._logger + ".")
        merged: logging.LogRecord | None = None
        with self._lock:
            now = self._clock()
            ended = self._take_ended(now)
            passes = True
            if library:
                cause = cause_of(record)
                before = ended.pop(cause, None)
                passes = self._admit(cause, record, now)
                if before is not None and before.held:  # still failing: this line carries the count
                    merged, passes = _summary(record, before.held, self._interval), False
            due = [_summary(w.last, w.held, self._interval) for w in ended.values() if w.last is not None]
        for summary in [*due, *([merged] if merged else [])]:  # outside the lock: emitting logs again
            self._emit(summary)
        return passes

    def flush(self) -> None:
        """Emit the summary of every cause that held records back, whether its interval ended or not."""
        with self._lock:
            now, windows = self._clock(), list(self._windows.values())
            self._windows.clear()
        for w in windows:
            if w.last is not None:
                self._emit(_summary(w.last, w.held, now - w.started))

    def _admit(self, cause: Cause, record: logging.LogRecord, now: float) -> bool:
        window = self._windows.get(cause)
        if window is None:
            self._windows[cause] = _Window(started=now)
            return True
        window.held += 1
        window.last = record
        return False

    def _take_ended(self, now: float) -> dict[Cause, _Window]:
        ended = [cause for cause, w in self._windows.items() if now - w.started >= self._interval]
        return {cause: self._windows.pop(cause) for cause in ended}


def _summary(record: logging.LogRecord, held: int, seconds: float) -> logging.LogRecord:
    """A copy of ``record`` saying how many records of its cause were held back in ``seconds``."""
    times = "once" if held == 1 else f"{held} times"
    summary = logging.makeLogRecord(
        {
            **record.__dict__,
            "msg": f"{record.getMessage()} (repeated {times} in the last {max(seconds, 1):.0f} s)",
            "args": (),
            "exc_info": None,
            "exc_text": None,
            "repeated": held,
            _SUMMARY: True,
        }
    )
    summary.created = time.time()
    summary.msecs = (summary.created % 1) * 1000
    return summary


class _ServiceHandler(logging.StreamHandler[TextIO]):
    """The stderr handler; at shutdown (``logging.shutdown`` closes it) the limiter's summaries go out."""

    limiter: LibraryLogLimiter | None = None

    def close(self) -> None:
        if self.limiter is not None:
            self.limiter.flush()
        super().close()


def configure(level: str = "INFO", *, library_interval_seconds: float = 30.0) -> None:
    handler = _ServiceHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.limiter = LibraryLogLimiter(interval=library_interval_seconds, emit=handler.handle)
    handler.addFilter(handler.limiter)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger(LIBRARY_LOGGER).setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def flush_summaries() -> None:
    """Emit the pending library summaries now: before a command's last line, so that line stays last."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _ServiceHandler) and handler.limiter is not None:
            handler.limiter.flush()
