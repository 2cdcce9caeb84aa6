"""The ingest service: Kafka consumer -> decode -> validate -> ledger, with dead letters."""
