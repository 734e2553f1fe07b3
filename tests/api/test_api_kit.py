"""Helpers of the API tests (no tests here): the real server in a thread, a real minimal
model, and stream entries in the layouts the pipeline writes.

The server is ``cif.api.server.serve`` (uvicorn on a free 127.0.0.1 port) running in its own
thread and event loop, so tests talk to it over real sockets with httpx and the
``websockets`` client while it reads a real Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import redis
from numpy.typing import NDArray

from cif.api.app import ApiConfig
from cif.api.server import serve
from cif.bus.fanout import trade_entry
from cif.bus.keys import features_key, forecasts_key, trades_key
from cif.features.entries import feature_entry
from event_builders import trade

#: Failure guard for any single wait (never a synchronisation device).
GUARD_S = 30.0

SYMBOLS = ("btcusdt", "ethusdt", "solusdt")
FEATURE_NAMES = ("mid", "spread_bps", "ofi_10s", "trade_imbalance_count_1s")


class SoftmaxScorer:
    """A real (tiny) 3-class logistic model: ``softmax(z @ coef.T + intercept)`` with
    non-finite inputs imputed as 0, over ``ofi_10s`` and ``spread_bps``."""

    name = "test-logistic"
    version = 3
    horizon = "10s"
    horizon_ms = 10_000
    classes = ("down", "flat", "up")
    features = ("ofi_10s", "spread_bps")

    def __init__(self) -> None:
        self.coef = np.array([[-0.5, 0.1], [0.0, 0.3], [0.5, 0.1]])
        self.intercept = np.array([0.0, 0.2, 0.0])

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        z = np.where(np.isfinite(x), x, 0.0)
        z = np.clip(z, -1e6, 1e6)
        logits = z @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return out

    def expected(self, ofi: float, spread_bps: float) -> dict[str, float]:
        p = self.predict(np.array([[ofi, spread_bps]]))[0]
        return dict(zip(self.classes, p.tolist(), strict=True))


def base_config(redis_url: str, **overrides: Any) -> ApiConfig:
    config = ApiConfig(symbols=SYMBOLS, redis_url=redis_url, port=0, scorer=SoftmaxScorer())
    return replace(config, **overrides)


@dataclass
class ApiServer:
    port: int
    config: ApiConfig

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@contextlib.contextmanager
def running_api(config: ApiConfig) -> Iterator[ApiServer]:
    """``serve(config, stop)`` in a thread; yields once it listens, stops it on exit."""
    started = threading.Event()
    state: dict[str, Any] = {}

    def on_started(port: int) -> None:
        state["port"] = port
        started.set()

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = stop
        try:
            await serve(config, stop, on_started=on_started)
        except BaseException as exc:
            state["error"] = exc
            raise
        finally:
            started.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="api", daemon=True)
    thread.start()
    if not started.wait(GUARD_S) or "port" not in state:
        raise RuntimeError(f"API server did not start: {state.get('error')!r}")
    try:
        yield ApiServer(state["port"], config)
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(GUARD_S)
        assert not thread.is_alive(), "API server did not stop"
        assert "error" not in state, f"API server failed: {state['error']!r}"


def wait_until(check: Callable[[], Any], what: str, timeout: float = GUARD_S) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


async def wait_until_async(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = GUARD_S
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


# --------------------------------------------------------------------------------------------
# Entries, in the layouts the pipeline writes
# --------------------------------------------------------------------------------------------


def forecast_fields(symbol: str, seq: int, prob_up: float = 0.6, **extra: Any) -> dict[str, Any]:
    """A ``forecasts:{sym}`` entry of a binary model (spec: forecast record)."""
    fields: dict[str, Any] = {
        "symbol": symbol,
        "seq": seq,
        "ts": 1_723_075_200_000 + seq,
        "recv_ts_ns": 1_723_075_200_000_000_000 + seq * 1000,
        "horizon": "10s",
        "horizon_ms": 10_000,
        "model": "heuristic",
        "model_version": 1,
        "prob_up": repr(prob_up),
        "prob_down": repr(1.0 - prob_up),
        "published_ns": time.time_ns(),
    }
    fields.update(extra)
    return fields


def add_forecasts(
    client: redis.Redis, symbol: str, seqs: Sequence[int], namespace: str = ""
) -> None:
    key = forecasts_key(symbol, namespace)
    pipe = client.pipeline(transaction=False)
    for seq in seqs:
        pipe.xadd(key, forecast_fields(symbol, seq), id=f"{seq}-0")
    pipe.execute()


def add_feature_rows(
    client: redis.Redis, symbol: str, seqs: Sequence[int], namespace: str = ""
) -> None:
    """Rows through the processor's own ``feature_entry`` (one value NaN, as when a window is
    empty)."""
    key = features_key(symbol, namespace)
    pipe = client.pipeline(transaction=False)
    for seq in seqs:
        values = [100.0 + seq, 1.25, float(seq), math.nan]
        entry = feature_entry(key, seq, 1_000 + seq, 5_000 + seq, 0, FEATURE_NAMES, values)
        pipe.xadd(entry.key, dict(entry.fields), id=entry.entry_id)
    pipe.execute()


def add_trades(client: redis.Redis, symbol: str, ids: Sequence[int], namespace: str = "") -> None:
    """Trades parsed by the real parser and encoded by the gateway's ``trade_entry``."""
    key = trades_key(symbol, namespace)
    pipe = client.pipeline(transaction=False)
    for tid in ids:
        entry = trade_entry(key, trade(tid, sym=symbol.upper(), price="1.5"), tid * 2, False)
        pipe.xadd(entry.key, dict(entry.fields), id=entry.entry_id)
    pipe.execute()
