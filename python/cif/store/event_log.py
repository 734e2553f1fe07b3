"""The features' input log read back from the history: trades and book events by ``seq``.

Live, the feature processor reads ``trades:{symbol}`` and ``book:{symbol}`` from Redis; the
gateway stores the same trades and book events in DuckDB (``trades``, ``book_events``), so
replay and training read exactly the events the live processor read, decoded by the same
``EventLogBuilder``. Works on the DuckDB file (once the gateway has stopped) and on the
sealed segments (``cif.store.segments.open_history``, while it runs).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cif.features.event_log import DEFAULT_DEPTH_LEVELS, EventColumns, EventLogBuilder

# One ordered scan of both tables; the kind column breaks no ties (seq is unique per symbol).
_QUERY = """
SELECT 0 AS kind, seq, ts, recv_ts_ns, price, qty, side,
       NULL::DOUBLE AS bid_price, NULL::DOUBLE AS bid_qty,
       NULL::DOUBLE AS ask_price, NULL::DOUBLE AS ask_qty, NULL AS bids, NULL AS asks
FROM trades WHERE symbol = $symbol AND ts >= $from_ms AND ts < $to_ms
UNION ALL
SELECT 1, seq, event_ts, recv_ts_ns, NULL, NULL, NULL,
       bid_price, bid_qty, ask_price, ask_qty, bids, asks
FROM book_events WHERE symbol = $symbol AND event_ts >= $from_ms AND event_ts < $to_ms
ORDER BY seq
"""

_NO_UPPER_BOUND = 2**62


def load_event_log(
    source: duckdb.DuckDBPyConnection | str | Path,
    symbol: str,
    from_ms: int | None = None,
    to_ms: int | None = None,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
) -> EventColumns:
    """The event log of ``symbol`` with exchange time in ``[from_ms, to_ms)``, by ``seq``.

    ``source`` is an open connection (a DuckDB file or ``open_history``) or a DuckDB file
    path, opened read-only.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no DuckDB history at {path}")
        with duckdb.connect(str(path), read_only=True) as con:
            return load_event_log(con, symbol, from_ms, to_ms, depth_levels)
    params = {
        "symbol": symbol.upper(),
        "from_ms": -_NO_UPPER_BOUND if from_ms is None else int(from_ms),
        "to_ms": _NO_UPPER_BOUND if to_ms is None else int(to_ms),
    }
    builder = EventLogBuilder(depth_levels)
    cursor = source.execute(_QUERY, params)
    while rows := cursor.fetchmany(65_536):
        for kind, seq, ts, recv, price, qty, side, bp, bq, ap, aq, bids, asks in rows:
            if kind == 0:
                builder.add_trade(seq, ts, recv, price, qty, 1 if side == "buy" else -1)
            else:
                builder.add_book_entry(
                    {
                        "seq": seq,
                        "event_ts": ts,
                        "recv_ts_ns": recv,
                        "bid_price": bp,
                        "bid_qty": bq,
                        "ask_price": ap,
                        "ask_qty": aq,
                        "bids": bids,
                        "asks": asks,
                    }
                )
    return builder.build()
