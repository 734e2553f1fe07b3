"""`cif._core.OrderBook` on the real captures: Binance's procedure, through the Python API."""

from __future__ import annotations

from pathlib import Path

import pytest

import cif._core as core
from cif.ingest.capture import iter_capture


@pytest.mark.parametrize("name", ["btc_capture", "eth_capture"])
def test_book_from_capture_matches_latest_book_ticker(
    name: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(name)
    events = []
    for line in iter_capture(path):
        symbol = "BTCUSDT" if name == "btc_capture" else "ETHUSDT"
        events.append(core.parse_frame(line.payload, line.recv_time_ns, symbol=symbol))
    snapshot = next(e for e in events if isinstance(e, core.DepthSnapshot))
    tickers = sorted(
        (e for e in events if isinstance(e, core.BookTicker)), key=lambda t: t.update_id
    )
    book = core.OrderBook(snapshot.symbol)
    outcomes: list[str] = []
    compared = agreed = 0
    ti = 0
    for ev in events:
        if isinstance(ev, core.DepthSnapshot):
            assert book.on_snapshot(ev) == "synced"
        elif isinstance(ev, core.DepthUpdate):
            outcomes.append(book.on_diff(ev))
            if not book.synced:
                continue
            while ti + 1 < len(tickers) and tickers[ti + 1].update_id <= book.last_update_id:
                ti += 1
            t = tickers[ti]
            if snapshot.last_update_id < t.update_id <= book.last_update_id:
                compared += 1
                agreed += (book.best_bid(), book.best_ask()) == (
                    (t.bid_price, t.bid_qty),
                    (t.ask_price, t.ask_qty),
                )
    assert compared > 3000
    assert agreed == compared
    stats = book.stats()
    assert stats["gaps"] == 0
    assert stats["syncs"] == 1
    # Two diffs arrived before the snapshot and predate it: buffered, then dropped.
    assert outcomes[:2] == ["buffered", "buffered"]
    assert set(outcomes[2:]) <= {"buffered", "applied"}
    bids, asks = book.top(5)
    assert len(bids) == len(asks) == 5
    assert bids[0][0] < asks[0][0], "never crossed"
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)


def _diff(first: int, last: int, bids: str = '[["1.0","1.0"]]') -> core.DepthUpdate:
    frame = (
        f'{{"e":"depthUpdate","E":1,"s":"AAA","U":{first},"u":{last},"b":{bids},"a":[]}}'
    ).encode()
    ev = core.parse_frame(frame, 0)
    assert isinstance(ev, core.DepthUpdate)
    return ev


def _snap(last: int) -> core.DepthSnapshot:
    return core.parse_rest_depth(
        f'{{"lastUpdateId":{last},"bids":[["1.0","2.0"]],"asks":[["2.0","1.0"]]}}'.encode(),
        "AAA",
        0,
    )


def test_gap_discards_the_book_and_too_old_snapshot_is_refused() -> None:
    book = core.OrderBook("aaa", max_buffer=100)
    assert book.on_diff(_diff(10, 12)) == "buffered"
    assert book.on_snapshot(_snap(5)) == "too_old"
    assert book.best_bid() is None
    assert book.on_snapshot(_snap(11)) == "synced"
    assert book.last_update_id == 12
    assert book.on_diff(_diff(11, 12)) == "stale"
    assert book.on_diff(_diff(14, 15)) == "gap"
    assert not book.synced
    assert book.top() == ([], [])
    assert book.first_buffered_update_id == 14
    assert book.stats()["gaps"] == 1
    other = core.parse_rest_depth(b'{"lastUpdateId":1,"bids":[],"asks":[]}', "BBB", 0)
    assert book.on_snapshot(other) == "wrong_symbol"


def test_bad_symbol_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid symbol"):
        core.OrderBook("btc usdt")
