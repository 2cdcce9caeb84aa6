"""Fixtures for every test: the real Kafka broker and the real PostgreSQL, never mocks.

- ``kafka_bootstrap`` (session, str): ``RECON_KAFKA_BOOTSTRAP_SERVERS`` when set, else a LocalBroker in a
  temporary home on free ports, stopped at the end of the session.
- ``topic_names`` (function, TopicNames): six topics of its own for one test (prefix ``t<8 hex>-``), created
  like the service's (agreements compacted, ...) with 3 partitions and deleted afterwards. Another count:
  ``@pytest.mark.parametrize("topic_names", [1], indirect=True)``; or call ``make_topics(bootstrap, n)``.
  ``topic_names.overrides()`` gives the settings that point the service at them.
- ``postgres_url`` (session, str): ``RECON_TEST_POSTGRES_URL`` when set (its role needs CREATEDB), else a
  cluster started by ``scripts/postgres.sh`` in a temporary folder on a free port, stopped at the end.
- ``fresh_postgres_url`` (function, str): a new empty database on that server, dropped afterwards.
- ``sqlite_url`` (function, str): a SQLite file in the test's tmp_path.

Tests under ``tests/integration/`` are marked ``integration`` even when they forget to say so, so
``pytest -m 'not integration'`` runs the fast suite alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recon.broker import free_ports  # re-exported: tests import it from here

REPO = Path(__file__).resolve().parents[1]
POSTGRES_SH = REPO / "scripts" / "postgres.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration = REPO / "tests" / "integration"
    for item in items:
        if integration in item.path.parents:
            item.add_marker(pytest.mark.integration)


# --- Kafka ---


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from recon.broker import LocalBroker

    port, controller_port = free_ports(2)
    broker = LocalBroker(home=tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller_port)
    try:
        yield broker.start()
    finally:
        broker.stop()


@dataclass(frozen=True, slots=True)
class TopicNames:
    bootstrap: str
    prefix: str
    partitions: int
    enrolments: str
    claims: str
    agreements: str
    branch_totals: str
    alerts: str
    dead_letters: str

    @property
    def all(self) -> list[str]:
        return [
            self.enrolments,
            self.claims,
            self.agreements,
            self.branch_totals,
            self.alerts,
            self.dead_letters,
        ]

    def overrides(self) -> dict[str, Any]:
        """Settings fields (for ``load_settings(overrides=...)``) that point the service at these topics."""
        return {
            "kafka_bootstrap_servers": self.bootstrap,
            "topic_enrolments": self.enrolments,
            "topic_claims": self.claims,
            "topic_agreements": self.agreements,
            "topic_branch_totals": self.branch_totals,
            "topic_alerts": self.alerts,
            "topic_dead_letters": self.dead_letters,
            "topic_partitions": self.partitions,
        }


_DEFAULT_TOPICS = {
    "enrolments": "enrolments",
    "claims": "claims",
    "agreements": "agreements",
    "branch_totals": "branch-totals",
    "alerts": "coverage-alerts",
    "dead_letters": "dead-letters",
}


def make_topics(bootstrap: str, partitions: int = 3) -> TopicNames:
    """Create six uniquely named topics, configured as the service's are, with ``partitions`` each."""
    from recon.kafka.topics import ensure_topics
    from recon.settings import Settings

    prefix = f"t{uuid.uuid4().hex[:8]}-"
    names = TopicNames(
        bootstrap=bootstrap,
        prefix=prefix,
        partitions=partitions,
        **{field: prefix + default for field, default in _DEFAULT_TOPICS.items()},
    )
    overrides = {k: v for k, v in names.overrides().items() if k != "kafka_bootstrap_servers"}
    ensure_topics(bootstrap, Settings(**overrides))
    return names


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka import KafkaAdminClient

    from recon.kafka.clients import client_config
    from recon.settings import Settings

    options = {**client_config(Settings()), "bootstrap_servers": bootstrap.split(",")}
    admin = KafkaAdminClient(**options, client_id="recon-tests")
    try:
        admin.delete_topics(names, raise_errors=False)
    finally:
        admin.close()


@pytest.fixture
def topic_names(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[TopicNames]:
    names = make_topics(kafka_bootstrap, partitions=getattr(request, "param", 3))
    yield names
    delete_topics(kafka_bootstrap, names.all)  # keeps a long session's broker small


# --- Databases ---


def _postgres_sh(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(POSTGRES_SH), *args], capture_output=True, text=True, env=env, check=False, cwd=REPO
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres.sh {' '.join(args)} failed:\n{done.stderr}", pytrace=False)
    return done.stdout.strip()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    external = os.environ.get("RECON_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    # Not tmp_path_factory: pytest makes its folders 0700, and the server runs as `postgres` under root.
    folder = tempfile.mkdtemp(prefix="recon-pg-")
    env = {**os.environ, "RECON_PG_PORT": str(free_ports()[0])}
    try:
        yield _postgres_sh("start", folder, env=env).splitlines()[-1]
    finally:
        _postgres_sh("stop", folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:  # FORCE: a test that left a connection open does not block the drop
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'recon.db'}"
