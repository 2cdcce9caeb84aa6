"""NIK shape rules and the Kemendagri region table they rely on."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import valid_nik
from recon.domain.events import Rejection
from recon.domain.nik import NIK_REASON_CODES, NikFacts, is_possible_birth_date, parse_nik
from recon.domain.regions import (
    FULLY_LISTED_PROVINCES,
    PROVINCES,
    is_city_code,
    is_known_region,
    province_name,
    region_name,
    region_within,
)


def nik(region4: str = "7271", district: str = "01", ddmmyy: str = "150690", serial: str = "0001") -> str:
    return region4 + district + ddmmyy + serial


def code_of(value: str) -> str | None:
    result = parse_nik(value)
    return result.code if isinstance(result, Rejection) else None


# ---------------------------------------------------------------------------------------- valid


def test_a_valid_nik_gives_its_region_and_province() -> None:
    assert parse_nik(valid_nik("7206")) == NikFacts(region4="7206", province2="72")


def test_facts_carry_nothing_but_the_region() -> None:
    assert NikFacts.__slots__ == ("region4", "province2")


def test_women_have_forty_added_to_the_day() -> None:
    man, woman = valid_nik(female=False), valid_nik(female=True)
    assert man[6:8] == "15"
    assert woman[6:8] == "55"
    assert parse_nik(woman) == parse_nik(man)


# --------------------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    "value",
    [
        "",
        "727101150690001",  # 15 digits
        "72710115069000010",  # 17 digits
        "7271011506900O01",  # letter O
        "7271 01150690001",
        "+727101150690001",
        "727101150690000١",  # ARABIC-INDIC DIGIT ONE: isdigit() but not ASCII
        "７２７１０１１５０６９００００１",  # fullwidth digits
        "7271-01-150690-0001",
    ],
)
def test_anything_but_sixteen_ascii_digits_is_a_format_error(value: str) -> None:
    assert code_of(value) == "nik_format"


def test_format_reason_gives_the_length_not_the_value() -> None:
    result = parse_nik("72710115069000017")
    assert isinstance(result, Rejection)
    assert "17 characters" in result.reason
    assert "7271" not in result.reason


def test_sixteen_ascii_digits_pass_the_format_check() -> None:
    assert code_of(nik()) is None


# --------------------------------------------------------------------------------------- region


@pytest.mark.parametrize("province", ["00", "10", "20", "37", "77", "90", "97", "99"])
def test_unknown_province_is_rejected(province: str) -> None:
    result = parse_nik(nik(region4=province + "01"))
    assert isinstance(result, Rejection)
    assert result.code == "nik_region_unknown"
    assert "province" in result.reason


@pytest.mark.parametrize("region4", ["7213", "7270", "7272", "7299", "7607", "7671"])
def test_unlisted_regency_of_a_fully_listed_province_is_rejected(region4: str) -> None:
    result = parse_nik(nik(region4=region4))
    assert isinstance(result, Rejection)
    assert result.code == "nik_region_unknown"
    assert "regency/city" in result.reason


@pytest.mark.parametrize("region4", ["7201", "7206", "7212", "7271", "7601", "7604", "7606"])
def test_listed_regencies_are_accepted(region4: str) -> None:
    assert code_of(nik(region4=region4)) is None


@pytest.mark.parametrize("region4", ["7301", "7369", "7399", "3171", "9101", "9671", "1175"])
def test_any_regency_digits_are_accepted_where_the_province_is_not_listed_in_full(region4: str) -> None:
    assert code_of(nik(region4=region4)) is None


@pytest.mark.parametrize("region4", ["7300", "7200", "7600", "3100"])
def test_regency_digits_00_are_never_a_region(region4: str) -> None:
    assert code_of(nik(region4=region4)) == "nik_region_unknown"


# ------------------------------------------------------------------------------------- district


def test_district_00_is_rejected_and_01_accepted() -> None:
    assert code_of(nik(district="00")) == "nik_district"
    assert code_of(nik(district="01")) is None
    assert code_of(nik(district="99")) is None


# ----------------------------------------------------------------------------------- birth date


@pytest.mark.parametrize(
    ("ddmmyy", "valid"),
    [
        ("000690", False),  # day 00
        ("010690", True),
        ("310790", True),  # July has 31 days
        ("320790", False),
        ("400790", False),  # neither a man's day nor a woman's
        ("410790", True),  # woman born on the 1st
        ("710790", True),  # woman born on the 31st
        ("720790", False),
        ("150090", False),  # month 00
        ("150190", True),
        ("151290", True),
        ("151390", False),  # month 13
        ("300490", True),  # April has 30 days
        ("310490", False),
        ("700490", True),  # woman, 30 April
        ("710490", False),  # woman, "31 April"
        ("280201", True),
        ("290201", False),  # neither 1901 nor 2001 is a leap year
        ("290200", True),  # 2000 is a leap year (1900 is not): the century is unknown
        ("290204", True),
        ("290296", True),
        ("290298", False),
        ("690204", True),  # woman, 29 February of a leap year
        ("690203", False),
        ("300204", False),  # 30 February, even in a leap year
        ("700204", False),
    ],
)
def test_birth_date_digits(ddmmyy: str, valid: bool) -> None:
    assert code_of(nik(ddmmyy=ddmmyy)) == (None if valid else "nik_birth_date")


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2099, 12, 31)), st.booleans())
def test_every_real_birth_date_is_possible(birth: date, female: bool) -> None:
    day = birth.day + (40 if female else 0)
    assert is_possible_birth_date(day, birth.month, birth.year % 100)
    assert code_of(valid_nik(birth=birth, female=female)) is None


# --------------------------------------------------------------------------------------- serial


def test_serial_starts_at_0001() -> None:
    assert code_of(nik(serial="0000")) == "nik_serial"
    assert code_of(nik(serial="0001")) is None
    assert code_of(nik(serial="9999")) is None


# ------------------------------------------------------------------------------------- ordering


def test_checks_follow_the_order_of_the_digits() -> None:
    assert code_of(nik(region4="9901", district="00", ddmmyy="999999", serial="0000")) == "nik_region_unknown"
    assert code_of(nik(district="00", ddmmyy="999999", serial="0000")) == "nik_district"
    assert code_of(nik(ddmmyy="999999", serial="0000")) == "nik_birth_date"


def test_every_code_is_declared() -> None:
    expected = {"nik_format", "nik_region_unknown", "nik_birth_date", "nik_district", "nik_serial"}
    assert expected == NIK_REASON_CODES


@given(st.text(alphabet="0123456789", min_size=14, max_size=18) | st.text(max_size=24))
def test_a_rejection_never_contains_the_nik_or_any_long_part_of_it(value: str) -> None:
    result = parse_nik(value)
    if isinstance(result, Rejection):
        assert result.code in NIK_REASON_CODES
        assert result.reason.isascii()
        assert re.search(r"\d{4,}", result.reason) is None
        assert len(value) < 3 or value not in result.reason


# -------------------------------------------------------------------------------------- regions


def test_all_38_provinces_with_the_2022_papua_provinces() -> None:
    assert len(PROVINCES) == 38
    assert province_name("72") == "Sulawesi Tengah"
    assert province_name("76") == "Sulawesi Barat"
    assert [province_name(c) for c in ("91", "92", "93", "94", "95", "96")] == [
        "Papua",
        "Papua Barat",
        "Papua Selatan",
        "Papua Tengah",
        "Papua Pegunungan",
        "Papua Barat Daya",
    ]
    assert province_name("97") is None


def test_kemendagri_codes_not_bps_codes() -> None:
    assert region_name("7206") == "Kabupaten Morowali"  # BPS: 7203
    assert region_name("7203") == "Kabupaten Donggala"
    assert region_name("7604") == "Kabupaten Polewali Mandar"  # as in the design brief
    assert region_name("7601") == "Kabupaten Pasangkayu"  # BPS: Majene
    assert region_name("7271") == "Kota Palu"
    assert region_name("7212") == "Kabupaten Morowali Utara"
    assert region_name("7211") == "Kabupaten Banggai Laut"


def test_the_listed_provinces_are_complete() -> None:
    assert {"72", "76"} == FULLY_LISTED_PROVINCES
    sulteng = [c for c in (f"72{n:02d}" for n in range(100)) if region_name(c)]
    sulbar = [c for c in (f"76{n:02d}" for n in range(100)) if region_name(c)]
    assert sulteng == [*(f"72{n:02d}" for n in range(1, 13)), "7271"]
    assert sulbar == ["7601", "7602", "7603", "7604", "7605", "7606"]


def test_region_name_is_none_outside_the_lists() -> None:
    assert region_name("7301") is None
    assert is_known_region("7301")
    assert not is_known_region("7213")
    assert not is_known_region("9701")


def test_city_codes_are_71_to_99() -> None:
    assert is_city_code("7271")
    assert not is_city_code("7212")
    assert not is_city_code("7269")


@pytest.mark.parametrize(
    ("nik_region", "funder", "within"),
    [
        ("7271", "72", True),  # Palu is in Sulawesi Tengah
        ("7206", "72", True),
        ("7604", "72", False),
        ("7271", "7271", True),
        ("7206", "7271", False),
        ("7604", "7604", True),
        ("7271", "727", False),  # neither a province nor a regency code
        ("7271", "", False),
        ("7271", "72710", False),
    ],
)
def test_region_within(nik_region: str, funder: str, within: bool) -> None:
    assert region_within(nik_region, funder) is within
