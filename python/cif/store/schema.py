"""DuckDB schema of the event history.

Times: ``ts`` and ``event_ts`` are exchange milliseconds, ``recv_ts_ns`` local receive
nanoseconds. ``seq`` is the per-symbol ingest sequence (see ``cif.ingest.sequence``); every
table has it (a depth level carries its diff's or snapshot's), and a symbol's ``seq`` only
grows as rows are stored, which is what lets ``cif.store.segments`` seal history by ``seq``
ranges. Primary keys make re-imports and re-sent events no-ops (rows are inserted with
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
    # The book events the gateway derived and published to book:{symbol} (L1 changes with the
    # local book's top-k as JSON [[price,qty],...], the text of the stream entry): with trades,
    # they are the features' input log, stored so replay and training read exactly what the
    # live processor read. seq is that of the ticker, diff or snapshot that caused the event.
    """
    CREATE TABLE IF NOT EXISTS book_events (
        symbol VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        update_id BIGINT NOT NULL,
        event_ts BIGINT NOT NULL,
        recv_ts_ns BIGINT NOT NULL,
        source VARCHAR NOT NULL CHECK (source IN ('ticker', 'depth', 'snapshot')),
        bid_price DOUBLE NOT NULL,
        bid_qty DOUBLE NOT NULL,
        ask_price DOUBLE NOT NULL,
        ask_qty DOUBLE NOT NULL,
        book_update_id BIGINT NOT NULL,
        bids VARCHAR NOT NULL,
        asks VARCHAR NOT NULL,
        PRIMARY KEY (symbol, seq)
    )
    """,
    # Levels of diffs ('diff', keyed by final_update_id) and snapshots ('snapshot', keyed by
    # last_update_id); pos keeps the exchange's order within an event; seq is the owner's.
    """
    CREATE TABLE IF NOT EXISTS depth_levels (
        symbol VARCHAR NOT NULL,
        source VARCHAR NOT NULL CHECK (source IN ('diff', 'snapshot')),
        update_id BIGINT NOT NULL,
        pos INTEGER NOT NULL,
        side VARCHAR NOT NULL CHECK (side IN ('bid', 'ask')),
        price DOUBLE NOT NULL,
        qty DOUBLE NOT NULL,
        seq BIGINT NOT NULL,
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
    "book_events",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables that do not exist yet and upgrade older files (idempotent)."""
    for statement in DDL:
        con.execute(statement)
    _add_level_seq(con)


def _nullable_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, bool]:
    """Column name -> whether it accepts NULL."""
    rows = con.execute(
        """
        SELECT column_name, is_nullable FROM information_schema.columns
        WHERE table_catalog = current_database() AND table_schema = current_schema()
          AND table_name = ?
        """,
        [table],
    ).fetchall()
    return {str(name): nullable == "YES" for name, nullable in rows}


def _add_level_seq(con: duckdb.DuckDBPyConnection) -> None:
    """Give ``depth_levels`` of files written before it had ``seq`` their owners' ``seq``.

    Three idempotent steps (DuckDB cannot add the NOT NULL constraint in the transaction
    that filled the column), so an interrupted upgrade is completed by the next call.
    """
    cols = _nullable_columns(con, "depth_levels")
    if cols.get("seq") is False:
        return
    if "seq" not in cols:
        con.execute("ALTER TABLE depth_levels ADD COLUMN seq BIGINT")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            """
            UPDATE depth_levels SET seq = d.seq FROM depth_updates d
            WHERE depth_levels.seq IS NULL AND depth_levels.source = 'diff'
              AND d.symbol = depth_levels.symbol AND d.final_update_id = depth_levels.update_id
            """
        )
        con.execute(
            """
            UPDATE depth_levels SET seq = s.seq FROM depth_snapshots s
            WHERE depth_levels.seq IS NULL AND depth_levels.source = 'snapshot'
              AND s.symbol = depth_levels.symbol AND s.last_update_id = depth_levels.update_id
            """
        )
        orphans = con.execute("SELECT count(*) FROM depth_levels WHERE seq IS NULL").fetchall()
        if orphans[0][0]:
            # Levels are written with their owner in one transaction, so this is a damaged
            # file: refuse rather than invent a seq.
            raise RuntimeError(
                f"{orphans[0][0]} depth_levels rows have no owning diff or snapshot; "
                "cannot add their seq"
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("ALTER TABLE depth_levels ALTER COLUMN seq SET NOT NULL")


def max_seq_by_symbol(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The highest stored ``seq`` per symbol, across trade and book tables (levels share theirs)."""
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
