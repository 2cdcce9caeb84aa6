"""Pure domain logic: validation rules, figures, alert rules. Plain values in, plain values out.

Nothing here imports Kafka, SQL, HTTP, metrics or reads the clock (an import-linter contract in
pyproject.toml keeps it so).
"""
