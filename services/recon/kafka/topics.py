"""The service's topics and their settings, created idempotently.

enrolments, claims and branch-totals carry the events, keyed by worker or agreement; agreements is
compacted (keyed by agreement id, the latest version of each agreement is kept forever); coverage-alerts
is keyed by fingerprint; dead-letters keeps the original bytes for a month so a rejected message can
still be inspected and replayed after a holiday, but not indefinitely (they may hold personal data).
All get ``settings.topic_partitions`` partitions and the cluster's default replication factor.

Usage::

    created = ensure_topics("127.0.0.1:9092", settings)   # names it had to create; [] the second time
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recon.errors import PermanentFault
from recon.kafka.clients import client_config
from recon.settings import Settings

__all__ = ["DEAD_LETTER_RETENTION_MS", "TopicSpec", "create_topics", "ensure_topics", "topic_specs"]

DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000
_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code: another creator won the race, which is fine


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """What the service needs, by the names the settings give."""
    n = settings.topic_partitions
    return [
        TopicSpec(name=settings.topic_enrolments, partitions=n),
        TopicSpec(name=settings.topic_claims, partitions=n),
        TopicSpec(name=settings.topic_agreements, partitions=n, configs={"cleanup.policy": "compact"}),
        TopicSpec(name=settings.topic_branch_totals, partitions=n),
        TopicSpec(name=settings.topic_alerts, partitions=n),
        TopicSpec(
            name=settings.topic_dead_letters,
            partitions=n,
            configs={"retention.ms": str(DEAD_LETTER_RETENTION_MS)},
        ),
    ]


def ensure_topics(bootstrap: str, settings: Settings) -> list[str]:
    """Create the service's topics that do not exist yet on ``bootstrap``; return the names created.

    Existing topics are left as they are (partitions and configs included): changing a live topic is
    an operator's decision, not a side effect of starting something.
    """
    return create_topics(bootstrap, topic_specs(settings), client=client_config(settings))


def create_topics(
    bootstrap: str, specs: Sequence[TopicSpec], *, client: Mapping[str, Any] | None = None
) -> list[str]:
    """Create the missing ones of ``specs`` and wait until each has a leader; return the names created.

    ``client`` holds extra kafka-python options (security); its bootstrap servers are replaced.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import for_code

    options = {**(client or {}), "bootstrap_servers": bootstrap.split(",")}
    admin = KafkaAdminClient(**options, client_id="recon-topics")
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        request = {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": -1,
                "configs": dict(spec.configs),
            }
            for spec in missing
        }
        response = admin.create_topics(request, raise_errors=False)
        created = []
        for topic in response["topics"]:
            code = topic["error_code"]
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                reason = topic.get("error_message") or for_code(code).__name__
                raise PermanentFault(f"could not create topic {topic['name']!r}: {reason}")
            if code == 0:
                created.append(topic["name"])
        admin.wait_for_topics([spec.name for spec in missing], timeout_ms=30_000)
        return sorted(created)
    finally:
        admin.close()
