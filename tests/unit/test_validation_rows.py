"""The ingest hot path of validation (RowValidator) decides exactly as the reference validate().

The fast path only ever accepts and hands anything else to the reference, so the property to hold
is: for every record, valid or not, RowValidator gives the reference's Rejection (code, reason, the
rule that wins) or the reference event's ledger row, value for value and type for type.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from enum import StrEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from factories import (
    AGREEMENT_ID,
    NIK_KEY,
    OCCURRED_AT_MS,
    VALIDATION_NOW_MS,
    agreement_record,
    claim_record,
    contribution_record,
    enrolment_record,
    valid_nik,
)
from recon.domain._validation_fast import FastRows
from recon.domain.config import DomainConfig
from recon.domain.events import (
    Agreement,
    ClaimEvent,
    EnrolmentEvent,
    EnrolmentType,
    Lineage,
    Programme,
    claim_row,
    enrolment_row,
)
from recon.domain.validation import RowValidator, ValidationContext, validate, validate_agreement
from recon.domain.worker_key import worker_key

LINEAGE = ("enrolments", 3, 1234, "0123456789abcdef", 2)
JKM_ONLY = validate_agreement(
    agreement_record(agreement_id="PKS-JKM", programmes=["JKM"]),
    None,
    ValidationContext(DomainConfig(), VALIDATION_NOW_MS, NIK_KEY, {}),
)
assert isinstance(JKM_ONLY, Agreement)


class Text(StrEnum):  # a str subclass, as a caller other than our decoder might pass
    ENROLLED = "ENROLLED"
    PALU = "PALU"


def reference(subject: str, record: dict[str, Any], ctx: ValidationContext) -> Any:
    result = validate(subject, record, Lineage(*LINEAGE), ctx)
    if isinstance(result, EnrolmentEvent):
        return enrolment_row(result)
    if isinstance(result, ClaimEvent):
        return claim_row(result)
    return result


def same(got: Any, expected: Any) -> None:
    assert got == expected
    if isinstance(expected, tuple):
        assert type(got) is type(expected)
        assert [type(v) for v in got] == [type(v) for v in expected]


NIK = valid_nik()
ODD: list[Any] = [
    None, True, 0, -1, 1.5, "", " ", "x" * 300, "PALU", "2025-06", ["2025-06"], [], {}, ("JKK",),
    date(2025, 6, 1), Text.PALU, Text.ENROLLED, NIK, NIK[:15] + "x", f"evt-{NIK}", "7271013206900001",
]  # fmt: skip
ENROLMENT_VALUES: dict[str, list[Any]] = {
    "event_id": ["e-1", "é-2", "tab\there", "a" * 128, "a" * 129, "0123456789012345"],
    "event_type": ["ENROLLED", "CONTRIBUTION_PAID", "TERMINATED", "enrolled", "PAID"],
    "occurred_at": [OCCURRED_AT_MS, 1_388_534_400_000, 1_388_534_399_999, VALIDATION_NOW_MS + 24 * 3_600_000,
                    VALIDATION_NOW_MS + 24 * 3_600_000 + 1],
    "branch_code": ["PALU", "PA LU", "P" * 64, "P" * 65, "B.1_-x"],
    "agreement_id": [AGREEMENT_ID, "PKS-JKM", "PKS-UNKNOWN"],
    "nik": [NIK, valid_nik(female=True), valid_nik(region4="7206"), "1111010101900001", "7271003206900000"],
    "programmes": [["JKK", "JKM"], ["JKM"], ["JKK"], ["JKM", "JKK"], ["JKK", "JKK"], ["JKX"],
                   [Programme.JKM]],
    "declared_income": [0, 1_000_000, -5],
    "coverage_start": [date(2025, 6, 1), date(2025, 1, 1)],
    "coverage_end": [None, date(2025, 12, 31), date(2025, 5, 31)],
    "paid_months": [[], ["2025-06"], ["2025-06", "2025-05"], ["2025-06", "2025-06"], ["2025-13"],
                    [f"2025-{m:02d}" for m in range(1, 13)],
                    ["2024-12", *(f"2025-{m:02d}" for m in range(1, 13))],
                    ("2025-07",), ["2025-6"]],
    "amount": [0, 16_800, -1, 201_600],
    "termination_reason": [None, "moved away", "x" * 200, "x" * 201],
    "source_system": [None, "SIPP-Palu 3.2"],
}  # fmt: skip
CLAIM_VALUES: dict[str, list[Any]] = {
    "event_id": ENROLMENT_VALUES["event_id"],
    "event_type": ["FILED", "APPROVED", "REJECTED", "PAID", "ENROLLED"],
    "occurred_at": ENROLMENT_VALUES["occurred_at"],
    "branch_code": ENROLMENT_VALUES["branch_code"],
    "claim_id": ["KLM-PALU-0001", "KLM 1", "c" * 65],
    "nik": ENROLMENT_VALUES["nik"],
    "agreement_id": [AGREEMENT_ID, None, "bad id"],
    "programme": ["JKK", "JKM", "JKX", Programme.JKK],
    "incident_date": [date(2025, 5, 20), date(2025, 6, 2), date(2025, 6, 3)],
    "amount_claimed": [0, 5_000_000, -1],
    "amount_paid": [None, 0, 4_000_000, -1],
}  # fmt: skip


def records(base: Any, values: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid record with up to four fields set to boundary values or odd types, or removed."""
    change = st.sampled_from(sorted(values)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from([*values[name], *ODD, KeyError]))
    )

    def build(changes: list[tuple[str, Any]]) -> dict[str, Any]:
        record = base()
        for name, value in changes:
            if value is KeyError:
                record.pop(name, None)
            else:
                record[name] = value
        return record

    return st.lists(change, max_size=4).map(build)


