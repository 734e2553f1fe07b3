"""The live gateway's DuckDB writer: events in one at a time, rows out in batches.

The gateway hands over events already de-duplicated and numbered (per-symbol ``seq``).
``add_*`` only appends the event to an in-memory queue (cheap, on the event loop); ``flush``
swaps the queue for a fresh one and, in a worker thread, turns it into NumPy columns (one
Rust call, ``cif._core.live_store_columns``) and inserts every table in one transaction (as
``cif.store.writer`` does for imports; a plain ``INSERT``, retried as ``INSERT OR IGNORE``
when some rows are already stored), so the loop keeps accepting events while DuckDB works.
The thread runs at a low OS priority (``niceness``): flushes are never urgent.

One single-thread executor owns the DuckDB connection and runs all database work, so the
connection is never used from two threads. A failed flush puts its rows back in front of
the queue to be retried; the queue is bounded (``max_pending_rows``) by dropping the oldest
rows, counted and logged, so an unwritable database cannot exhaust memory. With a
``history_dir``, ``seal`` publishes the stored rows as Parquet segments that other
processes can read while this one holds the DuckDB file (see ``cif.store.segments``).

``add_*``, ``flush``, ``seal`` and ``run`` must be called from one event loop thread;
``open``, ``close``, ``last_trade_ids`` and ``max_seq`` block the calling thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias, TypeVar

import duckdb

from cif._core import BookTicker, DepthSnapshot, DepthUpdate, Trade, live_store_columns
from cif.ingest.book_events import BookEvent
from cif.store import segments
from cif.store.schema import TABLES, ensure_schema, max_seq_by_symbol
from cif.store.writer import InsertColumns, insert_columns

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Event: TypeAlias = Trade | BookTicker | DepthUpdate | DepthSnapshot | BookEvent
#: A queued event: the event, its seq, the trade's backfilled flag and its row count
#: (1, plus its levels for depth events).
_Entry: TypeAlias = tuple[_Event, int, bool, int]

#: Minimum seconds between two "queue full" warnings.
_DROP_LOG_INTERVAL_S = 10.0


@dataclass(slots=True)
class LiveWriterStats:
    """Counters for logs and health checks.

    ``rows_written`` counts rows inserted per table, ``duplicates_ignored`` rows refused as
    already stored, ``flushes`` successful non-empty flushes (``last_flush_wall_ns`` is the
    wall time of the latest), ``dropped_rows`` rows discarded because the queue was full,
    ``segments_written`` sealed Parquet files.
    """

    rows_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    duplicates_ignored: int = 0
    flushes: int = 0
    last_flush_wall_ns: int | None = None
    flush_errors: int = 0
    dropped_rows: int = 0
    segments_written: int = 0
    seal_errors: int = 0


def _rows_of(entries: Iterable[_Entry]) -> int:
    return sum(e[3] for e in entries)


@dataclass(frozen=True, slots=True)
class _FlushOutcome:
    offered: dict[str, int]
    inserted: dict[str, int]
    seconds: float


class LiveWriter:
    """Buffers live events and writes them to the DuckDB history in batches."""

    def __init__(
        self,
        db_path: Path,
        history_dir: Path | None = None,
        *,
        flush_interval_s: float = 0.5,
        seal_interval_s: float = 60.0,
        max_pending_rows: int = 2_000_000,
        threads: int = 1,
        niceness: int = 19,
    ) -> None:
        if flush_interval_s <= 0 or seal_interval_s <= 0 or max_pending_rows <= 0:
            raise ValueError("flush_interval_s, seal_interval_s and max_pending_rows must be > 0")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if not 0 <= niceness <= 19:
            raise ValueError(f"niceness must be in 0..19, got {niceness}")
        self.db_path = Path(db_path)
        #: DuckDB worker threads. One by default: the writer shares the machine with the
        #: event loop and Redis, and a seal with a thread per core took every core for
        #: seconds (measured: a 2.2 s seal on 2 cores held forecasts back by 1.5 s).
        self.threads = threads
        #: Added to the DuckDB thread's nice value (Linux; the thread only). Its flushes are
        #: bursts of CPU that are never urgent, on a machine whose event loop, Redis and
        #: feed are: at the lowest priority it runs in their idle time. DuckDB releases the
        #: GIL while it works, so the loop does not wait behind it (measured at 5,000
        #: ticks/s: p99 19.8 -> 16.3, 21.7 -> 20.0, 26.1 -> 24.1 ms in three pairs).
        self.niceness = niceness
        self.history_dir = None if history_dir is None else Path(history_dir)
        self.flush_interval_s = flush_interval_s
        self.seal_interval_s = seal_interval_s
        self.max_pending_rows = max_pending_rows
        self.stats = LiveWriterStats()
        self._pending: deque[_Entry] = deque()
        self._pending_rows = 0
        self._last_drop_log = -_DROP_LOG_INTERVAL_S
        self._executor: ThreadPoolExecutor | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        # asyncio primitives belong to one loop; made per loop (tests and restarts use several).
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        self._flush_lock = asyncio.Lock()
        self._flushed = asyncio.Condition()

    # -- lifecycle (blocking) -----------------------------------------------------------------

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the DuckDB thread and wait for it."""
        if self._executor is None:
            raise RuntimeError("LiveWriter is not open")
        return self._executor.submit(fn).result()

    def _db(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("LiveWriter is not open")
        return self._con

    def open(self) -> None:
        """Connect, create the schema and finish an interrupted seal; idempotent."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cif-duckdb", initializer=self._lower_priority
        )
        try:
            self._call(self._open_db)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        log.info(
            "DuckDB history %s open (segments: %s); resuming after trade ids %s",
            self.db_path,
            self.history_dir or "off",
            self.last_trade_ids() or "{} (empty)",
        )

    def _lower_priority(self) -> None:
        """Raise this (DuckDB) thread's nice value by ``niceness``; a failure is logged."""
        # setpriority(PRIO_PROCESS, tid) is per thread on Linux only; elsewhere a thread id
        # would name a process.
        if self.niceness == 0 or not sys.platform.startswith("linux"):
            return
        tid = threading.get_native_id()
        try:
            os.setpriority(
                os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.niceness
            )
        except OSError as exc:
            log.warning("could not lower the DuckDB thread's priority: %s", exc)

    def _open_db(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.db_path))
        try:
            # SET, not a connect-time config: DuckDB refuses a second connection to the
            # file with a different config in one process.
            con.execute(f"SET threads = {int(self.threads)}")
            ensure_schema(con)
            segments.ensure_seal_tables(con)
            if self.history_dir is not None:
                self.stats.segments_written += segments.finish_pending(con, self.history_dir)
            elif segments.pending_segment(con) is not None:
                log.warning(
                    "%s has an unfinished segment but no history_dir was given: "
                    "it is finished by the next writer opened with one",
                    self.db_path,
                )
        except BaseException:
            con.close()
            raise
        self._con = con

    def close(self) -> None:
        """Write what is pending, seal it (with a ``history_dir``) and close the file.

        Call it after ``run`` has returned (no flush in progress). Rows that still cannot
        be written are logged (and stay queued).
        """
        if self._executor is None:
            return
        try:
            entries = self._take()
            if entries:
                try:
                    self._account(self._call(lambda: self._write(entries)))
                except Exception as exc:
                    self._restore(entries, exc)
            if self._pending_rows:
                log.error(
                    "closing %s with %d rows not written (still queued; lost if the process exits)",
                    self.db_path,
                    self._pending_rows,
                )
            if self.history_dir is not None:
                try:
                    self.stats.segments_written += self._call(self._seal)
                except Exception:
                    self.stats.seal_errors += 1
                    log.exception("final seal of %s failed", self.db_path)
            self._call(self._close_db)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _close_db(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def last_trade_ids(self) -> dict[str, int]:
        """The highest stored trade id per symbol (where live trade sequencing resumes)."""

        def query() -> dict[str, int]:
            rows = self._db().execute("SELECT symbol, max(trade_id) FROM trades GROUP BY symbol")
            return {str(s): int(t) for s, t in rows.fetchall()}

        return self._call(query)

    def max_seq(self) -> dict[str, int]:
        """The highest stored ``seq`` per symbol over all tables (where ``seq`` resumes)."""
        return self._call(lambda: max_seq_by_symbol(self._db()))

    # -- queueing (event loop, cheap) ---------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows queued and not handed to a flush yet (levels count one row each)."""
        return self._pending_rows

    def _push(self, entry: _Entry) -> None:
        self._pending.append(entry)
        self._pending_rows += entry[3]
        if self._pending_rows > self.max_pending_rows:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        dropped = 0
        while self._pending_rows > self.max_pending_rows and self._pending:
            rows = self._pending.popleft()[3]
            self._pending_rows -= rows
            dropped += rows
        self.stats.dropped_rows += dropped
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "DuckDB write queue full (%d rows): dropped the oldest; %d rows dropped so far",
                self.max_pending_rows,
                self.stats.dropped_rows,
            )

    def add_trade(self, trade: Trade, seq: int, backfilled: bool) -> None:
        """Queue a trade (``backfilled``: it came from REST to fill a gap)."""
        self._push((trade, seq, backfilled, 1))

    def add_book_ticker(self, ticker: BookTicker, seq: int) -> None:
        """Queue a best bid/ask update."""
        self._push((ticker, seq, False, 1))

    def add_depth_update(self, update: DepthUpdate, seq: int) -> None:
        """Queue a diff-depth event and its levels."""
        self._push((update, seq, False, 1 + len(update.bids) + len(update.asks)))

    def add_depth_snapshot(self, snapshot: DepthSnapshot, seq: int) -> None:
        """Queue a depth snapshot and its levels."""
        self._push((snapshot, seq, False, 1 + len(snapshot.bids) + len(snapshot.asks)))

    def add_book_event(self, event: BookEvent) -> None:
        """Queue a derived book event (published to ``book:{symbol}``; the features' input)."""
        self._push((event, event.seq, False, 1))

    # -- flushing -----------------------------------------------------------------------------

    def _take(self) -> deque[_Entry]:
        entries, self._pending = self._pending, deque()
        self._pending_rows = 0
        return entries

    def _requeue(self, entries: deque[_Entry]) -> None:
        """Put a flush's rows back in front of what arrived meanwhile."""
        entries.extend(self._pending)
        self._pending = entries
        self._pending_rows = _rows_of(entries)
        if self._pending_rows > self.max_pending_rows:
            self._drop_oldest()

    def _restore(self, entries: deque[_Entry], exc: Exception) -> None:
        """Requeue a failed flush's rows for the next one, counted and logged."""
        self.stats.flush_errors += 1
        log.error("DuckDB flush of %d rows failed, will retry: %s", _rows_of(entries), exc)
        self._requeue(entries)

    def _write(self, entries: Iterable[_Entry]) -> _FlushOutcome:
        """One transaction with every table's rows (DuckDB thread)."""
        start = time.perf_counter()
        # Rust builds the columns: in Python this per-row work held the GIL for 7-20 ms per
        # flush, twice a second, and the event loop waited for it.
        tables = live_store_columns(entries, texts_as_codes=True)
        con = self._db()
        try:
            offered, inserted = self._insert(con, tables, ignore_duplicates=False)
        except duckdb.ConstraintException:
            # Some rows are already stored: a flush cancelled after its commit and requeued,
            # or a restart over rows the gateway had not counted. Insert the rest.
            offered, inserted = self._insert(con, tables, ignore_duplicates=True)
        return _FlushOutcome(offered, inserted, time.perf_counter() - start)

    @staticmethod
    def _insert(
        con: duckdb.DuckDBPyConnection,
        tables: Mapping[str, InsertColumns],
        *,
        ignore_duplicates: bool,
    ) -> tuple[dict[str, int], dict[str, int]]:
        offered: dict[str, int] = {}
        inserted: dict[str, int] = {}
        con.execute("BEGIN TRANSACTION")
        try:
            for name, cols in tables.items():
                offered[name], inserted[name] = insert_columns(
                    con, name, cols, ignore_duplicates=ignore_duplicates
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return offered, inserted

    def _account(self, outcome: _FlushOutcome) -> int:
        total = sum(outcome.inserted.values())
        for name, n in outcome.inserted.items():
            self.stats.rows_written[name] += n
        self.stats.duplicates_ignored += sum(outcome.offered.values()) - total
        self.stats.flushes += 1
        self.stats.last_flush_wall_ns = time.time_ns()
        log.debug(
            "flushed %d rows (%d duplicates) in %.1f ms: %s",
            total,
            sum(outcome.offered.values()) - total,
            outcome.seconds * 1e3,
            outcome.inserted,
        )
        return total

    async def flush(self) -> int:
        """Write everything queued in one transaction; returns the rows inserted.

        Events added meanwhile are queued for the next flush. On a failure the rows go
        back in front of the queue (retried next time) and 0 is returned.
        """
        if self._executor is None:
            raise RuntimeError("LiveWriter is not open")
        lock, _ = self._primitives()
        async with lock:
            entries = self._take()
            if not entries:
                return 0
            loop = asyncio.get_running_loop()
            try:
                outcome = await loop.run_in_executor(self._executor, self._write, entries)
            except asyncio.CancelledError:
                # The thread may still commit them; writing them again later is harmless
                # (their primary keys make it a no-op), losing them is not.
                self._requeue(entries)
                raise
            except Exception as exc:
                self._restore(entries, exc)
                return 0
            total = self._account(outcome)
        await self._notify_flushed()
        return total

    def _primitives(self) -> tuple[asyncio.Lock, asyncio.Condition]:
        loop = asyncio.get_running_loop()
        if self._sync_loop is not loop:
            self._sync_loop = loop
            self._flush_lock = asyncio.Lock()
            self._flushed = asyncio.Condition()
        return self._flush_lock, self._flushed

    async def _notify_flushed(self) -> None:
        _, cond = self._primitives()
        async with cond:
            cond.notify_all()

    async def wait_for_flushes(self, count: int) -> None:
        """Return once ``stats.flushes`` has reached ``count`` (for health checks and tests)."""
        _, cond = self._primitives()
        async with cond:
            await cond.wait_for(lambda: self.stats.flushes >= count)

    # -- sealing ------------------------------------------------------------------------------

    def _seal(self) -> int:
        assert self.history_dir is not None
        return segments.seal(self._db(), self.history_dir)

    async def seal(self) -> int:
        """Seal the stored rows not sealed yet into Parquet segments; returns files written.

        Without a ``history_dir`` there is nothing to do (0). Errors propagate; the
        segment stays pending and the next ``seal`` finishes it first.
        """
        if self._executor is None:
            raise RuntimeError("LiveWriter is not open")
        if self.history_dir is None:
            return 0
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        files = await loop.run_in_executor(self._executor, self._seal)
        self.stats.segments_written += files
        if files:
            log.info(
                "sealed %d segment file(s) into %s in %.2f s",
                files,
                self.history_dir,
                time.perf_counter() - started,
            )
        return files

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_interval_s`` and seal every ``seal_interval_s`` until ``stop``.

        Then flushes and seals once more. Failures are logged and retried, never raised.
        """
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self.flush_interval_s
        next_seal = loop.time() + self.seal_interval_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_flush - loop.time()))
            # Deadlines advance from the previous ones, so a slow flush does not stretch the
            # interval; after a long stall they restart from now instead of bursting.
            next_flush = max(next_flush + self.flush_interval_s, loop.time())
            await self.flush()
            if self.history_dir is not None and loop.time() >= next_seal:
                next_seal = loop.time() + self.seal_interval_s
                await self._seal_logged()
        await self.flush()
        if self.history_dir is not None:
            await self._seal_logged()

    async def _seal_logged(self) -> None:
        try:
            await self.seal()
        except Exception:
            self.stats.seal_errors += 1
            log.exception("sealing %s into %s failed", self.db_path, self.history_dir)
