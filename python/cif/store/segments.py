"""Sealed Parquet segments: the history, readable by other processes while ingestion runs.

Why: a DuckDB file has one writing process, and while it holds the file no other process can
open it, not even read-only. The live writer keeps the file open for as long as it ingests,
so research, replay and the API could not read any history during that time. Instead, the
writer periodically *seals* what it has stored into immutable Parquet files under a history
directory, which any number of processes read with DuckDB's ``read_parquet`` without locks.

Layout: ``<history_dir>/<table>/date=<D>/seg-<n:08d>.parquet``, one file per table that had
new rows in segment ``n``; ``D`` is the UTC day the segment was sealed (a coarse partition
for file pruning, not the events' day). Rows are ordered by ``(symbol, seq)`` in each file.

What gets sealed: every table has a per-symbol ``seq`` that only grows as rows are stored
(see ``cif.store.schema``), so "not yet sealed" is a ``seq`` range per (table, symbol):
``sealed_seq < seq <= target_seq``, kept in the bookkeeping table ``_seal_hw``. Rows are
never updated or deleted, so a range, once recorded, always selects the same rows.

Crash safety (three steps, each atomic; a crash anywhere is repaired by the next ``seal`` or
``finish_pending``, which every writer runs when it opens):

1. ``begin_segment``: one transaction records segment number ``n``, day ``D`` and, per
   (table, symbol), ``target_seq = max(seq)``.
2. ``write_segment``: per table with new rows, ``COPY`` the range to ``….parquet.tmp``, fsync,
   ``os.replace`` to the final name (readers see a whole file or none; the glob never
   matches ``.tmp``).
3. ``commit_segment``: one transaction sets ``sealed_seq = target_seq`` and moves on to
   ``n + 1``.

A crash between 1 and 3 leaves the pending record; redoing steps 2–3 with the same ``n``,
``D`` and targets rewrites the same file names with the same rows, so nothing is duplicated
or lost.

Readers (``open_history``) see every row up to the last completed seal; the seal interval
bounds how stale that is. Views re-glob on every query, so a long-lived reader picks up new
segments without reconnecting.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cif.store.schema import TABLES, ensure_schema

log = logging.getLogger(__name__)

SEAL_DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS _seal_hw (
        tbl VARCHAR NOT NULL,
        symbol VARCHAR NOT NULL,
        sealed_seq BIGINT NOT NULL,
        target_seq BIGINT NOT NULL,
        PRIMARY KEY (tbl, symbol)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS _seal_state (
        id INTEGER PRIMARY KEY,
        next_segment BIGINT NOT NULL,
        pending_date VARCHAR
    )
    """,
    "INSERT INTO _seal_state VALUES (1, 1, NULL) ON CONFLICT DO NOTHING",
)

#: Extra sort keys after ``(symbol, seq)`` so a file's row order is fully determined (a redo
#: must rewrite the same rows in the same order).
_TIEBREAK: dict[str, tuple[str, ...]] = {
    "trades": ("trade_id",),
    "book_tickers": ("update_id",),
    "depth_updates": ("final_update_id",),
    "depth_snapshots": ("last_update_id",),
    "depth_levels": ("source", "update_id", "pos"),
    "book_events": (),
}


@dataclass(frozen=True, slots=True)
class PendingSegment:
    """A segment recorded by step 1 and not yet committed: its number and UTC day."""

    number: int
    date: str


def ensure_seal_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the bookkeeping tables (idempotent)."""
    for statement in SEAL_DDL:
        con.execute(statement)


def segment_path(history_dir: Path, table: str, date: str, number: int) -> Path:
    """Final path of ``table``'s file of segment ``number`` sealed on ``date``."""
    return history_dir / table / f"date={date}" / f"seg-{number:08d}.parquet"


def segment_glob(history_dir: Path, table: str) -> str:
    """Glob matching every sealed file of ``table`` (never the ``.tmp`` files)."""
    return str(history_dir / table / "date=*" / "seg-*.parquet")


