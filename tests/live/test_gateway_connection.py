"""Connection hygiene and robustness of the gateway, over real sockets.

Pongs echo the server's pings; a gateway started before the exchange keeps retrying with
backoff and connects when it comes up; bad frames of every kind (including another
symbol's) are counted and skipped without losing the connection; a restarted gateway
resumes from the last stored trade id and backfills the downtime.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from live_testkit import (
    SimProcess,
    free_port,
    gateway_config,
    running_gateway,
    sim_process,
    until,
)
from websockets.asyncio.server import ServerConnection, serve

from cif.ingest.gateway import GatewayConfig

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)

SYNTHETIC = ["--synthetic", "--symbols", "btcusdt", "--rate", "1000", "--seed", "21"]


def _local_config(port: int, tmp_path: Path, **kw: Any) -> GatewayConfig:
    """btcusdt from an exchange on ``port``, DuckDB only."""
    return GatewayConfig(
        symbols=["btcusdt"],
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        redis_url=None,
        db_path=tmp_path / "live.duckdb",
        history_dir=None,
        flush_interval_s=0.2,
        **kw,
    )


def test_pings_are_answered_and_the_connection_kept(tmp_path: Path) -> None:
    flags = [*SYNTHETIC, "--ping-interval", "0.05", "--pong-timeout", "1.0"]
    with sim_process(flags, tmp_path) as sim:
        cfg = gateway_config(sim, tmp_path, None, symbols=["btcusdt"])

        def pongs() -> int:
            return sum(s["pongs"] for s in sim.stats()["sessions"])

        async def scenario() -> dict[str, Any]:
            async with running_gateway(cfg) as gw:
                await until(gw, lambda: pongs() >= 10, "ten pongs")
            return gw.stats()

        stats = asyncio.run(scenario())
        # The simulator counts a pong only when its payload echoes the ping's.
        assert sim.stats()["events"].get("pong_timeout_disconnect", 0) == 0
    assert stats["feed"]["connects"] == 1
    assert stats["feed"]["disconnects"] == 0


def test_gateway_started_first_retries_until_the_exchange_is_up(tmp_path: Path) -> None:
    port = free_port()
    sim = SimProcess(SYNTHETIC, tmp_path / "sim.log", port)
    cfg = _local_config(port, tmp_path)

    async def scenario() -> dict[str, Any]:
        async with running_gateway(cfg) as gw:
            await until(gw, lambda: gw.groups[0].stats.connect_failures >= 3, "failed connects")
            await asyncio.to_thread(sim.start)
            try:
                await until(gw, lambda: gw.symbols["BTCUSDT"].stats.trades >= 100, "trades")
            finally:
                await asyncio.to_thread(sim.stop)
        return gw.stats()

    stats = asyncio.run(scenario())
    assert stats["feed"]["connect_failures"] >= 3
    assert stats["feed"]["connects"] >= 1


def _trade(symbol: str, tid: int) -> bytes:
    data = {
        "e": "trade",
        "E": 1_700_000_000_000 + tid,
        "s": symbol,
        "t": tid,
        "p": "100.5",
        "q": "0.25",
        "T": 1_700_000_000_000 + tid,
        "m": tid % 2 == 0,
        "M": True,
    }
    return json.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).encode()


def test_bad_frames_are_counted_skipped_and_the_feed_goes_on(tmp_path: Path) -> None:
    """A scripted exchange (a real WebSocket server) sends good and bad frames mixed."""
    bad_frames = [
        b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1',  # truncated
        b"not json at all",
        b'{"stream":"btcusdt@trade","data":{"e":"mystery","E":1,"s":"BTCUSDT"}}',
        _trade("ETHUSDT", 7),  # another symbol on this connection
        _trade("BTCUSDT", 9).replace(b'"100.5"', b"100.5"),  # price as a number
        _trade("BTCUSDT", 9).replace(b'"100.5"', b'"NaN"'),
        _trade("BTCUSDT", 9).replace(b'"0.25"', b'"1e400"'),
        b'{"stream":"btcusdt@trade","data":[1,2,3]}',
    ]
    script = [_trade("BTCUSDT", i) for i in range(1, 6)]
    script += bad_frames
    script += [_trade("BTCUSDT", i) for i in range(6, 11)]
    script.append(b'{"result":null,"id":1}')  # a reply to a request: not a bad frame
    done = asyncio.Event()

    async def exchange(ws: ServerConnection) -> None:
        for frame in script:
            await ws.send(frame.decode("utf-8", "replace"))
        await done.wait()

    async def scenario() -> dict[str, Any]:
        async with serve(exchange, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            cfg = _local_config(port, tmp_path, watchdog_s=60.0)
            async with running_gateway(cfg) as gw:
                await until(gw, lambda: gw.symbols["BTCUSDT"].stats.trades == 10, "the good trades")
                await until(gw, lambda: gw.control_replies == 1, "the request reply")
                done.set()
            return gw.stats()

    stats = asyncio.run(scenario())
    assert stats["bad_frames"] == {
        "malformed_frame": 2,
        "unknown_event": 1,
        "wrong_symbol": 1,
        "wrong_type": 2,
        "invalid_value": 2,
    }
    assert stats["feed"]["connects"] == 1
    assert stats["feed"]["handler_errors"] == 0
    with duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT trade_id FROM trades ORDER BY 1").fetchall()]
    assert ids == list(range(1, 11))


def test_restart_resumes_from_the_last_stored_trade_and_backfills(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with sim_process(SYNTHETIC, tmp_path) as sim:
        cfg = gateway_config(sim, tmp_path, redis_server.url, symbols=["btcusdt"])

        async def first_run() -> int:
            async with running_gateway(cfg) as gw:
                await until(gw, lambda: gw.symbols["BTCUSDT"].stats.trades >= 500, "trades")
            return gw.symbols["BTCUSDT"].seq

        async def second_run() -> dict[str, Any]:
            async with running_gateway(cfg) as gw:
                st = gw.symbols["BTCUSDT"]
                # The downtime shows as a gap at the first live trade, which is backfilled.
                await until(
                    gw,
                    lambda: st.stats.backfilled > 0 and st.sequencer.missing() is None,
                    "the downtime backfilled",
                )
            return gw.stats()

        last_seq = asyncio.run(first_run())
        with duckdb.connect(str(cfg.db_path), read_only=True) as con:
            (stored_last,) = con.execute("SELECT max(trade_id) FROM trades").fetchone()  # type: ignore[misc]
        # Trades happen on the exchange while the gateway is down; wait for some, by id.
        stats = asyncio.run(second_run())
    sym = stats["symbols"]["BTCUSDT"]
    assert sym["sequencer"]["gaps"] >= 1
    assert sym["sequencer"]["lost"] == 0
    with duckdb.connect(str(cfg.db_path), read_only=True) as con:
        n, lo, hi, n_seq, min_seq_second, first_backfilled = con.execute(
            "SELECT count(*), min(trade_id), max(trade_id), count(DISTINCT seq), "
            "min(seq) FILTER (trade_id > ?), min(trade_id) FILTER (backfilled) FROM trades",
            [stored_last],
        ).fetchone()  # type: ignore[misc]
    assert hi - lo + 1 == n == n_seq
    assert first_backfilled == stored_last + 1
    assert min_seq_second > last_seq
