"""Binance REST for ingestion: depth snapshots and historical trades, within the weight limit.

Binance meters REST by request weight per IP and minute (6000 on spot). Every response says
how much is used in ``X-MBX-USED-WEIGHT-1M``; the client keeps its own use under
``weight_budget`` by waiting for the next minute window before a request that would cross
it, and honours ``Retry-After`` on HTTP 429 (too much weight) and 418 (IP banned for
ignoring 429s, which must never happen). Transient failures (network errors, 5xx, Binance's
-1001/-1003) are retried with backoff, indefinitely: a gap is only filled by retrying.
Other 4xx answers are the caller's mistake and raise ``RestError`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from cif._core import DepthSnapshot, Trade, parse_rest_depth, parse_rest_trades
from cif.ingest.backoff import Backoff
from cif.ingest.endpoints import HISTORICAL_TRADES_WEIGHT, WEIGHT_LIMIT_1M, depth_weight

log = logging.getLogger(__name__)

#: Most trades one historicalTrades request returns.
MAX_TRADES_PER_REQUEST = 1000


class RestError(Exception):
    """A REST request failed for a reason retrying cannot fix (bad symbol, bad parameter)."""

    def __init__(self, status: int, body: str, path: str) -> None:
        super().__init__(f"HTTP {status} from {path}: {body[:300]}")
        self.status = status
        self.body = body
        self.path = path


@dataclass(slots=True)
class RestStats:
    """Counters for logs and health endpoints."""

    requests: int = 0
    ok: int = 0
    retries: int = 0
    throttled: int = 0
    budget_waits: int = 0
    used_weight: int = 0


def _seconds_to_next_minute(now: float) -> float:
    return 60.0 - (now % 60.0)


class RestClient:
    """Async Binance REST client for the endpoints ingestion needs."""

    def __init__(
        self,
        base_url: str,
        *,
        weight_budget: int = 4800,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        window_remaining: Callable[[], float] | None = None,
    ) -> None:
        if not 0 < weight_budget <= WEIGHT_LIMIT_1M:
            raise ValueError(f"weight budget must be in 1..{WEIGHT_LIMIT_1M}")
        self.base_url = base_url.rstrip("/")
        self.weight_budget = weight_budget
        self.stats = RestStats()
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._backoff = backoff or Backoff(base_s=0.25, cap_s=10.0)
        self._window_remaining = window_remaining or (lambda: _seconds_to_next_minute(time.time()))
        # One request at a time: the weight check and the header it updates stay consistent.
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def depth(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        """``GET /api/v3/depth``: a snapshot of ``limit`` levels per side."""
        params = {"symbol": symbol.upper(), "limit": str(limit)}
        body, recv_ns = await self._get("/api/v3/depth", params, depth_weight(limit))
        return parse_rest_depth(body, symbol.upper(), recv_ns)

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = MAX_TRADES_PER_REQUEST
    ) -> list[Trade]:
        """``GET /api/v3/historicalTrades``: up to ``limit`` trades from id ``from_id`` on."""
        params = {"symbol": symbol.upper(), "fromId": str(from_id), "limit": str(limit)}
        body, recv_ns = await self._get(
            "/api/v3/historicalTrades", params, HISTORICAL_TRADES_WEIGHT
        )
        return parse_rest_trades(body, symbol.upper(), recv_ns)

    async def _get(self, path: str, params: dict[str, str], weight: int) -> tuple[bytes, int]:
        async with self._lock:
            while True:
                if self.stats.used_weight + weight > self.weight_budget:
                    wait = self._window_remaining()
                    self.stats.budget_waits += 1
                    log.info(
                        "REST weight %d + %d would exceed the budget %d: waiting %.1fs",
                        self.stats.used_weight,
                        weight,
                        self.weight_budget,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    self.stats.used_weight = 0
                self.stats.requests += 1
                try:
                    resp = await self._http.get(path, params=params)
                except httpx.HTTPError as exc:
                    await self._retry(path, f"{type(exc).__name__}: {exc}")
                    continue
                recv_ns = time.time_ns()
                used = resp.headers.get("x-mbx-used-weight-1m")
                if used is not None and used.isdigit():
                    self.stats.used_weight = int(used)
                if resp.status_code == 200:
                    self.stats.ok += 1
                    self._backoff.reset()
                    return resp.content, recv_ns
                if resp.status_code in (418, 429):
                    self.stats.throttled += 1
                    retry_after = _retry_after(resp.headers.get("retry-after"))
                    wait = retry_after if retry_after is not None else self._window_remaining()
                    log.warning(
                        "REST %s answered %d (weight %s): waiting %.1fs as told",
                        path,
                        resp.status_code,
                        used,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    self.stats.used_weight = 0
                    continue
                if resp.status_code >= 500:
                    await self._retry(path, f"HTTP {resp.status_code}: {resp.text[:200]}")
                    continue
                raise RestError(resp.status_code, resp.text, path)

    async def _retry(self, path: str, why: str) -> None:
        self.stats.retries += 1
        delay = self._backoff.next_delay()
        log.warning("REST %s failed (%s): retrying in %.2fs", path, why, delay)
        await asyncio.sleep(delay)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
