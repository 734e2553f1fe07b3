"""`cif import`: real captures into a real DuckDB file through the Rust batch parser."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cif._core import parse_capture
from cif.bus.keys import book_key
from cif.cli import main
from cif.features.event_log import events_from_capture
from cif.ingest.capture import CaptureFormatError, iter_capture
from cif.ingest.offline import capture_stream_entries
from cif.ingest.sequence import assign_seq
from cif.store.event_log import load_event_log
from cif.store.importer import import_file
from cif.store.schema import ensure_schema


def test_import_stores_every_event_of_the_capture(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    rep = import_file(duckdb_conn, btc_capture)
    assert rep.errors == {}
    assert rep.result.inserted == {
        "trades": 9757,
        "book_tickers": 28040,
        "depth_updates": 3451,
        "depth_snapshots": 1,
        "depth_levels": rep.result.offered["depth_levels"],
        # Every ticker of this capture changes the top of the book: one book event each.
        "book_events": 28040,
    }
    ids = [r[0] for r in duckdb_conn.execute("SELECT trade_id FROM trades ORDER BY seq").fetchall()]
    assert ids == list(range(ids[0], ids[0] + 9757)), "trade ids consecutive, in seq order"
    sides = dict(duckdb_conn.execute("SELECT side, count(*) FROM trades GROUP BY side").fetchall())
    # The capture's own `m` flags, counted straight from the JSON text.
    text = gzip.decompress(btc_capture.read_bytes())
    assert sides["sell"] == text.count(b'"m":true')
    assert sides["buy"] == text.count(b'"m":false')
    # spot bookTicker has no exchange time: stored as NULL, not as a fake value
    nulls = duckdb_conn.execute("SELECT count(*) FROM book_tickers WHERE event_ts IS NULL")
    assert nulls.fetchall()[0][0] == 28040
    snap = duckdb_conn.execute("SELECT symbol, last_update_id FROM depth_snapshots").fetchall()
    assert snap == [("BTCUSDT", 50093239218)]


def test_reimport_is_a_no_op(duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path) -> None:
    import_file(duckdb_conn, btc_capture)
    again = import_file(duckdb_conn, btc_capture)
    assert set(again.result.inserted.values()) == {0}
    assert duckdb_conn.execute("SELECT count(*) FROM trades").fetchall()[0][0] == 9757


def test_import_stores_the_book_events_the_gateway_publishes(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    entries = capture_stream_entries(btc_capture, "btcusdt")
    published = [e.fields for e in entries if e.key == book_key("btcusdt")]
    stored = duckdb_conn.execute(
        "SELECT seq, update_id, source, bid_price, ask_qty, bids, asks FROM book_events "
        "ORDER BY seq"
    ).fetchall()
    assert len(stored) == len(published) == 28040
    for row, fields in zip(stored, published, strict=True):
        assert row == (
            int(fields["seq"]),
            int(fields["update_id"]),
            fields["source"],
            float(fields["bid_price"]),
            float(fields["ask_qty"]),
            fields["bids"],
            fields["asks"],
        )
    # A book event's seq is the one of the ticker that caused it.
    ticker_seq = duckdb_conn.execute(
        "SELECT count(*) FROM book_events b JOIN book_tickers t USING (symbol, seq)"
    ).fetchall()
    assert ticker_seq[0][0] == 28040


def test_seq_orders_all_events_of_a_symbol_by_arrival(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path, eth_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    import_file(duckdb_conn, eth_capture)
    rows = duckdb_conn.execute(
        """
        SELECT symbol, count(*), min(seq), max(seq), count(DISTINCT seq) FROM (
            SELECT symbol, seq FROM trades UNION ALL SELECT symbol, seq FROM book_tickers
            UNION ALL SELECT symbol, seq FROM depth_updates
            UNION ALL SELECT symbol, seq FROM depth_snapshots) GROUP BY symbol ORDER BY symbol
        """
    ).fetchall()
    # Every line of each capture is one event of its symbol: seq is 1..n, dense, unique.
    assert rows == [("BTCUSDT", 41249, 1, 41249, 41249), ("ETHUSDT", 33618, 1, 33618, 33618)]


def test_assign_seq_continues_from_a_start() -> None:
    frame = (
        b'1 {"u":5,"s":"AAA","b":"1","B":"1","a":"2","A":"1"}\n'
        b'2 {"u":5,"s":"BBB","b":"1","B":"1","a":"2","A":"1"}\n'
        b'3 {"e":"trade","E":1,"s":"AAA","t":1,"p":"1","q":"1","T":1,"m":true}\n'
    )
    batch = parse_capture(frame)
    seq = assign_seq(batch, {0: 10})
    assert seq["book_tickers"].tolist() == [10, 1]
    assert seq["trades"].tolist() == [11]


def test_levels_are_stored_in_exchange_order(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    batch = parse_capture(gzip.decompress(btc_capture.read_bytes()))
    snap = batch.depth_snapshots
    lv = batch.levels
    start, end = int(snap["level_start"][0]), int(snap["level_end"][0])
    stored = duckdb_conn.execute(
        "SELECT side, price, qty FROM depth_levels WHERE source = 'snapshot' ORDER BY pos"
    ).fetchall()
    expected_side = np.where(lv["side"][start:end] > 0, "bid", "ask")
    assert [r[0] for r in stored] == expected_side.tolist()
    assert [r[1] for r in stored] == lv["price"][start:end].tolist()


def test_cli_import_prints_a_summary(
    tmp_path: Path, btc_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.duckdb"
    assert main(["import", str(btc_capture), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "trades 9757/9757 new" in out
    assert "BTCUSDT" in out
    with duckdb.connect(str(db)) as con:
        ensure_schema(con)
        assert con.execute("SELECT count(*) FROM trades").fetchall()[0][0] == 9757


def test_cli_import_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    assert main(["import", str(tmp_path / "nope.gz"), "--db", str(tmp_path / "x.duckdb")]) == 2


def test_import_counts_and_skips_bad_lines(
    duckdb_conn: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(
        b'1 {"e":"trade","E":1,"s":"AAA","t":1,"p":"1","q":"1","T":1,"m":true}\n'
        b"2 {not json\n"
        b'3 {"e":"kline","E":1}\n'
        b'4 {"e":"trade","E":1,"s":"AAA","t":2,"p":"-1","q":"1","T":1,"m":true}\n'
        b'5 {"e":"trade","E":2,"s":"AAA","t":3,"p":"2","q":"1","T":2,"m":false}\n'
    )
    rep = import_file(duckdb_conn, path)
    assert rep.errors == {"malformed_frame": 1, "unknown_event": 1, "invalid_value": 1}
    ids = duckdb_conn.execute("SELECT trade_id FROM trades ORDER BY trade_id").fetchall()
    assert ids == [(1,), (3,)]


def test_capture_reader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b'1 {"a":1}\nnot-a-time {"a":1}\n')
    with pytest.raises(CaptureFormatError, match=r"c\.txt:2"):
        list(iter_capture(path))


def _level_owner_mismatches(con: duckdb.DuckDBPyConnection) -> int:
    """Levels whose seq differs from their owning diff's or snapshot's (or have no owner)."""
    rows = con.execute(
        """
        SELECT count(*) FROM depth_levels l
        LEFT JOIN depth_updates d
          ON l.source = 'diff' AND d.symbol = l.symbol AND d.final_update_id = l.update_id
        LEFT JOIN depth_snapshots s
          ON l.source = 'snapshot' AND s.symbol = l.symbol AND s.last_update_id = l.update_id
        WHERE l.seq IS DISTINCT FROM coalesce(d.seq, s.seq)
        """
    ).fetchall()
    return int(rows[0][0])


def test_levels_carry_their_owners_seq(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    assert _level_owner_mismatches(duckdb_conn) == 0
    snap = duckdb_conn.execute(
        "SELECT DISTINCT seq FROM depth_levels WHERE source = 'snapshot'"
    ).fetchall()
    assert snap == duckdb_conn.execute("SELECT seq FROM depth_snapshots").fetchall()


def test_files_from_before_level_seq_are_upgraded(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    # A file written by the previous schema: depth_levels without seq.
    duckdb_conn.execute("ALTER TABLE depth_levels DROP COLUMN seq")
    ensure_schema(duckdb_conn)
    assert _level_owner_mismatches(duckdb_conn) == 0
    nullable = duckdb_conn.execute(
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_name = 'depth_levels' AND column_name = 'seq'"
    ).fetchall()
    assert nullable == [("NO",)]
    again = import_file(duckdb_conn, btc_capture)  # the upgraded file keeps working
    assert set(again.result.inserted.values()) == {0}


def test_the_stored_event_log_is_the_published_one(
    duckdb_conn: duckdb.DuckDBPyConnection, btc_capture: Path
) -> None:
    import_file(duckdb_conn, btc_capture)
    stored = load_event_log(duckdb_conn, "btcusdt")
    published = events_from_capture(btc_capture, "btcusdt")
    assert list(stored) == list(published)
    for name, col in published.items():
        assert (stored[name].dtype, stored[name].shape) == (col.dtype, col.shape), name
        assert stored[name].tobytes() == col.tobytes(), name
    # A time range keeps the events with exchange time in [from, to), still by seq.
    lo, hi = int(published["ts"][5000]), int(published["ts"][6000])
    part = load_event_log(duckdb_conn, "btcusdt", from_ms=lo, to_ms=hi, depth_levels=3)
    keep = (published["ts"] >= lo) & (published["ts"] < hi)
    np.testing.assert_array_equal(part["seq"], published["seq"][keep])
    np.testing.assert_array_equal(part["bid_depth"], published["bid_depth"][keep][:, :3])
    assert len(load_event_log(duckdb_conn, "solusdt")["seq"]) == 0
