"""The ingest hot path of validation: a decoded record straight to its ledger row, or None.

validation.py is the reference: its checks run field by field, each a function call raising
``Invalid``, and build a frozen event the ledger then takes apart again. Here one straight-line
function per subject checks the same rules with every value in a local, reuses what repeats (codes
and paid-months lists already seen valid, a worker's key within a batch, an agreement's programmes)
and builds the row tuple the ledger writes. It only ever *accepts*: whatever it is not sure of
(a broken rule, an unusual type such as a str subclass) returns None, and the caller runs the
reference validator, which decides and says why. So every refusal code, reason and precedence is
the reference's by construction; tests/unit/test_validation_rows.py checks that both accept the
same records with the same row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from itertools import permutations
from typing import Any, Final

from recon.domain._validation_checks import (
    EARLIEST_OCCURRED_AT_MS,
    HOUR_MS,
    MAX_CODE_CHARS,
    MAX_EVENT_ID_CHARS,
    MAX_TEXT_CHARS,
    MONTH_RE,
    PROGRAMMES,
    report_date,
)
from recon.domain.config import DomainConfig
from recon.domain.events import Agreement, ClaimRow, EnrolmentRow
from recon.domain.nik import NikFacts, parse_nik
from recon.domain.worker_key import KeyChain, worker_key

_CODE_RE: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_CODE_CHARS}}}\Z")
_NIK_RUN: Final = re.compile(r"[0-9]{16}")
_NIK_RUN_CHARS: Final = 16
_CACHE_LIMIT: Final = 4096  # entries per process-wide cache below; cleared when full, so memory is flat

_ENROLMENT_TYPES: Final = frozenset({"ENROLLED", "CONTRIBUTION_PAID", "TERMINATED"})
_CLAIM_TYPES: Final = frozenset({"FILED", "APPROVED", "REJECTED", "PAID"})
_PROGRAMME_VALUES: Final = {name: name for name in PROGRAMMES}
# Every valid programmes list (non-empty, no repeats) as a key, to its stored text "JKK,JKM".
_PROGRAMME_TEXT: Final = {
    key: ",".join(key) for n in range(1, len(PROGRAMMES) + 1) for key in permutations(PROGRAMMES, n)
}

# Codes (branch, agreement, claim ids) already found valid; paid-months lists already found well
# formed and without repeats, to their sorted stored text. Pure functions of the value, so sharing
# them between batches changes no outcome. Neither holds personal data (NIK-shaped runs are refused).
_good_codes: set[str] = set()
_month_texts: dict[tuple[str, ...], str] = {}


def _code_ok(value: Any) -> bool:
    if value in _good_codes:  # an unhashable value raises TypeError: the caller falls back
        return True
    if type(value) is not str or _CODE_RE.match(value) is None or _NIK_RUN.search(value) is not None:
        return False
    if len(_good_codes) >= _CACHE_LIMIT:
        _good_codes.clear()
    _good_codes.add(value)
    return True


def _event_id_ok(value: Any) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_EVENT_ID_CHARS
        and value.isprintable()
        and (len(value) < _NIK_RUN_CHARS or _NIK_RUN.search(value) is None)
    )


def _months_text(raw: list[Any] | tuple[Any, ...]) -> str | None:
    key = tuple(raw)
    text = _month_texts.get(key)
    if text is not None:
        return text
    if not all(type(m) is str and MONTH_RE.match(m) is not None for m in key):
        return None
    months = sorted(key)
    if len(set(months)) != len(months):
        return None
    if len(_month_texts) >= _CACHE_LIMIT:
        _month_texts.clear()
    text = _month_texts[key] = ",".join(months)
    return text


class FastRows:
    """The per-batch state of the fast path: the clock's bound, the key, the agreements known.

    Rows come out only for records the reference validator accepts, equal to the reference event's
    row; None means "ask the reference". NIKs live here only for the batch (the worker-key cache).
    """

    def __init__(
        self,
        *,
        config: DomainConfig,
        now_ms: int,
        nik_key: bytes | KeyChain,
        agreements: Mapping[str, Agreement],
    ) -> None:
        self._latest = now_ms + config.max_clock_skew_hours * HOUR_MS
        self._max_months = config.max_months_per_payment
        self._key = nik_key
        self._agreements = agreements
        self._funded: dict[str, frozenset[str] | None] = {}
        self._worker_keys: dict[str, str] = {}

    def _worker(self, nik: Any) -> tuple[str, str] | None:
        """(worker key, region of issue) of a valid NIK, else None."""
        if type(nik) is not str:
            return None
        facts = parse_nik(nik)
        if type(facts) is not NikFacts:
            return None
        key = self._worker_keys.get(nik)
        if key is None:
            key = self._worker_keys[nik] = worker_key(nik, self._key)
        return key, facts.region4

    def _funds(self, agreement_id: str, programmes: tuple[Any, ...]) -> bool:
        if agreement_id in self._funded:
            funded = self._funded[agreement_id]
        else:
            agreement = self._agreements.get(agreement_id)
            funded = None if agreement is None else frozenset(p.value for p in agreement.programmes)
            self._funded[agreement_id] = funded
        # An agreement not known yet funds everything: the event is kept, the ledger counts it later.
        return funded is None or funded.issuperset(programmes)

    def enrolment(
        self, record: Mapping[str, Any], topic: str, partition: int, offset: int, fp: str, version: int
    ) -> EnrolmentRow | None:
        try:
            return self._enrolment(record, topic, partition, offset, fp, version)
        except (TypeError, AttributeError):  # an unhashable or odd value: the reference says what
            return None

    def _enrolment(
        self, r: Mapping[str, Any], topic: str, partition: int, offset: int, fp: str, version: int
    ) -> EnrolmentRow | None:
        get: Any = r.get
        event_id, event_type, occurred_at = get("event_id"), get("event_type"), get("occurred_at")
        if not _event_id_ok(event_id) or type(event_type) is not str or event_type not in _ENROLMENT_TYPES:
            return None
        if type(occurred_at) is not int or not EARLIEST_OCCURRED_AT_MS <= occurred_at <= self._latest:
            return None
        branch_code, agreement_id = get("branch_code"), get("agreement_id")
        if not (_code_ok(branch_code) and _code_ok(agreement_id)):
            return None
        worker = self._worker(get("nik"))
        raw_programmes = get("programmes")
        if worker is None or (type(raw_programmes) is not list and type(raw_programmes) is not tuple):
            return None
        key = tuple(raw_programmes)
        programmes = _PROGRAMME_TEXT.get(key)
        if programmes is None or not self._funds(agreement_id, key):
            return None
        income, start, end, amount = (
            get("declared_income"),
            get("coverage_start"),
            get("coverage_end"),
            get("amount"),
        )
        if type(income) is not int or income < 0 or type(start) is not date:
            return None
        if end is not None and (type(end) is not date or end < start):
            return None
        if type(amount) is not int or amount < 0:
            return None
        raw_months = get("paid_months")
        if type(raw_months) is not list and type(raw_months) is not tuple:
            return None
        if event_type == "CONTRIBUTION_PAID":
            if not 1 <= len(raw_months) <= self._max_months or amount <= 0:
                return None
            months = _months_text(raw_months)
            if months is None:
                return None
        elif raw_months:
            return None
        else:
            months = ""
        reason, source = get("termination_reason"), get("source_system")
        if reason is not None and (
            type(reason) is not str or event_type != "TERMINATED" or len(reason) > MAX_TEXT_CHARS
        ):
            return None
        if source is not None and type(source) is not str:
            return None
        return EnrolmentRow(
            event_id,
            event_type,
            occurred_at,
            branch_code,
            agreement_id,
            worker[0],
            worker[1],
            programmes,
            income,
            start,
            end,
            months,
            amount,
            source,
            topic,
            partition,
            offset,
            fp,
            version,
        )

    def claim(
        self, record: Mapping[str, Any], topic: str, partition: int, offset: int, fp: str, version: int
    ) -> ClaimRow | None:
        try:
            return self._claim(record, topic, partition, offset, fp, version)
        except (TypeError, AttributeError):
            return None

    def _claim(
        self, r: Mapping[str, Any], topic: str, partition: int, offset: int, fp: str, version: int
    ) -> ClaimRow | None:
        get: Any = r.get
        event_id, event_type, occurred_at = get("event_id"), get("event_type"), get("occurred_at")
        if not _event_id_ok(event_id) or type(event_type) is not str or event_type not in _CLAIM_TYPES:
            return None
        if type(occurred_at) is not int or not EARLIEST_OCCURRED_AT_MS <= occurred_at <= self._latest:
            return None
        branch_code, claim_id, agreement_id = get("branch_code"), get("claim_id"), get("agreement_id")
        if not (_code_ok(branch_code) and _code_ok(claim_id)):
            return None
        if agreement_id is not None and not _code_ok(agreement_id):
            return None
        worker = self._worker(get("nik"))
        programme = _PROGRAMME_VALUES.get(get("programme"))
        incident, claimed, paid = get("incident_date"), get("amount_claimed"), get("amount_paid")
        if worker is None or programme is None or type(incident) is not date:
            return None
        if incident > report_date(occurred_at) or type(claimed) is not int or claimed < 0:
            return None
        if paid is None:
            if event_type == "PAID":
                return None
        elif type(paid) is not int or event_type != "PAID" or paid < 0:
            return None
        return ClaimRow(
            event_id,
            event_type,
            occurred_at,
            branch_code,
            claim_id,
            worker[0],
            worker[1],
            agreement_id,
            programme,
            incident,
            claimed,
            paid,
            topic,
            partition,
            offset,
            fp,
            version,
        )
