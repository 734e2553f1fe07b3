"""Sealed Parquet segments: readable by other processes while the writer holds the DuckDB file."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cif.ingest.book_events import BookEvent, levels_json
from cif.store import segments
from cif.store.live_writer import LiveWriter
from cif.store.schema import TABLES
from event_builders import diff, ticker, trade

SUBPROCESS_TIMEOUT_S = 60.0


def book_event(seq: int) -> BookEvent:
    """The book event a ticker of ``event_builders.ticker`` causes."""
    return BookEvent(
        symbol="btcusdt",
        seq=seq,
        update_id=seq,
        event_ts=5000 + seq,
        recv_ts_ns=20_000 + seq,
        source="ticker",
        bid_price=1.0,
        bid_qty=3.0,
        ask_price=1.1,
        ask_qty=4.0,
        book_update_id=seq - 1,
        bids=((1.0, 3.0), (0.99, 1.5)),
        asks=((1.1, 4.0),),
        bids_json=levels_json(((1.0, 3.0), (0.99, 1.5))),
        asks_json=levels_json(((1.1, 4.0),)),
    )


def fill(w: LiveWriter, first_seq: int, n: int) -> None:
    """Queue ``n`` rounds of trade, diff and ticker for BTCUSDT and a trade for ETHUSDT."""
    for i in range(n):
        seq = first_seq + 3 * i
        w.add_trade(trade(seq), seq, False)
        w.add_depth_update(diff(seq + 1, seq + 1), seq + 1)
        w.add_book_ticker(ticker(seq + 2), seq + 2)
        w.add_book_event(book_event(seq + 2))
        w.add_trade(trade(first_seq + i, sym="ETHUSDT"), first_seq + i, False)


def write(db: Path, history: Path | None, first_seq: int, n: int) -> LiveWriter:
    """An open writer with ``fill``'s events flushed (the caller closes it)."""
    w = LiveWriter(db, history)
    w.open()
    fill(w, first_seq, n)
    asyncio.run(w.flush())
    return w


def segment_files(history: Path) -> list[str]:
    return sorted(str(p.relative_to(history)) for p in history.rglob("*") if p.is_file())


def read_rows(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in TABLES}


READER = """
import json, sys
from pathlib import Path
import duckdb
from cif.store.segments import open_history

db, history = sys.argv[1], Path(sys.argv[2])
try:
    duckdb.connect(db, read_only=True).close()
    refused = None
except duckdb.Error as exc:
    refused = str(exc)
con = open_history(history)
out = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in sys.argv[3:]}
ids = con.execute("SELECT trade_id FROM trades WHERE symbol = 'BTCUSDT' ORDER BY seq")
print(json.dumps({"refused": refused, "counts": out, "ids": [r[0] for r in ids.fetchall()]}))
"""


