"""What a service's loop records for its /readyz: written by the loop, read by the HTTP threads.

Plain attribute writes of immutable values are atomic in CPython, so the loop never waits on a
probe and a probe never touches the Kafka client (which is not thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from recon.http import Readiness, run_checks, stall_probe
from recon.retry import dependency_call

T = TypeVar("T")


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

    def call(self, dependency: str, what: str, fn: Callable[[], T], *, budget_seconds: float) -> T:
        """Run ``fn`` with the retry policy for ``dependency`` ('database' or 'broker') and record
        whether it worked, for the readiness check of that name."""
        try:
            result = dependency_call(dependency, what, fn, budget_seconds=budget_seconds)
        except Exception as exc:
            setattr(self, dependency, (False, f"{what}: {type(exc).__name__}"))
            raise
        setattr(self, dependency, (True, "last call succeeded"))
        return result

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
