"""Per-symbol lease ownership: one task per symbol stands by for the symbol's lease, owns
it (runs a session), and recovers (lease lost, Redis down, error: backoff, then again).

The feature processor and the forecaster are both such services: :class:`OwnedSymbols` is
their shared loop, counters, bad-entry log and stats line; a subclass says what a session
is (:meth:`OwnedSymbols.session`), which lease it takes and how a symbol's stats read.

Protocol of one symbol's task, until ``stop``:

- acquire the lease; held by someone else: stand by (logged once) and try again;
- Redis unavailable: logged once, retried with backoff (``redis is back`` when it is);
- acquired: run a session until ``stop``, which ends it by raising:
  :class:`~cif.bus.fenced.LeaseLost` (counted; the lease is not released: it is not
  ours), a refusal (the subclass's ``refusal`` exception: the symbol is given up for the
  life of the process, its lease released), a Redis error or any other exception
  (counted, logged; retried with backoff);
- the lease is released after a session (a stand-by takes over at once on a clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from cif.bus.deferred_work import DeferredWork
from cif.bus.fenced import ACK_CHUNK, ACK_LUA, Fence, LeaseLost, check_reply
from cif.bus.link import RedisLink
from cif.digest import ChainDigest
from cif.features.leases import Lease, owner_id
from cif.ingest.backoff import Backoff

LOG_FIRST = 5
LOG_EVERY = 1000
_SAMPLE_CHARS = 200


class OwnershipStats(Protocol):
    """The counters every owned symbol has (a dataclass: ``asdict`` gives them all)."""

    owned: bool
    acquisitions: int
    lease_lost: int
    errors: int
    refused: str | None
    bad: Counter[str]
    last_recv_ts_ns: int
    #: entries already in the state (``seq <= last_seq``), skipped
    seen: int
    #: pending entries taken over from other consumers / trimmed while pending
    claimed: int
    trimmed: int
    #: checkpoints that landed
    checkpoints: int
    #: fenced transactions sent again after our own lease renewal aborted them
    lease_retries: int

    @property
    def skipped(self) -> int: ...


class Session(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=OwnershipStats)


def sample(fields: Mapping[Any, Any] | list[Any]) -> str:
    """An entry's fields (a mapping, or keys and values alternating) as one short line,
    for logs."""
    pairs = (
        fields.items()
        if isinstance(fields, Mapping)
        else zip(fields[::2], fields[1::2], strict=False)
    )
    text = ", ".join(
        f"{k.decode() if isinstance(k, bytes) else k}={v.decode() if isinstance(v, bytes) else v}"
        for k, v in pairs
    )
    return text if len(text) <= _SAMPLE_CHARS else text[:_SAMPLE_CHARS] + "..."


async def wait_or_stop(stop: asyncio.Event, delay: float) -> None:
    """Sleep ``delay`` seconds, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)


class OwnershipConfig(Protocol):
    """The settings every owned-symbols service has."""

    @property
    def redis_url(self) -> str: ...
    @property
    def consumer(self) -> str | None: ...
    @property
    def lease_ttl_s(self) -> float: ...
    @property
    def retry_cap_s(self) -> float: ...
    @property
    def stats_interval_s(self) -> float: ...


