"""The kafka library's log lines rate-limited per cause, on a fake clock; the JSON lines they become."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from recon import logs
from recon.logs import JsonFormatter, LibraryLogLimiter, cause_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines:
    """A handler as `configure` builds it (JSON, the limiter as its filter), writing into a buffer."""

    def __init__(self, interval: float = 30.0) -> None:
        self.clock = FakeClock()
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(JsonFormatter())
        self.limiter = LibraryLogLimiter(interval=interval, emit=self.handler.handle, clock=self.clock)
        self.handler.addFilter(self.limiter)

    def log(self, name: str, msg: str, *args: object, exc: BaseException | None = None) -> None:
        exc_info = None if exc is None else (type(exc), exc, None)
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)
        self.handler.handle(record)

    @property
    def entries(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]


@pytest.fixture
def lines() -> Iterator[Lines]:
    yield Lines()


def outage(lines: Lines, seconds: int, *, every: float = 0.5) -> int:
    """The same failure every ``every`` seconds, with a changing backoff and a new error each time."""
    count = 0
    for step in range(int(seconds / every)):
        lines.clock.now += every
        lines.log(
            "kafka.net.manager", "Connection failed: %s (backoff %.2f secs)", OSError(f"try {step}"), step
        )
        count += 1
    return count


def test_a_lasting_outage_is_one_line_per_interval_carrying_the_count(lines: Lines) -> None:
    sent = outage(lines, 90)  # 180 records over three 30 s intervals

    assert [e["msg"] for e in lines.entries] == [
        "Connection failed: try 0 (backoff 0.00 secs)",
        "Connection failed: try 60 (backoff 60.00 secs) (repeated 59 times in the last 30 s)",
        "Connection failed: try 120 (backoff 120.00 secs) (repeated 59 times in the last 30 s)",
    ]
    assert [e.get("repeated") for e in lines.entries] == [None, 59, 59]
    assert all(e["logger"] == "kafka.net.manager" and e["level"] == "error" for e in lines.entries)
    lines.limiter.flush()  # shutdown: what the last interval held back is counted too
    assert lines.entries[-1]["msg"] == (
        "Connection failed: try 179 (backoff 179.00 secs) (repeated 59 times in the last 30 s)"
    )
    # every record is a line or in a count (the shutdown summary is a count, not a record of its own)
    assert len(lines.entries) - 1 + sum(int(e.get("repeated", 0)) for e in lines.entries) == sent


def test_the_count_comes_with_the_next_record_of_any_logger_after_the_cause_stopped(lines: Lines) -> None:
    outage(lines, 10)  # 20 records, then the broker is back and the library falls silent
    assert len(lines.entries) == 1

    lines.clock.now += 25  # 30 s after the first line
    lines.log("recon.ingest", "batch stored")

    assert [e["msg"] for e in lines.entries[1:]] == [
        "Connection failed: try 19 (backoff 19.00 secs) (repeated 19 times in the last 30 s)",
        "batch stored",
    ]


def test_at_shutdown_the_held_back_records_are_counted_over_the_time_they_took(lines: Lines) -> None:
    outage(lines, 10)

    lines.limiter.flush()
    lines.limiter.flush()  # nothing twice

    assert [e.get("repeated") for e in lines.entries] == [None, 19]
    assert str(lines.entries[1]["msg"]).endswith("(repeated 19 times in the last 10 s)")


def test_a_cause_is_the_logger_the_template_and_the_exception_types_not_the_text(lines: Lines) -> None:
    for _ in range(3):
        lines.log("kafka.net.manager", "Connection failed: %s", ConnectionRefusedError("port 1"))
        lines.log("kafka.net.manager", "Connection failed: %s", TimeoutError("port 2"))
        lines.log("kafka.cluster", "Connection failed: %s", TimeoutError("port 2"))
        lines.log("kafka.net.manager", "Bootstrap failed: %s", TimeoutError("port 2"))
        lines.log("kafka.coordinator", "Heartbeat failed", exc=ValueError("x"))
        lines.log("kafka.coordinator", "Heartbeat failed", exc=KeyError("x"))

    assert len(lines.entries) == 6  # six causes, each through once
    lines.limiter.flush()
    assert [e["repeated"] for e in lines.entries[6:]] == [2] * 6
    assert {e["logger"] for e in lines.entries} == {"kafka.net.manager", "kafka.cluster", "kafka.coordinator"}


def test_the_same_text_from_different_templates_is_two_causes() -> None:
    first = logging.LogRecord("kafka", logging.ERROR, "", 1, "node %s down", ("1",), None)
    second = logging.LogRecord("kafka", logging.ERROR, "", 1, "node 1 down", (), None)

    assert first.getMessage() == second.getMessage()
    assert cause_of(first) != cause_of(second)


def test_other_loggers_are_never_held_back(lines: Lines) -> None:
    for _ in range(5):
        lines.log("recon.retry", "transient fault, retrying")
        lines.log("kafkaesque", "not the library")

    assert len(lines.entries) == 10


def test_an_interval_of_zero_lets_every_line_through() -> None:
    lines = Lines(interval=0)
    outage(lines, 5)
    lines.limiter.flush()

    assert len(lines.entries) == 10 and not [e for e in lines.entries if "repeated" in e]


def test_one_repeat_reads_once() -> None:
    lines = Lines()
    lines.log("kafka", "Bootstrap failed")
    lines.log("kafka", "Bootstrap failed")
    lines.limiter.flush()

    assert lines.entries[1]["msg"] == "Bootstrap failed (repeated once in the last 1 s)"


def test_the_summary_never_carries_the_exception_traceback(lines: Lines) -> None:
    for _ in range(2):
        lines.log("kafka.consumer", "Fetch failed", exc=RuntimeError("boom"))
    lines.limiter.flush()

    assert lines.entries[0]["error"] == "RuntimeError"
    assert "error" not in lines.entries[1] and "Traceback" not in lines.buffer.getvalue()


def test_configure_installs_the_limiter_with_the_interval_and_flushes_at_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", library_interval_seconds=3600)
        library = logging.getLogger("kafka.net.manager")
        for n in range(4):
            library.error("Connection failed: %s", OSError(n))
        logging.getLogger("kafka").info("below the library's level: never a line")
        logs.flush_summaries()
        root.handlers[0].close()
        entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])

    assert entries[0]["msg"] == "Connection failed: 0"
    assert [e.get("repeated") for e in entries] == [None, 3]
