"""The REST client against the simulator's REST (real HTTP over 127.0.0.1).

The simulator's weight window runs on a fast clock here (a "minute" lasts 0.5 s), so the
client's waits for the window are short without changing any logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from cif.ingest.rest_client import RestClient, RestError
from cif.sim.faults import FaultConfig
from cif.sim.server import ServerConfig, SimServer
from cif.sim.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(60)

#: real seconds per simulated weight-window minute
MINUTE_S = 0.5


class FastClock:
    """Wall-clock seconds running 60 / MINUTE_S times faster, for both sides."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.m0 = time.monotonic()

    def __call__(self) -> float:
        return self.t0 + (time.monotonic() - self.m0) * (60.0 / MINUTE_S)

    def window_remaining(self) -> float:
        return (60.0 - self() % 60.0) * MINUTE_S / 60.0


@contextlib.asynccontextmanager
async def sim(
    weight_limit: int = 6000,
    faults: FaultConfig | None = None,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[SimServer]:
    source = SyntheticSource(["btcusdt"], rate=2000, seed=4, start_ms=1_700_000_000_000)
    cfg = ServerConfig(port=0, weight_limit=weight_limit, faults=faults or FaultConfig())
    server = SimServer(source, cfg, weight_clock=clock or time.time)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _client(server: SimServer, **kw: object) -> RestClient:
    return RestClient(f"http://127.0.0.1:{server.port}", **kw)  # type: ignore[arg-type]


def test_depth_and_historical_trades_parse() -> None:
    async def scenario() -> None:
        async with sim() as server:
            client = _client(server)
            try:
                snap = await client.depth("btcusdt", 100)
                assert snap.symbol == "BTCUSDT"
                assert 0 < len(snap.bids) <= 100
                assert client.stats.used_weight == 5
                while not (recent := server.source.trade_store("btcusdt").recent(10)):
                    await asyncio.sleep(0.01)
                first = recent[0]["id"]
                trades = await client.historical_trades("btcusdt", first, 5)
                assert [t.trade_id for t in trades] == list(range(first, first + 5))
                assert client.stats.used_weight == 30
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_bad_symbol_is_an_error_not_a_retry() -> None:
    async def scenario() -> None:
        async with sim() as server:
            client = _client(server)
            try:
                with pytest.raises(RestError, match="HTTP 400"):
                    await client.depth("nosuchcoin", 100)
                assert client.stats.retries == 0
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_server_errors_are_retried_until_they_succeed() -> None:
    async def scenario() -> None:
        async with sim(faults=FaultConfig(snapshot_fail_every=2)) as server:
            client = _client(server)
            try:
                for _ in range(4):
                    snap = await client.depth("btcusdt", 100)
                    assert snap.bids
                assert client.stats.retries >= 2  # every second depth request fails (503)
                assert client.stats.ok == 4
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_client_stays_within_its_weight_budget() -> None:
    clock = FastClock()

    async def scenario() -> None:
        async with sim(weight_limit=100, clock=clock) as server:
            client = _client(server, weight_budget=80, window_remaining=clock.window_remaining)
            try:
                first = server.source.trade_store("btcusdt").recent(1)
                start = first[0]["id"] if first else 0
                for _ in range(10):  # 250 weight: three windows' worth
                    await client.historical_trades("btcusdt", start, 10)
                assert client.stats.budget_waits >= 2
                assert client.stats.throttled == 0, "never ran into a 429"
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_429_is_honoured_and_the_request_retried() -> None:
    # Real-time seconds, starting 58.5 s into a weight window: the server's Retry-After
    # (whole seconds, as on Binance) is then at most 2 s.
    m0 = time.monotonic()

    def clock() -> float:
        return 60_000.0 + 58.5 + (time.monotonic() - m0)

    async def scenario() -> None:
        async with sim(weight_limit=100, clock=clock) as server:
            # A budget above the server's limit: the client learns from the 429 instead.
            client = _client(server, weight_budget=6000)
            try:
                for _ in range(6):  # 150 weight > 100
                    trades = await client.historical_trades("btcusdt", 0, 10)
                    assert isinstance(trades, list)
                assert client.stats.throttled >= 1
                assert client.stats.ok == 6
            finally:
                await client.aclose()

    asyncio.run(scenario())
