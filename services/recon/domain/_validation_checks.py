"""Reason codes, typed field access and the rules several subjects share (see validation.py).

A check either returns the field's value, typed, or raises ``Invalid`` carrying the Rejection; the
public validators catch it. Sentences name the field and the rule, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from itertools import permutations
from typing import Final, TypeVar

from recon.domain.events import Agreement, Programme, Rejection
from recon.domain.nik import NIK_REASON_CODES, NikFacts, parse_nik

Record = Mapping[str, object]
_E = TypeVar("_E", bound=StrEnum)

FIELD_TYPE: Final = "field_type"
EVENT_ID_INVALID: Final = "event_id_invalid"
CODE_INVALID: Final = "code_invalid"
OCCURRED_AT_OUT_OF_RANGE: Final = "occurred_at_out_of_range"
DATE_ORDER: Final = "date_order"
AMOUNT_NEGATIVE: Final = "amount_negative"
AMOUNT_NOT_POSITIVE: Final = "amount_not_positive"
PROGRAMMES_INVALID: Final = "programmes_invalid"
PROGRAMME_NOT_FUNDED: Final = "programme_not_funded"
PAID_MONTHS_FORMAT: Final = "paid_months_format"
PAID_MONTHS_DUPLICATE: Final = "paid_months_duplicate"
PAID_MONTHS_COUNT: Final = "paid_months_count"
PAID_MONTHS_UNEXPECTED: Final = "paid_months_unexpected"
TERMINATION_REASON_UNEXPECTED: Final = "termination_reason_unexpected"
TERMINATION_REASON_INVALID: Final = "termination_reason_invalid"
INCIDENT_AFTER_REPORT: Final = "incident_after_report"
AMOUNT_PAID_INCONSISTENT: Final = "amount_paid_inconsistent"
VERSION_INVALID: Final = "version_invalid"
FUNDER_NAME_INVALID: Final = "funder_name_invalid"
REGION_CODE_INVALID: Final = "region_code_invalid"
RAMP_INVALID: Final = "ramp_invalid"
IDENTIFIER_HOLDS_NIK: Final = "identifier_holds_nik"

REASON_CODES: Final = NIK_REASON_CODES | frozenset(
    {
        FIELD_TYPE, EVENT_ID_INVALID, CODE_INVALID, OCCURRED_AT_OUT_OF_RANGE, DATE_ORDER,
        AMOUNT_NEGATIVE, AMOUNT_NOT_POSITIVE, PROGRAMMES_INVALID, PROGRAMME_NOT_FUNDED,
        PAID_MONTHS_FORMAT, PAID_MONTHS_DUPLICATE, PAID_MONTHS_COUNT, PAID_MONTHS_UNEXPECTED,
        TERMINATION_REASON_UNEXPECTED, TERMINATION_REASON_INVALID, INCIDENT_AFTER_REPORT,
        AMOUNT_PAID_INCONSISTENT, VERSION_INVALID, FUNDER_NAME_INVALID, REGION_CODE_INVALID,
        RAMP_INVALID, IDENTIFIER_HOLDS_NIK,
    }
)  # fmt: skip

MAX_EVENT_ID_CHARS: Final = 128
MAX_CODE_CHARS: Final = 64
MAX_TEXT_CHARS: Final = 200  # termination_reason, funder_name
EARLIEST_OCCURRED_AT_MS: Final = 1_388_534_400_000  # 2014-01-01T00:00Z: BPJS Ketenagakerjaan starts
HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
# Dates in records are Indonesian calendar dates; occurred_at is UTC. The report's date is taken in
# the easternmost zone (WIT, UTC+9) so that a same-day incident reported before 09:00 WIT/07:00 WIB
# is not mistaken for one after the report.
_LATEST_LOCAL_OFFSET_MS: Final = 9 * HOUR_MS

_CODE_RE: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_CODE_CHARS}}}\Z")
# Ids travel where a NIK must not (alert messages, dead-letter headers, logs): refuse NIK-shaped runs.
_NIK_RUN: Final = re.compile(r"[0-9]{16}")
MONTH_RE: Final = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])\Z")

PROGRAMMES: Final = {m.value: m for m in Programme}
# Every valid programmes list (non-empty, no repeats) as a key: one dict lookup validates and converts.
_PROGRAMME_LISTS: Final[dict[tuple[object, ...], tuple[Programme, ...]]] = {
    tuple(p.value for p in perm): perm
    for n in range(1, len(Programme) + 1)
    for perm in permutations(Programme, n)
}

_EVENT_ID: Final = Rejection(
    EVENT_ID_INVALID, f"event_id: must be 1-{MAX_EVENT_ID_CHARS} printable characters."
)
_TOO_EARLY: Final = Rejection(OCCURRED_AT_OUT_OF_RANGE, "occurred_at: must not be before 2014-01-01 (UTC).")
_PROGRAMMES_LIST: Final = Rejection(
    PROGRAMMES_INVALID, "programmes: must list at least one programme, none twice."
)
_NOT_FUNDED: Final = Rejection(
    PROGRAMME_NOT_FUNDED, "programmes: every programme must be one the agreement (agreement_id) funds."
)


class Invalid(Exception):
    """Raised by a check; the public validator catches it and returns its Rejection."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


