"""`cif._core.TradeSequencer` on the real btc trades: gaps held, backfilled, released in order."""

from __future__ import annotations

import random
from pathlib import Path

import cif._core as core
from cif.ingest.capture import iter_capture


def _trades(path: Path) -> list[core.Trade]:
    out = []
    for line in iter_capture(path):
        ev = core.parse_frame(line.payload, line.recv_time_ns, symbol="BTCUSDT")
        if isinstance(ev, core.Trade):
            out.append(ev)
    return out


def test_lost_live_trades_are_backfilled_and_released_in_id_order(btc_capture: Path) -> None:
    trades = _trades(btc_capture)
    assert len(trades) == 9757
    rng = random.Random(7)
    lost = set(rng.sample(range(1, len(trades)), 60))
    seq = core.TradeSequencer(last_id=trades[0].trade_id - 1)
    released: list[tuple[core.Trade, bool]] = []
    backfill_requests = 0
    for i, t in enumerate(trades):
        if i in lost:
            continue
        released += seq.push(t)
        gap = seq.missing()
        if gap is not None:
            # What a REST backfill from `fromId` returns: the missing rows, here in any order.
            backfill_requests += 1
            first, last = gap
            rows = [x for x in trades if first <= x.trade_id <= last]
            released += seq.fill(rows[::-1])
    assert [t for t, _ in released] == trades
    backfilled = {t.trade_id for t, b in released if b}
    assert backfilled == {trades[i].trade_id for i in lost}
    stats = seq.stats()
    assert stats["gaps"] == backfill_requests
    assert stats["lost"] == 0
    assert stats["released"] == 9757
    assert seq.held == 0


def test_overlapping_connections_give_each_trade_once(btc_capture: Path) -> None:
    trades = _trades(btc_capture)[:500]
    seq = core.TradeSequencer()
    out: list[tuple[core.Trade, bool]] = []
    # Make-before-break: the new connection replays the last 50 trades of the old one.
    for t in trades[:300] + trades[250:]:
        out += seq.push(t)
    assert [t.trade_id for t, _ in out] == [t.trade_id for t in trades]
    assert seq.stats()["duplicates"] == 50


def test_give_up_releases_what_follows_and_counts_lost() -> None:
    body = (
        b"["
        + b",".join(
            b'{"id":%d,"price":"1.0","qty":"1.0","quoteQty":"1","time":1,"isBuyerMaker":true,'
            b'"isBestMatch":true}' % i
            for i in (1, 2, 6, 7)
        )
        + b"]"
    )
    t1, t2, t6, t7 = core.parse_rest_trades(body, "BTCUSDT", 0)
    seq = core.TradeSequencer()
    assert [t.trade_id for t, _ in seq.push(t1) + seq.push(t2)] == [1, 2]
    assert seq.push(t6) == []
    assert seq.push(t7) == []
    assert seq.missing() == (3, 5)
    assert [(t.trade_id, b) for t, b in seq.skip_to(6)] == [(6, False), (7, False)]
    assert seq.stats()["lost"] == 3
    assert seq.next_id == 8
