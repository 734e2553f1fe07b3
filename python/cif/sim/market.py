"""Synthetic market: a seeded limit order book with a matching engine, one per symbol.

The model is a discretised zero-intelligence order-flow model (in the spirit of Smith,
Farmer et al., 2003) with one addition, persistent taker flow:

* limit orders arrive on either side, mostly at or just behind the best price (distance
  drawn from a geometric law), sometimes inside the spread when it is wider than a tick;
* cancels remove part or all of a level near the top of the book;
* marketable (taker) orders sweep the opposite side; the side of successive taker orders
  is persistent (a two-state Markov chain), as order flow is in real markets.

Price formation then comes only from order flow: a price level moves when its queue is
depleted, so the thinner side of the touch is the one likely to give way and the queue
imbalance has predictive power for the next mid-price move, as in real books.

Everything happens on an event clock the caller advances in fixed steps (``step_ms``);
the wall clock never enters. For each step, the number of each kind of event is drawn from
a Poisson law and the per-event random numbers are drawn in bulk with numpy, then the
events are applied one by one to the book. Prices are integer ticks, quantities integer
lots (the symbol's step size). Each book change gets the next update id, so the depth
diffs emitted every ``depth_interval_ms`` chain ``U == previous u + 1``, every trade gets
the next trade id, and a bookTicker is produced whenever the best level changes.

Messages are formatted with f-strings rather than ``json.dumps``: at 50,000 trades per
second the serialiser is a large part of the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cif.sim.fixed import SCALE
from cif.sim.symbols import SymbolSpec
from cif.sim.trades import TradeStore


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Tunable constants of the order-flow model (defaults give a BTC-like book)."""

    step_ms: int = 10
    depth_interval_ms: int = 100
    #: probability that a taker order has the same side as the previous one.
    sign_persistence: float = 0.75
    #: limit-order arrivals and cancels per taker order.
    adds_per_taker: float = 3.0
    cancels_per_taker: float = 2.0
    #: geometric parameter of the distance (ticks) behind the best for adds and cancels.
    add_depth_p: float = 0.3
    cancel_depth_p: float = 0.35
    #: probability that an add lands inside the spread when the spread is > 1 tick.
    inside_spread_p: float = 0.95
    #: median sizes in lots (step sizes) and lognormal dispersion.
    taker_median_lots: float = 300.0
    add_median_lots: float = 400.0
    size_sigma: float = 1.0
    #: a fill at one level is split over 1 + Geometric(p) - 1 maker orders.
    maker_split_p: float = 0.55
    #: initial book: levels on each side, median level size in lots.
    initial_levels: int = 2000
    initial_median_lots: float = 1500.0
    #: the book is a dense array of this many ticks either side of the starting price (a
    #: random walk at 200,000 trades/s needs hours to wander ~20,000 ticks); orders beyond
    #: it are ignored, so a side reaching the edge would stop trading.
    half_window_ticks: int = 1 << 17


@dataclass(slots=True)
class StepOutput:
    """Messages produced by one step, per stream kind, each list in generation order."""

    trades: list[bytes] = field(default_factory=list)
    agg_trades: list[bytes] = field(default_factory=list)
    book_tickers: list[bytes] = field(default_factory=list)
    depth: bytes | None = None


