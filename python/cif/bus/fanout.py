"""Stream entries for the fan-out: normalized trades and book events as Redis Stream fields.

Entry IDs come from the data, so re-sending an event is a no-op (Redis refuses an ID at or
below the stream's top): a trade is ``<trade id>-0`` (trades are released in id order) and a
book event ``<seq>-0``. Every entry carries ``seq``, the symbol's ingest sequence number,
which totally orders a symbol's trades and book events for consumers that merge them.
Prices and sizes are written as Python's shortest round-trip decimal (``repr``), so a
consumer's ``float()`` gets the exact double back. The entries are packed in Rust
(``cif._core.pack_trade_entry`` / ``pack_book_entry``), one call per entry: this runs for
every tick on the event loop the whole pipeline shares.
"""

from __future__ import annotations

from cif._core import BOOK_FIELDS, TRADE_FIELDS, Trade, pack_book_entry, pack_trade_entry
from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import PackedEntry
from cif.ingest.book_events import BookEvent

# TRADE_FIELDS and BOOK_FIELDS, the entries' field names in order (documented in the
# README), are defined once, by the Rust encoders.
__all__ = ["BOOK_FIELDS", "TRADE_FIELDS", "FanoutKeys", "book_entry", "trade_entry"]

_N_TRADE = len(TRADE_FIELDS)
_N_BOOK = len(BOOK_FIELDS)


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


def trade_entry(key: str, trade: Trade, seq: int, backfilled: bool) -> PackedEntry:
    """The ``trades:{symbol}`` entry of a released trade (fields: :data:`TRADE_FIELDS`)."""
    return PackedEntry(
        key, f"{trade.trade_id}-0", _N_TRADE, pack_trade_entry(trade, seq, backfilled)
    )


def book_entry(key: str, ev: BookEvent) -> PackedEntry:
    """The ``book:{symbol}`` entry of a book event (fields: :data:`BOOK_FIELDS`; depth
    levels as JSON ``[[p,q],...]``)."""
    body = pack_book_entry(*ev.record())
    return PackedEntry(key, f"{ev.seq}-0", _N_BOOK, body)
