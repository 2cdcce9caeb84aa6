"""`recon agreements load FILE`: agreements from a file straight into the ledger, all or nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from factories import agreement_record
from recon.ledger import Ledger, create_engine_for, upgrade
from support import run_recon, service_env


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=lambda v: v.isoformat() if isinstance(v, date) else v)


def test_valid_file_is_stored_and_a_higher_version_replaces_the_lower(
    tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    env = service_env({}, sqlite_url)
    first = tmp_path / "v1.jsonl"
    first.write_text(
        "\n".join(
            _line(agreement_record(agreement_id=a, quota_workers=100, ramp=[])) for a in ("PKS-A", "PKS-B")
        )
    )
    amended = tmp_path / "v2.jsonl"
    amended.write_text(_line(agreement_record(agreement_id="PKS-A", version=2, quota_workers=150, ramp=[])))

    assert "2 agreements read, 2 stored" in run_recon(env, "agreements", "load", str(first)).stdout
    assert "1 agreements read, 1 stored" in run_recon(env, "agreements", "load", str(amended)).stdout
    assert "2 agreements read, 0 stored" in run_recon(env, "agreements", "load", str(first)).stdout

    stored = Ledger(create_engine_for(sqlite_url)).agreements()
    assert {a: (s.version, s.quota_workers) for a, s in stored.items()} == {
        "PKS-A": (2, 150),
        "PKS-B": (1, 100),
    }


def test_one_refused_line_stores_nothing_and_names_line_and_reason(tmp_path: Path, sqlite_url: str) -> None:
    upgrade(sqlite_url)
    path = tmp_path / "bad.jsonl"
    path.write_text(
        _line(agreement_record(agreement_id="PKS-OK"))
        + "\n"
        + _line(agreement_record(agreement_id="PKS-BAD", region_code="7299"))
        + "\n"
    )

    result = run_recon(service_env({}, sqlite_url), "agreements", "load", str(path))

    assert result.returncode == 1
    assert "line 2: region_code_invalid" in result.stderr and "nothing stored" in result.stderr
    assert Ledger(create_engine_for(sqlite_url)).agreements() == {}
