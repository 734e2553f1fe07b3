"""The FastAPI app: REST endpoints over Redis (and the sealed history), plus the WebSocket.

``create_app(config)`` builds an app that reads the streams of ``config.symbols`` under
``config.namespace``. It owns one Redis client (created here, closed at shutdown) and the
WebSocket :class:`~cif.api.hub.Hub`. The model behind ``POST /forecast`` is any object with
the :class:`Scorer` shape (``cif.forecast.models.Model`` has it); without one that endpoint
answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
import redis.asyncio as aioredis
from fastapi import FastAPI, Query, Request, Response, WebSocket
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

import cif
from cif.api.hub import Hub
from cif.api.models import (
    ErrorResponse,
    EvaluationResponse,
    FeatureRow,
    ForecastList,
    ForecastRecord,
    ForecastRequest,
    ForecastResult,
    HealthResponse,
    ModelInfo,
    StreamStatus,
    SymbolsResponse,
    SymbolStatus,
    TradeList,
    TradeRecord,
    WebSocketStatus,
)
from cif.api.streams import (
    Entry,
    HistoryTrades,
    MalformedEntry,
    decode_evaluation,
    decode_features,
    decode_forecast,
    decode_trade,
    json_safe,
    latest_entry,
    recent_entries,
)
from cif.bus.keys import eval_key, features_key, forecasts_key, trades_key
from cif.ingest.endpoints import normalize_symbols

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """What ``POST /forecast`` needs from a model: its metadata and ``predict``."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def horizon(self) -> str: ...
    @property
    def horizon_ms(self) -> int: ...
    @property
    def classes(self) -> Sequence[str]: ...
    @property
    def features(self) -> Sequence[str]: ...

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Class probabilities, shape ``(n, len(classes))``, for ``x`` of shape
        ``(n, len(features))``; NaN marks a missing value (the model imputes it)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Everything the API service needs. ``symbols`` as for ``cif live``."""

    symbols: Sequence[str] = ("btcusdt",)
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = ""
    history_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    scorer: Scorer | None = None
    #: per-client WebSocket queue (messages); a client that lets it fill up is dropped
    ws_queue_size: int = 1024
    #: stream entries per XREAD of a WebSocket stream reader (capped at a queue quarter)
    ws_read_count: int = 100
    #: how long closing a dropped client may wait for it to take the close frame
    ws_close_timeout_s: float = 5.0
    #: offer permessage-deflate to WebSocket clients (off: small messages, CPU and latency)
    ws_compression: bool = False
    #: Redis socket timeout for REST reads, s
    redis_timeout_s: float = 5.0
    access_log: bool = False


class ApiError(Exception):
    """An error answered as ``ErrorResponse`` with ``status``."""

    def __init__(self, status: int, detail: str, known_symbols: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.known_symbols = known_symbols


_ERRORS_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown symbol, or nothing published yet."}
}
_ERRORS_503: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "Redis is unreachable."}
}

_DESCRIPTION = """\
Short-horizon forecasts of crypto prices from order-flow features, served from the Redis
streams the cif pipeline writes (`features:{symbol}`, `forecasts:{symbol}`,
`trades:{symbol}`), with recent trades falling back to the sealed DuckDB/Parquet history.

Errors: an unknown symbol is a 404 whose body lists the known symbols; invalid query values
or bodies are a 422 naming the offending field; 503 means Redis is unreachable.

