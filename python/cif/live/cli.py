"""``cif live`` / ``python -m cif.live``: run ingestion against Binance (or the simulator).

Every flag has a ``CIF_*`` environment variable as its default (flag wins), e.g.
``CIF_SYMBOLS=btcusdt,ethusdt``, ``CIF_EXCHANGE_URL``, ``CIF_REST_URL``, ``CIF_REDIS_URL``,
``CIF_DB``, ``CIF_HISTORY_DIR``. Stops cleanly on SIGINT/SIGTERM (flushing DuckDB and Redis);
``--duration`` stops it after that many seconds (demos and measurements).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from cif.ingest.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    MAX_STREAMS_PER_CONNECTION,
    normalize_symbols,
)
from cif.ingest.gateway import Gateway, GatewayConfig

log = logging.getLogger("cif.live")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CIF_{name}", default)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("exchange")
    src.add_argument(
        "--symbols",
        default=_env("SYMBOLS", "btcusdt"),
        help="comma-separated symbols (default: $CIF_SYMBOLS or btcusdt)",
    )
    src.add_argument(
        "--exchange-url",
        default=_env("EXCHANGE_URL", DEFAULT_WS_URL),
        help=f"WebSocket base URL (default: $CIF_EXCHANGE_URL or {DEFAULT_WS_URL})",
    )
    src.add_argument(
        "--rest-url",
        default=_env("REST_URL", DEFAULT_REST_URL),
        help=f"REST base URL (default: $CIF_REST_URL or {DEFAULT_REST_URL})",
    )
    src.add_argument(
        "--streams-per-connection",
        type=int,
        default=int(_env("STREAMS_PER_CONNECTION", str(MAX_STREAMS_PER_CONNECTION))),
        help="split streams across connections of at most this many (max 1024)",
    )
    src.add_argument(
        "--watchdog",
        type=_positive,
        default=float(_env("WATCHDOG_S", "10")),
        help="reconnect a connection silent for this many seconds (default 10)",
    )
    src.add_argument(
        "--max-connection-age",
        type=_positive,
        default=float(_env("MAX_CONNECTION_AGE_S", str(23.5 * 3600))),
        help="replace connections (make-before-break) at this age, s (Binance cuts at 24 h)",
    )
    src.add_argument("--depth-limit", type=int, default=1000, help="REST snapshot levels")
    src.add_argument("--top-k", type=int, default=10, help="depth levels on book events")
    src.add_argument(
        "--rest-weight-budget",
        type=int,
        default=int(_env("REST_WEIGHT_BUDGET", "4800")),
        help="REST weight per minute cif allows itself (Binance's limit is 6000)",
    )
    src.add_argument(
        "--max-backfill",
        type=int,
        default=5_000_000,
        help="largest trade gap backfilled from REST; the oldest ids beyond it are given up",
    )
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--redis-url",
        default=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the stream fan-out (default: $CIF_REDIS_URL or local)",
    )
    out.add_argument("--no-redis", action="store_true", help="persist to DuckDB only")
    out.add_argument("--namespace", default=_env("NAMESPACE", ""), help="prefix of every Redis key")
    out.add_argument(
        "--db",
        type=Path,
        default=Path(_env("DB", "data/cif.duckdb")),
        help="DuckDB file, owned by this process (default: $CIF_DB or data/cif.duckdb)",
    )
    out.add_argument(
        "--history-dir",
        type=Path,
        default=Path(_env("HISTORY_DIR", "data/history")),
        help="Parquet segments other processes read while this one runs",
    )
    out.add_argument(
        "--seal-interval",
        type=_positive,
        default=float(_env("SEAL_INTERVAL_S", "60")),
        help="seconds between Parquet segments (bounds how stale readers are)",
    )
    out.add_argument(
        "--flush-interval",
        type=_positive,
        default=0.5,
        help="seconds between DuckDB batch writes (at most 1)",
    )
    parser.add_argument("--stats-interval", type=_positive, default=10.0, help="stats log, s")
    parser.add_argument("--duration", type=_positive, default=None, help="stop after N s")


def build_config(args: argparse.Namespace) -> GatewayConfig:
    """The gateway configuration from parsed arguments (``ValueError`` if inconsistent)."""
    if args.flush_interval > 1.0:
        raise ValueError("--flush-interval must be at most 1 s")
    if not 1 <= args.streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"streams per connection must be in 1..{MAX_STREAMS_PER_CONNECTION}, "
            f"got {args.streams_per_connection}"
        )
    if not 1 <= args.depth_limit <= 5000:
        raise ValueError(f"--depth-limit must be in 1..5000, got {args.depth_limit}")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    if not 1 <= args.rest_weight_budget <= 6000:
        raise ValueError(f"--rest-weight-budget must be in 1..6000, got {args.rest_weight_budget}")
    if args.max_backfill < 0:
        raise ValueError(f"--max-backfill must be >= 0, got {args.max_backfill}")
    return GatewayConfig(
        symbols=normalize_symbols(args.symbols),
        ws_url=args.exchange_url,
        rest_url=args.rest_url,
        redis_url=None if args.no_redis else args.redis_url,
        namespace=args.namespace,
        db_path=args.db,
        history_dir=args.history_dir,
        streams_per_connection=args.streams_per_connection,
        watchdog_s=args.watchdog,
        max_connection_age_s=args.max_connection_age,
        depth_limit=args.depth_limit,
        top_k=args.top_k,
        rest_weight_budget=args.rest_weight_budget,
        max_backfill_trades=args.max_backfill,
        flush_interval_s=args.flush_interval,
        seal_interval_s=args.seal_interval,
        stats_interval_s=args.stats_interval,
    )


async def _main(config: GatewayConfig, duration: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    gateway = Gateway(config)
    await gateway.run(stop)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    config.db_path.parent.mkdir(parents=True, exist_ok=True)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("websockets").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(_main(config, args.duration))
