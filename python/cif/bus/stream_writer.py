"""Pipelined, idempotent, outage-tolerant writes to Redis Streams.

- Entries carry explicit IDs derived from the data (``<trade id>-0`` for trades, ``<seq>-0``
  for book events), so re-sending an entry is a no-op: Redis refuses an ID that is not
  above the stream's top, and the writer counts that as a duplicate.
- Writes are batched into one pipeline round trip (no round trip per tick) and trimmed with
  approximate ``MAXLEN``.
- When Redis is unreachable the entries stay in a bounded in-memory buffer and are written
  when it returns (persistence to DuckDB does not depend on Redis at all). A full buffer
  drops its oldest entries, counted and logged, and never blocks the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

FieldValue = bytes | str | int | float
_DUPLICATE_MARKERS = ("equal or smaller than the target stream top item",)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One XADD: stream key, explicit entry ID and the fields."""

    key: str
    entry_id: str
    fields: Mapping[str, FieldValue]


@dataclass(slots=True)
class WriterStats:
    """Counters for logs and health endpoints."""

    written: int = 0
    duplicates: int = 0
    dropped_buffer_full: int = 0
    rejected: int = 0
    outages: int = 0
    flushes: int = 0


class StreamWriter:
    """Buffers entries and writes them to Redis in pipelined batches."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        maxlen: int = 1_000_000,
        max_buffer: int = 1_000_000,
        batch_size: int = 2_000,
    ) -> None:
        if maxlen <= 0 or max_buffer <= 0 or batch_size <= 0:
            raise ValueError("maxlen, max_buffer and batch_size must be positive")
        self._client = client
        self._maxlen = maxlen
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._buffer: deque[StreamEntry] = deque()
        self._connected = True
        self._last_full_log = 0.0
        self.stats = WriterStats()

    @property
    def pending(self) -> int:
        """Entries waiting to be written."""
        return len(self._buffer)

    @property
    def connected(self) -> bool:
        """False after a failed write, until a write succeeds again."""
        return self._connected

    def put(self, entry: StreamEntry) -> None:
        """Queue an entry; never blocks. A full buffer drops its oldest entry (counted)."""
        if len(self._buffer) >= self._max_buffer:
            self._buffer.popleft()
            self.stats.dropped_buffer_full += 1
            now = time.monotonic()
            if now - self._last_full_log > 10.0:
                self._last_full_log = now
                log.warning(
                    "redis buffer full (%d entries): dropping oldest; %d dropped so far "
                    "(history in DuckDB is unaffected)",
                    self._max_buffer,
                    self.stats.dropped_buffer_full,
                )
        self._buffer.append(entry)

    async def flush(self) -> int:
        """Write everything pending, one pipeline per batch.

        Returns the number of entries newly written. On a connection failure the unwritten
        entries stay queued and ``RedisUnavailable`` is raised.
        """
        written = 0
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            pipe = self._client.pipeline(transaction=False)
            for e in batch:
                fields: dict[Any, Any] = dict(e.fields)
                pipe.xadd(
                    e.key,
                    fields,
                    id=e.entry_id,
                    maxlen=self._maxlen,
                    approximate=True,
                )
            try:
                results = await pipe.execute(raise_on_error=False)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._connected:
                    self.stats.outages += 1
                    log.warning("redis unavailable (%s): %d entries buffered", exc, self.pending)
                self._connected = False
                raise RedisUnavailable(str(exc)) from exc
            if not self._connected:
                log.info("redis is back: writing %d buffered entries", self.pending)
                self._connected = True
            for e, res in zip(batch, results, strict=True):
                if isinstance(res, ResponseError):
                    if any(m in str(res) for m in _DUPLICATE_MARKERS):
                        self.stats.duplicates += 1
                    else:
                        self.stats.rejected += 1
                        log.error("redis rejected %s %s: %s", e.key, e.entry_id, res)
                elif isinstance(res, BaseException):
                    # Anything but a per-entry refusal: retry the batch later (IDs make
                    # the retry idempotent).
                    self._connected = False
                    raise RedisUnavailable(f"{type(res).__name__}: {res}")
                else:
                    written += 1
            for _ in batch:
                self._buffer.popleft()
            self.stats.flushes += 1
        self.stats.written += written
        return written

    async def run(
        self, stop: asyncio.Event, interval: float = 0.02, max_backoff: float = 2.0
    ) -> None:
        """Flush every ``interval`` until ``stop`` is set; back off while Redis is down."""
        delay = interval
        while True:
            try:
                await self.flush()
                delay = interval
            except RedisUnavailable:
                delay = min(max(delay * 2, 0.05), max_backoff)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                break
            except TimeoutError:
                continue
        try:
            await self.flush()
        except RedisUnavailable:
            log.warning("stopping with %d entries not written to redis", self.pending)


class RedisUnavailable(ConnectionError):
    """Redis could not be reached; entries stay buffered."""
