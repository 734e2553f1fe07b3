"""LiveWriter: real parsed events into a real DuckDB file, in batches, off the event loop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

import cif._core as core
from cif.ingest.book_events import BookEvent
from cif.ingest.capture import iter_capture
from cif.ingest.offline import feed_capture
from cif.store import live_writer, writer_process
from cif.store.importer import import_file
from cif.store.live_writer import LiveWriter
from cif.store.schema import TABLES, ensure_schema
from cif.store.writer import concat_tables, insert_columns, insert_tables
from event_builders import diff, snapshot, ticker, trade
from reference import live_columns_ref as columns_ref

#: Generous bound on waits for the writer's own progress; never reached when it works.
GUARD_S = 10.0


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_flush_writes_every_table_with_seq(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()
    w.open()  # idempotent
    w.add_depth_snapshot(snapshot(100), 1)
    w.add_book_ticker(ticker(101), 2)
    w.add_depth_update(diff(101, 103), 3)
    w.add_trade(trade(7), 4, True)
    w.add_trade(trade(3, sym="ETHUSDT", maker=False), 1, False)
    assert w.pending_rows == 1 + 2 + 1 + 1 + 3 + 1 + 1

    inserted = asyncio.run(w.flush())

    assert inserted == 10
    assert w.pending_rows == 0
    assert w.stats.rows_written == {
        "trades": 2,
        "book_tickers": 1,
        "depth_updates": 1,
        "depth_snapshots": 1,
        "depth_levels": 5,
        "book_events": 0,
    }
    assert w.stats.flushes == 1
    assert w.stats.last_flush_wall_ns is not None
    assert w.last_trade_ids() == {"BTCUSDT": 7, "ETHUSDT": 3}
    assert w.max_seq() == {"BTCUSDT": 4, "ETHUSDT": 1}
    w.close()

    assert rows(duckdb_path, "SELECT * FROM trades ORDER BY symbol") == [
        ("BTCUSDT", 7, 907, 1007, 10_007, 1.5, 2.0, "sell", True, 4),
        ("ETHUSDT", 3, 903, 1003, 10_003, 1.5, 2.0, "buy", False, 1),
    ]
    # spot bookTicker carries no event time: NULL, as imports store it
    assert rows(duckdb_path, "SELECT * FROM book_tickers") == [
        ("BTCUSDT", 101, None, 20_101, 1.0, 3.0, 1.1, 4.0, 2)
    ]
    assert rows(duckdb_path, "SELECT * FROM depth_updates") == [
        ("BTCUSDT", 101, 103, 5103, 30_103, 3)
    ]
    assert rows(duckdb_path, "SELECT * FROM depth_snapshots") == [("BTCUSDT", 100, 40_000, 1)]
    levels = rows(
        duckdb_path,
        "SELECT source, update_id, pos, side, price, qty, seq FROM depth_levels ORDER BY seq, pos",
    )
    assert levels == [
        ("snapshot", 100, 0, "bid", 1.0, 5.0, 1),
        ("snapshot", 100, 1, "ask", 1.1, 6.0, 1),
        ("diff", 103, 0, "bid", 1.0, 3.0, 3),
        ("diff", 103, 1, "bid", 0.99, 0.0, 3),
        ("diff", 103, 2, "ask", 1.1, 4.0, 3),
    ]


def test_live_history_equals_imported_history(
    duckdb_path: Path, tmp_path: Path, btc_capture: Path
) -> None:
    lines = list(iter_capture(btc_capture))
    events = [core.parse_frame(ln.payload, ln.recv_time_ns, symbol="BTCUSDT") for ln in lines]
    w = LiveWriter(duckdb_path)
    w.open()
    # The gateway's own per-symbol state numbers the events and derives the book events.
    ingest = feed_capture(btc_capture, "btcusdt", w, None)
    assert ingest.seq == len(lines)  # one event per line: seq = arrival order
    asyncio.run(w.flush())
    w.close()

    trades = [ev for ev in events if isinstance(ev, core.Trade)]
    stored = rows(duckdb_path, "SELECT trade_id, price, side FROM trades ORDER BY seq")
    assert len(stored) == 9757
    assert stored == [(t.trade_id, t.price, t.side) for t in trades]

    # The batch importer is the reference: live ingestion must store identical rows.
    imported = tmp_path / "imported.duckdb"
    with duckdb.connect(str(imported)) as con:
        import_file(con, btc_capture)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{duckdb_path}' AS live (READ_ONLY)")
        con.execute(f"ATTACH '{imported}' AS imp (READ_ONLY)")
        for table in TABLES:
            n_live = con.execute(f"SELECT count(*) FROM live.{table}").fetchall()[0][0]
            n_imp = con.execute(f"SELECT count(*) FROM imp.{table}").fetchall()[0][0]
            only_live = con.execute(
                f"SELECT count(*) FROM (FROM live.{table} EXCEPT ALL FROM imp.{table})"
            ).fetchall()[0][0]
            assert (table, n_live, only_live) == (table, n_imp, 0)


def test_a_resent_trade_is_stored_once(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()
    w.add_trade(trade(1), 1, False)
    assert asyncio.run(w.flush()) == 1
    w.add_trade(trade(1), 2, False)
    w.add_trade(trade(2), 3, False)
    assert asyncio.run(w.flush()) == 1
    assert w.stats.duplicates_ignored == 1
    assert w.stats.rows_written["trades"] == 2
    w.close()
    assert rows(duckdb_path, "SELECT trade_id, seq FROM trades ORDER BY trade_id") == [
        (1, 1),
        (2, 3),
    ]


def test_a_failed_flush_keeps_its_rows_and_a_later_one_writes_them(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()
    w.add_book_ticker(ticker(50), 1)
    w.add_trade(trade(1), 2, False)
    # The writer's own connection renames the table away (no other process can open the
    # file): its INSERT fails for real, inside its transaction.
    w._call(writer_process.query, "ALTER TABLE trades RENAME TO trades_away")
    assert asyncio.run(w.flush()) == 0
    assert w.stats.flush_errors == 1
    assert w.pending_rows == 2
    # all or nothing: the ticker of the failed batch was rolled back too
    assert w._call(writer_process.query, "SELECT count(*) FROM book_tickers") == [(0,)]
    w.add_trade(trade(2), 3, False)
    w._call(writer_process.query, "ALTER TABLE trades_away RENAME TO trades")
    assert asyncio.run(w.flush()) == 3
    assert w.pending_rows == 0
    w.close()
    assert rows(duckdb_path, "SELECT trade_id, seq FROM trades ORDER BY seq") == [(1, 2), (2, 3)]
    assert rows(duckdb_path, "SELECT update_id FROM book_tickers") == [(50,)]


def test_a_full_queue_drops_the_oldest_rows(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path, max_pending_rows=5)
    w.open()
    for tid in range(1, 9):
        w.add_trade(trade(tid), tid, False)
    assert (w.pending_rows, w.stats.dropped_rows) == (5, 3)
    # a diff is 1 + 3 level rows: four more trades make room for it
    w.add_depth_update(diff(10, 12), 9)
    assert (w.pending_rows, w.stats.dropped_rows) == (5, 7)
    asyncio.run(w.flush())
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades") == [(8,)]
    assert rows(duckdb_path, "SELECT count(*) FROM depth_levels") == [(3,)]


def test_rows_put_back_after_a_failure_are_the_oldest(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path, max_pending_rows=4)
    w.open()
    for tid in (1, 2, 3):
        w.add_trade(trade(tid), tid, False)
    w._call(writer_process.query, "ALTER TABLE trades RENAME TO trades_away")
    assert asyncio.run(w.flush()) == 0
    for tid in (4, 5, 6):
        w.add_trade(trade(tid), tid, False)
    w._call(writer_process.query, "ALTER TABLE trades_away RENAME TO trades")
    assert (w.pending_rows, w.stats.dropped_rows) == (4, 2)
    assert asyncio.run(w.flush()) == 4
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades ORDER BY 1") == [(3,), (4,), (5,), (6,)]


def test_events_added_during_a_flush_wait_for_the_next(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()

    async def go() -> tuple[int, int, int]:
        w.add_trade(trade(1), 1, False)
        task = asyncio.create_task(w.flush())
        # One scheduler turn: the flush takes the queue and waits on the writer process.
        await asyncio.sleep(0)
        assert w.pending_rows == 0
        w.add_trade(trade(2), 2, False)
        first = await task
        queued = w.pending_rows
        return first, queued, await w.flush()

    assert asyncio.run(go()) == (1, 1, 1)
    w.close()


def test_a_cancelled_flush_requeues_its_rows(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()

    async def go() -> int:
        w.add_trade(trade(1), 1, False)
        task = asyncio.create_task(w.flush())
        await asyncio.sleep(0)  # one scheduler turn: the flush is waiting on the writer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # whether or not the writer committed them, the rows are queued again
        return w.pending_rows

    assert asyncio.run(go()) == 1
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades") == [(1,)]


def test_run_flushes_on_its_own_and_seals_at_the_end(duckdb_path: Path, tmp_path: Path) -> None:
    history = tmp_path / "history"
    w = LiveWriter(duckdb_path, history, flush_interval_s=0.02, seal_interval_s=3600)
    w.open()

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        w.add_trade(trade(1), 1, False)
        await asyncio.wait_for(w.wait_for_flushes(1), GUARD_S)
        assert w.stats.segments_written == 0  # seal interval not reached
        w.add_trade(trade(2), 2, False)
        await asyncio.wait_for(w.wait_for_flushes(2), GUARD_S)
        w.add_trade(trade(3), 3, False)
        stop.set()
        await asyncio.wait_for(task, GUARD_S)

    asyncio.run(go())
    assert w.pending_rows == 0
    assert w.stats.rows_written["trades"] == 3
    assert w.stats.segments_written == 1  # the final seal: trades only
    w.close()
    assert rows(duckdb_path, "SELECT count(*) FROM trades") == [(3,)]
    assert len(list(history.glob("trades/date=*/seg-*.parquet"))) == 1


def test_the_writer_uses_one_duckdb_thread_unless_told_otherwise(
    duckdb_path: Path, tmp_path: Path
) -> None:
    """A seal with a DuckDB thread per core starved the event loop and Redis for seconds;
    the live writer's connection runs on one thread by default."""

    def threads(w: LiveWriter) -> int:
        (row,) = w._call(writer_process.query, "SELECT current_setting('threads')")
        return int(row[0])  # type: ignore[call-overload]

    w = LiveWriter(duckdb_path)
    w.open()
    try:
        assert threads(w) == 1
    finally:
        w.close()
    w = LiveWriter(tmp_path / "other.duckdb", threads=2)
    w.open()
    try:
        assert threads(w) == 2
    finally:
        w.close()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        LiveWriter(duckdb_path, threads=0)


