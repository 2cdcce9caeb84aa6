"""The reconciler's adapter to the ledger: folded coverage, claims, alert states, the lease.

Thin by design: rows in, domain values out, and each write in one transaction that first renews
the reconciler's lease, so a reconciler that lost its lease (another took over) cannot write.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, RowMapping, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from recon.domain.events import BranchTotals, ClaimEvent, EnrolmentEvent, Programme
from recon.errors import ReconError
from recon.ledger import (
    BEGIN_IMMEDIATE,
    RECONCILE_LEASE,
    OutboxMessage,
    branch_totals_from_row,
    claim_from_row,
    enrolment_from_row,
    outbox_rows,
    tables,
    take_lease,
)
from reconcile.domain import AlertState, ClaimState, OrphanBacklog, WorkerCoverage, WorkerRow, to_row

T = TypeVar("T")
LEASE = RECONCILE_LEASE
_CHUNK = 500  # keys per IN (...) query: well under SQLite's parameter limit


class LeaseLost(ReconError):
    """Another reconciler holds the lease now; this one must stop writing and reload."""


@dataclasses.dataclass(frozen=True, slots=True)
class BatchEvents:
    batch_ids: tuple[int, ...]
    oldest_commit_ms: int
    enrolments: list[EnrolmentEvent]
    claims: list[ClaimEvent]
    branch_totals: list[BranchTotals]


class ReconcileStore:
    def __init__(self, engine: Engine, *, holder: str, lease_ttl_ms: int = 15_000) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_IMMEDIATE: True})
        self._postgres = engine.dialect.name == "postgresql"
        self.holder = holder
        self._ttl = lease_ttl_ms

    # --- the lease ---------------------------------------------------------------------------
    def acquire_lease(self, now_ms: int) -> bool:
        """Take or renew the 'reconcile' lease; False while another live reconciler holds it."""
        with self._writer.begin() as conn:
            return self._renew(conn, now_ms)

    def release_lease(self) -> None:
        """Give the lease up at a clean exit, so a successor need not wait for it to expire."""
        t = tables.leases
        with self._writer.begin() as conn:
            conn.execute(
                update(t).where(t.c.name == LEASE, t.c.holder == self.holder).values(expires_at_ms=0)
            )

    def _renew(self, conn: Connection, now_ms: int) -> bool:
        return take_lease(conn, name=LEASE, holder=self.holder, now_ms=now_ms, ttl_ms=self._ttl)

    def _fenced(self, conn: Connection, now_ms: int) -> None:
        if not self._renew(conn, now_ms):
            raise LeaseLost("another reconciler holds the lease")

    # --- batches to fold ---------------------------------------------------------------------
    def pending_batches(self, limit: int = 100) -> list[tuple[int, int]]:
        t = tables.ingest_batches
        query = (
            select(t.c.id, t.c.committed_at_ms)
            .where(t.c.folded_at_ms.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(int(i), int(at)) for i, at in conn.execute(query)]

    def batch_events(self, batches: Sequence[tuple[int, int]]) -> BatchEvents:
        ids = [i for i, _ in batches]
        with self._engine.connect() as conn:
            return BatchEvents(
                batch_ids=tuple(ids),
                oldest_commit_ms=min(at for _, at in batches),
                enrolments=[enrolment_from_row(r) for r in _by_batch(conn, tables.enrolment_events, ids)],
                claims=[claim_from_row(r) for r in _by_batch(conn, tables.claim_events, ids)],
                branch_totals=[branch_totals_from_row(r) for r in _by_batch(conn, tables.branch_totals, ids)],
            )

    # --- coverage ------------------------------------------------------------------------------
    def coverages(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], WorkerCoverage]:
        wanted = set(keys)
        return {k: cov for k, (cov, _) in self.coverages_and_rows(wanted).items() if k in wanted}

    def coverages_and_rows(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[WorkerCoverage, WorkerRow | None]]:
        """Every stored coverage of the workers in ``keys`` (under any agreement, not only the
        keys'), each with its compact row as stored (None when the row columns are NULL: not
        enrolled, or written before migration 0004)."""
        t = tables.worker_coverage
        out: dict[tuple[str, str], tuple[WorkerCoverage, WorkerRow | None]] = {}
        with self._engine.connect() as conn:
            # By worker key alone, the primary key's leading column: SQLite does not use the index
            # for a (worker_key, agreement_id) IN (...) of row values, and would scan every coverage.
            for chunk in _chunks(sorted({w for w, _ in keys})):
                for row in conn.execute(select(t).where(t.c.worker_key.in_(chunk))).mappings():
                    cov = coverage_from_row(row)
                    out[cov.key] = (cov, _stored_row(row))
        return out

    def iter_rows(self) -> Iterator[tuple[str, str, WorkerRow]]:
        """(agreement id, worker key, row) of every enrolled coverage, straight from the driver."""
        with self._engine.connect() as conn:
            for chunk in _fetch(conn.execution_options(stream_results=True).exec_driver_sql(_ALL_ROWS)):
                for aid, key, start, last, term, start_m, last_m, mask, region in chunk:
                    yield aid, key, (start, last, term, start_m, last_m, int(mask, 16), region)

    def row_counts(
        self, floor: date, agreement_id: str | None = None
    ) -> Iterator[tuple[str, str | None, WorkerRow, int]]:
        """The multiset of compacted rows (``reconcile.domain.row_counts.compact_row``) of every
        enrolled coverage (of one agreement when given): (agreement id, the region code the rows
        were compacted for (None: agreement unknown), row, how many workers). The database groups;
        what comes back grows with the distinct rows, not the workers."""
        f = floor.toordinal()
        params: dict[str, Any] = {"f": f, "below": f - 1}
        query = _ROW_COUNTS
        if agreement_id is not None:
            query, params["aid"] = _ROW_COUNTS_OF, agreement_id
        with self._engine.connect() as conn:
            if self._postgres:
                # Hash the groups in memory rather than sort every row on disk, and let the planner
                # scan in parallel (it would not for a server-side cursor: the result is small anyway).
                conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
            for chunk in _fetch(conn.execute(query, params)):
                for aid, region, start, last, term, start_m, last_m, mask, inside, n in chunk:
                    shown = region if inside == 1 and region is not None else ""
                    yield aid, region, (start, last, term, start_m, last_m, int(mask, 16), shown), int(n)

    def funding_rows(
        self, worker_keys: Collection[str] | None = None
    ) -> Iterator[tuple[str, str, WorkerRow]]:
        """(worker key, agreement id, row) of the enrolled coverages of ``worker_keys``; when None,
        of every worker funded by two or more agreements (table multiply_funded, kept by save_fold)."""
        with self._engine.connect() as conn:
            if worker_keys is None:
                chunks = _fetch(conn.execute(_MULTI_ROWS))
            else:
                chunks = (conn.execute(_ROWS_OF, {"keys": c}).all() for c in _chunks(list(worker_keys)))
            for chunk in chunks:
                for key, aid, start, last, term, start_m, last_m, mask, region in chunk:
                    yield key, aid, (start, last, term, start_m, last_m, int(mask, 16), region)

    def coverages_of_workers(self, worker_keys: Collection[str]) -> list[WorkerCoverage]:
        t = tables.worker_coverage
        out: list[WorkerCoverage] = []
        with self._engine.connect() as conn:
            for chunk in _chunks(list(worker_keys)):
                out.extend(
                    coverage_from_row(r)
                    for r in conn.execute(select(t).where(t.c.worker_key.in_(chunk))).mappings()
                )
        return out

    def coverage_backlog(self, known: Collection[str]) -> dict[str, OrphanBacklog]:
        """Per agreement id not in ``known``, how many coverages reference it and since when."""
        t = tables.worker_coverage
        query = select(func.count(), func.min(t.c.first_seen_ms)).where(t.c.agreement_id == bindparam("aid"))
        wanted = set(known)
        out: dict[str, OrphanBacklog] = {}
        with self._engine.connect() as conn:
            # The distinct agreement ids by a skip scan of their index (one probe per id), then a
            # count for the unknown ones: every evaluation runs this; a scan would read every coverage.
            for (aid,) in conn.execute(_AGREEMENT_IDS):
                if aid is not None and aid not in wanted:
                    n, first = conn.execute(query, {"aid": aid}).one()
                    out[aid] = OrphanBacklog(count=n, first_seen_ms=int(first))
        return out

    # --- the rest of what rules read ------------------------------------------------------------
    def claims(self) -> list[ClaimState]:
        with self._engine.connect() as conn:
            return [_from_json(ClaimState, r) for (r,) in conn.execute(select(tables.claim_states.c.state))]

    def claim_states(self, claim_ids: Collection[str]) -> dict[str, ClaimState]:
        t = tables.claim_states
        out: dict[str, ClaimState] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(list(claim_ids)):
                for (text,) in conn.execute(select(t.c.state).where(t.c.claim_id.in_(chunk))):
                    state = _from_json(ClaimState, text)
                    out[state.claim_id] = state
        return out

    def latest_branch_totals(self) -> dict[str, BranchTotals]:
        """The last report per agreement (latest as_of, then latest occurred_at)."""
        t = tables.branch_totals
        query = select(t).order_by(t.c.agreement_id, t.c.as_of, t.c.occurred_at_ms, t.c.event_id)
        with self._engine.connect() as conn:
            return {r["agreement_id"]: branch_totals_from_row(r) for r in conn.execute(query).mappings()}

    def branch_activity(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            return {b: int(ms) for b, ms in conn.execute(select(tables.branch_activity))}

    def alert_states(self) -> dict[str, AlertState]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(tables.alert_states.c.state))
            states = [_from_json(AlertState, text) for (text,) in rows]
        return {s.fingerprint: s for s in states}

    # --- writes ----------------------------------------------------------------------------------
    def save_fold(
        self,
        *,
        batch_ids: Sequence[int],
        coverages: Iterable[WorkerCoverage],
        claims: Iterable[ClaimState],
        branch_activity: Mapping[str, int],
        now_ms: int,
        multiply_funded: Mapping[str, int] | None = None,
    ) -> None:
        """Store merged states and mark the batches folded: one transaction, lease-fenced.

        ``multiply_funded``: of the coverages' workers, those with two or more agreements and how
        many, when the caller counted them (the fold did, from the coverages it read); else counted here.
        """
        rows = [coverage_to_row(c, now_ms) for c in coverages]
        with self._writer.begin() as conn:
            self._fenced(conn, now_ms)
            self._upsert(
                conn, tables.worker_coverage, rows, ["worker_key", "agreement_id"], keep=("first_seen_ms",)
            )
            if multiply_funded is None:
                self._count_funders(conn, {r["worker_key"] for r in rows})
            else:
                funded = [{"worker_key": w, "agreements": n} for w, n in sorted(multiply_funded.items())]
                self._upsert(conn, tables.multiply_funded, funded, ["worker_key"])
            self._upsert(conn, tables.claim_states, [_claim_row(c, now_ms) for c in claims], ["claim_id"])
            activity = [{"branch_code": b, "last_event_ms": ms} for b, ms in branch_activity.items()]
            self._upsert(conn, tables.branch_activity, activity, ["branch_code"], newer="last_event_ms")
            t = tables.ingest_batches
            for chunk in _chunks(list(batch_ids)):
                conn.execute(update(t).where(t.c.id.in_(chunk)).values(folded_at_ms=now_ms))

    def save_alerts(self, states: Sequence[AlertState], outbox: Sequence[OutboxMessage], now_ms: int) -> None:
        """Store changed alert states and their outbox messages: one transaction, lease-fenced."""
        with self._writer.begin() as conn:
            self._fenced(conn, now_ms)
            rows = [
                {
                    "fingerprint": s.fingerprint,
                    "rule": str(s.rule),
                    "status": str(s.status),
                    "agreement_id": s.agreement_id,
                    "state": _to_json(s),
                    "updated_at_ms": now_ms,
                }
                for s in states
            ]
            self._upsert(conn, tables.alert_states, rows, ["fingerprint"])
            if outbox:
                conn.execute(insert(tables.outbox), outbox_rows(outbox, now_ms))

    def reset_folds(self) -> None:
        """Forget all folded state so the next run folds every batch again (``recon reconcile --rebuild``)."""
        with self._writer.begin() as conn:
            for t in (
                tables.worker_coverage,
                tables.multiply_funded,
                tables.claim_states,
                tables.branch_activity,
            ):
                conn.execute(delete(t))
            conn.execute(update(tables.ingest_batches).values(folded_at_ms=None))

    def _count_funders(self, conn: Connection, worker_keys: Collection[str]) -> None:
        """Keep multiply_funded current for ``worker_keys`` (coverages are only ever added)."""
        wc, mf = tables.worker_coverage, tables.multiply_funded
        for chunk in _chunks(sorted(worker_keys)):
            counted = (
                select(wc.c.worker_key, func.count())
                .where(wc.c.worker_key.in_(chunk))
                .group_by(wc.c.worker_key)
                .having(func.count() > 1)
            )
            stmt = self._insert(mf).from_select(["worker_key", "agreements"], counted)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["worker_key"], set_={"agreements": stmt.excluded.agreements}
                )
            )

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._postgres else sqlite.insert)(table)

    def _upsert(
        self,
        conn: Connection,
        table: Any,
        rows: list[dict[str, Any]],
        keys: list[str],
        *,
        keep: Sequence[str] = (),
        newer: str | None = None,
    ) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        columns = [c for c in rows[0] if c not in keys and c not in keep]
        where = None if newer is None else table.c[newer] < stmt.excluded[newer]
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=keys, set_={c: stmt.excluded[c] for c in columns}, where=where
            ),
            rows,
        )


# --- rows <-> domain values -----------------------------------------------------------------------
def coverage_to_row(c: WorkerCoverage, now_ms: int) -> dict[str, Any]:
    rank, at, event_id = c.facts_from
    row = to_row(c)
    start, last, term, start_m, last_m, mask = (None,) * 6 if row is None else row[:6]
    return {
        "row_start": start,
        "row_last": last,
        "row_term": term,
        "row_start_m": start_m,
        "row_last_m": last_m,
        "row_paid_mask": None if mask is None else format(mask, "x"),
        "worker_key": c.worker_key,
        "agreement_id": c.agreement_id,
        "nik_region": c.nik_region,
        "enrolled": int(c.enrolled),
        "coverage_start": c.coverage_start,
        "coverage_end": c.coverage_end,
        "programmes": ",".join(c.programmes),
        "declared_income": c.declared_income,
        "terminated_on": c.terminated_on,
        "paid_months": ",".join(map(str, sorted(c.paid_months))),
        "facts_rank": rank,
        "facts_at_ms": at,
        "facts_event_id": event_id,
        "first_seen_ms": now_ms,
        "updated_at_ms": now_ms,
    }


def coverage_from_row(row: RowMapping) -> WorkerCoverage:
    paid = row["paid_months"]
    return WorkerCoverage(
        worker_key=row["worker_key"],
        agreement_id=row["agreement_id"],
        nik_region=row["nik_region"],
        enrolled=bool(row["enrolled"]),
        coverage_start=row["coverage_start"],
        coverage_end=row["coverage_end"],
        programmes=tuple(Programme(p) for p in row["programmes"].split(",") if p),
        declared_income=row["declared_income"],
        terminated_on=row["terminated_on"],
        paid_months=frozenset(int(m) for m in paid.split(",")) if paid else frozenset(),
        facts_from=(row["facts_rank"], row["facts_at_ms"], row["facts_event_id"]),
    )


def _claim_row(c: ClaimState, now_ms: int) -> dict[str, Any]:
    return {
        "claim_id": c.claim_id,
        "worker_key": c.worker_key,
        "agreement_id": c.agreement_id,
        "state": _to_json(c),
        "updated_at_ms": now_ms,
    }


def _to_json(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, Enum):
            return v.value
        if isinstance(v, tuple | list | frozenset):
            return [plain(x) for x in v]
        return v

    return json.dumps(
        {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}, sort_keys=True
    )


def _from_json(cls: type[T], text: str) -> T:
    data = json.loads(text)
    hints = _hints(typing.cast(Any, cls))
    return cls(**{name: _convert(hints[name], data[name]) for name in data})


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert(next(a for a in typing.get_args(hint) if a is not type(None)), value)
    if origin is tuple:
        return tuple(value)
    if hint is date:
        return date.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


# The compact row's columns (WorkerRow's order), then the statements that read only them.
_ALL_ROWS = (
    "SELECT agreement_id, worker_key, row_start, row_last, row_term, row_start_m, row_last_m, "
    "row_paid_mask, nik_region FROM worker_coverage WHERE row_start IS NOT NULL"
)
_COUNTS_SELECT = (
    "SELECT w.agreement_id, a.region_code, "
    "CASE WHEN w.row_start < :f THEN :below ELSE w.row_start END, "
    "CASE WHEN w.row_last < :f THEN :below ELSE w.row_last END, "
    "CASE WHEN w.row_term < :f THEN :below ELSE w.row_term END, "
    "w.row_start_m, w.row_last_m, w.row_paid_mask, "
    "CASE WHEN substr(w.nik_region, 1, length(a.region_code)) = a.region_code THEN 1 ELSE 0 END, count(*) "
    "FROM worker_coverage w LEFT JOIN agreements a ON a.agreement_id = w.agreement_id "
    "WHERE w.row_start IS NOT NULL "
)
_COUNTS_GROUP = "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
_ROW_COUNTS = text(_COUNTS_SELECT + _COUNTS_GROUP)
_ROW_COUNTS_OF = text(_COUNTS_SELECT + "AND w.agreement_id = :aid " + _COUNTS_GROUP)
_FUNDING_SELECT = (
    "SELECT w.worker_key, w.agreement_id, w.row_start, w.row_last, w.row_term, w.row_start_m, "
    "w.row_last_m, w.row_paid_mask, w.nik_region FROM worker_coverage w "
)
_MULTI_ROWS = text(
    _FUNDING_SELECT + "JOIN multiply_funded m ON m.worker_key = w.worker_key WHERE w.row_start IS NOT NULL"
)
_AGREEMENT_IDS = text(
    "WITH RECURSIVE ids(a) AS (SELECT min(agreement_id) FROM worker_coverage UNION ALL "
    "SELECT (SELECT min(agreement_id) FROM worker_coverage WHERE agreement_id > ids.a) FROM ids "
    "WHERE ids.a IS NOT NULL) SELECT a FROM ids"
)
_ROWS_OF = text(_FUNDING_SELECT + "WHERE w.row_start IS NOT NULL AND w.worker_key IN :keys").bindparams(
    bindparam("keys", expanding=True)
)


def _stored_row(row: RowMapping) -> WorkerRow | None:
    if row["row_start"] is None:
        return None
    return (
        row["row_start"],
        row["row_last"],
        row["row_term"],
        row["row_start_m"],
        row["row_last_m"],
        int(row["row_paid_mask"], 16),
        row["nik_region"],
    )


def _fetch(cursor: Any) -> Iterator[Sequence[Any]]:
    while chunk := cursor.fetchmany(50_000):
        yield chunk


def _by_batch(conn: Connection, table: Any, batch_ids: list[int]) -> list[RowMapping]:
    rows: list[RowMapping] = []
    for chunk in _chunks(batch_ids):
        rows.extend(conn.execute(select(table).where(table.c.batch_id.in_(chunk))).mappings())
    return rows


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


__all__ = ["BatchEvents", "LeaseLost", "ReconcileStore"]