**WebSocket `/ws`** (not part of this document): send
`{"op": "subscribe", "symbols": ["btcusdt"], "channels": ["forecasts", "features", "trades"]}`
(`channels` defaults to `["forecasts"]`) and wait for `{"op": "subscribed", ...}`; from then
on every new entry is pushed, in stream order, as
`{"channel": "forecasts", "symbol": "btcusdt", "data": {..., "sent_ns": ...}}` where `data` has
the fields of the matching REST record and `sent_ns` is the server's wall clock just before
sending. `{"op": "unsubscribe", ...}` stops them. Bad messages get `{"error": "..."}` and the
connection stays open. A client that does not keep up (its queue fills) is closed with code
1008 and a reason. `/ws?batch=true` sends the records queued together as one JSON array
frame (`[{"channel": ..., "symbol": ..., "data": {...}}, ...]`, in order, all with the same
`sent_ns`); replies stay single objects. At thousands of records a second it costs both ends
a fraction of the per-record frames.
"""

_TAGS = [
    {"name": "system", "description": "Health and configuration."},
    {"name": "forecasts", "description": "Published forecasts and stateless scoring."},
    {"name": "features", "description": "Feature rows the forecasts are made from."},
    {"name": "trades", "description": "Normalized exchange trades."},
    {"name": "evaluation", "description": "Live evaluation of the forecasts."},
]

SymbolPath = Annotated[
    str,
    PathParam(
        description="Symbol, case-insensitive, e.g. btcusdt.",
        openapi_examples={"btcusdt": {"summary": "Bitcoin / Tether", "value": "btcusdt"}},
    ),
]
Limit = Annotated[
    int,
    Query(
        ge=1,
        le=1000,
        description="How many, 1..1000 (newest last).",
        openapi_examples={"ten": {"summary": "the last ten", "value": 10}},
    ),
]


def _redis_client(config: ApiConfig) -> aioredis.Redis:
    # One quick retry (a pooled connection may be stale after a Redis restart), no back-off:
    # a request while Redis is down should fail fast with a 503, not hang.
    client: aioredis.Redis = aioredis.Redis.from_url(
        config.redis_url,
        decode_responses=True,
        socket_connect_timeout=min(config.redis_timeout_s, 2.0),
        socket_timeout=config.redis_timeout_s,
        retry=Retry(NoBackoff(), 1),
    )
    return client


def _newest(reply: Any) -> Entry | None:
    """The entry of an ``XREVRANGE ... COUNT 1`` reply (``None``: empty, or an error such as
    WRONGTYPE, which is logged)."""
    if isinstance(reply, Exception):
        log.warning("health: reading a stream failed: %s", reply)
        return None
    if not reply:
        return None
    entry_id, fields = reply[0]
    return str(entry_id), dict(fields)


def _status(entry: Entry | None, now_ms: int) -> StreamStatus | None:
    if entry is None:
        return None
    entry_id, fields = entry
    try:
        seq = int(fields["seq"])
        ts = int(fields["ts"])
    except (KeyError, ValueError):
        log.warning("newest entry %s has no valid seq/ts: %r", entry_id, fields)
        return None
    return StreamStatus(id=entry_id, seq=seq, ts=ts, age_ms=now_ms - ts)


def _check_scorer(scorer: Scorer) -> None:
    classes = list(scorer.classes)
    if "up" not in classes or "down" not in classes or len(set(classes)) != len(classes):
        raise ValueError(f"model classes must include 'down' and 'up' once each, got {classes}")


class _App(FastAPI):
    """FastAPI whose OpenAPI document names the features the configured model needs (the
    request body of ``POST /forecast`` requires exactly those)."""

    def __init__(self, scorer: Scorer | None, symbols: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scorer = scorer
        self._symbols = list(symbols)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            if self._scorer is not None:
                _describe_model_features(document, self._scorer, self._symbols)
        return super().openapi()


def _describe_model_features(
    document: dict[str, Any], scorer: Scorer, symbols: Sequence[str]
) -> None:
    request = document["components"]["schemas"]["ForecastRequest"]
    features = request["properties"]["features"]
    names = list(scorer.features)
    value = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    features["properties"] = {
        name: {**value, "description": f"feature {name!r} (null: missing value)"} for name in names
    }
    features["required"] = names
    features["description"] = (
        f"Feature values by name. Model {scorer.name} v{scorer.version} needs "
        f"{', '.join(names)}; null = missing value (imputed). Other names are ignored "
        "and listed in the response."
    )
    request["examples"] = [
        {"symbol": symbols[0], "features": {name: 0.0 for name in names}},
    ]


def create_app(config: ApiConfig) -> FastAPI:
    """The API app for ``config`` (``ValueError`` on an invalid configuration)."""
    symbols = normalize_symbols(list(config.symbols))
    known = set(symbols)
    namespace = config.namespace
    scorer = config.scorer
    if scorer is not None:
        _check_scorer(scorer)
    client = _redis_client(config)
    hub = Hub(
        client,
        config.redis_url,
        namespace,
        queue_size=config.ws_queue_size,
        read_count=config.ws_read_count,
        block_ms=1000,
        close_timeout_s=config.ws_close_timeout_s,
    )
    history = HistoryTrades(config.history_dir) if config.history_dir is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await hub.close()
        await client.aclose()
        if history is not None:
            await asyncio.to_thread(history.close)

    app = _App(
        scorer,
        symbols,
        title="cif — Crypto Impact Forecaster API",
        version=cif.__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.config = config

    def symbol_of(symbol: str) -> str:
        sym = symbol.strip().lower()
        if sym not in known:
            raise ApiError(
                404,
                f"unknown symbol {symbol!r}; known symbols: {', '.join(symbols)}",
                known_symbols=list(symbols),
            )
        return sym

    # -- error handlers ------------------------------------------------------------------------

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body = ErrorResponse(detail=exc.detail, known_symbols=exc.known_symbols)
        return JSONResponse(body.model_dump(), status_code=exc.status)

    async def on_redis_error(_request: Request, exc: Exception) -> Response:
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            body = ErrorResponse(detail=f"Redis unavailable: {type(exc).__name__}: {exc}")
            return JSONResponse(body.model_dump(), status_code=503)
        log.error("Redis error: %s", exc)  # e.g. WRONGTYPE: a key of ours holds something else
        body = ErrorResponse(detail=f"Redis error: {type(exc).__name__}: {exc}")
        return JSONResponse(body.model_dump(), status_code=500)

    async def on_malformed(_request: Request, exc: Exception) -> Response:
        log.error("malformed data in Redis: %s", exc)
        body = ErrorResponse(detail=f"malformed data in Redis: {exc}")
        return JSONResponse(body.model_dump(), status_code=500)

    async def on_invalid_request(_request: Request, exc: Exception) -> Response:
        # FastAPI's own handler, except that a non-finite input (a NaN or Infinity literal
        # in the body) is echoed as null instead of failing to serialize (a 500).
        assert isinstance(exc, RequestValidationError)
        errors = json_safe(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RedisError, on_redis_error)
    app.add_exception_handler(MalformedEntry, on_malformed)

    # -- system --------------------------------------------------------------------------------

    @app.get(
        "/health",
        tags=["system"],
        operation_id="getHealth",
        summary="Service health: Redis, newest feature row and forecast per symbol",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "Redis is unreachable."}},
    )
    async def health(response: Response) -> HealthResponse:
        redis_ok = True
        redis_error: str | None = None
        statuses: dict[str, SymbolStatus] = {}
        try:
            async with client.pipeline(transaction=False) as pipe:
                for sym in symbols:
                    pipe.xrevrange(features_key(sym, namespace), "+", "-", count=1)
                    pipe.xrevrange(forecasts_key(sym, namespace), "+", "-", count=1)
                replies = await pipe.execute(raise_on_error=False)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            redis_ok = False
            redis_error = f"{type(exc).__name__}: {exc}"
            replies = []
        now_ms = time.time_ns() // 1_000_000
        for i, sym in enumerate(symbols):
            if not redis_ok:
                statuses[sym] = SymbolStatus(features=None, forecasts=None)
                continue
            statuses[sym] = SymbolStatus(
                features=_status(_newest(replies[2 * i]), now_ms),
                forecasts=_status(_newest(replies[2 * i + 1]), now_ms),
            )
        stats = hub.stats
        if not redis_ok:
            response.status_code = 503
        return HealthResponse(
            status="ok" if redis_ok else "degraded",
            redis=redis_ok,
            redis_error=redis_error,
            namespace=namespace,
            model=None if scorer is None else f"{scorer.name} v{scorer.version}",
            symbols=statuses,
            websocket=WebSocketStatus(
                clients=stats.clients,
                dropped_slow=stats.dropped_slow,
                streams_tailed=stats.streams_tailed,
                malformed_entries=stats.malformed_entries,
            ),
        )

    @app.get(
        "/symbols",
        tags=["system"],
        operation_id="listSymbols",
        summary="The symbols this server serves",
        response_model=SymbolsResponse,
    )
    async def list_symbols() -> SymbolsResponse:
        return SymbolsResponse(symbols=list(symbols), namespace=namespace)

    @app.get(
        "/model",
        tags=["system"],
        operation_id="getModel",
        summary="The model behind POST /forecast: classes and the features it needs",
        response_model=ModelInfo,
        responses={404: {"model": ErrorResponse, "description": "No model is configured."}},
    )
    async def get_model() -> ModelInfo:
        if scorer is None:
            raise ApiError(404, "no model is configured on this server")
        return ModelInfo(
            name=scorer.name,
            version=scorer.version,
            horizon=scorer.horizon,
            horizon_ms=scorer.horizon_ms,
            classes=list(scorer.classes),
            features=list(scorer.features),
        )

    # -- forecasts -----------------------------------------------------------------------------

    @app.get(
        "/forecasts/{symbol}/latest",
        tags=["forecasts"],
        operation_id="getLatestForecast",
        summary="The newest published forecast of a symbol",
        response_model=ForecastRecord,
        responses={**_ERRORS_404, **_ERRORS_503},
    )
    async def latest_forecast(symbol: SymbolPath) -> ForecastRecord:
        sym = symbol_of(symbol)
        entry = await latest_entry(client, forecasts_key(sym, namespace))
        if entry is None:
            raise ApiError(404, f"no forecast published for {sym} yet")
        return ForecastRecord.model_validate(decode_forecast(*entry))

    @app.get(
        "/forecasts/{symbol}",
        tags=["forecasts"],
        operation_id="listForecasts",
        summary="Recent published forecasts of a symbol, newest last",
        response_model=ForecastList,
        responses={**_ERRORS_404, **_ERRORS_503},
    )
    async def list_forecasts(symbol: SymbolPath, limit: Limit = 100) -> ForecastList:
        sym = symbol_of(symbol)
        entries = await recent_entries(client, forecasts_key(sym, namespace), limit)
        return ForecastList(
            symbol=sym,
            forecasts=[ForecastRecord.model_validate(decode_forecast(*e)) for e in entries],
        )

    @app.post(
        "/forecast",
        tags=["forecasts"],
        operation_id="scoreFeatures",
        summary="Score a feature vector with the configured model (stateless)",
        response_model=ForecastResult,
        responses={
            400: {"model": ErrorResponse, "description": "The body could not be read."},
            404: {"model": ErrorResponse, "description": "Unknown symbol."},
            503: {"model": ErrorResponse, "description": "No model is configured."},
        },
    )
    async def score(request: ForecastRequest) -> ForecastResult:
        if scorer is None:
            raise ApiError(503, "no model is configured on this server; start it with --model")
        sym = symbol_of(request.symbol) if request.symbol is not None else None
        needed = list(scorer.features)
        given = request.features
        missing = [name for name in needed if name not in given]
        if missing:
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": ("body", "features", name),
                        "msg": f"missing feature {name!r} (model {scorer.name} v{scorer.version}"
                        f" needs: {', '.join(needed)}; send null for an unknown value)",
                        "input": None,
                    }
                    for name in missing
                ]
            )
        row = [math.nan if given[name] is None else given[name] for name in needed]
        x = np.array([row], dtype=np.float64).reshape(1, len(needed))
        try:
            probs = np.asarray(scorer.predict(x), dtype=np.float64)
        except Exception as exc:
            log.exception("model %s v%s failed on %r", scorer.name, scorer.version, row)
            raise ApiError(
                500, f"model {scorer.name} v{scorer.version} failed: {type(exc).__name__}: {exc}"
            ) from exc
        classes = list(scorer.classes)
        if probs.shape != (1, len(classes)) or not np.all(np.isfinite(probs)):
            raise ApiError(
                500,
                f"model {scorer.name} v{scorer.version} returned invalid probabilities "
                f"(shape {probs.shape}, expected (1, {len(classes)}))",
            )
        p = {c: float(probs[0, i]) for i, c in enumerate(classes)}
        wanted = set(needed)
        return ForecastResult(
            symbol=sym,
            model=scorer.name,
            model_version=scorer.version,
            horizon=scorer.horizon,
            horizon_ms=scorer.horizon_ms,
            classes=classes,
            probabilities=p,
            prob_up=p["up"],
            prob_down=p["down"],
            prob_flat=p.get("flat"),
            imputed_features=[name for name in needed if given[name] is None],
            ignored_features=[name for name in given if name not in wanted],
        )

    # -- features ------------------------------------------------------------------------------

    @app.get(
        "/features/{symbol}/latest",
        tags=["features"],
        operation_id="getLatestFeatures",
        summary="The newest feature row of a symbol",
        response_model=FeatureRow,
        responses={**_ERRORS_404, **_ERRORS_503},
    )
    async def latest_features(symbol: SymbolPath) -> FeatureRow:
        sym = symbol_of(symbol)
        entry = await latest_entry(client, features_key(sym, namespace))
        if entry is None:
            raise ApiError(404, f"no feature row published for {sym} yet")
        return FeatureRow.model_validate(decode_features(entry[0], entry[1], sym))

    # -- trades --------------------------------------------------------------------------------

    @app.get(
        "/trades/{symbol}",
        tags=["trades"],
        operation_id="listTrades",
        summary="Recent trades of a symbol, newest last (Redis, else the sealed history)",
        response_model=TradeList,
        responses={**_ERRORS_404, **_ERRORS_503},
    )
    async def list_trades(symbol: SymbolPath, limit: Limit = 100) -> TradeList:
        sym = symbol_of(symbol)
        try:
            entries = await recent_entries(client, trades_key(sym, namespace), limit)
        except (RedisConnectionError, RedisTimeoutError):
            if history is None:
                raise
            log.warning("Redis unavailable; serving trades of %s from the history", sym)
            entries = []
        if entries:
            trades = [TradeRecord.model_validate(decode_trade(*e)) for e in entries]
            return TradeList(symbol=sym, source="redis", trades=trades)
        if history is not None:
            rows = await asyncio.to_thread(history.recent, sym, limit)
            if rows:
                trades = [TradeRecord.model_validate(r) for r in rows]
                return TradeList(symbol=sym, source="history", trades=trades)
        return TradeList(symbol=sym, source="none", trades=[])

    # -- evaluation ----------------------------------------------------------------------------

    @app.get(
        "/evaluation/{symbol}",
        tags=["evaluation"],
        operation_id="getEvaluation",
        summary="The forecaster's live evaluation summary for a symbol",
        response_model=EvaluationResponse,
        responses={**_ERRORS_404, **_ERRORS_503},
    )
    async def evaluation(symbol: SymbolPath) -> EvaluationResponse:
        sym = symbol_of(symbol)
        text = await client.get(eval_key(sym, namespace))
        if text is None:
            raise ApiError(404, f"no evaluation published for {sym} yet")
        return EvaluationResponse(symbol=sym, summary=decode_evaluation(str(text)))

    # -- WebSocket -----------------------------------------------------------------------------

    @app.websocket("/ws")
    async def websocket(ws: WebSocket, batch: bool = False) -> None:
        await hub.serve(ws, symbols, batch=batch)

    return app
