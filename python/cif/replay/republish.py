"""Republish the stored event log into Redis, tick by tick, as the gateway published it.

Why: the normal feature processor and forecaster (``--namespace replay``) then consume a
replay exactly as they consume the live market, so the whole live path is exercised on
history. Entries are rebuilt from the stored rows with the gateway's field names, order,
formats and IDs (:mod:`cif.bus.fanout`: trades ``<trade id>-0``, book events ``<seq>-0``;
prices and sizes as ``repr`` of the stored double; depth levels as the stored JSON text),
and written with the gateway's script (:data:`~cif.bus.stream_writer.XADD_BATCH_LUA`, one
call per symbol per batch, packed as :class:`~cif.bus.stream_writer.StreamWriter` packs it),
which writes a symbol's two streams atomically in ``seq`` order (the processor's merge
relies on it). The entries are formatted column-wise (:mod:`cif.replay.resp_entries`) and
the calls pipelined on one connection (applied in the order sent), a few in flight.

Pacing by event time (``--speed 1``: as recorded, ``10``: ten times faster, ``max``: as fast
as Redis takes it) or a fixed ``--delay-ms`` between events. Symbols are interleaved by
event time, as they arrived.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from cif.bus.stream_writer import bulk
from cif.replay.progress import Progress
from cif.replay.resp_entries import SymbolEntries, load_entries, merged_order

#: Entries per round trip at full speed, and round trips in flight on the one connection.
BATCH_SIZE = 5_000
WINDOW = 3


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


class _Pipeline:
    """Pre-packed calls on one connection (so Redis applies them in the order sent), up to
    ``window`` round trips in flight; tallies the script replies."""

    def __init__(self, client: aioredis.Redis, window: int) -> None:
        self._client = client
        self._window = window
        self._conn: Any = None
        self._in_flight: list[int] = []  # replies expected per payload sent, oldest first
        self.written = self.duplicates = self.rejected = self.calls = 0

    async def __aenter__(self) -> _Pipeline:
        self._conn = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn, self._conn = self._conn, None
        try:
            if exc_type is None:
                await self.drain()
            else:
                await conn.disconnect()  # half-read: never pooled again
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await self._client.connection_pool.release(conn)

    async def send(self, calls: list[str]) -> None:
        """Send script calls (RESP text) in one write; wait while ``window`` are pending."""
        if not calls:
            return
        text = "".join(calls)
        if not text.isascii():  # the bulk lengths are counted in characters
            raise ValueError("non-ASCII text in the event log: cannot pack it as stored")
        while len(self._in_flight) >= self._window:
            await self._read_oldest()
        await self._conn.send_packed_command(text.encode(), check_health=False)
        self._in_flight.append(len(calls))
        self.calls += len(calls)

    async def drain(self) -> None:
        while self._in_flight:
            await self._read_oldest()

    async def _read_oldest(self) -> None:
        for _ in range(self._in_flight.pop(0)):
            added, dups, rejected, _first_error = await self._conn.read_response()
            self.written += int(added)
            self.duplicates += int(dups)
            self.rejected += int(rejected)


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
    maxlen: int = 1_000_000,
) -> dict[str, Any]:
    """Write the symbols' event logs to ``namespace``'s trades/book streams; the counts and
    the throughput (events/s into Redis, pacing included; ``build_s``: reading and
    formatting the entries, before the clock starts)."""
    if batch_size <= 0 or maxlen <= 0:
        raise ValueError("batch_size and maxlen must be positive")
    pace = pacing or Pacing()
    tb = time.perf_counter()
    entries = [load_entries(con, s, namespace, from_ms, to_ms) for s in symbols]
    which, clock = merged_order(entries)
    build_s = time.perf_counter() - tb
    n = len(which)
    maxlen_arg = bulk(str(maxlen).encode()).decode()
    next_of = [0] * len(entries)

    def calls(a: int, b: int) -> list[str]:
        """The per-symbol script calls writing merged positions ``[a, b)``."""
        out = []
        counts = np.bincount(which[a:b], minlength=len(entries)).tolist()
        for k, c in enumerate(counts):
            if c:
                s: SymbolEntries = entries[k]
                out.append(s.call(next_of[k], next_of[k] + c, maxlen_arg))
                next_of[k] += c
        return out

    client = aioredis.from_url(redis_url)
    try:
        deleted = await reset_namespace(client, namespace, symbols) if reset else 0
        bar = Progress(n, "republish", quiet=not progress, unit="events")
        t0 = time.perf_counter()
        async with _Pipeline(client, 1 if pace.delay_ms is not None else WINDOW) as pipe:
            if pace.delay_ms is not None:
                for i in range(n):
                    await pipe.send(calls(i, i + 1))
                    await pipe.drain()
                    bar.step()
                    if pace.delay_ms > 0:
                        await asyncio.sleep(pace.delay_ms / 1000)
            elif pace.speed == math.inf:
                for a in range(0, n, batch_size):
                    b = min(a + batch_size, n)
                    await pipe.send(calls(a, b))
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
                        await pipe.drain()
                        await asyncio.sleep(max(float(due[a]) - (time.perf_counter() - t0), 0))
                        continue
                    await pipe.send(calls(a, b))
                    bar.step(n=b - a)
                    a = b
            await pipe.drain()
        bar.done()
        elapsed = time.perf_counter() - t0
    finally:
        await client.aclose()
    return {
        "events": n,
        "written": pipe.written,
        "duplicates": pipe.duplicates,
        "rejected": pipe.rejected,
        "deleted_keys": deleted,
        "namespace": namespace,
        "build_s": round(build_s, 4),
        "elapsed_s": round(elapsed, 4),
        "events_per_s": round(n / elapsed, 1) if elapsed > 0 else None,
    }
