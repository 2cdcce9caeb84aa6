"""The one settings object, built once at start.

Sources, in rising priority: defaults, a TOML config file (``--config`` or ``RECON_CONFIG_FILE``),
environment variables prefixed ``RECON_``, and command-line flags. Nothing here connects to anything.

Usage::

    settings = load_settings(config_file=None, overrides={"batch_max_records": 500})
    settings.database_url
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from recon.domain.config import DomainConfig
from recon.domain.worker_key import MIN_KEY_BYTES
from recon.errors import ConfigError

ENV_PREFIX = "RECON_"
_REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


class Settings(BaseSettings):
    """Every knob of the service. Field ``x`` is ``RECON_X`` in the environment and ``x`` in the file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # --- Kafka ---
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    consumer_group: str = Field("rentan-recon-ingest", min_length=1)
    topic_enrolments: str = Field("enrolments", min_length=1)
    topic_claims: str = Field("claims", min_length=1)
    topic_agreements: str = Field("agreements", min_length=1)
    topic_branch_totals: str = Field("branch-totals", min_length=1)
    topic_alerts: str = Field("coverage-alerts", min_length=1)
    topic_dead_letters: str = Field("dead-letters", min_length=1)
    topic_partitions: int = Field(6, ge=1, le=1000)

    # --- Store ---
    database_url: SecretStr = SecretStr("sqlite:///recon.db")
    # The PostgreSQL password kept out of the URL: a file (a mounted Kubernetes secret) or a value.
    database_password_file: Path | None = None
    database_password: SecretStr | None = None

    # --- Workers' identity ---
    nik_hash_key: SecretStr | None = None
    # The keys of later rotations (`recon keys rotate`), oldest first, comma-separated.
    nik_hash_key_rotations: SecretStr | None = None

    # --- Ingest loop ---
    batch_max_records: int = Field(5000, ge=1, le=100_000)
    poll_timeout_seconds: float = Field(1.0, gt=0, le=60)
    # Batches decoded and validated while an earlier one is being written (docs/architecture.md).
    ingest_write_queue_depth: int = Field(2, ge=1, le=16)
    # Where batches are written: a child process (no GIL shared with the loop) or the writer thread.
    ingest_writer: Literal["process", "thread"] = "process"
    dlq_guard_window: int = Field(1000, ge=10)
    dlq_guard_min_messages: int = Field(100, ge=1)
    dlq_guard_max_ratio: float = Field(0.5, gt=0, le=1)
    retry_budget_seconds: float = Field(60.0, ge=0)
    # The kafka library's log lines: one per cause per interval, then a count (0: every line).
    library_log_interval_seconds: float = Field(30.0, ge=0)
    max_message_bytes: int = Field(1_000_000, ge=1024)

    # --- HTTP (/metrics, /healthz, /readyz; the status page on reconcile); port 0 turns it off ---
    http_host: str = "127.0.0.1"
    ingest_http_port: int = Field(9464, ge=0, le=65535)
    reconcile_http_port: int = Field(9465, ge=0, le=65535)
    stall_after_seconds: float = Field(120.0, gt=0)

    # --- Reconcile loop ---
    reconcile_interval_seconds: float = Field(0.5, gt=0, le=60)
    reconcile_full_pass_seconds: float = Field(60.0, gt=0)
    utc_offset_minutes: int = Field(480, ge=-720, le=840)  # WITA (Sulawesi); dates of events and due days
    # Alert thresholds: a "default" table and one per agreement id (names: docs/reconciliation.md).
    alert_thresholds: dict[str, dict[str, int | float]] = Field(default_factory=dict)

    # --- Files ---
    schemas_dir: Path = _REPO_SCHEMAS
    broker_home: Path = Path(".recon/broker")

    # --- Domain rules (Permenaker 5/2021 and its amendments): configuration, not code. The premium
    # itself is per agreement (its monthly_premium_rupiah), as each PKS fixes it. ---
    contribution_due_day: int = Field(15, ge=1, le=28)
    lapse_after_unpaid_months: int = Field(3, ge=1, le=24)
    max_months_per_payment: int = Field(12, ge=1, le=120)
    jkm_benefit_rupiah: int = Field(42_000_000, ge=0)
    jkk_claim_expiry_years: int = Field(5, ge=1, le=50)
    max_clock_skew_hours: int = Field(24, ge=0)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError("must be host:port[,host:port…], e.g. 127.0.0.1:9092")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # toml_file is set only on the subclass load_settings makes for a config file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def domain(self) -> DomainConfig:
        """The plain-value rules the pure domain code takes."""
        return DomainConfig(
            contribution_due_day=self.contribution_due_day,
            lapse_after_unpaid_months=self.lapse_after_unpaid_months,
            max_months_per_payment=self.max_months_per_payment,
            jkm_benefit_rupiah=self.jkm_benefit_rupiah,
            jkk_claim_expiry_years=self.jkk_claim_expiry_years,
            max_clock_skew_hours=self.max_clock_skew_hours,
        )

    def data_topics(self) -> tuple[str, str, str, str]:
        """The four topics ingest consumes."""
        return (self.topic_enrolments, self.topic_claims, self.topic_agreements, self.topic_branch_totals)

    def database_url_with_password(self) -> str:
        """The URL to connect with: ``database_url`` with the password from ``database_password_file``
        or ``database_password`` put in, or a ConfigError naming the fix. Print only its redacted form."""
        url = self.database_url.get_secret_value()
        password = self._database_password()
        if password is None:
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            return url  # create_engine_for says what is wrong with it, password masked
        if parsed.get_backend_name() != "postgresql":
            raise ConfigError(
                f"{ENV_PREFIX}DATABASE_PASSWORD(_FILE) is set but {ENV_PREFIX}DATABASE_URL is not "
                "PostgreSQL: unset the password, or point the URL at postgresql+psycopg://USER@HOST:PORT/DB"
            )
        if parsed.password is not None:
            raise ConfigError(
                f"{ENV_PREFIX}DATABASE_URL carries a password and {ENV_PREFIX}DATABASE_PASSWORD(_FILE) is "
                "set too: remove the password from the URL (postgresql+psycopg://USER@HOST:PORT/DB)"
            )
        return parsed.set(password=password).render_as_string(hide_password=False)

    def _database_password(self) -> str | None:
        """The password from the file or the environment; never both, never empty."""
        if self.database_password_file is not None and self.database_password is not None:
            raise ConfigError(
                f"both {ENV_PREFIX}DATABASE_PASSWORD_FILE and {ENV_PREFIX}DATABASE_PASSWORD are set: "
                "keep one (the file, for a mounted secret)"
            )
        if self.database_password is not None:
            value, source = self.database_password.get_secret_value(), f"{ENV_PREFIX}DATABASE_PASSWORD"
        elif self.database_password_file is not None:
            value, source = (
                _read_secret_file(self.database_password_file),
                f"{ENV_PREFIX}DATABASE_PASSWORD_FILE",
            )
        else:
            return None
        if not value:
            raise ConfigError(f"{source} gives an empty password: put the password there, or unset it")
        return value

    def nik_key_bytes(self) -> bytes:
        """The secret that hashes NIKs, or a ConfigError naming the fix."""
        if self.nik_hash_key is None or len(self.nik_hash_key.get_secret_value()) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{ENV_PREFIX}NIK_HASH_KEY is not set or shorter than {MIN_KEY_BYTES} characters: set it to "
                "a long random secret (e.g. `openssl rand -hex 32`) in the environment or the config file"
            )
        return self.nik_hash_key.get_secret_value().encode()

    def nik_key_chain(self) -> tuple[bytes, ...]:
        """The key chain that hashes NIKs (first key, then each rotation's), or a ConfigError.

        The ledger holds keys hashed under the whole chain (recon.domain.worker_key), so every key
        is needed, in order; the services compare the chain with the ledger's record at start.
        """
        first = self.nik_key_bytes()
        text = "" if self.nik_hash_key_rotations is None else self.nik_hash_key_rotations.get_secret_value()
        later = [part.strip() for part in text.split(",")] if text.strip() else []
        for n, key in enumerate(later, start=1):
            if len(key) < MIN_KEY_BYTES:  # never the value: it is a secret
                raise ConfigError(
                    f"{ENV_PREFIX}NIK_HASH_KEY_ROTATIONS: key {n} of {len(later)} is empty or shorter than "
                    f"{MIN_KEY_BYTES} characters: list the keys given to `recon keys rotate`, oldest first, "
                    "comma-separated"
                )
        return (first, *(key.encode() for key in later))


def _read_secret_file(path: Path) -> str:
    """A secret file's content without the line end an editor or `echo` adds (a mounted Kubernetes
    secret has none); a file that cannot be read is a ConfigError naming the setting."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_PASSWORD_FILE {path} cannot be read ({reason}): point it at a readable "
            "file holding only the password (e.g. the mounted secret), or unset it"
        ) from None


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings, turning any bad value into a one-line ConfigError that names the fix."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if config_file is None and os.environ.get(f"{ENV_PREFIX}CONFIG_FILE"):
        config_file = Path(os.environ[f"{ENV_PREFIX}CONFIG_FILE"])
    cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(
                f"config file {config_file} does not exist: pass an existing TOML file to --config"
            )
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})
        cls = type("Settings", (Settings,), {"model_config": config})  # same fields, one more source
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_file} is not valid TOML ({exc}): fix the file") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            problems.append(
                f"unknown setting {name!r}: remove it or check its spelling against docs/settings.md"
            )
        else:
            problems.append(
                f"{ENV_PREFIX}{name.upper()}: {reason} (fix it in the environment, the config file "
                f"as {name}, or the matching --{name.replace('_', '-')} flag)"
            )
    return "; ".join(problems)
