"""Storage: append-only DuckDB tables of everything ingested (history for replay/research)."""