def contexts() -> st.SearchStrategy[ValidationContext]:
    agreements = st.sampled_from([{}, {"PKS-JKM": JKM_ONLY}])
    keys = st.sampled_from([NIK_KEY, (NIK_KEY,), (NIK_KEY, b"second-key-for-rotation-32-bytes")])
    months = st.sampled_from([12, 3])
    return st.builds(
        lambda a, k, m: ValidationContext(DomainConfig(max_months_per_payment=m), VALIDATION_NOW_MS, k, a),
        agreements,
        keys,
        months,
    )


ENROLMENTS = st.one_of(
    records(enrolment_record, ENROLMENT_VALUES),
    records(contribution_record, ENROLMENT_VALUES),
    records(lambda: enrolment_record(event_type="TERMINATED", termination_reason="moved"), ENROLMENT_VALUES),
)


@settings(max_examples=600, deadline=None)
@given(record=ENROLMENTS, ctx=contexts())
def test_an_enrolment_gets_the_reference_decision_valid_or_not(
    record: dict[str, Any], ctx: ValidationContext
) -> None:
    same(RowValidator(ctx).validate("enrolment", record, *LINEAGE), reference("enrolment", record, ctx))


@settings(max_examples=400, deadline=None)
@given(record=records(claim_record, CLAIM_VALUES), ctx=contexts())
def test_a_claim_gets_the_reference_decision_valid_or_not(
    record: dict[str, Any], ctx: ValidationContext
) -> None:
    same(RowValidator(ctx).validate("claim", record, *LINEAGE), reference("claim", record, ctx))


def test_every_single_field_change_gets_the_reference_decision() -> None:
    bases = [
        ("enrolment", enrolment_record, ENROLMENT_VALUES),
        ("enrolment", contribution_record, ENROLMENT_VALUES),
        ("enrolment", lambda: enrolment_record(event_type="TERMINATED"), ENROLMENT_VALUES),
        ("claim", claim_record, CLAIM_VALUES),
        ("claim", lambda: claim_record(event_type="PAID", amount_paid=1), CLAIM_VALUES),
    ]
    ctx = ValidationContext(DomainConfig(), VALIDATION_NOW_MS, NIK_KEY, {"PKS-JKM": JKM_ONLY})
    checked = 0
    for subject, base, values in bases:
        for name, choices in values.items():
            for value in [*choices, *ODD, KeyError]:
                record = base()
                if value is KeyError:
                    del record[name]
                else:
                    record[name] = value
                same(RowValidator(ctx).validate(subject, record, *LINEAGE), reference(subject, record, ctx))
                checked += 1
    assert checked > 1500


def test_valid_enrolments_and_claims_are_built_by_the_fast_path_not_the_reference() -> None:
    ctx = ValidationContext(DomainConfig(), VALIDATION_NOW_MS, (NIK_KEY,), {})
    fast = FastRows(config=ctx.config, now_ms=ctx.now_ms, nik_key=ctx.nik_key, agreements=ctx.agreements)
    enrolments = [
        enrolment_record(),
        contribution_record(("2025-06", "2025-04", "2025-05")),
        enrolment_record(event_type="TERMINATED", termination_reason="moved", coverage_end=date(2025, 7, 1)),
    ]
    for record in enrolments:
        row = fast.enrolment(record, *LINEAGE)
        assert row is not None
        same(row, reference("enrolment", record, ctx))
    record = claim_record(event_type="PAID", amount_paid=4_000_000)
    row = fast.claim(record, *LINEAGE)
    assert row is not None
    same(row, reference("claim", record, ctx))


def test_an_unfunded_programme_is_refused_after_the_agreement_is_known_as_before() -> None:
    ctx = ValidationContext(DomainConfig(), VALIDATION_NOW_MS, NIK_KEY, {"PKS-JKM": JKM_ONLY})
    record = enrolment_record(agreement_id="PKS-JKM", programmes=["JKK"])

    outcome = RowValidator(ctx).validate("enrolment", record, *LINEAGE)

    assert outcome == reference("enrolment", record, ctx)
    assert getattr(outcome, "code", None) == "programme_not_funded"


def test_a_worker_seen_twice_in_a_batch_gets_the_same_key() -> None:
    ctx = ValidationContext(DomainConfig(), VALIDATION_NOW_MS, NIK_KEY, {})
    rows = RowValidator(ctx)
    first = rows.validate("enrolment", enrolment_record(), *LINEAGE)
    paid = rows.validate("enrolment", contribution_record(), *LINEAGE)

    assert getattr(first, "worker_key", 1) == getattr(paid, "worker_key", 2) == worker_key(NIK, NIK_KEY)
    assert getattr(first, "event_type", None) == EnrolmentType.ENROLLED.value


@given(key=st.binary(min_size=16, max_size=200), text=st.text(max_size=40))
def test_the_worker_key_is_hmac_sha256_for_any_key_length(key: bytes, text: str) -> None:
    # Keys longer than SHA-256's 64-byte block are hashed first, as HMAC defines.
    assert worker_key(text, key) == hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
