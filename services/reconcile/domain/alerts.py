"""The alert lifecycle: signals in, alert states and the alert records to publish out.

An alert is identified by its fingerprint, a stable hash of (rule, subject). Its life:

- a BREACH signal starts a firing *episode*: state FIRING, ``fired_at = now_ms``, and an
  ``alert_id`` derived from (fingerprint, fired_at), so a re-run of the same evaluation produces
  the same id; one FIRING record is published;
- while firing, BREACH and HOLD signals keep it firing and refresh its observed and expected
  values and message in the stored state. Those updates are not published, except a severity
  rise (WARNING to CRITICAL), which publishes a FIRING record with the same ``alert_id``; within an
  episode severity never falls, so it cannot flap either;
- a CLEAR signal, or no signal at all for a fingerprint of an evaluated rule, starts the clear
  clock; once clear for the agreement's ``resolve_after_ms`` (0 resolves at once) the alert is
  RESOLVED with ``resolved_at = now_ms`` and one RESOLVED record is published. A BREACH or HOLD
  before that stops the clock;
- after resolution, the next BREACH starts a new episode with a new ``alert_id``.

``evolve`` is pure and idempotent: evolving its own output again with the same signals and
``now_ms`` changes nothing and publishes nothing, which is what lets a restarted reconciler, whose
states and outbox were written in one transaction, neither lose nor re-send an alert.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from reconcile.domain.signals import Level, Severity, Signal, ThresholdPolicy

RUNBOOK_BASE: Final = "docs/runbooks/"
_EPISODE_NAMESPACE: Final = uuid.UUID("6f1d3c1e-6a0b-5f3e-9a57-72a1c0de2025")


class AlertStatus(StrEnum):
    FIRING = "FIRING"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertState:
    """What the reconciler keeps per fingerprint between evaluations (stored with the outbox)."""

    fingerprint: str
    rule: str
    subject: str
    agreement_id: str | None
    status: AlertStatus
    alert_id: str
    severity: Severity
    observed: float
    expected: float
    message: str
    fired_at_ms: int
    resolved_at_ms: int | None
    clear_since_ms: int | None  # firing, but clear since then; None otherwise
    runbook: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    """One record for the alerts topic: the fields of ``schemas/alert/v1.avsc``. No personal data."""

    alert_id: str
    fingerprint: str
    rule: str
    severity: Severity
    state: AlertStatus
    agreement_id: str | None
    observed: float
    expected: float
    message: str
    fired_at_ms: int
    resolved_at_ms: int | None
    runbook: str

    def to_avro(self) -> dict[str, object]:
        """The record as the Avro ``alert`` schema names its fields (timestamps in milliseconds)."""
        return {
            "alert_id": self.alert_id,
            "fingerprint": self.fingerprint,
            "rule": str(self.rule),
            "severity": str(self.severity),
            "state": str(self.state),
            "agreement_id": self.agreement_id,
            "observed": float(self.observed),
            "expected": float(self.expected),
            "message": self.message,
            "fired_at": self.fired_at_ms,
            "resolved_at": self.resolved_at_ms,
            "runbook": self.runbook,
        }


def fingerprint(rule: str, subject: str) -> str:
    """A stable id of (rule, subject): 20 hex digits of SHA-256, the same in every process."""
    return hashlib.sha256(f"{rule}\x1f{subject}".encode()).hexdigest()[:20]


def episode_id(fingerprint_: str, fired_at_ms: int) -> str:
    """The ``alert_id`` of the episode of ``fingerprint_`` that fired at ``fired_at_ms`` (a UUID 5)."""
    return str(uuid.uuid5(_EPISODE_NAMESPACE, f"{fingerprint_}@{fired_at_ms}"))


def runbook_for(rule: str, base: str = RUNBOOK_BASE) -> str:
    """The runbook link of a rule: ``<base><rule>.md``."""
    return f"{base}{rule}.md"


def evolve(
    previous: Mapping[str, AlertState],
    signals: Iterable[Signal],
    now_ms: int,
    policy: ThresholdPolicy,
    *,
    rules: Collection[str] | None = None,
    runbook_base: str = RUNBOOK_BASE,
) -> tuple[dict[str, AlertState], list[AlertRecord]]:
    """The alert states after one evaluation, and the records to publish (see the module docstring).

    ``signals`` is one complete evaluation of ``rules`` (every rule when None): a firing alert of
    one of those rules without a signal counts as clear; alerts of other rules are left alone.
    Two signals with the same rule and subject are a bug in a rule: ValueError.
    Returns every state (``previous`` updated; RESOLVED ones kept) and the records in a stable order.
    """
    current = _by_fingerprint(signals)
    states = dict(previous)
    changes: list[AlertRecord] = []
    for fp, signal in current.items():
        state, change = _step(previous.get(fp), fp, signal, now_ms, policy, runbook_base)
        if state is not None:
            states[fp] = state
        if change is not None:
            changes.append(change)
    for fp, state in previous.items():
        silent = fp not in current and state.status is AlertStatus.FIRING
        if silent and (rules is None or state.rule in rules):
            states[fp], change = _clear(state, None, now_ms, policy)
            if change is not None:
                changes.append(change)
    changes.sort(key=lambda r: (r.rule, r.fingerprint, r.state))
    return states, changes


def _by_fingerprint(signals: Iterable[Signal]) -> dict[str, Signal]:
    result: dict[str, Signal] = {}
    for signal in signals:
        fp = fingerprint(signal.rule, signal.subject)
        if fp in result:
            raise ValueError(f"two signals for rule {signal.rule} and subject {signal.subject}")
        result[fp] = signal
    return result


def _step(
    prev: AlertState | None, fp: str, signal: Signal, now_ms: int, policy: ThresholdPolicy, runbook_base: str
) -> tuple[AlertState | None, AlertRecord | None]:
    firing = prev is not None and prev.status is AlertStatus.FIRING
    if prev is None or not firing:
        if signal.level is not Level.BREACH:
            return prev, None
        state = _new_episode(fp, signal, now_ms, runbook_base)
        return state, _record(state)
    if signal.level is Level.CLEAR:
        return _clear(prev, signal, now_ms, policy)
    rises = signal.level is Level.BREACH and signal.severity.rank > prev.severity.rank
    state = replace(
        prev,
        agreement_id=signal.agreement_id,
        severity=signal.severity if rises else prev.severity,
        observed=signal.observed,
        expected=signal.expected,
        message=signal.message,
        clear_since_ms=None,
    )
    return state, _record(state) if rises else None


def _clear(
    prev: AlertState, signal: Signal | None, now_ms: int, policy: ThresholdPolicy
) -> tuple[AlertState, AlertRecord | None]:
    since = now_ms if prev.clear_since_ms is None else prev.clear_since_ms
    state = (
        prev
        if signal is None
        else replace(prev, observed=signal.observed, expected=signal.expected, message=signal.message)
    )
    if now_ms - since < policy.for_agreement(prev.agreement_id).resolve_after_ms:
        return replace(state, clear_since_ms=since), None
    detail = state.message if signal is not None else f"no longer observed (last: {state.message})"
    resolved = replace(
        state,
        status=AlertStatus.RESOLVED,
        resolved_at_ms=now_ms,
        clear_since_ms=None,
        message=f"Resolved: {detail}",
    )
    return resolved, _record(resolved)


def _new_episode(fp: str, signal: Signal, now_ms: int, runbook_base: str) -> AlertState:
    return AlertState(
        fingerprint=fp,
        rule=signal.rule,
        subject=signal.subject,
        agreement_id=signal.agreement_id,
        status=AlertStatus.FIRING,
        alert_id=episode_id(fp, now_ms),
        severity=signal.severity,
        observed=signal.observed,
        expected=signal.expected,
        message=signal.message,
        fired_at_ms=now_ms,
        resolved_at_ms=None,
        clear_since_ms=None,
        runbook=runbook_for(signal.rule, runbook_base),
    )


def _record(state: AlertState) -> AlertRecord:
    return AlertRecord(
        alert_id=state.alert_id,
        fingerprint=state.fingerprint,
        rule=state.rule,
        severity=state.severity,
        state=state.status,
        agreement_id=state.agreement_id,
        observed=state.observed,
        expected=state.expected,
        message=state.message,
        fired_at_ms=state.fired_at_ms,
        resolved_at_ms=state.resolved_at_ms,
        runbook=state.runbook,
    )
