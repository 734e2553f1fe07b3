"""Per-symbol ingest sequence numbers for a parsed batch.

Trades and book events of one symbol are totally ordered by ``seq`` (the order they were
received in), so downstream consumers can merge the trade and book streams deterministically.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from cif._core import FrameBatch

#: Tables whose rows are market events that get a sequence number, in tie-break order.
SEQUENCED_TABLES: tuple[str, ...] = ("trades", "book_tickers", "depth_updates", "depth_snapshots")


def assign_seq(
    batch: FrameBatch, start: Mapping[int, int] | None = None
) -> dict[str, NDArray[np.int64]]:
    """Return, for each sequenced table, the ``seq`` of each row.

    ``seq`` counts a symbol's events in frame order, starting at ``start[symbol_code]``
    (default 1). Frames hold one event each, so frame order is receive order.
    """
    tables = [getattr(batch, name) for name in SEQUENCED_TABLES]
    sizes = [len(t["frame"]) for t in tables]
    symbol = np.concatenate([t["symbol"] for t in tables]).astype(np.int64)
    frame = np.concatenate([t["frame"] for t in tables])
    order = np.lexsort((frame, symbol))
    sorted_sym = symbol[order]
    # Rank within each symbol group of the (symbol, frame) sort.
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_sym)) + 1] if len(order) else order
    rank = np.arange(len(order), dtype=np.int64)
    if len(order):
        starts_per_row = np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
        rank -= starts_per_row
    base = np.ones(len(order), dtype=np.int64)
    if start:
        for code, first in start.items():
            base[sorted_sym == code] = first
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = rank + base
    out: dict[str, NDArray[np.int64]] = {}
    offset = 0
    for name, n in zip(SEQUENCED_TABLES, sizes, strict=True):
        out[name] = seq[offset : offset + n]
        offset += n
    return out
