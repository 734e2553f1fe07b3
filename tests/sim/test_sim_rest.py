"""REST protocol points over a real socket with a minimal HTTP client: endpoints, shapes,
request weights (``X-MBX-USED-WEIGHT-1M``, HTTP 429) and Binance's error codes.
"""

from __future__ import annotations

import json

import pytest
from sim_testkit import http_get, run

from cif.ingest.endpoints import depth_weight
from cif.sim.server import ServerConfig, SimServer
from cif.sim.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(60)


def _source() -> SyntheticSource:
    src = SyntheticSource(["btcusdt", "ethusdt"], rate=5000, seed=3, speed=1.0, start_ms=10**12)
    for _ in range(50):  # some history before the server starts (event time only)
        src.market.books["btcusdt"].step(False, False, False)
        src.market.books["ethusdt"].step(False, False, False)
    return src


async def _with_server(check: object, weight_limit: int = 6000) -> None:
    # A frozen weight clock: the one-minute window never rolls over during a test.
    server = SimServer(_source(), ServerConfig(port=0, weight_limit=weight_limit), lambda: 30.0)
    await server.start()
    try:
        await check(server.port)  # type: ignore[operator]
    finally:
        await server.stop()


def test_ping_time_exchange_info() -> None:
    async def check(port: int) -> None:
        res = await http_get(port, "/api/v3/ping")
        assert (res.status, res.json()) == (200, {})
        assert res.headers["x-mbx-used-weight-1m"] == "1"
        res = await http_get(port, "/api/v3/time")
        assert res.status == 200
        assert res.json()["serverTime"] >= 10**12
        res = await http_get(port, "/api/v3/exchangeInfo")
        assert res.headers["x-mbx-used-weight-1m"] == "22"
        info = res.json()
        assert {s["symbol"] for s in info["symbols"]} == {"BTCUSDT", "ETHUSDT"}
        btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        res = await http_get(port, "/api/v3/exchangeInfo?symbol=ETHUSDT")
        assert [s["symbol"] for s in res.json()["symbols"]] == ["ETHUSDT"]
        res = await http_get(port, '/api/v3/exchangeInfo?symbols=["BTCUSDT"]')
        assert [s["symbol"] for s in res.json()["symbols"]] == ["BTCUSDT"]

    run(_with_server(check))


def test_depth_snapshot_shape_and_weight() -> None:
    async def check(port: int) -> None:
        res = await http_get(port, "/api/v3/depth?symbol=BTCUSDT&limit=10")
        assert res.status == 200
        assert res.headers["content-type"].startswith("application/json")
        book = res.json()
        assert set(book) == {"lastUpdateId", "bids", "asks"}
        assert len(book["bids"]) == len(book["asks"]) == 10
        bids = [float(p) for p, _ in book["bids"]]
        asks = [float(p) for p, _ in book["asks"]]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert bids[0] < asks[0]
        assert all(len(q.split(".")[1]) == 8 for _, q in book["bids"])
        used = 5
        for limit, weight in ((500, 25), (1000, 50), (5000, 250), (9999, 250)):
            assert depth_weight(min(limit, 5000)) == weight
            res = await http_get(port, f"/api/v3/depth?symbol=BTCUSDT&limit={limit}")
            used += weight
            assert res.headers["x-mbx-used-weight-1m"] == str(used)
            assert len(res.json()["bids"]) <= min(limit, 5000)

    run(_with_server(check))


def test_trades_and_historical_trades() -> None:
    async def check(port: int) -> None:
        res = await http_get(port, "/api/v3/trades?symbol=BTCUSDT&limit=5")
        rows = res.json()
        assert len(rows) == 5
        assert set(rows[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker",
                                "isBestMatch"}  # fmt: skip
        ids = [r["id"] for r in rows]
        assert ids == list(range(ids[0], ids[0] + 5))
        first = ids[0] - 100
        res = await http_get(port, f"/api/v3/historicalTrades?symbol=BTCUSDT&fromId={first}")
        hist = res.json()
        assert hist[0]["id"] == first
        assert [r["id"] for r in hist] == list(range(first, first + len(hist)))
        assert res.headers["x-mbx-used-weight-1m"] == "50"
        for r in hist[:50]:
            expected = float(r["price"]) * float(r["qty"])
            assert float(r["quoteQty"]) == pytest.approx(expected, abs=1e-7)

    run(_with_server(check))


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        ("/api/v3/depth", 400, -1102),
        ("/api/v3/depth?symbol=NOPEUSDT", 400, -1121),
        ("/api/v3/depth?symbol=btcusdt", 400, -1100),
        ("/api/v3/depth?symbol=BTCUSDT&limit=ten", 400, -1100),
        ("/api/v3/depth?symbol=BTCUSDT&limit=0", 400, -1130),
        ("/api/v3/depth?symbol=BTCUSDT&colour=red", 400, -1104),
        ("/api/v3/historicalTrades?symbol=BTCUSDT&fromId=-3", 400, -1100),
        ("/api/v3/trades?symbol=", 400, -1102),
        ("/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT", 400, -1101),
        ('/api/v3/exchangeInfo?symbols=["BTCUSDT","XYZ"]', 400, -1121),
        ("/api/v3/exchangeInfo?symbols=notjson", 400, -1130),
        ("/api/v3/nosuch", 404, -1000),
    ],
)
def test_errors(target: str, status: int, code: int) -> None:
    async def check(port: int) -> None:
        res = await http_get(port, target)
        assert res.status == status
        body = res.json()
        assert set(body) == {"code", "msg"}
        assert body["code"] == code
        assert isinstance(body["msg"], str)
        assert body["msg"]

    run(_with_server(check))


def test_weight_limit_gives_429() -> None:
    async def check(port: int) -> None:
        for i in range(1, 5):
            res = await http_get(port, "/api/v3/depth?symbol=BTCUSDT")
            assert res.status == 200
            assert res.headers["x-mbx-used-weight-1m"] == str(5 * i)
        res = await http_get(port, "/api/v3/depth?symbol=BTCUSDT")
        assert res.status == 429
        assert res.json()["code"] == -1003
        assert res.headers["x-mbx-used-weight-1m"] == "25"
        assert int(res.headers["retry-after"]) >= 1
        assert (await http_get(port, "/api/v3/ping")).status == 429

    run(_with_server(check, weight_limit=20))


def test_stats_endpoint_is_weightless() -> None:
    async def check(port: int) -> None:
        res = await http_get(port, "/sim/stats")
        assert res.status == 200
        stats = json.loads(res.body)
        assert stats["faults"] == {}
        assert "x-mbx-used-weight-1m" not in res.headers

    run(_with_server(check))
