"""Secrets are never printed: not in help texts, not in the settings' reprs or JSON, not in errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import recon.cli
from recon.cli import app
from recon.settings import load_settings

SECRETS = {
    "RECON_KAFKA_SASL_PASSWORD": "kafka-s3cret-pw",
    "RECON_DATABASE_PASSWORD": "db-env-s3cret-pw",
    "RECON_NIK_HASH_KEY": "nik-hashing-s3cret-key",
    "RECON_DATABASE_URL": "postgresql+psycopg://recon:url-s3cret-pw@127.0.0.1:1/recon",
}
FILE_PASSWORD = "db-file-s3cret-pw"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECON_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RECON_KAFKA_SASL_USERNAME", "recon")
    yield


def _leaks(text: str) -> list[str]:
    return [value for value in [*SECRETS.values(), FILE_PASSWORD] if value in text]


def _command_paths() -> list[tuple[str, ...]]:
    recon.cli._register()
    paths: list[tuple[str, ...]] = [()]

    def walk(command: Any, path: tuple[str, ...]) -> None:
        # typer may bring its own copy of click: a group is whatever has sub-commands
        for name, sub in getattr(command, "commands", {}).items():
            paths.append((*path, name))
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda path: " ".join(path) or "recon")
def test_help_shows_no_secret_even_when_the_environment_holds_them(
    secret_env: None, path: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert _leaks(result.output) == []


def test_every_command_has_its_help_checked() -> None:
    names = {" ".join(path) for path in _command_paths()}

    assert {"", "ingest", "publish", "db", "db upgrade", "broker start"} <= names


def test_settings_repr_str_and_json_hide_every_secret(secret_env: None, tmp_path: Path) -> None:
    settings = load_settings()
    password_file = tmp_path / "password"
    password_file.write_text(FILE_PASSWORD)
    from_file = settings.model_copy(
        update={"database_password": None, "database_password_file": password_file}
    )

    for each in (settings, from_file):
        for text in (repr(each), str(each), each.model_dump_json(), repr(each.model_dump())):
            assert _leaks(text) == []
    # the secrets are there for whoever asks for them explicitly
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == SECRETS["RECON_KAFKA_SASL_PASSWORD"]


def _run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """`recon ARGS` in this process, as the console script runs it: exit code and everything printed."""
    monkeypatch.setattr(sys, "argv", ["recon", *args])
    with pytest.raises(SystemExit) as exited:
        recon.cli.main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_a_refused_database_url_with_a_password_is_one_line_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", "mysql://recon:url-s3cret-pw@db/recon")

    code, output = _run_cli(monkeypatch, capsys, "db", "current")

    assert code == 2
    assert output.strip().count("\n") == 0 and output.startswith("recon: RECON_DATABASE_URL ")
    assert "recon:***@db" in output and _leaks(output) == []


@pytest.mark.parametrize("source", ["url", "file"])
def test_an_unreachable_database_is_one_line_that_masks_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, source: str
) -> None:
    # Port 1 on loopback refuses at once: the error path, with no server needed.
    if source == "url":
        monkeypatch.setenv("RECON_DATABASE_URL", SECRETS["RECON_DATABASE_URL"])
    else:
        (tmp_path / "password").write_text(FILE_PASSWORD)
        monkeypatch.setenv("RECON_DATABASE_URL", "postgresql+psycopg://recon@127.0.0.1:1/recon")
        monkeypatch.setenv("RECON_DATABASE_PASSWORD_FILE", str(tmp_path / "password"))

    code, output = _run_cli(monkeypatch, capsys, "db", "upgrade")

    assert code != 0
    assert output.strip().count("\n") == 0 and output.startswith("recon: database at ")
    assert "recon:***@127.0.0.1:1/recon" in output and _leaks(output) == []


def test_a_refused_login_and_an_unreachable_broker_are_lines_without_the_password(secret_env: None) -> None:
    import ssl

    from kafka.errors import KafkaTimeoutError, SaslAuthenticationFailedError

    from recon.errors import PermanentFault
    from recon.kafka.clients import _refusal_message
    from recon.retry import broker_call

    settings = load_settings()
    refused = [
        _refusal_message(settings, cause) for cause in (SaslAuthenticationFailedError(), ssl.SSLError())
    ]

    def unreachable() -> None:
        raise KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:1']")

    with pytest.raises(PermanentFault) as raised:
        broker_call("connect a producer to Kafka", unreachable, budget_seconds=0)

    for line in [*refused, str(raised.value)]:
        assert "\n" not in line and not _leaks(line), line
    assert "user 'recon'" in refused[0] and "127.0.0.1:1" in str(raised.value)
