"""Domain validation: a decoded Avro record becomes a validated event, or a Rejection saying why.

Input is what our decoder returns: a dict with enums as their symbol (str), ``date`` fields as
``datetime.date``, ``timestamp-millis`` as int milliseconds, and null as None. Every rule has a stable
reason code (``REASON_CODES``, a bounded metrics label set) and a sentence naming the field and the
rule, never a field's value: values may be personal data. docs/validation.md lists every code.

Usage:
    ctx = ValidationContext(config=DomainConfig(), now_ms=clock_ms, nik_key=key, agreements=known)
    result = validate("enrolment", record, lineage, ctx)
    if isinstance(result, Rejection): ...dead-letter it with result.code and result.reason...

A NIK whose region lies outside the funder's region is not rejected here (reconciliation warns about
it later), and neither is an event for an agreement the ledger does not know yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from recon.domain import _validation_checks as check
from recon.domain._validation_checks import (
    AMOUNT_NEGATIVE,
    AMOUNT_NOT_POSITIVE,
    AMOUNT_PAID_INCONSISTENT,
    DATE_ORDER,
    FUNDER_NAME_INVALID,
    INCIDENT_AFTER_REPORT,
    MAX_TEXT_CHARS,
    MONTH_RE,
    PAID_MONTHS_COUNT,
    PAID_MONTHS_DUPLICATE,
    PAID_MONTHS_FORMAT,
    PAID_MONTHS_UNEXPECTED,
    PROGRAMMES,
    RAMP_INVALID,
    REASON_CODES,
    REGION_CODE_INVALID,
    TERMINATION_REASON_INVALID,
    TERMINATION_REASON_UNEXPECTED,
    VERSION_INVALID,
    Invalid,
    Record,
)
from recon.domain._validation_fast import FastRows
from recon.domain.config import DomainConfig
from recon.domain.events import (
    Agreement,
    BranchTotals,
    BudgetSource,
    ClaimEvent,
    ClaimRow,
    ClaimType,
    DomainEvent,
    EnrolmentEvent,
    EnrolmentRow,
    EnrolmentType,
    FunderLevel,
    Lineage,
    RampStep,
    Rejection,
    claim_row,
    enrolment_row,
)
from recon.domain.regions import PROVINCES, is_city_code, is_known_region
from recon.domain.worker_key import KeyChain, check_key, worker_key

__all__ = [
    "REASON_CODES",
    "VALIDATORS",
    "Record",
    "RowValidator",
    "ValidationContext",
    "loggable_event_id",
    "validate",
    "validate_agreement",
    "validate_branch_totals",
    "validate_claim",
    "validate_enrolment",
]

_ENROLMENT_TYPES: Final = {m.value: m for m in EnrolmentType}
_CLAIM_TYPES: Final = {m.value: m for m in ClaimType}
_FUNDER_LEVELS: Final = {m.value: m for m in FunderLevel}
_BUDGET_SOURCES: Final = {m.value: m for m in BudgetSource}

_COVERAGE_ORDER: Final = Rejection(DATE_ORDER, "coverage_end: must not be before coverage_start.")
_MONTHS_FORMAT: Final = Rejection(PAID_MONTHS_FORMAT, "paid_months: each month must be 'YYYY-MM', MM 01-12.")
_MONTHS_DUPLICATE: Final = Rejection(PAID_MONTHS_DUPLICATE, "paid_months: a month must not appear twice.")
_MONTHS_UNPAID: Final = Rejection(
    PAID_MONTHS_COUNT, "amount: a CONTRIBUTION_PAID event must pay more than 0."
)
_MONTHS_UNEXPECTED: Final = Rejection(
    PAID_MONTHS_UNEXPECTED, "paid_months: must be empty unless event_type is CONTRIBUTION_PAID."
)
_REASON_UNEXPECTED: Final = Rejection(
    TERMINATION_REASON_UNEXPECTED, "termination_reason: must be null unless event_type is TERMINATED."
)
_REASON_TOO_LONG: Final = Rejection(
    TERMINATION_REASON_INVALID, f"termination_reason: must be at most {MAX_TEXT_CHARS} characters."
)
_INCIDENT_LATE: Final = Rejection(
    INCIDENT_AFTER_REPORT, "incident_date: must not be after the date of occurred_at."
)
_PAID_MISSING: Final = Rejection(AMOUNT_PAID_INCONSISTENT, "amount_paid: required when event_type is PAID.")
_PAID_UNEXPECTED: Final = Rejection(
    AMOUNT_PAID_INCONSISTENT, "amount_paid: must be null unless event_type is PAID."
)
_PAID_NEGATIVE: Final = Rejection(AMOUNT_NEGATIVE, "amount_paid: must not be negative.")
_VERSION: Final = Rejection(VERSION_INVALID, "version: must be 1 or more.")
_FUNDER_NAME: Final = Rejection(
    FUNDER_NAME_INVALID, f"funder_name: must be 1-{MAX_TEXT_CHARS} printable characters, not all blank."
)
_REGION_CODE: Final = {
    FunderLevel.PROVINCE: "a PROVINCE funder needs a known 2-digit Kemendagri province code.",
    FunderLevel.REGENCY: "a REGENCY funder needs a known 4-digit Kemendagri code ending 01-69.",
    FunderLevel.CITY: "a CITY funder needs a known 4-digit Kemendagri code ending 71-99.",
}
_PERIOD_ORDER: Final = Rejection(DATE_ORDER, "period_end: must not be before period_start.")
_TARGET_POPULATION: Final = Rejection(AMOUNT_NOT_POSITIVE, "target_population: must be null or more than 0.")
_RAMP_MONTH: Final = Rejection(
    RAMP_INVALID, "ramp: each month must be 'YYYY-MM', strictly ascending, inside the period."
)
_RAMP_TARGET: Final = Rejection(
    RAMP_INVALID, "ramp: target_workers must be 0 or more, never decrease, and not exceed quota_workers."
)
_AS_OF_ORDER: Final = Rejection(DATE_ORDER, "as_of: must not be after the date of occurred_at.")


@dataclass(frozen=True, slots=True)
class ValidationContext:
    """What validation needs besides the record: rates, the current time, the key, known agreements.

    ``now_ms`` comes from the caller's clock (UTC milliseconds); ``agreements`` are those the ledger
    knows now, by agreement_id. ``nik_key`` is the key, or the key chain once rotated (see
    recon.domain.worker_key). Raises ValueError when a key is too short.
    """

    config: DomainConfig
    now_ms: int
    nik_key: bytes | KeyChain
    agreements: Mapping[str, Agreement]

    def __post_init__(self) -> None:
        check_key(self.nik_key)


# -------------------------------------------------------------------------------------- enrolment


def validate_enrolment(
    record: Record, lineage: Lineage, ctx: ValidationContext
) -> EnrolmentEvent | Rejection:
    """An EnrolmentEvent from a decoded enrolment record, or the first rule it breaks."""
    try:
        return _enrolment(record, lineage, ctx)
    except Invalid as invalid:
        return invalid.rejection


def _enrolment(record: Record, lineage: Lineage, ctx: ValidationContext) -> EnrolmentEvent:
    event_id = check.event_id(record)
    event_type = check.symbol(record, "event_type", _ENROLMENT_TYPES)
    occurred_at = check.occurred_at(record, ctx.now_ms, ctx.config.max_clock_skew_hours)
    branch_code = check.code(record, "branch_code")
    agreement_id = check.code(record, "agreement_id")
    nik, nik_facts = check.nik(record)
    programmes = check.programmes(record)
    check.check_funded(programmes, ctx.agreements.get(agreement_id))
    declared_income = check.not_negative(record, "declared_income")
    coverage_start = check.day(record, "coverage_start")
    coverage_end = check.opt_day(record, "coverage_end")
    if coverage_end is not None and coverage_end < coverage_start:
        raise Invalid(_COVERAGE_ORDER)
    amount = check.not_negative(record, "amount")
    paid_months = _paid_months(check.array(record, "paid_months"), event_type, amount, ctx.config)
    return EnrolmentEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at_ms=occurred_at,
        branch_code=branch_code,
        agreement_id=agreement_id,
        worker_key=worker_key(nik, ctx.nik_key),
        nik_region=nik_facts.region4,
        programmes=programmes,
        declared_income=declared_income,
        coverage_start=coverage_start,
        coverage_end=coverage_end,
        paid_months=paid_months,
        amount=amount,
        termination_reason=_termination_reason(record, event_type),
        source_system=check.opt_string(record, "source_system"),
        lineage=lineage,
    )


def _paid_months(
    raw: Sequence[object], event_type: EnrolmentType, amount: int, config: DomainConfig
) -> tuple[str, ...]:
    if event_type is not EnrolmentType.CONTRIBUTION_PAID:
        if raw:
            raise Invalid(_MONTHS_UNEXPECTED)
        return ()
    limit = config.max_months_per_payment
    if not 1 <= len(raw) <= limit:
        reason = f"paid_months: a CONTRIBUTION_PAID event pays for 1 to {limit} months; got {len(raw)}."
        raise Invalid(Rejection(PAID_MONTHS_COUNT, reason))
    months: list[str] = []
    for month in raw:
        if not isinstance(month, str) or MONTH_RE.match(month) is None:
            raise Invalid(_MONTHS_FORMAT)
        months.append(month)
    months.sort()
    if any(months[i] == months[i - 1] for i in range(1, len(months))):
        raise Invalid(_MONTHS_DUPLICATE)
    if amount <= 0:
        raise Invalid(_MONTHS_UNPAID)
    return tuple(months)


def _termination_reason(record: Record, event_type: EnrolmentType) -> str | None:
    reason = check.opt_string(record, "termination_reason")
    if reason is None:
        return None
    if event_type is not EnrolmentType.TERMINATED:
        raise Invalid(_REASON_UNEXPECTED)
    if len(reason) > MAX_TEXT_CHARS:
        raise Invalid(_REASON_TOO_LONG)
    return reason


# ------------------------------------------------------------------------------------------ claim


def validate_claim(record: Record, lineage: Lineage, ctx: ValidationContext) -> ClaimEvent | Rejection:
    """A ClaimEvent from a decoded claim record, or the first rule it breaks."""
    try:
        return _claim(record, lineage, ctx)
    except Invalid as invalid:
        return invalid.rejection


def _claim(record: Record, lineage: Lineage, ctx: ValidationContext) -> ClaimEvent:
    event_id = check.event_id(record)
    event_type = check.symbol(record, "event_type", _CLAIM_TYPES)
    occurred_at = check.occurred_at(record, ctx.now_ms, ctx.config.max_clock_skew_hours)
    branch_code = check.code(record, "branch_code")
    claim_id = check.code(record, "claim_id")
    nik, nik_facts = check.nik(record)
    agreement_id = check.opt_code(record, "agreement_id")
    programme = check.symbol(record, "programme", PROGRAMMES)
    incident_date = check.day(record, "incident_date")
    if incident_date > check.report_date(occurred_at):
        raise Invalid(_INCIDENT_LATE)
    amount_claimed = check.not_negative(record, "amount_claimed")
    return ClaimEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at_ms=occurred_at,
        branch_code=branch_code,
        claim_id=claim_id,
        worker_key=worker_key(nik, ctx.nik_key),
        nik_region=nik_facts.region4,
        agreement_id=agreement_id,
        programme=programme,
        incident_date=incident_date,
        amount_claimed=amount_claimed,
        amount_paid=_amount_paid(record, event_type),
        lineage=lineage,
    )


def _amount_paid(record: Record, event_type: ClaimType) -> int | None:
    paid = check.opt_integer(record, "amount_paid")
    if paid is None:
        if event_type is ClaimType.PAID:
            raise Invalid(_PAID_MISSING)
        return None
    if event_type is not ClaimType.PAID:
        raise Invalid(_PAID_UNEXPECTED)
    if paid < 0:
        raise Invalid(_PAID_NEGATIVE)
    return paid


# -------------------------------------------------------------------------------------- agreement


def validate_agreement(
    record: Record, lineage: Lineage | None, ctx: ValidationContext
) -> Agreement | Rejection:
    """An Agreement from a decoded agreement record (lineage None when loaded from a file)."""
    try:
        return _agreement(record, lineage)
    except Invalid as invalid:
        return invalid.rejection


def _agreement(record: Record, lineage: Lineage | None) -> Agreement:
    agreement_id = check.code(record, "agreement_id")
    version = check.integer(record, "version")
    if version < 1:
        raise Invalid(_VERSION)
    funder_name = _funder_name(record)
    funder_level = check.symbol(record, "funder_level", _FUNDER_LEVELS)
    region_code = _region_code(record, funder_level)
    branch_code = check.code(record, "branch_code")
    budget_source = check.symbol(record, "budget_source", _BUDGET_SOURCES)
    programmes = check.programmes(record)
    quota = check.positive(record, "quota_workers")
    budget = check.positive(record, "budget_rupiah")
    premium = check.positive(record, "monthly_premium_rupiah")
    period_start = check.day(record, "period_start")
    period_end = check.day(record, "period_end")
    if period_end < period_start:
        raise Invalid(_PERIOD_ORDER)
    ramp = _ramp(check.array(record, "ramp"), period_start, period_end, quota)
    target_population = check.opt_integer(record, "target_population")
    if target_population is not None and target_population <= 0:
        raise Invalid(_TARGET_POPULATION)
    return Agreement(
        agreement_id=agreement_id,
        version=version,
        funder_name=funder_name,
        funder_level=funder_level,
        region_code=region_code,
        branch_code=branch_code,
        budget_source=budget_source,
        programmes=programmes,
        quota_workers=quota,
        budget_rupiah=budget,
        monthly_premium_rupiah=premium,
        period_start=period_start,
        period_end=period_end,
        ramp=ramp,
        target_population=target_population,
        lineage=lineage,
    )


def _funder_name(record: Record) -> str:
    name = check.string(record, "funder_name")
    if not name.strip() or len(name) > MAX_TEXT_CHARS or not name.isprintable():
        raise Invalid(_FUNDER_NAME)
    return name


def _region_code(record: Record, level: FunderLevel) -> str:
    code = check.string(record, "region_code")
    if not code.isascii() or not code.isdigit():
        valid = False
    elif level is FunderLevel.PROVINCE:
        valid = code in PROVINCES
    else:  # Kemendagri numbers regencies 01-69 and cities 71-99
        is_city = level is FunderLevel.CITY
        valid = len(code) == 4 and is_known_region(code) and is_city_code(code) == is_city
    if not valid:
        raise Invalid(Rejection(REGION_CODE_INVALID, f"region_code: {_REGION_CODE[level]}"))
    return code


def _ramp(raw: Sequence[object], start: date, end: date, quota: int) -> tuple[RampStep, ...]:
    first, last = f"{start.year:04d}-{start.month:02d}", f"{end.year:04d}-{end.month:02d}"
    steps: list[RampStep] = []
    for item in raw:
        step = _ramp_step(item)
        previous = steps[-1] if steps else None
        if not first <= step.month <= last or (previous is not None and step.month <= previous.month):
            raise Invalid(_RAMP_MONTH)
        floor = previous.target_workers if previous is not None else 0
        if not floor <= step.target_workers <= quota:
            raise Invalid(_RAMP_TARGET)
        steps.append(step)
    return tuple(steps)


def _ramp_step(item: object) -> RampStep:
    if not isinstance(item, Mapping):
        raise check.wrong_type("ramp", "an array of {month, target_workers} records")
    month = check.string(item, "month")
    if MONTH_RE.match(month) is None:
        raise Invalid(_RAMP_MONTH)
    return RampStep(month, check.integer(item, "target_workers"))


# ---------------------------------------------------------------------------------- branch totals


def validate_branch_totals(
    record: Record, lineage: Lineage, ctx: ValidationContext
) -> BranchTotals | Rejection:
    """BranchTotals from a decoded branch-totals record, or the first rule it breaks."""
    try:
        return _branch_totals(record, lineage, ctx)
    except Invalid as invalid:
        return invalid.rejection


def _branch_totals(record: Record, lineage: Lineage, ctx: ValidationContext) -> BranchTotals:
    event_id = check.event_id(record)
    occurred_at = check.occurred_at(record, ctx.now_ms, ctx.config.max_clock_skew_hours)
    branch_code = check.code(record, "branch_code")
    agreement_id = check.code(record, "agreement_id")
    as_of = check.day(record, "as_of")
    if as_of > check.report_date(occurred_at):
        raise Invalid(_AS_OF_ORDER)
    return BranchTotals(
        event_id=event_id,
        occurred_at_ms=occurred_at,
        branch_code=branch_code,
        agreement_id=agreement_id,
        as_of=as_of,
        active_workers=check.not_negative(record, "active_workers"),
        contributions_paid_rupiah=check.not_negative(record, "contributions_paid_rupiah"),
        lineage=lineage,
    )


# ------------------------------------------------------------------------------------- dispatcher

Validator = Callable[[Record, Lineage, ValidationContext], DomainEvent | Rejection]

VALIDATORS: Final[Mapping[str, Validator]] = {
    "enrolment": validate_enrolment,
    "claim": validate_claim,
    "agreement": validate_agreement,
    "branch-totals": validate_branch_totals,
}


def loggable_event_id(record: Record) -> str | None:
    """The record's ``event_id`` if validation's own check accepts it (so it cannot hold a NIK), else
    None: what a log line about a rejected record may name."""
    try:
        return check.event_id(record)
    except Invalid:
        return None


def validate(
    subject: str, record: Record, lineage: Lineage, ctx: ValidationContext
) -> DomainEvent | Rejection:
    """Validate a record of a schema subject. Raises ValueError for a subject without domain events."""
    validator = VALIDATORS.get(subject)
    if validator is None:
        expected = ", ".join(VALIDATORS)
        raise ValueError(f"no domain validation for subject {subject!r}; expected one of {expected}")
    return validator(record, lineage, ctx)


# ------------------------------------------------------------------------------- the ingest path

RowOutcome = EnrolmentRow | ClaimRow | Agreement | BranchTotals | Rejection


class RowValidator:
    """Validation as ingest needs it: a decoded record to the row the ledger writes.

    Same decision as :func:`validate` for every record, with an enrolment or a claim as its ledger
    row (``EnrolmentRow``/``ClaimRow``, equal to ``enrolment_row(validate(...))``) and agreements and
    branch totals as their events. Enrolments and claims take a fast path first
    (``_validation_fast``), which only ever accepts; anything else, every refusal included, is
    decided by :func:`validate`, so codes, reasons and which rule wins are the reference's.

    One per batch and per context: it keeps per-batch work (a worker's key when a NIK repeats).

    Usage:
        rows = RowValidator(ctx)
        outcome = rows.validate("enrolment", record, "enrolments", 0, 42, "c0ffee…", 2)
    """

    __slots__ = ("_ctx", "_fast")

    def __init__(self, ctx: ValidationContext) -> None:
        self._ctx = ctx
        self._fast = FastRows(
            config=ctx.config, now_ms=ctx.now_ms, nik_key=ctx.nik_key, agreements=ctx.agreements
        )

    def validate(
        self,
        subject: str,
        record: Record,
        topic: str,
        partition: int,
        offset: int,
        fingerprint: str,
        schema_version: int,
    ) -> RowOutcome:
        """The record's row or event, or its Rejection. ValueError for a subject without events."""
        fast: EnrolmentRow | ClaimRow | None = None
        if subject == "enrolment":
            fast = self._fast.enrolment(record, topic, partition, offset, fingerprint, schema_version)
        elif subject == "claim":
            fast = self._fast.claim(record, topic, partition, offset, fingerprint, schema_version)
        if fast is not None:
            return fast
        lineage = Lineage(topic, partition, offset, fingerprint, schema_version)
        result = validate(subject, record, lineage, self._ctx)
        if isinstance(result, EnrolmentEvent):
            return enrolment_row(result)
        if isinstance(result, ClaimEvent):
            return claim_row(result)
        return result
