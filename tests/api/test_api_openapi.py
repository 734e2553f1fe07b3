"""The OpenAPI document: valid, complete for client generators, and honoured by the live
server (a bounded schemathesis run finds no 5xx and no response that breaks the schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import Case
from test_api_kit import (
    ApiServer,
    add_feature_rows,
    add_forecasts,
    add_trades,
    base_config,
    running_api,
)

from cif.api.app import create_app
from cif.bus.keys import eval_key

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)

OPERATIONS = {
    ("get", "/health"): "getHealth",
    ("get", "/symbols"): "listSymbols",
    ("get", "/model"): "getModel",
    ("get", "/forecasts/{symbol}/latest"): "getLatestForecast",
    ("get", "/forecasts/{symbol}"): "listForecasts",
    ("post", "/forecast"): "scoreFeatures",
    ("get", "/features/{symbol}/latest"): "getLatestFeatures",
    ("get", "/trades/{symbol}"): "listTrades",
    ("get", "/evaluation/{symbol}"): "getEvaluation",
}


@pytest.fixture(scope="module")
def api(redis_server: RedisServer) -> Iterator[ApiServer]:
    """A server with data for btcusdt (so both 200s and 404s are reachable)."""
    if not redis_server.is_running:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    add_forecasts(client, "btcusdt", range(1, 30))
    add_feature_rows(client, "btcusdt", range(1, 30))
    add_trades(client, "btcusdt", range(1, 30))
    client.set(eval_key("btcusdt"), '{"scored": 3, "auc": NaN}')
    client.close()
    with running_api(base_config(redis_server.url)) as server:
        yield server


@pytest.fixture(scope="module")
def openapi(api: ApiServer) -> dict[str, Any]:
    resp = httpx.get(f"{api.url}/openapi.json", timeout=10.0)
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


def test_the_document_is_valid_openapi(openapi: dict[str, Any]) -> None:
    validate(openapi)
    assert openapi["openapi"].startswith("3.1")
    assert openapi["info"]["title"].startswith("cif")


def test_every_operation_has_an_id_a_tag_and_typed_responses(openapi: dict[str, Any]) -> None:
    found = {
        (method, path): op["operationId"]
        for path, item in openapi["paths"].items()
        for method, op in item.items()
    }
    assert found == OPERATIONS
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            assert op.get("tags"), (method, path)
            assert op.get("summary"), (method, path)
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in ok, (method, path)
            if "{symbol}" in path:
                assert "404" in op["responses"], (method, path)
                params = {p["name"]: p for p in op["parameters"]}
                assert params["symbol"]["examples"]
            if any(p.get("name") == "limit" for p in op.get("parameters", [])):
                limit = next(p for p in op["parameters"] if p["name"] == "limit")
                assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
                assert "422" in op["responses"]
    schemas = openapi["components"]["schemas"]
    for name in ("ForecastRecord", "FeatureRow", "TradeList", "HealthResponse", "ErrorResponse"):
        assert schemas[name].get("examples"), name


# The document the server serves is generated from the app; built here (no server needed:
# creating the app connects to nothing) so pytest can parametrize one test per operation.
# ``test_the_served_document_is_the_app_document`` checks they are the same.
APP_DOCUMENT = create_app(base_config("redis://127.0.0.1:1/0")).openapi()
schema = schemathesis.openapi.from_dict(APP_DOCUMENT)


def test_the_served_document_is_the_app_document(openapi: dict[str, Any]) -> None:
    assert openapi == APP_DOCUMENT


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_live_server_honours_its_schema(case: Case, api: ApiServer) -> None:
    response = case.call_and_validate(base_url=api.url, timeout=10.0)
    assert response.status_code < 500, response.text