class OwnedSymbols(Generic[S]):
    """Runs one task per symbol: stand by for its lease, own it, recover.

    Subclasses set the class attributes and implement :meth:`lease_key`,
    :meth:`session`, :meth:`describe` and :meth:`symbol_summary`."""

    #: ``features`` / ``forecasts``: task names and the stats line's prefix
    role: str = ""
    #: the service in log lines (``feature processor``)
    title: str = ""
    #: a symbol's task in log lines (``feature``: "feature task failed")
    task_noun: str = ""
    #: what a bad entry is called in the log (``input``, ``feature row``)
    entry_noun: str = ""
    #: the exception a session raises to refuse the symbol for good
    refusal: type[Exception] = RuntimeError
    #: appended to the refusal's log line
    refusal_hint: str = ""

    def __init__(
        self,
        log: logging.Logger,
        config: OwnershipConfig,
        symbols: Sequence[str],
        new_stats: Callable[[], S],
        client: aioredis.Redis | None,
    ) -> None:
        self.log = log
        self.owner = owner_id()
        self.redis_url = config.redis_url
        self.consumer = config.consumer or self.owner
        self.symbols = list(symbols)
        self._own_client = client is None
        self.client: aioredis.Redis = client or aioredis.from_url(
            config.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self.symbol_stats: dict[str, S] = {s: new_stats() for s in self.symbols}
        self.lease_ttl_s = config.lease_ttl_s
        self.retry_cap_s = config.retry_cap_s
        self.stats_interval_s = config.stats_interval_s
        self.started = asyncio.Event()
        self._stopped = False

    # -- what a subclass says ------------------------------------------------------------------

    def lease_key(self, symbol: str) -> str:
        raise NotImplementedError

    def session(self, symbol: str, lease: Lease) -> Session:
        raise NotImplementedError

    def describe(self) -> str:
        """The start-up log line."""
        raise NotImplementedError

    def symbol_summary(self, s: S, state: str, lag: str) -> str:
        """One symbol's part of the stats line (``state``: owned/standby/stopped)."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------

    def bad(
        self,
        symbol: str,
        reason: str,
        entry_id: bytes,
        fields: Mapping[Any, Any] | list[Any],
        detail: str,
    ) -> None:
        """Count a skipped entry; log the first few of each reason with a sample."""
        stats = self.symbol_stats[symbol]
        stats.bad[reason] += 1
        n = stats.bad[reason]
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            self.log.warning(
                "%s: skipped %s #%d with reason %s (entry %s): %s%s",
                symbol,
                self.entry_noun,
                n,
                reason,
                entry_id.decode(errors="replace"),
                detail,
                f"; fields: {sample(fields)}" if fields else "",
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; every owned symbol is checkpointed and its lease
        released on the way out, so a stand-by takes over at once."""
        log = self.log
        log.info("%s", self.describe())
        tasks = [
            asyncio.create_task(self._run_symbol(sym, stop), name=f"{self.role}-{sym}")
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
                    log.error("%s task failed: %r", self.task_noun, r)
            if self._own_client:
                with contextlib.suppress(RedisError, OSError):
                    await self.client.aclose()
            self._stopped = True
            log.info("%s stopped; %s", self.title, self.summary())

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        await wait_or_stop(stop, delay)

    async def _run_symbol(self, symbol: str, stop: asyncio.Event) -> None:
        log = self.log
        stats = self.symbol_stats[symbol]
        lease = Lease(self.client, self.lease_key(symbol), self.owner, self.lease_ttl_s)
        backoff = Backoff(base_s=0.1, cap_s=self.retry_cap_s)
        standby = min(self.lease_ttl_s / 4, 2.0)
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
            session = self.session(symbol, lease)
            try:
                await session.run(stop)
            except LeaseLost as exc:
                stats.lease_lost += 1
                release = False
                log.warning("%s: lease lost (%s); stopped working on it", symbol, exc)
            except self.refusal as exc:
                stats.refused = str(exc)
                log.error("%s: refusing the symbol: %s%s", symbol, exc, self.refusal_hint)
                with contextlib.suppress(RedisError, OSError):
                    await lease.release()
                stats.owned = False
                return
            except (RedisError, OSError) as exc:
                stats.errors += 1
                log.warning("%s: redis error (%s); stopped working on it, will retry", symbol, exc)
                # Idle pooled connections may lead to a server that is gone (a restart, a
                # failover): drop them, or each would fail the next session in turn.
                # Connections other sessions are using are left alone.
                with contextlib.suppress(RedisError, OSError):
                    await self.client.connection_pool.disconnect(inuse_connections=False)
            except Exception:
                stats.errors += 1
                log.exception("%s: unexpected error; stopped working on it, will retry", symbol)
            finally:
                stats.owned = False
                await session.close()
            if release:
                with contextlib.suppress(RedisError, OSError):
                    await lease.release()
            if stop.is_set():
                break
            if time.monotonic() - started > 10 * self.retry_cap_s:
                backoff.reset()
            await self._wait(stop, backoff.next_delay())

    async def _log_stats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._wait(stop, self.stats_interval_s)
            if not stop.is_set():
                self.log.info("%s", self.summary())

    def stats(self) -> dict[str, Any]:
        """Every counter, per symbol."""
        out: dict[str, Any] = {}
        for sym, s in self.symbol_stats.items():
            d = asdict(s)  # type: ignore[call-overload]
            d["bad"] = dict(s.bad)
            d["skipped"] = s.skipped
            out[sym] = d
        return out

    def summary(self) -> str:
        """One log line: per symbol its state, counters and lag."""
        parts = []
        now_ns = time.time_ns()
        for sym, s in self.symbol_stats.items():
            if s.refused:
                parts.append(f"{sym}: REFUSED ({s.refused})")
                continue
            state = "owned" if s.owned else ("stopped" if self._stopped else "standby")
            lag = f"{(now_ns - s.last_recv_ts_ns) / 1e6:.0f}ms" if s.last_recv_ts_ns else "-"
            parts.append(f"{sym}: {state}, " + self.symbol_summary(s, state, lag))
        return f"{self.role}: " + "; ".join(parts)


class SymbolSession(Generic[S]):
    """What every session (one ownership period of one symbol) has: the symbol's lease and
    fence, its stats, lease renewal, consumer groups, the fenced claim of pending entries and
    the output digest saved with the checkpoint (``digest_key``)."""

    def __init__(
        self,
        service: OwnedSymbols[S],
        symbol: str,
        lease: Lease,
        *,
        group: str,
        read_count: int,
        digest_key: str,
    ) -> None:
        self.log = service.log
        self.symbol = symbol
        self.lease = lease
        self.client = service.client
        self.stats: S = service.symbol_stats[symbol]
        self.consumer = service.consumer
        self.group = group
        self.read_count = read_count
        #: the session's own connection for its hot loop (see cif.bus.link)
        self.link = RedisLink(service.redis_url)
        self.fence = Fence(self.client, self.link, lease.key, service.owner)
        self.fence.watch.on_retry = self._count_lease_retry
        self.renew_every = service.lease_ttl_s / 3
        self.digest_key = digest_key
        #: digest of every row published since the state started (None: not known, the
        #: checkpoint predates digests); checkpointed with the state
        self.digest: ChainDigest | None = None
        self.last_renew = time.monotonic()
        #: the checkpoint on its way to Redis (:meth:`start_checkpoint`)
        self._inflight: asyncio.Future[None] | None = None
        #: per input stream, the entry IDs a landed checkpoint covers, as RESP bulk strings
        #: (``bulk(id)``), acked a chunk per read (:meth:`ack_chunk`); the session names
        #: its streams
        self.ackable: dict[str, list[bytes]] = {}
        #: bookkeeping of batches already published (their digest, their evaluation), run
        #: once the urgent work is done or when its state is needed (see cif.bus.deferred_work)
        self.bookkeeping = DeferredWork()

    def _count_lease_retry(self) -> None:
        self.stats.lease_retries += 1

    async def close(self) -> None:
        """Release what the session holds open (its link)."""
        self.bookkeeping.cancel()
        await self.link.close()

    # -- acks after a checkpoint --------------------------------------------------------------

    def ack_chunk(self) -> list[bytes]:
        """The fenced ``XACK`` calls of the next :data:`~cif.bus.fenced.ACK_CHUNK` entry IDs
        a landed checkpoint covers (one call per stream that has some), pre-packed to ride
        along a read (``[]``: none waiting).

        Acks are not part of the checkpoint call: a checkpoint covers thousands of entries,
        and one script acking them all held Redis, and with it every stage of the pipeline,
        for 4-20 ms. Acking them a chunk at a time after the checkpoint has landed is as
        safe: an entry the checkpoint covers but not yet acked is delivered again after a
        restart and skipped as seen."""
        calls: list[bytes] = []
        room = ACK_CHUNK
        for key, ids in self.ackable.items():
            if room and ids:
                chunk = ids[:room]
                del ids[:room]
                room -= len(chunk)
                calls.append(self.fence.pack_eval_bulks(ACK_LUA, [key], [self.group], chunk))
        return calls

    async def flush_acks(self) -> None:
        """Ack every entry a landed checkpoint covers, a chunk per round trip."""
        while calls := self.ack_chunk():
            for reply in await self.link.round_trip(b"".join(calls), len(calls)):
                check_reply(reply)

    # -- checkpoints in the background --------------------------------------------------------

    async def prepare_checkpoint(self) -> None:
        """Work the next :meth:`checkpoint_call` needs that may run off the event loop
        (the processor's engine snapshot, in a worker thread). Awaited in the session's own
        task right before that call, so nothing changes the state in between."""

    def checkpoint_call(self) -> Coroutine[Any, Any, None]:
        """The fenced checkpoint call of the state and acks as they are now: taken, and the
        session's counters reset, before the call is awaited. Each session defines it."""
        raise NotImplementedError

    def checkpoint_landed_hook(self, took_ns: int) -> None:
        """A checkpoint landed ``took_ns`` after it was taken (stats)."""
        self.stats.checkpoints += 1

    async def _checkpoint(self) -> None:
        """Checkpoint and wait until it has landed (after the one in flight, if any)."""
        await self.checkpoint_landed(wait=True)
        t0 = time.perf_counter_ns()
        await self.prepare_checkpoint()
        self.bookkeeping.run()
        await self.checkpoint_call()
        self.checkpoint_landed_hook(time.perf_counter_ns() - t0)

    def start_checkpoint(self) -> None:
        """Checkpoint without waiting for Redis: the state and the acks are taken now and
        the call goes out in the background while processing goes on.

        Why: a state is up to megabytes, and under load Redis takes tens of milliseconds to
        receive and store it; the symbol's rows used to wait for all of it. Nothing depends
        on a checkpoint having landed (output is published idempotently, and a restart
        resumes from whichever checkpoint landed last). One is in flight at a time (call
        :meth:`checkpoint_landed` with ``wait`` first), and a failed one (``LeaseLost``,
        say) is raised by :meth:`checkpoint_landed`."""
        assert self._inflight is None, "a checkpoint is in flight"
        t0 = time.perf_counter_ns()
        self.bookkeeping.run()  # the state it changes is what the checkpoint takes
        call = self.checkpoint_call()

        async def landing() -> None:
            await call
            self.checkpoint_landed_hook(time.perf_counter_ns() - t0)

        self._inflight = asyncio.ensure_future(landing())

    async def checkpoint_step(self, due: bool) -> None:
        """Once per loop step: collect a checkpoint that has landed and, if one is ``due``,
        start it (after waiting for the one in flight)."""
        await self.checkpoint_landed(wait=due)
        if due:
            await self.prepare_checkpoint()
            self.start_checkpoint()

    async def checkpoint_landed(self, wait: bool) -> None:
        """Collect the background checkpoint once it is done (with ``wait``: once it has
        landed); its error, if any, is raised here."""
        task = self._inflight
        if task is None or not (wait or task.done()):
            return
        self._inflight = None
        await task

    async def final_checkpoint(self, unsaved: bool) -> None:
        """At a clean stop: wait for the checkpoint in flight, then checkpoint what it did
        not cover (``unsaved``: processed or delivered since it was taken)."""
        await self.checkpoint_landed(wait=True)
        if unsaved:
            await self._checkpoint()

    def drop_checkpoint(self) -> None:
        """The ownership period ends with an error: a checkpoint still in flight is
        cancelled (if it lands first, the fence let it through: it is a valid one)."""
        self.bookkeeping.cancel()
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def maybe_renew(self) -> None:
        """Renew the lease every third of its TTL; :class:`LeaseLost` if it is gone."""
        now = time.monotonic()
        if now - self.last_renew >= self.renew_every:
            if not await self.lease.renew():
                raise LeaseLost("the lease expired or was taken over")
            self.last_renew = now

    async def ensure_groups(self, *keys: str) -> None:
        for key in keys:
            try:
                await self.client.xgroup_create(key, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def claim_pending(self, *keys: str) -> None:
        """Take over every pending entry of the group (min-idle 0: we hold the lease, so
        whoever had them is gone), then forget the consumers left with nothing."""
        claimed = trimmed = 0
        for key in keys:
            c, t = await self.fence.claim(key, self.group, self.consumer, self.read_count)
            claimed += c
            trimmed += t
        self.stats.claimed += claimed
        self.stats.trimmed += trimmed
        if claimed or trimmed:
            self.log.info(
                "%s: claimed %d pending entries (%d trimmed before processing)",
                self.symbol,
                claimed,
                trimmed,
            )

    async def load_digest(self) -> None:
        """The output digest saved with the checkpoint; without one (a checkpoint from
        before digests, or a damaged one) the digest is unknown and not recorded."""
        raw: Any = await self.client.hget(self.digest_key, "state")
        try:
            self.digest = None if raw is None else ChainDigest.from_state(bytes(raw))
        except ValueError as exc:
            self.log.warning("%s: digest state unreadable (%s): not recording", self.symbol, exc)
            self.digest = None
        if self.digest is None:
            self.log.warning("%s: no digest state with the checkpoint: not recording", self.symbol)

    def seen(self, entry_id: bytes, seq: int, last_seq: int) -> None:
        """Count an entry already in the state; only a replay (group rewound) re-delivers
        processed entries: log the first few."""
        stats = self.stats
        stats.seen += 1
        if stats.seen <= LOG_FIRST:
            self.log.warning(
                "%s: entry %s has seq %d, already processed (last seq %d): skipped",
                self.symbol,
                entry_id.decode(errors="replace"),
                seq,
                last_seq,
            )


def paced_interval(min_s: float, state_bytes: int, bytes_per_s: float) -> float:
    """Seconds between a session's checkpoints: ``min_s``, longer for a large state, so
    that checkpoints write at most ``bytes_per_s`` on average.

    Why: a state written every second (the processor's minute window is megabytes) would be
    the biggest load on Redis and its append-only file, and stall every other client of
    the server while it is copied; a longer interval costs only more re-processing after a
    crash and more unacked entries in between.
    """
    return max(min_s, state_bytes / bytes_per_s)


__all__ = [
    "LOG_EVERY",
    "LOG_FIRST",
    "OwnedSymbols",
    "OwnershipConfig",
    "OwnershipStats",
    "SymbolSession",
    "paced_interval",
    "sample",
    "wait_or_stop",
]