def test_a_reopened_writer_resumes_after_the_stored_rows(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    w.open()
    w.add_trade(trade(41), 1, False)
    w.add_book_ticker(ticker(9), 2)
    w.close()  # flushes what is queued
    w.close()  # idempotent

    again = LiveWriter(duckdb_path)
    again.open()
    assert again.last_trade_ids() == {"BTCUSDT": 41}
    assert again.max_seq() == {"BTCUSDT": 2}
    again.close()


def test_a_writer_that_is_not_open_refuses_work(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path)
    with pytest.raises(RuntimeError, match="not open"):
        w.last_trade_ids()
    with pytest.raises(RuntimeError, match="not open"):
        asyncio.run(w.flush())
    with pytest.raises(ValueError, match="must be > 0"):
        LiveWriter(duckdb_path, max_pending_rows=0)


class _Queue:
    """A sink that keeps the live writer's queue entries, to build columns from them."""

    def __init__(self) -> None:
        self.entries: list[tuple[object, int, bool, int]] = []

    def add_trade(self, trade: core.Trade, seq: int, backfilled: bool) -> None:
        self.entries.append((trade, seq, backfilled, 1))

    def add_book_ticker(self, ticker: core.BookTicker, seq: int) -> None:
        self.entries.append((ticker, seq, False, 1))

    def add_depth_update(self, update: core.DepthUpdate, seq: int) -> None:
        self.entries.append((update, seq, False, 1 + len(update.bids) + len(update.asks)))

    def add_depth_snapshot(self, snapshot: core.DepthSnapshot, seq: int) -> None:
        self.entries.append((snapshot, seq, False, 1 + len(snapshot.bids) + len(snapshot.asks)))

    def add_book_event(self, event: BookEvent) -> None:
        self.entries.append((event, event.seq, False, 1))


def test_rust_columns_equal_the_python_reference_on_the_real_capture(btc_capture: Path) -> None:
    q = _Queue()
    feed_capture(btc_capture, "btcusdt", q, None)
    q.add_trade(trade(3, sym="ETHUSDT", maker=False), 99_999, True)  # a second symbol
    kinds = {type(e[0]).__name__ for e in q.entries}
    assert kinds == {"Trade", "BookTicker", "DepthUpdate", "DepthSnapshot", "BookEvent"}

    got = core.live_store_columns(q.entries)
    want = columns_ref.columns(q.entries)

    assert list(got) == list(want) == list(TABLES)
    for table, cols in want.items():
        assert list(got[table]) == list(cols), table
        for name, ref in cols.items():
            col = got[table][name]
            assert (table, name, col.dtype) == (table, name, ref.dtype)
            assert col.tolist() == ref.tolist(), (table, name)
    assert len(got["depth_levels"]["pos"]) > 1000


def test_texts_as_codes_decode_to_the_same_columns_and_store_the_same_rows(
    btc_capture: Path, tmp_path: Path
) -> None:
    q = _Queue()
    feed_capture(btc_capture, "btcusdt", q, None)
    q.add_trade(trade(3, sym="ETHUSDT", maker=False), 99_999, True)
    plain = core.live_store_columns(q.entries)
    coded = core.live_store_columns(q.entries, texts_as_codes=True)

    n_coded = 0
    for table, cols in plain.items():
        assert list(coded[table]) == list(cols), table
        for name, want in cols.items():
            got = coded[table][name]
            if isinstance(got, tuple):
                codes, values = got
                assert codes.dtype == np.uint32
                assert len(set(values)) == len(values)
                assert [values[c] for c in codes.tolist()] == want.tolist(), (table, name)
                n_coded += 1
            else:
                assert got.dtype == want.dtype, (table, name)
                assert got.tolist() == want.tolist(), (table, name)
    # symbol in every table, side in trades and levels, source in levels and book events
    assert n_coded == len(plain) + 4

    # DuckDB stores a coded column's texts, not its codes
    stored = {}
    for label, tables in (("plain", plain), ("coded", coded)):
        db = tmp_path / f"{label}.duckdb"
        with duckdb.connect(str(db)) as con:
            ensure_schema(con)
            for table, cols in tables.items():
                insert_columns(con, table, cols, ignore_duplicates=False)
            stored[label] = {
                t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES
            }
    assert stored["coded"] == stored["plain"]
    assert len(stored["plain"]["depth_levels"]) > 1000


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("not an event", 1, False, 1)], "cannot store a str"),
        ([(trade(1), 1, False)], "expected (event, seq, backfilled, rows)"),
        ([[trade(1), 1, False, 1]], "expected (event, seq, backfilled, rows)"),
        ([((1, 2, 3), 1, False, 1)], "a book event has 15 fields"),
        ([(trade(1), "x", False, 1)], "int"),
    ],
)
def test_entries_of_another_shape_are_refused_with_a_message(
    entries: list[object], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        core.live_store_columns(entries)
    assert core.live_store_columns([])["trades"]["seq"].tolist() == []


def test_the_writer_process_runs_at_a_lower_priority(duckdb_path: Path, tmp_path: Path) -> None:
    """Its flushes are never urgent: the event loop, Redis and the feed go first. The
    nice value is the writer process's own: this process keeps its priority."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    for niceness, path in ((19, duckdb_path), (0, tmp_path / "other.duckdb")):
        w = LiveWriter(path, niceness=niceness)
        w.open()
        try:
            assert w.worker_pid() != os.getpid()
            assert w._call(writer_process.priority) == min(19, own + niceness)
        finally:
            w.close()
    assert os.getpriority(os.PRIO_PROCESS, 0) == own
    with pytest.raises(ValueError, match=re.escape("niceness must be in 0..19")):
        LiveWriter(duckdb_path, niceness=20)


def test_a_killed_writer_process_is_replaced_and_loses_no_rows(duckdb_path: Path) -> None:
    """DuckDB runs in a child process: if it dies, the rows of the flush it took are still
    queued here, a new process takes the file over, and they are written."""
    w = LiveWriter(duckdb_path)
    w.open()
    w.add_trade(trade(1), 1, False)
    assert asyncio.run(w.flush()) == 1
    first = w.worker_pid()
    os.kill(first, signal.SIGKILL)
    w.add_trade(trade(2), 2, False)
    w.add_book_ticker(ticker(7), 3)
    # The flush that finds it dead keeps its rows; the new process writes them next time.
    assert asyncio.run(w.flush()) == 0
    assert (w.stats.worker_restarts, w.stats.flush_errors, w.pending_rows) == (1, 1, 2)
    assert w.worker_pid() not in (first, os.getpid())
    w.add_trade(trade(3), 4, False)
    assert asyncio.run(w.flush()) == 3
    w.close()
    assert rows(duckdb_path, "SELECT trade_id, seq FROM trades ORDER BY seq") == [
        (1, 1),
        (2, 2),
        (3, 4),
    ]
    assert rows(duckdb_path, "SELECT update_id FROM book_tickers") == [(7,)]


def _decoded(col: object) -> list[object]:
    """A column as plain values, a ``(codes, values)`` text column decoded."""
    if isinstance(col, tuple):
        codes, values = col
        return [values[c] for c in codes.tolist()]
    assert isinstance(col, np.ndarray)
    return list(col.tolist())


def test_chunks_joined_give_the_columns_of_all_their_events(btc_capture: Path) -> None:
    q = _Queue()
    feed_capture(btc_capture, "btcusdt", q, None)
    q.add_trade(trade(3, sym="ETHUSDT", maker=False), 99_999, True)  # a new text, last
    entries = q.entries[:6000] + q.entries[-1:]
    whole = core.live_store_columns(entries)
    rng = np.random.default_rng(7)
    cuts = sorted({0, len(entries), *rng.integers(1, len(entries), 12).tolist(), 5, 6})
    chunks = [
        core.live_store_columns(entries[a:b], texts_as_codes=True)
        for a, b in itertools.pairwise(cuts)
    ]

    joined = concat_tables(chunks)

    assert list(joined) == list(whole)
    for table, cols in whole.items():
        assert list(joined[table]) == list(cols), table
        for name, want in cols.items():
            got = joined[table][name]
            if not isinstance(got, tuple):
                assert got.dtype == want.dtype, (table, name)
            assert _decoded(got) == want.tolist(), (table, name)
    assert joined["trades"]["symbol"][1] == ["BTCUSDT", "ETHUSDT"]  # texts in first use
    with pytest.raises(ValueError, match="other tables or columns"):
        concat_tables([chunks[0], {"trades": chunks[0]["trades"]}])


def test_chunks_go_to_the_writer_as_they_fill_and_the_flush_builds_the_rest(
    duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns are built every ``chunk_entries`` events and sent ahead; a flush builds only
    the newest few events' columns and writes everything in one transaction."""
    built: list[int] = []

    def spy(entries: list[object], *, texts_as_codes: bool) -> object:
        built.append(len(entries))
        return core.live_store_columns(entries, texts_as_codes=texts_as_codes)

    monkeypatch.setattr(live_writer, "live_store_columns", spy)
    w = LiveWriter(duckdb_path, chunk_entries=4)
    w.open()
    for tid in range(1, 11):
        w.add_trade(trade(tid), tid, False)
    assert built == [4, 4]
    assert w._call(writer_process.staged_ids) == [0, 1]  # runs after the stage calls
    assert w.pending_rows == 10

    assert asyncio.run(w.flush()) == 10

    assert built == [4, 4, 2]
    assert w._call(writer_process.staged_ids) == []
    w.close()
    assert rows(duckdb_path, "SELECT trade_id, seq FROM trades ORDER BY seq") == [
        (t, t) for t in range(1, 11)
    ]
    with pytest.raises(ValueError, match="chunk_entries must be >= 1"):
        LiveWriter(duckdb_path, chunk_entries=0)


def test_on_an_event_loop_a_full_chunk_is_built_after_the_delay_not_at_once(
    duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the event loop, the events' own burst goes first: a full chunk waits
    ``chunk_build_delay_s`` before its columns are built and sent ahead, and one timer
    builds every chunk that filled meanwhile, in order. A flush before it builds them
    itself; nothing is built twice, nothing is lost."""
    built: list[int] = []

    def spy(entries: list[object], *, texts_as_codes: bool) -> object:
        built.append(len(entries))
        return core.live_store_columns(entries, texts_as_codes=texts_as_codes)

    monkeypatch.setattr(live_writer, "live_store_columns", spy)
    with pytest.raises(ValueError, match="chunk_build_delay_s must be >= 0"):
        LiveWriter(duckdb_path, chunk_build_delay_s=-1.0)
    w = LiveWriter(duckdb_path, chunk_entries=4, chunk_build_delay_s=0.05)
    w.open()

    ran = asyncio.Event()
    build_waiting = w._build_waiting

    def build_and_tell() -> None:
        build_waiting()
        ran.set()

    monkeypatch.setattr(w, "_build_waiting", build_and_tell)

    async def timed_build() -> None:
        for tid in range(1, 11):
            w.add_trade(trade(tid), tid, False)
        assert built == []  # two full chunks, not built yet
        assert w._build_timer is not None
        await asyncio.wait_for(ran.wait(), GUARD_S)
        assert built == [4, 4]
        assert w._call(writer_process.staged_ids) == [0, 1]
        assert await w.flush() == 10
        assert built == [4, 4, 2]  # the flush built only the newest events

    async def flush_first() -> None:
        for tid in range(11, 16):
            w.add_trade(trade(tid), tid, False)
        assert built == [4, 4, 2]
        assert w._build_timer is not None
        ran.clear()  # before the flush: the timer may fire while the writer process works
        assert await w.flush() == 5  # before the timer: the flush builds both chunks
        assert built == [4, 4, 2, 4, 1]
        await asyncio.wait_for(ran.wait(), GUARD_S)  # the timer finds nothing left to build
        assert built == [4, 4, 2, 4, 1]

    async def both() -> None:
        await timed_build()
        await flush_first()

    asyncio.run(both())
    assert w._call(writer_process.staged_ids) == []
    w.close()
    assert rows(duckdb_path, "SELECT trade_id, seq FROM trades ORDER BY seq") == [
        (t, t) for t in range(1, 16)
    ]


def test_a_chunk_that_cannot_be_built_is_logged_once_and_later_chunks_still_go_ahead(
    duckdb_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Building a chunk's columns ahead fails: logged once, not tried again with every
    chunk after it, and the chunks after it are still sent ahead. The flush tries it again
    (and keeps every row while it fails)."""
    broken = {2}

    def flaky(entries: list[Any], *, texts_as_codes: bool) -> object:
        if any(e[1] in broken for e in entries):
            raise ValueError("cannot build")
        return core.live_store_columns(entries, texts_as_codes=texts_as_codes)

    monkeypatch.setattr(live_writer, "live_store_columns", flaky)
    w = LiveWriter(duckdb_path, chunk_entries=2)
    w.open()
    with caplog.at_level(logging.ERROR, logger=live_writer.__name__):
        for tid in range(1, 7):
            w.add_trade(trade(tid), tid, False)
    failures = [r for r in caplog.records if "building the DuckDB columns" in r.getMessage()]
    assert len(failures) == 1
    assert w._call(writer_process.staged_ids) == [0, 1]  # trades 3-4 and 5-6

    assert asyncio.run(w.flush()) == 0
    assert (w.stats.flush_errors, w.pending_rows) == (1, 6)
    broken.clear()
    assert asyncio.run(w.flush()) == 6
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades ORDER BY 1") == [
        (t,) for t in range(1, 7)
    ]


def test_chunks_dropped_from_a_full_queue_are_let_go_in_the_writer_too(duckdb_path: Path) -> None:
    w = LiveWriter(duckdb_path, chunk_entries=2, max_pending_rows=5)
    w.open()
    for tid in range(1, 9):
        w.add_trade(trade(tid), tid, False)
    # trades 1-2 went as chunk 0, then 3-4, 5-6 and 7-8; the oldest three were dropped
    assert (w.pending_rows, w.stats.dropped_rows) == (5, 3)

    assert asyncio.run(w.flush()) == 5

    assert w._call(writer_process.staged_ids) == []  # dropped chunks forgotten, no leak
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades ORDER BY 1") == [
        (t,) for t in range(4, 9)
    ]


