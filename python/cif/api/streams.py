"""Reading what the API serves: Redis streams, the evaluation key and the sealed history.

Everything here is read-only. Stream entries come back from Redis as ``str`` fields (the
client is created with ``decode_responses=True``) and are decoded into JSON-ready dicts with
the record shapes of :mod:`cif.api.models`: integers stay integers, probabilities and
feature values become floats, and non-finite numbers become ``None`` (JSON has no NaN).

- :func:`latest_entry` / :func:`recent_entries`: ``XREVRANGE key + - COUNT n``.
- :class:`StreamTailer`: the one reader of a stream behind the WebSocket hub (``XREAD
  BLOCK`` from an entry ID on, reconnecting with back-off while Redis is away).
- :class:`HistoryTrades`: recent trades from the sealed Parquet segments
  (:func:`cif.store.segments.open_history`) when Redis has none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any, Literal, cast

import duckdb
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cif.bus.keys import features_key, forecasts_key, trades_key
from cif.bus.link import REPLY_TIMEOUT_S, RedisLink, stream_entries
from cif.features.entries import decode_feature_entry
from cif.store.segments import open_history, refresh_history

log = logging.getLogger(__name__)

Channel = Literal["forecasts", "features", "trades"]
#: The stream channels a WebSocket client can subscribe to, in documentation order.
CHANNELS: tuple[Channel, ...] = ("forecasts", "features", "trades")

#: One stream entry as Redis returns it: (entry ID, fields).
Entry = tuple[str, dict[str, str]]

_STREAM_KEYS: dict[Channel, Callable[[str, str], str]] = {
    "forecasts": forecasts_key,
    "features": features_key,
    "trades": trades_key,
}


def stream_key(channel: Channel, symbol: str, namespace: str = "") -> str:
    """The Redis stream of ``channel`` for ``symbol`` (``forecasts:{btcusdt}``, ...)."""
    return _STREAM_KEYS[channel](symbol, namespace)


# --------------------------------------------------------------------------------------------
# Decoding entries
# --------------------------------------------------------------------------------------------


class MalformedEntry(ValueError):
    """A stream entry (or the evaluation JSON) does not have the documented layout."""


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (recursively)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _get(fields: Mapping[str, str], name: str, entry_id: str) -> str:
    try:
        return fields[name]
    except KeyError:
        raise MalformedEntry(f"entry {entry_id} has no field {name!r}") from None


def _int(fields: Mapping[str, str], name: str, entry_id: str) -> int:
    text = _get(fields, name, entry_id)
    try:
        return int(text)
    except ValueError:
        raise MalformedEntry(f"entry {entry_id}: {name}={text!r} is not an integer") from None


def _float(fields: Mapping[str, str], name: str, entry_id: str) -> float | None:
    text = _get(fields, name, entry_id)
    try:
        return finite_or_none(float(text))
    except ValueError:
        raise MalformedEntry(f"entry {entry_id}: {name}={text!r} is not a number") from None


_FORECAST_INTS = ("seq", "ts", "recv_ts_ns", "horizon_ms", "model_version", "published_ns")
_FORECAST_STRS = ("symbol", "horizon", "model")
_FORECAST_PROBS = ("prob_up", "prob_down")


def decode_forecast(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """A ``forecasts:{sym}`` entry as a record (spec: /work/spec/forecasts.md).

    Fields the spec does not name are kept as strings, so a newer forecaster's additions
    still reach WebSocket clients."""
    out: dict[str, Any] = {}
    for name in _FORECAST_STRS:
        out[name] = _get(fields, name, entry_id)
    for name in _FORECAST_INTS:
        out[name] = _int(fields, name, entry_id)
    for name in _FORECAST_PROBS:
        out[name] = _float(fields, name, entry_id)
    out["prob_flat"] = _float(fields, "prob_flat", entry_id) if "prob_flat" in fields else None
    for name, value in fields.items():
        if name not in out:
            out[name] = value
    return out


_FORECAST_LAYOUTS = (
    frozenset(_FORECAST_STRS + _FORECAST_INTS + _FORECAST_PROBS),
    frozenset(_FORECAST_STRS + _FORECAST_INTS + _FORECAST_PROBS + ("prob_flat",)),
)


def forecast_json(fields: Mapping[str, str]) -> str | None:
    """``json.dumps(decode_forecast(...))`` (compact) without the dict, for an entry with
    exactly the documented fields; ``None`` for anything else (extra fields, a value that
    does not parse), which then takes :func:`decode_forecast`'s path and its errors.

    Every forecast the API forwards goes through here, and building the record and
    serializing it generically was most of the cost of forwarding one."""
    if fields.keys() not in _FORECAST_LAYOUTS:
        return None
    try:
        parts = [
            '{"symbol":',
            _quote(fields["symbol"]),
            ',"horizon":',
            _quote(fields["horizon"]),
            ',"model":',
            _quote(fields["model"]),
        ]
        for name in _FORECAST_INTS:
            parts.append(f',"{name}":{int(fields[name])}')
        for name in _FORECAST_PROBS:
            parts.append(f',"{name}":{_number(float(fields[name]))}')
        flat = fields.get("prob_flat")
        parts.append(',"prob_flat":')
        parts.append("null" if flat is None else _number(float(flat)))
    except ValueError:
        return None
    parts.append("}")
    return "".join(parts)


def _number(value: float) -> str:
    """A float as ``json.dumps`` writes it, non-finite as ``null`` (:func:`finite_or_none`)."""
    return float.__repr__(value) if math.isfinite(value) else "null"


def decode_features(entry_id: str, fields: Mapping[str, str], symbol: str) -> dict[str, Any]:
    """A ``features:{sym}`` entry (:func:`cif.features.entries.decode_feature_entry`), with
    NaN/inf feature values as ``None``, in the stream's field order."""
    try:
        row = decode_feature_entry(fields)
    except (KeyError, ValueError) as exc:
        raise MalformedEntry(f"entry {entry_id}: {exc}") from None
    return {
        "symbol": symbol,
        "seq": row.seq,
        "ts": row.ts,
        "recv_ts_ns": row.recv_ts_ns,
        "kind": row.kind,
        "features": {name: finite_or_none(v) for name, v in row.values.items()},
    }


