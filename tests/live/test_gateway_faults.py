"""The gateway against the synthetic simulator with each fault switched on.

Every scenario runs until the fault has demonstrably happened (counted on the gateway's
side) and the gateway has repaired it (no trade-id gap left, every book synced), then stops
the gateway and checks the outcome in DuckDB and Redis: contiguous trade ids, no duplicate,
backfilled trades marked and identical to the exchange's, nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
import redis
from live_testkit import GUARD_S, SimProcess, gateway_config, running_gateway, sim_process, until

from cif.ingest.gateway import Gateway

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(240)

SYMBOLS = ["btcusdt", "ethusdt"]
SYNTHETIC = ["--synthetic", "--symbols", ",".join(SYMBOLS), "--rate", "1500", "--seed", "11"]


def _feed(gw: Gateway, name: str) -> int:
    return sum(getattr(g.stats, name) for g in gw.groups)


def _sym(gw: Gateway, name: str) -> int:
    return sum(getattr(st.stats, name) for st in gw.symbols.values())


def _gaps(gw: Gateway) -> int:
    return sum(st.sequencer.stats()["gaps"] for st in gw.symbols.values())


def _repaired(gw: Gateway) -> bool:
    return all(
        st.sequencer.missing() is None and st.sequencer.held == 0 and st.book.synced
        for st in gw.symbols.values()
    )


#: fault name -> (simulator flags, gateway settings, "the fault happened" on the gateway)
SCENARIOS: dict[str, tuple[list[str], dict[str, Any], Callable[[Gateway], bool]]] = {
    "periodic_disconnects": (
        ["--fault-close-every", "1.0"],
        {},
        lambda gw: _feed(gw, "disconnects") >= 3 and _gaps(gw) >= 1,
    ),
    "skipped_messages": (
        ["--fault-skip-trade-every", "250", "--fault-break-depth-every", "30"],
        {},
        lambda gw: _gaps(gw) >= 4 and _sym(gw, "resyncs") >= 3,
    ),
    "malformed_frames": (
        ["--fault-malformed-every", "150"],
        {},
        lambda gw: gw.bad.counts["malformed_frame"] >= 10,
    ),
    "server_shutdown": (
        ["--fault-shutdown-after", "0.8", "--fault-shutdown-delay", "1.0"],
        {},
        lambda gw: _feed(gw, "handovers") >= 3,
    ),
    "slow_and_failing_snapshot": (
        [
            "--fault-snapshot-delay",
            "0.7",
            "--fault-snapshot-fail-every",
            "2",
            "--fault-break-depth-every",
            "60",
        ],
        {},
        lambda gw: _sym(gw, "resyncs") >= 2 and gw.rest.stats.retries >= 1,
    ),
    "stall": (
        ["--fault-stall-after", "1.0"],
        {"watchdog_s": 0.5},
        lambda gw: _feed(gw, "watchdog_reconnects") >= 2,
    ),
    "connection_age_limit": (
        [],
        {"max_connection_age_s": 0.7},
        lambda gw: _feed(gw, "handovers") >= 3,
    ),
}


def _exchange_trades(
    sim: SimProcess, symbol: str, first: int, n: int
) -> dict[int, tuple[float, float, str]]:
    """What the exchange itself says about trades ``first..``, through its REST."""
    url = (
        f"{sim.rest_url}/api/v3/historicalTrades?symbol={symbol.upper()}"
        f"&fromId={first}&limit={min(n, 1000)}"
    )
    with urllib.request.urlopen(url, timeout=GUARD_S) as r:
        rows = json.load(r)
    return {
        row["id"]: (
            float(row["price"]),
            float(row["qty"]),
            "sell" if row["isBuyerMaker"] else "buy",
        )
        for row in rows
    }


def check_history(db_path: Path, sim: SimProcess | None = None) -> dict[str, dict[str, int]]:
    """Contiguous ids, no duplicates, backfilled trades equal to the exchange's."""
    out: dict[str, dict[str, int]] = {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        for sym in SYMBOLS:
            n, n_distinct, lo, hi, n_backfilled, n_seq = con.execute(
                "SELECT count(*), count(DISTINCT trade_id), min(trade_id), max(trade_id), "
                "count(*) FILTER (backfilled), count(DISTINCT seq) FROM trades WHERE symbol = ?",
                [sym.upper()],
            ).fetchone()  # type: ignore[misc]
            assert n > 0, f"no {sym} trades stored"
            assert n == n_distinct == n_seq, f"{sym}: duplicates"
            assert hi - lo + 1 == n, f"{sym}: trade ids {lo}..{hi} not contiguous ({n} rows)"
            out[sym] = {"trades": n, "backfilled": n_backfilled, "first": lo, "last": hi}
            if sim is not None and n_backfilled:
                rows = con.execute(
                    "SELECT trade_id, price, qty, side FROM trades WHERE symbol = ? AND "
                    "backfilled ORDER BY trade_id LIMIT 500",
                    [sym.upper()],
                ).fetchall()
                truth: dict[int, tuple[float, float, str]] = {}
                for tid, price, qty, side in rows:
                    if tid not in truth:
                        truth.update(_exchange_trades(sim, sym, tid, 1000))
                    assert truth[tid] == (price, qty, side), f"{sym} trade {tid} differs"
    return out


def check_redis_trades(client: redis.Redis, history: dict[str, dict[str, int]]) -> None:
    """``trades:{sym}`` holds exactly the stored trades, in id order."""
    for sym, h in history.items():
        ids = [int(e[0].split(b"-")[0]) for e in client.xrange(f"trades:{{{sym}}}")]
        assert ids == list(range(h["first"], h["last"] + 1)), f"{sym}: redis stream differs"


@pytest.mark.parametrize("fault", list(SCENARIOS))
def test_fault_is_survived_and_repaired(
    fault: str, tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    sim_flags, settings, happened = SCENARIOS[fault]
    with sim_process([*SYNTHETIC, *sim_flags], tmp_path) as sim:
        cfg = gateway_config(sim, tmp_path, redis_server.url, symbols=SYMBOLS, **settings)

        async def scenario() -> dict[str, Any]:
            async with running_gateway(cfg) as gw:
                await until(gw, lambda: happened(gw), f"fault {fault}")
                await until(gw, lambda: _repaired(gw), "repair")
            return gw.stats()

        stats = asyncio.run(scenario())
        history = check_history(cfg.db_path, sim)
    check_redis_trades(redis_client, history)
    for sym in stats["symbols"].values():
        assert sym["sequencer"]["lost"] == 0
    if fault in ("server_shutdown", "connection_age_limit"):
        # Make-before-break: the overlap yields duplicates (dropped), never a gap.
        for sym in stats["symbols"].values():
            assert sym["sequencer"]["gaps"] == 0
            assert sym["resyncs"] == 0
        assert sum(s["sequencer"]["duplicates"] for s in stats["symbols"].values()) > 0
        assert stats["feed"]["disconnects"] == 0 or fault == "server_shutdown"
    if fault in ("periodic_disconnects", "skipped_messages", "stall"):
        assert sum(h["backfilled"] for h in history.values()) > 0
    if fault == "malformed_frames":
        assert stats["feed"]["disconnects"] == 0
        assert stats["feed"]["connects"] == 1


def test_all_faults_and_a_redis_outage(
    tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    flags = [
        "--fault-close-every", "2.5",
        "--fault-skip-trade-every", "300",
        "--fault-break-depth-every", "40",
        "--fault-malformed-every", "200",
        "--fault-shutdown-after", "1.5", "--fault-shutdown-delay", "0.5",
        "--fault-snapshot-delay", "0.3", "--fault-snapshot-fail-every", "3",
        "--fault-stall-after", "1.0", "--fault-stall-for", "0.3",
    ]  # fmt: skip
    with sim_process([*SYNTHETIC, *flags], tmp_path) as sim:
        cfg = gateway_config(sim, tmp_path, redis_server.url, symbols=SYMBOLS)

        async def scenario() -> tuple[dict[str, Any], dict[str, int | None]]:
            async with running_gateway(cfg) as gw:
                assert gw.streams is not None
                streams = gw.streams
                await until(gw, lambda: _sym(gw, "trades") > 2000, "trades before the outage")
                redis_server.stop()
                at_outage = _sym(gw, "trades")
                next_at_outage = {s.lower(): st.sequencer.next_id for s, st in gw.symbols.items()}
                await until(
                    gw,
                    lambda: not streams.connected and _sym(gw, "trades") > at_outage + 3000,
                    "trades during the outage",
                )
                assert streams.pending > 0
                written_before = gw.writer.stats.rows_written.get("trades", 0)
                await until(
                    gw,
                    lambda: gw.writer.stats.rows_written.get("trades", 0) > written_before,
                    "DuckDB keeps receiving while Redis is down",
                )
                redis_server.start()
                await until(gw, lambda: streams.connected and streams.pending == 0, "catch-up")
                await until(
                    gw,
                    lambda: (
                        _gaps(gw) >= 3
                        and _sym(gw, "resyncs") >= 2
                        and gw.bad.counts["malformed_frame"] >= 3
                        and _feed(gw, "handovers") >= 1
                    ),
                    "every kind of fault",
                )
                await until(gw, lambda: _repaired(gw), "repair")
            return gw.stats(), next_at_outage

        stats, next_at_outage = asyncio.run(scenario())
        history = check_history(cfg.db_path, sim)
    for sym, h in history.items():
        assert h["backfilled"] > 0
        # Redis lost its data when it stopped (no persistence in the test server); what was
        # buffered during the outage was written on its return, then everything after it.
        ids = [int(e[0].split(b"-")[0]) for e in redis_client.xrange(f"trades:{{{sym}}}")]
        assert ids, f"{sym}: nothing in redis after the outage"
        assert ids == list(range(ids[0], h["last"] + 1))
        first_in_outage = next_at_outage[sym]
        assert first_in_outage is not None
        assert ids[0] <= first_in_outage
        assert stats["symbols"][sym.upper()]["sequencer"]["lost"] == 0
    assert stats["redis"]["outages"] >= 1
    assert stats["redis"]["dropped_buffer_full"] == 0
