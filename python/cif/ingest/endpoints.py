"""Binance spot endpoints and the streams cif subscribes to per symbol.

The defaults are Binance's public spot market-data endpoints; ``--exchange-url`` and
``--rest-url`` point ingestion at the simulator (or a proxy) with the same paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

DEFAULT_WS_URL = "wss://stream.binance.com:9443"
DEFAULT_REST_URL = "https://api.binance.com"

#: Binance's limit of streams on one connection.
MAX_STREAMS_PER_CONNECTION = 1024

#: Streams in the connection URL up to this length; beyond it they are sent as SUBSCRIBE
#: requests (servers refuse very long request lines).
MAX_URL_CHARS = 4000

#: The per-symbol streams: trades, 100 ms depth diffs, and best bid/ask.
STREAM_SUFFIXES: tuple[str, ...] = ("@trade", "@depth@100ms", "@bookTicker")


#: Binance's spot request-weight limit per IP and minute.
WEIGHT_LIMIT_1M = 6000
#: Weight of ``GET /api/v3/historicalTrades``.
HISTORICAL_TRADES_WEIGHT = 25


def depth_weight(limit: int) -> int:
    """Binance's weight of ``GET /api/v3/depth`` for ``limit`` levels."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def normalize_symbols(text: str | Sequence[str]) -> list[str]:
    """``"BTCUSDT, ethusdt"`` -> ``["btcusdt", "ethusdt"]``: lower case, deduplicated, in order.

    Raises ``ValueError`` on an empty list or a symbol with characters Binance never uses.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        sym = raw.strip().lower()
        if not sym:
            continue
        if not sym.isalnum() or not sym.isascii() or len(sym) > 20:
            raise ValueError(f"invalid symbol {raw!r}: expected letters and digits, e.g. btcusdt")
        if sym not in out:
            out.append(sym)
    if not out:
        raise ValueError("no symbols given")
    return out


def streams_for(symbols: Sequence[str]) -> list[str]:
    """Stream names for ``symbols``, symbol by symbol (``btcusdt@trade``, ...)."""
    return [f"{sym}{suffix}" for sym in symbols for suffix in STREAM_SUFFIXES]


def split_streams(streams: Sequence[str], per_connection: int) -> list[list[str]]:
    """Chunks of at most ``per_connection`` (<= 1024) streams, keeping a symbol's streams
    together when the chunk size allows it (so one connection carries a whole symbol)."""
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"streams per connection must be in 1..{MAX_STREAMS_PER_CONNECTION}")
    group = len(STREAM_SUFFIXES)
    size = per_connection - per_connection % group if per_connection >= group else per_connection
    return [list(streams[i : i + size]) for i in range(0, len(streams), size)]


def combined_url(base: str, streams: Sequence[str]) -> tuple[str, list[str]]:
    """The combined-stream URL and the streams left to SUBSCRIBE to after connecting."""
    root = base.rstrip("/")
    url = f"{root}/stream?streams=" + "/".join(quote(s, safe="@") for s in streams)
    if len(url) <= MAX_URL_CHARS:
        return url, []
    return f"{root}/stream", list(streams)
