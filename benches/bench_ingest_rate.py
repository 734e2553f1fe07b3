"""Measure the highest feed rate the ingestion gateway sustains into Redis + DuckDB.

For each requested trade rate, starts ``cif.sim`` (synthetic, ``--symbols``) in a subprocess
and runs the gateway in this process against it, with a real Redis (``--redis-url``) and a
fresh DuckDB file, for ``--seconds`` after a warm-up. Reported per rate:

* ticks/s: frames the gateway handled per second (trades + bookTicker + depth diffs);
* trades/s stored, and whether DuckDB and Redis kept up (rows still pending at the end);
* CPU % of the gateway process (this process; the simulator runs on the other core);
* feed lag: receive time minus the exchange's event time of the newest event, at the end
  of the window (the synthetic clock is the wall clock, so this is how far behind the
  feed the gateway has fallen; it grows without bound past the sustainable rate).

    PYTHONPATH=python python benches/bench_ingest_rate.py --rates 2000,5000,10000,20000

A rate is "sustained" when the feed lag at the end stays under 1 s and both sinks are
caught up within a flush interval.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "live"))

from live_testkit import SimProcess

from cif.ingest.gateway import Gateway, GatewayConfig


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushall()


async def _measure(cfg: GatewayConfig, warmup: float, seconds: float) -> dict[str, float]:
    gw = Gateway(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await asyncio.sleep(warmup)
    frames0 = sum(g.stats.frames for g in gw.groups)
    trades0 = sum(s.stats.trades for s in gw.symbols.values())
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = time.process_time(), time.monotonic()
    frames1 = sum(g.stats.frames for g in gw.groups)
    trades1 = sum(s.stats.trades for s in gw.symbols.values())
    lag = max(s.stats.feed_lag_ms for s in gw.symbols.values())
    duck_pending = gw.writer.pending_rows
    redis_pending = gw.streams.pending if gw.streams is not None else 0
    stop.set()
    await task
    dt = t1 - t0
    return {
        "ticks_per_s": (frames1 - frames0) / dt,
        "trades_per_s": (trades1 - trades0) / dt,
        "cpu_pct": 100.0 * (cpu1 - cpu0) / dt,
        "lag_ms": lag,
        "duck_pending": duck_pending,
        "redis_pending": redis_pending,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="2000,5000,10000,20000", help="trades/s, all symbols")
    ap.add_argument("--symbols", default="btcusdt,ethusdt")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(
        f"{'rate':>7} {'ticks/s':>9} {'trades/s':>9} {'cpu%':>6} {'lag ms':>9} "
        f"{'duck pend':>9} {'redis pend':>10}  verdict"
    )
    for rate in [int(r) for r in args.rates.split(",")]:
        _flush_redis(args.redis_url)
        with tempfile.TemporaryDirectory() as tmp:
            sim = SimProcess(
                ["--synthetic", "--symbols", args.symbols, "--rate", str(rate), "--seed", "3"],
                Path(tmp) / "sim.log",
            )
            sim.start()
            try:
                cfg = GatewayConfig(
                    symbols=args.symbols.split(","),
                    ws_url=sim.ws_url,
                    rest_url=sim.rest_url,
                    redis_url=args.redis_url,
                    db_path=Path(tmp) / "bench.duckdb",
                    history_dir=Path(tmp) / "history",
                    stats_interval_s=3600,
                )
                r = asyncio.run(_measure(cfg, args.warmup, args.seconds))
            finally:
                sim.stop()
        ok = r["lag_ms"] < 1000 and r["trades_per_s"] > 0.95 * rate
        print(
            f"{rate:>7} {r['ticks_per_s']:>9.0f} {r['trades_per_s']:>9.0f} {r['cpu_pct']:>6.0f} "
            f"{r['lag_ms']:>9.0f} {r['duck_pending']:>9.0f} {r['redis_pending']:>10.0f}  "
            f"{'sustained' if ok else 'FALLS BEHIND'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
