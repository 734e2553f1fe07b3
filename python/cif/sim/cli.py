"""``cif sim``: run the Binance-compatible exchange simulator on 127.0.0.1.

Two sources: ``--capture FILE [FILE ...]`` replays recorded captures byte for byte, or
``--synthetic --symbols btcusdt,ethusdt --rate N`` runs the seeded synthetic market.
``--speed X`` scales the pace (``max``: as fast as the clients read). Fault-injection flags
are grouped under "faults". The served URLs are printed on startup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from cif import event_loop
from cif.event_loop import add_event_loop_argument
from cif.sim.faults import FaultConfig
from cif.sim.replay import ReplaySource
from cif.sim.server import ServerConfig, SimServer
from cif.sim.source import MarketSource
from cif.sim.synthetic import SyntheticSource

log = logging.getLogger("cif.sim")


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive number or 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a positive number or 'max'")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_event_loop_argument(parser)
    src = parser.add_argument_group("source (one of)")
    mode = src.add_mutually_exclusive_group(required=True)
    mode.add_argument("--capture", nargs="+", metavar="FILE", help="capture files to replay")
    mode.add_argument("--synthetic", action="store_true", help="run the synthetic market")
    src.add_argument("--symbols", default="btcusdt,ethusdt", help="synthetic symbols (csv)")
    src.add_argument(
        "--rate", type=float, default=100.0, help="synthetic trades per second, all symbols"
    )
    src.add_argument("--seed", type=int, default=1, help="synthetic market seed")
    src.add_argument(
        "--start-time-ms",
        type=int,
        default=None,
        help="synthetic event clock origin (default: now); fix it for reproducible output",
    )
    src.add_argument(
        "--speed", type=_speed, default=1.0, help="pace multiplier, or 'max' (default 1)"
    )
    src.add_argument(
        "--replay-start",
        choices=["subscribe", "now"],
        default="subscribe",
        help="start the replay at the first subscription (default) or immediately",
    )
    src.add_argument(
        "--retain-trades", type=int, default=1_000_000, help="trades kept for REST per symbol"
    )

    net = parser.add_argument_group("protocol")
    net.add_argument("--port", type=int, default=9443, help="TCP port (0: any free port)")
    net.add_argument("--ping-interval", type=float, default=20.0, help="server ping every S s")
    net.add_argument("--pong-timeout", type=float, default=60.0, help="disconnect after S s")
    net.add_argument("--max-incoming", type=int, default=5, help="client messages per second")
    net.add_argument("--weight-limit", type=int, default=6000, help="REST weight per minute")

    flt = parser.add_argument_group("faults (each injection is counted in the log)")
    flt.add_argument("--fault-close-every", type=float, metavar="S", help="close after S s")
    flt.add_argument("--fault-skip-trade-every", type=int, metavar="N", help="drop every Nth trade")
    flt.add_argument(
        "--fault-break-depth-every", type=int, metavar="N", help="drop every Nth depth diff"
    )
    flt.add_argument(
        "--fault-malformed-every", type=int, metavar="N", help="malformed frame every N messages"
    )
    flt.add_argument(
        "--fault-shutdown-after", type=float, metavar="S", help="serverShutdown after S s"
    )
    flt.add_argument(
        "--fault-shutdown-delay", type=float, default=1.0, metavar="S", help="then close after S"
    )
    flt.add_argument(
        "--fault-snapshot-delay", type=float, default=0.0, metavar="S", help="delay depth REST"
    )
    flt.add_argument(
        "--fault-snapshot-fail-every", type=int, metavar="N", help="fail every Nth depth REST"
    )
    flt.add_argument("--fault-stall-after", type=float, metavar="S", help="stop data after S s")
    flt.add_argument("--fault-stall-for", type=float, metavar="S", help="stall length (inf)")


def build_source(args: argparse.Namespace) -> MarketSource:
    """The market source the arguments ask for."""
    if args.capture:
        return ReplaySource(
            args.capture,
            speed=args.speed,
            start_on_subscribe=args.replay_start == "subscribe",
            retain_trades=args.retain_trades,
        )
    symbols = [s.strip().lower() for s in args.symbols.split(",") if s.strip()]
    return SyntheticSource(
        symbols,
        rate=args.rate,
        seed=args.seed,
        speed=args.speed,
        start_ms=args.start_time_ms,
        retain_trades=args.retain_trades,
    )


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Server and fault settings from the arguments."""
    faults = FaultConfig(
        close_every_s=args.fault_close_every,
        skip_trade_every=args.fault_skip_trade_every,
        break_depth_every=args.fault_break_depth_every,
        malformed_every=args.fault_malformed_every,
        shutdown_after_s=args.fault_shutdown_after,
        shutdown_delay_s=args.fault_shutdown_delay,
        snapshot_delay_s=args.fault_snapshot_delay,
        snapshot_fail_every=args.fault_snapshot_fail_every,
        stall_after_s=args.fault_stall_after,
        stall_for_s=args.fault_stall_for,
    )
    return ServerConfig(
        port=args.port,
        ping_interval_s=args.ping_interval,
        pong_timeout_s=args.pong_timeout,
        max_incoming_per_s=args.max_incoming,
        weight_limit=args.weight_limit,
        faults=faults,
    )


async def _serve(args: argparse.Namespace) -> int:
    try:
        source = build_source(args)
        config = build_config(args)
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    server = SimServer(source, config)
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot listen on port %d: %s", config.port, exc)
        return 2
    print(f"cif sim: {source.describe()}", flush=True)
    for url in server.urls():
        print(f"  {url}", flush=True)
    if config.faults.enabled():
        print(f"  faults: {', '.join(config.faults.enabled())}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    print(f"cif sim: stopped; faults: {server.fault_log.summary()}", file=sys.stderr, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # websockets logs every HTTP request at INFO; REST polling would flood the log.
        logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        event_loop.loop_factory(args.event_loop)
    except ValueError as exc:
        print(f"cif sim: cannot start: {exc}", file=sys.stderr)
        return 2
    return event_loop.run(_serve(args), args.event_loop)
