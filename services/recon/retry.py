"""Retry policy for transient I/O, in one place (tenacity).

Only adapters call this, only around I/O that can fail transiently: a broker restart, a database
restart, a rebalance. Validation failures are never retried. When the budget runs out the fault is
re-raised as a PermanentFault whose message says what was unreachable and where to look.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from recon.errors import PermanentFault

T = TypeVar("T")
log = logging.getLogger("recon.retry")


def is_transient(exc: BaseException) -> bool:
    """True for faults that time may cure: lost connections, locks, timeouts, leader moves."""
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError

        if isinstance(exc, OperationalError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        # PostgreSQL refusing writes (read-only transaction 25006, disk full / resources class 53):
        # time may cure them, so they get the retry budget before the service stops.
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
        if isinstance(exc, DBAPIError) and (sqlstate == "25006" or sqlstate.startswith("53")):
            return True
    except ImportError:  # pragma: no cover - sqlalchemy is a hard dependency
        pass
    try:
        from kafka.errors import KafkaError

        if isinstance(exc, KafkaError):
            return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in {
                "KafkaConnectionError",
                "NoBrokersAvailable",
                "KafkaTimeoutError",
                "NodeNotReadyError",
            }
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, ConnectionError | TimeoutError)


def describe(exc: BaseException) -> str:
    """A short description of a fault that never includes SQL parameters or message contents."""
    orig = getattr(exc, "orig", None)
    inner = orig if orig is not None else exc
    name = type(inner).__name__
    text = str(inner).splitlines()[0] if str(inner) else ""
    text = text.removeprefix(f"{name}: ")  # kafka-python's errors start with their own name
    return f"{name}: {text[:200]}" if text else name


def call_with_retry(
    what: str,
    fn: Callable[[], T],
    *,
    budget_seconds: float,
    on_retry: Callable[[str], None] | None = None,
    hint: str = "",
) -> T:
    """Run ``fn``; retry transient faults with jittered backoff for up to ``budget_seconds``."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "transient fault, retrying",
            extra={"what": what, "attempt": state.attempt_number, "error": describe(exc) if exc else ""},
        )
        if on_retry is not None:
            on_retry(what)

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        # No sleep that would end past the budget: the fault is reported within it, not a backoff later.
        stop=stop_before_delay(budget_seconds),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
        before_sleep=before_sleep,
        reraise=True,
    )
    started = time.monotonic()
    try:
        return retrying(fn)
    except Exception as exc:
        if is_transient(exc):
            raise PermanentFault(
                f"{what} still failing after {time.monotonic() - started:.0f} s of retries ({describe(exc)})"
                + (f": {hint}" if hint else "")
            ) from exc
        if _is_database_error(exc):  # one line, never the statement or its parameters
            raise PermanentFault(f"{what} failed ({describe(exc)})" + (f": {hint}" if hint else "")) from exc
        raise


def _is_database_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError)


_HINTS = {
    "database": "check RECON_DATABASE_URL and that the database is up",
    "broker": "check RECON_KAFKA_BOOTSTRAP_SERVERS and that the broker is up",
}


def dependency_call(dependency: str, what: str, fn: Callable[[], T], *, budget_seconds: float) -> T:
    """``call_with_retry`` for the ``database`` or the ``broker``, counted in ``recon_retries_total``."""
    from recon import metrics

    return call_with_retry(
        what,
        fn,
        budget_seconds=budget_seconds,
        on_retry=lambda _: metrics.RETRIES.labels(dependency).inc(),
        hint=_HINTS[dependency],
    )


def database_call(what: str, fn: Callable[[], T], *, budget_seconds: float) -> T:
    return dependency_call("database", what, fn, budget_seconds=budget_seconds)


def broker_call(what: str, fn: Callable[[], T], *, budget_seconds: float) -> T:
    return dependency_call("broker", what, fn, budget_seconds=budget_seconds)
