"""DuckDB schema of the event history.

Times: ``ts`` and ``event_ts`` are exchange milliseconds, ``recv_ts_ns`` local receive
nanoseconds. ``seq`` is the per-symbol ingest sequence (see ``cif.ingest.sequence``).
Primary keys make re-imports and re-sent events no-ops (rows are inserted with
``INSERT OR IGNORE``).
"""

from __future__ import annotations

import duckdb

DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS trades (
        symbol VARCHAR NOT NULL,
        trade_id BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        event_ts BIGINT NOT NULL,
        recv_ts_ns BIGINT NOT NULL,
        price DOUBLE NOT NULL,
        qty DOUBLE NOT NULL,
        side VARCHAR NOT NULL CHECK (side IN ('buy', 'sell')),
        backfilled BOOLEAN NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (symbol, trade_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS book_tickers (
        symbol VARCHAR NOT NULL,
        update_id BIGINT NOT NULL,
        event_ts BIGINT,
        recv_ts_ns BIGINT NOT NULL,
        bid_price DOUBLE NOT NULL,
        bid_qty DOUBLE NOT NULL,
        ask_price DOUBLE NOT NULL,
        ask_qty DOUBLE NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (symbol, update_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS depth_updates (
        symbol VARCHAR NOT NULL,
        first_update_id BIGINT NOT NULL,
        final_update_id BIGINT NOT NULL,
        event_ts BIGINT NOT NULL,
        recv_ts_ns BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (symbol, final_update_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS depth_snapshots (
        symbol VARCHAR NOT NULL,
        last_update_id BIGINT NOT NULL,
        recv_ts_ns BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (symbol, last_update_id)
    )
    """,
    # Levels of diffs ('diff', keyed by final_update_id) and snapshots ('snapshot', keyed by
    # last_update_id); pos keeps the exchange's order within an event.
    """
    CREATE TABLE IF NOT EXISTS depth_levels (
        symbol VARCHAR NOT NULL,
        source VARCHAR NOT NULL CHECK (source IN ('diff', 'snapshot')),
        update_id BIGINT NOT NULL,
        pos INTEGER NOT NULL,
        side VARCHAR NOT NULL CHECK (side IN ('bid', 'ask')),
        price DOUBLE NOT NULL,
        qty DOUBLE NOT NULL,
        PRIMARY KEY (symbol, source, update_id, pos)
    )
    """,
)

TABLES: tuple[str, ...] = (
    "trades",
    "book_tickers",
    "depth_updates",
    "depth_snapshots",
    "depth_levels",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables that do not exist yet (idempotent)."""
    for statement in DDL:
        con.execute(statement)


def max_seq_by_symbol(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The highest stored ``seq`` per symbol, across trade and book tables."""
    rows = con.execute(
        """
        SELECT symbol, max(seq) FROM (
            SELECT symbol, seq FROM trades
            UNION ALL SELECT symbol, seq FROM book_tickers
            UNION ALL SELECT symbol, seq FROM depth_updates
            UNION ALL SELECT symbol, seq FROM depth_snapshots
        ) GROUP BY symbol
        """
    ).fetchall()
    return {str(sym): int(seq) for sym, seq in rows}
