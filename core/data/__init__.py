"""The data pipeline: sniffing and reading input files, the schema contract, ingest into
versions, profiles, quality checks and quarantine."""