class SymbolMarket:
    """The order book and matching engine of one symbol.

    ``rate`` is the target number of trades per second of event time. The engine keeps a
    running estimate of trades per taker order to turn that into a taker-order rate.
    """

    def __init__(
        self,
        spec: SymbolSpec,
        rate: float,
        seed: int,
        start_ms: int,
        params: MarketParams | None = None,
        retain_trades: int = 1_000_000,
    ) -> None:
        self.spec = spec
        self.p = params or MarketParams()
        if self.p.depth_interval_ms % self.p.step_ms:
            raise ValueError("depth_interval_ms must be a multiple of step_ms")
        self.rate = float(rate)
        self.rng = np.random.default_rng(seed)
        self.now_ms = start_ms
        self.symbol = spec.symbol
        self.trade_store = TradeStore(retain_trades)
        # Id bases like the real exchange's (large numbers), derived from the seed so that
        # two symbols do not look alike.
        self.next_trade_id = 1_000_000_000 + int(self.rng.integers(0, 1 << 30))
        self.next_agg_id = 500_000_000 + int(self.rng.integers(0, 1 << 28))
        self.update_id = 10_000_000_000 + int(self.rng.integers(0, 1 << 32))
        self._trades_per_taker = 1.6
        self._taker_sign = 1

        start_tick = spec.start_price8 // spec.tick8
        half = max(self.p.half_window_ticks, 2 * self.p.initial_levels)
        self.lo = start_tick - half
        self.bids: list[int] = [0] * (2 * half)
        self.asks: list[int] = [0] * (2 * half)
        self.bb = start_tick  # best bid tick
        self.ba = start_tick + 1  # best ask tick
        # Extents of ever-populated levels, so snapshot scans stop early.
        self.bid_floor = self.bb
        self.ask_ceiling = self.ba
        self._seed_book()

        self._chg_b: dict[int, int] = {}
        self._chg_a: dict[int, int] = {}
        self._diff_first = self.update_id + 1
        self._last_l1 = self._l1()
        self._next_depth_ms = start_ms + self.p.depth_interval_ms
        self._px_cache: dict[int, str] = {}

    # -- book helpers -------------------------------------------------------------------

    def _seed_book(self) -> None:
        p = self.p
        n = p.initial_levels
        rng = self.rng
        for side in (self.bids, self.asks):
            sizes = np.maximum(1, rng.lognormal(math.log(p.initial_median_lots), 1.0, n))
            # Sparse further away, as real books are: the chance a tick is populated decays.
            keep = rng.random(n) < np.maximum(0.15, np.exp(-np.arange(n) / 400.0))
            keep[:5] = True
            for k in range(n):
                if keep[k]:
                    tick = self.bb - k if side is self.bids else self.ba + k
                    side[tick - self.lo] = int(sizes[k])
        self.bid_floor = self.bb - n
        self.ask_ceiling = self.ba + n

    def _l1(self) -> tuple[int, int, int, int]:
        lo = self.lo
        return (self.bb, self.bids[self.bb - lo], self.ba, self.asks[self.ba - lo])

    def _price(self, tick: int) -> str:
        text = self._px_cache.get(tick)
        if text is None:
            p8 = tick * self.spec.tick8
            text = f"{p8 // SCALE}.{p8 % SCALE:08d}"
            if len(self._px_cache) > 100_000:
                self._px_cache.clear()
            self._px_cache[tick] = text
        return text

    def _qty(self, lots: int) -> str:
        q8 = lots * self.spec.step8
        return f"{q8 // SCALE}.{q8 % SCALE:08d}"

    def best(self) -> tuple[int, int, int, int]:
        """(best bid tick, its lots, best ask tick, its lots)."""
        return self._l1()

    def depth_levels(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``limit`` (tick, lots) levels per side, best first."""
        lo = self.lo
        bids: list[tuple[int, int]] = []
        tick = self.bb
        side = self.bids
        floor = max(self.bid_floor, lo)
        while tick >= floor and len(bids) < limit:
            q = side[tick - lo]
            if q:
                bids.append((tick, q))
            tick -= 1
        asks: list[tuple[int, int]] = []
        tick = self.ba
        side = self.asks
        ceiling = min(self.ask_ceiling, lo + len(side) - 1)
        while tick <= ceiling and len(asks) < limit:
            q = side[tick - lo]
            if q:
                asks.append((tick, q))
            tick += 1
        return bids, asks

    def depth_snapshot(self, limit: int) -> bytes:
        """``GET /api/v3/depth`` body; consistent with the diffs (``lastUpdateId`` = last id)."""
        bids, asks = self.depth_levels(limit)
        b = ",".join(f'["{self._price(t)}","{self._qty(q)}"]' for t, q in bids)
        a = ",".join(f'["{self._price(t)}","{self._qty(q)}"]' for t, q in asks)
        return f'{{"lastUpdateId":{self.update_id},"bids":[{b}],"asks":[{a}]}}'.encode()

    # -- the step -----------------------------------------------------------------------

    def step(self, want_trades: bool, want_agg: bool, want_ticker: bool) -> StepOutput:
        """Advance the event clock by one step and return the messages it produced.

        Unwanted message kinds are not formatted (ids still advance), which is what makes
        high rates affordable when a client reads only some streams.
        """
        p = self.p
        rng = self.rng
        out = StepOutput()
        dt = p.step_ms / 1000.0
        takers_per_step = self.rate * dt / self._trades_per_taker
        n_mkt = int(rng.poisson(takers_per_step))
        n_add = int(rng.poisson(takers_per_step * p.adds_per_taker))
        n_cxl = int(rng.poisson(takers_per_step * p.cancels_per_taker))
        n = n_mkt + n_add + n_cxl
        t0 = self.now_ms
        if n:
            kinds_arr = np.repeat(np.array([0, 1, 2], np.int8), [n_mkt, n_add, n_cxl])
            rng.shuffle(kinds_arr)
            kinds = kinds_arr.tolist()
            u1 = rng.random(n).tolist()
            u2 = rng.random(n).tolist()
            z = np.exp(p.size_sigma * rng.standard_normal(n))
            add_dist = (rng.geometric(p.add_depth_p, n) - 1).tolist()
            cxl_dist = (rng.geometric(p.cancel_depth_p, n) - 1).tolist()
            split = rng.geometric(p.maker_split_p, n).tolist()
            taker_lots = np.maximum(1, (z * p.taker_median_lots).astype(np.int64)).tolist()
            add_lots = np.maximum(1, (z * p.add_median_lots).astype(np.int64)).tolist()
            n_trades = self._run_events(
                t0, kinds, u1, u2, add_dist, cxl_dist, split, taker_lots, add_lots,
                out, want_trades, want_agg, want_ticker,
            )  # fmt: skip
            if n_mkt:
                # Track trades per taker order so the trade rate stays on target.
                self._trades_per_taker += 0.05 * (n_trades / n_mkt - self._trades_per_taker)
                self._trades_per_taker = min(8.0, max(1.0, self._trades_per_taker))
        self.now_ms = t0 + p.step_ms
        if self.now_ms >= self._next_depth_ms:
            self._next_depth_ms += p.depth_interval_ms
            out.depth = self._flush_depth(self.now_ms)
        return out

    def _flush_depth(self, t_ms: int) -> bytes | None:
        if self.update_id < self._diff_first:
            return None
        price = self._price
        qty = self._qty
        b = ",".join(
            f'["{price(t)}","{qty(q)}"]' for t, q in sorted(self._chg_b.items(), reverse=True)
        )
        a = ",".join(f'["{price(t)}","{qty(q)}"]' for t, q in sorted(self._chg_a.items()))
        msg = (
            f'{{"e":"depthUpdate","E":{t_ms},"s":"{self.symbol}","U":{self._diff_first},'
            f'"u":{self.update_id},"b":[{b}],"a":[{a}]}}'
        ).encode()
        self._chg_b.clear()
        self._chg_a.clear()
        self._diff_first = self.update_id + 1
        return msg

    def _run_events(
        self,
        t0: int,
        kinds: list[int],
        u1: list[float],
        u2: list[float],
        add_dist: list[int],
        cxl_dist: list[int],
        split: list[int],
        taker_lots: list[int],
        add_lots: list[int],
        out: StepOutput,
        want_trades: bool,
        want_agg: bool,
        want_ticker: bool,
    ) -> int:
        """Apply one step's events to the book; returns the number of trades."""
        # Hot loop: attributes are pulled into locals, and written back at the end.
        p = self.p
        bids = self.bids
        asks = self.asks
        lo = self.lo
        hi = lo + len(bids) - 1
        bb = self.bb
        ba = self.ba
        uid = self.update_id
        tid = self.next_trade_id
        aid = self.next_agg_id
        chg_b = self._chg_b
        chg_a = self._chg_a
        sign = self._taker_sign
        persist = p.sign_persistence
        inside_p = p.inside_spread_p
        sym = self.symbol
        price = self._price
        qty_text = self._qty
        tick8 = self.spec.tick8
        step8 = self.spec.step8
        last_l1 = self._last_l1
        trades_out = out.trades
        agg_out = out.agg_trades
        tick_out = out.book_tickers
        st_ids: list[int] = []
        st_px: list[int] = []
        st_qty: list[int] = []
        st_time: list[int] = []
        st_maker: list[bool] = []
        n = len(kinds)
        step_ms = p.step_ms
        bid_floor = self.bid_floor
        ask_ceiling = self.ask_ceiling
        n_trades = 0

        for j in range(n):
            kind = kinds[j]
            t_ms = t0 + (j * step_ms) // n
            if kind == 0:
                # Taker order: the side persists with probability `persist`.
                if u1[j] >= persist:
                    sign = 1 if u2[j] < 0.5 else -1
                remaining = taker_lots[j]
                nsplit = split[j]
                # A buy sweeps the asks upwards, a sell the bids downwards.
                if sign > 0:
                    levels, chg, tick, step, limit, m_text = (
                        asks,
                        chg_a,
                        ba,
                        1,
                        ask_ceiling,
                        "false",
                    )
                else:
                    levels, chg, tick, step, limit, m_text = bids, chg_b, bb, -1, bid_floor, "true"
                if (tick > limit) if step > 0 else (tick < limit):
                    continue
                uid += 1
                maker = sign < 0
                while remaining > 0 and ((tick <= limit) if step > 0 else (tick >= limit)):
                    q = levels[tick - lo]
                    if not q:
                        tick += step
                        continue
                    take = q if q < remaining else remaining
                    remaining -= take
                    levels[tick - lo] = q - take
                    chg[tick] = q - take
                    first = tid
                    parts = nsplit if nsplit < take else take
                    base, extra = divmod(take, parts)
                    p8 = tick * tick8
                    for k in range(parts):
                        lots = base + (1 if k < extra else 0)
                        st_ids.append(tid)
                        st_px.append(p8)
                        st_qty.append(lots * step8)
                        st_time.append(t_ms)
                        st_maker.append(maker)
                        if want_trades:
                            trades_out.append(
                                f'{{"e":"trade","E":{t_ms},"s":"{sym}","t":{tid},'
                                f'"p":"{price(tick)}","q":"{qty_text(lots)}","T":{t_ms},'
                                f'"m":{m_text},"M":true}}'.encode()
                            )
                        tid += 1
                    n_trades += parts
                    if want_agg:
                        agg_out.append(
                            f'{{"e":"aggTrade","E":{t_ms},"s":"{sym}","a":{aid},'
                            f'"p":"{price(tick)}","q":"{qty_text(take)}","f":{first},'
                            f'"l":{tid - 1},"T":{t_ms},"m":{m_text},"M":true}}'.encode()
                        )
                    aid += 1
                if sign > 0:
                    while ba <= ask_ceiling and not asks[ba - lo]:
                        ba += 1
                else:
                    while bb >= bid_floor and not bids[bb - lo]:
                        bb -= 1
            elif kind == 1:
                # Limit order add.
                lots = add_lots[j]
                if u1[j] < 0.5:
                    if ba - bb > 1 and u2[j] < inside_p:
                        tick = bb + 1 + int(u2[j] / inside_p * (ba - bb - 1))
                    else:
                        tick = (bb if bb >= bid_floor else ba - 1) - add_dist[j]
                    if tick >= ba or tick < lo:
                        continue
                    uid += 1
                    q = bids[tick - lo] + lots
                    bids[tick - lo] = q
                    chg_b[tick] = q
                    if tick > bb or bb < bid_floor:
                        bb = tick
                    if tick < bid_floor:
                        bid_floor = tick
                else:
                    if ba - bb > 1 and u2[j] < inside_p:
                        tick = ba - 1 - int(u2[j] / inside_p * (ba - bb - 1))
                    else:
                        tick = (ba if ba <= ask_ceiling else bb + 1) + add_dist[j]
                    if tick <= bb or tick > hi:
                        continue
                    uid += 1
                    q = asks[tick - lo] + lots
                    asks[tick - lo] = q
                    chg_a[tick] = q
                    if tick < ba or ba > ask_ceiling:
                        ba = tick
                    if tick > ask_ceiling:
                        ask_ceiling = tick
            else:
                # Cancel part or all of a level near the top.
                if u1[j] < 0.5:
                    tick = bb - cxl_dist[j]
                    if tick < bid_floor:
                        continue
                    q = bids[tick - lo]
                    if not q:
                        continue
                    uid += 1
                    q = 0 if u2[j] < 0.35 else int(q * u2[j])
                    bids[tick - lo] = q
                    chg_b[tick] = q
                    while bb >= bid_floor and not bids[bb - lo]:
                        bb -= 1
                else:
                    tick = ba + cxl_dist[j]
                    if tick > ask_ceiling:
                        continue
                    q = asks[tick - lo]
                    if not q:
                        continue
                    uid += 1
                    q = 0 if u2[j] < 0.35 else int(q * u2[j])
                    asks[tick - lo] = q
                    chg_a[tick] = q
                    while ba <= ask_ceiling and not asks[ba - lo]:
                        ba += 1
            # bookTicker whenever the touch changed (each change already has its own id).
            bq = bids[bb - lo] if bb >= bid_floor else 0
            aq = asks[ba - lo] if ba <= ask_ceiling else 0
            if bb != last_l1[0] or bq != last_l1[1] or ba != last_l1[2] or aq != last_l1[3]:
                last_l1 = (bb, bq, ba, aq)
                if want_ticker:
                    tick_out.append(
                        f'{{"u":{uid},"s":"{sym}","b":"{price(bb)}","B":"{qty_text(bq)}",'
                        f'"a":"{price(ba)}","A":"{qty_text(aq)}"}}'.encode()
                    )

        self.bb = bb
        self.ba = ba
        self.bid_floor = bid_floor
        self.ask_ceiling = ask_ceiling
        self.update_id = uid
        self.next_trade_id = tid
        self.next_agg_id = aid
        self._taker_sign = sign
        self._last_l1 = last_l1
        if st_ids:
            self.trade_store.extend(st_ids, st_px, st_qty, st_time, st_maker)
        return n_trades


class SyntheticMarket:
    """All symbols of a synthetic run, advanced together on one event clock."""

    def __init__(
        self,
        specs: list[SymbolSpec],
        rate: float,
        seed: int,
        start_ms: int,
        params: MarketParams | None = None,
        retain_trades: int = 1_000_000,
    ) -> None:
        if not specs:
            raise ValueError("at least one symbol is needed")
        self.params = params or MarketParams()
        per_symbol = rate / len(specs)
        seeds = np.random.SeedSequence(seed).spawn(len(specs))
        self.books: dict[str, SymbolMarket] = {}
        for spec, child in zip(specs, seeds, strict=True):
            sub_seed = int(child.generate_state(1)[0])
            self.books[spec.stream_name] = SymbolMarket(
                spec, per_symbol, sub_seed, start_ms, self.params, retain_trades
            )
        self.now_ms = start_ms
