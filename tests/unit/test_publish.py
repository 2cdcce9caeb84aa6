"""`recon publish` prepares what ingest would accept and refuses the rest with line and reason."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from factories import VALIDATION_NOW_MS, agreement_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.domain.config import DomainConfig
from recon.publish import Prepared, Preparer, Refusal
from recon.settings import load_settings


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def as_json(record: dict[str, Any]) -> str:
    return json.dumps(record, default=lambda v: v.isoformat() if isinstance(v, date) else str(v))


def preparer(catalogue: SchemaCatalogue, subject: str = "enrolment", **kw: Any) -> Preparer:
    return Preparer(
        catalogue=catalogue, subject=subject, config=DomainConfig(), now_ms=VALIDATION_NOW_MS, **kw
    )


def test_valid_lines_become_keyed_single_object_messages(catalogue: SchemaCatalogue) -> None:
    nik = valid_nik(serial=42)
    lines = [as_json(enrolment_record(nik=nik)), "", as_json(agreement_record())]

    out = list(preparer(catalogue).prepare_lines(lines[:2]))

    assert len(out) == 1 and isinstance(out[0], Prepared)
    assert out[0].key == nik.encode() and out[0].line == 1
    decoded = catalogue.decode(out[0].value, "enrolment")
    assert decoded.record["nik"] == nik and decoded.version == catalogue.reader("enrolment").version


def test_refusals_name_the_line_and_reason_but_never_the_value(catalogue: SchemaCatalogue) -> None:
    bad_nik = "7271013206900001"  # birth day 32 does not exist
    lines = [
        as_json(enrolment_record()),
        "{not json",
        "[1, 2]",
        as_json({**enrolment_record(), "event_type": "ENROLLED_TWICE"}),
        as_json(enrolment_record(nik=bad_nik)),
    ]

    out = list(preparer(catalogue).prepare_lines(lines))

    refusals = [r for r in out if isinstance(r, Refusal)]
    assert [(r.line, r.code) for r in refusals] == [
        (2, "json_invalid"),
        (3, "json_invalid"),
        (4, "schema_invalid"),
        (5, "nik_birth_date"),
    ]
    assert all(bad_nik not in str(r) and "ENROLLED_TWICE" not in str(r) for r in refusals)
    assert str(refusals[-1]).startswith("line 5: nik_birth_date: ")


def test_skip_validation_sends_schema_valid_records_that_rules_refuse(catalogue: SchemaCatalogue) -> None:
    line = as_json(enrolment_record(nik="7271013206900001"))

    (out,) = preparer(catalogue, validate_domain=False).prepare_lines([line])

    assert isinstance(out, Prepared)


def test_agreements_are_keyed_by_agreement_id(catalogue: SchemaCatalogue) -> None:
    (out,) = preparer(catalogue, "agreement").prepare_lines([as_json(agreement_record(agreement_id="PKS-X"))])

    assert isinstance(out, Prepared) and out.key == b"PKS-X"


def test_prepared_values_are_the_catalogues_encoding_with_the_current_version(
    catalogue: SchemaCatalogue,
) -> None:
    record = enrolment_record(nik=valid_nik(serial=7))
    line = as_json(record)

    (out,) = preparer(catalogue).prepare_lines([line])

    assert isinstance(out, Prepared)
    assert out.value == catalogue.encode("enrolment", json.loads(line))
    assert catalogue.decode(out.value).version == max(v.version for v in catalogue.versions("enrolment"))
