"""Driving the synthetic market: event clock, output pacing, publication into the hub.

The market advances in fixed event-time steps (10 ms by default). With ``speed`` set, the
wall clock is used only to pace output: after each step the driver sleeps until the wall
time that corresponds to the new event time (``speed`` times faster than real time); if
the machine cannot keep up, it runs behind and says so in the log, but the content of the
market is unaffected. With ``speed=None`` (``--speed max``) it waits for a subscriber and
then produces as fast as the slowest subscriber reads (the hub's backpressure).

Message kinds nobody subscribes to are not formatted, so ``trade``-only clients get the
highest rate.
"""

from __future__ import annotations

import asyncio
import logging
import time

from cif.sim.market import MarketParams, SyntheticMarket
from cif.sim.streams import Hub
from cif.sim.symbols import SymbolSpec, spec_for
from cif.sim.trades import TradeStore

log = logging.getLogger("cif.sim.synthetic")


class SyntheticSource:
    """A ``MarketSource`` over a seeded ``SyntheticMarket``."""

    def __init__(
        self,
        symbols: list[str],
        rate: float,
        seed: int = 1,
        speed: float | None = 1.0,
        start_ms: int | None = None,
        params: MarketParams | None = None,
        retain_trades: int = 1_000_000,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.specs: dict[str, SymbolSpec] = {s: spec_for(s) for s in symbols}
        self.rate = rate
        self.seed = seed
        self.speed = speed
        start = int(time.time() * 1000) if start_ms is None else start_ms
        self.market = SyntheticMarket(
            list(self.specs.values()), rate, seed, start, params, retain_trades
        )
        self.steps = 0
        self.trades_published = 0

    def now_ms(self) -> int:
        return self.market.books[next(iter(self.market.books))].now_ms

    def depth_snapshot(self, symbol: str, limit: int) -> bytes:
        return self.market.books[symbol].depth_snapshot(limit)

    def trade_store(self, symbol: str) -> TradeStore:
        return self.market.books[symbol].trade_store

    def describe(self) -> str:
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        return (
            f"synthetic market {','.join(self.specs)} at {self.rate:g} trades/s "
            f"(all symbols), seed {self.seed}, speed {speed}"
        )

    def step(self, hub: Hub) -> int:
        """Advance every symbol by one step and publish; returns the trades generated."""
        n_trades = 0
        for name, book in self.market.books.items():
            trade = f"{name}@trade"
            agg = f"{name}@aggTrade"
            ticker = f"{name}@bookTicker"
            before = book.next_trade_id
            out = book.step(
                hub.has_subscribers(trade), hub.has_subscribers(agg), hub.has_subscribers(ticker)
            )
            n_trades += book.next_trade_id - before
            if out.trades:
                hub.publish(trade, out.trades)
            if out.agg_trades:
                hub.publish(agg, out.agg_trades)
            if out.book_tickers:
                hub.publish(ticker, out.book_tickers)
            if out.depth is not None:
                hub.publish(f"{name}@depth@100ms", [out.depth])
        self.steps += 1
        self.trades_published += n_trades
        return n_trades

    async def run(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        step_s = self.market.params.step_ms / 1000.0
        if self.speed is None:
            await hub.wait_for_readers()
        wall0 = loop.time()
        steps0 = self.steps
        last_warn = wall0
        while True:
            if self.speed is None:
                await hub.wait_for_readers()
                await hub.wait_for_room()
                self.step(hub)
                # Let writers and REST handlers run between steps.
                await asyncio.sleep(0)
                continue
            self.step(hub)
            target = wall0 + (self.steps - steps0) * step_s / self.speed
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                if -delay > 1.0 and loop.time() - last_warn > 10.0:
                    last_warn = loop.time()
                    log.warning(
                        "synthetic market running %.1f s behind its pace (CPU-bound)", -delay
                    )
                await asyncio.sleep(0)
