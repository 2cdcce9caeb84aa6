"""`recon publish` against the real broker, from a file and from stdin."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

from factories import enrolment_record, valid_nik
from support import RECON, REPO, consume_all, service_env


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=lambda v: v.isoformat() if isinstance(v, date) else v)


def _recent(**overrides: Any) -> dict[str, Any]:
    """An enrolment that passes validation against today's clock (the CLI validates with real time)."""
    return enrolment_record(occurred_at=1_767_225_600_000, coverage_start=date(2026, 1, 1), **overrides)


def test_publish_file_sends_valid_lines_and_lists_refused_ones(topic_names: Any, tmp_path: Path) -> None:
    path = tmp_path / "enrolments.jsonl"
    records = [_recent(nik=valid_nik(serial=i)) for i in range(1, 4)]
    path.write_text("\n".join([*map(_line, records), _line(_recent(nik="12345"))]) + "\n")
    env = service_env(topic_names.overrides(), "sqlite:///unused.db")

    result = subprocess.run(
        [*RECON, "publish", "--subject", "enrolment", str(path)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )

    assert result.returncode == 1
    assert "3 records sent" in result.stdout and "1 refused" in result.stdout
    assert "line 4: nik_format" in result.stderr and "12345" not in result.stderr
    sent = consume_all(topic_names.bootstrap, topic_names.enrolments, expect=3)
    assert sorted(r.key for r in sent) == sorted(r["nik"].encode() for r in records)


def test_publish_reads_stdin_and_exits_zero_when_all_lines_are_sent(topic_names: Any) -> None:
    env = service_env(topic_names.overrides(), "sqlite:///unused.db")
    lines = "\n".join(_line(_recent(nik=valid_nik(serial=i))) for i in range(10, 15))

    result = subprocess.run(
        [*RECON, "publish", "--subject", "enrolment", "-"],
        input=lines,
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert len(consume_all(topic_names.bootstrap, topic_names.enrolments, expect=5)) == 5


def test_unknown_subject_is_a_one_line_error_naming_the_choices(topic_names: Any) -> None:
    env = service_env(topic_names.overrides(), "sqlite:///unused.db")

    result = subprocess.run(
        [*RECON, "publish", "--subject", "enrollment", "-"],
        input="",
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "enrolment, claim, agreement" in result.stderr
