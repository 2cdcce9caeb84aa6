"""Kafka adapters: thin wrappers around kafka-python that the services and the CLI share."""
