"""The features' input log read back from the history: trades and book events by ``seq``.

Live, the feature processor reads ``trades:{symbol}`` and ``book:{symbol}`` from Redis; the
gateway stores the same trades and book events in DuckDB (``trades``, ``book_events``), so
replay and training read exactly the events the live processor read, as the same columns
``EventLogBuilder`` makes from stream entries. Works on the DuckDB file (once the gateway
has stopped) and on the sealed segments (``cif.store.segments.open_history``, while it
runs).

The read is columnar: DuckDB decodes the depth JSON (``[[price,qty],...]``, written as
shortest round-trip decimals, so a correctly rounded parse gives back the exact doubles;
tested bit for bit against the stream-entry decoder)
and NumPy merges the two tables by ``seq``; no Python loop per event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

from cif.features.event_log import DEFAULT_DEPTH_LEVELS, EventColumns

_NO_BOUND = 2**62

_TRADES = """
SELECT seq, ts, recv_ts_ns, price, qty, CASE WHEN side = 'buy' THEN 1 ELSE -1 END AS side
FROM trades WHERE symbol = $symbol AND ts >= $from_ms AND ts < $to_ms ORDER BY seq
"""


def _book_query(levels: int) -> str:
    sizes = [
        f"coalesce(b[{i}][2], 0.0) AS b{i}, coalesce(a[{i}][2], 0.0) AS a{i}"
        for i in range(1, levels + 1)
    ]
    depth = (", " + ", ".join(sizes)) if sizes else ""
    return f"""
    SELECT seq, ts, recv_ts_ns, bid_price, bid_qty, ask_price, ask_qty{depth}
    FROM (
        SELECT seq, event_ts AS ts, recv_ts_ns, bid_price, bid_qty, ask_price, ask_qty,
               from_json(bids, '[["DOUBLE"]]') AS b, from_json(asks, '[["DOUBLE"]]') AS a
        FROM book_events
        WHERE symbol = $symbol AND event_ts >= $from_ms AND event_ts < $to_ms
    ) ORDER BY seq
    """


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
    if depth_levels < 0:
        raise ValueError(f"depth_levels must be >= 0, got {depth_levels}")
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no DuckDB history at {path}")
        with duckdb.connect(str(path), read_only=True) as con:
            return load_event_log(con, symbol, from_ms, to_ms, depth_levels)
    params = {
        "symbol": symbol.upper(),
        "from_ms": -_NO_BOUND if from_ms is None else int(from_ms),
        "to_ms": _NO_BOUND if to_ms is None else int(to_ms),
    }
    tr = source.execute(_TRADES, params).fetchnumpy()
    bk = source.execute(_book_query(depth_levels), params).fetchnumpy()
    n_t, n_b = len(tr["seq"]), len(bk["seq"])
    seq = np.concatenate([_col(tr, "seq", np.int64), _col(bk, "seq", np.int64)])
    # seq is unique per symbol across both tables, so the order is total.
    order = np.argsort(seq, kind="stable")
    nan_t, nan_b = np.full(n_t, np.nan), np.full(n_b, np.nan)

    def merged(trade_part: NDArray[Any], book_part: NDArray[Any]) -> NDArray[Any]:
        return np.ascontiguousarray(np.concatenate([trade_part, book_part])[order])

    def depth(prefix: str) -> NDArray[np.float64]:
        out = np.zeros((n_t + n_b, depth_levels), dtype=np.float64)
        for i in range(depth_levels):
            out[n_t:, i] = _col(bk, f"{prefix}{i + 1}", np.float64)
        return np.ascontiguousarray(out[order])

    return {
        "kind": merged(np.zeros(n_t, np.uint8), np.ones(n_b, np.uint8)),
        "seq": np.ascontiguousarray(seq[order]),
        "ts": merged(_col(tr, "ts", np.int64), _col(bk, "ts", np.int64)),
        "recv_ts_ns": merged(_col(tr, "recv_ts_ns", np.int64), _col(bk, "recv_ts_ns", np.int64)),
        "price": merged(_col(tr, "price", np.float64), nan_b),
        "qty": merged(_col(tr, "qty", np.float64), nan_b),
        "side": merged(_col(tr, "side", np.int8), np.zeros(n_b, np.int8)),
        "bid_price": merged(nan_t, _col(bk, "bid_price", np.float64)),
        "bid_qty": merged(nan_t, _col(bk, "bid_qty", np.float64)),
        "ask_price": merged(nan_t, _col(bk, "ask_price", np.float64)),
        "ask_qty": merged(nan_t, _col(bk, "ask_qty", np.float64)),
        "bid_depth": depth("b"),
        "ask_depth": depth("a"),
    }


def _col(cols: dict[str, Any], name: str, dtype: type[np.generic]) -> NDArray[Any]:
    return np.asarray(cols[name], dtype=dtype)
