"""Kemendagri (Dukcapil) region codes, the ones a NIK's first four digits carry.

They are not the statistics office's (BPS) codes: Morowali is 7206 here and 7203 at BPS, 7601 is
Pasangkayu here and Majene at BPS, and the Papua provinces are numbered differently too. Source:
Kepmendagri No 300.2.2-2138 Tahun 2025 (and No 100.1.1-6117 Tahun 2022 before it), as transcribed
in public datasets; see docs/validation.md.

Every province (38 since Papua Barat Daya in 2022) is listed. Regencies and cities are listed in
full only for the provinces the service's agreements cover today (Sulawesi Tengah and Sulawesi
Barat); in any other province, regency/city digits 01-99 are accepted, because a NIK keeps the code
of the region that first issued it, and that may be a code since retired or renumbered.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

PROVINCES: Final = MappingProxyType(
    {
        "11": "Aceh",
        "12": "Sumatera Utara",
        "13": "Sumatera Barat",
        "14": "Riau",
        "15": "Jambi",
        "16": "Sumatera Selatan",
        "17": "Bengkulu",
        "18": "Lampung",
        "19": "Kepulauan Bangka Belitung",
        "21": "Kepulauan Riau",
        "31": "DKI Jakarta",
        "32": "Jawa Barat",
        "33": "Jawa Tengah",
        "34": "DI Yogyakarta",
        "35": "Jawa Timur",
        "36": "Banten",
        "51": "Bali",
        "52": "Nusa Tenggara Barat",
        "53": "Nusa Tenggara Timur",
        "61": "Kalimantan Barat",
        "62": "Kalimantan Tengah",
        "63": "Kalimantan Selatan",
        "64": "Kalimantan Timur",
        "65": "Kalimantan Utara",
        "71": "Sulawesi Utara",
        "72": "Sulawesi Tengah",
        "73": "Sulawesi Selatan",
        "74": "Sulawesi Tenggara",
        "75": "Gorontalo",
        "76": "Sulawesi Barat",
        "81": "Maluku",
        "82": "Maluku Utara",
        "91": "Papua",
        "92": "Papua Barat",
        "93": "Papua Selatan",
        "94": "Papua Tengah",
        "95": "Papua Pegunungan",
        "96": "Papua Barat Daya",
    }
)

# Complete regency (01-69) and city (71-99) lists, per province listed here.
REGENCIES: Final = MappingProxyType(
    {
        # Sulawesi Tengah: 12 regencies, 1 city.
        "7201": "Kabupaten Banggai",
        "7202": "Kabupaten Poso",
        "7203": "Kabupaten Donggala",
        "7204": "Kabupaten Toli-Toli",
        "7205": "Kabupaten Buol",
        "7206": "Kabupaten Morowali",
        "7207": "Kabupaten Banggai Kepulauan",
        "7208": "Kabupaten Parigi Moutong",
        "7209": "Kabupaten Tojo Una-Una",
        "7210": "Kabupaten Sigi",
        "7211": "Kabupaten Banggai Laut",
        "7212": "Kabupaten Morowali Utara",
        "7271": "Kota Palu",
        # Sulawesi Barat: 6 regencies, no city.
        "7601": "Kabupaten Pasangkayu",  # Mamuju Utara until 2017
        "7602": "Kabupaten Mamuju",
        "7603": "Kabupaten Mamasa",
        "7604": "Kabupaten Polewali Mandar",
        "7605": "Kabupaten Majene",
        "7606": "Kabupaten Mamuju Tengah",
    }
)

FULLY_LISTED_PROVINCES: Final = frozenset(code[:2] for code in REGENCIES)


def accepted_regions() -> frozenset[str]:
    """Every 4-digit code ``is_known_region`` accepts: about 3,600 short strings."""
    accepted = set(REGENCIES)
    for province in PROVINCES.keys() - FULLY_LISTED_PROVINCES:
        accepted.update(f"{province}{n:02d}" for n in range(1, 100))
    return frozenset(accepted)


_ACCEPTED_REGIONS: Final = accepted_regions()


def province_name(code2: str) -> str | None:
    """The province's name for a 2-digit Kemendagri code, or None if there is no such province."""
    return PROVINCES.get(code2)


def region_name(code4: str) -> str | None:
    """The name of a listed regency or city (4 digits), or None when it is not in the lists here."""
    return REGENCIES.get(code4)


def is_known_region(code4: str) -> bool:
    """Whether a 4-digit code can be a Kemendagri regency/city code (see the module docstring)."""
    return code4 in _ACCEPTED_REGIONS


def is_city_code(code4: str) -> bool:
    """Kemendagri numbers regencies 01-69 and cities 71-99 within a province."""
    return code4[2:] >= "71"


def region_within(nik_region4: str, funder_region_code: str) -> bool:
    """Whether a NIK's region lies in a funder's region: a province (2 digits) or regency/city (4)."""
    if len(funder_region_code) == 2:
        return nik_region4[:2] == funder_region_code
    return len(funder_region_code) == 4 and nik_region4 == funder_region_code
