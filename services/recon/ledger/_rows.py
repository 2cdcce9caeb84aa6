"""Events to rows and back: the one place that knows how each dataclass maps onto its table.

Each codec lists its columns and builds a row tuple in that order, so the same mapping serves
SQLAlchemy executemany (as dicts) and PostgreSQL COPY (as tuples).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import RowMapping, Table

from recon.domain.events import (
    Agreement,
    BranchTotals,
    BudgetSource,
    ClaimEvent,
    ClaimRow,
    ClaimType,
    EnrolmentEvent,
    EnrolmentRow,
    EnrolmentType,
    FunderLevel,
    Lineage,
    Programme,
    RampStep,
    claim_row,
    enrolment_row,
)
from recon.ledger import tables

E = TypeVar("E")
Row = tuple[Any, ...]

_LINEAGE_COLUMNS = (
    "src_topic",
    "src_partition",
    "src_offset",
    "schema_fingerprint",
    "schema_version",
    "ingested_at_ms",
)


@dataclass(frozen=True, slots=True)
class RowCodec(Generic[E]):
    """How one kind of event becomes a row of ``table``: ``to_row`` returns values in ``columns`` order.

    ``row_type``: the domain's row form of the event (``EnrolmentRow``, ``ClaimRow``), which the
    ingest hot path builds directly; such an item is already the row minus ``ingested_at_ms`` (and
    ``batch_id``), so ``rows`` only appends those. A plain tuple is taken as such a row too (the
    ingest's writer process receives them so: ingest.writer_process).
    """

    table: Table
    columns: tuple[str, ...]
    to_row: Callable[[E, int], Row]
    batched: bool = False  # rows end with the ingest batch id (``batch_id`` column)
    row_type: type[tuple[Any, ...]] | None = None

    def __post_init__(self) -> None:
        if self.row_type is not None and (*self.row_type._fields, "ingested_at_ms") != self.columns:  # type: ignore[attr-defined]
            raise TypeError(f"{self.row_type.__name__} does not list the columns of {self.table.name}")

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (*self.columns, "batch_id") if self.batched else self.columns

    def rows(
        self, events: Iterable[E | tuple[Any, ...]], ingested_at_ms: int, batch_id: int | None = None
    ) -> list[Row]:
        to_row, row_type = self.to_row, self.row_type
        tail = (ingested_at_ms, batch_id) if self.batched else (ingested_at_ms,)
        out: list[Row] = []
        append = out.append
        for event in events:
            if type(event) is row_type or type(event) is tuple:  # the row already (tuple: as pickled)
                append(event + tail)
            elif self.batched:
                append((*to_row(event, ingested_at_ms), batch_id))  # type: ignore[arg-type]
            else:
                append(to_row(event, ingested_at_ms))  # type: ignore[arg-type]
        return out

    def dicts(
        self, events: Iterable[E], ingested_at_ms: int, batch_id: int | None = None
    ) -> list[dict[str, Any]]:
        columns = self.all_columns
        return [dict(zip(columns, row, strict=True)) for row in self.rows(events, ingested_at_ms, batch_id)]


def _enrolment_row(e: EnrolmentEvent, now: int) -> Row:
    return (*enrolment_row(e), now)


ENROLMENT: RowCodec[EnrolmentEvent] = RowCodec(
    tables.enrolment_events,
    (
        "event_id",
        "event_type",
        "occurred_at_ms",
        "branch_code",
        "agreement_id",
        "worker_key",
        "nik_region",
        "programmes",
        "declared_income",
        "coverage_start",
        "coverage_end",
        "paid_months",
        "amount",
        "source_system",
        *_LINEAGE_COLUMNS,
    ),
    _enrolment_row,
    batched=True,
    row_type=EnrolmentRow,
)


def _claim_row(e: ClaimEvent, now: int) -> Row:
    return (*claim_row(e), now)


CLAIM: RowCodec[ClaimEvent] = RowCodec(
    tables.claim_events,
    (
        "event_id",
        "event_type",
        "occurred_at_ms",
        "branch_code",
        "claim_id",
        "worker_key",
        "nik_region",
        "agreement_id",
        "programme",
        "incident_date",
        "amount_claimed",
        "amount_paid",
        *_LINEAGE_COLUMNS,
    ),
    _claim_row,
    batched=True,
    row_type=ClaimRow,
)


def _branch_totals_row(e: BranchTotals, now: int) -> Row:
    lin = e.lineage
    return (
        e.event_id,
        e.occurred_at_ms,
        e.branch_code,
        e.agreement_id,
        e.as_of,
        e.active_workers,
        e.contributions_paid_rupiah,
        lin.topic,
        lin.partition,
        lin.offset,
        lin.fingerprint,
        lin.schema_version,
        now,
    )


BRANCH_TOTALS: RowCodec[BranchTotals] = RowCodec(
    tables.branch_totals,
    (
        "event_id",
        "occurred_at_ms",
        "branch_code",
        "agreement_id",
        "as_of",
        "active_workers",
        "contributions_paid_rupiah",
        *_LINEAGE_COLUMNS,
    ),
    _branch_totals_row,
    batched=True,
)


def _agreement_row(a: Agreement, now: int) -> Row:
    lin = a.lineage
    ramp = json.dumps(
        [{"month": step.month, "target_workers": step.target_workers} for step in a.ramp],
        separators=(",", ":"),
    )
    return (
        a.agreement_id,
        a.version,
        a.funder_name,
        a.funder_level.value,
        a.region_code,
        a.branch_code,
        a.budget_source.value,
        ",".join(a.programmes),
        a.quota_workers,
        a.budget_rupiah,
        a.monthly_premium_rupiah,
        a.period_start,
        a.period_end,
        ramp,
        a.target_population,
        None if lin is None else lin.topic,
        None if lin is None else lin.partition,
        None if lin is None else lin.offset,
        None if lin is None else lin.fingerprint,
        None if lin is None else lin.schema_version,
        now,
    )


AGREEMENT: RowCodec[Agreement] = RowCodec(
    tables.agreements,
    (
        "agreement_id",
        "version",
        "funder_name",
        "funder_level",
        "region_code",
        "branch_code",
        "budget_source",
        "programmes",
        "quota_workers",
        "budget_rupiah",
        "monthly_premium_rupiah",
        "period_start",
        "period_end",
        "ramp",
        "target_population",
        *_LINEAGE_COLUMNS,
    ),
    _agreement_row,
)


def agreement_from_row(row: RowMapping) -> Agreement:
    """The stored agreement as the domain value (the inverse of the AGREEMENT codec)."""
    lineage = None
    if row["src_topic"] is not None:
        lineage = Lineage(
            topic=row["src_topic"],
            partition=row["src_partition"],
            offset=row["src_offset"],
            fingerprint=row["schema_fingerprint"],
            schema_version=row["schema_version"],
        )
    return Agreement(
        agreement_id=row["agreement_id"],
        version=row["version"],
        funder_name=row["funder_name"],
        funder_level=FunderLevel(row["funder_level"]),
        region_code=row["region_code"],
        branch_code=row["branch_code"],
        budget_source=BudgetSource(row["budget_source"]),
        programmes=tuple(Programme(p) for p in row["programmes"].split(",") if p),
        quota_workers=row["quota_workers"],
        budget_rupiah=row["budget_rupiah"],
        monthly_premium_rupiah=row["monthly_premium_rupiah"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        ramp=tuple(RampStep(step["month"], step["target_workers"]) for step in json.loads(row["ramp"])),
        target_population=row["target_population"],
        lineage=lineage,
    )


def _lineage_from_row(row: RowMapping) -> Lineage:
    return Lineage(
        topic=row["src_topic"],
        partition=row["src_partition"],
        offset=row["src_offset"],
        fingerprint=row["schema_fingerprint"],
        schema_version=row["schema_version"],
    )


def _months(text: str) -> tuple[str, ...]:
    return tuple(m for m in text.split(",") if m)


def enrolment_from_row(row: RowMapping) -> EnrolmentEvent:
    """The stored enrolment event as the domain value (the inverse of the ENROLMENT codec)."""
    return EnrolmentEvent(
        event_id=row["event_id"],
        event_type=EnrolmentType(row["event_type"]),
        occurred_at_ms=row["occurred_at_ms"],
        branch_code=row["branch_code"],
        agreement_id=row["agreement_id"],
        worker_key=row["worker_key"],
        nik_region=row["nik_region"],
        programmes=tuple(Programme(p) for p in _months(row["programmes"])),
        declared_income=row["declared_income"],
        coverage_start=row["coverage_start"],
        coverage_end=row["coverage_end"],
        paid_months=_months(row["paid_months"]),
        amount=row["amount"],
        termination_reason=None,  # not stored: free text can name a person
        source_system=row["source_system"],
        lineage=_lineage_from_row(row),
    )


def claim_from_row(row: RowMapping) -> ClaimEvent:
    """The stored claim event as the domain value (the inverse of the CLAIM codec)."""
    return ClaimEvent(
        event_id=row["event_id"],
        event_type=ClaimType(row["event_type"]),
        occurred_at_ms=row["occurred_at_ms"],
        branch_code=row["branch_code"],
        claim_id=row["claim_id"],
        worker_key=row["worker_key"],
        nik_region=row["nik_region"],
        agreement_id=row["agreement_id"],
        programme=Programme(row["programme"]),
        incident_date=row["incident_date"],
        amount_claimed=row["amount_claimed"],
        amount_paid=row["amount_paid"],
        lineage=_lineage_from_row(row),
    )


def branch_totals_from_row(row: RowMapping) -> BranchTotals:
    """The stored branch report as the domain value (the inverse of the BRANCH_TOTALS codec)."""
    return BranchTotals(
        event_id=row["event_id"],
        occurred_at_ms=row["occurred_at_ms"],
        branch_code=row["branch_code"],
        agreement_id=row["agreement_id"],
        as_of=row["as_of"],
        active_workers=row["active_workers"],
        contributions_paid_rupiah=row["contributions_paid_rupiah"],
        lineage=_lineage_from_row(row),
    )


def headers_to_json(headers: Sequence[tuple[str, bytes]]) -> str:
    """Kafka headers as JSON people can read: UTF-8 values as text, anything else as base64."""
    out: list[dict[str, str]] = []
    for name, value in headers:
        try:
            out.append({"name": name, "value": value.decode("utf-8")})
        except UnicodeDecodeError:
            out.append({"name": name, "base64": base64.b64encode(value).decode("ascii")})
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def headers_from_json(text: str) -> tuple[tuple[str, bytes], ...]:
    """The inverse of :func:`headers_to_json`, byte for byte."""
    out: list[tuple[str, bytes]] = []
    for item in json.loads(text):
        if "value" in item:
            out.append((item["name"], item["value"].encode("utf-8")))
        else:
            try:
                out.append((item["name"], base64.b64decode(item["base64"], validate=True)))
            except binascii.Error as exc:
                raise ValueError(f"outbox header {item['name']!r} holds invalid base64") from exc
    return tuple(out)
