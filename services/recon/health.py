"""What a service's loop records for its /readyz: written by the loop, read by the HTTP threads.

Plain attribute writes of immutable values are atomic in CPython, so the loop never waits on a
probe and a probe never touches the Kafka client (which is not thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from recon.http import Readiness, run_checks, stall_probe


@dataclass(slots=True)
class Health:
    stall_after_seconds: float
    now: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)
    last_progress: float = field(default_factory=time.monotonic)
    waiting: int = 0  # messages (ingest) or batches (reconcile) known to wait
    database: tuple[bool, str] = (True, "not used yet")
    broker: tuple[bool, str] = (True, "not checked yet")
    role: tuple[bool, str] = (False, "starting")  # ingest: group joined; reconcile: lease held or standby

    def progressed(self) -> None:
        self.last_progress = self.now()

    def readiness(self) -> Readiness:
        return run_checks(
            {
                "database": lambda: self.database,
                "broker": lambda: self.broker,
                "role": lambda: self.role,
                "progress": stall_probe(
                    lambda: self.last_progress,
                    self.stall_after_seconds,
                    has_work=lambda: self.waiting > 0,
                    now=self.now,
                ),
            }
        )
