"""The feature processor: ``trades:{sym}`` + ``book:{sym}`` in, ``features:{sym}`` out.

Per symbol it owns, one asyncio task reads the symbol's two input streams through the
consumer group ``cif-features``, merges them by the ingest ``seq``, runs them through a
streaming ``cif._core.FeatureEngine`` and publishes one row per trade (and per book event
with ``emit_on_book``) to ``features:{sym}``, with entry ID ``<seq>-0``.

Exactly-once output from at-least-once input
    The engine state is checkpointed to ``features-state:{sym}`` (the engine's versioned
    snapshot bytes, which include its configuration), and the input entries are acked
    ONLY by the same atomic script that writes that checkpoint. After a crash (kill -9) the
    next owner restores the checkpoint, claims the unacked entries (``XAUTOCLAIM``, then its
    own pending list), and re-processes them from exactly the checkpointed state: the rows
    come out bit-identical, and their re-publication is refused by Redis because their IDs
    are not above the stream's top (counted as ``republished``, a no-op). Events whose
    ``seq`` is not above the engine's ``last_seq`` are skipped (``seen``).

Merging by ``seq`` without waiting
    The gateway writes each symbol's entries to both of its streams in one transaction
    (``cif.bus.stream_writer``), so when an entry of ``seq`` S is readable on one stream,
    every entry of the symbol with a smaller ``seq`` is readable on the other. One
    non-blocking ``XREADGROUP`` over both streams is an atomic snapshot: a stream that
    returned fewer than COUNT entries has given everything it had, one that returned COUNT
    entries may have more. So events up to the smallest last ``seq`` among the truncated
    streams are complete and processed; later ones wait in memory for the next read (they
    are delivered, not acked, so a crash loses nothing). The group read never blocks: when
    idle, the task waits with a plain ``XREAD BLOCK`` and then reads. (A blocked
    ``XREADGROUP`` is answered as soon as one stream gets data, and Redis before 7.2
    replies with that stream only, which would make the other stream look complete.)

Ownership: leases, fencing, failover, scale-out
    A processor works on a symbol only while it holds the symbol's lease
    (``lease:features:{sym}``, see :mod:`cif.features.leases`), renewed every third of its
    TTL. Every step that changes shared state first checks the lease is still ours in the
    same atomic step (fencing): the group read (a former owner must not pull new entries
    into its own pending list, where the new owner would never see them), the claim,
    publishing and the checkpoint with its acks. The hot loop's read and publish are
    transactions under ``WATCH`` of the lease (:class:`cif.bus.fenced.LeaseWatch`), the
    rarer steps Lua scripts that start with the check. So a paused or partitioned former
    owner cannot interfere once a new owner took over. Every key of a symbol (streams,
    lease, checkpoint) carries the ``{sym}`` hash tag, so each call touches one Cluster
    slot.

    To scale out across cores or hosts, run several processes (``cif live --components
    features``) against the same Redis, each with its ``--symbols``. A symbol listed by
    several processes is owned by exactly one of them at a time; the others stand by and
    the first to see the lease expire (or released on a clean stop) takes over, resuming
    from the checkpoint: failover. Lists may overlap arbitrarily: split the symbols for
    load, overlap them for availability. A lost lease or a Redis outage stops that
    symbol's task only (logged); it retries with backoff while the process stays up.
    The ownership loop is :mod:`cif.bus.owned_symbols`, the fenced scripts (publish,
    claim, checkpoint pieces) :mod:`cif.bus.fenced`: shared with the forecaster.

Bad input
    An entry that cannot be decoded (missing or garbage fields, broken depth JSON) or that
    the engine refuses (``ValueError``: e.g. a negative price) is counted per reason, the
    first few logged with a sample, and skipped; it is acked with the next checkpoint.

Time: the feature path uses event time only (the engine clock); the wall clock paces
checkpoints, lease renewals and the stats line (whose ``lag`` compares the last input's
receive time with now).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from cif._core import FeatureEngine
from cif.bus.fenced import (
    ACK_CHUNK,  # re-exported: the processor's tests size their batches by it
    CHECKPOINT_DIGEST_LUA,
    STAGED_STATE_LUA,
    LeaseLost,
    digest_args,
    text,
)
from cif.bus.keys import book_key, digest_key, features_key, trades_key
from cif.bus.link import check_block_ms, wait_command
from cif.bus.owned_symbols import OwnedSymbols, SymbolSession, paced_interval
from cif.bus.stream_writer import bulk, pack_command
from cif.digest import ChainDigest
from cif.features.event_log import EventColumns, decode_entries
from cif.features.leases import FENCE_LUA, Lease, lease_key, state_key

log = logging.getLogger(__name__)

#: Consumer group of the feature processor on every symbol's input streams.
GROUP = "cif-features"

# -- settings --------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|t)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration_ms(text: str) -> float:
    """``"10s"`` -> 10000.0; units ms, s, m, h; a bare number is seconds."""
    m = _DURATION_RE.match(text)
    if m is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 500ms, 10s, 1m)")
    return float(m.group(1)) * _UNIT_MS[m.group(2) or "s"]


def parse_windows(text: str) -> tuple[list[int], list[int]]:
    """``"1s,10s,60s,100t"`` -> time windows ``[1000, 10000, 60000]`` ms and count windows
    ``[100]`` trades (the engine's order: time windows first, then count windows)."""
    time_ms: list[int] = []
    counts: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _WINDOW_RE.match(part)
        if m is None:
            raise ValueError(
                f"not a window: {part.strip()!r} (time: 500ms, 1s, 1m, 1h; trades: 100t)"
            )
        n, unit = int(m.group(1)), m.group(2)
        if unit == "t":
            counts.append(n)
        else:
            time_ms.append(n * _UNIT_MS[unit])
    if not time_ms and not counts:
        raise ValueError("no feature windows given")
    return time_ms, counts


def parse_levels(text: str) -> list[int]:
    """``"5,10"`` -> ``[5, 10]``."""
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"depth levels must be integers, got {text!r}") from None


