"""Republish the stored event log into Redis, tick by tick, as the gateway published it.

Why: the normal feature processor and forecaster (``--namespace replay``) then consume a
replay exactly as they consume the live market, so the whole live path is exercised on
history. Entries are rebuilt from the stored rows with the gateway's field names, order,
formats and IDs (:mod:`cif.bus.fanout`: trades ``<trade id>-0``, book events ``<seq>-0``;
prices and sizes as ``repr`` of the stored double; depth levels as the stored JSON text),
and written with the gateway's :class:`~cif.bus.stream_writer.StreamWriter`, which writes a
symbol's two streams atomically in ``seq`` order (the processor's merge relies on it).

Pacing by event time (``--speed 1``: as recorded, ``10``: ten times faster, ``max``: as fast
as Redis takes it) or a fixed ``--delay-ms`` between events. Symbols are interleaved by
event time, as they arrived.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from cif.bus.fanout import BOOK_FIELDS, TRADE_FIELDS
from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import FieldValue, StreamEntry, StreamWriter
from cif.replay.progress import Progress

_QUERY = """
SELECT seq, 0 AS kind, ts AS t, trade_id, ts, event_ts, recv_ts_ns, price, qty, side,
       backfilled, NULL::BIGINT AS update_id, NULL AS source, NULL::DOUBLE AS bid_price,
       NULL::DOUBLE AS bid_qty, NULL::DOUBLE AS ask_price, NULL::DOUBLE AS ask_qty,
       NULL::BIGINT AS book_update_id, NULL AS bids, NULL AS asks
FROM trades WHERE symbol = $symbol AND ts >= $from_ms AND ts < $to_ms
UNION ALL
SELECT seq, 1, event_ts, NULL, NULL, event_ts, recv_ts_ns, NULL, NULL, NULL, NULL,
       update_id, source, bid_price, bid_qty, ask_price, ask_qty, book_update_id, bids, asks
FROM book_events WHERE symbol = $symbol AND event_ts >= $from_ms AND event_ts < $to_ms
ORDER BY seq
"""

_UNBOUNDED = 2**62
_FETCH = 20_000


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


def _entries(
    con: Any, symbol: str, namespace: str, from_ms: int | None, to_ms: int | None
) -> Iterator[tuple[int, StreamEntry]]:
    """``(event ms, entry)`` of one symbol, by ``seq``."""
    tkey, bkey = trades_key(symbol, namespace), book_key(symbol, namespace)
    params = {
        "symbol": symbol.upper(),
        "from_ms": -_UNBOUNDED if from_ms is None else from_ms,
        "to_ms": _UNBOUNDED if to_ms is None else to_ms,
    }
    cur = con.execute(_QUERY, params)
    while rows := cur.fetchmany(_FETCH):
        for r in rows:
            (
                seq,
                kind,
                t,
                trade_id,
                ts,
                event_ts,
                recv,
                price,
                qty,
                side,
                backfilled,
                update_id,
                source,
                bp,
                bq,
                ap,
                aq,
                book_uid,
                bids,
                asks,
            ) = r
            if kind == 0:
                values: tuple[FieldValue, ...] = (
                    seq,
                    trade_id,
                    ts,
                    event_ts,
                    recv,
                    repr(float(price)),
                    repr(float(qty)),
                    side,
                    1 if backfilled else 0,
                )
                fields = dict(zip(TRADE_FIELDS, values, strict=True))
                yield t, StreamEntry(tkey, f"{trade_id}-0", fields)
            else:
                values = (
                    seq,
                    update_id,
                    event_ts,
                    recv,
                    source,
                    repr(float(bp)),
                    repr(float(bq)),
                    repr(float(ap)),
                    repr(float(aq)),
                    book_uid,
                    bids,
                    asks,
                )
                fields = dict(zip(BOOK_FIELDS, values, strict=True))
                yield t, StreamEntry(bkey, f"{seq}-0", fields)


def _merged(
    con: Any, symbols: list[str], namespace: str, from_ms: int | None, to_ms: int | None
) -> Iterator[tuple[int, StreamEntry]]:
    """All symbols' entries interleaved by event time (each symbol kept in ``seq`` order:
    the merge key is monotone per symbol only where event time is, so ties and a ticker
    a ms behind keep the stream order, which is what the processor needs)."""
    # Each symbol's rows are materialized per symbol: one DuckDB cursor at a time.
    lists = [list(_entries(con, s, namespace, from_ms, to_ms)) for s in symbols]
    if len(lists) == 1:
        yield from lists[0]
        return

    def clocked(
        items: list[tuple[int, StreamEntry]], k: int
    ) -> Iterator[tuple[int, int, int, StreamEntry]]:
        clock = -_UNBOUNDED
        for i, (t, e) in enumerate(items):
            clock = max(clock, t)
            yield clock, k, i, e

    for clock, _k, _i, e in heapq.merge(*(clocked(x, k) for k, x in enumerate(lists))):
        yield clock, e


async def reset_namespace(client: aioredis.Redis, namespace: str, symbols: list[str]) -> int:
    """Delete every key of ``namespace`` belonging to ``symbols`` (never the live names)."""
    if not namespace:
        raise ValueError("refusing to reset the live namespace")
    n = 0
    for sym in symbols:
        async for key in client.scan_iter(match=f"{namespace}:*{{{sym}}}", count=1000):
            n += int(await client.delete(key))
    return n


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
    batch_size: int = 2_000,
) -> dict[str, Any]:
    """Write the symbols' event logs to ``namespace``'s trades/book streams; the counts and
    the throughput (events/s into Redis, pacing included)."""
    pace = pacing or Pacing()
    client = aioredis.from_url(redis_url)
    try:
        deleted = await reset_namespace(client, namespace, symbols) if reset else 0
        writer = StreamWriter(client, batch_size=batch_size, max_buffer=10_000_000)
        items = list(_merged(con, symbols, namespace, from_ms, to_ms))
        bar = Progress(len(items), "republish", quiet=not progress, unit="events")
        t0 = time.perf_counter()
        first_t = items[0][0] if items else 0
        for t, entry in items:
            if pace.delay_ms is not None:
                writer.put(entry)
                await writer.flush()
                bar.step()
                if pace.delay_ms > 0:
                    await asyncio.sleep(pace.delay_ms / 1000)
                continue
            if pace.speed != math.inf:
                due = t0 + (t - first_t) / 1000 / pace.speed
                wait = due - time.perf_counter()
                if wait > 0.001:
                    n = writer.pending
                    await writer.flush()
                    bar.step(n=n)
                    await asyncio.sleep(wait)
            writer.put(entry)
            if writer.pending >= batch_size:
                n = writer.pending
                await writer.flush()
                bar.step(n=n)
        n = writer.pending
        await writer.flush()
        bar.step(n=n)
        bar.done()
        elapsed = time.perf_counter() - t0
    finally:
        await client.aclose()
    s = writer.stats
    return {
        "events": len(items),
        "written": s.written,
        "duplicates": s.duplicates,
        "rejected": s.rejected,
        "deleted_keys": deleted,
        "namespace": namespace,
        "elapsed_s": round(elapsed, 4),
        "events_per_s": round(len(items) / elapsed, 1) if elapsed > 0 else None,
    }
