"""Request and response models of the API (they are its OpenAPI document).

Times: ``ts`` is exchange (event) time in ms, ``recv_ts_ns`` the local receive time of the
tick that triggered a row, ``published_ns`` / ``sent_ns`` wall clocks in ns. Non-finite
numbers are ``null`` (JSON has no NaN).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from cif.api.streams import Channel

_FORECAST_EXAMPLE: dict[str, Any] = {
    "symbol": "btcusdt",
    "seq": 1843,
    "ts": 1723075200123,
    "recv_ts_ns": 1723075200131042000,
    "horizon": "10s",
    "horizon_ms": 10000,
    "model": "ofi-heuristic",
    "model_version": 1,
    "prob_up": 0.62,
    "prob_down": 0.38,
    "prob_flat": None,
    "published_ns": 1723075200131388000,
}


class ErrorResponse(BaseModel):
    """What went wrong (every 4xx/5xx except request validation, which is 422)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "unknown symbol 'dogeusdt'; known symbols: btcusdt, ethusdt",
                    "known_symbols": ["btcusdt", "ethusdt"],
                }
            ]
        }
    )

    detail: str = Field(description="Human-readable description of the problem.")
    known_symbols: list[str] | None = Field(
        default=None, description="The symbols this server knows (on unknown-symbol errors)."
    )


class StreamStatus(BaseModel):
    """The newest entry of a stream."""

    id: str = Field(description="Redis entry ID (`<seq>-0`).")
    seq: int = Field(description="Ingest sequence number of the row.")
    ts: int = Field(description="Event time of the row, exchange ms.")
    age_ms: int = Field(description="Wall clock now minus `ts`, ms (how stale the row is).")


class SymbolStatus(BaseModel):
    features: StreamStatus | None = Field(description="Newest feature row; null if none.")
    forecasts: StreamStatus | None = Field(description="Newest forecast; null if none.")


class WebSocketStatus(BaseModel):
    clients: int = Field(description="Connected WebSocket clients.")
    dropped_slow: int = Field(description="Clients dropped because their queue was full.")
    streams_tailed: int = Field(description="Redis streams read for WebSocket clients.")
    malformed_entries: int = Field(description="Stream entries skipped as malformed.")


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "redis": True,
                    "redis_error": None,
                    "namespace": "",
                    "model": "ofi-heuristic v1",
                    "symbols": {
                        "btcusdt": {
                            "features": {
                                "id": "1843-0",
                                "seq": 1843,
                                "ts": 1723075200123,
                                "age_ms": 41,
                            },
                            "forecasts": {
                                "id": "1843-0",
                                "seq": 1843,
                                "ts": 1723075200123,
                                "age_ms": 40,
                            },
                        }
                    },
                    "websocket": {
                        "clients": 2,
                        "dropped_slow": 0,
                        "streams_tailed": 2,
                        "malformed_entries": 0,
                    },
                }
            ]
        }
    )

    status: Literal["ok", "degraded"] = Field(description="`degraded` when Redis is unreachable.")
    redis: bool = Field(description="Whether Redis answered.")
    redis_error: str | None = Field(description="Why Redis did not answer, if it did not.")
    namespace: str = Field(description="Prefix of every Redis key read ('' for none).")
    model: str | None = Field(description="The model POST /forecast uses, if one is configured.")
    symbols: dict[str, SymbolStatus] = Field(description="Per symbol: newest feature/forecast.")
    websocket: WebSocketStatus


class SymbolsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"symbols": ["btcusdt", "ethusdt"], "namespace": ""}]}
    )

    symbols: list[str] = Field(description="Symbols served, lower case.")
    namespace: str = Field(description="Prefix of every Redis key read ('' for none).")


class ForecastRecord(BaseModel):
    """One published forecast (a `forecasts:{symbol}` entry)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FORECAST_EXAMPLE]})

    symbol: str
    seq: int = Field(description="Seq of the feature row the forecast was made from.")
    ts: int = Field(description="Event time of that row, exchange ms.")
    recv_ts_ns: int = Field(description="Local receive time of the tick behind the row, ns.")
    horizon: str = Field(description='Forecast horizon, e.g. "10s".')
    horizon_ms: int = Field(description="Horizon in ms; 0 means the next mid change.")
    model: str
    model_version: int
    prob_up: float | None
    prob_down: float | None
    prob_flat: float | None = Field(default=None, description="Only for 3-class models.")
    published_ns: int = Field(description="Wall clock when the forecaster published, ns.")


class ForecastList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"symbol": "btcusdt", "forecasts": [_FORECAST_EXAMPLE]}]}
    )

    symbol: str
    forecasts: list[ForecastRecord] = Field(description="Most recent forecasts, newest last.")


class FeatureRow(BaseModel):
    """One feature row (a `features:{symbol}` entry)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "btcusdt",
                    "seq": 1843,
                    "ts": 1723075200123,
                    "recv_ts_ns": 1723075200131042000,
                    "kind": 0,
                    "features": {"mid": 61234.5, "ofi_10s": 3.25, "vwap_1s": None},
                }
            ]
        }
    )

    symbol: str
    seq: int
    ts: int = Field(description="Engine clock (event time), ms.")
    recv_ts_ns: int
    kind: int = Field(description="0: row after a trade, 1: after a book event.")
    features: dict[str, float | None] = Field(description="Feature values; null = undefined.")


