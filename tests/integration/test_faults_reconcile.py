"""Fault campaign: the reconciler killed (SIGKILL) while alert changes wait in the outbox.

Twenty small agreements (quota 2) each get three enrolled workers, so twenty over-quota alerts fire
in one evaluation. The reconciler commits the alert states and their outbox rows in one
transaction; the test watches the ``outbox`` table and kills the process the moment alert rows are
pending (committed, not yet marked sent: unsent, or sent and unmarked). A reconciler started after it
takes the lease once the dead one's expires, recovers what was already published, sends the rest,
and then, as two workers of each agreement are terminated, resolves all twenty. The alerts topic must
hold each change exactly once: one FIRING and one RESOLVED per alert, each outbox row once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from factories import agreement_record, enrolment_record, valid_nik
from faults import Lab, LedgerView, Outcome, Proc, open_lab, produce_now
from recon.avro import SchemaCatalogue
from recon.kafka.outbox import OUTBOX_ID_HEADER
from recon.ledger import upgrade
from support import consume_all, service_env

AGREEMENTS = 20
QUOTA, ENROLLED, TERMINATED = 2, 3, 2  # 3 > 2 fires; 1 left resolves (below 2 x 0.98)


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, None) as opened:
        yield opened


def reconcile_kill_scenario(lab: Lab) -> Outcome:
    topics = lab.topics()
    db_url = lab.sqlite_url("reconcile-kill")
    upgrade(db_url)
    env = service_env(
        topics.overrides(),
        db_url,
        ingest_http_port=0,
        reconcile_http_port=0,
        alert_thresholds=json.dumps({"default": {"resolve_after_ms": 0}}),
        reconcile_full_pass_seconds=1,
    )
    view = LedgerView(db_url)
    problems: list[str] = []
    notes: list[str] = []
    sent = _ingest(
        env, topics.bootstrap, topics.agreements, [_agreement(lab.catalogue, a) for a in range(AGREEMENTS)]
    )
    sent += _ingest(env, topics.bootstrap, topics.enrolments, _workers(lab.catalogue, "ENROLLED", ENROLLED))
    survivor: Proc | None = None
    try:
        first = Proc(env, "reconcile")
        pending = _kill_when_alerts_pending(first, view)
        killed_at = time.monotonic()
        notes.append(f"killed with {pending} alert rows pending in the outbox")
        if not pending:
            problems.append("the kill missed: no alert row was pending in the outbox when it landed")
        survivor = Proc(env, "reconcile")
        _wait_alerts_sent(view, AGREEMENTS, survivor)
        recover = time.monotonic() - killed_at
        sent += _ingest(
            env, topics.bootstrap, topics.enrolments, _workers(lab.catalogue, "TERMINATED", TERMINATED)
        )
        _wait_alerts_sent(view, 2 * AGREEMENTS, survivor)
        code = survivor.terminate()
        if code != 0:
            problems.append(f"the reconciler stopped by SIGTERM exited {code}: {survivor.last_line()}")
        outbox_ids = view.outbox_ids("alert")
        stored = view.stored()
    finally:
        for proc in (survivor,):
            if proc is not None and proc.alive():
                proc.kill()
        view.close()
    lost, duplicated, (summary, *alert_problems) = _check_alerts(
        lab.catalogue, topics.bootstrap, topics.alerts, outbox_ids
    )
    return Outcome(
        scenario="reconcile killed, alerts in outbox",
        faults=1,
        sent=sent,
        stored=stored,
        dead_lettered=len(consume_all(topics.bootstrap, topics.dead_letters, timeout=5)),
        lost=lost,
        duplicated=duplicated,
        recover_seconds=round(recover, 1),
        problems=(*problems, *alert_problems),
        notes=(*notes, f"{len(outbox_ids)} alert changes committed; {summary}"),
    )


def _kill_when_alerts_pending(proc: Proc, view: LedgerView, *, timeout: float = 60) -> int:
    """SIGKILL ``proc`` as soon as alert rows are committed and not marked sent; how many were pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.alive():
        counts = view.try_(lambda: view.outbox("alert"))
        if counts and counts[1]:
            proc.kill()
            return int(view.outbox("alert")[1])
        if counts and counts[0] >= AGREEMENTS:
            break  # published and marked before a poll saw them pending
    proc.kill()
    return 0


