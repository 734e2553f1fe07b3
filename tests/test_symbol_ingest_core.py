"""The gateway's per-symbol ingestion (``SymbolIngest`` on ``cif._core.IngestCore``) against
the Python code it replaced (``tests/reference/symbol_ingest_ref.py``): the real captures,
as recorded and disturbed (duplicates, lost trades and diffs, tickers out of order, a
ticker that contradicts the book), give the same stored events in the same order, the same
stream entries byte for byte, the same counters, ``seq`` and warnings, whether the core's
output is handed on after every event or once per chunk of frames (the gateway)."""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from cif._core import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    IngestCore,
    OrderBook,
    ParseError,
    Trade,
    TradeSequencer,
    parse_frame,
    parse_rest_depth,
)
from cif.bus.stream_writer import PackedEntry
from cif.ingest.book_events import BookEvent
from cif.ingest.capture import iter_capture
from cif.ingest.offline import feed_event
from cif.ingest.symbol_ingest import SymbolIngest
from reference.symbol_ingest_ref import RefSymbolIngest

Event = Trade | BookTicker | DepthUpdate | DepthSnapshot


class CallSink:
    """Records every ``add_*`` call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def add_trade(self, trade: Trade, seq: int, backfilled: bool) -> None:
        self.calls.append(("trade", trade, seq, backfilled))

    def add_book_ticker(self, ticker: BookTicker, seq: int) -> None:
        self.calls.append(("ticker", ticker, seq))

    def add_depth_update(self, update: DepthUpdate, seq: int) -> None:
        self.calls.append(("depth", update, seq))

    def add_depth_snapshot(self, snapshot: DepthSnapshot, seq: int) -> None:
        self.calls.append(("snapshot", snapshot.last_update_id, seq))

    def add_book_event(self, event: BookEvent) -> None:
        assert type(event) is BookEvent
        self.calls.append(("book_event", *event))


class EntrySink(CallSink):
    """A sink taking the core's rows in one call (as the live writer does)."""

    def add_entries(self, entries: list[Any]) -> None:
        for event, seq, backfilled, rows in entries:
            assert rows == 1
            if isinstance(event, Trade):
                self.add_trade(event, seq, backfilled)
            elif isinstance(event, BookTicker):
                self.add_book_ticker(event, seq)
            else:
                self.add_book_event(event)


def capture_events(path: Path) -> list[Event]:
    out: list[Event] = []
    for line in iter_capture(path):
        if line.payload.startswith(b'{"lastUpdateId"'):
            symbol = path.name.split("_")[0].upper()
            out.append(parse_rest_depth(line.payload, symbol, line.recv_time_ns))
            continue
        try:
            ev = parse_frame(line.payload, line.recv_time_ns)
        except ParseError:
            continue
        assert isinstance(ev, Trade | BookTicker | DepthUpdate)
        out.append(ev)
    return out


