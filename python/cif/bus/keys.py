"""Redis key names, Redis-Cluster-ready.

Every key of a symbol carries the symbol as a hash tag (``trades:{btcusdt}``), so all of a
symbol's streams live in one cluster slot and a consumer can read trades and book of one
symbol in a single XREAD/XREADGROUP, even on Redis Cluster. The seed's key ``trades:{symbol}``
keeps its spelling: the braces are the hash tag. ``namespace`` prefixes every key (replays
write under ``replay:`` so they never mix with live data).
"""

from __future__ import annotations


def _key(kind: str, symbol: str, namespace: str) -> str:
    sym = symbol.strip().lower()
    if not sym or any(c in sym for c in "{}: \t"):
        raise ValueError(f"invalid symbol for a stream key: {symbol!r}")
    prefix = f"{namespace}:" if namespace else ""
    return f"{prefix}{kind}:{{{sym}}}"


def trades_key(symbol: str, namespace: str = "") -> str:
    """Normalized trades of ``symbol``: ``trades:{btcusdt}``."""
    return _key("trades", symbol, namespace)


def book_key(symbol: str, namespace: str = "") -> str:
    """Book events (L1 changes with top-k depth) of ``symbol``: ``book:{btcusdt}``."""
    return _key("book", symbol, namespace)


def features_key(symbol: str, namespace: str = "") -> str:
    """Feature rows of ``symbol``: ``features:{btcusdt}``."""
    return _key("features", symbol, namespace)


def forecasts_key(symbol: str, namespace: str = "") -> str:
    """Forecasts of ``symbol``: ``forecasts:{btcusdt}``."""
    return _key("forecasts", symbol, namespace)


def eval_key(symbol: str, namespace: str = "") -> str:
    """The forecaster's evaluation summary of ``symbol`` (a JSON string): ``eval:{btcusdt}``."""
    return _key("eval", symbol, namespace)


def digest_key(kind: str, symbol: str, namespace: str = "") -> str:
    """Where a live run records its output digest (``kind`` "features" or "forecasts"):
    ``digest:features:{btcusdt}``, a hash with ``count``, ``digest``, ``first_seq``,
    ``last_seq`` and the resumable ``state`` (see :mod:`cif.digest`)."""
    if kind not in ("features", "forecasts"):
        raise ValueError(f"digest kind must be 'features' or 'forecasts', got {kind!r}")
    return _key(f"digest:{kind}", symbol, namespace)
