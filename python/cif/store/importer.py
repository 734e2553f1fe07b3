"""``cif import``: load capture files (shared/data/binance format) into the DuckDB history.

Capture files go through the same Rust parser as live frames (``parse_capture`` is the batch
form of ``parse_frame``), so imported history is identical to what live ingestion stores.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from cif._core import ERROR_REASONS, parse_capture
from cif.bus.keys import book_key, trades_key
from cif.ingest.capture import read_capture_bytes
from cif.ingest.offline import capture_stream_entries
from cif.store.schema import ensure_schema, max_seq_by_symbol
from cif.store.writer import AppendResult, Columns, append_batch, insert_columns

log = logging.getLogger(__name__)

DEFAULT_DB = "data/cif.duckdb"


@dataclass
class ImportReport:
    """What one file contributed."""

    path: Path
    lines: int
    result: AppendResult
    errors: Counter[str]


def import_file(con: duckdb.DuckDBPyConnection, path: Path) -> ImportReport:
    """Parse one capture file and append it; bad lines are counted by reason and logged."""
    batch = parse_capture(read_capture_bytes(path))
    errors: Counter[str] = Counter()
    codes = batch.errors["reason_code"]
    frames = batch.errors["frame"]
    for i, code in enumerate(codes):
        reason = ERROR_REASONS[int(code)]
        errors[reason] += 1
        if errors[reason] <= 3:
            log.warning(
                "%s:%d skipped (%s): %s", path, int(frames[i]) + 1, reason, batch.error_messages[i]
            )
    ensure_schema(con)
    seq_before = max_seq_by_symbol(con)
    result = append_batch(con, batch)
    offered = inserted = 0
    for symbol in batch.symbols:
        n_off, n_ins = _append_book_events(con, path, symbol, seq_before.get(symbol, 0))
        offered += n_off
        inserted += n_ins
    result.offered["book_events"] = offered
    result.inserted["book_events"] = inserted
    return ImportReport(path=path, lines=batch.n_frames, result=result, errors=errors)


def _append_book_events(
    con: duckdb.DuckDBPyConnection, path: Path, symbol: str, seq_before: int
) -> tuple[int, int]:
    """Derive the file's book events the way the gateway does and store them.

    The gateway's per-symbol state numbers events itself, so its numbering must be the one
    the import just stored: it is checked on the trades (a re-import stores nothing new and
    numbers differently; a capture with trade-id gaps would hold trades back). On a mismatch
    no book events are stored, and that is logged.
    """
    sym = symbol.lower()
    entries = capture_stream_entries(path, sym, last_seq=seq_before)
    t_key, b_key = trades_key(sym), book_key(sym)
    trade_fields = [e.fields for e in entries if e.key == t_key]
    trade_seq = {int(f["trade_id"]): int(f["seq"]) for f in trade_fields}
    book = [e.fields for e in entries if e.key == b_key]
    if not book:
        return 0, 0
    stored = dict(
        con.execute(
            "SELECT trade_id, seq FROM trades WHERE symbol = ? AND seq > ?", [symbol, seq_before]
        ).fetchall()
    )
    if not stored:
        log.info("%s: %s: no new events, book events already stored", path, symbol)
        return len(book), 0
    if stored != trade_seq:
        log.warning(
            "%s: %s: the gateway's event numbering differs from the stored one (%d of %d "
            "trades new): no book events stored for this file",
            path,
            symbol,
            len(stored),
            len(trade_seq),
        )
        return len(book), 0
    cols: Columns = {
        "symbol": np.full(len(book), symbol, dtype=object),
        "seq": np.array([int(f["seq"]) for f in book], dtype=np.int64),
        "update_id": np.array([int(f["update_id"]) for f in book], dtype=np.int64),
        "event_ts": np.array([int(f["event_ts"]) for f in book], dtype=np.int64),
        "recv_ts_ns": np.array([int(f["recv_ts_ns"]) for f in book], dtype=np.int64),
        "source": np.array([f["source"] for f in book], dtype=object),
        **{
            name: np.array([float(f[name]) for f in book], dtype=np.float64)
            for name in ("bid_price", "bid_qty", "ask_price", "ask_qty")
        },
        "book_update_id": np.array([int(f["book_update_id"]) for f in book], dtype=np.int64),
        "bids": np.array([f["bids"] for f in book], dtype=object),
        "asks": np.array([f["asks"] for f in book], dtype=object),
    }
    con.execute("BEGIN TRANSACTION")
    try:
        counts = insert_columns(con, "book_events", cols)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts


def summary(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int, int, str, str]]:
    """Per symbol: trades, book tickers, depth diffs, first and last trade time (UTC)."""
    rows = con.execute(
        """
        SELECT s.symbol,
               (SELECT count(*) FROM trades t WHERE t.symbol = s.symbol),
               (SELECT count(*) FROM book_tickers b WHERE b.symbol = s.symbol),
               (SELECT count(*) FROM depth_updates d WHERE d.symbol = s.symbol),
               coalesce(strftime(make_timestamp((SELECT min(ts) FROM trades t
                        WHERE t.symbol = s.symbol) * 1000), '%Y-%m-%d %H:%M:%S'), '-'),
               coalesce(strftime(make_timestamp((SELECT max(ts) FROM trades t
                        WHERE t.symbol = s.symbol) * 1000), '%Y-%m-%d %H:%M:%S'), '-')
        FROM (SELECT DISTINCT symbol FROM trades
              UNION SELECT DISTINCT symbol FROM book_tickers) s
        ORDER BY s.symbol
        """
    ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5])) for r in rows]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="capture files (.gz or plain text)")
    parser.add_argument(
        "--db",
        type=Path,
        default=Path(os.environ.get("CIF_DB", DEFAULT_DB)),
        help=f"DuckDB file (default: $CIF_DB or {DEFAULT_DB})",
    )


def run(args: argparse.Namespace) -> int:
    db: Path = args.db
    db.parent.mkdir(parents=True, exist_ok=True)
    missing = [p for p in args.files if not p.is_file()]
    if missing:
        log.error("no such capture file: %s", ", ".join(map(str, missing)))
        return 2
    with duckdb.connect(str(db)) as con:
        for path in args.files:
            rep = import_file(con, path)
            ins, off = rep.result.inserted, rep.result.offered
            errs = ", ".join(f"{k}={v}" for k, v in sorted(rep.errors.items())) or "none"
            print(
                f"{path.name}: {rep.lines} lines; trades {ins['trades']}/{off['trades']} new, "
                f"book tickers {ins['book_tickers']}/{off['book_tickers']}, "
                f"depth diffs {ins['depth_updates']}/{off['depth_updates']}, "
                f"snapshots {ins['depth_snapshots']}/{off['depth_snapshots']}, "
                f"book events {ins['book_events']}/{off['book_events']}; "
                f"skipped lines: {errs}"
            )
        print(f"\n{db}:")
        header = f"{'symbol':<10} {'trades':>8} {'tickers':>8} {'diffs':>6}"
        print(f"{header}  first trade (UTC)    last trade")
        for sym, n_t, n_b, n_d, first, last in summary(con):
            print(f"{sym:<10} {n_t:>8} {n_b:>8} {n_d:>6}  {first}  {last}")
    return 0
