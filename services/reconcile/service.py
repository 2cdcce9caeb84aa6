"""The reconcile loop: fold new ledger batches, evaluate the rules, move alerts through the outbox.

Each step, while this process holds the reconciler's lease:
1. fold: the events of unfolded ingest batches are merged into the stored coverage and claim
   states (merges commute and are idempotent, so folding a batch twice changes nothing), and the
   batches are marked folded, in one transaction;
2. evaluate: when something was folded, or every ``reconcile_full_pass_seconds`` (lapses, silence
   and ramps move with the clock), figures and rules are computed and the alert lifecycle evolves;
3. alerts: changed alert states and their outbox messages commit in one transaction; then the
   outbox relay publishes them (see recon.kafka.outbox for the crash order).
A restart reloads the states from the ledger; evaluating the same inputs changes nothing, so no
alert is lost or re-sent. Kept in memory, rebuilt from the ledger: per agreement the multiset of
compact rows (``counts.RowCounts``: it grows with distinct rows, not workers), and the compact rows
of the workers funded by two or more agreements (the double-funding rule's input).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from recon import metrics
from recon.clock import Clock
from recon.domain.config import DomainConfig
from recon.domain.events import Agreement, BranchTotals
from recon.health import Health
from recon.kafka.outbox import OutboxRelay
from recon.ledger import OutboxMessage
from recon.settings import Settings
from reconcile.counts import RowCounts
from reconcile.domain import (
    AgreementFigures,
    AlertRecord,
    AlertState,
    AlertStatus,
    RuleInputs,
    ThresholdPolicy,
    WorkerCoverage,
    WorkerRow,
    apply,
    apply_claims,
    compute_figures,
    evaluate,
    evolve,
    to_row,
)
from reconcile.domain.dates import local_date
from reconcile.domain.rules_workers import funding_windows_from_rows
from reconcile.store import LeaseLost, ReconcileStore

T = TypeVar("T")
log = logging.getLogger("recon.reconcile")
ALERT = "alert"
MIN_DRAIN_SECONDS, MAX_DRAIN_SECONDS = 0.25, 2.0  # how long one round folds before it evaluates
RECENT_REPORTS = timedelta(days=62)  # branch reports this recent share the counts' one floor date


@dataclass(frozen=True, slots=True)
class Evaluation:
    figures: Mapping[str, AgreementFigures]
    agreements: Mapping[str, Agreement]
    alerts: Mapping[str, AlertState]
    changes: tuple[AlertRecord, ...]


class ReconcileService:
    def __init__(
        self,
        *,
        settings: Settings,
        store: ReconcileStore,
        ledger: Any,
        relay: OutboxRelay | None,
        encode_alert: Any,
        clock: Clock,
        policy: ThresholdPolicy,
    ) -> None:
        self._s = settings
        self._store = store
        self._ledger = ledger
        self._relay = relay
        self._encode = encode_alert
        self._clock = clock
        self._policy = policy
        self._config: DomainConfig = settings.domain()
        self._counts = RowCounts()
        self._alerts: dict[str, AlertState] = {}
        # Workers funded by two or more agreements: agreement id -> compact row, per worker.
        self._funding: dict[str, dict[str, WorkerRow]] = {}
        self._regions: dict[str, str] = {}  # agreement id -> region code, as last read
        self._leader = False
        self._last_full = float("-inf")
        self._last_eval_seconds = 0.0
        self.last: Evaluation | None = None  # swapped whole after each evaluation (the status page reads it)
        self.health = Health(stall_after_seconds=settings.stall_after_seconds, now=clock.monotonic)

    # --- lifecycle ------------------------------------------------------------------------------
    def run(self, *, stop: threading.Event, idle_exit: float | None = None) -> None:
        self._db("check the ledger schema", self._ledger.check_schema_current)
        idle_since = self._clock.monotonic()
        try:
            while not stop.is_set():
                worked = self.step()
                if worked:
                    idle_since = self._clock.monotonic()
                elif (
                    idle_exit is not None
                    and self._clock.monotonic() - idle_since >= idle_exit
                    and self._leader
                ):
                    log.info("caught up and idle: exiting", extra={"idle_seconds": idle_exit})
                    return
                if not worked:
                    stop.wait(self._s.reconcile_interval_seconds)
        finally:
            if self._leader:
                try:
                    self._store.release_lease()
                except Exception as exc:  # it expires on its own; don't hide what stopped the loop
                    log.warning("could not release the lease", extra={"error": type(exc).__name__})
            if self._relay is not None:
                self._relay.close()

    def step(self) -> bool:
        """One round; True when it folded batches or published alert changes."""
        now = self._clock.now_ms()
        if not self._db("renew the reconciler lease", lambda: self._store.acquire_lease(now)):
            if self._leader:
                log.warning("lost the reconciler lease; standing by")
            self._leader = False
            self.health.role = (True, "standby: another reconciler holds the lease")
            self.health.progressed()  # a standby has nothing to do: not stalled
            return False
        self.health.role = (True, "holds the reconciler lease")
        try:
            if not self._leader:
                self._become_leader()
            folded = self._drain()
            due = self._clock.monotonic() - self._last_full >= self._s.reconcile_full_pass_seconds
            changes = 0
            if folded or due:
                changes = self._evaluate(oldest_commit_ms=folded)
            return bool(folded or changes)
        except LeaseLost:
            self._leader = False
            log.warning("lost the reconciler lease mid-step; standing by")
            return False

    def _become_leader(self) -> None:
        assert self._relay is not None, "a read-only service (snapshot) never leads"
        started = self._clock.monotonic()
        self._relay_call("recover the alert outbox", self._relay.recover)
        self._relay_call("send pending alerts", self._relay.flush)
        n = self._load_state(self._clock.now_ms())
        self._leader = True
        self._last_full = float("-inf")
        seconds = round(self._clock.monotonic() - started, 3)
        log.info("reconciler took the lease", extra={"coverages": n, "seconds": seconds})

    def _load_state(self, now_ms: int) -> int:
        """Everything kept in memory, rebuilt from the ledger. Returns how many enrolled coverages."""
        self._alerts = self._db("load alert states", self._store.alert_states)
        agreements = self._db("read agreements", self._ledger.agreements)
        self._regions = {aid: a.region_code for aid, a in agreements.items()}
        reports = self._db("read branch totals", self._store.latest_branch_totals)
        # Compacted for as-of dates from today on, and from the recent branch reports' dates: one
        # grouping query; an agreement whose report is older is reloaded alone (``_refloor``).
        today = local_date(now_ms, self._s.utc_offset_minutes)
        floor = min([today, *(r.as_of for r in reports.values() if r.as_of >= today - RECENT_REPORTS)])
        n = self._db("load coverage counts", lambda: self._counts.load(floor, self._store.row_counts(floor)))
        self._refloor(floor, reports)
        self._funding = {}
        self._db("load multiply funded", lambda: self._put_funding(self._store.funding_rows(), replace=True))
        return n

    def _refloor(self, as_of: date, reports: Mapping[str, BranchTotals]) -> None:
        """Reload the counts that cannot answer exactly for ``as_of`` or their branch report's date."""
        if as_of < self._counts.floor:  # the clock went back: compact everything anew
            self._db("load coverage counts", lambda: self._counts.load(as_of, self._store.row_counts(as_of)))
        for agreement_id, report in sorted(reports.items()):
            if report.as_of < self._counts.floor_of(agreement_id):
                self._reload_counts(agreement_id, report.as_of)

    def _put_funding(self, rows: Iterable[tuple[str, str, WorkerRow]], *, replace: bool) -> None:
        fresh: dict[str, dict[str, WorkerRow]] = {}
        gc.disable()  # hundreds of thousands of small tuples: no collection can free any of them
        try:
            for worker_key, agreement_id, row in rows:
                fresh.setdefault(worker_key, {})[agreement_id] = row
        finally:
            gc.enable()
        if replace:
            self._funding = fresh
        else:
            self._funding.update(fresh)

    def rebuild(self) -> None:
        """Forget the folded state (under the lease) so that every ingest batch is folded again."""
        now = self._clock.now_ms()
        if not self._db("take the reconciler lease", lambda: self._store.acquire_lease(now)):
            raise LeaseLost("another reconciler holds the lease: stop it before rebuilding")
        self._db("forget folded state", self._store.reset_folds)
        log.info("folded state forgotten: every batch will be folded again")

    def snapshot(self, now_ms: int) -> tuple[Evaluation, int]:
        """Figures from the folded ledger state with the stored alerts, for `recon status` (writes
        nothing). Also returns how many ingest batches are not folded yet."""
        self._load_state(now_ms)
        evaluation = self.evaluate(now_ms)
        pending = len(self._db("read pending batches", lambda: self._store.pending_batches(limit=1_000_000)))
        return dataclasses.replace(evaluation, alerts=self._alerts, changes=()), pending

    # --- 1. fold ------------------------------------------------------------------------------------
    def _drain(self, budget_seconds: float | None = None) -> int:
        """Fold pending batches until none is left (or the time budget is spent), so one evaluation
        covers them all and the backlog cannot outgrow the loop. Returns the oldest commit folded.

        The budget, by default, is as long as the last evaluation took (within 0.25-2 s): under a
        steady stream folding and evaluating take turns in equal measure, so an event waits about one
        fold round and one evaluation for its alert, at any ledger size."""
        if budget_seconds is None:
            budget_seconds = min(MAX_DRAIN_SECONDS, max(MIN_DRAIN_SECONDS, self._last_eval_seconds))
        oldest = 0
        deadline = self._clock.monotonic() + budget_seconds
        while True:
            committed = self._fold()
            if committed:
                oldest = min(oldest, committed) if oldest else committed
            if not committed or self._clock.monotonic() >= deadline:
                return oldest

    def _fold(self) -> int:
        """Fold pending batches; returns the commit time of the oldest one folded (0 if none)."""
        batches = self._db("read pending batches", self._store.pending_batches)
        self.health.waiting = len(batches)
        if not batches:
            return 0
        events = self._db("read batch events", lambda: self._store.batch_events(batches))
        keys = {(e.worker_key, e.agreement_id) for e in events.enrolments}
        stored = self._db("read coverages", lambda: self._store.coverages_and_rows(keys))
        prior = {k: cov for k, (cov, _) in stored.items() if k in keys}
        merged = apply(prior, events.enrolments, utc_offset_minutes=self._s.utc_offset_minutes)
        # Every coverage of the touched workers, as it will be stored: who is funded twice.
        after: dict[str, dict[str, WorkerRow | None]] = {}
        for (worker_key, agreement_id), (_, row) in stored.items():
            after.setdefault(worker_key, {})[agreement_id] = row
        for (worker_key, agreement_id), cov in merged.items():
            after.setdefault(worker_key, {})[agreement_id] = to_row(cov)
        multi = {w: len(rows) for w, rows in after.items() if len(rows) > 1}
        claim_ids = {c.claim_id for c in events.claims}
        prior_claims = self._db("read claims", lambda: self._store.claim_states(claim_ids))
        claims = apply_claims(prior_claims, events.claims, utc_offset_minutes=self._s.utc_offset_minutes)
        newest_commit = max(at for _, at in batches)  # when the ledger took these events in
        branches = {e.branch_code for e in events.enrolments} | {e.branch_code for e in events.claims}
        activity = dict.fromkeys(branches | {e.branch_code for e in events.branch_totals}, newest_commit)
        now = self._clock.now_ms()
        self._db(
            "save folded state",
            lambda: self._store.save_fold(
                batch_ids=events.batch_ids,
                coverages=merged.values(),
                claims=claims.values(),
                branch_activity=activity,
                now_ms=now,
                multiply_funded=multi,
            ),
        )
        self._count(merged.values(), {k: row for k, (_, row) in stored.items()})
        for worker_key in multi:
            rows = after[worker_key]
            self._funding[worker_key] = {a: r for a, r in rows.items() if r is not None}
        for branch, ms in activity.items():
            metrics.BRANCH_LAST_EVENT.labels(branch).set(ms / 1000)
        return events.oldest_commit_ms

    def _count(
        self, merged: Collection[WorkerCoverage], old_rows: Mapping[tuple[str, str], WorkerRow | None]
    ) -> None:
        """Move the counts from each folded coverage's stored row to its new one."""
        off: set[str] = set()
        for cov in merged:
            region = self._regions.get(cov.agreement_id)
            if not self._counts.move(cov.agreement_id, old_rows.get(cov.key), to_row(cov), region):
                off.add(cov.agreement_id)
        for agreement_id in sorted(off):  # cannot happen while only the leader folds; heal, loudly
            log.warning(
                "coverage counts disagreed with the ledger: reloading", extra={"agreement": agreement_id}
            )
            self._reload_counts(agreement_id)

    def _reload_counts(self, agreement_id: str, floor: date | None = None) -> None:
        at = self._counts.floor_of(agreement_id) if floor is None else floor
        region = self._regions.get(agreement_id)
        self._db(
            "reload coverage counts",
            lambda: self._counts.replace(agreement_id, region, at, self._store.row_counts(at, agreement_id)),
        )

    # --- 2. evaluate, 3. alerts ------------------------------------------------------------------------
    def _evaluate(self, *, oldest_commit_ms: int = 0) -> int:
        started = self._clock.monotonic()
        now = self._clock.now_ms()
        evaluation = self.evaluate(now)
        changed = [s for fp, s in evaluation.alerts.items() if self._alerts.get(fp) != s]
        if changed:
            outbox = [self._alert_message(r) for r in evaluation.changes]
            self._db("save alert states", lambda: self._store.save_alerts(changed, outbox, now))
            self._alerts = dict(evaluation.alerts)
            if outbox and self._relay is not None:
                self._relay_call("publish alerts", self._relay.flush)
        self.last = evaluation
        self._last_full = self._clock.monotonic()
        self._last_eval_seconds = self._clock.monotonic() - started
        self._record(evaluation, oldest_commit_ms, self._last_eval_seconds)
        return len(evaluation.changes)

    def evaluate(self, now_ms: int) -> Evaluation:
        """Figures, signals and the next alert states for ``now_ms`` (reads the ledger, writes nothing)."""
        as_of = local_date(now_ms, self._s.utc_offset_minutes)
        agreements = self._db("read agreements", self._ledger.agreements)
        self._regions = {aid: a.region_code for aid, a in agreements.items()}
        claims = self._db("read claims", self._store.claims)
        reports = self._db("read branch totals", self._store.latest_branch_totals)
        self._refloor(as_of, reports)
        for agreement_id in self._counts.stale(agreements):
            self._reload_counts(agreement_id)
        figures = compute_figures(
            agreements, self._counts.rows, as_of, self._config, claims=claims, branch_totals=reports
        )
        funding = (
            (worker_key, agreement_id, row)
            for worker_key, rows in self._funding.items()
            for agreement_id, row in rows.items()
        )
        claim_workers = self._db(
            "read claim coverages", lambda: self._store.coverages_of_workers({c.worker_key for c in claims})
        )
        by_worker: dict[str, list[WorkerCoverage]] = {}
        for cov in claim_workers:
            by_worker.setdefault(cov.worker_key, []).append(cov)
        backlog = self._db("read coverage backlog", lambda: self._store.coverage_backlog(agreements))
        inputs = RuleInputs(
            now_ms=now_ms,
            figures=figures,
            agreements=agreements,
            funding_windows=funding_windows_from_rows(funding, as_of, self._config),
            claims=claims,
            claim_coverages=by_worker,
            branch_last_event_ms=self._db("read branch activity", self._store.branch_activity),
            orphans=backlog,
        )
        signals = evaluate(inputs, self._config, self._policy, utc_offset_minutes=self._s.utc_offset_minutes)
        states, changes = evolve(self._alerts, signals, now_ms, self._policy)
        return Evaluation(figures=figures, agreements=agreements, alerts=states, changes=tuple(changes))

    def _alert_message(self, record: AlertRecord) -> OutboxMessage:
        return OutboxMessage(
            kind=ALERT,
            topic=self._s.topic_alerts,
            key=record.fingerprint.encode(),
            value=self._encode(record.to_avro()),
            headers=(("rule", str(record.rule).encode()), ("state", str(record.state).encode())),
            source=None,
        )

    def _record(self, ev: Evaluation, oldest_commit_ms: int, seconds: float) -> None:
        metrics.RECONCILE_DURATION.observe(seconds)
        if oldest_commit_ms:
            metrics.EVENT_TO_ALERT.observe(max(0.0, (self._clock.now_ms() - oldest_commit_ms) / 1000))
        for aid, f in ev.figures.items():
            metrics.AGREEMENT_QUOTA.labels(aid).set(f.quota)
            metrics.AGREEMENT_ACTIVE.labels(aid).set(f.active)
            metrics.AGREEMENT_AT_RISK.labels(aid).set(f.at_risk)
            metrics.AGREEMENT_PLANNED.labels(aid).set(f.planned)
            metrics.AGREEMENT_UTILISATION.labels(aid).set(f.utilisation or 0.0)
            metrics.AGREEMENT_BUDGET.labels(aid).set(f.budget_rupiah)
            metrics.AGREEMENT_COMMITTED.labels(aid).set(f.committed_rupiah)
            metrics.AGREEMENT_ARREARS.labels(aid).set(f.arrears_rupiah)
        firing: dict[tuple[str, str], int] = {}
        for s in ev.alerts.values():
            if s.status is AlertStatus.FIRING:
                firing[(str(s.rule), str(s.severity))] = firing.get((str(s.rule), str(s.severity)), 0) + 1
        metrics.ALERTS_FIRING.clear()
        for (rule, severity), n in firing.items():
            metrics.ALERTS_FIRING.labels(rule, severity).set(n)
        for change in ev.changes:
            metrics.ALERT_CHANGES.labels(str(change.rule), str(change.state)).inc()
        metrics.LAST_PROGRESS.labels("reconcile").set(self._clock.now_ms() / 1000)
        self.health.progressed()
        if ev.changes:
            log.info(
                "alerts changed",
                extra={
                    "changes": [f"{c.rule}:{c.state}:{c.agreement_id or '-'}" for c in ev.changes],
                    "seconds": round(seconds, 3),
                },
            )

    def _db(self, what: str, fn: Callable[[], T]) -> T:
        return self.health.call("database", what, fn, budget_seconds=self._s.retry_budget_seconds)

    def _relay_call(self, what: str, fn: Callable[[], T]) -> T:
        return self.health.call("broker", what, fn, budget_seconds=self._s.retry_budget_seconds)
