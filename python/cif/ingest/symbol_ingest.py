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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cif._core import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    IngestCore,
    OrderBook,
    Trade,
    TradeSequencer,
)
from cif.bus.stream_writer import PackedEntry
from cif.ingest.backoff import Backoff
from cif.ingest.book_events import BookEvent
from cif.ingest.rest_client import MAX_TRADES_PER_REQUEST, RestClient, RestError

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where stored events go (``cif.store.live_writer.LiveWriter``). A sink that also has
    ``add_entries(rows)`` takes the ``(event, seq, backfilled, 1)`` rows of trades, tickers
    and book events in one call instead."""

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
    """The ingestion state of one symbol.

    The per-tick work (trade release, ticker dedup, ``seq``, book events, the agreement
    check, the stream entries) runs in Rust, in :class:`cif._core.IngestCore`, one call per
    event; what it produces is handed to the sinks in order, after each event or, with
    ``call_soon``, once per turn of the event loop.
    """

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
        call_soon: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        self.symbol = symbol
        self._stats = SymbolStats()
        self.book = OrderBook(symbol)
        self.sequencer = TradeSequencer(last_trade_id, max_held_trades)
        self.max_backfill_trades = max_backfill_trades
        self._sink = sink
        self._store = self._store_all if hasattr(sink, "add_entries") else self._store_each
        self._publish = publish
        self._core = IngestCore(
            symbol,
            self.book,
            self.sequencer,
            trades_key,
            book_key,
            publish is not None,
            last_seq,
            top_k,
            BookEvent,
            PackedEntry,
        )
        # With call_soon (the gateway's event loop), what the core produced is handed on once
        # per turn of the loop (after every frame of a received chunk) instead of after
        # every event; before the sinks are written directly, it is handed on first.
        self._call_soon = call_soon
        self._drain_scheduled = False
        self._last_diff_u = -1
        self.snapshot_wanted = asyncio.Event()
        self.backfill_wanted = asyncio.Event()
        if last_trade_id is not None:
            log.info("%s: resuming after stored trade id %d", symbol, last_trade_id)

    @property
    def seq(self) -> int:
        """The last ingest sequence number given out."""
        return self._core.seq

    @property
    def stats(self) -> SymbolStats:
        """The counters (those of the Rust core brought up to date)."""
        s = self._stats
        (
            s.trades,
            s.backfilled,
            s.tickers,
            s.duplicate_tickers,
            s.book_events,
            s.book_checks,
            s.book_agree,
            s.last_event_ts,
            s.feed_lag_ms,
        ) = self._core.counters()
        return s

    # -- live events -------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        """A live trade: released in id order (gaps held and backfilled, duplicates dropped)."""
        if self._core.on_trade(trade):
            self.backfill_wanted.set()
        self._produced()

    def _release(self, released: list[tuple[Trade, bool]]) -> None:
        self._core.release(released)
        self.drain()

    def on_depth(self, update: DepthUpdate) -> None:
        """A depth diff: stored, applied to (or buffered for) the local book."""
        if update.final_update_id <= self._last_diff_u:
            self._stats.duplicate_diffs += 1
            return
        self._last_diff_u = update.final_update_id
        if self._drain_scheduled:  # earlier rows first, as the sinks saw them before
            self.drain()
        core = self._core
        core.note_time(update.event_time_ms, update.recv_time_ns)
        seq = core.next_seq()
        self._stats.diffs += 1
        self._sink.add_depth_update(update, seq)
        outcome = self.book.on_diff(update)
        if outcome == "applied":
            core.after_book_change(seq, update.recv_time_ns, "depth")
            self._produced()
        elif outcome == "buffered":
            self.snapshot_wanted.set()
        elif outcome == "gap":
            self._stats.resyncs += 1
            log.warning(
                "%s: depth chain broken (diff U=%d..u=%d does not follow the book): "
                "resyncing from a snapshot (resync #%d)",
                self.symbol,
                update.first_update_id,
                update.final_update_id,
                self._stats.resyncs,
            )
            self.snapshot_wanted.set()

    def on_ticker(self, ticker: BookTicker) -> None:
        """A best bid/ask update: stored, checked against the book, published if L1 moved."""
        self._core.on_ticker(ticker)
        self._produced()

    def on_snapshot(self, snapshot: DepthSnapshot) -> str:
        """A REST snapshot: stored and offered to the book; returns the book's outcome."""
        if self._drain_scheduled:
            self.drain()
        seq = self._core.next_seq()
        self._stats.snapshots += 1
        self._sink.add_depth_snapshot(snapshot, seq)
        outcome = self.book.on_snapshot(snapshot)
        if outcome == "synced":
            log.info("%s: book synced at update id %d", self.symbol, self.book.last_update_id)
            self._core.after_book_change(seq, snapshot.recv_time_ns, "snapshot")
            self.drain()
        return outcome

    def _produced(self) -> None:
        call_soon = self._call_soon
        if call_soon is None:
            self.drain()
        elif not self._drain_scheduled:
            self._drain_scheduled = True
            call_soon(self.drain)

    def drain(self) -> None:
        """Hand what the core produced to the sinks; log what the agreement check found."""
        self._drain_scheduled = False
        rows, entries, disagreements = self._core.take()
        if rows:
            self._store(rows)
        publish = self._publish
        if publish is not None:
            for entry in entries:
                publish(entry)
        for at, book_l1, ticker_u, ticker_l1 in disagreements:
            log.warning(
                "%s: book at u=%d has L1 %s, the bookTicker at u=%d says %s",
                self.symbol,
                at,
                book_l1,
                ticker_u,
                ticker_l1,
            )

    def _store_all(self, rows: list[Any]) -> None:
        self._sink.add_entries(rows)  # type: ignore[attr-defined]

    def _store_each(self, rows: list[Any]) -> None:
        """A sink without ``add_entries`` gets one call per row, by the row's kind."""
        sink = self._sink
        for event, seq, backfilled, _ in rows:
            if isinstance(event, Trade):
                sink.add_trade(event, seq, backfilled)
            elif isinstance(event, BookTicker):
                sink.add_book_ticker(event, seq)
            else:
                sink.add_book_event(event)

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
                self._stats.snapshots_retried += 1
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
                self._stats.backfill_requests += 1
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
