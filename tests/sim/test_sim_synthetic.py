"""The synthetic market: invariants over >= 100,000 trades read over a real socket, order-flow
properties, seeding, rate."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import numpy as np
import pytest
from sim_testkit import GUARD_S, http_get, run, running_in_thread, ws_connect

from cif.sim.market import SymbolMarket, SyntheticMarket
from cif.sim.symbols import spec_for
from cif.sim.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(180)

N_TRADES = 100_000


def _collect_market(n_trades: int) -> dict[str, Any]:
    """Run a max-speed synthetic market and read every stream of BTCUSDT until n trades."""
    streams = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker"]
    out: dict[str, Any] = {s: [] for s in streams}

    def make_source() -> SyntheticSource:
        return SyntheticSource(["btcusdt"], rate=50_000, seed=11, speed=None)

    async def body(port: int) -> None:
        url = f"ws://127.0.0.1:{port}/stream?streams={'/'.join(streams)}"
        # A bounded client queue, so that TCP backpressure paces the max-speed market.
        async with ws_connect(url, max_queue=1024) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
            res = await http_get(port, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            out["snapshot"] = res.json()
            out[first["stream"]].append(first["data"])
            trades = out["btcusdt@trade"]
            while len(trades) < n_trades:
                msg = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
                out[msg["stream"]].append(msg["data"])
            # The market keeps going; historicalTrades must still serve every id read.
            first_id, last_id = trades[0]["t"], trades[n_trades - 1]["t"]
            rows: list[dict[str, Any]] = []
            next_id = first_id
            while next_id <= last_id:
                res = await http_get(
                    port, f"/api/v3/historicalTrades?symbol=BTCUSDT&fromId={next_id}&limit=1000"
                )
                page = res.json()
                assert page
                assert page[0]["id"] == next_id
                rows.extend(page)
                next_id = page[-1]["id"] + 1
            out["historical"] = rows
            # Unread frames are queued behind the close handshake; just drop the socket.
            ws.transport.abort()

    with running_in_thread(make_source, weight_limit=100_000) as srv:
        run(body(srv.port))
    return out


@pytest.fixture(scope="module")
def market() -> dict[str, Any]:
    return _collect_market(N_TRADES)


def test_trade_ids_consecutive_and_aggtrades_cover_them(market: dict[str, Any]) -> None:
    trades = market["btcusdt@trade"]
    assert len(trades) >= N_TRADES
    ids = np.array([t["t"] for t in trades])
    assert np.all(np.diff(ids) == 1)
    assert all(t["s"] == "BTCUSDT" and t["M"] is True for t in trades[:1000])
    aggs = market["btcusdt@aggTrade"]
    by_id = {t["t"]: t for t in trades}
    a_ids = [a["a"] for a in aggs]
    assert a_ids == list(range(a_ids[0], a_ids[0] + len(a_ids)))
    for prev, cur in itertools.pairwise(aggs):
        assert cur["f"] == prev["l"] + 1
    for agg in aggs[:20_000]:
        parts = [by_id[i] for i in range(agg["f"], agg["l"] + 1) if i in by_id]
        if len(parts) == agg["l"] - agg["f"] + 1:
            assert all(p["p"] == agg["p"] and p["m"] == agg["m"] for p in parts)
            assert sum(int(p["q"].replace(".", "")) for p in parts) == int(
                agg["q"].replace(".", "")
            )


def test_historical_trades_serve_every_id(market: dict[str, Any]) -> None:
    trades = market["btcusdt@trade"][:N_TRADES]
    rows = market["historical"]
    assert [r["id"] for r in rows] == [t["t"] for t in trades]
    for row, t in zip(rows, trades, strict=True):
        assert (row["price"], row["qty"], row["time"], row["isBuyerMaker"]) == (
            t["p"],
            t["q"],
            t["T"],
            t["m"],
        )


def test_depth_chain_snapshot_and_book_ticker_agree(market: dict[str, Any]) -> None:
    diffs = market["btcusdt@depth@100ms"]
    for prev, cur in itertools.pairwise(diffs):
        assert cur["U"] == prev["u"] + 1
    snap = market["snapshot"]
    last_id = snap["lastUpdateId"]
    kept = [d for d in diffs if d["u"] > last_id]
    assert kept[0]["U"] <= last_id + 1 <= kept[0]["u"]
    bids = {int(p.replace(".", "")): q for p, q in snap["bids"]}
    asks = {int(p.replace(".", "")): q for p, q in snap["asks"]}
    tickers = market["btcusdt@bookTicker"]
    t_ids = np.array([t["u"] for t in tickers])
    assert np.all(np.diff(t_ids) > 0)
    checked = 0
    for d in kept:
        for side, key in ((bids, "b"), (asks, "a")):
            for p, q in d[key]:
                if q == "0.00000000":
                    side.pop(int(p.replace(".", "")), None)
                else:
                    side[int(p.replace(".", ""))] = q
        # The touch at update id u is the last bookTicker with an id <= u.
        i = int(np.searchsorted(t_ids, d["u"], side="right")) - 1
        if i < 0:
            continue  # no touch change seen yet since we subscribed
        t = tickers[i]
        best_bid = max(bids)
        best_ask = min(asks)
        assert best_bid < best_ask
        assert (best_bid, bids[best_bid]) == (int(t["b"].replace(".", "")), t["B"])
        assert (best_ask, asks[best_ask]) == (int(t["a"].replace(".", "")), t["A"])
        checked += 1
    assert checked > len(kept) // 2


def test_order_flow_moves_price_and_imbalance_predicts(market: dict[str, Any]) -> None:
    trades = market["btcusdt@trade"][:N_TRADES]
    sign = np.array([-1.0 if t["m"] else 1.0 for t in trades])
    qty = np.array([float(t["q"]) for t in trades])
    price = np.array([float(t["p"]) for t in trades])
    # Persistent order flow.
    assert np.corrcoef(sign[:-1], sign[1:])[0, 1] > 0.3
    # Signed volume over 500-trade buckets moves the price in its direction.
    k = 500
    n = len(trades) // k
    flow = (sign * qty)[: n * k].reshape(n, k).sum(axis=1)
    move = price[k - 1 :: k][:n] - price[::k][:n]
    assert np.corrcoef(flow, move)[0, 1] > 0.3
    # Queue imbalance at the touch predicts the sign of the next mid-price change.
    tick = market["btcusdt@bookTicker"]
    bid_q = np.array([float(t["B"]) for t in tick])
    ask_q = np.array([float(t["A"]) for t in tick])
    mid = np.array([float(t["b"]) + float(t["a"]) for t in tick])
    imbalance = (bid_q - ask_q) / (bid_q + ask_q)
    changes = np.nonzero(np.diff(mid))[0]
    nxt = np.searchsorted(changes, np.arange(len(mid)))
    ok = nxt < len(changes)
    next_sign = np.sign(np.diff(mid)[changes])[nxt[ok]]
    assert np.corrcoef(imbalance[ok], next_sign)[0, 1] > 0.05


def test_same_seed_same_market_and_rate_on_target() -> None:
    def run_market(seed: int) -> list[bytes]:
        m = SyntheticMarket([spec_for("btcusdt"), spec_for("ethusdt")], 20_000, seed, 10**12)
        out: list[bytes] = []
        for _ in range(100):
            for book in m.books.values():
                o = book.step(True, True, True)
                out += o.trades + o.agg_trades + o.book_tickers
                if o.depth:
                    out.append(o.depth)
        return out

    a, b, c = run_market(5), run_market(5), run_market(6)
    assert a == b
    assert a != c
    # 100 steps of 10 ms = 1 s of event time at 10,000 trades/s per symbol.
    book = SymbolMarket(spec_for("btcusdt"), 10_000, 3, 0)
    for _ in range(300):
        book.step(False, False, False)
    trades = len(book.trade_store)
    assert 0.9 * 30_000 < trades < 1.1 * 30_000
