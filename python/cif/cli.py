"""The ``cif`` console command: one subcommand per stage of the data flow.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; ``python -m cif.<name>`` runs the same code through ``main``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: subcommand name -> (module, one-line help). Modules are imported only when listed here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "live": ("cif.live.cli", "run the live stack: ingest, features, forecasts and the API"),
    "import": ("cif.store.importer", "load capture files into DuckDB"),
    "sim": ("cif.sim.cli", "run the Binance-compatible exchange simulator"),
    "train": ("cif.forecast.train", "fit a forecast model on stored history (walk-forward)"),
    "replay": ("cif.replay.cli", "replay stored history: offline, into Redis, or verify"),
    "api": ("cif.api.server", "serve forecasts, features and trades over REST and WebSocket"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``cif`` parser; ``only`` imports just that subcommand's module (a subcommand then
    starts without importing, or depending on, the others)."""
    parser = argparse.ArgumentParser(
        prog="cif", description="Crypto Impact Forecaster: Binance ticks to forecasts."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    # Kept for subcommands that start themselves again in child processes (cif live).
    args.cli_argv = argv
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        return 130


def module_main(name: str) -> None:
    """Entry for ``python -m cif.<name>``: the same as ``cif <name> ...``."""
    sys.exit(main([name, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
