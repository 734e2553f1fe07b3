"""Measure ``cif replay --redis --speed max``: events/s into Redis and what Redis spent.

Imports the real btc and eth captures into a temporary DuckDB file (or takes ``--db``),
optionally makes the log ``--copies`` times longer (each copy of a symbol's log shifted past
the previous one in ``seq``, trade IDs and time, so every entry is new), then republishes it
``--runs`` times into a reset namespace and prints per run the events/s (the same number
``cif replay`` reports) with Redis's own cost from ``INFO commandstats`` and ``INFO cpu``:
microseconds per XADD and the server's CPU seconds over the run.

    PYTHONPATH=python python benches/bench_republish.py --runs 5
    PYTHONPATH=python python benches/bench_republish.py --copies 8 --runs 3
    PYTHONPATH=python python benches/bench_republish.py --redis-url redis://127.0.0.1:6399/0

Without ``--redis-url`` a ``redis-server`` from PATH is started on a free port without
persistence (``--redis-server`` picks another binary) and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import redis

from cif.replay.republish import BATCH_SIZE, republish

DATA = Path(os.environ.get("CIF_DATA_DIR", Path(__file__).resolve().parents[2] / "shared/data"))
CAPTURES = ("binance/btcusdt_20240808.gz", "binance/ethusdt_20240808.gz")
SYMBOLS = ["btcusdt", "ethusdt"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def import_captures(db: Path) -> None:
    files = [str(DATA / c) for c in CAPTURES]
    cmd = [sys.executable, "-m", "cif", "import", *files, "--db", str(db)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def lengthen(db: Path, copies: int) -> None:
    """Append ``copies - 1`` shifted copies of every symbol's trades and book events."""
    with duckdb.connect(str(db)) as con:
        spans = con.execute(
            """
            SELECT symbol, max(seq) + 1, max(ts) - min(ts) + 1,
                   max(trade_id) - min(trade_id) + 1
            FROM (SELECT symbol, seq, ts, trade_id FROM trades
                  UNION ALL SELECT symbol, seq, event_ts, NULL FROM book_events)
            GROUP BY symbol
            """
        ).fetchall()
        for symbol, seq_span, t_span, id_span in spans:
            for k in range(1, copies):
                con.execute(
                    f"""
                    INSERT INTO trades SELECT * REPLACE (seq + $q AS seq, ts + $t AS ts,
                        event_ts + $t AS event_ts, trade_id + $i AS trade_id)
                    FROM trades WHERE symbol = $s AND seq < {seq_span}
                    """,
                    {"s": symbol, "q": k * seq_span, "t": k * t_span, "i": k * id_span},
                )
                con.execute(
                    f"""
                    INSERT INTO book_events SELECT * REPLACE (seq + $q AS seq,
                        event_ts + $t AS event_ts)
                    FROM book_events WHERE symbol = $s AND seq < {seq_span}
                    """,
                    {"s": symbol, "q": k * seq_span, "t": k * t_span},
                )


def redis_stats(client: redis.Redis) -> tuple[float, int, float]:
    """Server CPU seconds so far, XADD calls and their microseconds since the last reset."""
    cpu = client.info("cpu")
    xadd = client.info("commandstats").get("cmdstat_xadd", {"calls": 0, "usec": 0})
    return (
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        int(xadd["calls"]),
        float(xadd["usec"]),
    )


def run_once(db: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    try:
        # the reset is outside the clock; so is the deleted keys' memory being freed
        for key in client.scan_iter(match="bench:*"):
            client.delete(key)
        client.config_resetstat()
        cpu0, _, _ = redis_stats(client)
        with duckdb.connect(str(db), read_only=True) as con:
            stats = asyncio.run(
                republish(
                    con,
                    SYMBOLS,
                    url,
                    "bench",
                    batch_size=args.batch_size,
                    shared_connection=args.shared_connection,
                )
            )
        cpu1, calls, usec = redis_stats(client)
    finally:
        client.close()
    return {
        "events": stats["events"],
        "written": stats["written"],
        "events_per_s": stats["events_per_s"],
        "elapsed_s": stats["elapsed_s"],
        "build_s": stats["build_s"],
        "redis_cpu_s": round(cpu1 - cpu0, 3),
        "redis_us_per_xadd": round(usec / calls, 2) if calls else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a DuckDB history (default: import the captures)")
    parser.add_argument("--copies", type=int, default=1, help="make the log N times longer")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis-url", help="default: start a redis-server on a free port")
    parser.add_argument("--redis-server", default="redis-server", help="binary to start")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--shared-connection", action="store_true", help="one for all symbols")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_republish_") as tmp:
        db = Path(tmp) / "cif.duckdb"
        if args.db is not None:
            shutil.copy(args.db, db)
        else:
            import_captures(db)
        if args.copies > 1:
            lengthen(db, args.copies)
        server = None
        url = args.redis_url
        if url is None:
            port = _free_port()
            cmd = [args.redis_server, "--port", str(port), "--bind", "127.0.0.1"]
            cmd += ["--save", "", "--appendonly", "no", "--dir", tmp]
            server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            url = f"redis://127.0.0.1:{port}/0"
            for _ in range(100):
                try:
                    redis.Redis.from_url(url).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
        try:
            version = redis.Redis.from_url(url).info("server")["redis_version"]
            rates = []
            for i in range(args.runs):
                row = run_once(db, url, args)
                rates.append(row["events_per_s"])
                print(json.dumps({"run": i + 1, "redis": version, **row}), flush=True)
            print(
                f"events/s: median {statistics.median(rates):,.0f}, best {max(rates):,.0f} "
                f"over {args.runs} runs"
            )
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
