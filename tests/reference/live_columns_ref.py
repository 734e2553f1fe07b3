"""Pure-Python reference of the live writer's column building.

:func:`columns` is what ``cif.store.live_writer`` ran on its DuckDB thread before the work
moved to Rust (``cif._core.live_store_columns``): per queued ``(event, seq, backfilled,
rows)`` entry a row tuple per table, then one NumPy array per column. Tests compare the
two column by column. Not part of the package: ``cif`` never imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from cif._core import BookTicker, DepthSnapshot, DepthUpdate, Trade
from cif.ingest.book_events import BookEvent

Entry: TypeAlias = tuple[Any, int, bool, int]
Columns: TypeAlias = dict[str, NDArray[Any]]

# Column name -> NumPy dtype per table, in the order of the row tuples :func:`columns` builds.
TRADE_COLS = {
    "symbol": "O",
    "trade_id": "i8",
    "ts": "i8",
    "event_ts": "i8",
    "recv_ts_ns": "i8",
    "price": "f8",
    "qty": "f8",
    "side": "O",
    "backfilled": "?",
    "seq": "i8",
}
TICKER_COLS = {
    "symbol": "O",
    "update_id": "i8",
    "event_ts": "i8",
    "recv_ts_ns": "i8",
    "bid_price": "f8",
    "bid_qty": "f8",
    "ask_price": "f8",
    "ask_qty": "f8",
    "seq": "i8",
}
UPDATE_COLS = {
    "symbol": "O",
    "first_update_id": "i8",
    "final_update_id": "i8",
    "event_ts": "i8",
    "recv_ts_ns": "i8",
    "seq": "i8",
}
SNAPSHOT_COLS = {"symbol": "O", "last_update_id": "i8", "recv_ts_ns": "i8", "seq": "i8"}
LEVEL_COLS = {
    "symbol": "O",
    "source": "O",
    "update_id": "i8",
    "pos": "i4",
    "side": "O",
    "price": "f8",
    "qty": "f8",
    "seq": "i8",
}

BOOK_EVENT_COLS = {
    "symbol": "O",
    "seq": "i8",
    "update_id": "i8",
    "event_ts": "i8",
    "recv_ts_ns": "i8",
    "source": "O",
    "bid_price": "f8",
    "bid_qty": "f8",
    "ask_price": "f8",
    "ask_qty": "f8",
    "book_update_id": "i8",
    "bids": "O",
    "asks": "O",
}

_Row: TypeAlias = tuple[object, ...]


def _level_rows(
    ev: DepthUpdate | DepthSnapshot, source: str, update_id: int, seq: int
) -> list[_Row]:
    # The batch parser's layout (what imports store): bids then asks, pos counting across both.
    bids, asks = ev.bids, ev.asks
    sym = ev.symbol
    rows: list[_Row] = [
        (sym, source, update_id, pos, "bid", price, qty, seq)
        for pos, (price, qty) in enumerate(bids)
    ]
    rows.extend(
        (sym, source, update_id, pos, "ask", price, qty, seq)
        for pos, (price, qty) in enumerate(asks, start=len(bids))
    )
    return rows


def _build(rows: list[_Row], dtypes: dict[str, str]) -> Columns:
    cols: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in dtypes]
    return {
        name: np.array(col, dtype=dtype)
        for (name, dtype), col in zip(dtypes.items(), cols, strict=True)
    }


def columns(entries: Iterable[Entry]) -> dict[str, Columns]:
    """Queued events as one dict of NumPy columns per table."""
    tr: list[_Row] = []
    bt: list[_Row] = []
    du: list[_Row] = []
    ds: list[_Row] = []
    lv: list[_Row] = []
    be: list[_Row] = []
    for ev, seq, backfilled, _ in entries:
        if isinstance(ev, BookEvent):
            be.append((ev.symbol.upper(), *ev.record()))
        elif isinstance(ev, Trade):
            tr.append(
                (
                    ev.symbol,
                    ev.trade_id,
                    ev.trade_time_ms,
                    ev.event_time_ms,
                    ev.recv_time_ns,
                    ev.price,
                    ev.qty,
                    ev.side,
                    backfilled,
                    seq,
                )
            )
        elif isinstance(ev, BookTicker):
            event_ts = ev.event_time_ms
            bt.append(
                (
                    ev.symbol,
                    ev.update_id,
                    # -1 is stored as NULL (writer.NULL_IF_NEGATIVE), like imports.
                    -1 if event_ts is None else event_ts,
                    ev.recv_time_ns,
                    ev.bid_price,
                    ev.bid_qty,
                    ev.ask_price,
                    ev.ask_qty,
                    seq,
                )
            )
        elif isinstance(ev, DepthUpdate):
            du.append(
                (
                    ev.symbol,
                    ev.first_update_id,
                    ev.final_update_id,
                    ev.event_time_ms,
                    ev.recv_time_ns,
                    seq,
                )
            )
            lv.extend(_level_rows(ev, "diff", ev.final_update_id, seq))
        else:
            ds.append((ev.symbol, ev.last_update_id, ev.recv_time_ns, seq))
            lv.extend(_level_rows(ev, "snapshot", ev.last_update_id, seq))
    return {
        "trades": _build(tr, TRADE_COLS),
        "book_tickers": _build(bt, TICKER_COLS),
        "depth_updates": _build(du, UPDATE_COLS),
        "depth_snapshots": _build(ds, SNAPSHOT_COLS),
        "depth_levels": _build(lv, LEVEL_COLS),
        "book_events": _build(be, BOOK_EVENT_COLS),
    }