def _wait_alerts_sent(view: LedgerView, n: int, proc: Proc, *, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = view.try_(lambda: view.outbox("alert")) or (0, 0)
        if counts[0] >= n and counts[1] == 0:
            return
        if not proc.alive():
            raise AssertionError(f"the reconciler exited ({proc.returncode}):\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{counts[0]} of {n} alert changes published after {timeout} s")
        time.sleep(0.1)


def _check_alerts(
    catalogue: SchemaCatalogue, bootstrap: str, topic: str, outbox_ids: set[int]
) -> tuple[int, int, list[str]]:
    """(lost, duplicated, [summary, *problems]): each outbox row once on the topic, each (alert, state)
    once, and the twenty over-quota alerts each fired and resolved."""
    records = consume_all(bootstrap, topic, expect=len(outbox_ids), timeout=30)
    by_row: Counter[int] = Counter()
    by_change: Counter[tuple[str, str]] = Counter()
    over_quota: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for record in records:
        by_row[int(dict(record.headers)[OUTBOX_ID_HEADER])] += 1
        alert = catalogue.decode(record.value, "alert").record
        by_change[(alert["alert_id"], alert["state"])] += 1
        rules[f"{alert['rule']} {alert['state']}"] += 1
        if alert["rule"] == "over_quota":
            over_quota[alert["state"]] += 1
    lost = len(outbox_ids - set(by_row))
    duplicated = sum(n - 1 for n in by_row.values()) + sum(n - 1 for n in by_change.values())
    problems = [", ".join(f"{n} {change}" for change, n in sorted(rules.items())) + " on the topic"]
    if set(by_row) - outbox_ids:
        problems.append(f"{len(set(by_row) - outbox_ids)} alerts on the topic that no outbox row stands for")
    if over_quota != Counter({"FIRING": AGREEMENTS, "RESOLVED": AGREEMENTS}):
        problems.append(f"over_quota changes on the topic: {dict(over_quota)}, want {AGREEMENTS} of each")
    return lost, duplicated, problems


def _ingest(env: dict[str, str], bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> int:
    produce_now(bootstrap, topic, messages)
    proc = Proc(env, "ingest", "--idle-exit", "1")
    code = proc.wait(timeout=120)
    assert code == 0, f"ingest exited {code}:\n{proc.tail()}"
    return len(messages)


def _agreement(catalogue: SchemaCatalogue, a: int) -> tuple[bytes, bytes]:
    today = datetime.now(UTC).date()
    record = agreement_record(
        agreement_id=f"PKS-SMALL-{a:02d}",
        quota_workers=QUOTA,
        budget_rupiah=10**12,
        ramp=[],
        period_start=date(today.year, 1, 1),
        period_end=date(today.year, 12, 31),
    )
    return record["agreement_id"].encode(), catalogue.encode("agreement", record)


def _workers(catalogue: SchemaCatalogue, event_type: str, per_agreement: int) -> list[tuple[bytes, bytes]]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    month_start = datetime.now(UTC).date().replace(day=1)
    out = []
    for a in range(AGREEMENTS):
        for w in range(per_agreement):
            nik = valid_nik(serial=1 + a * 10 + w)
            fields: dict[str, Any] = {
                "event_id": f"{event_type}-{a}-{w}",
                "event_type": event_type,
                "nik": nik,
                "agreement_id": f"PKS-SMALL-{a:02d}",
                "occurred_at": now_ms - 60_000,
                "coverage_start": month_start,
            }
            if event_type == "TERMINATED":
                fields["termination_reason"] = "left the programme"
            out.append((nik.encode(), catalogue.encode("enrolment", enrolment_record(**fields))))
    return out


def test_reconciler_killed_with_alerts_in_the_outbox_publishes_each_change_exactly_once(lab: Lab) -> None:
    outcome = reconcile_kill_scenario(lab)
    print(outcome)

    assert outcome.ok, outcome.explain()