class TradeRecord(BaseModel):
    seq: int
    trade_id: int
    ts: int = Field(description="Trade time, exchange ms.")
    event_ts: int = Field(description="Event time, exchange ms.")
    recv_ts_ns: int
    price: float
    qty: float
    side: Literal["buy", "sell"] = Field(description="Aggressor side.")
    backfilled: bool = Field(description="Recovered from REST after a gap.")


class TradeList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "btcusdt",
                    "source": "redis",
                    "trades": [
                        {
                            "seq": 1842,
                            "trade_id": 3727405001,
                            "ts": 1723075200120,
                            "event_ts": 1723075200121,
                            "recv_ts_ns": 1723075200131042000,
                            "price": 61234.51,
                            "qty": 0.0031,
                            "side": "buy",
                            "backfilled": False,
                        }
                    ],
                }
            ]
        }
    )

    symbol: str
    source: Literal["redis", "history", "none"] = Field(
        description="Where the trades came from: the Redis stream, the sealed history "
        "segments (when Redis has none), or nowhere (no trades yet)."
    )
    trades: list[TradeRecord] = Field(description="Most recent trades, newest last.")


class EvaluationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "btcusdt",
                    "summary": {"model": "ofi-heuristic", "scored": 1200, "accuracy": 0.54},
                }
            ]
        }
    )

    symbol: str
    summary: dict[str, Any] = Field(
        description="The forecaster's evaluation summary, as published (non-finite -> null)."
    )


class ModelInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "ofi-heuristic",
                    "version": 1,
                    "horizon": "10s",
                    "horizon_ms": 10000,
                    "classes": ["down", "up"],
                    "features": ["ofi_10s"],
                }
            ]
        }
    )

    name: str
    version: int
    horizon: str
    horizon_ms: int
    classes: list[str] = Field(description='Class order of the probabilities, e.g. ["down", "up"].')
    features: list[str] = Field(description="Feature names POST /forecast needs.")


class ForecastRequest(BaseModel):
    """Features to score (stateless: nothing is stored)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # no coercion: "1.5" or false is not a feature value
        json_schema_extra={"examples": [{"symbol": "btcusdt", "features": {"ofi_10s": 3.25}}]},
    )

    symbol: str | None = Field(
        default=None, description="Optional; must be a known symbol when given."
    )
    features: dict[str, FiniteFloat | None] = Field(
        max_length=10_000,
        description="Feature values by name. null = missing value (the model imputes it). "
        "Every feature the model uses must be present; others are ignored and listed.",
    )


class ForecastResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "btcusdt",
                    "model": "ofi-heuristic",
                    "model_version": 1,
                    "horizon": "10s",
                    "horizon_ms": 10000,
                    "classes": ["down", "up"],
                    "probabilities": {"down": 0.38, "up": 0.62},
                    "prob_up": 0.62,
                    "prob_down": 0.38,
                    "prob_flat": None,
                    "imputed_features": [],
                    "ignored_features": ["mid"],
                }
            ]
        }
    )

    symbol: str | None
    model: str
    model_version: int
    horizon: str
    horizon_ms: int
    classes: list[str]
    probabilities: dict[str, float] = Field(description="Probability per class.")
    prob_up: float
    prob_down: float
    prob_flat: float | None = Field(description="Only for 3-class models.")
    imputed_features: list[str] = Field(description="Features sent as null (imputed).")
    ignored_features: list[str] = Field(description="Features sent that the model does not use.")


def _default_channels() -> list[Channel]:
    return ["forecasts"]


class WsCommand(BaseModel):
    """A WebSocket client message."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["subscribe", "unsubscribe"]
    symbols: list[str] = Field(min_length=1, max_length=1000)
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
