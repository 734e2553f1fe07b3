"""The live writer's DuckDB process: the connection and every statement run here.

:class:`cif.store.live_writer.LiveWriter` runs these functions in a child process of its
own (a one-worker process pool), never in the process that runs the event loop. Why not a
thread: DuckDB's Python client takes the GIL many times per statement (registering the
columns, binding, fetching), and while the loop was busy each take waited for it and burnt
CPU in the hand-over. Measured at 5,000 ticks/s with the thread: forecasts were ~5 ms
slower for ~100 ms after every flush, and the writer's CPU per flush tripled (20 → 60 ms
for 500 events) beside a busy loop. A process has its own GIL, and its own nice value.

The functions keep the connection in a module global: the pool has one worker, so every
call sees the connection the last ``open_db`` made. Columns come in as NumPy arrays built
by the parent (:func:`cif._core.live_store_columns`), a chunk at a time, most of them sent
ahead of their flush (:func:`stage`); the parent keeps every chunk until a write has
committed it, so rows a failed or lost call was given are never lost.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from cif.store import segments
from cif.store.schema import ensure_schema, max_seq_by_symbol
from cif.store.writer import InsertColumns, concat_tables, insert_tables

_con: duckdb.DuckDBPyConnection | None = None
#: Seconds :func:`write` sleeps after each table's statement, inside its transaction.
_pause_s = 0.0
#: Chunks of columns the parent sent ahead of the flush that writes them, by id.
_staged: dict[int, Mapping[str, InsertColumns]] = {}
#: What :func:`write` takes for a chunk: its columns, or the id it was staged under.
Chunk = Mapping[str, InsertColumns] | int


def init_worker(niceness: int) -> None:
    """The worker's start: raise its nice value by ``niceness`` (its flushes are never
    urgent: the event loop, Redis and the feed go first), leave Ctrl-C to the parent,
    which closes the writer (a final flush and seal) when it stops, and end with the
    parent if it dies without closing it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with, args=(parent.sentinel,), name="parent watch", daemon=True
        ).start()
    if niceness and hasattr(os, "nice"):  # not on Windows
        try:
            os.nice(niceness)
        except OSError as exc:
            print(f"cif DuckDB writer: could not lower its priority: {exc}", file=sys.stderr)


def _exit_with(sentinel: int) -> None:
    """Exit once the parent is gone: an orphan would hold the DuckDB file's lock, and the
    parent's restart could not open it. What the parent had queued is lost with it anyway;
    DuckDB's log makes the file whole again at the next open."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _db() -> duckdb.DuckDBPyConnection:
    if _con is None:
        raise RuntimeError("the DuckDB writer process has no open database")
    return _con


def open_db(
    db_path: str, threads: int, history_dir: str | None, pause_s: float = 0.0
) -> tuple[int, bool]:
    """Connect, create the schema and finish an interrupted seal. Returns the segment
    files the seal wrote and whether an unfinished segment waits for a ``history_dir``.
    ``pause_s``: the pause of every later :func:`write` between its tables."""
    global _con, _pause_s
    close_db()
    _pause_s = float(pause_s)
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(db_path)
    try:
        con.execute(f"SET threads = {int(threads)}")
        ensure_schema(con)
        segments.ensure_seal_tables(con)
        finished = 0
        waiting = False
        if history_dir is not None:
            finished = segments.finish_pending(con, Path(history_dir))
        else:
            waiting = segments.pending_segment(con) is not None
    except BaseException:
        con.close()
        raise
    _con = con
    return finished, waiting


def close_db() -> None:
    global _con
    _staged.clear()
    if _con is not None:
        _con.close()
        _con = None


def stage(chunk_id: int, tables: Mapping[str, InsertColumns]) -> None:
    """Keep a chunk of columns until a :func:`write` names it (or :func:`close_db`).

    Why: the parent sends its chunks as they fill, so the flush's call carries only the
    newest events; pickling half a second of columns at once took its process's GIL for
    ~1 ms (a chunk at a time it takes ~0.15 ms, spread out).
    """
    _staged[chunk_id] = tables


def staged_ids() -> list[int]:
    """The ids of the chunks staged and not written or forgotten yet (tests, diagnostics)."""
    return sorted(_staged)


def write(
    chunks: Sequence[Chunk], forget: Sequence[int] = ()
) -> tuple[dict[str, int], dict[str, int]]:
    """Every table's rows of every chunk in one transaction: (rows offered, rows inserted)
    per table.

    A chunk is its columns, or the id of a chunk :func:`stage` keeps; staged chunks named
    here are let go whatever happens (so after a failure the parent sends them again
    whole), as are the ids in ``forget`` (chunks the parent dropped). A staged id not
    kept here (a worker started since) fails the call with a ``LookupError`` before any
    row is written. The chunks are joined here, off the parent's loop. A plain ``INSERT``
    first; when some rows are already stored (a flush whose commit the parent never heard
    of, and gave again) the same rows go again as ``INSERT OR IGNORE``.

    The transaction sleeps ``pause_s`` (:func:`open_db`) after each table's statement. A
    flush is ~35 ms of CPU at 5,000 ticks/s, and run in one go it took one of the machine's
    two cores from the event loop, Redis and the feed for as long: the slowest forecasts
    gathered on flushes. In pieces of one statement (2-9 ms) with pauses between them,
    the others get the core back in between (benches/README.md, session 19).
    """
    for chunk_id in forget:
        _staged.pop(chunk_id, None)
    parts: list[Mapping[str, InsertColumns]] = []
    missing: list[int] = []
    for chunk in chunks:
        if isinstance(chunk, int):
            got = _staged.pop(chunk, None)
            if got is None:
                missing.append(chunk)
            else:
                parts.append(got)
        else:
            parts.append(chunk)
    if missing:
        raise LookupError(f"staged chunks {missing} are not in this writer process")
    if not parts:
        return {}, {}
    con = _db()
    tables = concat_tables(parts)
    between = functools.partial(time.sleep, _pause_s) if _pause_s > 0 else None
    try:
        return insert_tables(con, tables, ignore_duplicates=False, between=between)
    except duckdb.ConstraintException:
        return insert_tables(con, tables, ignore_duplicates=True, between=between)


def seal(history_dir: str) -> int:
    """Seal the stored rows not sealed yet into Parquet segments; returns files written."""
    return segments.seal(_db(), Path(history_dir))


def last_trade_ids() -> dict[str, int]:
    """The highest stored trade id per symbol."""
    rows = _db().execute("SELECT symbol, max(trade_id) FROM trades GROUP BY symbol")
    return {str(s): int(t) for s, t in rows.fetchall()}


def max_seq() -> dict[str, int]:
    """The highest stored ``seq`` per symbol over all tables."""
    return max_seq_by_symbol(_db())


def query(sql: str) -> list[tuple[object, ...]]:
    """One statement on the writer's connection, its rows (diagnostics and tests: no
    other process can open the file while the writer holds it)."""
    return _db().execute(sql).fetchall()


def priority() -> int:
    """This process's nice value."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def pid() -> int:
    return os.getpid()


def statement_pause() -> float:
    """The seconds :func:`write` pauses after each table's statement."""
    return _pause_s
