"""The feature engine's input: one symbol's ordered event log as NumPy columns.

The log is the symbol's trades and book events (L1 changes with top-k depth) merged by the
ingest sequence number ``seq``, exactly what the gateway publishes to ``trades:{symbol}`` and
``book:{symbol}``. The columns are the ones ``cif._core.FeatureEngine.process`` and
``cif._core.compute_features`` take (see the README's feature table):

``kind`` (0 trade, 1 book), ``seq``, ``ts`` (exchange ms), ``recv_ts_ns``, ``price``,
``qty``, ``side`` (+1 buy, -1 sell), ``bid_price``, ``bid_qty``, ``ask_price``, ``ask_qty``,
``bid_depth`` and ``ask_depth`` (2-D: sizes of levels 1..L, 0 where a level is absent).

Stream entries, read back from Redis (bytes fields) or produced in-process (Python values),
are decoded by ``cif._core.decode_event_entries`` (:func:`decode_entries`), which reads them
exactly as :class:`EventLogBuilder`'s ``add_trade_entry`` / ``add_book_entry`` do (Python's
``int()`` / ``float()`` / ``json`` rules, bit for bit): live processing, replay and research
see identical numbers whichever path built their events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cif._core import decode_event_entries
from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import AnyEntry
from cif.ingest.offline import capture_stream_entries

__all__ = [
    "DEFAULT_DEPTH_LEVELS",
    "EventColumns",
    "EventLogBuilder",
    "capture_stream_entries",
    "decode_entries",
    "events_from_capture",
    "events_from_entries",
]

#: Depth levels kept per side by default (the gateway's ``--top-k``).
DEFAULT_DEPTH_LEVELS = 10

EventColumns = dict[str, NDArray[Any]]

_NAN = float("nan")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _field(fields: Mapping[Any, Any], name: str) -> Any:
    """A field of a stream entry, whether its keys are ``str`` or Redis ``bytes``."""
    if name in fields:
        return fields[name]
    raw = name.encode()
    if raw in fields:
        return fields[raw]
    raise KeyError(f"stream entry has no field {name!r}")


class EventLogBuilder:
    """Collects one symbol's events in ``seq`` order and builds the column arrays.

    ``depth_levels`` bounds the depth columns: deeper levels are dropped, missing ones are 0.
    ``add_trade_entry`` / ``add_book_entry`` define how a stream entry is read;
    :func:`decode_entries` reads whole batches the same way in Rust.
    """

    def __init__(self, depth_levels: int = DEFAULT_DEPTH_LEVELS) -> None:
        if depth_levels < 0:
            raise ValueError(f"depth_levels must be >= 0, got {depth_levels}")
        self.depth_levels = depth_levels
        self._kind: list[int] = []
        self._seq: list[int] = []
        self._ts: list[int] = []
        self._recv: list[int] = []
        self._price: list[float] = []
        self._qty: list[float] = []
        self._side: list[int] = []
        self._l1: list[tuple[float, float, float, float]] = []
        self._bid_depth: list[Sequence[float]] = []
        self._ask_depth: list[Sequence[float]] = []

    def __len__(self) -> int:
        return len(self._seq)

    def add_trade(
        self, seq: int, ts: int, recv_ts_ns: int, price: float, qty: float, side: int
    ) -> None:
        """A trade; ``side`` is +1 (buyer aggressor) or -1 (seller aggressor)."""
        self._kind.append(0)
        self._seq.append(seq)
        self._ts.append(ts)
        self._recv.append(recv_ts_ns)
        self._price.append(price)
        self._qty.append(qty)
        self._side.append(side)
        self._l1.append((_NAN, _NAN, _NAN, _NAN))
        self._bid_depth.append(())
        self._ask_depth.append(())

    def add_book(
        self,
        seq: int,
        ts: int,
        recv_ts_ns: int,
        l1: tuple[float, float, float, float],
        bid_sizes: Sequence[float] = (),
        ask_sizes: Sequence[float] = (),
    ) -> None:
        """A book event: ``l1`` = (bid price, bid size, ask price, ask size) and the sizes
        of the top levels of each side, best first."""
        self._kind.append(1)
        self._seq.append(seq)
        self._ts.append(ts)
        self._recv.append(recv_ts_ns)
        self._price.append(_NAN)
        self._qty.append(_NAN)
        self._side.append(0)
        self._l1.append(l1)
        self._bid_depth.append(bid_sizes[: self.depth_levels])
        self._ask_depth.append(ask_sizes[: self.depth_levels])

    def add_trade_entry(self, fields: Mapping[Any, Any]) -> None:
        """A ``trades:{symbol}`` entry (fields as published, ``str`` or ``bytes`` keys)."""
        side = _text(_field(fields, "side"))
        if side not in ("buy", "sell"):
            raise ValueError(f"trade entry has side {side!r}, expected 'buy' or 'sell'")
        self.add_trade(
            int(_field(fields, "seq")),
            int(_field(fields, "ts")),
            int(_field(fields, "recv_ts_ns")),
            float(_field(fields, "price")),
            float(_field(fields, "qty")),
            1 if side == "buy" else -1,
        )

    def add_book_entry(self, fields: Mapping[Any, Any]) -> None:
        """A ``book:{symbol}`` entry (fields as published, ``str`` or ``bytes`` keys)."""
        bids = json.loads(_field(fields, "bids"))
        asks = json.loads(_field(fields, "asks"))
        self.add_book(
            int(_field(fields, "seq")),
            int(_field(fields, "event_ts")),
            int(_field(fields, "recv_ts_ns")),
            (
                float(_field(fields, "bid_price")),
                float(_field(fields, "bid_qty")),
                float(_field(fields, "ask_price")),
                float(_field(fields, "ask_qty")),
            ),
            [float(level[1]) for level in bids],
            [float(level[1]) for level in asks],
        )

    def build(self) -> EventColumns:
        """The column arrays (the builder can keep collecting afterwards)."""
        n = len(self._seq)
        l1 = np.array(self._l1, dtype=np.float64).reshape(n, 4)
        return {
            "kind": np.array(self._kind, dtype=np.uint8),
            "seq": np.array(self._seq, dtype=np.int64),
            "ts": np.array(self._ts, dtype=np.int64),
            "recv_ts_ns": np.array(self._recv, dtype=np.int64),
            "price": np.array(self._price, dtype=np.float64),
            "qty": np.array(self._qty, dtype=np.float64),
            "side": np.array(self._side, dtype=np.int8),
            "bid_price": np.ascontiguousarray(l1[:, 0]),
            "bid_qty": np.ascontiguousarray(l1[:, 1]),
            "ask_price": np.ascontiguousarray(l1[:, 2]),
            "ask_qty": np.ascontiguousarray(l1[:, 3]),
            "bid_depth": _depth_matrix(self._bid_depth, self.depth_levels),
            "ask_depth": _depth_matrix(self._ask_depth, self.depth_levels),
        }


def _depth_matrix(rows: list[Sequence[float]], width: int) -> NDArray[np.float64]:
    out = np.zeros((len(rows), width), dtype=np.float64)
    for i, sizes in enumerate(rows):
        if sizes:
            out[i, : len(sizes)] = sizes
    return out


def decode_entries(
    entries: Sequence[tuple[bool, Mapping[Any, Any] | list[Any]]],
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
) -> tuple[EventColumns, list[tuple[int, str]]]:
    """Decode ``(is_trade, fields)`` stream entries, in the given order, in one call
    (``fields``: a mapping, or keys and values alternating as a stream reply holds them).

    Returns the columns of the decodable entries (what :class:`EventLogBuilder` builds from
    them, bit for bit) and ``(index, message)`` for each entry that is not (a missing field,
    a value that is not a number, a bad side, broken depth JSON): it adds no row.
    """
    if depth_levels < 0:
        raise ValueError(f"depth_levels must be >= 0, got {depth_levels}")
    return decode_event_entries(entries, depth_levels)


def events_from_entries(
    entries: Iterable[AnyEntry],
    trades_key: str,
    book_key: str,
    depth_levels: int = DEFAULT_DEPTH_LEVELS,
) -> EventColumns:
    """The event log of the entries published to one symbol's two streams, merged by ``seq``.

    Entries of other keys are ignored. An entry that cannot be decoded is a ``ValueError``
    naming it.
    """
    picked: list[tuple[int, bool, AnyEntry]] = []
    for e in entries:
        if e.key == trades_key:
            picked.append((int(e.fields["seq"]), True, e))
        elif e.key == book_key:
            picked.append((int(e.fields["seq"]), False, e))
    picked.sort(key=lambda item: item[0])
    events, failures = decode_entries(
        [(is_trade, e.fields) for _seq, is_trade, e in picked], depth_levels
    )
    if failures:
        index, message = failures[0]
        entry = picked[index][2]
        raise ValueError(f"{entry.key} entry {entry.entry_id}: {message}")
    return events


def events_from_capture(
    path: str | Path, symbol: str, depth_levels: int = DEFAULT_DEPTH_LEVELS
) -> EventColumns:
    """The feature engine's event log for ``symbol`` from a capture file in the shared
    format (see :func:`capture_stream_entries`)."""
    sym = symbol.lower()
    entries = capture_stream_entries(path, sym, top_k=depth_levels)
    return events_from_entries(entries, trades_key(sym), book_key(sym), depth_levels)