def disturbed(events: list[Event], seed: int) -> list[Event]:
    """The events with duplicates, losses, swaps and contradicting tickers mixed in."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i, ev in enumerate(events):
        r = rng.random()
        if r < 0.01 and isinstance(ev, Trade):
            continue  # a lost trade: a gap the sequencer holds
        if r < 0.002 and isinstance(ev, DepthUpdate) and i > len(events) // 2:
            continue  # a lost diff: the book resyncs (and stays unsynced here)
        out.append(ev)
        if r > 0.99 and out:
            out.append(out[rng.randrange(max(0, len(out) - 50), len(out))])  # a duplicate
        if 0.98 < r <= 0.99 and len(out) >= 2:
            out[-1], out[-2] = out[-2], out[-1]  # two events swapped
        if 0.9 < r <= 0.95 and isinstance(ev, DepthUpdate):
            # a ticker at the diff's update id that contradicts the book there
            frame = (
                b'{"stream":"%s@bookTicker","data":{"u":%d,"s":"%s","b":"1.5","B":"2.5",'
                b'"a":"99999.5","A":"1.5"}}'
                % (ev.symbol.lower().encode(), ev.final_update_id, ev.symbol.encode())
            )
            out.insert(len(out) - 1, parse_frame(frame, ev.recv_time_ns))
    return out


class Soon:
    """``loop.call_soon`` for a test without a loop: callbacks wait until :meth:`run`."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.ran = 0

    def __call__(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def run(self) -> int:
        ran, self.callbacks = self.callbacks, []
        for callback in ran:
            callback()
        self.ran += len(ran)
        return len(ran)


def run(ingest: Any, events: list[Event], soon: Soon | None = None) -> None:
    rng = random.Random(7)
    for ev in events:
        if soon is not None and rng.random() < 0.1:
            soon.run()  # the end of a received chunk
        feed_event(ingest, ev)
    if soon is not None:
        soon.run()
    # give up on what the sequencer still holds (the backfill job's last resort)
    missing = ingest.sequencer.missing()
    while missing is not None:
        ingest._release(ingest.sequencer.skip_to(missing[1] + 1))
        missing = ingest.sequencer.missing()


def pair(
    symbol: str, sink_type: type[CallSink], soon: Soon | None = None, **kw: Any
) -> tuple[Any, ...]:
    a_sink, b_sink = CallSink(), sink_type()
    a_pub: list[PackedEntry] = []
    b_pub: list[PackedEntry] = []
    keys = {"trades_key": f"trades:{{{symbol}}}", "book_key": f"book:{{{symbol}}}"}
    a = RefSymbolIngest(symbol, a_sink, a_pub.append, **keys, **kw)
    b = SymbolIngest(symbol, b_sink, b_pub.append, **keys, call_soon=soon, **kw)
    return a, a_sink, a_pub, b, b_sink, b_pub


@pytest.mark.parametrize("capture", ["btc_capture", "eth_capture"])
@pytest.mark.parametrize("seed", [None, 1, 2])
def test_the_core_does_what_the_python_code_did(
    capture: str, seed: int | None, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    path: Path = request.getfixturevalue(capture)
    events = capture_events(path)
    if seed is not None:
        events = disturbed(events, seed)
    symbol = events[0].symbol
    sink_type = EntrySink if seed != 2 else CallSink
    # seed 1: the gateway's way, the core's output handed on once per chunk of frames
    soon = Soon() if seed == 1 else None
    a, a_sink, a_pub, b, b_sink, b_pub = pair(symbol, sink_type, soon, last_seq=100, top_k=5)
    with caplog.at_level(logging.INFO):
        run(a, events)
        ref_messages = [r.getMessage() for r in caplog.records]
        caplog.clear()
        run(b, events, soon)
        messages = [r.getMessage() for r in caplog.records]
    assert b_sink.calls == a_sink.calls
    assert len(b_pub) == len(a_pub) > 10_000
    assert b_pub == a_pub
    assert all(type(e) is PackedEntry for e in b_pub)
    assert b.seq == a.seq
    if soon is not None:
        assert soon.ran > 1000  # handed on once per chunk, not per event
        assert soon.ran < len(events) / 5
    assert asdict(b.stats) == asdict(a.stats)
    assert b.sequencer.stats() == a.sequencer.stats()
    assert b.snapshot_wanted.is_set() == a.snapshot_wanted.is_set()
    assert b.backfill_wanted.is_set() == a.backfill_wanted.is_set()
    # the reference's log lines are a subset: it does not log at construction
    assert [m for m in messages if "resuming" not in m] == ref_messages
    s = b.stats
    assert s.book_events > 1000
    assert s.book_checks > 100
    if seed is not None:
        assert s.duplicate_tickers > 0
        assert s.duplicate_diffs > 0
        assert s.book_checks - s.book_agree > 5  # more than the warnings logged
        assert sum("the bookTicker at" in m for m in messages) == 5
        assert b.sequencer.stats()["lost"] > 0


def test_without_publishing_nothing_is_packed_and_the_rows_are_the_same(btc_capture: Path) -> None:
    events = capture_events(btc_capture)[:5000]
    a_sink, b_sink = CallSink(), EntrySink()
    a = RefSymbolIngest("BTCUSDT", a_sink, None, trades_key="t", book_key="b")
    b = SymbolIngest("BTCUSDT", b_sink, None, trades_key="t", book_key="b")
    run(a, events)
    run(b, events)
    assert b_sink.calls == a_sink.calls
    assert len(b_sink.calls) > 4000
    assert b._core.take() == ([], [], [])


def test_the_core_refuses_what_it_cannot_use() -> None:
    book, seqr = OrderBook("BTCUSDT"), TradeSequencer()
    args: list[Any] = ["BTCUSDT", book, seqr, "t", "b", True, 0, 10, BookEvent, PackedEntry]
    with pytest.raises(ValueError, match="top_k"):
        IngestCore(*args[:7], 0, *args[8:])
    core = IngestCore(*args)
    with pytest.raises(ValueError, match="source must be"):
        core.after_book_change(1, 1, "ticker")
    with pytest.raises(TypeError):
        core.on_ticker(object())  # type: ignore[arg-type]
    assert core.next_seq() == 1
    assert core.seq == 1
    with pytest.raises(ValueError, match="top_k"):
        SymbolIngest("BTCUSDT", CallSink(), None, trades_key="t", book_key="b", top_k=0)
