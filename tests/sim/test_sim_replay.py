"""Capture replay on the real captures: byte-faithfulness and the recorded book via REST."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_testkit import GUARD_S, capture, http_get, run, running, ws_connect

from cif.ingest.capture import iter_capture
from cif.sim.replay import ReplayBook, ReplaySource, split_frame

pytestmark = pytest.mark.timeout(120)

BTC = "btcusdt_20240808.gz"
ETH = "ethusdt_20240808.gz"


def _frames(path: Path) -> list[bytes]:
    """The recorded combined-stream frames of a capture, in order (snapshot excluded)."""
    return [c.payload for c in iter_capture(path) if c.payload.startswith(b'{"stream"')]


def _data_of(frame: bytes) -> bytes:
    """The ``data`` member's bytes, located independently of the simulator's slicer."""
    obj = json.loads(frame)
    head = b'{"stream":"' + obj["stream"].encode() + b'","data":'
    assert frame.startswith(head)
    assert frame.endswith(b"}")
    return frame[len(head) : -1]


async def _collect(ws: Any, n: int) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < n:
        msg = await asyncio.wait_for(ws.recv(), GUARD_S)
        out.append(msg.encode() if isinstance(msg, str) else msg)
    return out


def test_raw_trade_stream_is_byte_faithful() -> None:
    path = capture(BTC)
    expected = [_data_of(f) for f in _frames(path) if f.startswith(b'{"stream":"btcusdt@trade"')]
    assert len(expected) == 9757

    async def body() -> None:
        async with (
            running(ReplaySource([path], speed=None)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade") as ws,
        ):
            got = await _collect(ws, len(expected))
            assert got == expected

    run(body())


def test_combined_streams_two_files_reproduce_the_recorded_lines() -> None:
    """All streams of both captures on one combined connection: every frame is the recorded
    line, byte for byte, and each capture's frames arrive in recorded order."""
    btc, eth = capture(BTC), capture(ETH)
    per_file = {"btcusdt": _frames(btc), "ethusdt": _frames(eth)}
    streams = [f"{s}@{k}" for s in per_file for k in ("trade", "depth@100ms", "bookTicker")]
    total = sum(len(v) for v in per_file.values())

    async def body() -> None:
        async with (
            running(ReplaySource([btc, eth], speed=None)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/stream?streams={'/'.join(streams)}") as ws,
        ):
            got = await _collect(ws, total)
        for symbol, frames in per_file.items():
            mine = [g for g in got if g.startswith(b'{"stream":"' + symbol.encode())]
            assert mine == frames

    run(body())


def test_paced_replay_delivers_everything_in_order() -> None:
    path = capture(ETH)
    expected = [_data_of(f) for f in _frames(path) if b'"stream":"ethusdt@trade"' in f[:40]]

    async def body() -> None:
        # The capture spans ~346 s; at 2000x the paced path runs well under a second.
        async with (
            running(ReplaySource([path], speed=2000.0)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/ethusdt@trade") as ws,
        ):
            assert await _collect(ws, len(expected)) == expected

    run(body())


def _apply(book: dict[str, dict[Decimal, str]], diff: dict[str, Any]) -> None:
    for key, side in (("b", "bids"), ("a", "asks")):
        for price, qty in diff[key]:
            if Decimal(qty) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = qty


def _reference_book(path: Path) -> dict[str, dict[Decimal, str]]:
    """The recorded book at the end of the capture: its snapshot plus every later diff."""
    snapshot: dict[str, Any] | None = None
    diffs = []
    for line in iter_capture(path):
        obj = json.loads(line.payload)
        if "lastUpdateId" in obj:
            snapshot = obj
        elif obj["stream"].endswith("@depth@100ms"):
            diffs.append(obj["data"])
    assert snapshot is not None
    book: dict[str, dict[Decimal, str]] = {
        "bids": {Decimal(p): q for p, q in snapshot["bids"]},
        "asks": {Decimal(p): q for p, q in snapshot["asks"]},
    }
    for d in diffs:
        if d["u"] > snapshot["lastUpdateId"]:
            _apply(book, d)
    return book


def test_client_following_binance_procedure_rebuilds_recorded_book() -> None:
    path = capture(BTC)
    n_diffs = sum(1 for f in _frames(path) if b"@depth@100ms" in f[:40])
    reference = _reference_book(path)

    async def body() -> None:
        async with (
            running(ReplaySource([path], speed=None)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@depth@100ms") as ws,
        ):
            # Binance's procedure: open the stream, buffer, get the snapshot, drop events
            # with u <= lastUpdateId, the first kept one must straddle lastUpdateId + 1,
            # then apply in order with U == previous u + 1.
            first = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
            res = await http_get(srv.port, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            snap = res.json()
            diffs = [first] + [json.loads(m) for m in await _collect(ws, n_diffs - 1)]
        last_id = snap["lastUpdateId"]
        book: dict[str, dict[Decimal, str]] = {
            "bids": {Decimal(p): q for p, q in snap["bids"]},
            "asks": {Decimal(p): q for p, q in snap["asks"]},
        }
        kept = [d for d in diffs if d["u"] > last_id]
        assert kept
        assert kept[0]["U"] <= last_id + 1 <= kept[0]["u"]
        prev = None
        for d in kept:
            if prev is not None:
                assert d["U"] == prev + 1
            _apply(book, d)
            prev = d["u"]
        assert book == reference

    run(body())


def test_snapshot_is_the_captures_own_until_diffs_move_past_it() -> None:
    path = capture(BTC)
    recorded = next(c.payload for c in iter_capture(path) if c.payload.startswith(b'{"last'))
    book = ReplayBook(recorded)
    assert book.body(5000) == recorded  # verbatim
    snap = json.loads(recorded)
    old = {"U": 1, "u": snap["lastUpdateId"] - 5, "b": [["1.00000000", "5.00000000"]], "a": []}
    book.apply(old)
    assert book.body(5000) == recorded  # a diff before the snapshot changes nothing
    new = {"U": snap["lastUpdateId"] - 3, "u": snap["lastUpdateId"] + 2, "b": [], "a": []}
    book.apply(new)
    evolved = json.loads(book.body(5000))
    assert evolved["lastUpdateId"] == snap["lastUpdateId"] + 2
    assert evolved["bids"] == snap["bids"]
    assert len(json.loads(book.body(10))["asks"]) == 10


def test_historical_trades_after_replay() -> None:
    path = capture(BTC)
    trades = [json.loads(_data_of(f)) for f in _frames(path) if b"@trade" in f[:30]]

    async def body() -> None:
        source = ReplaySource([path], speed=None)
        async with running(source) as srv:
            async with ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@aggTrade") as ws:
                agg = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
                assert agg["e"] == "aggTrade"
                assert agg["f"] == agg["l"] == trades[0]["t"]
                await asyncio.wait_for(source.finished.wait(), GUARD_S)
            first = trades[100]["t"]
            res = await http_get(
                srv.port, f"/api/v3/historicalTrades?symbol=BTCUSDT&fromId={first}&limit=3"
            )
            rows = res.json()
            for row, t in zip(rows, trades[100:103], strict=True):
                assert row["id"] == t["t"]
                assert row["price"] == t["p"]
                assert row["qty"] == t["q"]
                assert row["time"] == t["T"]
                assert row["isBuyerMaker"] == t["m"]
            res = await http_get(srv.port, "/api/v3/time")
            assert res.json()["serverTime"] >= trades[-1]["E"]  # the replay's clock

    run(body())


def test_split_frame() -> None:
    frame = b'{"stream":"btcusdt@trade","data":{"e":"trade","t":1}}'
    assert split_frame(frame) == ("btcusdt@trade", b'{"e":"trade","t":1}')
    assert split_frame(b'{"data":{},"stream":"x"}') is None
    assert split_frame(b"garbage") is None
