"""Features: the order-flow feature stage (Rust engine in ``cif._core``, the event log it
consumes, and the stream processor that publishes ``features:{symbol}``)."""
