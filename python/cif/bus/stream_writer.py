"""Pipelined, idempotent, outage-tolerant writes to Redis Streams.

- Entries carry explicit IDs derived from the data (``<trade id>-0`` for trades, ``<seq>-0``
  for book events), so re-sending an entry is a no-op: Redis refuses an ID that is not
  above the stream's top, and the writer counts that as a duplicate.
- Writes are batched into one round trip (no round trip per tick), one transaction per
  symbol per batch (commands packed here, not per argument by the client library: that
  packing was the writer's bottleneck), trimmed with approximate ``MAXLEN``.
- A symbol's entries are written atomically across its streams. The batch is grouped by the
  Redis Cluster hash tag of the key (the ``{symbol}`` part: the keys share one slot, so the
  transaction is Cluster-valid) and one ``MULTI``/``EXEC`` XADDs to all of the group's keys
  in the entries' original order. (Plain commands, not a script: Redis ran the same XADDs
  from Lua at ~12 µs an entry, against ~4 natively, and a script holds the server for the
  whole batch just the same.) So a reader that sees an entry of ``seq`` S on
  ``trades:{sym}`` can rely on every entry of that symbol with a smaller ``seq`` being
  readable on ``book:{sym}`` (and vice versa): the feature processor merges the two streams
  by ``seq`` on that guarantee.
- When Redis is unreachable the entries stay in a bounded in-memory buffer and are written
  when it returns (persistence to DuckDB does not depend on Redis at all). A full buffer
  drops its oldest entries, counted and logged, and never blocks the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cif._core import pack_xadds

log = logging.getLogger(__name__)

FieldValue = bytes | str | int | float


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One XADD: stream key, explicit entry ID and the fields."""

    key: str
    entry_id: str
    fields: Mapping[str, FieldValue]


class PackedEntry(NamedTuple):
    """One XADD whose ID and fields are already RESP: ``body`` is the bulk strings
    ``<id> <n> <name> <value>...`` of ``n`` fields (what the gateway's Rust encoders,
    ``cif._core.pack_trade_entry`` / ``pack_book_entry``, return). The writer sends the body
    as is; :attr:`fields` decodes it for the offline tools and tests that read entries.
    (A named tuple: one is built per tick, and a frozen dataclass costs twice as much.)"""

    key: str
    entry_id: str
    n_fields: int
    body: bytes

    @property
    def fields(self) -> dict[str, str]:
        """The fields as ``name -> value`` text, in entry order."""
        values = _split_bulks(self.body)
        if len(values) != 2 + 2 * self.n_fields:
            raise ValueError(f"entry {self.entry_id}: body is not {self.n_fields} fields")
        it = iter(values[2:])
        return {name.decode(): value.decode() for name, value in zip(it, it, strict=True)}


