"""The NIK (Nomor Induk Kependudukan), checked for shape without ever echoing it.

Layout of the 16 digits: PP RR DD ddmmyy SSSS
- PP RR: Kemendagri province and regency/city codes of the region that first issued the NIK;
- DD: district (kecamatan), never 00;
- ddmmyy: birth date, with 40 added to the day for women;
- SSSS: serial from 0001.

Only the region leaves this module: the birth date and gender are personal data no later rule needs.
"""

from __future__ import annotations

from calendar import isleap
from dataclasses import dataclass
from typing import Final

from recon.domain.events import Rejection
from recon.domain.regions import PROVINCES, accepted_regions

NIK_LENGTH: Final = 16
FEMALE_DAY_OFFSET: Final = 40

_MAX_DAY: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # index = month; Feb 29 checked apart

NIK_REGION_UNKNOWN: Final = "nik_region_unknown"
NIK_FORMAT: Final = "nik_format"
NIK_BIRTH_DATE: Final = "nik_birth_date"
NIK_DISTRICT: Final = "nik_district"
NIK_SERIAL: Final = "nik_serial"

NIK_REASON_CODES: Final = frozenset(
    {NIK_FORMAT, NIK_REGION_UNKNOWN, NIK_BIRTH_DATE, NIK_DISTRICT, NIK_SERIAL}
)

_PROVINCE_UNKNOWN: Final = Rejection(
    NIK_REGION_UNKNOWN, "nik: digits 1-2 are not a Kemendagri province code."
)
_REGENCY_UNKNOWN: Final = Rejection(
    NIK_REGION_UNKNOWN, "nik: digits 3-4 are not a Kemendagri regency/city code of that province."
)
_DISTRICT_ZERO: Final = Rejection(NIK_DISTRICT, "nik: digits 5-6 (district) must not be 00.")
_BIRTH_DATE: Final = Rejection(
    NIK_BIRTH_DATE,
    "nik: digits 7-12 must be a possible birth date DDMMYY, with day 01-31 (41-71 for women, "
    "day + 40), month 01-12, and the day existing in that month.",
)
_SERIAL_ZERO: Final = Rejection(NIK_SERIAL, "nik: digits 13-16 (serial) start at 0001, never 0000.")


@dataclass(frozen=True, slots=True)
class NikFacts:
    """What later rules may know of a NIK: its region of issue, not the person."""

    region4: str  # Kemendagri regency/city code, e.g. "7271"
    province2: str  # Kemendagri province code, e.g. "72"


def parse_nik(value: str) -> NikFacts | Rejection:
    """Check a NIK's shape; return its region facts, or a Rejection that never contains the NIK.

    Checks run in the order of the digits: format, region, district, birth date, serial.
    """
    if len(value) != NIK_LENGTH or not value.isascii() or not value.isdigit():
        return _format_rejection(value)
    facts = _FACTS_BY_REGION.get(value[:4])
    if facts is None:
        return _REGENCY_UNKNOWN if value[:2] in PROVINCES else _PROVINCE_UNKNOWN
    if value[4:6] == "00":
        return _DISTRICT_ZERO
    if value[6:10] not in _DAY_MONTHS and not _is_leap_day(value):
        return _BIRTH_DATE
    if value[12:] == "0000":
        return _SERIAL_ZERO
    return facts


def is_possible_birth_date(day: int, month: int, year2: int) -> bool:
    """Whether DD MM YY of a NIK can be a birth date; the day carries +40 for women.

    The century is unknown, so 29 February is accepted when 19YY or 20YY is a leap year.
    """
    if day > FEMALE_DAY_OFFSET:
        day -= FEMALE_DAY_OFFSET
    if not (1 <= month <= 12 and 1 <= day <= _MAX_DAY[month]):
        return False
    return month != 2 or day != 29 or isleap(1900 + year2) or isleap(2000 + year2)


def _is_leap_day(value: str) -> bool:
    return value[6:10] in ("2902", "6902") and is_possible_birth_date(29, 2, int(value[10:12]))


# Precomputed so that a valid NIK costs two dict/set lookups rather than integer parsing and a new
# NikFacts: every accepted region's facts, and every possible DDMM except 29 February.
_FACTS_BY_REGION: Final = {code: NikFacts(code, code[:2]) for code in accepted_regions()}
_DAY_MONTHS: Final = frozenset(
    f"{day:02d}{month:02d}"
    for day in (*range(1, 32), *range(41, 72))
    for month in range(1, 13)
    if is_possible_birth_date(day, month, 1)  # neither 1901 nor 2001 has a 29 February
)


def _format_rejection(value: str) -> Rejection:
    # The length is safe to report; the characters are not.
    return Rejection(
        NIK_FORMAT, f"nik: must be exactly {NIK_LENGTH} ASCII digits; got {len(value)} characters."
    )
