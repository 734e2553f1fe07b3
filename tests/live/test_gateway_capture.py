"""The real btc capture, replayed by the simulator, ingested live end to end.

Real sockets (simulator process), a real Redis server, a real DuckDB file: the gateway must
end with exactly the capture's 9,757 trades in DuckDB and in ``trades:{btcusdt}``, in id
order, and its local book must agree with every bookTicker it can be checked against.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pytest
import redis
from live_testkit import gateway_config, running_gateway, sim_process, until

from cif._core import parse_capture
from cif.ingest.capture import read_capture_bytes
from cif.store.segments import open_history

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(180)

BTC_TRADES = 9757


def test_real_btc_capture_lands_whole_in_duckdb_and_redis(
    tmp_path: Path, btc_capture: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    expected = parse_capture(read_capture_bytes(btc_capture)).trades
    assert len(expected["trade_id"]) == BTC_TRADES
    parsed = parse_capture(read_capture_bytes(btc_capture))
    n_diffs = len(parsed.depth_updates["frame"])
    n_tickers = len(parsed.book_tickers["frame"])

    # Paced, not ``max``: at full speed the whole capture can stream before the REST snapshot
    # lands, leaving only a handful of book states to check. 40x plays the 346 s capture in
    # ~9 s, so a snapshot even seconds late still leaves thousands of checkable states.
    with sim_process(["--capture", str(btc_capture), "--speed", "40"], tmp_path) as sim:
        cfg = gateway_config(sim, tmp_path, redis_server.url, symbols=["btcusdt"])

        async def scenario() -> dict[str, object]:
            async with running_gateway(cfg) as gw:
                st = gw.symbols["BTCUSDT"]
                await until(
                    gw,
                    # Tickers too: a book state is checked once the ticker stream passes it.
                    lambda: (
                        st.stats.trades >= BTC_TRADES
                        and st.stats.diffs >= n_diffs
                        and st.stats.tickers >= n_tickers
                    ),
                    "the whole capture",
                )
            return gw.stats()

        stats = asyncio.run(scenario())

    sym = stats["symbols"]["BTCUSDT"]  # type: ignore[index]
    # The book rebuilt through REST snapshot + diffs agrees with every checkable ticker.
    print(f"book agreement: {sym['book_agree']}/{sym['book_checks']}")
    book_states = sym["book"]["applied"] + sym["book"]["syncs"]
    assert sym["book_checks"] >= max(500, 0.99 * book_states)
    assert sym["book_agree"] == sym["book_checks"]
    assert sym["resyncs"] == 0
    assert sym["sequencer"]["gaps"] == 0

    with duckdb.connect(str(cfg.db_path), read_only=True) as con:
        ids, prices, qtys, sides, backfilled, seqs = (
            np.array(c)
            for c in zip(
                *con.execute(
                    "SELECT trade_id, price, qty, side, backfilled, seq FROM trades "
                    "WHERE symbol = 'BTCUSDT' ORDER BY trade_id"
                ).fetchall(),
                strict=True,
            )
        )
    assert len(ids) == BTC_TRADES
    np.testing.assert_array_equal(ids, expected["trade_id"])
    np.testing.assert_array_equal(prices, expected["price"])
    np.testing.assert_array_equal(qtys, expected["qty"])
    np.testing.assert_array_equal(sides, np.where(expected["side"] > 0, "buy", "sell"))
    assert not backfilled.any()
    assert np.all(np.diff(seqs) > 0), "seq follows trade id order"

    entries = redis_client.xrange("trades:{btcusdt}")
    assert [e[0] for e in entries] == [f"{t}-0".encode() for t in expected["trade_id"]]
    assert [float(e[1][b"price"]) for e in entries] == list(expected["price"])
    assert [e[1][b"side"].decode() for e in entries] == list(sides)
    book = redis_client.xrange("book:{btcusdt}")
    assert len(book) > 1000
    book_seqs = [int(e[1][b"seq"]) for e in book]
    assert book_seqs == sorted(book_seqs)
    assert len(set(book_seqs)) == len(book_seqs)
    # DuckDB stores the same book events (the features' input log, for replay and training).
    with duckdb.connect(str(cfg.db_path), read_only=True) as con:
        stored = con.execute("SELECT seq, bids, asks FROM book_events ORDER BY seq").fetchall()
    assert stored == [
        (int(e[1][b"seq"]), e[1][b"bids"].decode(), e[1][b"asks"].decode()) for e in book
    ]

    # Stopping sealed everything: another reader sees the same trades in the segments.
    with open_history(cfg.history_dir) as hist:  # type: ignore[arg-type]
        n, lo, hi = hist.execute(
            "SELECT count(*), min(trade_id), max(trade_id) FROM trades"
        ).fetchone()  # type: ignore[misc]
    assert (n, lo, hi) == (BTC_TRADES, expected["trade_id"][0], expected["trade_id"][-1])
