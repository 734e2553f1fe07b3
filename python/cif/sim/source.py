"""The interface between a market source (capture replay or synthetic engine) and the server.

The server only needs, per symbol, a depth snapshot consistent with what has been
published, the retained trades, and the symbol's filters; plus the source's clock and a
coroutine that publishes market data into the hub until it is done.
"""

from __future__ import annotations

from typing import Protocol

from cif.sim.streams import Hub
from cif.sim.symbols import SymbolSpec
from cif.sim.trades import TradeStore


class MarketSource(Protocol):
    """What ``cif.sim.server`` serves. ``specs`` is keyed by lowercase symbol."""

    specs: dict[str, SymbolSpec]

    def now_ms(self) -> int:
        """The source's current event time (what ``/api/v3/time`` reports)."""
        ...

    def depth_snapshot(self, symbol: str, limit: int) -> bytes:
        """``GET /api/v3/depth`` response body for a served lowercase symbol."""
        ...

    def trade_store(self, symbol: str) -> TradeStore:
        """Trades published so far (retained window) for a served lowercase symbol."""
        ...

    def describe(self) -> str:
        """One line for the startup banner."""
        ...

    async def run(self, hub: Hub) -> None:
        """Publish market data into ``hub``; returns when the source is exhausted."""
        ...