@dataclass(frozen=True)
class ProcessorConfig:
    """Everything the processor can be told (the ``cif live`` feature flags map onto it)."""

    symbols: Sequence[str] = ("btcusdt",)
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = ""
    time_windows_ms: Sequence[int] = (1000, 10000, 60000)
    count_windows: Sequence[int] = (100,)
    depth_levels: Sequence[int] = (5, 10)
    ewma_half_life_ms: float = 10000.0
    emit_on_book: bool = False
    #: checkpoint (and ack) at least this often while there is something to ack
    checkpoint_interval_s: float = 1.0
    #: ... or as soon as this many events were processed since the last checkpoint
    checkpoint_events: int = 100_000
    #: checkpoint bytes written per second and symbol at most: a state larger than this
    #: many bytes per ``checkpoint_interval_s`` is checkpointed less often (see
    #: ``_Session._checkpoint_due``). Every byte also goes to Redis's append-only file, whose
    #: writes stall the server (at 1 MB/s a 7 MB state made a fifth of an 11 MB/s file,
    #: and the pipeline's p99 was higher in 4 of 5 pairs than at 0.25 MB/s)
    checkpoint_bytes_per_s: float = 250_000.0
    lease_ttl_s: float = 10.0
    #: consumer name in the group (default: the owner id, ``host:pid:random``)
    consumer: str | None = None
    group: str = GROUP
    read_count: int = 1000
    block_ms: int = 100
    maxlen: int = 1_000_000
    stats_interval_s: float = 10.0
    retry_cap_s: float = 5.0

    def engine_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``FeatureEngine`` / ``compute_features``."""
        return {
            "time_windows_ms": list(self.time_windows_ms),
            "count_windows": list(self.count_windows),
            "depth_levels": list(self.depth_levels),
            "ewma_half_life_ms": float(self.ewma_half_life_ms),
            "emit_on_book": bool(self.emit_on_book),
        }

    def validate(self) -> None:
        """``ValueError`` naming the first inconsistent setting."""
        if not self.symbols:
            raise ValueError("no symbols to process")
        for name in (
            "checkpoint_interval_s",
            "checkpoint_bytes_per_s",
            "lease_ttl_s",
            "stats_interval_s",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.lease_ttl_s < 0.5:
            raise ValueError(f"lease ttl must be at least 0.5 s, got {self.lease_ttl_s}")
        if self.checkpoint_events < 1 or self.read_count < 1 or self.block_ms < 1:
            raise ValueError("checkpoint_events, read_count and block_ms must be >= 1")
        check_block_ms(self.block_ms)
        FeatureEngine(**self.engine_settings())  # the engine validates its own settings


# -- stats -------------------------------------------------------------------------------------


@dataclass
class SymbolStats:
    """Counters of one symbol, for logs, tests and the API."""

    owned: bool = False
    acquisitions: int = 0
    lease_lost: int = 0
    errors: int = 0
    #: input entries received (read, claimed or re-read from the pending list)
    entries_in: int = 0
    #: events run through the engine
    events_in: int = 0
    rows_out: int = 0
    #: rows Redis already had (re-publication after a restart: a no-op)
    rows_republished: int = 0
    rows_rejected: int = 0
    #: input events already in the engine state (``seq <= last_seq``), skipped
    seen: int = 0
    #: pending entries taken over from other consumers
    claimed: int = 0
    #: pending entries whose data was trimmed from the stream before it was processed
    trimmed: int = 0
    checkpoints: int = 0
    #: fenced transactions sent again after our own lease renewal aborted them
    lease_retries: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    last_seq: int | None = None
    last_recv_ts_ns: int = 0
    refused: str | None = None

    @property
    def skipped(self) -> int:
        return self.seen + sum(self.bad.values()) + self.trimmed


# -- errors ------------------------------------------------------------------------------------


class ConfigMismatch(RuntimeError):
    """The checkpoint was made with other engine settings: never mix the two."""


# -- scripts -----------------------------------------------------------------------------------

# KEYS: lease, checkpoint, trades stream, book stream (unused: the layout of
# CHECKPOINT_DIGEST_LUA, whose digest hash is KEYS[5]), digest hash, the staged snapshot.
# ARGV: owner, group, '', '' (unused, the same layout), digest state ('' = none), digest count,
# digest hex, first seq, last seq, the staged snapshot's length (Fence.eval_staged). The
# output digest (cif.digest) is stored by the same call as the engine snapshot, so after a
# crash both resume from the same row and no re-processed row counts twice. The inputs are
# acked afterwards (SymbolSession.ack_chunk).
_CHECKPOINT_LUA = (
    FENCE_LUA
    + STAGED_STATE_LUA
    + CHECKPOINT_DIGEST_LUA
    + """
