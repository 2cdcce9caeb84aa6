"""The dead-letter guard: stop loudly when a producer is plainly broken.

A consumer that never stops on bad input could silently pour a whole stream into the dead-letter
topic. The guard watches the share of invalid messages among the last ``window`` messages and, once
at least ``min_messages`` have been seen, trips when the share passes ``max_ratio``. The caller
checks it before committing a batch, so the batch that trips it is not committed: its messages stay
on their topics, nothing is lost, and the operator decides (fix the producer, or raise the limit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from recon.errors import ReconError


class DeadLetterGuardTripped(ReconError):
    exit_code = 4


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    invalid: int
    seen: int

    @property
    def ratio(self) -> float:
        return self.invalid / self.seen if self.seen else 0.0


class DeadLetterGuard:
    """A sliding window over message outcomes; O(1) per batch, bounded memory."""

    def __init__(self, *, window: int, min_messages: int, max_ratio: float) -> None:
        self._window = window
        self._min = min_messages
        self._max_ratio = max_ratio
        self._chunks: deque[tuple[int, int]] = deque()  # (valid, invalid) per batch, oldest first
        self._seen = 0
        self._invalid = 0

    def check(self, valid: int, invalid: int) -> GuardVerdict:
        """Account a batch, then raise DeadLetterGuardTripped if the window is over the limit.

        A tripped batch is not kept in the window: the caller will not commit it.
        """
        chunks = self._chunks.copy()
        seen, bad = self._seen + valid + invalid, self._invalid + invalid
        chunks.append((valid, invalid))
        while chunks and seen - sum(chunks[0]) >= self._window:
            old_valid, old_invalid = chunks.popleft()
            seen -= old_valid + old_invalid
            bad -= old_invalid
        verdict = GuardVerdict(invalid=bad, seen=seen)
        if seen >= self._min and verdict.ratio > self._max_ratio:
            raise DeadLetterGuardTripped(
                f"{bad} of the last {seen} messages were invalid ({verdict.ratio:.0%}, limit "
                f"{self._max_ratio:.0%}); stopped before committing this batch so nothing is lost: fix the "
                "producer (see `recon dlq` for reasons), or raise RECON_DLQ_GUARD_MAX_RATIO to let them "
                "through to the dead-letter topic"
            )
        self._chunks, self._seen, self._invalid = chunks, seen, bad
        return verdict
