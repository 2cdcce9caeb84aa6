"""No raw NIK and no worker's name anywhere a full run leaves traces (UU 27/2022 on personal data).

A realistic small run on the real broker: two agreements (one worker funded twice), 200 enrolments
with payments and terminations, claims that raise alerts (a JKM claim for the wrong amount, a claim
for a worker never covered), an over-quota agreement, branch totals that disagree, and malformed and
domain-invalid messages. `recon ingest` and `recon reconcile` run as processes; then every trace is
searched for each raw NIK used (valid or not, and its 12-digit prefix) and for the names carried in
free text (`termination_reason`, the one field where a producer might write one):

- the services' logs (stderr and stdout) and every command's output (`recon status`, `recon alerts`,
  `recon dlq summary|list`, as tables and JSON);
- what the services serve over HTTP while they run: `/metrics`, `/healthz`, `/readyz`, and the
  reconciler's status page;
- every column of every ledger table, all rows as text;
- the alerts topic (keys, decoded values, headers) and the dead-letter topic's headers.

One place holds them on purpose, and only that one: a dead letter keeps the refused message's
original key and value (the NIK is the Kafka key of enrolments and claims), both on the dead-letter
topic and in the ledger's outbox row that publishes it (see ALLOWED below). The ledger does not keep
`termination_reason`, the free text a branch could fill with a name.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import Engine

from conftest import free_ports
from factories import (
    agreement_record,
    branch_totals_record,
    claim_record,
    contribution_record,
    enrolment_record,
    valid_nik,
)
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from recon.ledger.tables import outbox
from recon.settings import load_settings
from support import RECON, REPO, consume_all, produce, run_recon, service_env

NOW = datetime.now(UTC)
NOW_MS = int(NOW.timestamp() * 1000)
TODAY = NOW.date()  # UTC; the service's local date (UTC+8) is the same or one day later
MONTH_START = TODAY.replace(day=1)
PALU, PROVINCE = "PKS-7271-PD", "PKS-72-PD"
DECEASED = "Budi Santoso"  # named in a valid TERMINATED event's termination_reason
CLERK = "Siti Aminah"  # named in refused events' termination_reason
ALLOWED = {
    # A dead letter keeps the original bytes (the key is the NIK): the outbox row that publishes it.
    ("outbox.key", "dead_letter"),
    ("outbox.value", "dead_letter"),
}


@dataclass(slots=True)
class Scenario:
    messages: dict[str, list[tuple[bytes | None, bytes | None]]] = field(default_factory=dict)
    niks: set[str] = field(default_factory=set)

    def add(self, topic: str, key: bytes | None, value: bytes | None, nik: str | None = None) -> None:
        self.messages.setdefault(topic, []).append((key, value))
        if nik is not None:
            self.niks.add(nik)

    def needles(self) -> dict[str, str]:
        """Label -> text to look for: every NIK, its 12-digit prefix (region + birth date), the names."""
        found = {DECEASED: DECEASED, CLERK: CLERK}
        for i, nik in enumerate(sorted(self.niks)):
            found[f"NIK #{i} ({nik[:4]}…)"] = nik
            found[f"12-digit prefix of NIK #{i} ({nik[:4]}…)"] = nik[:12]
        return found


def _nik(i: int, region: str = "7271") -> str:
    return valid_nik(region, female=i % 2 == 0, serial=i, district=f"{1 + i % 20:02d}")


def build_scenario(catalogue: SchemaCatalogue, topics: Any) -> Scenario:
    s = Scenario()
    enc = catalogue.encode
    at = NOW_MS - 3_600_000
    year = dict(period_start=date(TODAY.year, 1, 1), period_end=date(TODAY.year, 12, 31), ramp=[])
    palu = agreement_record(agreement_id=PALU, quota_workers=100, budget_rupiah=10**12, **year)
    province = agreement_record(
        agreement_id=PROVINCE,
        funder_name="Pemprov Sulawesi Tengah",
        funder_level="PROVINCE",
        region_code="72",
        budget_source="APBD_P",
        quota_workers=1000,
        budget_rupiah=10**12,
        **year,
    )
    for record in (palu, province):
        s.add(topics.agreements, record["agreement_id"].encode(), enc("agreement", record))

    def enrol(nik: str, agreement: str, **fields: Any) -> None:
        record = enrolment_record(
            nik=nik, agreement_id=agreement, occurred_at=at, coverage_start=MONTH_START, **fields
        )
        s.add(topics.enrolments, nik.encode(), enc("enrolment", record), nik)

    # 130 workers under Palu (over its quota of 100), 5 of them with a Morowali NIK (region mismatch);
    # 60 more under the province, and 10 of Palu's funded by the province too (double funding).
    palu_workers = [_nik(i) for i in range(1, 126)] + [_nik(i, "7206") for i in range(126, 131)]
    for nik in palu_workers:
        enrol(nik, PALU)
    for nik in [_nik(i) for i in range(131, 191)] + palu_workers[:10]:
        enrol(nik, PROVINCE, branch_code="SULTENG")
    month = MONTH_START.strftime("%Y-%m")
    for nik in palu_workers[:100]:
        record = contribution_record(
            months=(month,), nik=nik, agreement_id=PALU, occurred_at=at, coverage_start=MONTH_START
        )
        s.add(topics.enrolments, nik.encode(), enc("enrolment", record), nik)
    for nik in palu_workers[120:125]:
        enrol(nik, PALU, event_type="TERMINATED", termination_reason=f"Meninggal dunia: almarhum {DECEASED}")

    # Claims: the deceased's JKM claim for the wrong amount; a JKK claim through to payment; a claim
    # for someone never covered.
    deceased = palu_workers[120]
    claims = [
        (deceased, dict(claim_id="KLM-PALU-JKM-1", programme="JKM", amount_claimed=30_000_000)),
        (palu_workers[4], dict(claim_id="KLM-PALU-JKK-1")),
        (palu_workers[4], dict(claim_id="KLM-PALU-JKK-1", event_type="APPROVED")),
        (palu_workers[4], dict(claim_id="KLM-PALU-JKK-1", event_type="PAID", amount_paid=5_000_000)),
        (_nik(199), dict(claim_id="KLM-PALU-JKK-2")),
    ]
    for nik, fields in claims:
        record = claim_record(nik=nik, agreement_id=PALU, occurred_at=at, incident_date=TODAY - timedelta(1))
        record.update(fields)
        s.add(topics.claims, nik.encode(), enc("claim", record), nik)
    totals = branch_totals_record(agreement_id=PALU, active_workers=400, occurred_at=at, as_of=TODAY)
    s.add(topics.branch_totals, f"PALU/{PALU}".encode(), enc("branch-totals", totals))

    # Refused: undecodable bytes, and events breaking domain rules (each with its own NIK).
    good = enc("enrolment", enrolment_record(nik=_nik(200), occurred_at=at))
    s.niks.add(_nik(200))
    for value in (b"\x00garbage", good[:-3], good + b"\x00", enc("claim", claim_record(nik=_nik(200)))):
        s.add(topics.enrolments, _nik(200).encode(), value)
    bad_enrolments = [
        ("7271013206900001", {}),  # nik_birth_date: day 32
        ("727101150690001", {}),  # nik_format: 15 digits
        ("9901011506900001", {}),  # nik_region_unknown
        ("7271011506900000", {}),  # nik_serial
        (_nik(201), dict(termination_reason=f"Pindah kerja, dicatat oleh {CLERK}")),  # not TERMINATED
        (_nik(202), dict(event_type="TERMINATED", termination_reason=f"{CLERK} " * 30)),  # too long
        (_nik(203), dict(coverage_end=MONTH_START - timedelta(1))),  # date_order
    ]
    for nik, fields in bad_enrolments:
        enrol(nik, PALU, **fields)
    bad_claim = claim_record(nik="7271017306900001", agreement_id=PALU, occurred_at=at, incident_date=TODAY)
    s.add(topics.claims, b"7271017306900001", enc("claim", bad_claim), "7271017306900001")
    return s


# --- collecting the traces ------------------------------------------------------------------------


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:  # a 503 from /readyz still has a body worth reading
        return str(exc.read().decode("utf-8", "replace"))
    except OSError:  # not listening yet, or already gone
        return None


def run_service(
    env: Mapping[str, str], command: str, port: int, paths: Iterable[str], logs: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run `recon <command> --idle-exit 2`, fetching ``paths`` from its HTTP port until it exits.

    Returns the finished process (stdout and stderr as text) and the last body served per path.
    """
    out, err = logs / f"{command}.out", logs / f"{command}.err"
    served: dict[str, str] = {}
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*RECON, command, "--idle-exit", "2"], env=dict(env), stdout=stdout, stderr=stderr, cwd=REPO
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            for path in paths:
                body = _get(f"http://127.0.0.1:{port}{path}")
                if body:
                    served[path] = body
            time.sleep(0.25)
        proc.wait(timeout=10)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
    return result, served


