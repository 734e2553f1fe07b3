"""Settings shared by every command: ``CIF_*`` environment defaults, flag value parsers and
the redaction of secrets in URLs (one definition, so every command reads and checks its
settings, and keeps passwords out of its logs, the same way)."""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit, urlunsplit


def env(name: str, default: str) -> str:
    """``$CIF_<name>``, or ``default`` when it is not set (flags override both)."""
    return os.environ.get(f"CIF_{name}", default)


def positive(text: str) -> float:
    """A flag value that must be a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def positive_int(text: str) -> int:
    """A flag value that must be a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def port(text: str) -> int:
    """A TCP port, 0 meaning any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def redact_url(url: str) -> str:
    """``url`` without its password (for logs)."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def add_symbols_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--symbols`` (``CIF_SYMBOLS``, default btcusdt), as every stage reads it."""
    parser.add_argument(
        "--symbols",
        default=env("SYMBOLS", "btcusdt"),
        help="comma-separated symbols (default: $CIF_SYMBOLS or btcusdt)",
    )


def add_listen_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, prefix: str = ""
) -> None:
    """The API's ``--<prefix>host``, ``--<prefix>port`` (``CIF_API_HOST``/``CIF_API_PORT``,
    default 127.0.0.1:8000) and ``--<prefix>ws-compression`` (``CIF_WS_COMPRESSION``, default
    off): ``cif api`` has them bare, ``cif live`` as ``--api-*``."""
    parser.add_argument(
        f"--{prefix}host",
        default=env("API_HOST", "127.0.0.1"),
        help="address the API listens on (default: $CIF_API_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        f"--{prefix}port",
        type=port,
        default=env("API_PORT", "8000"),
        help="API port, 0 = any free port (default: $CIF_API_PORT or 8000)",
    )
    parser.add_argument(
        f"--{prefix}ws-compression",
        choices=("off", "deflate"),
        default=env("WS_COMPRESSION", "off"),
        help="offer permessage-deflate on the WebSocket (default: $CIF_WS_COMPRESSION or off: "
        "the pushed messages are small, so compressing each one costs both ends more CPU "
        "and latency than it saves bandwidth on a local or fast link)",
    )
