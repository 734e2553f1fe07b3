"""Batch appends of parsed events into the DuckDB history (never row by row).

Each table is handed to DuckDB as one dict of NumPy columns and inserted with
``INSERT OR IGNORE`` inside one transaction, so a batch lands whole or not at all and
re-sent events (same primary key) are dropped instead of duplicated.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
from numpy.typing import NDArray

from cif._core import FrameBatch
from cif.ingest.sequence import assign_seq
from cif.store.schema import ensure_schema, max_seq_by_symbol

log = logging.getLogger(__name__)

Columns = Mapping[str, NDArray[np.generic]]
#: A text column as ``(codes, values)``: row ``i`` is ``values[codes[i]]``.
TextCodes = tuple[NDArray[np.uint32], Sequence[str]]
#: One table's columns for :func:`insert_columns`: arrays, texts also as :data:`TextCodes`.
InsertColumns = Mapping[str, NDArray[np.generic] | TextCodes]


@dataclass
class AppendResult:
    """Rows offered and rows actually inserted per table (the rest were duplicates)."""

    offered: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)


#: Columns whose batch sentinel -1 ("the exchange sent no time") is stored as NULL.
NULL_IF_NEGATIVE = frozenset({"event_ts"})


def insert_columns(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: InsertColumns,
    *,
    ignore_duplicates: bool = True,
) -> tuple[int, int]:
    """``INSERT OR IGNORE`` one table's columns; returns (rows offered, rows inserted).

    Runs in the caller's transaction. ``event_ts`` values below 0 are stored as NULL. With
    ``ignore_duplicates=False`` it is a plain ``INSERT``: a row whose key is already stored
    raises ``duckdb.ConstraintException`` (and aborts the transaction) instead. That is a
    third cheaper for a writer that knows its rows are new (measured on the live writer's
    flushes: 37 → 28 ms of CPU for ~4,000 rows).

    A text column may come as :data:`TextCodes`: DuckDB then reads integer codes and looks
    the text up in a list passed as a parameter. Why: it reads a column of Python ``str``
    holding the GIL (when the live writer ran DuckDB on a thread beside the event loop,
    ~6 ms per flush of 2,500 events, ~1 ms with codes), and codes are small arrays to
    hand to the writer process.
    """
    src: dict[str, NDArray[np.generic]] = {}
    exprs: list[str] = []
    texts: list[list[str]] = []
    for c, col in cols.items():
        if isinstance(col, tuple):
            src[c], values = col
            exprs.append(f"(?::VARCHAR[])[{c} + 1]")
            texts.append(list(values))
        else:
            src[c] = col
            negative_is_null = c in NULL_IF_NEGATIVE
            exprs.append(f"CASE WHEN {c} < 0 THEN NULL ELSE {c} END" if negative_is_null else c)
    n = len(next(iter(src.values())))
    if n == 0:
        return 0, 0
    view = f"_cif_src_{table}"
    con.register(view, src)
    names = ", ".join(cols)
    try:
        # An INSERT's result is the number of rows it inserted (the ignored ones not
        # counted): no count(*) before and after, two statements per table and flush less.
        inserted = con.execute(
            f"INSERT {'OR IGNORE ' if ignore_duplicates else ''}INTO {table} ({names}) "
            f"SELECT {', '.join(exprs)} FROM {view}",
            texts,
        ).fetchall()[0][0]
    finally:
        # After a failed statement the aborted transaction refuses the unregister too; the
        # view then stays until the next register of this table replaces it.
        with contextlib.suppress(duckdb.Error):
            con.unregister(view)
    return n, int(inserted)


def concat_tables(chunks: Sequence[Mapping[str, InsertColumns]]) -> dict[str, InsertColumns]:
    """Chunks of the same tables' columns (each as ``live_store_columns`` gives them) as one
    set of columns: rows in chunk order.

    A text column given as :data:`TextCodes` stays one: its values are the chunks' values
    in order of first use, each chunk's codes mapped onto them. Chunks of other tables,
    columns or column kinds than the first's are a ``ValueError``.
    """
    if not chunks:
        raise ValueError("no chunks to concatenate")
    first = chunks[0]
    shape = {t: {c: isinstance(v, tuple) for c, v in cols.items()} for t, cols in first.items()}
    for i, chunk in enumerate(chunks):
        kinds = {t: {c: isinstance(v, tuple) for c, v in cols.items()} for t, cols in chunk.items()}
        if kinds != shape or any(list(chunk[t]) != list(first[t]) for t in first):
            raise ValueError(f"chunk {i} has other tables or columns than chunk 0")
    if len(chunks) == 1:
        return dict(first)
    out: dict[str, InsertColumns] = {}
    for table, columns in first.items():
        merged: dict[str, NDArray[np.generic] | TextCodes] = {}
        for name, col in columns.items():
            parts = [chunk[table][name] for chunk in chunks]  # all of col's kind (checked)
            if isinstance(col, tuple):
                merged[name] = _concat_codes([p for p in parts if isinstance(p, tuple)])
            else:
                merged[name] = np.concatenate([p for p in parts if not isinstance(p, tuple)])
        out[table] = merged
    return out


def _concat_codes(parts: Sequence[TextCodes]) -> TextCodes:
    index: dict[str, int] = {}
    codes: list[NDArray[np.uint32]] = []
    for part_codes, values in parts:
        remap = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.uint32)
        codes.append(remap[part_codes] if len(part_codes) else part_codes.astype(np.uint32))
    return np.concatenate(codes), list(index)


def insert_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, InsertColumns],
    *,
    ignore_duplicates: bool = True,
    between: Callable[[], object] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """:func:`insert_columns` of every table in one transaction, all or nothing: rows
    offered and rows inserted per table. ``between`` is called after each statement (a
    table with rows), inside the transaction (the live writer's pause, see
    :func:`cif.store.writer_process.write`)."""
    offered: dict[str, int] = {}
    inserted: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, cols in tables.items():
            offered[name], inserted[name] = insert_columns(
                con, name, cols, ignore_duplicates=ignore_duplicates
            )
            if between is not None and offered[name]:
                between()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return offered, inserted


def _level_rows(
    batch: FrameBatch, symbols: NDArray[np.object_], seq: Mapping[str, NDArray[np.int64]]
) -> dict[str, NDArray[np.generic]]:
    """Attach each level row to its owning diff or snapshot (ranges are disjoint)."""
    upd, snap, lv = batch.depth_updates, batch.depth_snapshots, batch.levels
    starts = np.concatenate([upd["level_start"], snap["level_start"]])
    ends = np.concatenate([upd["level_end"], snap["level_end"]])
    owner_sym = np.concatenate([upd["symbol"], snap["symbol"]])
    owner_id = np.concatenate([upd["final_update_id"], snap["last_update_id"]])
    owner_seq = np.concatenate([seq["depth_updates"], seq["depth_snapshots"]])
    owner_src = np.concatenate(
        [
            np.full(len(upd["frame"]), "diff", dtype=object),
            np.full(len(snap["frame"]), "snapshot", dtype=object),
        ]
    )
    n_levels = len(lv["price"])
    idx = np.arange(n_levels, dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    owner = order[np.searchsorted(starts[order], idx, side="right") - 1] if n_levels else idx
    if n_levels and not np.all(idx < ends[owner]):
        raise ValueError("level rows not covered by their events' ranges")
    return {
        "symbol": symbols[owner_sym[owner]] if n_levels else np.array([], dtype=object),
        "source": owner_src[owner] if n_levels else np.array([], dtype=object),
        "update_id": owner_id[owner] if n_levels else idx,
        "pos": (idx - starts[owner]).astype(np.int32) if n_levels else idx.astype(np.int32),
        "side": np.where(lv["side"] > 0, "bid", "ask").astype(object),
        "price": lv["price"],
        "qty": lv["qty"],
        "seq": owner_seq[owner] if n_levels else idx,
    }


def append_batch(
    con: duckdb.DuckDBPyConnection, batch: FrameBatch, *, backfilled: bool = False
) -> AppendResult:
    """Append every event of ``batch`` to the history; returns per-table row counts.

    ``seq`` continues each symbol's stored sequence. Parse errors in the batch are not
    stored (the caller counts and logs them).
    """
    ensure_schema(con)
    symbols = np.array(batch.symbols, dtype=object)
    stored = max_seq_by_symbol(con)
    start = {code: stored.get(sym, 0) + 1 for code, sym in enumerate(batch.symbols)}
    seq = assign_seq(batch, start)
    t, bt, du, ds = batch.trades, batch.book_tickers, batch.depth_updates, batch.depth_snapshots
    no_symbols = np.array([], dtype=object)

    def sym(codes: NDArray[np.int32]) -> NDArray[np.object_]:
        return symbols[codes] if len(codes) else no_symbols

    tables: dict[str, Columns] = {
        "trades": {
            "symbol": sym(t["symbol"]),
            "trade_id": t["trade_id"],
            "ts": t["trade_time_ms"],
            "event_ts": t["event_time_ms"],
            "recv_ts_ns": t["recv_time_ns"],
            "price": t["price"],
            "qty": t["qty"],
            "side": np.where(t["side"] > 0, "buy", "sell").astype(object),
            "backfilled": np.full(len(t["frame"]), backfilled),
            "seq": seq["trades"],
        },
        "book_tickers": {
            "symbol": sym(bt["symbol"]),
            "update_id": bt["update_id"],
            "event_ts": bt["event_time_ms"],
            "recv_ts_ns": bt["recv_time_ns"],
            "bid_price": bt["bid_price"],
            "bid_qty": bt["bid_qty"],
            "ask_price": bt["ask_price"],
            "ask_qty": bt["ask_qty"],
            "seq": seq["book_tickers"],
        },
        "depth_updates": {
            "symbol": sym(du["symbol"]),
            "first_update_id": du["first_update_id"],
            "final_update_id": du["final_update_id"],
            "event_ts": du["event_time_ms"],
            "recv_ts_ns": du["recv_time_ns"],
            "seq": seq["depth_updates"],
        },
        "depth_snapshots": {
            "symbol": sym(ds["symbol"]),
            "last_update_id": ds["last_update_id"],
            "recv_ts_ns": ds["recv_time_ns"],
            "seq": seq["depth_snapshots"],
        },
        "depth_levels": _level_rows(batch, symbols, seq),
    }
    offered, inserted = insert_tables(con, tables)
    result = AppendResult(offered, inserted)
    log.debug("appended batch: %s", result.inserted)
    return result
