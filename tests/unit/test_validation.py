"""Domain validation of decoded records: every rule, at and around its boundaries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import (
    NIK_KEY,
    OCCURRED_AT_MS,
    VALIDATION_NOW_MS,
    agreement_record,
    branch_totals_record,
    claim_record,
    contribution_record,
    enrolment_record,
    lineage,
    valid_nik,
)
from recon.domain.config import DomainConfig
from recon.domain.events import (
    Agreement,
    BranchTotals,
    ClaimEvent,
    ClaimType,
    EnrolmentEvent,
    EnrolmentType,
    Programme,
    RampStep,
    Rejection,
)
from recon.domain.validation import (
    REASON_CODES,
    ValidationContext,
    validate,
    validate_agreement,
    validate_branch_totals,
    validate_claim,
    validate_enrolment,
)
from recon.domain.worker_key import worker_key

HOUR_MS = 3_600_000
DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


def ctx(
    agreements: Mapping[str, Agreement] | None = None, now_ms: int = VALIDATION_NOW_MS, **config: Any
) -> ValidationContext:
    return ValidationContext(DomainConfig(**config), now_ms, NIK_KEY, agreements or {})


def known(**overrides: Any) -> dict[str, Agreement]:
    """The demo agreement, validated, as the ledger would hand it over."""
    result = validate_agreement(agreement_record(**overrides), None, ctx())
    assert isinstance(result, Agreement), result
    return {result.agreement_id: result}


def code(result: object) -> str | None:
    """The rejection code, or None when the record was accepted."""
    return result.code if isinstance(result, Rejection) else None


def enrolment(record: dict[str, Any], context: ValidationContext | None = None) -> object:
    return validate_enrolment(record, lineage(), context or ctx())


def claim(record: dict[str, Any], context: ValidationContext | None = None) -> object:
    return validate_claim(record, lineage("claims"), context or ctx())


def agreement(record: dict[str, Any]) -> object:
    return validate_agreement(record, lineage("agreements"), ctx())


def totals(record: dict[str, Any]) -> object:
    return validate_branch_totals(record, lineage("branch-totals"), ctx())


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


# ------------------------------------------------------------------------------ enrolment: valid


def test_a_valid_enrolment_becomes_an_event_without_the_nik() -> None:
    nik = valid_nik("7206", female=True, serial=42)
    record = enrolment_record(nik=nik, programmes=["JKM", "JKK"], coverage_end=date(2025, 12, 31))
    event = enrolment(record)
    assert isinstance(event, EnrolmentEvent)
    assert event.event_type is EnrolmentType.ENROLLED
    assert event.worker_key == worker_key(nik, NIK_KEY)
    assert event.nik_region == "7206"
    assert event.programmes == (Programme.JKM, Programme.JKK)
    assert event.occurred_at_ms == OCCURRED_AT_MS
    assert event.lineage == lineage()
    assert nik not in repr(event)


def test_a_v1_record_without_source_system_is_valid() -> None:
    record = enrolment_record()
    del record["source_system"]
    event = enrolment(record)
    assert isinstance(event, EnrolmentEvent)
    assert event.source_system is None


def test_source_system_is_kept() -> None:
    event = enrolment(enrolment_record(source_system="SIPP-Palu 3.2"))
    assert isinstance(event, EnrolmentEvent)
    assert event.source_system == "SIPP-Palu 3.2"


def test_a_nik_outside_the_funders_region_is_not_rejected() -> None:
    # A Polewali Mandar NIK under Palu's agreement: reconciliation warns, validation accepts.
    event = enrolment(enrolment_record(nik=valid_nik("7604")), ctx(known()))
    assert isinstance(event, EnrolmentEvent)
    assert event.nik_region == "7604"


# --------------------------------------------------------------------------- event_id and codes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "event_id_invalid"),
        ("x", None),
        ("x" * 128, None),
        ("x" * 129, "event_id_invalid"),
        ("8f14e45f-ceea-467f-a0e6-f9d5b6a1c9f0", None),
        ("id with spaces", None),
        ("pembayaran-ü", None),
        ("line\nbreak", "event_id_invalid"),
        ("nul\x00", "event_id_invalid"),
        ("tab\t", "event_id_invalid"),
    ],
)
def test_event_id(value: str, expected: str | None) -> None:
    assert code(enrolment(enrolment_record(event_id=value))) == expected
    assert code(claim(claim_record(event_id=value))) == expected
    assert code(totals(branch_totals_record(event_id=value))) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "code_invalid"),
        ("P", None),
        ("A" * 64, None),
        ("A" * 65, "code_invalid"),
        ("PKS-7271_2025.v2", None),
        ("PKS 7271", "code_invalid"),
        ("PKS/7271", "code_invalid"),
        ("PALU\n", "code_invalid"),
        ("PALÜ", "code_invalid"),
        ("ＰＡＬＵ", "code_invalid"),
    ],
)
def test_codes(value: str, expected: str | None) -> None:
    assert code(enrolment(enrolment_record(branch_code=value))) == expected
    assert code(enrolment(enrolment_record(agreement_id=value))) == expected
    assert code(claim(claim_record(claim_id=value))) == expected
    assert code(claim(claim_record(agreement_id=value))) == expected
    assert code(agreement(agreement_record(agreement_id=value))) == expected
    assert code(totals(branch_totals_record(branch_code=value))) == expected


def test_code_reason_names_the_field() -> None:
    result = enrolment(enrolment_record(branch_code="PA LU"))
    assert isinstance(result, Rejection)
    assert result.reason.startswith("branch_code:")


# ------------------------------------------------------------------------------------------ NIK


@pytest.mark.parametrize(
    ("nik", "expected"),
    [
        ("727101150690001", "nik_format"),
        ("72710115069000010", "nik_format"),
        ("727101150690000١", "nik_format"),
        ("9901011506900001", "nik_region_unknown"),
        ("7213011506900001", "nik_region_unknown"),
        ("7301011506900001", None),
        ("7271001506900001", "nik_district"),
        ("7271013206900001", "nik_birth_date"),
        ("7271017206900001", "nik_birth_date"),
        ("7271012902010001", "nik_birth_date"),
        ("7271012902000001", None),
        ("7271011506900000", "nik_serial"),
    ],
)
def test_nik_rules_apply_to_enrolments_and_claims(nik: str, expected: str | None) -> None:
    assert code(enrolment(enrolment_record(nik=nik))) == expected
    assert code(claim(claim_record(nik=nik))) == expected


# ---------------------------------------------------------------------------------- occurred_at


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        (VALIDATION_NOW_MS + 24 * HOUR_MS, None),  # exactly at the skew limit
        (VALIDATION_NOW_MS + 24 * HOUR_MS + 1, "occurred_at_out_of_range"),
        (ms(2014, 1, 1), None),
        (ms(2014, 1, 1) - 1, "occurred_at_out_of_range"),
        (0, "occurred_at_out_of_range"),
        (-1, "occurred_at_out_of_range"),
    ],
)
def test_occurred_at_range(occurred_at: int, expected: str | None) -> None:
    record = enrolment_record(occurred_at=occurred_at, coverage_start=date(2014, 1, 1))
    assert code(enrolment(record)) == expected
    as_of = date(2014, 1, 1)
    assert code(totals(branch_totals_record(occurred_at=occurred_at, as_of=as_of))) == expected


def test_clock_skew_comes_from_config() -> None:
    one_hour = ctx(max_clock_skew_hours=1)
    assert code(enrolment(enrolment_record(occurred_at=VALIDATION_NOW_MS + HOUR_MS), one_hour)) is None
    result = enrolment(enrolment_record(occurred_at=VALIDATION_NOW_MS + HOUR_MS + 1), one_hour)
    assert isinstance(result, Rejection)
    assert result.code == "occurred_at_out_of_range"
    assert "1 hours" in result.reason


# ------------------------------------------------------------------------------ dates, amounts


def test_coverage_end_not_before_start() -> None:
    start = date(2025, 6, 1)
    assert code(enrolment(enrolment_record(coverage_start=start, coverage_end=start))) is None
    before = start - timedelta(days=1)
    assert code(enrolment(enrolment_record(coverage_start=start, coverage_end=before))) == "date_order"
    assert code(enrolment(enrolment_record(coverage_end=None))) is None


@pytest.mark.parametrize("field", ["declared_income", "amount"])
def test_enrolment_amounts_not_negative(field: str) -> None:
    assert code(enrolment(enrolment_record(**{field: 0}))) is None
    assert code(enrolment(enrolment_record(**{field: -1}))) == "amount_negative"


# ---------------------------------------------------------------------------------- programmes


@pytest.mark.parametrize(
    ("programmes", "expected"),
    [
        (["JKK"], None),
        (["JKM"], None),
        (["JKK", "JKM"], None),
        (["JKM", "JKK"], None),
        ([], "programmes_invalid"),
        (["JKK", "JKK"], "programmes_invalid"),
        (["JKK", "JKM", "JKK"], "programmes_invalid"),
        (["JHT"], "field_type"),
        ([1], "field_type"),
        ([["JKK"]], "field_type"),
        ("JKK", "field_type"),
    ],
)
def test_programmes(programmes: object, expected: str | None) -> None:
    assert code(enrolment(enrolment_record(programmes=programmes))) == expected
    assert code(agreement(agreement_record(programmes=programmes))) == expected


def test_programmes_must_be_funded_by_a_known_agreement() -> None:
    jkk_only = ctx(known(programmes=["JKK"]))
    assert code(enrolment(enrolment_record(programmes=["JKK"]), jkk_only)) is None
    assert code(enrolment(enrolment_record(programmes=["JKK", "JKM"]), jkk_only)) == "programme_not_funded"
    assert code(enrolment(enrolment_record(programmes=["JKM"]), jkk_only)) == "programme_not_funded"


def test_an_event_for_an_agreement_not_yet_known_is_valid() -> None:
    record = enrolment_record(agreement_id="PKS-9999-2026", programmes=["JKM"])
    assert isinstance(enrolment(record, ctx(known(programmes=["JKK"]))), EnrolmentEvent)


# --------------------------------------------------------------------------------- paid_months


def months(n: int, start: int = 1) -> tuple[str, ...]:
    return tuple(f"{2024 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in range(start, start + n))


@pytest.mark.parametrize(
    ("paid", "expected"),
    [
        (months(1), None),
        (months(12), None),
        (months(13), "paid_months_count"),
        ((), "paid_months_count"),
        (("2025-00",), "paid_months_format"),
        (("2025-13",), "paid_months_format"),
        (("2025-12",), None),
        (("2025-1",), "paid_months_format"),
        (("25-01",), "paid_months_format"),
        (("2025/01",), "paid_months_format"),
        (("2025-01-01",), "paid_months_format"),
        (("2025-06\n",), "paid_months_format"),
        (("２０２５-０６",), "paid_months_format"),
        (("2025-05", "2025-05"), "paid_months_duplicate"),
        (("2025-06", "2025-05", "2025-06"), "paid_months_duplicate"),
    ],
)
def test_paid_months_of_a_contribution(paid: tuple[str, ...], expected: str | None) -> None:
    assert code(enrolment(contribution_record(paid, amount=16_800))) == expected


def test_paid_months_come_out_ascending() -> None:
    event = enrolment(contribution_record(("2025-06", "2024-12", "2025-01")))
    assert isinstance(event, EnrolmentEvent)
    assert event.paid_months == ("2024-12", "2025-01", "2025-06")


def test_a_non_string_month_is_a_format_error() -> None:
    assert code(enrolment(contribution_record(paid_months=[202506]))) == "paid_months_format"


def test_the_month_limit_comes_from_config() -> None:
    assert code(enrolment(contribution_record(months(3)), ctx(max_months_per_payment=3))) is None
    assert (
        code(enrolment(contribution_record(months(4)), ctx(max_months_per_payment=3))) == "paid_months_count"
    )


def test_a_contribution_must_pay_something() -> None:
    assert code(enrolment(contribution_record(amount=1))) is None
    assert code(enrolment(contribution_record(amount=0))) == "paid_months_count"


@pytest.mark.parametrize("event_type", ["ENROLLED", "TERMINATED"])
def test_other_event_types_carry_no_paid_months(event_type: str) -> None:
    assert code(enrolment(enrolment_record(event_type=event_type, paid_months=[]))) is None
    record = enrolment_record(event_type=event_type, paid_months=["2025-06"])
    assert code(enrolment(record)) == "paid_months_unexpected"


# -------------------------------------------------------------------------- termination_reason


def test_termination_reason() -> None:
    terminated = {"event_type": "TERMINATED"}
    assert code(enrolment(enrolment_record(**terminated, termination_reason=None))) is None
    assert code(enrolment(enrolment_record(**terminated, termination_reason="pindah domisili"))) is None
    assert code(enrolment(enrolment_record(**terminated, termination_reason="x" * 200))) is None
    too_long = enrolment_record(**terminated, termination_reason="x" * 201)
    assert code(enrolment(too_long)) == "termination_reason_invalid"


@pytest.mark.parametrize("reason", ["pindah domisili", ""])
def test_only_terminated_carries_a_termination_reason(reason: str) -> None:
    assert code(enrolment(enrolment_record(termination_reason=reason))) == "termination_reason_unexpected"
    assert code(enrolment(contribution_record(termination_reason=reason))) == "termination_reason_unexpected"


# ------------------------------------------------------------------------------- field types


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_type", "CANCELLED"),
        ("event_type", None),
        ("event_id", 17),
        ("nik", 7271011506900001),
        ("occurred_at", "2025-06-02T03:00:00Z"),
        ("occurred_at", 1.7e12),
        ("amount", True),
        ("declared_income", None),
        ("coverage_start", "2025-06-01"),
        ("coverage_start", datetime(2025, 6, 1, tzinfo=UTC)),
        ("coverage_end", 20250601),
        ("paid_months", "2025-06"),
        ("termination_reason", 3),
        ("source_system", b"SIPP"),
    ],
)
def test_a_missing_or_mistyped_field_is_a_field_type_error(field: str, value: object) -> None:
    result = enrolment(enrolment_record(**{field: value}))
    assert isinstance(result, Rejection)
    assert result.code == "field_type"
    assert result.reason.startswith(f"{field}:")
    record = enrolment_record()
    del record[field]
    nullable = field in {"coverage_end", "termination_reason", "source_system"}  # missing means null
    assert code(enrolment(record)) == (None if nullable else "field_type")


# ----------------------------------------------------------------------------------------- claims


def test_a_valid_claim() -> None:
    nik = valid_nik("7206")
    event = claim(claim_record(nik=nik))
    assert isinstance(event, ClaimEvent)
    assert event.event_type is ClaimType.FILED
    assert event.worker_key == worker_key(nik, NIK_KEY)
    assert event.nik_region == "7206"
    assert event.programme is Programme.JKK
    assert nik not in repr(event)


def test_claim_agreement_id_may_be_null_or_unknown() -> None:
    assert code(claim(claim_record(agreement_id=None))) is None
    assert code(claim(claim_record(agreement_id="PKS-9999-2026"), ctx(known()))) is None


@pytest.mark.parametrize(
    ("event_type", "amount_paid", "expected"),
    [
        ("PAID", 5_000_000, None),
        ("PAID", 0, None),
        ("PAID", None, "amount_paid_inconsistent"),
        ("PAID", -1, "amount_negative"),
        ("FILED", None, None),
        ("FILED", 5_000_000, "amount_paid_inconsistent"),
        ("APPROVED", 0, "amount_paid_inconsistent"),
        ("REJECTED", None, None),
    ],
)
def test_amount_paid(event_type: str, amount_paid: int | None, expected: str | None) -> None:
    assert code(claim(claim_record(event_type=event_type, amount_paid=amount_paid))) == expected


def test_amount_claimed_not_negative() -> None:
    assert code(claim(claim_record(amount_claimed=0))) is None
    assert code(claim(claim_record(amount_claimed=-1))) == "amount_negative"


@pytest.mark.parametrize(
    ("occurred_at", "incident", "expected"),
    [
        (ms(2025, 6, 2, 3), date(2025, 6, 2), None),
        (ms(2025, 6, 2, 3), date(2025, 6, 1), None),
        (ms(2025, 6, 2, 3), date(2025, 6, 3), "incident_after_report"),
        # 14:59 UTC is 23:59 WIT: still 1 June everywhere in Indonesia, so 2 June is after it.
        (ms(2025, 6, 1, 14, 59), date(2025, 6, 2), "incident_after_report"),
        # 15:00 UTC is 00:00 WIT on 2 June: a same-day report from Papua must pass.
        (ms(2025, 6, 1, 15), date(2025, 6, 2), None),
    ],
)
def test_incident_not_after_the_report(occurred_at: int, incident: date, expected: str | None) -> None:
    assert code(claim(claim_record(occurred_at=occurred_at, incident_date=incident))) == expected


def test_claim_programme_is_one_symbol() -> None:
    assert code(claim(claim_record(programme="JKM"))) is None
    assert code(claim(claim_record(programme="JHT"))) == "field_type"
    assert code(claim(claim_record(programme=["JKK"]))) == "field_type"


# ------------------------------------------------------------------------------------- agreements


def test_a_valid_agreement() -> None:
    result = agreement(agreement_record())
    assert isinstance(result, Agreement)
    assert result.ramp[-1] == RampStep("2025-09", 45_778)
    assert result.lineage == lineage("agreements")


def test_an_agreement_loaded_from_a_file_has_no_lineage() -> None:
    result = validate_agreement(agreement_record(), None, ctx())
    assert isinstance(result, Agreement)
    assert result.lineage is None


def test_version_starts_at_1() -> None:
    assert code(agreement(agreement_record(version=1))) is None
    assert code(agreement(agreement_record(version=0))) == "version_invalid"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Pemprov Sulawesi Tengah", None), ("", "funder_name_invalid"), ("   ", "funder_name_invalid"),
     ("x" * 200, None), ("x" * 201, "funder_name_invalid"), ("Pemkab\nMorowali", "funder_name_invalid")],
)  # fmt: skip
def test_funder_name(name: str, expected: str | None) -> None:
    assert code(agreement(agreement_record(funder_name=name))) == expected


@pytest.mark.parametrize(
    ("level", "region", "expected"),
    [
        ("PROVINCE", "72", None),
        ("PROVINCE", "96", None),
        ("PROVINCE", "97", "region_code_invalid"),
        ("PROVINCE", "7271", "region_code_invalid"),
        ("PROVINCE", "7", "region_code_invalid"),
        ("PROVINCE", "７２", "region_code_invalid"),
        ("CITY", "7271", None),
        ("CITY", "7206", "region_code_invalid"),  # Morowali is a regency
        ("CITY", "72", "region_code_invalid"),
        ("CITY", "7272", "region_code_invalid"),  # not a city in Sulawesi Tengah
        ("CITY", "7371", None),  # Makassar: province not listed in full, 71-99 accepted
        ("REGENCY", "7206", None),
        ("REGENCY", "7604", None),
        ("REGENCY", "7271", "region_code_invalid"),  # Palu is a city
        ("REGENCY", "7213", "region_code_invalid"),
        ("REGENCY", "7301", None),
        ("REGENCY", "7300", "region_code_invalid"),
        ("REGENCY", "72a6", "region_code_invalid"),
        ("REGENCY", "", "region_code_invalid"),
    ],
)
def test_region_code(level: str, region: str, expected: str | None) -> None:
    assert code(agreement(agreement_record(funder_level=level, region_code=region))) == expected


@pytest.mark.parametrize("field", ["quota_workers", "budget_rupiah", "monthly_premium_rupiah"])
def test_quota_budget_premium_positive(field: str) -> None:
    assert code(agreement(agreement_record(**{field: 50_000}))) is None
    assert code(agreement(agreement_record(**{field: 0}))) == "amount_not_positive"
    assert code(agreement(agreement_record(**{field: -1}))) == "amount_not_positive"


def test_period_end_not_before_start() -> None:
    same_day = agreement_record(period_start=date(2025, 6, 1), period_end=date(2025, 6, 1), ramp=[])
    assert code(agreement(same_day)) is None
    reversed_period = agreement_record(period_start=date(2025, 6, 2), period_end=date(2025, 6, 1), ramp=[])
    assert code(agreement(reversed_period)) == "date_order"


def test_target_population() -> None:
    assert code(agreement(agreement_record(target_population=None))) is None
    assert code(agreement(agreement_record(target_population=978_084))) is None
    assert code(agreement(agreement_record(target_population=0))) == "amount_not_positive"


def step(month: str, target: int) -> dict[str, object]:
    return {"month": month, "target_workers": target}


@pytest.mark.parametrize(
    ("ramp", "expected"),
    [
        ([], None),
        ([step("2025-01", 0)], None),
        ([step("2025-12", 45_778)], None),  # at quota, in the period's last month
        ([step("2025-12", 45_779)], "ramp_invalid"),  # above quota
        ([step("2025-03", -1)], "ramp_invalid"),
        ([step("2025-03", 100), step("2025-04", 100)], None),  # flat is fine
        ([step("2025-03", 100), step("2025-04", 99)], "ramp_invalid"),  # decreasing
        ([step("2025-04", 100), step("2025-03", 200)], "ramp_invalid"),  # months not ascending
        ([step("2025-04", 100), step("2025-04", 200)], "ramp_invalid"),  # month repeated
        ([step("2024-12", 100)], "ramp_invalid"),  # before the period
        ([step("2026-01", 100)], "ramp_invalid"),  # after the period
        ([step("2025-13", 100)], "ramp_invalid"),
        ([step("2025-6", 100)], "ramp_invalid"),
        (["2025-06"], "field_type"),
        ([{"month": "2025-06"}], "field_type"),
        ([{"month": 202506, "target_workers": 1}], "field_type"),
    ],
)
def test_ramp(ramp: list[object], expected: str | None) -> None:
    assert code(agreement(agreement_record(ramp=ramp))) == expected


def test_ramp_months_are_inside_a_mid_month_period() -> None:
    record = agreement_record(period_start=date(2025, 5, 16), period_end=date(2025, 12, 15))
    assert code(agreement({**record, "ramp": [step("2025-05", 10), step("2025-12", 20)]})) is None
    assert code(agreement({**record, "ramp": [step("2025-04", 10)]})) == "ramp_invalid"


@pytest.mark.parametrize(("field", "value"), [("funder_level", "DISTRICT"), ("budget_source", "APBN")])
def test_agreement_enums(field: str, value: str) -> None:
    assert code(agreement(agreement_record(**{field: value}))) == "field_type"


# ---------------------------------------------------------------------------------- branch totals


def test_valid_branch_totals() -> None:
    result = totals(branch_totals_record())
    assert isinstance(result, BranchTotals)
    assert result.active_workers == 40_000


def test_as_of_not_after_the_report() -> None:
    assert code(totals(branch_totals_record(occurred_at=ms(2025, 6, 2, 3), as_of=date(2025, 6, 2)))) is None
    late = branch_totals_record(occurred_at=ms(2025, 6, 2, 3), as_of=date(2025, 6, 3))
    assert code(totals(late)) == "date_order"


@pytest.mark.parametrize("field", ["active_workers", "contributions_paid_rupiah"])
def test_branch_figures_not_negative(field: str) -> None:
    assert code(totals(branch_totals_record(**{field: 0}))) is None
    assert code(totals(branch_totals_record(**{field: -1}))) == "amount_negative"


# ------------------------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize(
    ("subject", "record", "kind"),
    [
        ("enrolment", enrolment_record(), EnrolmentEvent),
        ("claim", claim_record(), ClaimEvent),
        ("agreement", agreement_record(), Agreement),
        ("branch-totals", branch_totals_record(), BranchTotals),
    ],
)
def test_validate_dispatches_by_subject(subject: str, record: dict[str, Any], kind: type) -> None:
    assert isinstance(validate(subject, record, lineage(), ctx()), kind)


def test_validate_refuses_a_subject_without_domain_events() -> None:
    with pytest.raises(ValueError, match="alert"):
        validate("alert", {}, lineage(), ctx())


def test_validate_returns_rejections() -> None:
    assert code(validate("enrolment", enrolment_record(nik="1"), lineage(), ctx())) == "nik_format"


def test_context_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        ValidationContext(DomainConfig(), VALIDATION_NOW_MS, b"short", {})


# ----------------------------------------------------------------------------------- reason codes


def test_reason_codes_are_documented_one_for_one() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    assert documented == REASON_CODES


def test_reason_codes_are_short_snake_case() -> None:
    assert all(re.fullmatch(r"[a-z][a-z_]{2,40}", c) for c in REASON_CODES)


# ------------------------------------------------------------------------ privacy of the reasons

_ENUM_FIELDS = {"event_type", "programmes", "programme", "funder_level", "budget_source"}
_tainted = st.text(min_size=1, max_size=30).map(lambda s: s + "☃")  # never in an ASCII sentence
_code_like = st.from_regex(r"[A-Z]{2}[0-9]{6}", fullmatch=True)  # a digit run no sentence has
_strings = _tainted | _code_like
_niks = (
    st.builds(
        valid_nik,
        region4=st.sampled_from(["7271", "7206", "7604", "7301", "9601", "7213", "9901"]),
        female=st.booleans(),
        serial=st.integers(0, 9999),
        district=st.sampled_from(["00", "01", "17"]),
        birth=st.dates(min_value=date(1940, 1, 1), max_value=date(2010, 12, 31)),
    )
    | st.text(alphabet="0123456789", min_size=14, max_size=18)
    | _tainted
)
_ints = st.integers(-(10**12), 10**12) | st.sampled_from([0, 1, 12, 16_800])
_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)).filter(lambda d: d.year != 2014)
_months = st.from_regex(r"20[0-9]{2}-[0-9]{2}", fullmatch=True) | _tainted
_occurred = st.integers(OCCURRED_AT_MS - 10**12, VALIDATION_NOW_MS + 10**9)
_symbols = st.sampled_from(["ENROLLED", "CONTRIBUTION_PAID", "TERMINATED", "FILED", "PAID", "JKK", "BOGUS"])

_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _strings | st.text(max_size=140),
    "event_type": _symbols,
    "occurred_at": _occurred,
    "branch_code": _strings,
    "agreement_id": _strings | st.none(),
    "claim_id": _strings,
    "nik": _niks,
    "programmes": st.lists(st.sampled_from(["JKK", "JKM", "JHT"]), max_size=3),
    "programme": st.sampled_from(["JKK", "JKM", "JHT"]),
    "declared_income": _ints,
    "amount": _ints,
    "amount_claimed": _ints,
    "amount_paid": _ints | st.none(),
    "coverage_start": _dates,
    "coverage_end": _dates | st.none(),
    "incident_date": _dates,
    "as_of": _dates,
    "paid_months": st.lists(_months, max_size=14),
    "termination_reason": _strings | st.none(),
    "source_system": _strings | st.none(),
    "version": _ints,
    "funder_name": _strings,
    "funder_level": st.sampled_from(["PROVINCE", "REGENCY", "CITY"]),
    "region_code": st.sampled_from(["72", "7271", "7206", "7604", "99"]) | _strings,
    "budget_source": st.sampled_from(["APBD", "APBD_P"]),
    "quota_workers": _ints,
    "budget_rupiah": _ints,
    "monthly_premium_rupiah": _ints,
    "period_start": _dates,
    "period_end": _dates,
    "ramp": st.lists(st.fixed_dictionaries({"month": _months, "target_workers": _ints}), max_size=4),
    "target_population": _ints | st.none(),
    "active_workers": _ints,
    "contributions_paid_rupiah": _ints,
}
_BUILDERS = {
    "enrolment": enrolment_record,
    "claim": claim_record,
    "agreement": agreement_record,
    "branch-totals": branch_totals_record,
}


@st.composite
def _records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    subject = draw(st.sampled_from(sorted(_BUILDERS)))
    record = _BUILDERS[subject]()
    fields = draw(st.lists(st.sampled_from(sorted(record)), unique=True, max_size=6))
    record.update({name: draw(_FIELDS[name]) for name in fields})
    return subject, record


def _leaves(value: object) -> list[object]:
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


@settings(max_examples=500, deadline=None)
@given(_records())
def test_no_reason_ever_contains_a_value_it_was_given(subject_and_record: tuple[str, dict[str, Any]]) -> None:
    subject, record = subject_and_record
    result = validate(subject, record, lineage(), ctx(known()))
    if not isinstance(result, Rejection):
        return
    assert result.code in REASON_CODES
    assert result.reason.isascii()
    assert re.search(r"\d{5,}", result.reason) is None
    for name, value in record.items():
        if name in _ENUM_FIELDS:
            continue  # symbols of the schema, listed on purpose in field_type sentences
        for leaf in _leaves(value):
            if isinstance(leaf, str) and len(leaf) >= 4:
                assert leaf not in result.reason, name
            if isinstance(leaf, date):
                assert leaf.isoformat() not in result.reason, name


@pytest.mark.parametrize(
    "nik", ["727101150690001", "9901011506900001", "7271001506900001", "7271017206900001", "7271011506900000"]
)
def test_a_nik_rejection_never_contains_the_nik(nik: str) -> None:
    result = enrolment(enrolment_record(nik=nik))
    assert isinstance(result, Rejection)
    assert result.code.startswith("nik_")
    assert nik not in result.reason
    assert nik[-8:] not in result.reason


@pytest.mark.parametrize("field", ["event_id", "claim_id", "branch_code", "agreement_id"])
def test_identifiers_holding_a_nik_are_refused_without_quoting_it(field: str) -> None:
    nik = valid_nik(serial=77)
    record = claim_record(**{field: f"X-{nik}"})

    result = validate_claim(record, lineage("claims"), ctx())

    assert isinstance(result, Rejection) and result.code == "identifier_holds_nik"
    assert nik not in result.reason and field in result.reason
