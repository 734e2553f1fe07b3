"""The bus: Redis Streams that fan ingested events out to the processor, forecaster and API."""
