"""The Rust parser on the two real Binance captures: every line, every value, both entry points.

Values are compared with the pure-Python reference parser (``tests/reference/binance_ref.py``)
bit for bit; counts and facts come from ``shared/data/binance/README.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import cif._core as core
from cif.ingest.capture import CaptureLine, iter_capture, read_capture_bytes
from reference import binance_ref as ref
from reference.agreement import REF_REASON_NAMES
from reference.records import (
    FIELDS,
    KIND_TABLE,
    Record,
    batch_records,
    diff_records,
    event_record,
)


@dataclass(frozen=True)
class Expected:
    file: str
    symbol: str
    lines: int
    trades: int
    depth_updates: int
    book_tickers: int
    snapshots: int
    snapshot_last_update_id: int | None


BTC = Expected("btcusdt_20240808.gz", "BTCUSDT", 41_249, 9_757, 3_451, 28_040, 1, 50_093_239_218)
ETH = Expected("ethusdt_20240808.gz", "ETHUSDT", 33_618, 6_106, 3_434, 24_077, 1, None)


@dataclass
class Parsed:
    exp: Expected
    path: Path
    lines: list[CaptureLine]
    frames: list[bytes]
    recv: NDArray[np.int64]
    capture: core.FrameBatch  # parse_capture(whole decompressed file)
    batch: core.FrameBatch  # parse_frames(payloads, recv, symbol=...)
    capture_records: dict[int, Record]
    batch_records: dict[int, Record]


@pytest.fixture(scope="module", params=[BTC, ETH], ids=["btc", "eth"])
def parsed(request: pytest.FixtureRequest, data_dir: Path) -> Parsed:
    exp: Expected = request.param
    path = data_dir / exp.file
    assert path.is_file(), f"missing capture {path}"
    lines = list(iter_capture(path))
    frames = [line.payload for line in lines]
    recv = np.array([line.recv_time_ns for line in lines], dtype=np.int64)
    capture = core.parse_capture(read_capture_bytes(path))
    batch = core.parse_frames(frames, recv, symbol=exp.symbol)
    return Parsed(
        exp=exp,
        path=path,
        lines=lines,
        frames=frames,
        recv=recv,
        capture=capture,
        batch=batch,
        capture_records=batch_records(capture, core.ERROR_REASONS),
        batch_records=batch_records(batch, core.ERROR_REASONS),
    )


def _both(p: Parsed) -> list[tuple[str, core.FrameBatch]]:
    return [("parse_capture", p.capture), ("parse_frames", p.batch)]


def test_file_layout_assumptions(parsed: Parsed) -> None:
    # Frame index = line index only coincides with the payload index without blank lines.
    assert len(parsed.lines) == parsed.exp.lines
    assert [line.line_no for line in parsed.lines] == list(range(1, parsed.exp.lines + 1))


def test_every_line_parses_without_errors(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        assert batch.n_frames == parsed.exp.lines, name
        assert len(batch.errors["frame"]) == 0, (name, batch.error_messages[:5])
        assert batch.error_messages == [], name


def test_one_event_per_line(parsed: Parsed) -> None:
    every_line = list(range(parsed.exp.lines))
    assert sorted(parsed.capture_records) == every_line
    assert sorted(parsed.batch_records) == every_line


def test_counts_match_the_readme(parsed: Parsed) -> None:
    exp = parsed.exp
    for name, batch in _both(parsed):
        got = {
            "trades": len(batch.trades["frame"]),
            "depth_updates": len(batch.depth_updates["frame"]),
            "book_tickers": len(batch.book_tickers["frame"]),
            "depth_snapshots": len(batch.depth_snapshots["frame"]),
            "agg_trades": len(batch.agg_trades["frame"]),
            "shutdowns": len(batch.shutdowns["frame"]),
            "errors": len(batch.errors["frame"]),
        }
        assert got == {
            "trades": exp.trades,
            "depth_updates": exp.depth_updates,
            "book_tickers": exp.book_tickers,
            "depth_snapshots": exp.snapshots,
            "agg_trades": 0,
            "shutdowns": 0,
            "errors": 0,
        }, name
        counts = batch.counts()
        for table, n in got.items():
            assert counts[table] == n, (name, table, counts)


def test_columns_and_dtypes_follow_the_contract(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        for table, columns in ref.TABLE_COLUMNS.items():
            cols: dict[str, NDArray[Any]] = getattr(batch, table)
            missing = set(columns) - set(cols)
            assert not missing, f"{name}.{table} lacks columns {sorted(missing)}"
            lengths = {col: len(cols[col]) for col in columns}
            assert len(set(lengths.values())) == 1, f"{name}.{table}: ragged columns {lengths}"
            for col, dtype in columns.items():
                array = cols[col]
                assert isinstance(array, np.ndarray), (name, table, col)
                assert array.ndim == 1, (name, table, col)
                if col in ("level_start", "level_end"):
                    assert np.issubdtype(array.dtype, np.integer), (name, table, col, array.dtype)
                else:
                    assert array.dtype == np.dtype(dtype), (name, table, col, array.dtype)


def test_symbols(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        assert batch.symbols == [parsed.exp.symbol], name
        for table in ("trades", "depth_updates", "book_tickers", "depth_snapshots"):
            assert set(getattr(batch, table)["symbol"].tolist()) == {0}, (name, table)


def test_rows_are_in_frame_order_and_carry_recv_time(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        for table in KIND_TABLE.values():
            cols = getattr(batch, table)
            frames = cols["frame"]
            assert np.all(np.diff(frames) > 0), (name, table)
            # recv_time_ns is the capture's own receive time of that line.
            np.testing.assert_array_equal(cols["recv_time_ns"], parsed.recv[frames])


def test_trade_ids_are_consecutive(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        ids = batch.trades["trade_id"]
        assert np.all(np.diff(ids) == 1), name


def test_depth_diffs_chain(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        d = batch.depth_updates
        assert np.all(d["first_update_id"][1:] == d["final_update_id"][:-1] + 1), name
        assert np.all(d["first_update_id"] <= d["final_update_id"]), name


def test_side_follows_is_buyer_maker(parsed: Parsed) -> None:
    # Straight from the raw JSON, independently of any parser.
    raw_m = [
        json.loads(f)["data"]["m"]
        for f in parsed.frames
        if f.startswith(b'{"stream":"') and b"@trade" in f[:40]
    ]
    assert len(raw_m) == parsed.exp.trades
    for name, batch in _both(parsed):
        t = batch.trades
        assert t["is_buyer_maker"].tolist() == raw_m, name
        np.testing.assert_array_equal(t["side"], np.where(t["is_buyer_maker"], -1, 1))
        assert int((t["side"] == -1).sum()) == sum(raw_m), name
        assert int((t["side"] == 1).sum()) == len(raw_m) - sum(raw_m), name


def test_the_snapshot(parsed: Parsed) -> None:
    exp = parsed.exp
    raw_index = next(i for i, f in enumerate(parsed.frames) if f.startswith(b'{"lastUpdateId"'))
    raw = json.loads(parsed.frames[raw_index])
    for name, batch in _both(parsed):
        s = batch.depth_snapshots
        assert s["frame"].tolist() == [raw_index], name
        assert s["last_update_id"].tolist() == [raw["lastUpdateId"]], name
        if exp.snapshot_last_update_id is not None:
            assert s["last_update_id"].tolist() == [exp.snapshot_last_update_id], name
        assert s["event_time_ms"].tolist() == [-1], name
        assert batch.symbols[s["symbol"][0]] == exp.symbol, name
        start, end = int(s["level_start"][0]), int(s["level_end"][0])
        assert end - start == len(raw["bids"]) + len(raw["asks"]), name
        lv = batch.levels
        assert lv["side"][start:end].tolist() == [1] * len(raw["bids"]) + [-1] * len(raw["asks"])
        assert lv["price"][start:end].tolist() == [float(p) for p, _ in raw["bids"] + raw["asks"]]
        assert lv["qty"][start:end].tolist() == [float(q) for _, q in raw["bids"] + raw["asks"]]


def test_levels_tile_the_levels_table_in_frame_order(parsed: Parsed) -> None:
    for name, batch in _both(parsed):
        parts = [batch.depth_updates, batch.depth_snapshots]
        frame = np.concatenate([p["frame"] for p in parts])
        start = np.concatenate([p["level_start"] for p in parts]).astype(np.int64)
        end = np.concatenate([p["level_end"] for p in parts]).astype(np.int64)
        order = np.argsort(frame, kind="stable")
        start, end = start[order], end[order]
        n_levels = len(batch.levels["side"])
        assert start[0] == 0, name
        assert np.all(start[1:] == end[:-1]), f"{name}: level ranges not contiguous"
        assert end[-1] == n_levels, name
        assert np.all(end >= start), name
        side = batch.levels["side"]
        assert set(np.unique(side).tolist()) <= {-1, 1}, name
        for s, e in zip(start.tolist(), end.tolist(), strict=True):
            # bids (+1) before asks (-1)
            assert np.all(np.diff(side[s:e]) <= 0), f"{name}: asks before bids in [{s}, {e})"


def test_capture_equals_the_reference(parsed: Parsed) -> None:
    expected = ref.parse_capture(read_capture_bytes(parsed.path))
    expected_records = batch_records(expected, REF_REASON_NAMES)
    diffs = diff_records(parsed.capture_records, expected_records)
    assert not diffs, "parse_capture differs from the reference:\n" + "\n".join(diffs)


def test_parse_frames_equals_the_reference(parsed: Parsed) -> None:
    expected = ref.parse_frames(parsed.frames, parsed.recv, symbol=parsed.exp.symbol)
    expected_records = batch_records(expected, REF_REASON_NAMES)
    diffs = diff_records(parsed.batch_records, expected_records)
    assert not diffs, "parse_frames differs from the reference:\n" + "\n".join(diffs)


def test_parse_capture_and_parse_frames_agree(parsed: Parsed) -> None:
    diffs = diff_records(parsed.capture_records, parsed.batch_records)
    assert not diffs, "\n".join(diffs)


def test_parse_frames_accepts_a_list_of_ints_for_recv(parsed: Parsed) -> None:
    n = 2_000
    frames = parsed.frames[:n]
    recv = parsed.recv[:n].tolist()
    batch = core.parse_frames(frames, recv, symbol=parsed.exp.symbol)
    got = batch_records(batch, core.ERROR_REASONS)
    want = {i: r for i, r in parsed.batch_records.items() if i < n}
    assert not diff_records(got, want)


def test_parse_frame_equals_the_batch_row_for_every_frame(parsed: Parsed) -> None:
    mismatches: list[str] = []
    kinds_seen: set[str] = set()
    for i, (frame, recv) in enumerate(zip(parsed.frames, parsed.recv.tolist(), strict=True)):
        event = core.parse_frame(frame, recv, symbol=parsed.exp.symbol)
        record = event_record(event)
        kinds_seen.add(record[0])
        if record != parsed.batch_records[i]:
            batch_row = parsed.batch_records[i]
            mismatches.append(f"frame {i}: parse_frame {record!r} != batch {batch_row!r}")
            if len(mismatches) >= 5:
                break
    assert not mismatches, "\n".join(mismatches)
    assert kinds_seen == {"Trade", "DepthUpdate", "BookTicker", "DepthSnapshot"}


def test_stream_frames_parse_without_a_symbol_hint(parsed: Parsed) -> None:
    # Only the raw REST snapshot needs symbol=; the combined-stream frames name their symbol.
    for i in range(0, len(parsed.frames), 97):
        frame = parsed.frames[i]
        if not frame.startswith(b'{"stream"'):
            continue
        record = event_record(core.parse_frame(frame, int(parsed.recv[i])))
        assert record == parsed.batch_records[i], i


def test_event_objects_types_properties_and_to_dict(parsed: Parsed) -> None:
    classes = {
        "Trade": core.Trade,
        "DepthUpdate": core.DepthUpdate,
        "BookTicker": core.BookTicker,
        "DepthSnapshot": core.DepthSnapshot,
    }
    checked: dict[str, int] = dict.fromkeys(classes, 0)
    for i, frame in enumerate(parsed.frames):
        kind = parsed.batch_records[i][0]
        if checked[kind] >= 20:
            continue
        checked[kind] += 1
        event = core.parse_frame(frame, int(parsed.recv[i]), symbol=parsed.exp.symbol)
        assert type(event) is classes[kind]
        again = core.parse_frame(frame, int(parsed.recv[i]), symbol=parsed.exp.symbol)
        assert event == again
        assert hash(event) == hash(again)
        assert event != core.parse_frame(frame, int(parsed.recv[i]) + 1, symbol=parsed.exp.symbol)
        as_dict = event.to_dict()
        names = [n for n in FIELDS[kind] if n != "levels"]
        if kind in ("DepthUpdate", "DepthSnapshot"):
            names += ["bids", "asks"]
        for name in names:
            assert name in as_dict, f"{kind}.to_dict() lacks {name!r}: {sorted(as_dict)}"
            assert _plain(as_dict[name]) == _plain(getattr(event, name)), (kind, name)
    assert all(n >= 1 for n in checked.values()), checked


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
