"""Small real events for store tests, built by the real parser from Binance-shaped JSON."""

from __future__ import annotations

import json

import cif._core as core


def trade(tid: int, sym: str = "BTCUSDT", price: str = "1.5", maker: bool = True) -> core.Trade:
    frame = {
        "e": "trade",
        "E": 1000 + tid,
        "s": sym,
        "t": tid,
        "p": price,
        "q": "2",
        "T": 900 + tid,
        "m": maker,
        "M": True,
    }
    ev = core.parse_frame(json.dumps(frame).encode(), 10_000 + tid)
    assert isinstance(ev, core.Trade)
    return ev


def ticker(update_id: int, sym: str = "BTCUSDT") -> core.BookTicker:
    frame = {"u": update_id, "s": sym, "b": "1.0", "B": "3", "a": "1.1", "A": "4"}
    ev = core.parse_frame(json.dumps(frame).encode(), 20_000 + update_id)
    assert isinstance(ev, core.BookTicker)
    return ev


def diff(first: int, final: int, sym: str = "BTCUSDT") -> core.DepthUpdate:
    frame = {
        "stream": f"{sym.lower()}@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": 5000 + final,
            "s": sym,
            "U": first,
            "u": final,
            "b": [["1.00", "3"], ["0.99", "0"]],
            "a": [["1.10", "4"]],
        },
    }
    ev = core.parse_frame(json.dumps(frame).encode(), 30_000 + final)
    assert isinstance(ev, core.DepthUpdate)
    return ev


def snapshot(last_update_id: int, sym: str = "BTCUSDT") -> core.DepthSnapshot:
    body = {"lastUpdateId": last_update_id, "bids": [["1.00", "5"]], "asks": [["1.10", "6"]]}
    return core.parse_rest_depth(json.dumps(body).encode(), sym, 40_000)