def test_a_staged_chunk_the_writer_no_longer_has_is_sent_again_whole(duckdb_path: Path) -> None:
    """A write naming a chunk the writer process does not keep fails before writing
    anything; the rows stay queued and the next flush sends their columns whole."""
    w = LiveWriter(duckdb_path, chunk_entries=2)
    w.open()
    w.add_trade(trade(1), 1, False)
    w.add_trade(trade(2), 2, False)
    assert w._call(writer_process.staged_ids) == [0]
    w._call(writer_process.write, [], [0])  # the writer lets chunk 0 go
    w.add_trade(trade(3), 3, False)

    assert asyncio.run(w.flush()) == 0

    assert (w.stats.flush_errors, w.pending_rows) == (1, 3)
    assert w._call(writer_process.query, "SELECT count(*) FROM trades") == [(0,)]
    assert asyncio.run(w.flush()) == 3
    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades ORDER BY 1") == [(1,), (2,), (3,)]


def test_chunks_staged_in_a_killed_writer_process_are_written_by_the_next(
    duckdb_path: Path,
) -> None:
    w = LiveWriter(duckdb_path, chunk_entries=2)
    w.open()
    for tid in (1, 2):
        w.add_trade(trade(tid), tid, False)
    first = w.worker_pid()
    assert w._call(writer_process.staged_ids) == [0]
    os.kill(first, signal.SIGKILL)
    for tid in (3, 4, 5):
        w.add_trade(trade(tid), tid, False)

    assert asyncio.run(w.flush()) == 0  # finds the process dead, keeps the rows
    assert (w.stats.worker_restarts, w.pending_rows) == (1, 5)
    assert w.worker_pid() not in (first, os.getpid())
    assert asyncio.run(w.flush()) == 5

    w.close()
    assert rows(duckdb_path, "SELECT trade_id FROM trades ORDER BY 1") == [
        (t,) for t in range(1, 6)
    ]


