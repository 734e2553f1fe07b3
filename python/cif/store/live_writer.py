"""The live gateway's DuckDB writer: events in one at a time, rows out in batches.

The gateway hands over events already de-duplicated and numbered (per-symbol ``seq``).
``add_*`` appends the event to an in-memory queue (cheap, on the event loop); every
``chunk_entries`` events the queue's newest events become a chunk, whose NumPy columns (one
Rust call, ``cif._core.live_store_columns``) are built ``chunk_build_delay_s`` later, when
the burst of the feed they came with has mostly left the loop, and sent to the writer
process, which keeps them (``writer_process.stage``). ``flush`` makes the last few events
a chunk too and asks the writer process to join the chunks and insert every table in one
transaction (as ``cif.store.writer`` does for imports; a plain ``INSERT``, retried as
``INSERT OR IGNORE`` when some rows are already stored), so the loop keeps accepting events
while DuckDB works. Why chunks: building and pickling half a second of columns at the flush held
the loop for ~3 ms at 5,000 ticks/s, twice a second, and every forecast in flight waited;
a chunk of 512 events costs the loop ~0.3 ms, spread out.

The DuckDB connection lives in a child process of its own (``cif.store.writer_process``,
one worker, at a low OS priority: ``niceness``), which runs all database work: DuckDB
neither takes this process's GIL nor shares its priority, and a crash of DuckDB costs a
restart of the worker, not the gateway. A failed flush puts its rows back in front of the
queue to be retried (a dead worker is restarted first); the queue is bounded
(``max_pending_rows``) by dropping the oldest rows, counted and logged, so an unwritable
database cannot exhaust memory. With a
``history_dir``, ``seal`` publishes the stored rows as Parquet segments that other
processes can read while this one holds the DuckDB file (see ``cif.store.segments``).

``add_*``, ``flush``, ``seal`` and ``run`` must be called from one event loop thread;
``open``, ``close``, ``last_trade_ids`` and ``max_seq`` block the calling thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from cif._core import BookTicker, DepthSnapshot, DepthUpdate, Trade, live_store_columns
from cif.ingest.book_events import BookEvent
from cif.store import writer_process
from cif.store.schema import TABLES
from cif.store.writer import InsertColumns

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Event: TypeAlias = Trade | BookTicker | DepthUpdate | DepthSnapshot | BookEvent
#: A queued event: the event, its seq, the trade's backfilled flag and its row count
#: (1, plus its levels for depth events).
_Entry: TypeAlias = tuple[_Event, int, bool, int]

_NOT_OPEN = "LiveWriter is not open"

#: Minimum seconds between two "queue full" warnings.
_DROP_LOG_INTERVAL_S = 10.0

#: Queued events turned into columns at a time, as they arrive (see the module docstring).
CHUNK_ENTRIES = 512

#: Seconds a full chunk waits before its columns are built (see ``LiveWriter._chunk_full``).
CHUNK_BUILD_DELAY_S = 0.005

#: Seconds the writer process pauses after each table's statement of a flush (see
#: :func:`cif.store.writer_process.write`): six tables make a flush ~50 ms longer.
STATEMENT_PAUSE_S = 0.008


@dataclass(slots=True)
class LiveWriterStats:
    """Counters for logs and health checks.

    ``rows_written`` counts rows inserted per table, ``duplicates_ignored`` rows refused as
    already stored, ``flushes`` successful non-empty flushes (``last_flush_wall_ns`` is the
    wall time of the latest), ``dropped_rows`` rows discarded because the queue was full,
    ``segments_written`` sealed Parquet files, ``worker_restarts`` writer processes that
    died and were replaced.
    """

    rows_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    duplicates_ignored: int = 0
    flushes: int = 0
    last_flush_wall_ns: int | None = None
    flush_errors: int = 0
    dropped_rows: int = 0
    segments_written: int = 0
    seal_errors: int = 0
    worker_restarts: int = 0


def _rows_of(entries: Iterable[_Entry]) -> int:
    return sum(e[3] for e in entries)


@dataclass(slots=True)
class _Chunk:
    """Queued events and, once built, their columns (``None``: to be built)."""

    entries: list[_Entry]
    rows: int
    tables: Mapping[str, InsertColumns] | None = None
    #: the id the writer process keeps its columns under (``None``: not sent yet)
    staged: int | None = None
    #: building its columns ahead failed (logged once; the flush tries again)
    build_failed: bool = False

    def columns(self) -> Mapping[str, InsertColumns]:
        if self.tables is None:
            # texts as codes: they pickle to the writer process as small arrays
            self.tables = live_store_columns(self.entries, texts_as_codes=True)
        return self.tables

    def drop_oldest(self, rows: int) -> int:
        """Drop the oldest events until ``rows`` rows are gone (or all); rows dropped."""
        dropped = k = 0
        while dropped < rows and k < len(self.entries):
            dropped += self.entries[k][3]
            k += 1
        del self.entries[:k]
        self.rows -= dropped
        self.tables = None
        return dropped

    def wire(self) -> writer_process.Chunk:
        """What a write sends for this chunk: its staged id, or its columns."""
        return self.columns() if self.staged is None else self.staged


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
        chunk_entries: int = CHUNK_ENTRIES,
        chunk_build_delay_s: float = CHUNK_BUILD_DELAY_S,
        statement_pause_s: float = STATEMENT_PAUSE_S,
    ) -> None:
        if flush_interval_s <= 0 or seal_interval_s <= 0 or max_pending_rows <= 0:
            raise ValueError("flush_interval_s, seal_interval_s and max_pending_rows must be > 0")
        if chunk_entries < 1:
            raise ValueError(f"chunk_entries must be >= 1, got {chunk_entries}")
        if not chunk_build_delay_s >= 0:
            raise ValueError(f"chunk_build_delay_s must be >= 0, got {chunk_build_delay_s}")
        if not 0 <= statement_pause_s <= 1:
            raise ValueError(f"statement_pause_s must be in 0..1, got {statement_pause_s}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if not 0 <= niceness <= 19:
            raise ValueError(f"niceness must be in 0..19, got {niceness}")
        self.db_path = Path(db_path)
        #: DuckDB worker threads. One by default: the writer shares the machine with the
        #: event loop and Redis, and a seal with a thread per core took every core for
        #: seconds (measured: a 2.2 s seal on 2 cores held forecasts back by 1.5 s).
        self.threads = threads
        #: Added to the writer process's nice value (``os.nice``). Its flushes are bursts
        #: of CPU that are never urgent, on a machine whose event loop, Redis and feed
        #: are: at the lowest priority it runs in their idle time.
        self.niceness = niceness
        self.history_dir = None if history_dir is None else Path(history_dir)
        self.flush_interval_s = flush_interval_s
        self.seal_interval_s = seal_interval_s
        self.max_pending_rows = max_pending_rows
        #: events per chunk of columns built and sent ahead of the flush
        self.chunk_entries = chunk_entries
        #: how long a full chunk waits on a running event loop before it is built (0: at once)
        self.chunk_build_delay_s = chunk_build_delay_s
        #: the writer process's pause between a flush's statements (0: none)
        self.statement_pause_s = statement_pause_s
        self._build_timer: asyncio.TimerHandle | None = None
        self.stats = LiveWriterStats()
        #: the oldest queued events, as chunks; then the newest, not a chunk yet
        self._chunks: deque[_Chunk] = deque()
        self._pending: list[_Entry] = []
        self._pending_rows = 0
        #: ids for chunks sent ahead, and those dropped here that the writer still keeps
        self._next_stage_id = 0
        self._forget: list[int] = []
        self._last_drop_log = -_DROP_LOG_INTERVAL_S
        self._executor: ProcessPoolExecutor | None = None
        #: the writer process died and no new one runs yet (the next flush starts one)
        self._worker_down = False
        # asyncio primitives belong to one loop; made per loop (tests and restarts use several).
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        self._flush_lock = asyncio.Lock()
        self._flushed = asyncio.Condition()

    # -- lifecycle (blocking) -----------------------------------------------------------------

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in the writer process and wait for it."""
        if self._executor is None:
            raise RuntimeError(_NOT_OPEN)
        return self._executor.submit(fn, *args).result()

    def open(self) -> None:
        """Start the writer process, connect, create the schema and finish an interrupted
        seal; idempotent."""
        if self._executor is not None:
            return
        self._start_worker()
        log.info(
            "DuckDB history %s open in writer process %d (nice +%d; segments: %s); "
            "resuming after trade ids %s",
            self.db_path,
            self.worker_pid(),
            self.niceness,
            self.history_dir or "off",
            self.last_trade_ids() or "{} (empty)",
        )

    def _start_worker(self) -> None:
        # spawn, not fork: this process runs threads (the event loop's executors, Redis
        # and DuckDB clients), and a forked copy of their locks can hang the child.
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=writer_process.init_worker,
            initargs=(self.niceness,),
        )
        history = None if self.history_dir is None else str(self.history_dir)
        try:
            finished, waiting = self._call(
                writer_process.open_db,
                str(self.db_path),
                self.threads,
                history,
                self.statement_pause_s,
            )
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        self.stats.segments_written += finished
        if waiting:
            log.warning(
                "%s has an unfinished segment but no history_dir was given: "
                "it is finished by the next writer opened with one",
                self.db_path,
            )

    def _lost_worker(self, exc: BaseException) -> None:
        """Drop a writer process that died (its pool is broken for good)."""
        self.stats.worker_restarts += 1
        self._worker_down = True
        # whatever the dead process kept is gone: every chunk goes whole next time
        for chunk in self._chunks:
            chunk.staged = None
        self._forget.clear()
        log.error(
            "the DuckDB writer process died (%s); starting a new one, %d rows kept queued",
            exc,
            self._pending_rows,
        )
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _revive_worker(self) -> bool:
        """Start a writer process in place of one that died; False (logged) if it fails."""
        try:
            # Off the loop: a new worker takes a moment to start and open the file.
            await asyncio.to_thread(self._start_worker)
        except Exception as exc:
            log.error("could not start a DuckDB writer process (retried next flush): %s", exc)
            return False
        self._worker_down = False
        log.info("DuckDB writer process %d took over %s", self.worker_pid(), self.db_path)
        return True

    def worker_pid(self) -> int:
        """The writer process's pid."""
        return self._call(writer_process.pid)

    def close(self) -> None:
        """Write what is pending, seal it (with a ``history_dir``), close the file and stop
        the writer process.

        Call it after ``run`` has returned (no flush in progress). Rows that still cannot
        be written are logged (and stay queued).
        """
        if self._build_timer is not None:  # the write below builds what it would have
            self._build_timer.cancel()
            self._build_timer = None
        if self._worker_down:
            self._worker_down = False
            try:
                self._start_worker()
            except Exception as exc:
                log.error(
                    "closing %s without a writer process (%s): %d rows not written",
                    self.db_path,
                    exc,
                    self._pending_rows,
                )
                return
        if self._executor is None:
            return
        try:
            chunks = self._take()
            if chunks:
                try:
                    self._account(self._write(chunks))
                except Exception as exc:
                    self._restore(chunks, exc)
            if self._pending_rows:
                log.error(
                    "closing %s with %d rows not written (still queued; lost if the process exits)",
                    self.db_path,
                    self._pending_rows,
                )
            if self.history_dir is not None:
                try:
                    self.stats.segments_written += self._call(
                        writer_process.seal, str(self.history_dir)
                    )
                except Exception:
                    self.stats.seal_errors += 1
                    log.exception("final seal of %s failed", self.db_path)
            with contextlib.suppress(BrokenProcessPool):
                self._call(writer_process.close_db)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def last_trade_ids(self) -> dict[str, int]:
        """The highest stored trade id per symbol (where live trade sequencing resumes)."""
        return self._call(writer_process.last_trade_ids)

    def max_seq(self) -> dict[str, int]:
        """The highest stored ``seq`` per symbol over all tables (where ``seq`` resumes)."""
        return self._call(writer_process.max_seq)

    # -- queueing (event loop, cheap) ---------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows queued and not handed to a flush yet (levels count one row each)."""
        return self._pending_rows

    def _push(self, entry: _Entry) -> None:
        pending = self._pending
        pending.append(entry)
        self._pending_rows += entry[3]
        if len(pending) >= self.chunk_entries:
            self._chunk_full()
        if self._pending_rows > self.max_pending_rows:
            self._drop_oldest()

    def _chunk_full(self) -> None:
        """Make the newest events a chunk, and build and send its columns
        ``chunk_build_delay_s`` later (at once without a running event loop).

        Why later: the events came with a burst of the feed whose forecasts are on their
        way through the same event loop, and building a chunk at once (~0.5 ms, up to
        1.7 ms, ~16 times a second at 5,000 ticks/s) stood at the start of that way, before
        the gateway's write to Redis. A few milliseconds later the burst has mostly left;
        the flush builds whatever is still waiting.
        """
        self._chunk_pending()
        if self._build_timer is not None:
            return  # the timer builds this chunk too
        if self.chunk_build_delay_s > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # a caller without an event loop: built now
                pass
            else:
                self._build_timer = loop.call_later(self.chunk_build_delay_s, self._build_waiting)
                return
        self._build_waiting()

    def _build_waiting(self) -> None:
        """Build the columns of every chunk that waits for them and send them ahead."""
        self._build_timer = None
        for chunk in self._chunks:
            built = chunk.tables is not None or chunk.staged is not None
            if built or chunk.build_failed or not chunk.entries:
                continue
            try:
                tables = chunk.columns()
            except Exception:
                # Left to the flush, which fails on it, logs it and keeps the rows (as a
                # flush did before the chunks): an add_* never raises for the writer.
                chunk.build_failed = True
                log.exception("building the DuckDB columns of %d events failed", len(chunk.entries))
                continue
            self._stage(chunk, tables)

    def _chunk_pending(self) -> None:
        """Make the newest events a chunk (its columns built later)."""
        if not self._pending:
            return
        chunk = _Chunk(self._pending, _rows_of(self._pending))
        self._pending = []
        self._chunks.append(chunk)

    def _stage(self, chunk: _Chunk, tables: Mapping[str, InsertColumns]) -> None:
        """Send a chunk's columns to the writer process now (see ``writer_process.stage``).

        Fire and forget: the calls run in order before the flush's write, which fails if
        a chunk it names never arrived (a dead worker), and then sends it whole.
        """
        if self._executor is None or self._worker_down:
            return
        chunk_id = self._next_stage_id
        try:
            self._executor.submit(writer_process.stage, chunk_id, tables)
        except (BrokenProcessPool, RuntimeError):
            return  # the pool is broken or shut down: the flush finds out and recovers
        self._next_stage_id += 1
        chunk.staged = chunk_id

    def _drop_oldest(self) -> None:
        dropped = 0
        while self._pending_rows > self.max_pending_rows:
            excess = self._pending_rows - self.max_pending_rows
            if self._chunks:
                chunk = self._chunks[0]
                if chunk.staged is not None:
                    self._forget.append(chunk.staged)
                    chunk.staged = None
                rows = chunk.drop_oldest(excess)
                if not chunk.entries:
                    self._chunks.popleft()
            elif self._pending:
                rows = self._pending.pop(0)[3]
            else:
                break
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

    def add_entries(self, entries: list[_Entry]) -> None:
        """Queue ``(event, seq, backfilled, 1)`` entries of one row each, as the ``add_*``
        methods would (what :class:`cif._core.IngestCore` produces for trades, tickers and
        book events)."""
        n = len(entries)
        if (
            len(self._pending) + n < self.chunk_entries
            and self._pending_rows + n <= self.max_pending_rows
        ):
            # No chunk fills and nothing is dropped: what _push would do, at once.
            self._pending.extend(entries)
            self._pending_rows += n
            return
        for entry in entries:
            self._push(entry)

    # -- flushing -----------------------------------------------------------------------------

    def _take(self) -> list[_Chunk]:
        """Everything queued, as chunks (the newest events made one, built at the flush)."""
        self._chunk_pending()
        chunks = list(self._chunks)
        self._chunks.clear()
        self._pending_rows = 0
        return chunks

    def _requeue(self, chunks: list[_Chunk]) -> None:
        """Put a flush's rows back in front of what arrived meanwhile."""
        for chunk in chunks:
            chunk.staged = None  # the write let the writer's copy go: sent whole next time
        self._chunks.extendleft(reversed(chunks))
        self._pending_rows += sum(c.rows for c in chunks)
        if self._pending_rows > self.max_pending_rows:
            self._drop_oldest()

    def _restore(self, chunks: list[_Chunk], exc: Exception) -> None:
        """Requeue a failed flush's rows for the next one, counted and logged."""
        self.stats.flush_errors += 1
        rows = sum(c.rows for c in chunks)
        log.error("DuckDB flush of %d rows failed, will retry: %s", rows, exc)
        self._requeue(chunks)

    def _write(self, chunks: list[_Chunk]) -> _FlushOutcome:
        """One transaction with every table's rows, in the writer process (blocking)."""
        start = time.perf_counter()
        wire, forget = self._wire(chunks)
        offered, inserted = self._call(writer_process.write, wire, forget)
        return _FlushOutcome(offered, inserted, time.perf_counter() - start)

    def _wire(self, chunks: list[_Chunk]) -> tuple[list[writer_process.Chunk], list[int]]:
        """A write's arguments: each chunk as sent, and the staged ids to let go."""
        wire = [c.wire() for c in chunks]
        forget, self._forget = self._forget, []
        return wire, forget

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
        if self._executor is None and not self._worker_down:
            raise RuntimeError(_NOT_OPEN)
        lock, _ = self._primitives()
        async with lock:
            if self._worker_down and not await self._revive_worker():
                return 0
            chunks = self._take()
            if not chunks:
                return 0
            loop = asyncio.get_running_loop()
            start = time.perf_counter()
            forget: list[int] = []
            try:
                wire, forget = self._wire(chunks)
                offered, inserted = await loop.run_in_executor(
                    self._executor, writer_process.write, wire, forget
                )
            except asyncio.CancelledError:
                # The writer may still commit them; writing them again later is harmless
                # (their primary keys make it a no-op), losing them is not.
                self._requeue(chunks)
                raise
            except BrokenProcessPool as exc:
                self._restore(chunks, exc)
                self._lost_worker(exc)
                await self._revive_worker()
                return 0
            except Exception as exc:
                # the ids may not have reached the writer: named again next time (harmless)
                self._forget.extend(forget)
                self._restore(chunks, exc)
                return 0
            outcome = _FlushOutcome(offered, inserted, time.perf_counter() - start)
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

    async def seal(self) -> int:
        """Seal the stored rows not sealed yet into Parquet segments; returns files written.

        Without a ``history_dir`` there is nothing to do (0). Errors propagate; the
        segment stays pending and the next ``seal`` finishes it first.
        """
        if self._executor is None:
            down = self._worker_down
            raise RuntimeError("the DuckDB writer process is down" if down else _NOT_OPEN)
        if self.history_dir is None:
            return 0
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        files = await loop.run_in_executor(
            self._executor, writer_process.seal, str(self.history_dir)
        )
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
