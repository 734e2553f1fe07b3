"""Pipelined, idempotent, outage-tolerant writes to Redis Streams.

- Entries carry explicit IDs derived from the data (``<trade id>-0`` for trades, ``<seq>-0``
  for book events), so re-sending an entry is a no-op: Redis refuses an ID that is not
  above the stream's top, and the writer counts that as a duplicate.
- Writes are batched into one round trip (no round trip per tick), one server-side script
  call per stream per batch (commands packed here, not per argument by the client library:
  that packing was the writer's bottleneck), trimmed with approximate ``MAXLEN``.
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
        self._maxlen_arg = _bulk(str(maxlen).encode())
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
        """Write everything pending, one round trip per batch.

        Returns the number of entries newly written. On a connection failure the unwritten
        entries stay queued and ``RedisUnavailable`` is raised.
        """
        written = 0
        while self._buffer:
            n = min(self._batch_size, len(self._buffer))
            batch = [self._buffer[i] for i in range(n)]
            groups = _group_by_key(batch)
            payload = b"".join(self._pack_group(key, entries) for key, entries in groups)
            try:
                replies = await self._round_trip(payload, len(groups))
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._connected:
                    self.stats.outages += 1
                    log.warning("redis unavailable (%s): %d entries buffered", exc, self.pending)
                self._connected = False
                raise RedisUnavailable(str(exc)) from exc
            if not self._connected:
                log.info("redis is back: writing %d buffered entries", self.pending)
                self._connected = True
            for (key, _entries), reply in zip(groups, replies, strict=True):
                if isinstance(reply, BaseException):
                    # The whole group failed (e.g. a non-stream key of that name): retrying
                    # cannot help, so it is counted and logged, not retried forever.
                    self.stats.rejected += len(_entries)
                    log.error("redis refused %d entries for %s: %s", len(_entries), key, reply)
                    continue
                added, duplicates, rejected, first_error = reply
                written += int(added)
                self.stats.duplicates += int(duplicates)
                if int(rejected):
                    self.stats.rejected += int(rejected)
                    log.error("redis rejected %d entries of %s: %r", rejected, key, first_error)
            for _ in range(n):
                self._buffer.popleft()
            self.stats.flushes += 1
        self.stats.written += written
        return written

    def _pack_group(self, key: str, entries: list[StreamEntry]) -> bytes:
        """``EVAL <script> 1 <key> <maxlen> (<id> <n> <field> <value>...)...`` in RESP."""
        parts = [_bulk(key.encode()), self._maxlen_arg]
        n_args = 5  # EVAL, script, numkeys, key, maxlen; then each entry's
        for e in entries:
            fields = e.fields
            parts.append(_bulk(e.entry_id.encode()))
            parts.append(_bulk(str(len(fields)).encode()))
            for name, value in fields.items():
                parts.append(_bulk(name.encode()))
                parts.append(_bulk(_encode(value)))
            n_args += 2 + 2 * len(fields)
        return b"".join([b"*%d\r\n" % n_args, _EVAL_HEAD, *parts])

    async def _round_trip(self, payload: bytes, n_replies: int) -> list[Any]:
        pool = self._client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(payload, check_health=False)
            replies = []
            for _ in range(n_replies):
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            # A half-read connection must never go back to the pool.
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        return replies

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


# Adds a batch of entries to one stream in one call: one reply per stream and batch instead
# of one per entry (the per-reply cost dominated the writer). A refused ID ("equal or
# smaller than the target stream top item") is a re-sent entry: counted, not an error.
_XADD_BATCH_LUA = b"""
local key, maxlen = KEYS[1], ARGV[1]
local i, n_args = 2, #ARGV
local added, dups, rejected, first_err = 0, 0, 0, ''
while i <= n_args do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local res = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id,
                          unpack(ARGV, i + 2, i + 1 + 2 * n))
  if type(res) == 'table' and res.err then
    if string.find(res.err, 'equal or smaller', 1, true) then
      dups = dups + 1
    else
      rejected = rejected + 1
      if first_err == '' then first_err = res.err end
    end
  else
    added = added + 1
  end
  i = i + 2 + 2 * n
end
return {added, dups, rejected, first_err}
"""


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


_EVAL_HEAD = _bulk(b"EVAL") + _bulk(_XADD_BATCH_LUA) + _bulk(b"1")


def _encode(value: FieldValue) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    return repr(value).encode()


def _group_by_key(batch: list[StreamEntry]) -> list[tuple[str, list[StreamEntry]]]:
    """Entries per stream key, each stream's entries in their original order."""
    groups: dict[str, list[StreamEntry]] = {}
    for e in batch:
        group = groups.get(e.key)
        if group is None:
            groups[e.key] = group = []
        group.append(e)
    return list(groups.items())


class RedisUnavailable(ConnectionError):
    """Redis could not be reached; entries stay buffered."""