def test_another_process_reads_the_segments_while_the_writer_holds_the_file(
    duckdb_path: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    w = write(duckdb_path, history, 1, 20)
    try:
        assert asyncio.run(w.seal()) == len(TABLES) - 1  # no snapshots: no empty file
        proc = subprocess.run(
            [sys.executable, "-c", READER, str(duckdb_path), str(history), *TABLES],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=False,
        )
    finally:
        w.close()
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    # The reason for segments: the DuckDB file itself is locked by the writer process.
    assert seen["refused"] is not None
    assert "lock" in seen["refused"].lower()
    assert seen["counts"] == {
        "trades": 40,
        "book_tickers": 20,
        "depth_updates": 20,
        "depth_snapshots": 0,
        "depth_levels": 60,
        "book_events": 20,
    }
    assert seen["ids"] == list(range(1, 60, 3))


def test_a_second_seal_writes_only_the_new_rows(duckdb_path: Path, tmp_path: Path) -> None:
    history = tmp_path / "history"
    w = write(duckdb_path, history, 1, 5)
    reader = segments.open_history(history)  # before anything is sealed
    try:
        assert counts(reader) == dict.fromkeys(TABLES, 0)
        assert asyncio.run(w.seal()) == 5
        segments.refresh_history(reader, history)
        assert counts(reader)["trades"] == 10

        # only trades arrive: only a trades file in segment 2
        w.add_trade(trade(100), 100, False)
        w.add_trade(trade(101, sym="ETHUSDT"), 101, False)
        asyncio.run(w.flush())
        assert asyncio.run(w.seal()) == 1
        second = sorted(history.glob("*/date=*/seg-00000002.parquet"))
        assert [p.parent.parent.name for p in second] == ["trades"]
        assert [r[1] for r in read_rows(second[0])] == [100, 101]  # ordered by symbol, seq

        # the same reader connection sees the new segment (views re-glob per query)
        assert counts(reader) == {
            "trades": 12,
            "book_tickers": 5,
            "depth_updates": 5,
            "depth_snapshots": 0,
            "depth_levels": 15,
            "book_events": 5,
        }
        dupes = reader.execute(
            "SELECT count(*) - count(DISTINCT (symbol, trade_id)) FROM trades"
        ).fetchall()
        assert dupes == [(0,)]

        # nothing new: no file, no segment number used
        assert asyncio.run(w.seal()) == 0
    finally:
        reader.close()
        w.close()  # its final seal has nothing to add either
    assert w.stats.segments_written == 6
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        assert con.execute("SELECT next_segment, pending_date FROM _seal_state").fetchall() == [
            (3, None)
        ]


def test_history_views_have_the_live_columns(duckdb_path: Path, tmp_path: Path) -> None:
    history = tmp_path / "history"
    w = write(duckdb_path, history, 1, 2)
    w.close()
    with duckdb.connect(str(duckdb_path), read_only=True) as live:
        reader = segments.open_history(history)
        for table in TABLES:
            want = [r[0] for r in live.execute(f"DESCRIBE {table}").fetchall()]
            got = [r[0] for r in reader.execute(f"DESCRIBE {table}").fetchall()]
            assert got == want, table
            if table != "depth_snapshots":
                order = "symbol, seq, " + ", ".join(want)
                assert (
                    reader.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                    == live.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                ), table
        reader.close()


@pytest.mark.parametrize("crash_after", ["begin", "write"])
def test_an_interrupted_seal_is_redone_identically(tmp_path: Path, crash_after: str) -> None:
    # The crashed run: rows stored, step 1 recorded (and step 2 done when crash_after is
    # "write"), a half-written .tmp left behind, then the process is gone.
    db, history = tmp_path / "crashed.duckdb", tmp_path / "history"
    write(db, None, 1, 6).close()  # no history_dir: close() does not seal
    with duckdb.connect(str(db)) as con:
        segments.ensure_seal_tables(con)
        pending = segments.begin_segment(con)
        assert pending is not None
        assert segments.begin_segment(con) == pending  # step 1 again: the same segment
        if crash_after == "write":
            assert len(segments.write_segment(con, history, pending)) == 5
        tmp = segments.segment_path(history, "trades", pending.date, pending.number)
        tmp = tmp.with_name(tmp.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"PAR1 torn write")

    # The reference: the same rows sealed without interruption.
    ref_db, ref_history = tmp_path / "ref.duckdb", tmp_path / "ref_history"
    write(ref_db, None, 1, 6).close()
    with duckdb.connect(str(ref_db)) as con:
        assert segments.seal(con, ref_history, date=pending.date) == 5

    w = LiveWriter(db, history)
    w.open()  # finishes the pending segment
    assert w.stats.segments_written == 5
    assert asyncio.run(w.seal()) == 0  # nothing left to seal
    w.close()

    files = segment_files(history)
    assert files == segment_files(ref_history)
    assert all(f.endswith(f"seg-{pending.number:08d}.parquet") for f in files)
    for name in files:
        assert read_rows(history / name) == read_rows(ref_history / name), name
    with duckdb.connect(str(db), read_only=True) as con:
        stored = counts(con)
        assert con.execute("SELECT pending_date FROM _seal_state").fetchall() == [(None,)]
    reader = segments.open_history(history)
    assert counts(reader) == stored  # every row exactly once
    reader.close()


def test_seal_without_history_dir_is_a_no_op(duckdb_path: Path) -> None:
    w = write(duckdb_path, None, 1, 1)
    assert asyncio.run(w.seal()) == 0
    w.close()
