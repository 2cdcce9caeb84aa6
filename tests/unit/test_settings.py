"""Settings: sources in the documented priority, one-line errors that name the fix, secrets hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from recon.errors import ConfigError
from recon.settings import Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "recon.toml"
    config.write_text('batch_max_records = 10\nconsumer_group = "from-file"\ntopic_claims = "file-claims"\n')
    monkeypatch.setenv("RECON_BATCH_MAX_RECORDS", "20")
    monkeypatch.setenv("RECON_CONSUMER_GROUP", "from-env")

    settings = load_settings(config_file=config, overrides={"consumer_group": "from-flag"})

    assert settings.topic_claims == "file-claims"
    assert settings.batch_max_records == 20
    assert settings.consumer_group == "from-flag"


def test_a_bad_value_is_one_line_naming_the_setting_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_KAFKA_BOOTSTRAP_SERVERS", "localhost")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("RECON_KAFKA_BOOTSTRAP_SERVERS: must be host:port")
    assert "--kafka-bootstrap-servers" in message


def test_unknown_settings_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "recon.toml"
    config.write_text("batch_max_record = 10\n")

    with pytest.raises(ConfigError, match="unknown setting 'batch_max_record'"):
        load_settings(config_file=config)


def test_a_missing_or_broken_config_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist: pass an existing TOML file to --config"):
        load_settings(config_file=tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("batch_max_records = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(config_file=broken)


def test_secrets_never_show_in_reprs_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", "postgresql+psycopg://recon:s3cret-pw@db/recon")
    monkeypatch.setenv("RECON_NIK_HASH_KEY", "a-very-secret-hashing-key")

    settings = load_settings()

    assert "s3cret-pw" not in repr(settings) and "a-very-secret" not in repr(settings)
    monkeypatch.setenv("RECON_NIK_HASH_KEY", "tiny-k3y")
    with pytest.raises(ConfigError) as raised:
        load_settings().nik_key_bytes()
    assert "tiny-k3y" not in str(raised.value) and "RECON_NIK_HASH_KEY" in str(raised.value)


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert documented == set(Settings.model_fields)


def test_the_key_chain_is_the_first_key_then_the_rotations_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_NIK_HASH_KEY", "the-first-hashing-key-0001")
    assert load_settings().nik_key_chain() == (b"the-first-hashing-key-0001",)
    monkeypatch.setenv("RECON_NIK_HASH_KEY_ROTATIONS", "")
    assert load_settings().nik_key_chain() == (b"the-first-hashing-key-0001",)
    monkeypatch.setenv("RECON_NIK_HASH_KEY_ROTATIONS", "second-hashing-key-0002, third-hashing-key-0003")
    assert load_settings().nik_key_chain() == (
        b"the-first-hashing-key-0001",
        b"second-hashing-key-0002",
        b"third-hashing-key-0003",
    )


@pytest.mark.parametrize("rotations", ["second-hashing-key-0002,tiny-k3y", "second-hashing-key-0002,,x"])
def test_a_short_or_empty_rotation_key_is_one_line_without_the_secret(
    rotations: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_NIK_HASH_KEY", "the-first-hashing-key-0001")
    monkeypatch.setenv("RECON_NIK_HASH_KEY_ROTATIONS", rotations)
    settings = load_settings()
    assert "second-hashing" not in repr(settings)
    with pytest.raises(ConfigError) as raised:
        settings.nik_key_chain()
    message = str(raised.value)
    assert "\n" not in message and message.startswith("RECON_NIK_HASH_KEY_ROTATIONS: key 2 of")
    assert "tiny-k3y" not in message and "second-hashing" not in message


def test_the_chain_needs_the_first_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECON_NIK_HASH_KEY", raising=False)
    monkeypatch.setenv("RECON_NIK_HASH_KEY_ROTATIONS", "second-hashing-key-0002")
    with pytest.raises(ConfigError, match="RECON_NIK_HASH_KEY is not set"):
        load_settings().nik_key_chain()


# --- the PostgreSQL password kept out of the URL ---

PG_URL = "postgresql+psycopg://recon@db.internal:5432/recon"


def test_the_password_file_goes_into_the_url_only_when_connecting(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("p@ss:w/rd%1\n")  # `echo` adds the line end; the URL characters need escaping
    settings = Settings(database_url=PG_URL, database_password_file=secret)

    url = make_url(settings.database_url_with_password())

    assert url.password == "p@ss:w/rd%1"
    assert (url.username, url.host, url.port, url.database) == ("recon", "db.internal", 5432, "recon")
    assert settings.database_url.get_secret_value() == PG_URL  # the setting itself stays password-free


def test_the_password_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", PG_URL)
    monkeypatch.setenv("RECON_DATABASE_PASSWORD", "env-s3cret")

    assert make_url(load_settings().database_url_with_password()).password == "env-s3cret"


def test_without_a_separate_password_the_url_is_used_as_it_is() -> None:
    with_password = "postgresql+psycopg://recon:in-url@db/recon"

    assert Settings(database_url=with_password).database_url_with_password() == with_password
    assert Settings().database_url_with_password() == "sqlite:///recon.db"


def test_a_missing_password_file_is_one_line_naming_the_setting_and_the_fix(tmp_path: Path) -> None:
    settings = Settings(database_url=PG_URL, database_password_file=tmp_path / "absent")

    with pytest.raises(ConfigError) as raised:
        settings.database_url_with_password()

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"RECON_DATABASE_PASSWORD_FILE {tmp_path / 'absent'} cannot be read")
    assert "point it at a readable file" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"database_password": "x-s3cret", "database_password_file": "FILE"}, "keep one"),
        ({"database_url": "postgresql+psycopg://recon:url-s3cret@db/recon"}, "remove the password from"),
        ({"database_url": "sqlite:///recon.db"}, "unset the password"),
        ({"database_password_file": "EMPTY"}, "empty password"),
    ],
)
def test_conflicting_or_empty_passwords_are_refused_without_printing_them(
    tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    (tmp_path / "file").write_text("file-s3cret")
    (tmp_path / "empty").write_text("\n")
    values = {"database_url": PG_URL, "database_password_file": "FILE", **fields}
    values["database_password_file"] = str(tmp_path / values["database_password_file"].lower())
    settings = Settings(**values)  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=expected) as raised:
        settings.database_url_with_password()

    assert "s3cret" not in str(raised.value) and "\n" not in str(raised.value)


def test_the_library_log_interval_defaults_to_30_s_and_refuses_a_negative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().library_log_interval_seconds == 30.0
    monkeypatch.setenv("RECON_LIBRARY_LOG_INTERVAL_SECONDS", "0")
    assert load_settings().library_log_interval_seconds == 0  # every line
    monkeypatch.setenv("RECON_LIBRARY_LOG_INTERVAL_SECONDS", "-1")

    with pytest.raises(
        ConfigError, match=r"^RECON_LIBRARY_LOG_INTERVAL_SECONDS: .*greater than or equal to 0"
    ):
        load_settings()
