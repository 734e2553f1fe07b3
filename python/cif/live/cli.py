"""``cif live`` / ``python -m cif.live``: the live pipeline, in one asyncio loop.

Components (``--components``, default all of them):

- ``ingest``: the gateway, Binance (or the simulator) into Redis Streams and DuckDB;
- ``features``: the feature processor, ``trades:{sym}`` + ``book:{sym}`` into
  ``features:{sym}`` (see :mod:`cif.features.processor`). It needs Redis: with
  ``--no-redis`` and no explicit ``--components`` only ``ingest`` runs.

Run them together (the default), or each alone, e.g. ``--components features`` on other
hosts: several feature processors share the symbols through per-symbol leases (each given
its ``--symbols``; a symbol is owned by one process at a time, the others stand by and take
over when its lease expires).

Every flag has a ``CIF_*`` environment variable as its default (flag wins), e.g.
``CIF_SYMBOLS=btcusdt,ethusdt``, ``CIF_EXCHANGE_URL``, ``CIF_REST_URL``, ``CIF_REDIS_URL``,
``CIF_DB``, ``CIF_HISTORY_DIR``, ``CIF_COMPONENTS``, ``CIF_FEATURE_WINDOWS``,
``CIF_DEPTH_LEVELS``, ``CIF_EWMA_HALF_LIFE``, ``CIF_EMIT_ON_BOOK``,
``CIF_CHECKPOINT_INTERVAL_S``, ``CIF_CHECKPOINT_EVENTS``, ``CIF_LEASE_TTL_S``,
``CIF_CONSUMER``. Stops cleanly on SIGINT/SIGTERM (flushing DuckDB and Redis, checkpointing
the features and releasing their leases); ``--duration`` stops it after that many seconds
(demos and measurements).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from cif.ingest.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    MAX_STREAMS_PER_CONNECTION,
    normalize_symbols,
)
from cif.ingest.gateway import Gateway, GatewayConfig, _redact

if TYPE_CHECKING:
    from cif.features.processor import ProcessorConfig

log = logging.getLogger("cif.live")

#: Component names of ``--components``, in start order.
COMPONENTS = ("ingest", "features")


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
    feat = parser.add_argument_group("features")
    feat.add_argument(
        "--components",
        default=_env("COMPONENTS", ""),
        help="comma list of components to run: ingest, features (default: all of them)",
    )
    feat.add_argument(
        "--feature-windows",
        default=_env("FEATURE_WINDOWS", "1s,10s,60s,100t"),
        help="feature windows: times (500ms, 1s, 1m) and trade counts (100t)",
    )
    feat.add_argument(
        "--depth-levels",
        default=_env("DEPTH_LEVELS", "5,10"),
        help="book levels of the depth-imbalance features (default 5,10)",
    )
    feat.add_argument(
        "--ewma-half-life",
        default=_env("EWMA_HALF_LIFE", "10s"),
        help="half-life of ewma_vol, event time (default 10s)",
    )
    feat.add_argument(
        "--emit-on-book",
        action="store_true",
        default=_env("EMIT_ON_BOOK", "").lower() in ("1", "true", "yes"),
        help="emit a feature row after every book event too, not only after trades",
    )
    feat.add_argument(
        "--checkpoint-interval",
        type=_positive,
        default=float(_env("CHECKPOINT_INTERVAL_S", "1")),
        help="seconds between feature checkpoints; input is acked only with one (default 1)",
    )
    feat.add_argument(
        "--checkpoint-events",
        type=int,
        default=int(_env("CHECKPOINT_EVENTS", "100000")),
        help="also checkpoint after this many events (default 100000)",
    )
    feat.add_argument(
        "--lease-ttl",
        type=_positive,
        default=float(_env("LEASE_TTL_S", "10")),
        help="seconds a symbol's lease outlives its owner (failover time; default 10)",
    )
    feat.add_argument(
        "--consumer",
        default=_env("CONSUMER", ""),
        help="consumer name in the cif-features group (default: host:pid:random)",
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


def parse_components(text: str, no_redis: bool) -> list[str]:
    """The components to run, in start order (``ValueError`` on an unknown name)."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        # The default is everything that can run: features need Redis.
        return ["ingest"] if no_redis else list(COMPONENTS)
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise ValueError(
            f"unknown component(s) {','.join(unknown)} in --components; "
            f"choose from {','.join(COMPONENTS)}"
        )
    if no_redis and "features" in names:
        raise ValueError("the features component needs Redis: drop --no-redis")
    return [c for c in COMPONENTS if c in names]


def build_processor_config(args: argparse.Namespace) -> ProcessorConfig:
    """The feature processor's configuration (``ValueError`` if inconsistent)."""
    # Imported here: ``--components ingest`` starts without the feature stack.
    from cif.features.processor import (
        ProcessorConfig,
        parse_duration_ms,
        parse_levels,
        parse_windows,
    )

    try:
        time_windows_ms, count_windows = parse_windows(args.feature_windows)
    except ValueError as exc:
        raise ValueError(f"invalid --feature-windows: {exc}") from None
    try:
        depth_levels = parse_levels(args.depth_levels)
    except ValueError as exc:
        raise ValueError(f"invalid --depth-levels: {exc}") from None
    try:
        half_life_ms = parse_duration_ms(args.ewma_half_life)
    except ValueError as exc:
        raise ValueError(f"invalid --ewma-half-life: {exc}") from None
    if args.checkpoint_events < 1:
        raise ValueError(f"--checkpoint-events must be >= 1, got {args.checkpoint_events}")
    if args.lease_ttl < 0.5:
        raise ValueError(f"--lease-ttl must be at least 0.5 s, got {args.lease_ttl}")
    consumer = args.consumer.strip() or None
    if consumer is not None and any(c.isspace() for c in consumer):
        raise ValueError(f"--consumer must not contain spaces, got {consumer!r}")
    config = ProcessorConfig(
        symbols=normalize_symbols(args.symbols),
        redis_url=args.redis_url,
        namespace=args.namespace,
        time_windows_ms=time_windows_ms,
        count_windows=count_windows,
        depth_levels=depth_levels,
        ewma_half_life_ms=half_life_ms,
        emit_on_book=args.emit_on_book,
        checkpoint_interval_s=args.checkpoint_interval,
        checkpoint_events=args.checkpoint_events,
        lease_ttl_s=args.lease_ttl,
        consumer=consumer,
        stats_interval_s=args.stats_interval,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise ValueError(f"invalid feature settings: {exc}") from None
    return config


async def _main(
    gateway_config: GatewayConfig | None,
    processor_config: ProcessorConfig | None,
    duration: float | None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    runs = []
    if gateway_config is not None:
        runs.append(Gateway(gateway_config).run(stop))
    if processor_config is not None:
        from cif.features.processor import FeatureProcessor

        log.info("features: redis %s", _redact(processor_config.redis_url))
        runs.append(FeatureProcessor(processor_config).run(stop))
    results = await asyncio.gather(*runs, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    for r in failed:
        log.error("component failed: %r", r, exc_info=r)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    try:
        components = parse_components(args.components, args.no_redis)
        gateway_config = build_config(args) if "ingest" in components else None
        processor_config = build_processor_config(args) if "features" in components else None
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("components: %s", ",".join(components))
    if gateway_config is not None:
        gateway_config.db_path.parent.mkdir(parents=True, exist_ok=True)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("websockets").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(_main(gateway_config, processor_config, args.duration))