def _split_bulks(data: bytes) -> list[bytes]:
    """The contents of consecutive RESP bulk strings."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 1] != b"$":
            raise ValueError(f"not a RESP bulk string at byte {pos}")
        end = data.index(b"\r\n", pos)
        n = int(data[pos + 1 : end])
        out.append(data[end + 2 : end + 2 + n])
        pos = end + 4 + n
    return out


AnyEntry = StreamEntry | PackedEntry


@dataclass(slots=True)
class WriterStats:
    """Counters for logs and health endpoints."""

    written: int = 0
    duplicates: int = 0
    dropped_buffer_full: int = 0
    rejected: int = 0
    outages: int = 0
    flushes: int = 0
    #: transactions sent (one per hash slot, i.e. symbol, per batch)
    calls: int = 0


class RoundTripper(Protocol):
    """A connection that sends pre-packed commands and returns their replies (error replies
    as ``ResponseError`` in their place): :class:`cif.bus.link.RedisLink`."""

    def round_trip(self, payload: bytes, n_replies: int) -> Awaitable[list[Any]]: ...


class StreamWriter:
    """Buffers entries and writes them to Redis in pipelined batches, over a redis-py
    client's pool or a connection of its own (a :class:`RoundTripper`: the gateway's, where
    a round trip through redis-py cost more client CPU than the rest of the write)."""

    def __init__(
        self,
        client: aioredis.Redis | RoundTripper,
        *,
        maxlen: int = 1_000_000,
        max_buffer: int = 1_000_000,
        batch_size: int = 2_000,
    ) -> None:
        if maxlen <= 0 or max_buffer <= 0 or batch_size <= 0:
            raise ValueError("maxlen, max_buffer and batch_size must be positive")
        self._round_trip: Callable[[bytes, int], Awaitable[list[Any]]] = (
            functools.partial(round_trip, client)
            if isinstance(client, aioredis.Redis)
            else client.round_trip
        )
        self._maxlen = maxlen
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self._buffer: deque[AnyEntry] = deque()
        self._connected = True
        self._last_full_log = 0.0
        self._tags: dict[str, str] = {}
        #: per stream key: ``XADD <key> MAXLEN ~ <maxlen>`` as RESP bulk strings
        self._xadd_heads: dict[str, bytes] = {}
        # Set by put() while run() is active: entries go out as soon as the loop is free.
        self._wake: asyncio.Event | None = None
        self.stats = WriterStats()

    @property
    def pending(self) -> int:
        """Entries waiting to be written."""
        return len(self._buffer)

    @property
    def connected(self) -> bool:
        """False after a failed write, until a write succeeds again."""
        return self._connected

    def put(self, entry: AnyEntry) -> None:
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
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> int:
        """Write everything pending, one round trip per batch.

        Returns the number of entries newly written. On a connection failure the unwritten
        entries stay queued and ``RedisUnavailable`` is raised.
        """
        written = 0
        while self._buffer:
            n = min(self._batch_size, len(self._buffer))
            batch = [self._buffer[i] for i in range(n)]
            groups = self._group_by_slot(batch)
            payload = b"".join(self._pack_group(entries) for _tag, entries in groups)
            n_replies = sum(len(entries) + 2 for _tag, entries in groups)
            try:
                replies = await self._round_trip(payload, n_replies)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._connected:
                    self.stats.outages += 1
                    log.warning("redis unavailable (%s): %d entries buffered", exc, self.pending)
                self._connected = False
                raise RedisUnavailable(str(exc)) from exc
            if not self._connected:
                log.info("redis is back: writing %d buffered entries", self.pending)
                self._connected = True
            self.stats.calls += len(groups)
            at = 0
            for tag, entries in groups:
                # MULTI's +OK, one +QUEUED per XADD, then EXEC's array of their replies
                queued = replies[at : at + len(entries) + 1]
                outcome = replies[at + len(entries) + 1]
                at += len(entries) + 2
                refused = next((r for r in queued if isinstance(r, BaseException)), None)
                if isinstance(outcome, BaseException) or refused is not None:
                    # The whole transaction failed (EXECABORT): retrying cannot help, so it
                    # is counted and logged, not retried forever.
                    self.stats.rejected += len(entries)
                    log.error(
                        "redis refused %d entries of {%s}: %s",
                        len(entries),
                        tag,
                        refused or outcome,
                    )
                    continue
                added, duplicates, rejected, first_error = count_xadds(outcome)
                written += added
                self.stats.duplicates += duplicates
                if rejected:
                    # e.g. a key of the group holds a value that is not a stream
                    self.stats.rejected += rejected
                    log.error("redis rejected %d entries of {%s}: %r", rejected, tag, first_error)
            for _ in range(n):
                self._buffer.popleft()
            self.stats.flushes += 1
        self.stats.written += written
        return written

    def _group_by_slot(self, batch: list[AnyEntry]) -> list[tuple[str, list[AnyEntry]]]:
        """Entries per hash tag (one symbol's streams), each group in the batch's order."""
        groups: dict[str, list[AnyEntry]] = {}
        tags = self._tags
        for e in batch:
            tag = tags.get(e.key)
            if tag is None:
                if len(tags) > 100_000:
                    tags.clear()
                tag = tags[e.key] = hash_tag(e.key)
            group = groups.get(tag)
            if group is None:
                groups[tag] = group = []
            group.append(e)
        return list(groups.items())

    def _pack_group(self, entries: list[AnyEntry]) -> bytes:
        """``MULTI``, ``XADD <key> MAXLEN ~ <maxlen> <id> <field> <value>...`` per entry,
        ``EXEC`` in RESP: one transaction for all entries of one hash slot, in their original
        order."""
        heads = self._xadd_heads
        parts: list[bytes] = [MULTI]
        append = parts.append
        names = _NAME_BULKS
        # Pre-packed entries (every tick's) are turned into XADDs in one Rust call per run.
        run_heads: list[bytes] = []
        run_bodies: list[bytes] = []
        run_fields: list[int] = []
        for e in entries:
            head = heads.get(e.key)
            if head is None:
                if len(heads) > 100_000:
                    heads.clear()
                head = heads[e.key] = xadd_head(e.key, self._maxlen)
            if type(e) is PackedEntry:
                run_heads.append(head)
                run_bodies.append(e.body)
                run_fields.append(e.n_fields)
                continue
            if run_bodies:
                append(pack_xadds(run_heads, run_bodies, run_fields))
                run_heads, run_bodies, run_fields = [], [], []
            assert isinstance(e, StreamEntry)
            fields = e.fields
            entry_id = e.entry_id.encode()
            append(b"*%d\r\n%s$%d\r\n%s\r\n" % (6 + 2 * len(fields), head, len(entry_id), entry_id))
            for name, value in fields.items():
                name_bulk = names.get(name) or _name_bulk(name)
                # The common value types inline: this loop runs per field of every tick.
                if type(value) is int:
                    data = b"%d" % value
                elif type(value) is str:
                    data = value.encode()
                else:
                    data = encode_value(value)
                append(b"%s$%d\r\n%s\r\n" % (name_bulk, len(data), data))
        if run_bodies:
            append(pack_xadds(run_heads, run_bodies, run_fields))
        append(EXEC)
        return b"".join(parts)

    async def run(self, stop: asyncio.Event, max_backoff: float = 2.0) -> None:
        """Write entries as they arrive until ``stop`` is set; back off while Redis is down.

        A write starts as soon as the event loop is free after ``put``, so an entry waits
        for at most the round trip in flight, and entries put during it go out together in
        the next one (batching grows with load, latency does not). A quiet writer sleeps
        until ``put`` or ``stop`` wakes it: no timer per write (``asyncio.wait_for`` made a
        task and a timer for every one, hundreds a second).
        """
        wake = self._wake = asyncio.Event()
        stop_waiter = asyncio.ensure_future(stop.wait())
        stop_waiter.add_done_callback(lambda _: wake.set())
        delay = 0.0
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await self.flush()
                    delay = 0.0
                except RedisUnavailable:
                    delay = min(max(delay * 2, 0.05), max_backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    continue
                await wake.wait()
        finally:
            self._wake = None
            stop_waiter.cancel()
        try:
            await self.flush()
        except RedisUnavailable:
            log.warning("stopping with %d entries not written to redis", self.pending)


def bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack_command(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings (``str`` and ``int`` arguments as their
    text), for :func:`round_trip` or any pipelined writer."""
    return pack_command_bulks(args, ())


def pack_command_bulks(args: Sequence[bytes | str | int], bulks: Sequence[bytes]) -> bytes:
    """``pack_command(*args, *values)`` where ``bulks`` are the trailing values already as
    :func:`bulk` strings: a checkpoint acks thousands of entry IDs, which are bulked one by
    one as they are read rather than all at once while the event loop waits."""
    return b"".join(
        [
            b"*%d\r\n" % (len(args) + len(bulks)),
            *(bulk(a if isinstance(a, bytes) else str(a).encode()) for a in args),
            *bulks,
        ]
    )


#: ``MULTI`` and ``EXEC``, packed (this writer's transactions and the fenced ones)
MULTI = pack_command(b"MULTI")
EXEC = pack_command(b"EXEC")
_XADD = b"$4\r\nXADD\r\n"
_MAXLEN_APPROX = b"$6\r\nMAXLEN\r\n$1\r\n~\r\n"


def xadd_head(key: str, maxlen: int) -> bytes:
    """``XADD <key> MAXLEN ~ <maxlen>`` as RESP bulk strings, for :func:`xadd_command`."""
    return _XADD + bulk(key.encode()) + _MAXLEN_APPROX + bulk(b"%d" % maxlen)


def xadd_command(head: bytes, body: bytes, n_fields: int) -> bytes:
    """One XADD in RESP: ``head`` (:func:`xadd_head`), then the entry's ``body`` of
    ``n_fields`` fields as the Rust encoders and the services pack it, ``<id> <n> <field>
    <value>...`` bulk strings, less its field count (XADD takes none).

    The hot paths pack many at once with ``cif._core.pack_xadds`` (the same bytes, one call;
    this is the reference it is tested against)."""
    id_end = body.index(b"\r\n") + 2
    id_end += int(body[1 : id_end - 2]) + 2
    return b"".join(
        [
            b"*%d\r\n" % (6 + 2 * n_fields),
            head,
            body[:id_end],
            body[id_end + len(_count_bulk(n_fields)) :],
        ]
    )


def count_xadds(replies: Sequence[Any]) -> tuple[int, int, int, str]:
    """``(added, duplicates, rejected, first error)`` of XADD replies (``EXEC``'s array):
    a refused ID ("equal or smaller than the target stream top item") is a re-sent entry,
    counted as a duplicate, not an error."""
    added = dups = rejected = 0
    first_error = ""
    for reply in replies:
        if not isinstance(reply, BaseException):
            added += 1
        elif "equal or smaller" in str(reply):
            dups += 1
        else:
            rejected += 1
            first_error = first_error or str(reply)
    return added, dups, rejected, first_error


#: RESP bulk strings of field names seen so far (a handful of fixed names in practice).
_NAME_BULKS: dict[str, bytes] = {}


def _name_bulk(name: str) -> bytes:
    data = bulk(name.encode())
    if len(_NAME_BULKS) < 4096:  # bounded, whatever names a caller invents
        _NAME_BULKS[name] = data
    return data


def _count_bulk(n: int) -> bytes:
    return b"$%d\r\n%d\r\n" % (len(b"%d" % n), n)


def encode_value(value: FieldValue) -> bytes:
    """A field value as it is stored (floats as their shortest round-trip ``repr``)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    return repr(value).encode()


def hash_tag(key: str) -> str:
    """The part of ``key`` that Redis Cluster hashes: the first non-empty ``{...}``, else
    the whole key. Keys with the same tag share a slot (``trades:{btcusdt}``,
    ``book:{btcusdt}`` -> ``btcusdt``)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


async def round_trip(
    client: aioredis.Redis, payload: bytes | Sequence[bytes], n_replies: int
) -> list[Any]:
    """Send pre-packed commands on one pooled connection and read ``n_replies`` replies.
    ``payload`` may come in pieces, written one after the other without joining them.

    An error reply comes back as its ``ResponseError`` (the other replies still count). A
    connection failure raises; the half-read connection is dropped, never pooled again.
    """
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(payload, check_health=False)
        replies: list[Any] = []
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


class RedisUnavailable(ConnectionError):
    """Redis could not be reached; entries stay buffered."""
