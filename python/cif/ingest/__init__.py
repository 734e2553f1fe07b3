"""Ingestion: from the exchange's bytes to normalized events (first stage of the data flow)."""