# ---------------------------------------------------------------------------------- field access


def wrong_type(name: str, kind: str) -> Invalid:
    return Invalid(Rejection(FIELD_TYPE, f"{name}: missing, or not {kind}."))


def string(record: Record, name: str) -> str:
    value = record.get(name)
    if isinstance(value, str):
        return value
    raise wrong_type(name, "a string")


def opt_string(record: Record, name: str) -> str | None:
    value = record.get(name)
    if value is None or isinstance(value, str):
        return value
    raise wrong_type(name, "null or a string")


def integer(record: Record, name: str) -> int:
    value = record.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise wrong_type(name, "an integer")


def opt_integer(record: Record, name: str) -> int | None:
    value = record.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise wrong_type(name, "null or an integer")


def day(record: Record, name: str) -> date:
    value = record.get(name)
    if type(value) is date:  # a datetime is a date subclass, and not what a date field holds
        return value
    raise wrong_type(name, "a date")


def opt_day(record: Record, name: str) -> date | None:
    value = record.get(name)
    if value is None or type(value) is date:
        return value
    raise wrong_type(name, "null or a date")


def array(record: Record, name: str) -> Sequence[object]:
    value = record.get(name)
    if isinstance(value, list | tuple):
        return value
    raise wrong_type(name, "an array")


def symbol(record: Record, name: str, symbols: Mapping[str, _E]) -> _E:
    value = record.get(name)
    found = symbols.get(value) if isinstance(value, str) else None
    if found is None:
        raise wrong_type(name, "one of " + ", ".join(symbols))
    return found


# ---------------------------------------------------------------------------------- shared rules


def event_id(record: Record) -> str:
    value = string(record, "event_id")
    if not value or len(value) > MAX_EVENT_ID_CHARS or not value.isprintable():
        raise Invalid(_EVENT_ID)
    return _no_nik("event_id", value)


def code(record: Record, name: str) -> str:
    value = string(record, name)
    if _CODE_RE.match(value) is None:
        raise Invalid(_code_rejection(name))
    return _no_nik(name, value)


def opt_code(record: Record, name: str) -> str | None:
    value = opt_string(record, name)
    if value is not None and _CODE_RE.match(value) is None:
        raise Invalid(_code_rejection(name))
    return value if value is None else _no_nik(name, value)


def _no_nik(name: str, value: str) -> str:
    if _NIK_RUN.search(value) is not None:
        reason = f"{name}: must not contain 16 digits in a row (a NIK must not travel in an identifier)."
        raise Invalid(Rejection(IDENTIFIER_HOLDS_NIK, reason))
    return value


def _code_rejection(name: str) -> Rejection:
    rule = f"must be 1-{MAX_CODE_CHARS} characters from A-Z, a-z, 0-9, '.', '_', '-'."
    return Rejection(CODE_INVALID, f"{name}: {rule}")


def occurred_at(record: Record, now_ms: int, max_skew_hours: int) -> int:
    value = integer(record, "occurred_at")
    if value < EARLIEST_OCCURRED_AT_MS:
        raise Invalid(_TOO_EARLY)
    if value > now_ms + max_skew_hours * HOUR_MS:
        reason = f"occurred_at: must not be more than {max_skew_hours} hours after the service's clock."
        raise Invalid(Rejection(OCCURRED_AT_OUT_OF_RANGE, reason))
    return value


def report_date(occurred_at_ms: int) -> date:
    """The latest Indonesian calendar date at an instant (see _LATEST_LOCAL_OFFSET_MS)."""
    return date.fromordinal(_EPOCH_ORDINAL + (occurred_at_ms + _LATEST_LOCAL_OFFSET_MS) // _DAY_MS)


def nik(record: Record) -> tuple[str, NikFacts]:
    value = string(record, "nik")
    facts = parse_nik(value)
    if isinstance(facts, Rejection):
        raise Invalid(facts)
    return value, facts


def not_negative(record: Record, name: str) -> int:
    value = integer(record, name)
    if value < 0:
        raise Invalid(Rejection(AMOUNT_NEGATIVE, f"{name}: must not be negative."))
    return value


def positive(record: Record, name: str) -> int:
    value = integer(record, name)
    if value <= 0:
        raise Invalid(Rejection(AMOUNT_NOT_POSITIVE, f"{name}: must be more than 0."))
    return value


def programmes(record: Record) -> tuple[Programme, ...]:
    raw = array(record, "programmes")
    try:
        found = _PROGRAMME_LISTS.get(tuple(raw))
    except TypeError:  # an unhashable item
        found = None
    if found is not None:
        return found
    if all(isinstance(item, str) and item in PROGRAMMES for item in raw):
        raise Invalid(_PROGRAMMES_LIST)
    raise wrong_type("programmes", "an array of " + ", ".join(PROGRAMMES))


def check_funded(chosen: tuple[Programme, ...], agreement: Agreement | None) -> None:
    # An agreement not known yet is fine: the event is kept and the ledger counts it later.
    if agreement is not None and not all(p in agreement.programmes for p in chosen):
        raise Invalid(_NOT_FUNDED)
