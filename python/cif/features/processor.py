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
    The gateway writes each symbol's entries to both of its streams in one atomic script
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
    TTL. Every step that changes shared state is a Lua script that first checks the lease
    is still ours (fencing): the group read (a former owner must not pull new entries into
    its own pending list, where the new owner would never see them), the claim, publishing
    and the checkpoint with its acks. So a paused or partitioned former owner cannot
    interfere once a new owner took over. Every key of a symbol (streams, lease,
    checkpoint) carries the ``{sym}`` hash tag, so each script touches one Cluster slot.

    To scale out across cores or hosts, run several processes (``cif live --components
    features``) against the same Redis, each with its ``--symbols``. A symbol listed by
    several processes is owned by exactly one of them at a time; the others stand by and
    the first to see the lease expire (or released on a clean stop) takes over, resuming
    from the checkpoint: failover. Lists may overlap arbitrarily: split the symbols for
    load, overlap them for availability. A lost lease or a Redis outage stops that
    symbol's task only (logged); it retries with backoff while the process stays up.

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
import contextlib
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from numpy.typing import NDArray
from redis.exceptions import RedisError, ResponseError

from cif._core import FeatureEngine
from cif.bus.keys import book_key, features_key, trades_key
from cif.bus.stream_writer import bulk, round_trip
from cif.features.entries import packed_rows
from cif.features.event_log import EventColumns, EventLogBuilder
from cif.features.leases import FENCE_LUA, Lease, lease_key, owner_id, state_key
from cif.ingest.backoff import Backoff
from cif.replay.digest import ChainDigest, digest_key

log = logging.getLogger(__name__)

#: Consumer group of the feature processor on every symbol's input streams.
GROUP = "cif-features"

_LOG_FIRST = 5
_LOG_EVERY = 1000
_SAMPLE_CHARS = 200
_PUBLISH_CHUNK = 500

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
        for name in ("checkpoint_interval_s", "lease_ttl_s", "stats_interval_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.lease_ttl_s < 0.5:
            raise ValueError(f"lease ttl must be at least 0.5 s, got {self.lease_ttl_s}")
        if self.checkpoint_events < 1 or self.read_count < 1 or self.block_ms < 1:
            raise ValueError("checkpoint_events, read_count and block_ms must be >= 1")
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
    bad: Counter[str] = field(default_factory=Counter)
    last_seq: int | None = None
    last_recv_ts_ns: int = 0
    refused: str | None = None

    @property
    def skipped(self) -> int:
        return self.seen + sum(self.bad.values()) + self.trimmed


# -- errors ------------------------------------------------------------------------------------


class LeaseLost(RuntimeError):
    """The symbol's lease is not ours any more: stop working on it at once."""


class ConfigMismatch(RuntimeError):
    """The checkpoint was made with other engine settings: never mix the two."""


# -- scripts -----------------------------------------------------------------------------------

# KEYS: lease, features stream. ARGV: owner, maxlen, then (id, n, field, value...)...
_PUBLISH_LUA = (
    FENCE_LUA
    + """
local key, maxlen = KEYS[2], ARGV[2]
local i, n_args = 3, #ARGV
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
).encode()

# KEYS: lease, checkpoint, trades stream, book stream, digest hash.
# ARGV: owner, group, snapshot, number of trade ids, digest state ('' = none), digest count,
# digest hex, first seq, last seq, trade ids..., book ids...
# The output digest (cif.replay.digest) is stored by the same call as the engine snapshot,
# so after a crash both resume from the same row and no re-processed row counts twice.
_CHECKPOINT_LUA = (
    FENCE_LUA
    + """
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], 'state', ARGV[5], 'count', ARGV[6], 'digest', ARGV[7],
             'first_seq', ARGV[8], 'last_seq', ARGV[9])