return 0
"""
)


_EVENT_INDEX_RE = re.compile(r"event (\d+)\b")

#: a batch's rows as ``FeatureEngine.process_packed`` gives them: fields per row, per row
#: its seq and fields (RESP bulk strings), the rows' digest bytes
_Packed = tuple[int, list[tuple[int, bytes]], bytes]


@dataclass(slots=True)
class _Input:
    """A delivered, not yet processed input entry."""

    seq: int
    is_trade: bool
    entry_id: bytes
    #: as read: keys and values alternating (a stream reply), or a dict (redis-py's)
    fields: list[Any] | dict[Any, Any]


def _last_value(fields: list[Any], name: bytes) -> Any:
    """The value of ``name`` in keys and values alternating, the last one if it repeats
    (as the dict of them has it); ``None`` when it is not there."""
    # The gateway's entries: seq first, and once (no slice built per entry to check that).
    if fields[0] == name and fields.count(name) == 1:
        return fields[1]
    keys = fields[0::2]
    if name not in keys:
        return None
    return fields[2 * (len(keys) - 1 - keys[::-1].index(name)) + 1]


# -- one ownership period of one symbol ---------------------------------------------------------


class _Session(SymbolSession[SymbolStats]):
    """What a processor does with a symbol while it holds the lease: recover, then read,
    merge, process, publish and checkpoint until stopped (or the lease is lost)."""

    def __init__(self, proc: FeatureProcessor, symbol: str, lease: Lease) -> None:
        cfg = proc.config
        super().__init__(
            proc,
            symbol,
            lease,
            group=cfg.group,
            read_count=cfg.read_count,
            digest_key=digest_key("features", symbol, cfg.namespace),
        )
        self.proc = proc
        self.cfg = cfg
        self.trades = trades_key(symbol, cfg.namespace)
        self.book = book_key(symbol, cfg.namespace)
        self.features = features_key(symbol, cfg.namespace)
        self.state = state_key(symbol, cfg.namespace)
        self.publisher = self.fence.publisher(self.features, cfg.maxlen)
        #: the ``XREADGROUP >`` over both streams, packed once. It is fenced too (run by
        #: the lease watch): a former owner that lost its lease must not pull new entries
        #: into its own pending list, where the new owner would never see them.
        self._read_call = pack_command(
            b"XREADGROUP", b"GROUP", cfg.group, self.consumer, b"COUNT", cfg.read_count,
            b"STREAMS", self.trades, self.book, b">", b">",
        )  # fmt: skip
        self.depth_width = max(cfg.depth_levels, default=0)
        self.engine: FeatureEngine | None = None
        self.pending: list[_Input] = []
        #: last entry ID delivered to the group, per stream (where waiting resumes)
        self.last_ids: dict[str, str] = {self.trades: "$", self.book: "$"}
        #: entry IDs processed since the last checkpoint, as RESP bulk strings
        self.ack_trades: list[bytes] = []
        self.ack_book: list[bytes] = []
        #: entry IDs a landed checkpoint covers, acked a chunk per loop step
        self.ackable = {self.trades: [], self.book: []}
        self.since_checkpoint = 0
        self.dirty = False
        self.last_checkpoint = time.monotonic()
        #: size of the last checkpoint's engine snapshot (paces the next one)
        self.snapshot_bytes = 0
        #: (engine, its event count, snapshot) taken by prepare_checkpoint for the next call
        self._prepared: tuple[FeatureEngine, int, bytes] | None = None

    # -- setup -------------------------------------------------------------------------------

    async def _load_engine(self) -> FeatureEngine:
        settings = self.cfg.engine_settings()
        fresh = FeatureEngine(**settings)
        data: Any = await self.client.get(self.state)
        if data is None:
            log.info("%s: no checkpoint, starting a fresh engine", self.symbol)
            self.digest = ChainDigest("features")
            return fresh
        try:
            engine = FeatureEngine.restore(bytes(data))
        except ValueError as exc:
            raise ConfigMismatch(f"checkpoint {self.state} cannot be restored: {exc}") from exc
        if engine.config != fresh.config:
            raise ConfigMismatch(
                f"checkpoint {self.state} was made with {engine.config}, configured is "
                f"{fresh.config}; delete the checkpoint (and the features stream) or run "
                "with the checkpoint's settings"
            )
        log.info(
            "%s: restored checkpoint (%d events, last seq %s)",
            self.symbol,
            engine.events,
            engine.last_seq,
        )
        await self.load_digest()
        return engine

    async def _ensure_groups(self) -> None:
        await self.ensure_groups(self.trades, self.book)

    async def _claim(self) -> None:
        """Take over every pending entry of the group (:meth:`claim_pending`), and note
        where each stream's deliveries stand (where waiting resumes)."""
        await self.claim_pending(self.trades, self.book)
        for key in (self.trades, self.book):
            for group in await self.client.xinfo_groups(key):
                if text(group["name"]) == self.cfg.group:
                    self.last_ids[key] = text(group["last-delivered-id"])

    async def _read_own_pending(self) -> None:
        """Every entry delivered to us and not acked, from id 0 until the list is done."""
        ids: dict[Any, Any] = {self.trades: "0", self.book: "0"}
        total = 0
        while True:
            reply: Any = await self.client.xreadgroup(
                self.cfg.group, self.consumer, ids, count=self.cfg.read_count
            )
            got = 0
            for key, entries in reply or []:
                if not entries:
                    continue
                name = text(key)
                ids[name] = entries[-1][0]
                got += len(entries)
                self._take(name == self.trades, entries)
            if got == 0:
                break
            total += got
        if total:
            log.info("%s: re-reading %d delivered, unacked entries", self.symbol, total)

    # -- input -------------------------------------------------------------------------------

    def _take(self, is_trade: bool, entries: list[Any]) -> int | None:
        """Buffer delivered entries; the last decodable ``seq`` (None if there is none)."""
        last: int | None = None
        stats = self.stats
        stats.entries_in += len(entries)
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending
                stats.trimmed += 1
                self._ack(is_trade, entry_id)
                continue
            raw: Any = fields.get(b"seq") if type(fields) is dict else _last_value(fields, b"seq")
            try:
                seq = int(raw)
            except (TypeError, ValueError):
                self.proc.bad(self.symbol, "bad_seq", entry_id, fields, f"seq is {raw!r}")
                self._ack(is_trade, entry_id)
                continue
            self.pending.append(_Input(seq, is_trade, entry_id, fields))
            last = seq
        return last

    def _ack(self, is_trade: bool, entry_id: bytes) -> None:
        # Kept as RESP arguments (ack_chunk), acked once a checkpoint covers them.
        (self.ack_trades if is_trade else self.ack_book).append(bulk(entry_id))

    async def _read_new(self, wait: bool) -> tuple[float, int]:
        """One fenced ``XREADGROUP >`` over both streams: the ``seq`` up to which the
        buffered events are complete (``inf``: all of them) and the number of entries.

        The read never blocks, so it is one atomic snapshot of both streams. (A blocked
        read is answered when one stream gets data, and Redis before 7.2 then replies with
        that stream alone: its reply would say nothing about the other stream.)

        With ``wait``, the read is preceded, in the same round trip, by a block until
        either stream has entries beyond the last delivered ones (or the block time
        passes): a plain ``XREAD``, which changes nothing in the group, so waiting needs no
        lease. Redis runs the read as soon as the wait returns, without a trip back here
        (and a turn of this process's event loop) in between.
        """
        # A chunk of acks rides along in front, in the same round trip.
        calls = self.ack_chunk()
        if wait:
            streams = (self.trades, self.book)
            calls.append(
                wait_command(self.cfg.block_ms, streams, [self.last_ids[k] for k in streams])
            )
        reply = await self.fence.watch.call(self._read_call, calls)
        bound = math.inf
        n = 0
        for key, entries in reply or []:
            if not entries:
                continue
            # The entries stay as the reply holds them, fields as keys and values
            # alternating (no dict per entry): the decoder reads them so.
            n += len(entries)
            name = text(key)
            self.last_ids[name] = text(entries[-1][0])
            last = self._take(name == self.trades, entries)
            if len(entries) >= self.cfg.read_count:
                # This stream may have more: only what is below its last seq is complete.
                bound = min(bound, -1 if last is None else last)
        return bound, n

    # -- processing --------------------------------------------------------------------------

    def _ready(self, bound: float) -> list[_Input]:
        if not self.pending:
            return []
        if bound == math.inf:
            ready, self.pending = self.pending, []
        else:
            ready = [p for p in self.pending if p.seq <= bound]
            self.pending = [p for p in self.pending if p.seq > bound]
        ready.sort(key=lambda p: p.seq)
        return ready

    def _decode(self, ready: list[_Input]) -> tuple[EventColumns, list[_Input]] | None:
        """The events of ``ready`` not yet in the engine, decoded (with their entries);
        bad ones are counted."""
        assert self.engine is not None
        engine_last = self.engine.last_seq
        fresh: list[_Input] = []
        for p in ready:
            self._ack(p.is_trade, p.entry_id)
            if engine_last is not None and p.seq <= engine_last:
                self.seen(p.entry_id, p.seq, engine_last)
            else:
                fresh.append(p)
        if not fresh:
            return None
        # One Rust call decodes the batch; what it refused comes back by index.
        events, failures = decode_entries([(p.is_trade, p.fields) for p in fresh], self.depth_width)
        refused = dict(failures)
        kept: list[_Input] = []
        rows: list[int] = []  # the decoded row of each kept entry
        row = 0
        batch_last: int | None = None
        for i, p in enumerate(fresh):
            message = refused.get(i)
            if batch_last is not None and p.seq <= batch_last:
                self.proc.bad(
                    self.symbol, "seq_not_increasing", p.entry_id, p.fields, f"seq {p.seq}"
                )
            elif message is not None:
                reason = "undecodable_trade" if p.is_trade else "undecodable_book"
                self.proc.bad(self.symbol, reason, p.entry_id, p.fields, message)
            else:
                batch_last = p.seq
                kept.append(p)
                rows.append(row)
            if message is None:
                row += 1
        if not kept:
            return None
        if len(rows) < row:  # a duplicate seq decoded too: drop its row
            events = {k: v[rows] for k, v in events.items()}
        return events, kept

    def _run_engine(self, events: EventColumns, inputs: list[_Input]) -> _Packed:
        """``engine.process_packed`` on the batch: its rows as entry fields and digest bytes
        in one call (no NumPy columns built and read back: ~0.1 ms of a batch's ~0.35). A
        batch the engine refuses changed nothing (it validates first): the event it names
        is dropped (counted) and the rest retried."""
        assert self.engine is not None
        while inputs:
            try:
                return self.engine.process_packed(events)
            except ValueError as exc:
                m = _EVENT_INDEX_RE.search(str(exc))
                index = int(m.group(1)) if m is not None else -1
                if not 0 <= index < len(inputs):
                    return self._run_one_by_one(events, inputs)
                p = inputs.pop(index)
                self.proc.bad(self.symbol, "invalid_event", p.entry_id, p.fields, str(exc))
                events = {k: np.delete(v, index, axis=0) for k, v in events.items()}
        return 0, [], b""

    def _run_one_by_one(self, events: EventColumns, inputs: list[_Input]) -> _Packed:
        """Fallback when the engine's error names no event: one event per call (entries and
        digest bytes are per row, so the calls' outputs join)."""
        assert self.engine is not None
        n_fields = 0
        packed: list[tuple[int, bytes]] = []
        digests: list[bytes] = []
        for i, p in enumerate(inputs):
            one = {k: v[i : i + 1] for k, v in events.items()}
            try:
                n_fields, rows, digest = self.engine.process_packed(one)
            except ValueError as exc:
                self.proc.bad(self.symbol, "invalid_event", p.entry_id, p.fields, str(exc))
                continue
            packed += rows
            digests.append(digest)
        return n_fields, packed, b"".join(digests)

    async def _process(self, ready: list[_Input]) -> None:
        decoded = self._decode(ready)
        if decoded is None:
            return
        events, inputs = decoded
        assert self.engine is not None
        self.dirty = True
        before = self.engine.events
        n_fields, packed, digest_rows = self._run_engine(events, inputs)
        n = self.engine.events - before
        stats = self.stats
        stats.events_in += n
        self.since_checkpoint += n
        stats.last_seq = self.engine.last_seq
        stats.last_recv_ts_ns = int(events["recv_ts_ns"][-1])
        if packed:
            await self._publish(n_fields, packed)
            digest = self.digest
            if digest is not None:
                # after the forecaster and the API have had these rows (only this
                # session's checkpoints read the digest, and they run deferred work first)
                n_rows, first, last = len(packed), packed[0][0], packed[-1][0]
                self.bookkeeping.defer(
                    lambda: digest.update_bytes(n_rows, digest_rows, first, last)
                )

    async def _publish(self, n_fields: int, packed: list[tuple[int, bytes]]) -> None:
        """XADD the rows (fields per row, per row its seq and fields, as
        ``process_packed`` gives them) in one fenced transaction, one round trip."""
        count = bulk(b"%d" % n_fields)
        bodies = [bulk(b"%d-0" % seq) + count + fields for seq, fields in packed]
        done = await self.publisher.publish(bodies, 2 + 2 * n_fields)
        stats = self.stats
        stats.rows_out += done.added
        stats.rows_republished += done.duplicates
        if done.rejected:
            stats.rows_rejected += done.rejected
            log.error(
                "%s: redis rejected %d feature rows: %r",
                self.symbol,
                done.rejected,
                done.first_error,
            )

    async def prepare_checkpoint(self) -> None:
        """Take the engine snapshot in a worker thread (the engine serialises without the
        GIL): at 5,000 ticks/s a state of 3-6 MB took the event loop 4-10 ms, every
        stage's and symbol's forecasts waiting behind it. Only this session waits."""
        engine = self.engine
        assert engine is not None
        self._prepared = (engine, engine.events, await asyncio.to_thread(engine.snapshot))

    def checkpoint_call(self) -> Coroutine[Any, Any, None]:
        """The fenced call of the engine snapshot and the acks as they are now."""
        engine = self.engine
        assert engine is not None
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] is engine and prepared[1] == engine.events:
            snapshot = prepared[2]
        else:  # not prepared, or the engine took events since: taken here
            snapshot = engine.snapshot()
        self.snapshot_bytes = len(snapshot)
        # The state is staged (Fence.eval_staged); what it covers is acked once it landed.
        args: list[bytes | str | int] = [self.cfg.group, b"", b"", *digest_args(self.digest)]
        keys = [self.state, self.trades, self.book, self.digest_key]
        covered = (self.ack_trades, self.ack_book)

        async def call() -> None:
            await self.fence.eval_staged(_CHECKPOINT_LUA, keys, args, (), snapshot)
            self.ackable[self.trades] += covered[0]
            self.ackable[self.book] += covered[1]

        self.ack_trades = []
        self.ack_book = []
        self.since_checkpoint = 0
        self.dirty = False
        self.last_checkpoint = time.monotonic()
        return call()

    def checkpoint_interval(self) -> float:
        """Seconds between checkpoints: ``checkpoint_interval_s``, longer for a large
        engine state (it holds every event of the longest time window)."""
        cfg = self.cfg
        return paced_interval(
            cfg.checkpoint_interval_s, self.snapshot_bytes, cfg.checkpoint_bytes_per_s
        )

    def _checkpoint_due(self, now: float) -> bool:
        if self.since_checkpoint >= self.cfg.checkpoint_events:
            return True
        has_work = self.dirty or self.ack_trades or self.ack_book
        return bool(has_work) and now - self.last_checkpoint >= self.checkpoint_interval()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work on the symbol until ``stop`` (then checkpoint); raises ``LeaseLost``,
        ``ConfigMismatch`` or Redis errors, which end the ownership period."""
        self.engine = await self._load_engine()
        self.stats.last_seq = self.engine.last_seq
        await self._ensure_groups()
        await self._claim()
        await self._read_own_pending()
        idle = False
        try:
            while not stop.is_set():
                await self.maybe_renew()
                bound, _n = await self._read_new(wait=idle)
                # Everything there was is read (no stream hit read_count): wait before the
                # next read. The wait returns at once if entries arrived meanwhile, so this
                # saves the fenced read that would come back empty after every batch.
                idle = bound == math.inf
                ready = self._ready(bound)
                if ready:
                    await self._process(ready)
                await self.checkpoint_step(self._checkpoint_due(time.monotonic()))
            await self.final_checkpoint(bool(self.dirty or self.ack_trades or self.ack_book))
            await self.flush_acks()
        except BaseException:
            self.drop_checkpoint()
            raise


# -- the service -------------------------------------------------------------------------------


class FeatureProcessor(OwnedSymbols[SymbolStats]):
    """Runs one task per configured symbol: stand by for its lease, own it, recover
    (:class:`cif.bus.owned_symbols.OwnedSymbols`)."""

    role = "features"
    title = "feature processor"
    task_noun = "feature"
    entry_noun = "input"
    refusal = ConfigMismatch

    def __init__(self, config: ProcessorConfig, client: aioredis.Redis | None = None) -> None:
        self.config = config
        symbols = [s.strip().lower() for s in config.symbols if s.strip()]
        super().__init__(log, config, symbols, SymbolStats, client)

    def lease_key(self, symbol: str) -> str:
        return lease_key(symbol, self.config.namespace)

    def session(self, symbol: str, lease: Lease) -> _Session:
        return _Session(self, symbol, lease)

    def describe(self) -> str:
        cfg = self.config
        return (
            f"feature processor {self.owner} (consumer {self.consumer}) for "
            f"{','.join(self.symbols)}: windows {list(cfg.time_windows_ms)} ms + "
            f"{list(cfg.count_windows)} trades, depth {list(cfg.depth_levels)}, half-life "
            f"{cfg.ewma_half_life_ms:g} ms, emit on book {cfg.emit_on_book}; checkpoint every "
            f"{cfg.checkpoint_interval_s:g} s, lease ttl {cfg.lease_ttl_s:g} s"
        )

    def symbol_summary(self, s: SymbolStats, state: str, lag: str) -> str:
        """Events in, rows out, duplicates, skipped, lag."""
        return (
            f"events in {s.events_in}, rows out {s.rows_out}, "
            f"duplicates {s.rows_republished}, skipped {s.skipped} (seen {s.seen}, "
            f"bad {dict(s.bad) or 0}, trimmed {s.trimmed}), claimed {s.claimed}, "
            f"lease retries {s.lease_retries}, "
            f"checkpoints {s.checkpoints}, lag {lag}"
        )


__all__ = [
    "ACK_CHUNK",
    "GROUP",
    "ConfigMismatch",
    "FeatureProcessor",
    "LeaseLost",
    "ProcessorConfig",
    "SymbolStats",
    "parse_duration_ms",
    "parse_levels",
    "parse_windows",
]
