"""The gateway's stream entries of a symbol, built column-wise from the stored event log as
the RESP text of :class:`~cif.bus.stream_writer.StreamWriter`'s batched script call.

Each entry becomes the script's arguments ``<key#> <id> <n> (<field> <value>)...`` in RESP,
byte for byte what ``StreamWriter._pack_group`` writes for the gateway's entry
(:mod:`cif.bus.fanout`): integers as ``%d``, prices and sizes as ``repr`` of the stored
double, side/source and the depth JSON as stored. The rows are fetched once per table with
``fetchnumpy``; formatting is one comprehension per column and one join per entry, so a
batch's payload is a slice join (no per-entry objects, no per-argument packing).
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
from cif.bus.stream_writer import XADD_BATCH_LUA, bulk

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

#: Script arguments per entry: key index, ID, field count, then name and value per field.
TRADE_ARGS = 3 + 2 * len(TRADE_FIELDS)
BOOK_ARGS = 3 + 2 * len(BOOK_FIELDS)

#: ``EVAL <script>`` as StreamWriter sends it.
EVAL_HEAD = "$4\r\nEVAL\r\n" + bulk(XADD_BATCH_LUA).decode()


def _texts(values: Sequence[Any], kind: str) -> Iterable[str]:
    if kind == _FLOAT:
        return map(repr, values)  # Python floats: the gateway's repr of the stored double
    if kind == _INT:
        return map(str, values)
    return values


def _bulks(values: Sequence[Any], kind: str) -> list[str]:
    """RESP bulk strings of a column (lengths in characters: the text is ASCII, checked when
    a batch is encoded)."""
    return [f"${len(s)}\r\n{s}\r\n" for s in _texts(values, kind)]


def _entry_texts(
    cols: dict[str, Any],
    fields: Sequence[str],
    kinds: Sequence[str],
    key_index: int,
    id_column: str,
) -> list[str]:
    """Per row: ``<key#> <id> <n> (<name> <value>)...`` as RESP, in the gateway's order."""
    lists = {name: np.asarray(cols[name]).tolist() for name in fields}
    ids = [f"${len(s) + 2}\r\n{s}-0\r\n" for s in map(str, lists[id_column])]
    head = f"$1\r\n{key_index}\r\n"
    parts: list[Iterable[str]] = [repeat(head), ids]
    const = f"${len(str(len(fields)))}\r\n{len(fields)}\r\n"
    for name, kind in zip(fields, kinds, strict=True):
        parts.append(repeat(const + f"${len(name)}\r\n{name}\r\n"))
        parts.append(_bulks(lists[name], kind))
        const = ""
    join: Callable[[Iterable[str]], str] = "".join
    return list(map(join, zip(*parts, strict=False)))


@dataclass
class SymbolEntries:
    """One symbol's entries in ``seq`` order: RESP text, event ms, and which are book's."""

    symbol: str
    trades_key: str
    book_key: str
    texts: list[str]
    t: NDArray[np.int64]
    is_book: NDArray[np.bool_]
    #: book entries among the first i entries (``len + 1`` values)
    book_before: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.texts)

    def call(self, start: int, stop: int, maxlen_arg: str) -> str:
        """The script call writing entries ``[start, stop)`` atomically, as RESP text."""
        n_book = int(self.book_before[stop] - self.book_before[start])
        n_trades = stop - start - n_book
        n_args = 4 + 2 + n_trades * TRADE_ARGS + n_book * BOOK_ARGS
        head = (
            f"*{n_args}\r\n{EVAL_HEAD}$1\r\n2\r\n"
            f"${len(self.trades_key)}\r\n{self.trades_key}\r\n"
            f"${len(self.book_key)}\r\n{self.book_key}\r\n{maxlen_arg}"
        )
        return head + "".join(self.texts[start:stop])


def load_entries(
    con: Any, symbol: str, namespace: str, from_ms: int | None, to_ms: int | None
) -> SymbolEntries:
    """The symbol's stored trades and book events as the gateway's entries, by ``seq``."""
    params = {
        "symbol": symbol.upper(),
        "from_ms": -_NO_BOUND if from_ms is None else int(from_ms),
        "to_ms": _NO_BOUND if to_ms is None else int(to_ms),
    }
    tr = con.execute(_TRADES, params).fetchnumpy()
    bk = con.execute(_BOOK, params).fetchnumpy()
    trade_texts = _entry_texts(tr, TRADE_FIELDS, _TRADE_KINDS, 1, "trade_id")
    book_texts = _entry_texts(bk, BOOK_FIELDS, _BOOK_KINDS, 2, "seq")
    n_t = len(trade_texts)
    seq = np.concatenate(
        [np.asarray(tr["seq"], dtype=np.int64), np.asarray(bk["seq"], dtype=np.int64)]
    )
    order = np.argsort(seq, kind="stable")  # seq is unique per symbol across both tables
    t = np.concatenate(
        [np.asarray(tr["ts"], dtype=np.int64), np.asarray(bk["event_ts"], dtype=np.int64)]
    )[order]
    is_book = order >= n_t
    both = trade_texts + book_texts
    texts = [both[i] for i in order.tolist()]
    book_before = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(is_book, out=book_before[1:])
    return SymbolEntries(
        symbol,
        trades_key(symbol, namespace),
        book_key(symbol, namespace),
        texts,
        np.ascontiguousarray(t),
        is_book,
        book_before,
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
