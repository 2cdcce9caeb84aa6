"""The alert lifecycle: firing, hysteresis, resolution, escalation, idempotent re-evaluation."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_builders import figures

from reconcile.domain.alerts import AlertRecord, AlertState, AlertStatus, episode_id, evolve, fingerprint
from reconcile.domain.rules import over_quota
from reconcile.domain.signals import Level, Rule, Severity, Signal, ThresholdPolicy, Thresholds

NOW = 1_750_000_000_000
MIN = 60_000
POLICY = ThresholdPolicy(Thresholds(resolve_after_ms=10 * MIN))
IMMEDIATE = ThresholdPolicy(Thresholds(resolve_after_ms=0))
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "alert" / "v1.avsc"


def sig(
    level: Level,
    observed: float = 101,
    *,
    severity: Severity = Severity.WARNING,
    rule: str = Rule.OVER_QUOTA,
    subject: str = "agreement:PKS-A",
) -> Signal:
    return Signal(
        rule=rule,
        subject=subject,
        level=level,
        severity=severity,
        observed=observed,
        expected=100,
        message=f"Agreement PKS-A: {observed:,.0f} active workers against a quota of 100.",
        agreement_id="PKS-A",
    )


def run(
    steps: list[tuple[int, list[Signal]]], policy: ThresholdPolicy = POLICY
) -> tuple[dict[str, AlertState], list[AlertRecord]]:
    states: dict[str, AlertState] = {}
    published: list[AlertRecord] = []
    for now, signals in steps:
        states, changes = evolve(states, signals, now, policy)
        published += changes
    return states, published


def test_breach_fires_one_alert_with_everything_the_schema_needs() -> None:
    states, changes = evolve({}, [sig(Level.BREACH)], NOW, POLICY)
    fp = fingerprint("over_quota", "agreement:PKS-A")
    (record,) = changes
    assert record.state is AlertStatus.FIRING and record.fingerprint == fp
    assert (
        record.alert_id == episode_id(fp, NOW) and record.fired_at_ms == NOW and record.resolved_at_ms is None
    )
    assert (record.rule, record.severity, record.agreement_id) == ("over_quota", Severity.WARNING, "PKS-A")
    assert (record.observed, record.expected) == (101, 100)
    assert record.runbook == "docs/runbooks/over_quota.md"
    assert states[fp].status is AlertStatus.FIRING


def test_record_encodes_with_the_alert_schema() -> None:
    _, changes = evolve({}, [sig(Level.BREACH)], NOW, POLICY)
    raw: dict[str, Any] = json.loads(SCHEMA.read_text())
    assert {f["name"] for f in raw["fields"]} == set(changes[0].to_avro())
    schema = fastavro.parse_schema(raw)
    buffer = BytesIO()
    fastavro.schemaless_writer(buffer, schema, changes[0].to_avro())
    buffer.seek(0)
    decoded: dict[str, Any] = fastavro.schemaless_reader(buffer, schema)  # type: ignore[assignment]
    assert decoded["fired_at"].timestamp() * 1000 == NOW
    assert {k: v for k, v in decoded.items() if k != "fired_at"} == {
        k: v for k, v in changes[0].to_avro().items() if k != "fired_at"
    }


def test_fingerprint_and_episode_id_are_stable() -> None:
    assert fingerprint("over_quota", "agreement:PKS-A") == fingerprint("over_quota", "agreement:PKS-A")
    assert fingerprint("over_quota", "agreement:PKS-A") != fingerprint("below_plan", "agreement:PKS-A")
    assert len(fingerprint("r", "s")) == 20
    assert episode_id("abc", 1) == episode_id("abc", 1) != episode_id("abc", 2)


def test_hold_or_clear_without_an_alert_does_nothing() -> None:
    assert evolve({}, [sig(Level.HOLD), sig(Level.CLEAR, subject="x")], NOW, POLICY) == ({}, [])


def test_value_hovering_at_the_quota_fires_once_and_does_not_flap() -> None:
    actives = [100, 101, 100, 101, 99, 101, 98, 102, 100, 101]
    steps = [
        (NOW + i * MIN, over_quota([figures(quota=100, active=a)], POLICY)) for i, a in enumerate(actives)
    ]
    states, published = run(steps)
    assert [r.state for r in published] == [AlertStatus.FIRING]
    assert published[0].fired_at_ms == NOW + MIN
    (state,) = states.values()
    assert state.status is AlertStatus.FIRING and state.observed == 101  # refreshed, not re-published


def test_resolves_past_the_margin_after_the_clear_period() -> None:
    values = [101, 97, 97, 97]
    times = [NOW, NOW + MIN, NOW + 10 * MIN, NOW + 11 * MIN]
    steps = [
        (t, over_quota([figures(quota=100, active=a)], POLICY)) for t, a in zip(times, values, strict=True)
    ]
    states, published = run(steps)
    assert [r.state for r in published] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert next(iter(states.values())).status is AlertStatus.RESOLVED
    resolved = published[1]
    assert resolved.resolved_at_ms == NOW + 11 * MIN  # clear since NOW + MIN, for 10 minutes
    assert resolved.alert_id == published[0].alert_id and resolved.fired_at_ms == NOW
    assert resolved.observed == 97 and resolved.message.startswith("Resolved: Agreement PKS-A")


def test_hold_during_the_clear_period_restarts_the_clock() -> None:
    steps = [
        (NOW, [sig(Level.BREACH)]),
        (NOW + 1 * MIN, [sig(Level.CLEAR, 97)]),
        (NOW + 5 * MIN, [sig(Level.HOLD, 99)]),
        (NOW + 6 * MIN, [sig(Level.CLEAR, 97)]),
        (NOW + 15 * MIN, [sig(Level.CLEAR, 97)]),  # 9 minutes clear: not yet
    ]
    states, published = run(steps)
    assert len(published) == 1
    assert next(iter(states.values())).clear_since_ms == NOW + 6 * MIN
    states, changes = evolve(states, [sig(Level.CLEAR, 97)], NOW + 16 * MIN, POLICY)
    assert [c.state for c in changes] == [AlertStatus.RESOLVED]


def test_zero_resolve_period_resolves_on_the_first_clear() -> None:
    _, published = run([(NOW, [sig(Level.BREACH)]), (NOW + 1, [sig(Level.CLEAR, 50)])], IMMEDIATE)
    assert [r.state for r in published] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_a_missing_signal_counts_as_clear() -> None:
    steps = [(NOW, [sig(Level.BREACH, rule=Rule.DOUBLE_FUNDING, subject="pair:A|B")]), (NOW + 1, [])]
    _, published = run(steps, IMMEDIATE)
    assert published[-1].state is AlertStatus.RESOLVED
    assert published[-1].message.startswith("Resolved: no longer observed (last: ")


def test_rules_scope_leaves_other_rules_alone() -> None:
    states, _ = evolve({}, [sig(Level.BREACH)], NOW, IMMEDIATE)
    same, changes = evolve(states, [], NOW + 1, IMMEDIATE, rules={"below_plan"})
    assert changes == [] and same == states
    _, changes = evolve(states, [], NOW + 1, IMMEDIATE, rules={"over_quota"})
    assert [c.state for c in changes] == [AlertStatus.RESOLVED]


def test_refire_after_resolution_is_a_new_episode() -> None:
    steps = [(NOW, [sig(Level.BREACH)]), (NOW + 1, [sig(Level.CLEAR, 50)]), (NOW + 2, [sig(Level.BREACH)])]
    _, published = run(steps, IMMEDIATE)
    assert [r.state for r in published] == [AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.FIRING]
    assert published[0].alert_id != published[2].alert_id
    assert published[2].fired_at_ms == NOW + 2 and published[2].resolved_at_ms is None


def test_severity_rise_is_published_once_and_never_falls() -> None:
    steps = [
        (NOW, [sig(Level.BREACH, 101)]),
        (NOW + 1, [sig(Level.BREACH, 120, severity=Severity.CRITICAL)]),
        (NOW + 2, [sig(Level.BREACH, 101)]),
        (NOW + 3, [sig(Level.BREACH, 120, severity=Severity.CRITICAL)]),
    ]
    states, published = run(steps)
    assert [(r.state, r.severity) for r in published] == [
        (AlertStatus.FIRING, Severity.WARNING),
        (AlertStatus.FIRING, Severity.CRITICAL),
    ]
    assert published[0].alert_id == published[1].alert_id
    assert next(iter(states.values())).severity is Severity.CRITICAL


def test_two_signals_for_one_fingerprint_are_refused() -> None:
    with pytest.raises(ValueError, match="two signals"):
        evolve({}, [sig(Level.BREACH), sig(Level.HOLD)], NOW, POLICY)


def test_per_agreement_resolve_period() -> None:
    policy = IMMEDIATE.override("PKS-A", resolve_after_ms=5 * MIN)
    _, published = run([(NOW, [sig(Level.BREACH)]), (NOW + MIN, [sig(Level.CLEAR, 50)])], policy)
    assert len(published) == 1


# --- idempotence ------------------------------------------------------------------------------

_signal_sets = st.lists(
    st.tuples(
        st.sampled_from(["agreement:PKS-A", "agreement:PKS-B", "branch:B01"]),
        st.sampled_from(list(Level)),
        st.sampled_from(list(Severity)),
        st.integers(90, 110),
    ),
    max_size=3,
    unique_by=lambda t: t[0],
)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 20 * MIN), _signal_sets), max_size=12),
    resolve_after=st.sampled_from([0, MIN, 10 * MIN]),
)
def test_reevaluating_the_same_inputs_changes_nothing(
    steps: list[tuple[int, list[tuple[str, Level, Severity, int]]]], resolve_after: int
) -> None:
    policy = ThresholdPolicy(Thresholds(resolve_after_ms=resolve_after))
    states: dict[str, AlertState] = {}
    now = NOW
    for gap, raw in steps:
        now += gap
        signals = [sig(level, obs, severity=sev, subject=subject) for subject, level, sev, obs in raw]
        states, changes = evolve(states, signals, now, policy)
        again, repeated = evolve(states, signals, now, policy)
        assert repeated == [] and again == states
        firing = {s.fingerprint for s in states.values() if s.status is AlertStatus.FIRING}
        breached = {
            fingerprint(Rule.OVER_QUOTA, subject) for subject, level, _, _ in raw if level is Level.BREACH
        }
        assert breached <= firing
        for change in changes:
            assert change.state is AlertStatus.FIRING or change.resolved_at_ms == now