end
local n_trades = tonumber(ARGV[4])
local acked = 0
local function ack(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    acked = acked + redis.call('XACK', key, ARGV[2], unpack(ARGV, i, j))
    i = j + 1
  end
end
ack(KEYS[3], 10, 9 + n_trades)
ack(KEYS[4], 10 + n_trades, #ARGV)
return acked
"""
)

# KEYS: lease, trades stream, book stream. ARGV: owner, group, consumer, count.
# The group read is fenced too: a former owner that lost its lease must not pull new
# entries into its own pending list, where the new owner would never see them.
_READ_LUA = (
    FENCE_LUA
    + """
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4],
                  'STREAMS', KEYS[2], KEYS[3], '>', '>')
"""
)

# KEYS: lease, stream. ARGV: owner, group, consumer, cursor, count. One XAUTOCLAIM page
# (IDs only: the entries are read back from our own pending list afterwards).
_CLAIM_LUA = (
    FENCE_LUA
    + """
local r = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4],
                     'COUNT', ARGV[5], 'JUSTID')
return {r[1], #r[2], #(r[3] or {})}
"""
)

_PUBLISH_HEAD = bulk(b"EVAL") + bulk(_PUBLISH_LUA) + bulk(b"2")

_EVENT_INDEX_RE = re.compile(r"event (\d+)\b")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _is_lease_lost(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and "LEASE_LOST" in str(exc)


def _sample(fields: Mapping[Any, Any]) -> str:
    text = ", ".join(
        f"{k.decode() if isinstance(k, bytes) else k}={v.decode() if isinstance(v, bytes) else v}"
        for k, v in fields.items()
    )
    return text if len(text) <= _SAMPLE_CHARS else text[:_SAMPLE_CHARS] + "..."


@dataclass(slots=True)
class _Input:
    """A delivered, not yet processed input entry."""

    seq: int
    is_trade: bool
    entry_id: bytes
    fields: dict[bytes, bytes]


# -- one ownership period of one symbol ---------------------------------------------------------


class _Session:
    """What a processor does with a symbol while it holds the lease: recover, then read,
    merge, process, publish and checkpoint until stopped (or the lease is lost)."""

    def __init__(self, proc: FeatureProcessor, symbol: str, lease: Lease) -> None:
        cfg = proc.config
        self.proc = proc
        self.cfg = cfg
        self.symbol = symbol
        self.lease = lease
        self.client = proc.client
        self.stats = proc.symbol_stats[symbol]
        self.consumer = proc.consumer
        self.trades = trades_key(symbol, cfg.namespace)
        self.book = book_key(symbol, cfg.namespace)
        self.features = features_key(symbol, cfg.namespace)
        self.state = state_key(symbol, cfg.namespace)
        self.digest_key = digest_key("features", symbol, cfg.namespace)
        #: digest of every row published since the engine started (None: not known, the
        #: checkpoint predates digests); checkpointed with the engine
        self.digest: ChainDigest | None = None
        self._publish_keys = bulk(lease.key.encode()) + bulk(self.features.encode())
        self._publish_args = bulk(proc.owner.encode()) + bulk(str(cfg.maxlen).encode())
        self.depth_width = max(cfg.depth_levels, default=0)
        self.engine: FeatureEngine | None = None
        self.pending: list[_Input] = []
        #: last entry ID delivered to the group, per stream (where waiting resumes)
        self.last_ids: dict[str, str] = {self.trades: "$", self.book: "$"}
        self.ack_trades: list[bytes] = []
        self.ack_book: list[bytes] = []
        self.since_checkpoint = 0
        self.dirty = False
        now = time.monotonic()
        self.last_checkpoint = now
        self.last_renew = now

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
        await self._load_digest()
        return engine

    async def _load_digest(self) -> None:
        """The output digest saved with the checkpoint; without one (a checkpoint from
        before digests, or a damaged one) the digest is unknown and not recorded."""
        raw: Any = await self.client.hget(self.digest_key, "state")
        try:
            self.digest = None if raw is None else ChainDigest.from_state(bytes(raw))
        except ValueError as exc:
            log.warning("%s: digest state unreadable (%s): not recording", self.symbol, exc)
            self.digest = None
        if self.digest is None:
            log.warning("%s: no digest state with the checkpoint: not recording", self.symbol)

    async def _ensure_groups(self) -> None:
        for key in (self.trades, self.book):
            try:
                await self.client.xgroup_create(key, self.cfg.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _claim(self) -> None:
        """Take over every pending entry of the group (min-idle 0: we hold the lease, so
        whoever had them is gone), then forget the consumers left with nothing."""
        claimed = trimmed = 0
        for key in (self.trades, self.book):
            cursor: Any = "0-0"
            while True:
                reply = await self._fenced(
                    _CLAIM_LUA, [key], self.cfg.group, self.consumer, cursor, self.cfg.read_count
                )
                cursor = reply[0]
                claimed += int(reply[1])
                trimmed += int(reply[2])
                if cursor in (b"0-0", "0-0"):
                    break
            for consumer in await self.client.xinfo_consumers(key, self.cfg.group):
                name = consumer["name"]
                name = name.decode() if isinstance(name, bytes) else str(name)
                if name != self.consumer and int(consumer["pending"]) == 0:
                    await self.client.xgroup_delconsumer(key, self.cfg.group, name)
            for group in await self.client.xinfo_groups(key):
                if _text(group["name"]) == self.cfg.group:
                    self.last_ids[key] = _text(group["last-delivered-id"])
        self.stats.claimed += claimed
        self.stats.trimmed += trimmed
        if claimed or trimmed:
            log.info(
                "%s: claimed %d pending entries (%d trimmed before processing)",
                self.symbol,
                claimed,
                trimmed,
            )

    async def _fenced(self, script: str, keys: list[str], *args: Any) -> Any:
        """Run a fenced script (KEYS[1] = our lease, ARGV[1] = our owner id)."""
        try:
            return await self.client.eval(
                script, 1 + len(keys), self.lease.key, *keys, self.proc.owner, *args
            )
        except ResponseError as exc:
            if _is_lease_lost(exc):
                raise LeaseLost(str(exc)) from exc
            raise

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
                name = _text(key)
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
            raw = fields.get(b"seq")
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
        (self.ack_trades if is_trade else self.ack_book).append(entry_id)

    async def _wait_for_data(self) -> None:
        """Block until either stream has entries beyond the last delivered ones (or the
        block time passes). A plain XREAD: it changes nothing in the group, so waiting
        needs no lease."""
        await self.client.xread(
            {self.trades: self.last_ids[self.trades], self.book: self.last_ids[self.book]},
            count=1,
            block=self.cfg.block_ms,
        )

    async def _read_new(self) -> tuple[float, int]:
        """One fenced ``XREADGROUP >`` over both streams: the ``seq`` up to which the
        buffered events are complete (``inf``: all of them) and the number of entries.

        The read never blocks, so it is one atomic snapshot of both streams. (A blocked
        read is answered when one stream gets data, and Redis before 7.2 then replies with
        that stream alone: its reply would say nothing about the other stream.)
        """
        reply = await self._fenced(
            _READ_LUA, [self.trades, self.book], self.cfg.group, self.consumer, self.cfg.read_count
        )
        bound = math.inf
        n = 0
        for key, raw_entries in reply or []:
            if not raw_entries:
                continue
            entries = [(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in raw_entries]
            n += len(entries)
            name = _text(key)
            self.last_ids[name] = _text(entries[-1][0])
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
        batch_last: int | None = None
        builder = EventLogBuilder(self.depth_width)
        kept: list[_Input] = []
        stats = self.stats
        for p in ready:
            self._ack(p.is_trade, p.entry_id)
            if engine_last is not None and p.seq <= engine_last:
                # Only a replay (group rewound) re-delivers processed entries: log the first.
                stats.seen += 1
                if stats.seen <= _LOG_FIRST:
                    log.warning(
                        "%s: entry %s has seq %d, already processed (last seq %d): skipped",
                        self.symbol,
                        p.entry_id.decode(errors="replace"),
                        p.seq,
                        engine_last,
                    )
                continue
            if batch_last is not None and p.seq <= batch_last:
                self.proc.bad(
                    self.symbol, "seq_not_increasing", p.entry_id, p.fields, f"seq {p.seq}"
                )
                continue
            try:
                if p.is_trade:
                    builder.add_trade_entry(p.fields)
                else:
                    builder.add_book_entry(p.fields)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                reason = "undecodable_trade" if p.is_trade else "undecodable_book"
                self.proc.bad(self.symbol, reason, p.entry_id, p.fields, repr(exc))
                continue
            batch_last = p.seq
            kept.append(p)
        return (builder.build(), kept) if kept else None

    def _run_engine(
        self, events: EventColumns, inputs: list[_Input]
    ) -> dict[str, NDArray[Any]] | None:
        """``engine.process`` on the batch. A batch the engine refuses changed nothing (it
        validates first): the event it names is dropped (counted) and the rest retried."""
        assert self.engine is not None
        while inputs:
            try:
                return self.engine.process(events)
            except ValueError as exc:
                m = _EVENT_INDEX_RE.search(str(exc))
                index = int(m.group(1)) if m is not None else -1
                if not 0 <= index < len(inputs):
                    return self._run_one_by_one(events, inputs)
                p = inputs.pop(index)
                self.proc.bad(self.symbol, "invalid_event", p.entry_id, p.fields, str(exc))
                events = {k: np.delete(v, index, axis=0) for k, v in events.items()}
        return None

    def _run_one_by_one(
        self, events: EventColumns, inputs: list[_Input]
    ) -> dict[str, NDArray[Any]] | None:
        """Fallback when the engine's error names no event: one event per call."""
        assert self.engine is not None
        outs: list[dict[str, NDArray[Any]]] = []
        for i, p in enumerate(inputs):
            one = {k: v[i : i + 1] for k, v in events.items()}
            try:
                outs.append(self.engine.process(one))
            except ValueError as exc:
                self.proc.bad(self.symbol, "invalid_event", p.entry_id, p.fields, str(exc))
        outs = [o for o in outs if len(o["seq"])]
        if not outs:
            return None
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    async def _process(self, ready: list[_Input]) -> None:
        decoded = self._decode(ready)
        if decoded is None:
            return
        events, inputs = decoded
        assert self.engine is not None
        self.dirty = True
        before = self.engine.events
        rows = self._run_engine(events, inputs)
        n = self.engine.events - before
        stats = self.stats
        stats.events_in += n
        self.since_checkpoint += n
        stats.last_seq = self.engine.last_seq
        stats.last_recv_ts_ns = int(events["recv_ts_ns"][-1])
        if rows is not None and len(rows["seq"]):
            if self.digest is not None:
                self.digest.update_features(rows)
            await self._publish(rows)

    async def _publish(self, rows: Mapping[str, NDArray[Any]]) -> None:
        """XADD the rows through the fenced script (chunks pipelined in one round trip)."""
        n_fields, packed = packed_rows(rows)
        count = bulk(b"%d" % n_fields)
        payloads = []
        for i in range(0, len(packed), _PUBLISH_CHUNK):
            chunk = packed[i : i + _PUBLISH_CHUNK]
            parts = [self._publish_keys, self._publish_args]
            for seq, fields in chunk:
                parts.append(bulk(b"%d-0" % seq))
                parts.append(count)
                parts.append(fields)
            # EVAL, script, numkeys, 2 keys, owner, maxlen; then per row id, n, fields
            n_args = 7 + len(chunk) * (2 + 2 * n_fields)
            payloads.append(b"".join([b"*%d\r\n" % n_args, _PUBLISH_HEAD, *parts]))
        replies = await round_trip(self.client, b"".join(payloads), len(payloads))
        stats = self.stats
        for reply in replies:
            if isinstance(reply, BaseException):
                if _is_lease_lost(reply):
                    raise LeaseLost(str(reply))
                raise reply
            added, dups, rejected, first_error = reply
            stats.rows_out += int(added)
            stats.rows_republished += int(dups)
            if int(rejected):
                stats.rows_rejected += int(rejected)
                log.error(
                    "%s: redis rejected %d feature rows: %r", self.symbol, rejected, first_error
                )

    async def _checkpoint(self) -> None:
        """Snapshot the engine and ack everything processed so far, in one fenced call."""
        assert self.engine is not None
        snapshot = self.engine.snapshot()
        d = self.digest.record_fields() if self.digest is not None else None
        await self._fenced(
            _CHECKPOINT_LUA,
            [self.state, self.trades, self.book, self.digest_key],
            self.cfg.group,
            snapshot,
            len(self.ack_trades),
            *(
                (d["state"], d["count"], d["digest"], d["first_seq"], d["last_seq"])
                if d is not None
                else (b"", b"", b"", b"", b"")
            ),
            *self.ack_trades,
            *self.ack_book,
        )
        self.ack_trades = []
        self.ack_book = []
        self.since_checkpoint = 0
        self.dirty = False
        self.last_checkpoint = time.monotonic()
        self.stats.checkpoints += 1

    def _checkpoint_due(self, now: float) -> bool:
        if self.since_checkpoint >= self.cfg.checkpoint_events:
            return True
        has_work = self.dirty or self.ack_trades or self.ack_book
        return bool(has_work) and now - self.last_checkpoint >= self.cfg.checkpoint_interval_s

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work on the symbol until ``stop`` (then checkpoint); raises ``LeaseLost``,
        ``ConfigMismatch`` or Redis errors, which end the ownership period."""
        self.engine = await self._load_engine()
        self.stats.last_seq = self.engine.last_seq
        await self._ensure_groups()
        await self._claim()
        await self._read_own_pending()
        renew_every = self.cfg.lease_ttl_s / 3
        idle = False
        while not stop.is_set():
            now = time.monotonic()
            if now - self.last_renew >= renew_every:
                if not await self.lease.renew():
                    raise LeaseLost("the lease expired or was taken over")
                self.last_renew = now
            if idle:
                await self._wait_for_data()
            bound, n = await self._read_new()
            idle = n == 0
            ready = self._ready(bound)
            if ready:
                await self._process(ready)
            if self._checkpoint_due(time.monotonic()):
                await self._checkpoint()
        if self.dirty or self.ack_trades or self.ack_book:
            await self._checkpoint()


# -- the service -------------------------------------------------------------------------------


class FeatureProcessor:
    """Runs one task per configured symbol: stand by for its lease, own it, recover."""

    def __init__(self, config: ProcessorConfig, client: aioredis.Redis | None = None) -> None:
        self.config = config
        self.owner = owner_id()
        self.consumer = config.consumer or self.owner
        self.symbols = [s.strip().lower() for s in config.symbols if s.strip()]
        self._own_client = client is None
        self.client: aioredis.Redis = client or aioredis.from_url(
            config.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self.symbol_stats: dict[str, SymbolStats] = {s: SymbolStats() for s in self.symbols}
        self.started = asyncio.Event()
        self._stopped = False

    def bad(
        self,
        symbol: str,
        reason: str,
        entry_id: bytes,
        fields: Mapping[Any, Any],
        detail: str,
    ) -> None:
        """Count a skipped input event; log the first few of each reason with a sample."""
        stats = self.symbol_stats[symbol]
        stats.bad[reason] += 1
        n = stats.bad[reason]
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            log.warning(
                "%s: skipped input #%d with reason %s (entry %s): %s%s",
                symbol,
                n,
                reason,
                entry_id.decode(errors="replace"),
                detail,
                f"; fields: {_sample(fields)}" if fields else "",
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; every owned symbol is checkpointed and its lease
        released on the way out, so a stand-by takes over at once."""
        cfg = self.config
        log.info(
            "feature processor %s (consumer %s) for %s: windows %s ms + %s trades, depth %s, "
            "half-life %g ms, emit on book %s; checkpoint every %g s, lease ttl %g s",
            self.owner,
            self.consumer,
            ",".join(self.symbols),
            list(cfg.time_windows_ms),
            list(cfg.count_windows),
            list(cfg.depth_levels),
            cfg.ewma_half_life_ms,
            cfg.emit_on_book,
            cfg.checkpoint_interval_s,
            cfg.lease_ttl_s,
        )
        tasks = [
            asyncio.create_task(self._run_symbol(sym, stop), name=f"features-{sym}")
            for sym in self.symbols
        ]
        stats_task = asyncio.create_task(self._log_stats(stop))
        self.started.set()
        try:
            await stop.wait()
        finally:
            results = await asyncio.gather(*tasks, return_exceptions=True)
            stats_task.cancel()
            await asyncio.gather(stats_task, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                    log.error("feature task failed: %r", r)
            if self._own_client:
                with contextlib.suppress(RedisError, OSError):
                    await self.client.aclose()
            self._stopped = True
            log.info("feature processor stopped; %s", self.summary())

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _run_symbol(self, symbol: str, stop: asyncio.Event) -> None:
        cfg = self.config
        stats = self.symbol_stats[symbol]
        lease = Lease(self.client, lease_key(symbol, cfg.namespace), self.owner, cfg.lease_ttl_s)
        backoff = Backoff(base_s=0.1, cap_s=cfg.retry_cap_s)
        standby = min(cfg.lease_ttl_s / 4, 2.0)
        standing_by = False
        redis_down = False
        while not stop.is_set():
            try:
                acquired = await lease.acquire()
                holder = None if acquired else await lease.holder()
            except (RedisError, OSError) as exc:
                if not redis_down:
                    log.warning("%s: redis unavailable (%s); retrying", symbol, exc)
                    redis_down = True
                await self._wait(stop, backoff.next_delay())
                continue
            if redis_down:
                log.info("%s: redis is back", symbol)
                redis_down = False
            if not acquired:
                if not standing_by:
                    log.info("%s: lease held by %s; standing by", symbol, holder)
                    standing_by = True
                await self._wait(stop, standby)
                continue
            standing_by = False
            stats.owned = True
            stats.acquisitions += 1
            log.info("%s: lease acquired by %s", symbol, self.owner)
            started = time.monotonic()
            release = True
            try:
                await _Session(self, symbol, lease).run(stop)
            except LeaseLost as exc:
                stats.lease_lost += 1
                release = False
                log.warning("%s: lease lost (%s); stopped working on it", symbol, exc)
            except ConfigMismatch as exc:
                stats.refused = str(exc)
                log.error("%s: refusing the symbol: %s", symbol, exc)
                with contextlib.suppress(RedisError, OSError):
                    await lease.release()
                stats.owned = False
                return
            except (RedisError, OSError) as exc:
                stats.errors += 1
                log.warning("%s: redis error (%s); stopped working on it, will retry", symbol, exc)
            except Exception:
                stats.errors += 1
                log.exception("%s: unexpected error; stopped working on it, will retry", symbol)
            finally:
                stats.owned = False
            if release:
                with contextlib.suppress(RedisError, OSError):
                    await lease.release()
            if stop.is_set():
                break
            if time.monotonic() - started > 10 * cfg.retry_cap_s:
                backoff.reset()
            await self._wait(stop, backoff.next_delay())

    async def _log_stats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._wait(stop, self.config.stats_interval_s)
            if not stop.is_set():
                log.info("%s", self.summary())

    def stats(self) -> dict[str, Any]:
        """Every counter, per symbol."""
        out: dict[str, Any] = {}
        for sym, s in self.symbol_stats.items():
            d = asdict(s)
            d["bad"] = dict(s.bad)
            d["skipped"] = s.skipped
            out[sym] = d
        return out

    def summary(self) -> str:
        """One log line: per symbol events in, rows out, duplicates, skipped, lag."""
        parts = []
        now_ns = time.time_ns()
        for sym, s in self.symbol_stats.items():
            if s.refused:
                parts.append(f"{sym}: REFUSED ({s.refused})")
                continue
            state = "owned" if s.owned else ("stopped" if self._stopped else "standby")
            lag = f"{(now_ns - s.last_recv_ts_ns) / 1e6:.0f}ms" if s.last_recv_ts_ns else "-"
            parts.append(
                f"{sym}: {state}, events in {s.events_in}, rows out {s.rows_out}, "
                f"duplicates {s.rows_republished}, skipped {s.skipped} (seen {s.seen}, "
                f"bad {dict(s.bad) or 0}, trimmed {s.trimmed}), claimed {s.claimed}, "
                f"checkpoints {s.checkpoints}, lag {lag}"
            )
        return "features: " + "; ".join(parts)


__all__ = [
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
