"""Every Prometheus metric of both services, declared once (names follow Prometheus conventions).

Label sets are bounded: topics, reason codes, event kinds, agreements and branches — never workers.
The catalogue with meanings is docs/metrics.md; keep the two in step.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# counter: messages read from Kafka, per source topic
MESSAGES_CONSUMED = Counter("recon_messages_consumed_total", "Messages read from Kafka", ["topic"])
# counter: validated events newly written to the ledger, per event kind
EVENTS_STORED = Counter("recon_events_stored_total", "Events newly stored in the ledger", ["kind"])
# counter: validated events already in the ledger (same event_id), per event kind
EVENTS_DUPLICATE = Counter("recon_events_duplicate_total", "Events already stored (same event_id)", ["kind"])
# counter: messages routed to the dead-letter topic, per source topic and reason code
MESSAGES_DEAD_LETTERED = Counter(
    "recon_messages_dead_lettered_total", "Messages routed to the dead-letter topic", ["topic", "reason_code"]
)
# histogram: messages per processed batch
BATCH_SIZE = Histogram(
    "recon_batch_size_messages", "Messages per batch", buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)
)
# histogram: wall time to decode, validate and commit one batch
BATCH_DURATION = Histogram(
    "recon_batch_duration_seconds",
    "Time to process and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# counter: retries of transient faults, per dependency ('database', 'broker')
RETRIES = Counter("recon_retries_total", "Retries of transient faults", ["dependency"])
# gauge: consumer lag per partition (end offset minus position)
CONSUMER_LAG = Gauge("recon_consumer_lag_messages", "Messages not yet consumed", ["topic", "partition"])
# --- reconcile: per agreement (label: agreement_id; bounded by the agreements a deployment has) ---
# gauge: workers the agreement funds at most
AGREEMENT_QUOTA = Gauge("recon_agreement_quota_workers", "Quota of the agreement", ["agreement_id"])
# gauge: workers actively covered now (enrolled, not terminated, not lapsed)
AGREEMENT_ACTIVE = Gauge("recon_agreement_active_workers", "Actively covered workers", ["agreement_id"])
# gauge: workers 1-2 months in arrears (still covered)
AGREEMENT_AT_RISK = Gauge(
    "recon_agreement_at_risk_workers", "Covered workers with unpaid months", ["agreement_id"]
)
# gauge: workers planned by the ramp for today
AGREEMENT_PLANNED = Gauge(
    "recon_agreement_planned_workers", "Workers planned for today by the ramp", ["agreement_id"]
)
# gauge: active workers / quota
AGREEMENT_UTILISATION = Gauge(
    "recon_agreement_utilisation_ratio", "Active workers over quota", ["agreement_id"]
)
# gauge: the agreement's budget, rupiah
AGREEMENT_BUDGET = Gauge("recon_agreement_budget_rupiah", "Budget of the agreement", ["agreement_id"])
# gauge: paid so far plus what active workers cost to the end of the period, rupiah
AGREEMENT_COMMITTED = Gauge(
    "recon_agreement_projected_spend_rupiah", "Paid plus committed to the period end", ["agreement_id"]
)
# gauge: contributions due and not paid, rupiah
AGREEMENT_ARREARS = Gauge("recon_agreement_arrears_rupiah", "Contributions due and unpaid", ["agreement_id"])
# gauge: coverage alerts firing, per rule and severity
ALERTS_FIRING = Gauge("recon_alerts_firing", "Coverage alerts firing", ["rule", "severity"])
# counter: alert state changes published (FIRING, RESOLVED), per rule
ALERT_CHANGES = Counter("recon_alert_changes_total", "Alert state changes published", ["rule", "state"])
# gauge: unix time of the newest event taken in from each branch
BRANCH_LAST_EVENT = Gauge(
    "recon_branch_last_event_timestamp_seconds",
    "When the newest event from the branch was stored",
    ["branch_code"],
)
# histogram: one reconciliation evaluation (fold new batches, figures, rules, alerts), seconds
RECONCILE_DURATION = Histogram(
    "recon_reconcile_duration_seconds",
    "Time of one reconciliation evaluation",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
# histogram: from a batch's commit by ingest to the alert changes it caused being committed, seconds
EVENT_TO_ALERT = Histogram(
    "recon_event_to_alert_seconds",
    "Latency from an ingested batch to its alert changes",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
)
# gauge: outbox rows not yet published, per kind ('dead_letter', 'alert')
OUTBOX_PENDING = Gauge("recon_outbox_pending", "Outbox rows not yet published", ["kind"])
# gauge: unix time of the last batch each service committed (stall detection)
LAST_PROGRESS = Gauge(
    "recon_last_progress_timestamp_seconds", "When the service last made progress", ["service"]
)
# info: version of the running build
BUILD_INFO = Info("recon_build", "Version of the running build")
# gauge: partitions of each topic assigned to this consumer now (0 after a revoke; an ingest replica
# with none everywhere is idle: more replicas than partitions)
PARTITIONS_ASSIGNED = Gauge(
    "recon_consumer_partitions_assigned", "Partitions assigned to this consumer", ["topic"]
)
