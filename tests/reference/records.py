"""Canonical, comparable records of parsed events, from objects or from batch columns.

A record is a tuple ``(kind, field values...)`` in the columnar conventions of the contract:
floats as their IEEE-754 bit patterns (so equality is bit-identity), ``side`` as +1/-1,
a missing event time as -1, and depth levels as ``(side, price bits, qty bits)`` rows with
bids before asks. The same record comes out of a ``cif._core`` event, a reference event, a
``cif._core.FrameBatch`` row and a reference ``RefBatch`` row, so all four can be compared.
Strict about Python types: an ``int`` field holding a float or a NumPy scalar is an error.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

#: Fields of each event kind, in record order (the property names of the contract classes).
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Trade": (
        "symbol",
        "trade_id",
        "event_time_ms",
        "trade_time_ms",
        "price",
        "qty",
        "side",
        "is_buyer_maker",
        "recv_time_ns",
    ),
    "AggTrade": (
        "symbol",
        "agg_trade_id",
        "first_trade_id",
        "last_trade_id",
        "event_time_ms",
        "trade_time_ms",
        "price",
        "qty",
        "side",
        "is_buyer_maker",
        "recv_time_ns",
    ),
    "DepthUpdate": (
        "symbol",
        "event_time_ms",
        "first_update_id",
        "final_update_id",
        "levels",
        "recv_time_ns",
    ),
    "DepthSnapshot": ("symbol", "last_update_id", "levels", "event_time_ms", "recv_time_ns"),
    "BookTicker": (
        "symbol",
        "update_id",
        "bid_price",
        "bid_qty",
        "ask_price",
        "ask_qty",
        "event_time_ms",
        "recv_time_ns",
    ),
    "ServerShutdown": ("event_time_ms", "recv_time_ns"),
}

#: Batch table of each event kind.
KIND_TABLE: Final[dict[str, str]] = {
    "Trade": "trades",
    "AggTrade": "agg_trades",
    "DepthUpdate": "depth_updates",
    "DepthSnapshot": "depth_snapshots",
    "BookTicker": "book_tickers",
    "ServerShutdown": "shutdowns",
}

_FLOAT_FIELDS: Final = frozenset({"price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty"})
_OPTIONAL_TIME: Final = frozenset({"event_time_ms"})

Record = tuple[Any, ...]


def float_bits(value: float) -> int:
    """The IEEE-754 bit pattern of a double (distinguishes -0.0 and NaN payloads)."""
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits


def _kind(event: object) -> str:
    kind = getattr(type(event), "kind", None)
    if isinstance(kind, str):
        return kind
    return type(event).__name__


def _strict_int(name: str, value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{name}: expected int, got {type(value).__name__} {value!r}")
    return value


def _strict_float_bits(name: str, value: object) -> int:
    if type(value) is not float:
        raise TypeError(f"{name}: expected float, got {type(value).__name__} {value!r}")
    return float_bits(value)


def _event_levels(event: object) -> tuple[tuple[int, int, int], ...]:
    rows: list[tuple[int, int, int]] = []
    for side_name, side in (("bids", 1), ("asks", -1)):
        levels = getattr(event, side_name)
        if type(levels) is not list:
            raise TypeError(f"{side_name}: expected list, got {type(levels).__name__}")
        for level in levels:
            if type(level) is not tuple or len(level) != 2:
                raise TypeError(f"{side_name}: expected (price, qty) tuples, got {level!r}")
            rows.append(
                (side, _strict_float_bits("price", level[0]), _strict_float_bits("qty", level[1]))
            )
    return tuple(rows)


def event_record(event: object) -> Record:
    """The canonical record of one event object (``cif._core`` or reference)."""
    kind = _kind(event)
    values: list[Any] = [kind]
    for name in FIELDS[kind]:
        if name == "levels":
            values.append(_event_levels(event))
            continue
        value = getattr(event, name)
        if name == "symbol":
            if type(value) is not str:
                raise TypeError(f"symbol: expected str, got {value!r}")
            values.append(value)
        elif name == "side":
            if value not in ("buy", "sell"):
                raise TypeError(f"side: expected 'buy' or 'sell', got {value!r}")
            values.append(1 if value == "buy" else -1)
        elif name == "is_buyer_maker":
            if type(value) is not bool:
                raise TypeError(f"is_buyer_maker: expected bool, got {value!r}")
            values.append(value)
        elif name in _FLOAT_FIELDS:
            values.append(_strict_float_bits(name, value))
        elif name in _OPTIONAL_TIME and value is None:
            values.append(-1)
        else:
            values.append(_strict_int(name, value))
    return tuple(values)


def _column_lists(table: dict[str, Any]) -> dict[str, list[Any]]:
    """Columns as Python lists; float columns as bit patterns."""
    out: dict[str, list[Any]] = {}
    for name, column in table.items():
        array = np.asarray(column)
        if array.dtype == np.float64:
            out[name] = array.view(np.int64).tolist()
        else:
            out[name] = array.tolist()
    return out


def batch_records(batch: Any, reason_names: Sequence[str]) -> dict[int, Record]:
    """Frame index → record for every row of every table of a batch.

    Error rows become ``("error", reason name)``. Raises ``AssertionError`` if a frame shows
    up twice (each frame yields exactly one event or one error).
    """
    symbols: list[str] = list(batch.symbols)
    levels = _column_lists(batch.levels)
    records: dict[int, Record] = {}

    def put(frame: int, record: Record) -> None:
        if frame in records:
            raise AssertionError(f"frame {frame} appears twice: {records[frame]!r} and {record!r}")
        records[frame] = record

    for kind, table_name in KIND_TABLE.items():
        cols = _column_lists(getattr(batch, table_name))
        n_rows = len(cols["frame"])
        for i in range(n_rows):
            values: list[Any] = [kind]
            for name in FIELDS[kind]:
                if name == "levels":
                    start, end = cols["level_start"][i], cols["level_end"][i]
                    values.append(
                        tuple(
                            zip(
                                levels["side"][start:end],
                                levels["price"][start:end],
                                levels["qty"][start:end],
                                strict=True,
                            )
                        )
                    )
                elif name == "symbol":
                    values.append(symbols[cols["symbol"][i]])
                elif name == "side":
                    values.append(cols["side"][i])
                else:
                    values.append(cols[name][i])
            put(cols["frame"][i], tuple(values))

    errors = _column_lists(batch.errors)
    for frame, code in zip(errors["frame"], errors["reason_code"], strict=True):
        put(frame, ("error", reason_names[code]))
    return records


def diff_records(left: dict[int, Record], right: dict[int, Record], limit: int = 5) -> list[str]:
    """Human-readable differences between two frame → record maps (at most ``limit``)."""
    diffs: list[str] = []
    for frame in sorted(left.keys() | right.keys()):
        a, b = left.get(frame), right.get(frame)
        if a != b:
            diffs.append(f"frame {frame}: {a!r} != {b!r}")
            if len(diffs) >= limit:
                break
    return diffs
