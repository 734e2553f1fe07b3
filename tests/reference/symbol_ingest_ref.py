"""The gateway's per-symbol ingestion as it was written in Python, before its per-tick part
moved into Rust (``cif._core.IngestCore``): the reference the tests compare the package's
``SymbolIngest`` with, event for event and byte for byte."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from cif._core import BookTicker, DepthSnapshot, DepthUpdate, OrderBook, Trade, TradeSequencer
from cif.bus.fanout import book_entry, trade_entry
from cif.bus.stream_writer import PackedEntry
from cif.ingest.book_events import L1, BookEvent, Levels, levels_json
from cif.ingest.symbol_ingest import EventSink, SymbolStats

log = logging.getLogger(__name__)

_MAX_PENDING_TICKERS = 50_000
_MAX_PENDING_STATES = 10_000


class _Flag:
    """``asyncio.Event``'s ``set``/``is_set`` without a loop."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value

    def clear(self) -> None:
        self.value = False


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


class RefSymbolIngest:
    """``SymbolIngest``'s live-event paths as they were in Python (before ``IngestCore``)."""

    def __init__(
        self,
        symbol: str,
        sink: EventSink,
        publish: Callable[[PackedEntry], None] | None,
        *,
        trades_key: str,
        book_key: str,
        last_trade_id: int | None = None,
        last_seq: int = 0,
        top_k: int = 10,
        max_held_trades: int = 100_000,
        max_backfill_trades: int = 5_000_000,
    ) -> None:
        self.symbol = symbol
        self.stats = SymbolStats()
        self.book = OrderBook(symbol)
        self.sequencer = TradeSequencer(last_trade_id, max_held_trades)
        self.max_backfill_trades = max_backfill_trades
        self._sink = sink
        self._publish = publish
        self._trades_key = trades_key
        self._book_key = book_key
        self._seq = last_seq
        self._deriver = BookEventDeriver(symbol, top_k)
        self._last_diff_u = -1
        self._last_ticker_u = -1
        # Book agreement check: at every book state L the best bid/ask must equal the latest
        # ticker with u <= L (a ticker is pushed on every L1 change). That ticker is known
        # once the ticker stream has passed L, so both sides wait in queues until then.
        self._tickers: deque[tuple[int, L1]] = deque()
        self._ticker_at: tuple[int, L1] | None = None
        self._states: deque[tuple[int, L1]] = deque()
        self.snapshot_wanted = _Flag()
        self.backfill_wanted = _Flag()

    @property
    def seq(self) -> int:
        """The last ingest sequence number given out."""
        return self._seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _note_time(self, event_ts: int, recv_ns: int) -> None:
        if event_ts > self.stats.last_event_ts:
            self.stats.last_event_ts = event_ts
            self.stats.feed_lag_ms = recv_ns / 1e6 - event_ts

    # -- live events -------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        """A live trade: released in id order (gaps held and backfilled, duplicates dropped)."""
        self._note_time(trade.event_time_ms, trade.recv_time_ns)
        self._release(self.sequencer.push(trade))
        if self.sequencer.missing() is not None:
            self.backfill_wanted.set()

    def _release(self, released: list[tuple[Trade, bool]]) -> None:
        for trade, backfilled in released:
            seq = self._next_seq()
            self.stats.trades += 1
            if backfilled:
                self.stats.backfilled += 1
            self._sink.add_trade(trade, seq, backfilled)
            if self._publish is not None:
                self._publish(trade_entry(self._trades_key, trade, seq, backfilled))

    def on_depth(self, update: DepthUpdate) -> None:
        """A depth diff: stored, applied to (or buffered for) the local book."""
        if update.final_update_id <= self._last_diff_u:
            self.stats.duplicate_diffs += 1
            return
        self._last_diff_u = update.final_update_id
        self._note_time(update.event_time_ms, update.recv_time_ns)
        seq = self._next_seq()
        self.stats.diffs += 1
        self._sink.add_depth_update(update, seq)
        outcome = self.book.on_diff(update)
        if outcome == "applied":
            self._after_book_change(seq, update.recv_time_ns, "depth")
        elif outcome == "buffered":
            self.snapshot_wanted.set()
        elif outcome == "gap":
            self.stats.resyncs += 1
            log.warning(
                "%s: depth chain broken (diff U=%d..u=%d does not follow the book): "
                "resyncing from a snapshot (resync #%d)",
                self.symbol,
                update.first_update_id,
                update.final_update_id,
                self.stats.resyncs,
            )
            self.snapshot_wanted.set()

    def on_ticker(self, ticker: BookTicker) -> None:
        """A best bid/ask update: stored, checked against the book, published if L1 moved."""
        if ticker.update_id <= self._last_ticker_u:
            self.stats.duplicate_tickers += 1
            return
        self._last_ticker_u = ticker.update_id
        seq = self._next_seq()
        self.stats.tickers += 1
        self._sink.add_book_ticker(ticker, seq)
        l1 = (ticker.bid_price, ticker.bid_qty, ticker.ask_price, ticker.ask_qty)
        if len(self._tickers) >= _MAX_PENDING_TICKERS:
            self._tickers.popleft()
            self._ticker_at = None  # unknown until the queue catches up
        self._tickers.append((ticker.update_id, l1))
        self._resolve_checks()
        self._emit(self._deriver.on_ticker(ticker, seq, self.stats.last_event_ts, self.book))

    def on_snapshot(self, snapshot: DepthSnapshot) -> str:
        """A REST snapshot: stored and offered to the book; returns the book's outcome."""
        seq = self._next_seq()
        self.stats.snapshots += 1
        self._sink.add_depth_snapshot(snapshot, seq)
        outcome = self.book.on_snapshot(snapshot)
        if outcome == "synced":
            log.info("%s: book synced at update id %d", self.symbol, self.book.last_update_id)
            self._after_book_change(seq, snapshot.recv_time_ns, "snapshot")
        return outcome

    def _after_book_change(self, seq: int, recv_ns: int, source: str) -> None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            if len(self._states) >= _MAX_PENDING_STATES:
                self._states.popleft()
            self._states.append((self.book.last_update_id, (bid[0], bid[1], ask[0], ask[1])))
            self._resolve_checks()
        self._emit(self._deriver.on_book(self.book, seq, self.stats.last_event_ts, recv_ns, source))

    def _resolve_checks(self) -> None:
        states, tickers = self._states, self._tickers
        while states and tickers and tickers[-1][0] > states[0][0]:
            at, book_l1 = states.popleft()
            while tickers and tickers[0][0] <= at:
                self._ticker_at = tickers.popleft()
            if self._ticker_at is None:
                continue
            self.stats.book_checks += 1
            if self._ticker_at[1] == book_l1:
                self.stats.book_agree += 1
            elif self.stats.book_checks - self.stats.book_agree <= 5:
                log.warning(
                    "%s: book at u=%d has L1 %s, the bookTicker at u=%d says %s",
                    self.symbol,
                    at,
                    book_l1,
                    self._ticker_at[0],
                    self._ticker_at[1],
                )

    def _emit(self, event: BookEvent | None) -> None:
        if event is None:
            return
        self.stats.book_events += 1
        self._sink.add_book_event(event)
        if self._publish is not None:
            self._publish(book_entry(self._book_key, event))