_TRADE_INTS = ("seq", "trade_id", "ts", "event_ts", "recv_ts_ns")


def decode_trade(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """A ``trades:{sym}`` entry (layout: README, "Redis Streams")."""
    out: dict[str, Any] = {name: _int(fields, name, entry_id) for name in _TRADE_INTS}
    for name in ("price", "qty"):
        value = _float(fields, name, entry_id)
        if value is None:
            raise MalformedEntry(f"entry {entry_id}: {name} is not finite")
        out[name] = value
    side = _get(fields, "side", entry_id)
    if side not in ("buy", "sell"):
        raise MalformedEntry(f"entry {entry_id}: side={side!r}, expected 'buy' or 'sell'")
    out["side"] = side
    out["backfilled"] = _get(fields, "backfilled", entry_id) not in ("0", "", "false", "False")
    return out


def decode_entry(channel: Channel, symbol: str, entry: Entry) -> dict[str, Any]:
    """The record of ``entry`` of ``channel``'s stream (``MalformedEntry`` if it has not
    the documented layout)."""
    entry_id, fields = entry
    if channel == "forecasts":
        return decode_forecast(entry_id, fields)
    if channel == "features":
        return decode_features(entry_id, fields, symbol)
    return decode_trade(entry_id, fields)


def decode_evaluation(text: str) -> dict[str, Any]:
    """The evaluation summary published at ``eval:{sym}`` (a JSON object)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MalformedEntry(f"evaluation summary is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedEntry(f"evaluation summary is a JSON {type(value).__name__}, not an object")
    return cast(dict[str, Any], json_safe(value))


# --------------------------------------------------------------------------------------------
# Reading streams
# --------------------------------------------------------------------------------------------


def _entries(raw: Any) -> list[Entry]:
    return [(str(entry_id), dict(fields)) for entry_id, fields in raw]


def entry_of(raw: Sequence[Any]) -> Entry:
    """An entry of a raw ``XREAD`` reply (``[id, [field, value, ...]]``, text or bytes) as a
    decoding redis-py client gives it: ``(id, {field: value})``, UTF-8 (bad bytes
    replaced)."""
    entry_id, flat = raw
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode("utf-8", "replace")
        flat = [v.decode("utf-8", "replace") for v in flat] if flat else flat
    return stream_entries([(entry_id, flat)])[0]


async def latest_entry(client: aioredis.Redis, key: str) -> Entry | None:
    """The newest entry of stream ``key`` (``XREVRANGE key + - COUNT 1``), or ``None``."""
    raw = await client.xrevrange(key, "+", "-", count=1)
    entries = _entries(raw)
    return entries[0] if entries else None


async def recent_entries(client: aioredis.Redis, key: str, count: int) -> list[Entry]:
    """The newest ``count`` entries of stream ``key``, oldest first."""
    raw = await client.xrevrange(key, "+", "-", count=count)
    entries = _entries(raw)
    entries.reverse()
    return entries


async def last_id(client: aioredis.Redis, key: str) -> str:
    """The ID of the newest entry of ``key``; ``"0-0"`` for an empty or missing stream
    (tailing from there delivers every entry written afterwards)."""
    entry = await latest_entry(client, key)
    return "0-0" if entry is None else entry[0]


class StreamTailer:
    """The one reader of a Redis stream: ``XREAD BLOCK`` from ``start_id`` on, handing each
    batch (oldest first, each entry as the reply holds it: ``[id, [field, value, ...]]``,
    see :func:`entry_of`) to ``on_entries``, which must not block. It reads over a
    connection of its own (:class:`~cif.bus.link.RedisLink` to ``redis_url``): a round trip
    through redis-py's pool cost more client CPU than the rest of forwarding a batch.

    Redis errors are logged (first one, then every 100th) and retried with exponential
    back-off capped at ``max_backoff_s``; the position is kept, so nothing is skipped.
    ``decode``: the reply's texts as ``str`` (``False``: as ``bytes``, for a reader that
    takes them so, which saves decoding every field).
    """

    def __init__(
        self,
        redis_url: str,
        key: str,
        start_id: str,
        on_entries: Callable[[list[Any]], None],
        *,
        count: int = 100,
        block_ms: int = 1000,
        max_backoff_s: float = 2.0,
        decode: bool = True,
    ) -> None:
        if count < 1 or block_ms < 1:
            raise ValueError("count and block_ms must be >= 1")
        # the reply timeout: the block, plus the usual allowance for an answer
        self.link = RedisLink(
            redis_url, reply_timeout_s=block_ms / 1000 + REPLY_TIMEOUT_S, decode=decode
        )
        self.key = key
        self.position = start_id
        self.on_entries = on_entries
        self.count = count
        self.block_ms = block_ms
        self.max_backoff_s = max_backoff_s
        self.entries_read = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tail {self.key}")

    def stop(self) -> None:
        """Ask the reader to stop (it may be the caller itself: it then stops at its next
        ``await``)."""
        if self._task is not None:
            self._task.cancel()

    async def wait_stopped(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            await self._read_forever()
        finally:
            self.link.abort()

    async def _read_forever(self) -> None:
        backoff = 0.05
        read = (b"XREAD", b"COUNT", self.count, b"BLOCK", self.block_ms, b"STREAMS", self.key)
        while True:
            try:
                raw = await self.link.command(*read, self.position)
            except RedisError as exc:
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    log.warning(
                        "reading %s failed (%d errors so far), retrying: %s",
                        self.key,
                        self.errors,
                        exc,
                    )
                # Retry back-off while Redis is away (not a synchronisation device).
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 0.05
            if not raw:
                continue
            # The entries as the reply holds them (fields: names and values alternating);
            # the hub builds a dict only for an entry its Rust path declines.
            entries = raw[0][1]
            if not entries:
                continue
            self.position = entries[-1][0]
            self.entries_read += len(entries)
            self.on_entries(entries)


# --------------------------------------------------------------------------------------------
# History (sealed Parquet segments)
# --------------------------------------------------------------------------------------------

_TRADE_COLUMNS = ("seq", "trade_id", "ts", "event_ts", "recv_ts_ns", "price", "qty", "side")


class HistoryTrades:
    """Recent trades from ``history_dir``'s sealed segments (lock-free Parquet reads; at most
    one seal interval behind the gateway). Blocking: call it from a worker thread."""

    def __init__(self, history_dir: Path) -> None:
        self.history_dir = history_dir
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def recent(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` trades of ``symbol`` (any case), oldest first."""
        with self._lock:
            if self._con is None:
                self._con = open_history(self.history_dir)
            else:
                refresh_history(self._con, self.history_dir)
            rows = self._con.execute(
                f"SELECT {', '.join(_TRADE_COLUMNS)}, backfilled FROM trades "
                "WHERE symbol = upper(?) ORDER BY seq DESC LIMIT ?",
                [symbol, limit],
            ).fetchall()
        rows.reverse()
        out = []
        for row in rows:
            record = dict(zip(_TRADE_COLUMNS, row[:-1], strict=True))
            record["backfilled"] = bool(row[-1])
            out.append(record)
        return out

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