def pending_segment(con: duckdb.DuckDBPyConnection) -> PendingSegment | None:
    """The segment recorded by step 1 and not committed yet, if any."""
    rows = con.execute("SELECT next_segment, pending_date FROM _seal_state WHERE id = 1")
    number, date = rows.fetchall()[0]
    return None if date is None else PendingSegment(int(number), str(date))


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_catalog = current_database() AND table_schema = current_schema()
          AND table_name = ?
        ORDER BY ordinal_position
        """,
        [table],
    ).fetchall()
    return [str(r[0]) for r in rows]


def begin_segment(con: duckdb.DuckDBPyConnection, date: str | None = None) -> PendingSegment | None:
    """Step 1: record a new pending segment covering every stored row not sealed yet.

    Returns the already pending segment if there is one (it must be finished first), and
    None, recording nothing, when no table has new rows. ``date`` defaults to today (UTC).
    """
    already = pending_segment(con)
    if already is not None:
        return already
    day = date or datetime.now(UTC).strftime("%Y-%m-%d")
    con.execute("BEGIN TRANSACTION")
    try:
        for table in TABLES:
            con.execute(
                f"""
                INSERT INTO _seal_hw
                SELECT '{table}', symbol, 0, max(seq) FROM {table} GROUP BY symbol
                ON CONFLICT (tbl, symbol) DO UPDATE SET target_seq = excluded.target_seq
                """
            )
        new = con.execute("SELECT count(*) FROM _seal_hw WHERE target_seq > sealed_seq")
        if new.fetchall()[0][0] == 0:
            con.execute("ROLLBACK")
            return None
        con.execute("UPDATE _seal_state SET pending_date = ? WHERE id = 1", [day])
        number = con.execute("SELECT next_segment FROM _seal_state WHERE id = 1").fetchall()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return PendingSegment(int(number[0][0]), day)


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_segment(
    con: duckdb.DuckDBPyConnection, history_dir: Path, segment: PendingSegment
) -> list[Path]:
    """Step 2: write each table's rows of ``segment`` to its Parquet file; returns the files.

    Tables without rows in the segment get no file. Safe to repeat: the same rows are
    written again under the same names.
    """
    written: list[Path] = []
    for table in TABLES:
        bounds = con.execute(
            "SELECT min(sealed_seq), max(target_seq) FROM _seal_hw "
            "WHERE tbl = ? AND target_seq > sealed_seq",
            [table],
        ).fetchall()[0]
        if bounds[0] is None:
            continue
        lo, hi = int(bounds[0]), int(bounds[1])
        cols = _columns(con, table)
        select = ", ".join(f"t.{c}" for c in cols)
        order = ", ".join(f"t.{c}" for c in ("symbol", "seq", *_TIEBREAK[table]))
        path = segment_path(history_dir, table, segment.date, segment.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # The constant bounds repeat the join's per-symbol range so DuckDB can skip row
        # groups by their seq min/max instead of scanning the whole table.
        con.execute(
            f"""
            COPY (
                SELECT {select} FROM {table} t
                JOIN _seal_hw h ON h.tbl = '{table}' AND h.symbol = t.symbol
                WHERE t.seq > {lo} AND t.seq <= {hi}
                  AND t.seq > h.sealed_seq AND t.seq <= h.target_seq
                ORDER BY {order}
            ) TO {_sql_str(str(tmp))} (FORMAT parquet)
            """
        )
        # Durable before it becomes visible, and visible before step 3 marks it sealed.
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
        written.append(path)
    return written


def commit_segment(con: duckdb.DuckDBPyConnection, segment: PendingSegment) -> None:
    """Step 3: mark ``segment``'s rows sealed and move on to the next segment number."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("UPDATE _seal_hw SET sealed_seq = target_seq WHERE target_seq > sealed_seq")
        con.execute(
            "UPDATE _seal_state SET next_segment = ?, pending_date = NULL WHERE id = 1",
            [segment.number + 1],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def finish_pending(con: duckdb.DuckDBPyConnection, history_dir: Path) -> int:
    """Redo steps 2–3 of a segment a crash left pending; returns the number of files written."""
    segment = pending_segment(con)
    if segment is None:
        return 0
    files = write_segment(con, history_dir, segment)
    commit_segment(con, segment)
    log.info(
        "finished interrupted segment %d (%s): %d files rewritten",
        segment.number,
        segment.date,
        len(files),
    )
    return len(files)


def seal(con: duckdb.DuckDBPyConnection, history_dir: Path, date: str | None = None) -> int:
    """Seal every stored row not sealed yet (finishing a pending segment first).

    Returns the number of Parquet files written; 0 when there was nothing new.
    """
    ensure_seal_tables(con)
    n_files = finish_pending(con, history_dir)
    segment = begin_segment(con, date)
    if segment is None:
        return n_files
    files = write_segment(con, history_dir, segment)
    commit_segment(con, segment)
    log.debug("sealed segment %d (%s): %d files", segment.number, segment.date, len(files))
    return n_files + len(files)


def _define_history_views(con: duckdb.DuckDBPyConnection, history_dir: Path) -> None:
    for table in TABLES:
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ?",
            [table],
        ).fetchall()
        if kind and kind[0][0] == "VIEW":
            continue
        pattern = segment_glob(history_dir, table)
        if not any(history_dir.glob(f"{table}/date=*/seg-*.parquet")):
            continue
        cols = ", ".join(_columns(con, table))
        con.execute(f"DROP TABLE {table}")
        con.execute(
            f"CREATE VIEW {table} AS SELECT {cols} FROM "
            f"read_parquet({_sql_str(pattern)}, hive_partitioning = true)"
        )


def open_history(history_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the sealed history as tables.

    Each of ``trades``, ``book_tickers``, ``depth_updates``, ``depth_snapshots``,
    ``depth_levels`` and ``book_events`` is a view over its segment files, with exactly the
    columns of the live table (the ``date`` partition is the seal day, not the events' day,
    so it is left out: filter on ``ts`` / ``recv_ts_ns`` instead). The views re-glob on
    every query, so new
    segments show up as they are sealed. A table with no segment yet is an empty table with
    the same columns; ``refresh_history`` turns it into a view once segments exist.
    """
    con = duckdb.connect(":memory:")
    ensure_schema(con)
    _define_history_views(con, history_dir)
    return con


def refresh_history(con: duckdb.DuckDBPyConnection, history_dir: Path) -> None:
    """Turn ``open_history``'s empty stand-in tables into views for tables sealed since."""
    _define_history_views(con, history_dir)
