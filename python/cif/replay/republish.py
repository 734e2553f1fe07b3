"""Republish the stored event log into Redis, tick by tick, as the gateway published it.

Why: the normal feature processor and forecaster (``--namespace replay``) then consume a
replay exactly as they consume the live market, so the whole live path is exercised on
history. Entries are rebuilt from the stored rows with the gateway's field names, order,
formats and IDs (:mod:`cif.bus.fanout`: trades ``<trade id>-0``, book events ``<seq>-0``;
prices and sizes as ``repr`` of the stored double; depth levels as the stored JSON text),
formatted column-wise as one plain ``XADD ... MAXLEN ~ N`` per entry
(:mod:`cif.replay.resp_entries`) and pipelined on raw connections whose replies are parsed
in bulk (:mod:`cif.replay.raw_redis`), a bounded amount in flight.

Ordering without the gateway's script: the processor merges a symbol's two streams by
``seq`` and relies on "when an entry of ``seq`` S is readable on one stream, every entry of
the symbol with a smaller ``seq`` is readable on the other". The gateway gets that from one
atomic script call per batch; here every XADD of a symbol is sent in ``seq`` order on one
connection (the symbol's own), and Redis executes a connection's commands one at a time in
the order received, so every state a reader can observe holds a ``seq`` prefix of the
symbol's entries across both streams (I/O threads, where configured, only read and write
sockets: commands still execute on the main thread in each connection's order). A duplicate
ID means the entry is already there (re-sending is a no-op, counted); any other refusal is
counted as rejected and logged. Plain XADDs are what makes the speed: through the script
Redis spent 7-12 us of CPU per entry, on a plain XADD 3.3-5.4 us (Redis 7.0, README).

Pacing by event time (``--speed 1``: as recorded, ``10``: ten times faster, ``max``: as fast
as Redis takes it) or a fixed ``--delay-ms`` between events. Symbols are interleaved by
event time, as they arrived.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from cif.replay.progress import Progress
from cif.replay.raw_redis import RawRedis
from cif.replay.resp_entries import DEFAULT_MAXLEN, load_entries, merged_order

log = logging.getLogger(__name__)

#: Entries per write at full speed (the in-flight bounds are :class:`RawRedis`'s).
BATCH_SIZE = 5_000


@dataclass(frozen=True)
class Pacing:
    """``speed`` x event time (``inf``: no pacing), or a fixed delay between events."""

    speed: float = math.inf
    delay_ms: float | None = None

    @classmethod
    def parse(cls, speed: str, delay_ms: float | None = None) -> Pacing:
        if delay_ms is not None:
            if not (delay_ms >= 0 and math.isfinite(delay_ms)):
                raise ValueError(f"--delay-ms must be >= 0, got {delay_ms}")
            return cls(delay_ms=delay_ms)
        if speed.strip().lower() == "max":
            return cls()
        try:
            value = float(speed)
        except ValueError:
            raise ValueError(f"--speed must be a number or 'max', got {speed!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"--speed must be > 0, got {speed!r}")
        return cls(speed=value)


async def reset_namespace(client: aioredis.Redis, namespace: str, symbols: list[str]) -> int:
    """Delete every key of ``namespace`` belonging to ``symbols`` (never the live names)."""
    if not namespace:
        raise ValueError("refusing to reset the live namespace")
    n = 0
    for sym in symbols:
        async for key in client.scan_iter(match=f"{namespace}:*{{{sym}}}", count=1000):
            n += int(await client.delete(key))
    return n


class XaddTally:
    """Tallies the error replies of XADDs; every other reply is an entry added."""

    def __init__(self) -> None:
        self.duplicates = self.rejected = 0
        self.first_error: str | None = None

    def on_error(self, message: str) -> None:
        """One XADD refused: its ID not above the stream's top (the entry is there: a
        duplicate) or anything else (rejected: logged once, then counted)."""
        if "equal or smaller" in message:
            self.duplicates += 1
            return
        self.rejected += 1
        if self.first_error is None:
            self.first_error = message
            log.error("redis rejected an entry (further ones are only counted): %s", message)


async def republish(
    con: Any,
    symbols: list[str],
    redis_url: str,
    namespace: str,
    *,
    pacing: Pacing | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
    reset: bool = False,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
    maxlen: int = DEFAULT_MAXLEN,
    shared_connection: bool = False,
) -> dict[str, Any]:
    """Write the symbols' event logs to ``namespace``'s trades/book streams; the counts and
    the throughput (events/s into Redis, pacing included; ``build_s``: reading and
    formatting the entries, before the clock starts).

    Each symbol gets its own connection (they proceed in parallel), or all share one with
    ``shared_connection``; either way a symbol's entries go out in ``seq`` order on one."""
    if batch_size <= 0 or maxlen <= 0:
        raise ValueError("batch_size and maxlen must be positive")
    pace = pacing or Pacing()
    tb = time.perf_counter()
    entries = [load_entries(con, s, namespace, from_ms, to_ms, maxlen) for s in symbols]
    which, clock = merged_order(entries)
    build_s = time.perf_counter() - tb
    n = len(which)
    next_of = [0] * len(entries)
    tally = XaddTally()

    if reset:
        client = aioredis.from_url(redis_url)
        try:
            deleted = await reset_namespace(client, namespace, symbols)
        finally:
            await client.aclose()
    else:
        deleted = 0
    conns: list[RawRedis] = []

    async def send(a: int, b: int) -> None:
        """The XADDs of merged positions ``[a, b)``, each symbol's in ``seq`` order."""
        counts = np.bincount(which[a:b], minlength=len(entries)).tolist()
        for k, c in enumerate(counts):
            if c:
                i = next_of[k]
                await conn_of[k].send(entries[k].commands(i, i + c), c)
                next_of[k] = i + c

    async def drain() -> None:
        for c in conns:
            await c.drain()

    try:
        for _ in range(1 if shared_connection else max(len(entries), 1)):
            conns.append(await RawRedis.open(redis_url, on_error=tally.on_error))
        conn_of = [conns[0 if shared_connection else k] for k in range(len(entries))]
        bar = Progress(n, "republish", quiet=not progress, unit="events")
        t0 = time.perf_counter()
        if pace.delay_ms is not None:
            for i in range(n):
                await send(i, i + 1)
                await drain()
                bar.step()
                if pace.delay_ms > 0:
                    await asyncio.sleep(pace.delay_ms / 1000)
        elif pace.speed == math.inf:
            for a in range(0, n, batch_size):
                b = min(a + batch_size, n)
                await send(a, b)
                bar.step(n=b - a)
        else:
            # seconds after t0 at which each entry is due (the clock is non-decreasing)
            # (a snapshot's event time can be 0: pacing starts at the first real time)
            real = clock[clock > 0]
            base = int(real[0]) if len(real) else 0
            due = np.maximum(clock - base, 0) / 1000 / pace.speed
            a = 0
            while a < n:
                now = time.perf_counter() - t0
                b = int(np.searchsorted(due, now + 0.001, side="right"))
                b = min(max(b, a), a + batch_size)
                if b == a:
                    await drain()
                    await asyncio.sleep(max(float(due[a]) - (time.perf_counter() - t0), 0))
                    continue
                await send(a, b)
                bar.step(n=b - a)
                a = b
        await drain()
        bar.done()
        elapsed = time.perf_counter() - t0
    except BaseException:
        for c in conns:
            c.abort()
        raise
    for c in conns:
        await c.close()
    if tally.rejected:
        log.error("redis rejected %d of %d entries", tally.rejected, n)
    return {
        "events": n,
        "written": n - tally.duplicates - tally.rejected,
        "duplicates": tally.duplicates,
        "rejected": tally.rejected,
        "first_error": tally.first_error,
        "deleted_keys": deleted,
        "namespace": namespace,
        "build_s": round(build_s, 4),
        "elapsed_s": round(elapsed, 4),
        "events_per_s": round(n / elapsed, 1) if elapsed > 0 else None,
    }
