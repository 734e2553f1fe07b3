"""The public REST endpoints a market-data client uses, with Binance's weights and errors.

Served: ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo``, ``/api/v3/depth``,
``/api/v3/trades`` and ``/api/v3/historicalTrades`` (GET). Every response carries
``X-MBX-USED-WEIGHT-1M``; past the weight limit (6000 per minute, as on Binance) requests
get HTTP 429 with code -1003 and a ``Retry-After`` header. The weight window is a fixed
calendar window, like Binance's; its clock is injectable so tests need not wait for it.

Errors use Binance's shape ``{"code":..,"msg":..}`` and its documented codes: -1100
illegal characters, -1101 duplicate parameter, -1102 mandatory parameter missing, -1104
unread parameters, -1121 invalid symbol, -1130 invalid data, -1003 too much weight,
-1001 internal error (only from fault injection). Where Binance truncates (``limit`` above
the maximum) so does the simulator.

``GET /sim/stats`` is the simulator's own (weightless) endpoint: fault counts and sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from cif.ingest.endpoints import WEIGHT_LIMIT_1M, depth_weight
from cif.sim.faults import FaultConfig, FaultLog
from cif.sim.source import MarketSource

log = logging.getLogger("cif.sim.rest")


_INT_RE = re.compile(r"^[0-9]{1,20}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9-_.]{1,20}$")


@dataclass(slots=True)
class HttpReply:
    """Status, body and extra headers of one REST response."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class ApiError(Exception):
    """A Binance error response: HTTP status plus ``{"code","msg"}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


class WeightLimiter:
    """Request weight used in the current fixed window (default: one minute)."""

    def __init__(
        self,
        limit: int = WEIGHT_LIMIT_1M,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._window = -1
        self.used = 0

    def charge(self, weight: int) -> tuple[int, bool, float]:
        """Add ``weight``; return (weight used, allowed, seconds until the window resets)."""
        now = self.clock()
        window = int(now // self.window_s)
        if window != self._window:
            self._window = window
            self.used = 0
        self.used += weight
        retry_after = (window + 1) * self.window_s - now
        return self.used, self.used <= self.limit, retry_after


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class RestApi:
    """Routes a request path to an endpoint of ``source``."""

    def __init__(
        self,
        source: MarketSource,
        faults: FaultConfig,
        fault_log: FaultLog,
        limiter: WeightLimiter | None = None,
        stats: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.source = source
        self.faults = faults
        self.fault_log = fault_log
        self.limiter = limiter or WeightLimiter()
        self.stats = stats
        self._n_depth = 0

    async def handle(self, target: str) -> HttpReply:
        """Answer ``GET target`` (path plus query string). Never raises."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(pairs)
        if path == "/sim/stats":
            body = _json(self.stats() if self.stats else {})
            return HttpReply(200, body, [("Content-Type", "application/json")])
        endpoint = _ENDPOINTS.get(path)
        if endpoint is None:
            log.info("REST 404 for %s", target[:200])
            return HttpReply(404, _json({"code": -1000, "msg": f"Unknown endpoint {path}."}))
        weight_fn, handler = endpoint
        try:
            weight = weight_fn(params)
        except ApiError:
            weight = 1
        if len(params) != len(pairs):
            handler = _duplicate_params
        used, allowed, retry_after = self.limiter.charge(weight)
        headers = [
            ("Content-Type", "application/json;charset=UTF-8"),
            ("X-MBX-USED-WEIGHT-1M", str(used)),
        ]
        if not allowed:
            log.warning("REST weight limit exceeded (%d > %d)", used, self.limiter.limit)
            headers.append(("Retry-After", str(max(1, int(retry_after + 0.999)))))
            body = _json(
                {
                    "code": -1003,
                    "msg": f"Too much request weight used; current limit is {self.limiter.limit}"
                    " request weight per 1 MINUTE. Please use WebSocket Streams for live"
                    " updates to avoid polling the API.",
                }
            )
            return HttpReply(429, body, headers)
        try:
            body = await handler(self, params)
            return HttpReply(200, body, headers)
        except ApiError as err:
            log.info("REST %s -> %d %d %s", target[:200], err.status, err.code, err.msg)
            return HttpReply(err.status, _json({"code": err.code, "msg": err.msg}), headers)
        except Exception:
            log.exception("REST handler failed for %s", target[:200])
            body = _json({"code": -1000, "msg": "An unknown error occurred while processing."})
            return HttpReply(500, body, headers)

    # -- parameters ---------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> str:
        value = params.get("symbol", "")
        if not value:
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if not _SYMBOL_RE.match(value):
            raise ApiError(
                400,
                -1100,
                "Illegal characters found in parameter 'symbol'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        lower = value.lower()
        if lower not in self.source.specs:
            raise ApiError(400, -1121, "Invalid symbol.")
        return lower

    @staticmethod
    def _check_known(params: dict[str, str], known: set[str]) -> None:
        if set(params) - known:
            raise ApiError(
                400,
                -1104,
                f"Not all sent parameters were read; read '{len(set(params) & known)}' "
                f"parameter(s) but was sent '{len(params)}'.",
            )

    # -- endpoints ----------------------------------------------------------------------

    async def _ping(self, params: dict[str, str]) -> bytes:
        self._check_known(params, set())
        return b"{}"

    async def _time(self, params: dict[str, str]) -> bytes:
        self._check_known(params, set())
        return _json({"serverTime": self.source.now_ms()})

    async def _exchange_info(self, params: dict[str, str]) -> bytes:
        self._check_known(params, {"symbol", "symbols", "permissions", "showPermissionSets"})
        specs = self.source.specs
        names: list[str]
        if "symbol" in params:
            names = [self._symbol(params)]
        elif "symbols" in params:
            try:
                wanted = json.loads(params["symbols"])
            except ValueError:
                wanted = None
            if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                raise ApiError(400, -1130, "Invalid data sent for a parameter.")
            names = [self._symbol({"symbol": s}) for s in wanted]
        else:
            names = sorted(specs)
        return _json(
            {
                "timezone": "UTC",
                "serverTime": self.source.now_ms(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.limiter.limit,
                    }
                ],
                "exchangeFilters": [],
                "symbols": [specs[n].exchange_info() for n in names],
            }
        )

    async def _depth(self, params: dict[str, str]) -> bytes:
        self._check_known(params, {"symbol", "limit"})
        symbol = self._symbol(params)
        limit = min(_int_param(params, "limit", 100), 5000)
        self._n_depth += 1
        faults = self.faults
        if faults.snapshot_delay_s:
            self.fault_log.record("snapshot_delay", f"{faults.snapshot_delay_s}s")
            await asyncio.sleep(faults.snapshot_delay_s)
        every = faults.snapshot_fail_every
        if every is not None and self._n_depth % every == 0:
            self.fault_log.record("snapshot_fail", symbol)
            raise ApiError(
                503, -1001, "Internal error; unable to process your request. Please try again."
            )
        return self.source.depth_snapshot(symbol, limit)

    async def _trades(self, params: dict[str, str]) -> bytes:
        self._check_known(params, {"symbol", "limit"})
        symbol = self._symbol(params)
        limit = min(_int_param(params, "limit", 500), 1000)
        return _json(self.source.trade_store(symbol).recent(limit))

    async def _historical_trades(self, params: dict[str, str]) -> bytes:
        self._check_known(params, {"symbol", "limit", "fromId"})
        symbol = self._symbol(params)
        limit = min(_int_param(params, "limit", 500), 1000)
        store = self.source.trade_store(symbol)
        if "fromId" in params:
            return _json(store.from_id(_int_param(params, "fromId", 0, minimum=0), limit))
        return _json(store.recent(limit))


def _int_param(params: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not _INT_RE.match(value):
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    number = int(value)
    if number < minimum:
        raise ApiError(400, -1130, f"Invalid data sent for a parameter: '{name}'.")
    return number


async def _duplicate_params(api: RestApi, params: dict[str, str]) -> bytes:
    raise ApiError(400, -1101, "Duplicate values for a parameter detected.")


def _const(weight: int) -> Callable[[dict[str, str]], int]:
    return lambda params: weight


def _depth_weight(params: dict[str, str]) -> int:
    return depth_weight(min(_int_param(params, "limit", 100), 5000))


_Endpoint = tuple[
    Callable[[dict[str, str]], int], Callable[[RestApi, dict[str, str]], Awaitable[bytes]]
]

_ENDPOINTS: dict[str, _Endpoint] = {
    "/api/v3/ping": (_const(1), RestApi._ping),
    "/api/v3/time": (_const(1), RestApi._time),
    "/api/v3/exchangeInfo": (_const(20), RestApi._exchange_info),
    "/api/v3/depth": (_depth_weight, RestApi._depth),
    "/api/v3/trades": (_const(25), RestApi._trades),
    "/api/v3/historicalTrades": (_const(25), RestApi._historical_trades),
}
