"""``cif replay``: the history back through the feature engine and the model.

Three modes (exactly one):

- ``--offline``: in-process, no Redis; rows and a run record to ``--out`` (Parquet or DuckDB).
- ``--redis``: republish the event log into Redis (namespace ``replay`` by default) tick by
  tick, paced by event time (``--speed``) or a fixed ``--delay-ms``; the normal processor
  and forecaster with ``--namespace replay`` consume it.
- ``--verify``: recompute offline and compare with the digest a live run recorded in Redis;
  exit 0 when identical, 1 when divergent (naming the first divergent row and feature).

The feature settings are the processor's flags, parsed by its own parsers, so a replay runs
the configuration the live run ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cif.features.processor import parse_duration_ms, parse_levels, parse_windows
from cif.forecast.models import Model, default_model, load_model
from cif.replay.offline import connect, replay_symbol
from cif.replay.output import check_out, new_run, record_runs, write_rows
from cif.replay.progress import Progress

log = logging.getLogger(__name__)

REPLAY_NAMESPACE = "replay"


def parse_time_ms(text: str) -> int:
    """``2024-08-08`` (UTC midnight), an ISO date-time (UTC unless it says otherwise) or
    epoch milliseconds."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (2024-08-08, 2024-08-08T23:55:00, or epoch ms)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--offline", action="store_true", help="replay in-process, no Redis")
    mode.add_argument("--redis", action="store_true", help="republish the event log to Redis")
    mode.add_argument(
        "--verify", action="store_true", help="compare with the digest a live run recorded"
    )
    src = parser.add_argument_group("history")
    src.add_argument("--db", type=Path, help="DuckDB history file (cif import / cif live --db)")
    src.add_argument("--history-dir", type=Path, help="sealed Parquet segments (cif live)")
    src.add_argument("--symbols", default="btcusdt", help="comma list (default btcusdt)")
    src.add_argument("--from", dest="from_ms", type=parse_time_ms, help="start (incl.)")
    src.add_argument("--to", dest="to_ms", type=parse_time_ms, help="end (excl.)")
    feat = parser.add_argument_group("features and model (as the live run)")
    feat.add_argument("--feature-windows", default="1s,10s,60s,100t")
    feat.add_argument("--depth-levels", default="5,10")
    feat.add_argument("--ewma-half-life", default="10s")
    feat.add_argument("--emit-on-book", action="store_true")
    feat.add_argument("--model", type=Path, help="model artifact (default: the seed heuristic)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, help="FILE.parquet or FILE.duckdb (rows + runs)")
    out.add_argument("--quiet", action="store_true", help="no progress, no summary")
    rds = parser.add_argument_group("redis (--redis, --verify)")
    rds.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    rds.add_argument(
        "--namespace",
        default=None,
        help=f"key prefix (--redis: default {REPLAY_NAMESPACE!r}; --verify: default '')",
    )
    rds.add_argument(
        "--i-mean-live",
        action="store_true",
        help="allow --redis to write the live key names (--namespace '')",
    )
    rds.add_argument("--speed", default="max", help="1, 10, ... x event time, or max")
    rds.add_argument("--delay-ms", type=float, help="fixed delay between events instead")
    rds.add_argument(
        "--reset",
        action="store_true",
        help="--redis: delete the namespace's keys of the symbols first (never live keys)",
    )


def feature_settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The engine settings from the processor's flags (its parsers, its error messages)."""
    time_ms, counts = parse_windows(args.feature_windows)
    return {
        "time_windows_ms": time_ms,
        "count_windows": counts,
        "depth_levels": parse_levels(args.depth_levels),
        "ewma_half_life_ms": parse_duration_ms(args.ewma_half_life),
        "emit_on_book": bool(args.emit_on_book),
    }


def _model(args: argparse.Namespace) -> Model:
    return default_model() if args.model is None else load_model(args.model)


def _symbols(args: argparse.Namespace) -> list[str]:
    return [s.strip().lower() for s in args.symbols.split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    try:
        if (args.db is None) == (args.history_dir is None):
            raise ValueError("give exactly one of --db or --history-dir")
        settings = feature_settings_from_args(args)
        symbols = _symbols(args)
        if not symbols:
            raise ValueError("no --symbols")
        if args.out is not None:
            check_out(args.out)
        if args.offline:
            if args.out is None:
                raise ValueError("--offline needs --out FILE.parquet|FILE.duckdb")
            return run_offline(args, symbols, settings)
        if args.redis:
            return run_republish(args, symbols)
        return run_verify(args, symbols, settings)
    except (ValueError, FileNotFoundError, OSError) as exc:
        log.error("%s", exc)
        return 2


def run_offline(args: argparse.Namespace, symbols: list[str], settings: dict[str, Any]) -> int:
    from cif.replay.offline import concat_frames

    model = _model(args)
    progress = Progress(len(symbols), "replay", quiet=args.quiet)
    frames = []
    records = []
    with connect(args.db, args.history_dir) as con:
        for sym in symbols:
            progress.step(sym)
            result = replay_symbol(
                con, sym, args.from_ms, args.to_ms, model=model, settings=settings
            )
            frames.append((sym, result.frame()))
            rec = result.record()
            rec["source"] = str(args.db or args.history_dir)
            rec["divergence"] = None
            records.append(rec)
    progress.done()
    runs = new_run("offline", records)
    write_rows(args.out, concat_frames(frames), runs[0]["run_id"])
    where = record_runs(args.out, runs)
    if not args.quiet:
        for r in runs:
            t = r["timings_s"]
            compute = t["features"] or 1e-9
            print(
                f"{r['symbol']}: {r['events']} events -> {r['feature_rows']} rows, "
                f"{r['forecast_rows']} forecasts; features {r['features_digest'][:16]}, "
                f"forecasts {r['forecasts_digest'][:16]}; load {t['load']:.2f}s, features "
                f"{t['features']:.3f}s ({r['events'] / compute:,.0f} events/s)"
            )
        print(f"rows -> {args.out}; run {runs[0]['run_id']} -> {where}")
    return 0


def run_republish(args: argparse.Namespace, symbols: list[str]) -> int:
    from cif.replay.republish import Pacing, republish

    namespace = REPLAY_NAMESPACE if args.namespace is None else args.namespace
    if namespace == "" and not args.i_mean_live:
        raise ValueError("--namespace '' writes the live streams: add --i-mean-live")
    if namespace == "" and args.reset:
        raise ValueError("--reset never deletes live keys")
    pacing = Pacing.parse(args.speed, args.delay_ms)
    with connect(args.db, args.history_dir) as con:
        stats = asyncio.run(
            republish(
                con,
                symbols,
                args.redis_url,
                namespace,
                pacing=pacing,
                from_ms=args.from_ms,
                to_ms=args.to_ms,
                reset=args.reset,
                progress=not args.quiet,
            )
        )
    if not args.quiet:
        print(json.dumps(stats, sort_keys=True))
    return 0


def run_verify(args: argparse.Namespace, symbols: list[str], settings: dict[str, Any]) -> int:
    from cif.replay.verify import verify_symbol

    namespace = "" if args.namespace is None else args.namespace
    model = _model(args)
    records = []
    worst = 0
    with connect(args.db, args.history_dir) as con:
        for sym in symbols:
            rep = verify_symbol(
                con,
                sym,
                args.redis_url,
                namespace,
                model=model,
                settings=settings,
                from_ms=args.from_ms,
                to_ms=args.to_ms,
            )
            records.append(rep.record)
            if not args.quiet or not rep.identical:
                print(rep.message, file=sys.stdout if rep.identical else sys.stderr)
            worst = max(worst, 0 if rep.identical else 1)
    if args.out is not None:
        runs = new_run("verify", records)
        record_runs(args.out, runs)
    return worst