_ORPHAN_SCRIPT = """
import os, signal, sys
from pathlib import Path
from typing import Any
from cif.store import live_writer
from cif.store.live_writer import LiveWriter

if __name__ == "__main__":
    w = LiveWriter(Path(sys.argv[1]))
    w.open()
    print(w.worker_pid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits on a pidfd (Linux)")
def test_the_writer_process_ends_with_a_parent_killed_without_closing_it(
    duckdb_path: Path, tmp_path: Path
) -> None:
    """An orphaned writer would keep the DuckDB file locked against the restarted gateway."""
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(duckdb_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    worker = int(proc.stdout.split()[0])
    try:
        pidfd = os.pidfd_open(worker)
    except ProcessLookupError:
        pidfd = None  # already gone
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            assert poller.poll(GUARD_S * 1000), f"writer process {worker} outlived its parent"
        finally:
            os.close(pidfd)
    # and the file is free for the next writer
    again = LiveWriter(duckdb_path)
    again.open()
    again.close()


def test_a_flush_pauses_between_its_tables_inside_one_transaction(duckdb_path: Path) -> None:
    """The live writer's pause (``between``) comes after each statement (a table with rows;
    the empty ones run none) and before the commit: a reader sees none of the flush until
    all of it is in."""
    q = _Queue()
    q.add_trade(trade(7), 1, False)
    q.add_trade(trade(8), 2, False)
    q.add_book_ticker(ticker(101), 3)
    tables = core.live_store_columns(q.entries)
    seen: list[tuple[int, int, int]] = []
    with duckdb.connect(str(duckdb_path)) as con:
        ensure_schema(con)
        other = con.cursor()  # a second connection to the same database

        def count(c: duckdb.DuckDBPyConnection, table: str) -> int:
            (row,) = c.execute(f"SELECT count(*) FROM {table}").fetchall()
            return int(row[0])  # type: ignore[call-overload]

        def between() -> None:
            seen.append((count(con, "trades"), count(con, "book_tickers"), count(other, "trades")))

        offered, inserted = insert_tables(con, tables, ignore_duplicates=False, between=between)
        assert count(other, "trades") == 2
    assert offered == inserted
    assert inserted["trades"] == 2
    assert inserted["book_tickers"] == 1
    # own transaction: trades in once their statement ran, tickers once theirs did;
    # the other connection: nothing before the commit
    want = {"trades": (2, 0, 0), "book_tickers": (2, 1, 0)}
    if list(tables).index("book_tickers") < list(tables).index("trades"):
        want = {"book_tickers": (0, 1, 0), "trades": (2, 1, 0)}
    assert seen == list(want.values())


def test_the_writer_process_gets_the_pause_between_statements(
    duckdb_path: Path, tmp_path: Path
) -> None:
    for kwargs, want in (({}, live_writer.STATEMENT_PAUSE_S), ({"statement_pause_s": 0}, 0.0)):
        w = LiveWriter(tmp_path / f"w{want}.duckdb", **kwargs)
        w.open()
        try:
            assert w._call(writer_process.statement_pause) == want
            w.add_trade(trade(7), 1, False)
            assert asyncio.run(w.flush()) == 1
        finally:
            w.close()
    for bad in (-0.001, 2.0, float("nan")):
        with pytest.raises(ValueError, match=re.escape("statement_pause_s must be in 0..1")):
            LiveWriter(duckdb_path, statement_pause_s=bad)
