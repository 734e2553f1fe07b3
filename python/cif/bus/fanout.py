"""Stream entries for the fan-out: normalized trades and book events as Redis Stream fields.

Entry IDs come from the data, so re-sending an event is a no-op (Redis refuses an ID at or
below the stream's top): a trade is ``<trade id>-0`` (trades are released in id order) and a
book event ``<seq>-0``. Every entry carries ``seq``, the symbol's ingest sequence number,
which totally orders a symbol's trades and book events for consumers that merge them.
Prices and sizes are written as Python's shortest round-trip decimal (``repr``), so a
consumer's ``float()`` gets the exact double back.
"""

from __future__ import annotations

from cif._core import Trade
from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import StreamEntry
from cif.ingest.book_events import BookEvent

#: Field names of a trade entry, in order (documented in the README).
TRADE_FIELDS = (
    "seq",
    "trade_id",
    "ts",
    "event_ts",
    "recv_ts_ns",
    "price",
    "qty",
    "side",
    "backfilled",
)

#: Field names of a book entry, in order (documented in the README).
BOOK_FIELDS = (
    "seq",
    "update_id",
    "event_ts",
    "recv_ts_ns",
    "source",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "book_update_id",
    "bids",
    "asks",
)


class FanoutKeys:
    """Caches the stream keys of each symbol (key formatting is per event otherwise)."""

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace
        self._trades: dict[str, str] = {}
        self._book: dict[str, str] = {}

    def trades(self, symbol: str) -> str:
        key = self._trades.get(symbol)
        if key is None:
            key = self._trades[symbol] = trades_key(symbol, self.namespace)
        return key

    def book(self, symbol: str) -> str:
        key = self._book.get(symbol)
        if key is None:
            key = self._book[symbol] = book_key(symbol, self.namespace)
        return key


def trade_entry(key: str, trade: Trade, seq: int, backfilled: bool) -> StreamEntry:
    """The ``trades:{symbol}`` entry of a released trade."""
    return StreamEntry(
        key,
        f"{trade.trade_id}-0",
        {
            "seq": seq,
            "trade_id": trade.trade_id,
            "ts": trade.trade_time_ms,
            "event_ts": trade.event_time_ms,
            "recv_ts_ns": trade.recv_time_ns,
            "price": repr(trade.price),
            "qty": repr(trade.qty),
            "side": trade.side,
            "backfilled": 1 if backfilled else 0,
        },
    )


def book_entry(key: str, ev: BookEvent) -> StreamEntry:
    """The ``book:{symbol}`` entry of a book event (depth levels as JSON ``[[p,q],...]``)."""
    return StreamEntry(
        key,
        f"{ev.seq}-0",
        {
            "seq": ev.seq,
            "update_id": ev.update_id,
            "event_ts": ev.event_ts,
            "recv_ts_ns": ev.recv_ts_ns,
            "source": ev.source,
            "bid_price": repr(ev.bid_price),
            "bid_qty": repr(ev.bid_qty),
            "ask_price": repr(ev.ask_price),
            "ask_qty": repr(ev.ask_qty),
            "book_update_id": ev.book_update_id,
            "bids": ev.bids_json,
            "asks": ev.asks_json,
        },
    )
