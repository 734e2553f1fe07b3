"""One symbol's ingestion state: trade sequencing, the local book, sequence numbers, sinks.

Frames arrive here already parsed and routed by symbol. This object decides what is new
(duplicates across reconnects and make-before-break overlaps are dropped here), puts every
stored event in the symbol's ingest order (``seq``), and hands events to the sinks: the
DuckDB writer (everything needed for replay) and the Redis fan-out (trades and book events).

Two background jobs repair what the feed cannot: ``run_snapshots`` (re)syncs the local book
from REST whenever it is not synced, and ``run_backfill`` fills trade-id gaps from
``historicalTrades``. Both are woken by events, never poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cif._core import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    OrderBook,
    Trade,
    TradeSequencer,
)
from cif.bus.fanout import book_entry, trade_entry
from cif.bus.stream_writer import PackedEntry
from cif.ingest.backoff import Backoff
from cif.ingest.book_events import BookEvent, BookEventDeriver
from cif.ingest.rest_client import MAX_TRADES_PER_REQUEST, RestClient, RestError

log = logging.getLogger(__name__)

#: Bounds of the book agreement check's queues (tickers ahead of the book, book states
#: waiting for the ticker stream to pass them).
_MAX_PENDING_TICKERS = 50_000
_MAX_PENDING_STATES = 10_000

L1 = tuple[float, float, float, float]


class EventSink(Protocol):
    """Where stored events go (``cif.store.live_writer.LiveWriter``)."""

    def add_trade(self, trade: Trade, seq: int, backfilled: bool) -> None: ...
    def add_book_ticker(self, ticker: BookTicker, seq: int) -> None: ...
    def add_depth_update(self, update: DepthUpdate, seq: int) -> None: ...
    def add_depth_snapshot(self, snapshot: DepthSnapshot, seq: int) -> None: ...
    def add_book_event(self, event: BookEvent) -> None: ...


@dataclass(slots=True)
class SymbolStats:
    """Per-symbol counters (also in the periodic stats log line)."""

    trades: int = 0
    backfilled: int = 0
    tickers: int = 0
    diffs: int = 0
    duplicate_tickers: int = 0
    duplicate_diffs: int = 0
    book_events: int = 0
    resyncs: int = 0
    snapshots: int = 0
    snapshots_retried: int = 0
    book_checks: int = 0
    book_agree: int = 0
    backfill_requests: int = 0
    #: latest exchange time seen (ms) and receive-minus-exchange time of it (ms).
    last_event_ts: int = 0
    feed_lag_ms: float = 0.0


class SymbolIngest:
    """The ingestion state of one symbol."""

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
        self.snapshot_wanted = asyncio.Event()
        self.backfill_wanted = asyncio.Event()
        if last_trade_id is not None:
            log.info("%s: resuming after stored trade id %d", symbol, last_trade_id)

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

    # -- repair jobs -------------------------------------------------------------------

    async def run_snapshots(self, rest: RestClient, limit: int, stop: asyncio.Event) -> None:
        """Fetch a snapshot whenever the book waits for one, until it syncs."""
        backoff = Backoff(base_s=0.1, cap_s=5.0)
        while not stop.is_set():
            await self.snapshot_wanted.wait()
            self.snapshot_wanted.clear()
            while not self.book.synced and not stop.is_set():
                try:
                    snapshot = await rest.depth(self.symbol, limit)
                except RestError as exc:
                    log.error("%s: depth snapshot refused: %s", self.symbol, exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                outcome = self.on_snapshot(snapshot)
                if outcome == "synced":
                    backoff.reset()
                    break
                self.stats.snapshots_retried += 1
                log.info(
                    "%s: snapshot at %d not usable (%s, first buffered diff %s): fetching again",
                    self.symbol,
                    snapshot.last_update_id,
                    outcome,
                    self.book.first_buffered_update_id,
                )
                await asyncio.sleep(backoff.next_delay())

    async def run_backfill(self, rest: RestClient, stop: asyncio.Event) -> None:
        """Fill trade-id gaps from ``historicalTrades`` whenever the sequencer holds one."""
        while not stop.is_set():
            await self.backfill_wanted.wait()
            self.backfill_wanted.clear()
            while (gap := self.sequencer.missing()) is not None and not stop.is_set():
                first, last = gap
                if last - first + 1 > self.max_backfill_trades:
                    keep_from = last - self.max_backfill_trades + 1
                    log.error(
                        "%s: gap of %d trades exceeds --max-backfill %d: giving up ids %d..%d",
                        self.symbol,
                        last - first + 1,
                        self.max_backfill_trades,
                        first,
                        keep_from - 1,
                    )
                    self._skip(keep_from)
                    continue
                limit = min(MAX_TRADES_PER_REQUEST, last - first + 1)
                self.stats.backfill_requests += 1
                try:
                    trades = await rest.historical_trades(self.symbol, first, limit)
                except RestError as exc:
                    log.error(
                        "%s: historicalTrades refused (%s): giving up ids %d..%d",
                        self.symbol,
                        exc,
                        first,
                        last,
                    )
                    self._skip(last + 1)
                    continue
                if self.sequencer.missing() != gap:
                    # Live trades or another fill moved the gap while we waited.
                    self._release(self.sequencer.fill(trades))
                    continue
                if not any(first <= t.trade_id <= last for t in trades):
                    log.error(
                        "%s: the exchange no longer serves trade ids %d..%d: giving them up",
                        self.symbol,
                        first,
                        last,
                    )
                    self._skip(last + 1)
                    continue
                self._release(self.sequencer.fill(trades))
                log.debug("%s: backfilled %d trades from id %d", self.symbol, len(trades), first)
                if self.sequencer.missing() is None:
                    log.info("%s: trade gap %d..%d backfilled", self.symbol, first, last)

    def _skip(self, to_id: int) -> None:
        self._release(self.sequencer.skip_to(to_id))
