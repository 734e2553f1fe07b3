"""Book events: the L1 changes of a symbol, each with the local book's top-k depth.

Two sources describe the top of the book: ``@bookTicker`` (every L1 change, in real time,
without an exchange timestamp on spot) and the local book rebuilt from ``@depth@100ms``
(every level, but only every 100 ms). A book event is emitted when the best bid/ask price
or size changes, from whichever source reports a *newer* order-book update id first; a
report at or below the last emitted update id is already known and emits nothing. So
tickers drive the events, and the depth book fills in when tickers are missing.

Event time: spot tickers carry no ``E``, so an event's ``event_ts`` is the latest exchange
time seen for the symbol (trades and depth diffs carry one). Everything here is a pure
function of the ordered event log, so replay derives the same events.

The events are derived in Rust (``cif_core::ingest::book_events``, driven by
:class:`cif._core.IngestCore`); this module holds their Python type.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

L1 = tuple[float, float, float, float]
Levels = tuple[tuple[float, float], ...]


def levels_json(levels: Levels) -> str:
    """A depth side as the JSON text published and stored: ``[[price,qty],...]``."""
    return json.dumps(levels, separators=(",", ":"))


class BookEvent(NamedTuple):
    """One L1 change of a symbol. (A named tuple: one is built per L1 change on the
    gateway's event loop, and a frozen dataclass costs almost three times as much.)"""

    symbol: str
    seq: int
    update_id: int
    event_ts: int
    recv_ts_ns: int
    source: str  # "ticker" | "depth" | "snapshot"
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    #: update id the attached depth is at (0 while the local book is not synced).
    book_update_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    #: ``bids`` / ``asks`` as published and stored (JSON ``[[price,qty],...]``), encoded once
    #: per depth change rather than once per event and sink.
    bids_json: str = "[]"
    asks_json: str = "[]"

    def record(self) -> tuple[Any, ...]:
        """The fields every sink stores, in the published order (``seq`` … ``book_update_id``,
        then the depth sides' JSON): the Redis entry and the DuckDB row both take these."""
        return (*self[1:11], self.bids_json, self.asks_json)