def database_cells(engine: Engine) -> Iterable[tuple[str, str | None, str]]:
    """(table.column, outbox kind or None, text) for every non-null cell of every table."""
    names = inspect(engine).get_table_names()
    assert "enrolment_events" in names and "outbox" in names, names
    with engine.connect() as conn:
        for table_name in names:
            table = Table(table_name, MetaData(), autoload_with=conn)
            for row in conn.execute(select(table)).mappings():
                kind = row.get("kind") if table_name == "outbox" else None
                for column, value in row.items():
                    if value is not None:
                        yield f"{table_name}.{column}", kind, _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")  # every byte is one character: ASCII digits stay findable
    return str(value)


def find(needles: Mapping[str, str], where: str, text: str) -> list[str]:
    lowered = text.lower()
    return [f"{label} in {where}" for label, needle in needles.items() if needle.lower() in lowered]


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_postgres_url")
    upgrade(url)
    return url


def test_no_raw_nik_or_name_in_any_trace_of_a_full_run(
    topic_names: Any, database_url: str, tmp_path: Path
) -> None:
    catalogue = SchemaCatalogue.load(load_settings().schemas_dir)
    scenario = build_scenario(catalogue, topic_names)
    for topic, messages in scenario.messages.items():
        produce(topic_names.bootstrap, topic, messages)
    ingest_port, reconcile_port = free_ports(2)
    env = service_env(
        topic_names.overrides(),
        database_url,
        ingest_http_port=ingest_port,
        reconcile_http_port=reconcile_port,
        reconcile_full_pass_seconds=1,
    )
    needles = scenario.needles()
    assert len(scenario.niks) >= 200
    texts: dict[str, str] = {}

    probes = ("/metrics", "/healthz", "/readyz")
    ingest, ingest_http = run_service(env, "ingest", ingest_port, probes, tmp_path)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    reconcile, reconcile_http = run_service(env, "reconcile", reconcile_port, (*probes, "/"), tmp_path)
    assert reconcile.returncode == 0, reconcile.stderr[-2000:]
    for name, proc in (("ingest", ingest), ("reconcile", reconcile)):
        texts[f"`recon {name}` stderr (logs)"] = proc.stderr
        texts[f"`recon {name}` stdout"] = proc.stdout
    assert "batch committed" in ingest.stderr, "the ingest logged its batches"
    refusals = [json.loads(line) for line in ingest.stderr.splitlines() if "message dead-lettered" in line]
    assert {"nik_birth_date", "nik_format"} <= {r["reason_code"] for r in refusals}, "each refusal is logged"
    assert all({"topic", "partition", "offset", "error_kind"} <= r.keys() for r in refusals)
    for name, served, paths in (
        ("ingest", ingest_http, probes),
        ("reconcile", reconcile_http, (*probes, "/")),
    ):
        assert set(served) == set(paths), (
            f"`recon {name}` did not serve {set(paths) - set(served)} on its port"
        )
        texts.update({f"`recon {name}` HTTP {path}": body for path, body in served.items()})
    # scraped after the work: the labelled series are there
    assert 'reason_code="nik_birth_date"' in ingest_http["/metrics"]
    assert f'recon_agreement_active_workers{{agreement_id="{PALU}"}}' in reconcile_http["/metrics"]
    assert PALU in reconcile_http["/"], "the status page shows the agreements"

    commands = [
        ("status", "--format", "json"),
        ("status",),
        ("alerts", "--all", "--format", "json"),
        ("alerts", "--all"),
        ("dlq", "summary"),
        ("dlq", "summary", "--format", "json"),
        ("dlq", "list", "--limit", "0"),
        ("dlq", "list", "--limit", "0", "--format", "json"),
    ]
    outputs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:  # read-only commands: run them side by side
        results = list(pool.map(lambda args: run_recon(env, *args), commands))
    for args, result in zip(commands, results, strict=True):
        assert result.returncode == 0, (args, result.stderr[-2000:])
        outputs[args] = result.stdout
        texts[f"`recon {' '.join(args)}` stdout"] = result.stdout
        texts[f"`recon {' '.join(args)}` stderr"] = result.stderr

    # The run did what the scenario says, so the search below looks at real traces.
    rules = {alert["rule"] for alert in json.loads(outputs[("alerts", "--all", "--format", "json")])}
    assert {"over_quota", "double_funding", "jkm_amount", "claim_outside_coverage"} <= rules, rules
    assert {row["agreement_id"] for row in json.loads(outputs[("status", "--format", "json")])} >= {
        PALU,
        PROVINCE,
    }
    dead_reasons = {row["reason_code"] for row in json.loads(outputs[("dlq", "summary", "--format", "json")])}
    assert {"nik_birth_date", "nik_format", "termination_reason_unexpected", "malformed"} <= dead_reasons

    alerts = consume_all(topic_names.bootstrap, topic_names.alerts, expect=len(rules))
    assert alerts, "alerts were published"
    for r in alerts:
        where = f"alerts topic {r.partition}/{r.offset}"
        texts[f"{where} key"] = _as_text(r.key or b"")
        texts[f"{where} value"] = json.dumps(catalogue.decode(r.value, "alert").record, default=str)
        texts[f"{where} headers"] = repr(r.headers)

    dead = consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=len(dead_reasons))
    for r in dead:
        texts[f"dead-letter {r.partition}/{r.offset} headers"] = repr(r.headers)
    # A positive control: the search finds a NIK where one legitimately is.
    assert find(needles, "dead-letter values", " ".join(_as_text(r.value or b"") for r in dead))

    leaks = [hit for where, text in texts.items() for hit in find(needles, where, text)]
    engine = create_engine(database_url)
    allowed_hits = []
    try:
        for column, kind, text in database_cells(engine):
            hits = find(needles, f"ledger {column}" + (f" ({kind})" if kind else ""), text)
            if (column, kind) in ALLOWED or (column, None) in ALLOWED:
                allowed_hits.extend(hits)
            else:
                leaks.extend(hits)
        with engine.connect() as conn:
            kinds = {row[0] for row in conn.execute(select(outbox.c.kind))}
    finally:
        engine.dispose()
    assert kinds == {"dead_letter", "alert"}, "both kinds of outbox rows were scanned"
    assert any("outbox.key" in hit for hit in allowed_hits), "the ledger scan sees the dead letters' bytes"

    assert not leaks, "raw personal data found:\n" + "\n".join(sorted(set(leaks)))
