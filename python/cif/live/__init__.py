"""``cif live``: the running system (today: ingestion; later stages join the same command)."""
