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
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from cif._core import BookTicker, OrderBook

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


class BookEventDeriver:
    """Turns tickers and local-book updates of one symbol into L1-change events."""

    def __init__(self, symbol: str, top_k: int = 10) -> None:
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        self.symbol = symbol
        self.top_k = top_k
        self._last_l1: L1 | None = None
        self._last_update_id = -1
        # top-k of the book at one update id: between depth diffs (100 ms) every ticker
        # event carries the same depth, so it is read from the book once.
        self._top_at = -1
        self._top: tuple[Levels, Levels] = ((), ())
        self._top_json = ("[]", "[]")

    def on_ticker(
        self, ticker: BookTicker, seq: int, event_ts: int, book: OrderBook
    ) -> BookEvent | None:
        """The event for a ticker, or None when it is not newer or changes nothing."""
        l1 = (ticker.bid_price, ticker.bid_qty, ticker.ask_price, ticker.ask_qty)
        return self._maybe(l1, ticker.update_id, seq, event_ts, ticker.recv_time_ns, "ticker", book)

    def on_book(
        self, book: OrderBook, seq: int, event_ts: int, recv_ts_ns: int, source: str
    ) -> BookEvent | None:
        """The event after the local book changed (a diff applied or a snapshot synced)."""
        bid, ask = book.best_bid(), book.best_ask()
        if not book.synced or bid is None or ask is None:
            return None
        l1 = (bid[0], bid[1], ask[0], ask[1])
        return self._maybe(l1, book.last_update_id, seq, event_ts, recv_ts_ns, source, book)

    def _maybe(
        self,
        l1: L1,
        update_id: int,
        seq: int,
        event_ts: int,
        recv_ts_ns: int,
        source: str,
        book: OrderBook,
    ) -> BookEvent | None:
        if update_id <= self._last_update_id:
            return None
        self._last_update_id = update_id
        if l1 == self._last_l1:
            return None
        self._last_l1 = l1
        if book.synced:
            book_u = book.last_update_id
            if book_u != self._top_at:
                bids_l, asks_l = book.top(self.top_k)
                self._top = (tuple(bids_l), tuple(asks_l))
                self._top_json = (levels_json(self._top[0]), levels_json(self._top[1]))
                self._top_at = book_u
            bids, asks = self._top
            bids_json, asks_json = self._top_json
        else:
            bids, asks, book_u = (), (), 0
            bids_json = asks_json = "[]"
        return BookEvent(
            symbol=self.symbol,
            seq=seq,
            update_id=update_id,
            event_ts=event_ts,
            recv_ts_ns=recv_ts_ns,
            source=source,
            bid_price=l1[0],
            bid_qty=l1[1],
            ask_price=l1[2],
            ask_qty=l1[3],
            book_update_id=book_u,
            bids=bids,
            asks=asks,
            bids_json=bids_json,
            asks_json=asks_json,
        )
