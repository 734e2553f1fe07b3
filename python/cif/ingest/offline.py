"""The gateway's per-symbol ingestion state driven offline, from a capture file.

``cif live`` and ``cif import`` must derive the same book events from the same frames: both
run ``SymbolIngest``, live from the sockets and here from a capture's lines in file order
(the capture's own REST snapshot syncs the book where it was taken).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cif._core import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    ParseError,
    Trade,
    parse_frame,
    parse_rest_depth,
)
from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import PackedEntry
from cif.ingest.book_events import BookEvent
from cif.ingest.capture import iter_capture
from cif.ingest.symbol_ingest import EventSink, SymbolIngest

#: Depth levels on book events by default (the gateway's ``--top-k``).
DEFAULT_TOP_K = 10


class _NullSink:
    """An ingest sink that stores nothing: the stream entries are what is wanted."""

    def add_trade(self, trade: Trade, seq: int, backfilled: bool) -> None:
        pass

    def add_book_ticker(self, ticker: BookTicker, seq: int) -> None:
        pass

    def add_depth_update(self, update: DepthUpdate, seq: int) -> None:
        pass

    def add_depth_snapshot(self, snapshot: DepthSnapshot, seq: int) -> None:
        pass

    def add_book_event(self, event: BookEvent) -> None:
        pass


def feed_capture(
    path: str | Path,
    symbol: str,
    sink: EventSink,
    publish: Callable[[PackedEntry], None] | None,
    top_k: int = DEFAULT_TOP_K,
    last_seq: int = 0,
) -> SymbolIngest:
    """Run ``symbol``'s frames of a capture through the gateway's per-symbol state, in file
    order, into ``sink`` (what DuckDB stores) and ``publish`` (what Redis gets); ``seq``
    continues after ``last_seq``. Returns the state (its ``stats`` say what happened)."""
    sym = symbol.lower()
    ingest = SymbolIngest(
        sym,
        sink,
        publish,
        trades_key=trades_key(sym),
        book_key=book_key(sym),
        top_k=top_k,
        last_seq=last_seq,
    )
    for line in iter_capture(path):
        if line.payload.startswith(b'{"lastUpdateId"'):
            ingest.on_snapshot(parse_rest_depth(line.payload, sym.upper(), line.recv_time_ns))
            continue
        try:
            ev = parse_frame(line.payload, line.recv_time_ns)
        except ParseError:
            continue
        if getattr(ev, "symbol", "").lower() != sym:
            continue
        feed_event(ingest, ev)
    return ingest


def feed_event(ingest: SymbolIngest, ev: object) -> None:
    """One parsed event to ``ingest``'s method for its kind (other kinds are not ingested)."""
    if isinstance(ev, Trade):
        ingest.on_trade(ev)
    elif isinstance(ev, DepthUpdate):
        ingest.on_depth(ev)
    elif isinstance(ev, BookTicker):
        ingest.on_ticker(ev)
    elif isinstance(ev, DepthSnapshot):
        ingest.on_snapshot(ev)


def capture_stream_entries(
    path: str | Path, symbol: str, top_k: int = DEFAULT_TOP_K, last_seq: int = 0
) -> list[PackedEntry]:
    """The stream entries the gateway publishes for ``symbol`` when it receives the capture's
    frames in file order (see :func:`feed_capture`): the trades and book events ``cif live``
    publishes for the same frames."""
    entries: list[PackedEntry] = []
    feed_capture(path, symbol, _NullSink(), entries.append, top_k, last_seq)
    return entries
