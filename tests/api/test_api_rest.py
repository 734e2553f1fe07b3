"""REST endpoints of the API against a real uvicorn server and a real Redis."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
from test_api_kit import (
    FEATURE_NAMES,
    SYMBOLS,
    ApiServer,
    SoftmaxScorer,
    add_feature_rows,
    add_forecasts,
    add_trades,
    base_config,
    forecast_fields,
    running_api,
)

from cif.bus.keys import eval_key, forecasts_key, trades_key
from cif.forecast.evaluation import Evaluator
from cif.store.live_writer import LiveWriter
from event_builders import trade
from local_servers import free_port

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api(redis_server: RedisServer) -> Iterator[ApiServer]:
    with running_api(base_config(redis_server.url)) as server:
        yield server


@pytest.fixture
def http(api: ApiServer, redis_client: redis.Redis) -> Iterator[httpx.Client]:
    """A client on the shared server, with an empty Redis."""
    with httpx.Client(base_url=api.url, timeout=10.0) as client:
        yield client


def _unknown_symbol(resp: httpx.Response, symbol: str) -> None:
    assert resp.status_code == 404, resp.text
    body = resp.json()
    assert body["known_symbols"] == list(SYMBOLS)
    assert f"unknown symbol {symbol!r}" in body["detail"]
    assert "btcusdt, ethusdt, solusdt" in body["detail"]


def _validation_error(resp: httpx.Response, loc: list[Any]) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    errors = resp.json()["detail"]
    matching = [e for e in errors if e["loc"] == loc]
    assert matching, errors
    return dict(matching[0])


# --------------------------------------------------------------------------------------------
# system
# --------------------------------------------------------------------------------------------


def test_health_reports_redis_and_the_newest_rows_per_symbol(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    add_forecasts(redis_client, "btcusdt", [5, 9])
    add_feature_rows(redis_client, "btcusdt", [7, 9, 11])
    resp = http.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert body["redis"] is True
    assert body["redis_error"] is None
    assert body["model"] == "test-logistic v3"
    assert set(body["symbols"]) == set(SYMBOLS)
    btc = body["symbols"]["btcusdt"]
    assert btc["forecasts"]["seq"] == 9
    assert btc["forecasts"]["id"] == "9-0"
    assert btc["forecasts"]["ts"] == 1_723_075_200_009
    assert btc["features"]["seq"] == 11
    assert btc["features"]["ts"] == 1_011
    assert btc["features"]["age_ms"] > 0
    assert body["symbols"]["ethusdt"] == {"features": None, "forecasts": None}
    assert body["websocket"]["clients"] == 0


def test_health_is_503_and_every_redis_read_says_so_when_redis_is_down(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with (
        running_api(base_config(dead, redis_timeout_s=1.0)) as server,
        httpx.Client(base_url=server.url, timeout=10.0) as http,
    ):
        resp = http.get("/health")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "degraded"
        assert body["redis"] is False
        assert "ConnectionError" in body["redis_error"]
        assert body["symbols"]["btcusdt"] == {"features": None, "forecasts": None}
        for path in ("/forecasts/btcusdt/latest", "/forecasts/btcusdt", "/trades/btcusdt"):
            resp = http.get(path)
            assert resp.status_code == 503, path
            assert resp.json()["detail"].startswith("Redis unavailable: ConnectionError")
        assert http.get("/symbols").status_code == 200


def test_symbols_and_model(http: httpx.Client) -> None:
    assert http.get("/symbols").json() == {"symbols": list(SYMBOLS), "namespace": ""}
    model = http.get("/model").json()
    assert model == {
        "name": "test-logistic",
        "version": 3,
        "horizon": "10s",
        "horizon_ms": 10_000,
        "classes": ["down", "flat", "up"],
        "features": ["ofi_10s", "spread_bps"],
    }


# --------------------------------------------------------------------------------------------
# forecasts
# --------------------------------------------------------------------------------------------


def test_latest_forecast(http: httpx.Client, redis_client: redis.Redis) -> None:
    resp = http.get("/forecasts/btcusdt/latest")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "no forecast published for btcusdt yet"
    add_forecasts(redis_client, "btcusdt", [3, 4])
    redis_client.xadd(
        forecasts_key("btcusdt"),
        forecast_fields("btcusdt", 8, prob_up=0.25, prob_flat="0.5", prob_down="0.25"),
        id="8-0",
    )
    for symbol in ("btcusdt", "BTCUSDT", " BtcUsdt"):
        resp = http.get(f"/forecasts/{symbol}/latest")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["seq"] == 8
        assert (body["prob_up"], body["prob_flat"], body["prob_down"]) == (0.25, 0.5, 0.25)
        assert body["horizon"] == "10s"
        assert body["recv_ts_ns"] == 1_723_075_200_000_008_000
        assert isinstance(body["published_ns"], int)
    _unknown_symbol(http.get("/forecasts/dogeusdt/latest"), "dogeusdt")


def test_recent_forecasts_newest_last_and_limit_checked(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    assert http.get("/forecasts/ethusdt").json() == {"symbol": "ethusdt", "forecasts": []}
    add_forecasts(redis_client, "ethusdt", range(1, 151))
    body = http.get("/forecasts/ethusdt").json()
    assert [f["seq"] for f in body["forecasts"]] == list(range(51, 151))  # default 100
    body = http.get("/forecasts/ETHUSDT", params={"limit": 3}).json()
    assert [f["seq"] for f in body["forecasts"]] == [148, 149, 150]
    assert body["forecasts"][0]["prob_flat"] is None
    assert len(http.get("/forecasts/ethusdt", params={"limit": 1000}).json()["forecasts"]) == 150
    for bad in ("0", "1001", "-5", "abc", "2.5"):
        err = _validation_error(
            http.get("/forecasts/ethusdt", params={"limit": bad}), ["query", "limit"]
        )
        assert err["input"] == bad
    _unknown_symbol(http.get("/forecasts/xrpusdt"), "xrpusdt")


def test_malformed_forecast_entry_is_a_500_that_says_what_is_wrong(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    fields = forecast_fields("btcusdt", 4)
    del fields["horizon_ms"]
    redis_client.xadd(forecasts_key("btcusdt"), fields, id="4-0")
    resp = http.get("/forecasts/btcusdt/latest")
    assert resp.status_code == 500
    assert resp.json()["detail"] == "malformed data in Redis: entry 4-0 has no field 'horizon_ms'"


def test_a_key_holding_something_else_is_a_500_that_says_so(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    redis_client.set(forecasts_key("btcusdt"), "not a stream")
    resp = http.get("/forecasts/btcusdt/latest")
    assert resp.status_code == 500
    assert resp.json()["detail"].startswith("Redis error: ResponseError: WRONGTYPE")
    body = http.get("/health").json()  # health still answers, without that stream
    assert body["status"] == "ok"
    assert body["symbols"]["btcusdt"]["forecasts"] is None


# --------------------------------------------------------------------------------------------
# POST /forecast
# --------------------------------------------------------------------------------------------


def test_scoring_a_feature_vector(http: httpx.Client) -> None:
    scorer = SoftmaxScorer()
    resp = http.post(
        "/forecast",
        json={"symbol": "BTCUSDT", "features": {"ofi_10s": 12.5, "spread_bps": 0.8, "mid": 1.0}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected = scorer.expected(12.5, 0.8)
    assert body["probabilities"] == pytest.approx(expected, abs=0, rel=1e-15)
    assert body["prob_up"] == body["probabilities"]["up"]
    assert body["prob_flat"] == body["probabilities"]["flat"]
    assert body["classes"] == ["down", "flat", "up"]
    assert body["symbol"] == "btcusdt"
    assert (body["model"], body["model_version"], body["horizon"]) == ("test-logistic", 3, "10s")
    assert body["ignored_features"] == ["mid"]
    assert body["imputed_features"] == []
    assert math.fsum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-12)


def test_scoring_null_is_a_missing_value_the_model_imputes(http: httpx.Client) -> None:
    body = http.post("/forecast", json={"features": {"ofi_10s": None, "spread_bps": 2.0}}).json()
    assert body["imputed_features"] == ["ofi_10s"]
    assert body["symbol"] is None
    assert body["probabilities"] == pytest.approx(SoftmaxScorer().expected(0.0, 2.0), rel=1e-15)


def test_scoring_rejects_missing_and_non_finite_features(http: httpx.Client) -> None:
    resp = http.post("/forecast", json={"features": {"spread_bps": 1.0, "other": 2.0}})
    err = _validation_error(resp, ["body", "features", "ofi_10s"])
    assert "missing feature 'ofi_10s'" in err["msg"]
    assert "needs: ofi_10s, spread_bps" in err["msg"]
    assert len(resp.json()["detail"]) == 1
    resp = http.post("/forecast", json={"features": {}})
    assert [e["loc"][-1] for e in resp.json()["detail"]] == ["ofi_10s", "spread_bps"]
    # NaN / Infinity are not JSON; sent anyway, they are refused (null is the missing value).
    raw = '{"features": {"ofi_10s": NaN, "spread_bps": Infinity}}'
    resp = http.post("/forecast", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert {tuple(e["loc"]) for e in resp.json()["detail"]} >= {
        ("body", "features", "ofi_10s"),
        ("body", "features", "spread_bps"),
    }
    _validation_error(http.post("/forecast", json={"symbol": "btcusdt"}), ["body", "features"])
    _validation_error(
        http.post("/forecast", json={"features": {"ofi_10s": "high", "spread_bps": 1}}),
        ["body", "features", "ofi_10s"],
    )
    resp = http.post("/forecast", json={"symbol": "adausdt", "features": {}})
    _unknown_symbol(resp, "adausdt")


def test_without_a_model_scoring_is_503_and_model_is_404(redis_server: RedisServer) -> None:
    with (
        running_api(base_config(redis_server.url, scorer=None)) as server,
        httpx.Client(base_url=server.url, timeout=10.0) as http,
    ):
        resp = http.post("/forecast", json={"features": {"ofi_10s": 1.0}})
        assert resp.status_code == 503
        assert "no model is configured" in resp.json()["detail"]
        assert http.get("/model").status_code == 404
        assert http.get("/health").json()["model"] is None


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


def test_latest_features(http: httpx.Client, redis_client: redis.Redis) -> None:
    resp = http.get("/features/solusdt/latest")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "no feature row published for solusdt yet"
    add_feature_rows(redis_client, "solusdt", [10, 20])
    body = http.get("/features/solusdt/latest").json()
    assert body == {
        "symbol": "solusdt",
        "seq": 20,
        "ts": 1_020,
        "recv_ts_ns": 5_020,
        "kind": 0,
        "features": dict(zip(FEATURE_NAMES, [120.0, 1.25, 20.0, None], strict=True)),
    }
    assert list(body["features"]) == list(FEATURE_NAMES)
    _unknown_symbol(http.get("/features/nope/latest"), "nope")


# --------------------------------------------------------------------------------------------
# trades
# --------------------------------------------------------------------------------------------


def test_trades_from_redis(http: httpx.Client, redis_client: redis.Redis) -> None:
    assert http.get("/trades/btcusdt").json() == {
        "symbol": "btcusdt",
        "source": "none",
        "trades": [],
    }
    add_trades(redis_client, "btcusdt", range(100, 120))
    body = http.get("/trades/btcusdt", params={"limit": 5}).json()
    assert body["source"] == "redis"
    assert [t["trade_id"] for t in body["trades"]] == list(range(115, 120))
    first = body["trades"][0]
    assert first == {
        "seq": 230,
        "trade_id": 115,
        "ts": 1015,
        "event_ts": 1115,
        "recv_ts_ns": 10_115,
        "price": 1.5,
        "qty": 2.0,
        "side": "sell",
        "backfilled": False,
    }
    _validation_error(http.get("/trades/btcusdt", params={"limit": 0}), ["query", "limit"])
    _unknown_symbol(http.get("/trades/foo"), "foo")


def _seal_history(db: Path, history: Path, ids: range) -> None:
    writer = LiveWriter(db, history)
    writer.open()
    try:
        for tid in ids:
            writer.add_trade(trade(tid, sym="ETHUSDT", maker=tid % 2 == 0), tid, tid == ids[0])
        asyncio.run(writer.flush())
        assert asyncio.run(writer.seal()) >= 1
    finally:
        writer.close()


def test_trades_fall_back_to_the_sealed_history(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    config = base_config(redis_server.url, history_dir=history)
    with running_api(config) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
        assert http.get("/trades/ethusdt").json()["source"] == "none"  # no segment yet
        _seal_history(tmp_path / "cif.duckdb", history, range(1, 51))
        body = http.get("/trades/ethusdt", params={"limit": 3}).json()
        assert body["source"] == "history"
        assert [t["trade_id"] for t in body["trades"]] == [48, 49, 50]
        assert [t["side"] for t in body["trades"]] == ["sell", "buy", "sell"]
        assert body["trades"][-1]["seq"] == 50
        assert body["trades"][-1]["recv_ts_ns"] == 10_050
        assert len(http.get("/trades/ethusdt", params={"limit": 1000}).json()["trades"]) == 50
        # Redis has trades of the symbol: the fast path wins.
        add_trades(redis_client, "ethusdt", [77])
        body = http.get("/trades/ethusdt").json()
        assert body["source"] == "redis"
        assert [t["trade_id"] for t in body["trades"]] == [77]
        # Redis has none of this one, and the history neither.
        assert http.get("/trades/btcusdt").json()["source"] == "none"


def test_trades_come_from_the_history_while_redis_is_down(tmp_path: Path) -> None:
    history = tmp_path / "history"
    _seal_history(tmp_path / "cif.duckdb", history, range(1, 11))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    config = base_config(dead, history_dir=history, redis_timeout_s=1.0)
    with running_api(config) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
        body = http.get("/trades/ethusdt", params={"limit": 2}).json()
        assert body["source"] == "history"
        assert [t["trade_id"] for t in body["trades"]] == [9, 10]


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def test_evaluation_summary_as_the_forecaster_publishes_it(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    resp = http.get("/evaluation/btcusdt")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "no evaluation published for btcusdt yet"
    evaluator = Evaluator(("down", "up"), 1_000, symbol="btcusdt", model="heuristic")
    for i in range(40):
        mid = 100.0 + (i % 7) - (i % 3)
        evaluator.observe(i * 250, mid, (0.4, 0.6) if i % 2 else (0.7, 0.3))
    summary = evaluator.summary()
    assert summary["scored"] > 0
    redis_client.set(eval_key("btcusdt"), json.dumps(summary))
    body = http.get("/evaluation/BTCUSDT").json()
    assert body == {"symbol": "btcusdt", "summary": json.loads(json.dumps(summary))}
    # Python's json writes NaN for NaN; the API turns it into null.
    redis_client.set(eval_key("ethusdt"), json.dumps({"auc": math.nan, "n": [1, math.inf]}))
    body = http.get("/evaluation/ethusdt").json()
    assert body["summary"] == {"auc": None, "n": [1, None]}
    redis_client.set(eval_key("solusdt"), "[1, 2]")
    resp = http.get("/evaluation/solusdt")
    assert resp.status_code == 500
    assert "not an object" in resp.json()["detail"]
    _unknown_symbol(http.get("/evaluation/bar"), "bar")


def test_eval_key_has_the_stream_key_layout() -> None:
    assert eval_key("BTCUSDT") == "eval:{btcusdt}"
    assert eval_key("btcusdt", "replay") == "replay:eval:{btcusdt}"
    with pytest.raises(ValueError, match="invalid symbol"):
        eval_key("btc:usdt")


# --------------------------------------------------------------------------------------------
# namespace
# --------------------------------------------------------------------------------------------


def test_a_namespaced_server_reads_only_its_namespace(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    add_forecasts(redis_client, "btcusdt", [1])
    add_forecasts(redis_client, "btcusdt", [2, 3], namespace="replay")
    add_trades(redis_client, "btcusdt", [5, 6], namespace="replay")
    redis_client.set(eval_key("btcusdt", "replay"), '{"scored": 1}')
    assert redis_client.exists(trades_key("btcusdt", "replay"))
    config = base_config(redis_server.url, namespace="replay")
    with running_api(config) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
        assert http.get("/forecasts/btcusdt/latest").json()["seq"] == 3
        assert [f["seq"] for f in http.get("/forecasts/btcusdt").json()["forecasts"]] == [2, 3]
        assert [t["trade_id"] for t in http.get("/trades/btcusdt").json()["trades"]] == [5, 6]
        assert http.get("/evaluation/btcusdt").json()["summary"] == {"scored": 1}
        assert http.get("/symbols").json()["namespace"] == "replay"
