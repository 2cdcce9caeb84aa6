"""The demo scenario is realistic input: everything valid except what it plants on purpose."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from recon.avro import SchemaCatalogue
from recon.demo.scenario import PLANS, Scenario, build
from recon.domain.config import DomainConfig
from recon.domain.events import Lineage, Rejection
from recon.domain.validation import ValidationContext, validate
from recon.settings import load_settings

TODAY = date(2026, 11, 21)
NOW_MS = 1_795_300_000_000  # 2026-11-22, after every event of the scenario


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build(TODAY, scale=0.02)


def _outcomes(subject: str, records: list[dict[str, object]]) -> Counter[str]:
    catalogue = SchemaCatalogue.load(load_settings().schemas_dir)
    ctx = ValidationContext(config=DomainConfig(), now_ms=NOW_MS, nik_key=b"k" * 32, agreements={})
    out: Counter[str] = Counter()
    for i, record in enumerate(records):
        decoded = catalogue.decode(catalogue.encode(subject, record), subject)
        result = validate(subject, decoded.record, Lineage("t", 0, i, "00", decoded.version), ctx)
        out[result.code if isinstance(result, Rejection) else "valid"] += 1
    return out


def test_every_agreement_and_enrolment_of_the_scenario_is_valid(scenario: Scenario) -> None:
    assert _outcomes("agreement", scenario.agreements) == {"valid": len(PLANS)}
    assert _outcomes("enrolment", scenario.enrolments) == {"valid": len(scenario.enrolments)}
    assert _outcomes("branch-totals", scenario.branch_totals) == {"valid": len(PLANS)}


def test_claims_are_valid_but_one_reported_before_its_incident(scenario: Scenario) -> None:
    assert _outcomes("claim", scenario.claims) == {
        "valid": len(scenario.claims) - 1,
        "incident_after_report": 1,
    }


def test_planted_invalid_enrolments_are_refused_each_for_its_reason(scenario: Scenario) -> None:
    assert _outcomes("enrolment", scenario.invalid_enrolments) == {
        "nik_birth_date": 1,
        "date_order": 1,
        "nik_format": 1,
    }


def test_province_funds_some_palu_workers_again_and_quotas_scale(scenario: Scenario) -> None:
    workers: dict[str, set[str]] = {}
    for e in scenario.enrolments:
        workers.setdefault(str(e["agreement_id"]), set()).add(str(e["nik"]))
    assert workers["PKS-72-SULTENG"] & workers["PKS-7271-PALU"], "double funding is planted"
    quotas = {a["agreement_id"]: a["quota_workers"] for a in scenario.agreements}
    assert quotas["PKS-72-SULTENG"] == round(100_402 * 0.02)
    assert len(workers["PKS-7206-MOROWALI"]) > quotas["PKS-7206-MOROWALI"], "Morowali enrols over its quota"


def test_the_scenario_is_deterministic() -> None:
    assert build(TODAY, scale=0.01) == build(TODAY, scale=0.01)
