"""The gateway's stream entries of a symbol, built column-wise from the stored event log as
the RESP text of one ``XADD`` per entry.

Each entry becomes ``XADD <key> MAXLEN ~ <maxlen> <id> (<field> <value>)...`` in RESP, with
the ID and field bytes the gateway writes for it (:mod:`cif.bus.fanout`, encoded as
:func:`~cif.bus.stream_writer.encode_value` encodes them): integers as ``%d``, prices and
sizes as ``repr`` of the stored double, side/source and the depth JSON as stored. The rows
are fetched once per table with ``fetchnumpy``; formatting is one comprehension per column
and one join per entry, and a symbol's entries end up as one UTF-8 buffer in ``seq`` order
with the offset of each entry, so a batch's payload is a slice of it (no copy, no
per-entry objects at send time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cif.bus.fanout import BOOK_FIELDS, TRADE_FIELDS
from cif.bus.keys import book_key, trades_key

_NO_BOUND = 2**62

_TRADES = """
SELECT seq, trade_id, ts, event_ts, recv_ts_ns, price, qty, side,
       CASE WHEN backfilled THEN 1 ELSE 0 END AS backfilled
FROM trades WHERE symbol = $symbol AND ts >= $from_ms AND ts < $to_ms ORDER BY seq
"""

_BOOK = """
SELECT seq, update_id, event_ts, recv_ts_ns, source, bid_price, bid_qty, ask_price, ask_qty,
       book_update_id, bids, asks
FROM book_events WHERE symbol = $symbol AND event_ts >= $from_ms AND event_ts < $to_ms
ORDER BY seq
"""

#: How each stored column is written (``encode_value`` of the gateway's field value).
_INT, _FLOAT, _TEXT = "int", "float", "text"
_TRADE_KINDS = (_INT, _INT, _INT, _INT, _INT, _FLOAT, _FLOAT, _TEXT, _INT)
_BOOK_KINDS = (_INT, _INT, _INT, _INT, _TEXT, _FLOAT, _FLOAT, _FLOAT, _FLOAT, _INT, _TEXT, _TEXT)

#: ``MAXLEN`` of the streams unless told otherwise: the gateway's default.
DEFAULT_MAXLEN = 1_000_000


def _texts(values: Sequence[Any], kind: str) -> Iterable[str]:
    if kind == _FLOAT:
        return map(repr, values)  # Python floats: the gateway's repr of the stored double
    if kind == _INT:
        return map(str, values)
    return values


def _bulk(text: str) -> str:
    return f"${len(text.encode())}\r\n{text}\r\n"


def _bulks(values: Sequence[Any], kind: str) -> list[str]:
    """RESP bulk strings of a column (lengths in bytes of the UTF-8 text)."""
    texts = list(_texts(values, kind))
    if kind == _TEXT and not "".join(texts).isascii():
        return [f"${len(s.encode())}\r\n{s}\r\n" for s in texts]
    # ASCII: characters are bytes, and len() is far cheaper than encoding each value
    return [f"${len(s)}\r\n{s}\r\n" for s in texts]


def _entry_texts(
    cols: dict[str, Any],
    fields: Sequence[str],
    kinds: Sequence[str],
    key: str,
    maxlen: int,
    id_column: str,
) -> list[str]:
    """Per row: ``XADD <key> MAXLEN ~ <maxlen> <id> (<name> <value>)...`` as RESP, the
    fields in the gateway's order."""
    lists = {name: np.asarray(cols[name]).tolist() for name in fields}
    head = (
        f"*{6 + 2 * len(fields)}\r\n$4\r\nXADD\r\n{_bulk(key)}"
        f"$6\r\nMAXLEN\r\n$1\r\n~\r\n{_bulk(str(maxlen))}"
    )
    ids = [f"{head}${len(s) + 2}\r\n{s}-0\r\n" for s in map(str, lists[id_column])]
    parts: list[Iterable[str]] = [ids]
    for name, kind in zip(fields, kinds, strict=True):
        parts.append(repeat(_bulk(name)))
        parts.append(_bulks(lists[name], kind))
    join: Callable[[Iterable[str]], str] = "".join
    return list(map(join, zip(*parts, strict=False)))


@dataclass
class SymbolEntries:
    """One symbol's entries in ``seq`` order: their XADD commands back to back as RESP
    (entry ``i`` is ``payload[offsets[i]:offsets[i + 1]]``) and their event ms."""

    symbol: str
    trades_key: str
    book_key: str
    payload: bytes
    offsets: NDArray[np.int64]
    t: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.t)

    def commands(self, start: int, stop: int) -> memoryview:
        """The XADDs of entries ``[start, stop)``, in ``seq`` order, as one buffer."""
        return memoryview(self.payload)[int(self.offsets[start]) : int(self.offsets[stop])]


def load_entries(
    con: Any,
    symbol: str,
    namespace: str,
    from_ms: int | None,
    to_ms: int | None,
    maxlen: int = DEFAULT_MAXLEN,
) -> SymbolEntries:
    """The symbol's stored trades and book events as the gateway's entries, by ``seq``,
    each as an XADD to ``namespace``'s stream trimmed to about ``maxlen`` entries."""
    if maxlen <= 0:
        raise ValueError("maxlen must be positive")
    params = {
        "symbol": symbol.upper(),
        "from_ms": -_NO_BOUND if from_ms is None else int(from_ms),
        "to_ms": _NO_BOUND if to_ms is None else int(to_ms),
    }
    tkey, bkey = trades_key(symbol, namespace), book_key(symbol, namespace)
    tr = con.execute(_TRADES, params).fetchnumpy()
    bk = con.execute(_BOOK, params).fetchnumpy()
    trade_texts = _entry_texts(tr, TRADE_FIELDS, _TRADE_KINDS, tkey, maxlen, "trade_id")
    book_texts = _entry_texts(bk, BOOK_FIELDS, _BOOK_KINDS, bkey, maxlen, "seq")
    seq = np.concatenate(
        [np.asarray(tr["seq"], dtype=np.int64), np.asarray(bk["seq"], dtype=np.int64)]
    )
    order = np.argsort(seq, kind="stable")  # seq is unique per symbol across both tables
    t = np.concatenate(
        [np.asarray(tr["ts"], dtype=np.int64), np.asarray(bk["event_ts"], dtype=np.int64)]
    )[order]
    both = trade_texts + book_texts
    texts = [both[i] for i in order.tolist()]
    del both, trade_texts, book_texts
    text = "".join(texts)
    if text.isascii():
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    else:
        sizes = np.fromiter((len(x.encode()) for x in texts), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return SymbolEntries(
        symbol,
        tkey,
        bkey,
        text.encode(),
        offsets,
        np.ascontiguousarray(t),
    )


def merged_order(symbols: Sequence[SymbolEntries]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All entries interleaved by event time, each symbol kept in ``seq`` order: per position
    the symbol's index and the merge clock (a symbol's running max of event time, ties by
    symbol then ``seq``: the order of ``heapq.merge`` over ``(clock, k, i)``)."""
    clocks = [np.maximum.accumulate(s.t) if len(s) else s.t for s in symbols]
    clock = np.concatenate([*clocks, np.zeros(0, np.int64)])
    which = np.concatenate(
        [np.full(len(s), k, dtype=np.int64) for k, s in enumerate(symbols)]
        + [np.zeros(0, np.int64)]
    )
    order = np.argsort(clock, kind="stable")
    return which[order], clock[order]
