"""Type stubs for ``cif._core``, the Rust core of cif (hand-written; checked by mypy.stubtest).

Times: ``*_ms`` are exchange milliseconds since the epoch; ``recv_time_ns`` is the local
receive time in nanoseconds since the epoch. Prices and quantities are IEEE doubles parsed
from Binance's decimal strings with correct rounding (identical to Python's ``float(str)``).
"""

from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ERROR_REASONS",
    "AggTrade",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "FrameBatch",
    "InvalidValue",
    "MalformedFrame",
    "MissingField",
    "OrderBook",
    "ParseError",
    "ServerShutdown",
    "Trade",
    "TradeSequencer",
    "UnknownEvent",
    "WrongType",
    "__version__",
    "parse_capture",
    "parse_frame",
    "parse_frames",
    "parse_rest_depth",
    "parse_rest_trades",
]

__version__: Final[str]

#: Reason codes, in the order of the ``reason_code`` column of ``FrameBatch.errors``.
ERROR_REASONS: Final[tuple[str, ...]]

class ParseError(ValueError):
    """A frame or REST body could not be parsed; the subclass names the reason."""

class MalformedFrame(ParseError):
    """Not valid JSON, not UTF-8, truncated, duplicate keys or an unexpected structure."""

class MissingField(ParseError):
    """A required field is absent."""

class WrongType(ParseError):
    """A field has the wrong JSON type (e.g. a number where Binance sends a decimal string)."""

class InvalidValue(ParseError):
    """A value is out of range or inconsistent.

    Negative, non-finite, too large, or not a plain decimal; a zero trade price or quantity
    or a zero level price (level quantities and bookTicker fields may be 0); a symbol that
    is empty, too long or contains whitespace, ``@``, ``/`` or ``"``; a payload symbol that
    differs from its stream name's; a stream name without ``@<type>``.
    """

class UnknownEvent(ParseError):
    """Well-formed JSON whose event type cif does not know."""

_Side: TypeAlias = Literal["buy", "sell"]
_Level: TypeAlias = tuple[float, float]

@final
class Trade:
    """One trade; ``side`` is the aggressor (``is_buyer_maker`` ⇒ ``"sell"``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def trade_id(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def side(self) -> _Side: ...
    @property
    def is_buyer_maker(self) -> bool: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AggTrade:
    """An aggregate trade (``<symbol>@aggTrade``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def agg_trade_id(self) -> int: ...
    @property
    def first_trade_id(self) -> int: ...
    @property
    def last_trade_id(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def side(self) -> _Side: ...
    @property
    def is_buyer_maker(self) -> bool: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DepthUpdate:
    """A diff-depth event (``<symbol>@depth`` / ``@depth@100ms``); qty 0 removes a level."""

    @property
    def symbol(self) -> str: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def final_update_id(self) -> int: ...
    @property
    def bids(self) -> list[_Level]: ...
    @property
    def asks(self) -> list[_Level]: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DepthSnapshot:
    """A full or partial book: REST ``/api/v3/depth`` or ``<symbol>@depth<N>`` streams.

    Binance spot sends no exchange time with either, so ``event_time_ms`` is ``None`` unless
    the payload has an ``E`` field.
    """

    @property
    def symbol(self) -> str: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def bids(self) -> list[_Level]: ...
    @property
    def asks(self) -> list[_Level]: ...
    @property
    def event_time_ms(self) -> int | None: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class BookTicker:
    """Best bid/ask (``<symbol>@bookTicker``). Spot sends no event time: ``None`` then."""

    @property
    def symbol(self) -> str: ...
    @property
    def update_id(self) -> int: ...
    @property
    def bid_price(self) -> float: ...
    @property
    def bid_qty(self) -> float: ...
    @property
    def ask_price(self) -> float: ...
    @property
    def ask_qty(self) -> float: ...
    @property
    def event_time_ms(self) -> int | None: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ServerShutdown:
    """The exchange announced it will close the connection soon: reconnect now."""

    @property
    def event_time_ms(self) -> int: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

_Event: TypeAlias = Trade | AggTrade | DepthUpdate | DepthSnapshot | BookTicker | ServerShutdown

@final
class FrameBatch:
    """Columnar result of a batch parse: one table per event kind, NumPy columns.

    Every event table has a ``frame`` column (int64 index of the source frame in the batch)
    and, except ``shutdowns``, a ``symbol`` column (int32 code into ``symbols``, which lists
    the canonical upper-case symbols in order of first appearance). Integer ids and
    times are int64; prices and quantities float64; ``side`` is int8 (+1 buy, -1 sell).
    ``event_time_ms`` is -1 where the source has no exchange time (bookTicker, snapshots).

    Tables and columns:

    - ``trades``: frame, symbol, trade_id, event_time_ms, trade_time_ms, price, qty, side,
      is_buyer_maker (bool), recv_time_ns
    - ``agg_trades``: frame, symbol, agg_trade_id, first_trade_id, last_trade_id,
      event_time_ms, trade_time_ms, price, qty, side, is_buyer_maker, recv_time_ns
    - ``depth_updates``: frame, symbol, event_time_ms, first_update_id, final_update_id,
      recv_time_ns, level_start, level_end (rows ``[level_start, level_end)`` of ``levels``)
    - ``depth_snapshots``: frame, symbol, last_update_id, event_time_ms, recv_time_ns,
      level_start, level_end
    - ``levels``: side (int8, +1 bid / -1 ask), price, qty — bids before asks, in frame order
    - ``book_tickers``: frame, symbol, update_id, event_time_ms, bid_price, bid_qty,
      ask_price, ask_qty, recv_time_ns
    - ``shutdowns``: frame, event_time_ms, recv_time_ns
    - ``errors``: frame, reason_code (int8 index into ``ERROR_REASONS``); the messages are in
      ``error_messages``
    """

    @property
    def n_frames(self) -> int: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def trades(self) -> dict[str, NDArray[Any]]: ...
    @property
    def agg_trades(self) -> dict[str, NDArray[Any]]: ...
    @property
    def depth_updates(self) -> dict[str, NDArray[Any]]: ...
    @property
    def depth_snapshots(self) -> dict[str, NDArray[Any]]: ...
    @property
    def levels(self) -> dict[str, NDArray[Any]]: ...
    @property
    def book_tickers(self) -> dict[str, NDArray[Any]]: ...
    @property
    def shutdowns(self) -> dict[str, NDArray[Any]]: ...
    @property
    def errors(self) -> dict[str, NDArray[Any]]: ...
    @property
    def error_messages(self) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def __len__(self) -> int: ...

@final
class OrderBook:
    """A symbol's local order book, synced by Binance's documented procedure.

    Feed diffs as they arrive (buffered until a snapshot syncs the book) and a REST snapshot
    whose ``lastUpdateId`` is at least the first buffered diff's ``U`` (``"too_old"``
    otherwise: fetch another). Once synced, stale diffs (``u <= last_update_id``) are
    dropped and a break (``U > last_update_id + 1``) returns ``"gap"``: the book is then
    discarded and waits for a new snapshot (the breaking diff heads the new buffer).
    """

    def __new__(cls, symbol: str, max_buffer: int = 10000) -> OrderBook: ...
    @property
    def symbol(self) -> str: ...
    @property
    def synced(self) -> bool: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def first_buffered_update_id(self) -> int | None: ...
    def on_diff(
        self, update: DepthUpdate
    ) -> Literal["applied", "buffered", "stale", "gap", "wrong_symbol"]: ...
    def on_snapshot(
        self, snapshot: DepthSnapshot
    ) -> Literal["synced", "too_old", "broken_chain", "wrong_symbol"]: ...
    def best_bid(self) -> _Level | None: ...
    def best_ask(self) -> _Level | None: ...
    def top(self, k: int = 10) -> tuple[list[_Level], list[_Level]]: ...
    def stats(self) -> dict[str, int]: ...

@final
class TradeSequencer:
    """Releases a symbol's trades in consecutive trade-id order.

    ``last_id`` resumes after the last stored trade (the downtime then shows as a gap).
    Live trades behind a gap are held until ``fill`` supplies the missing ids from REST or
    ``skip_to`` gives up on them (counted as lost); at most ``max_held`` wait, beyond which
    the oldest hole is given up on. Duplicates are dropped and counted.
    """

    def __new__(cls, last_id: int | None = None, max_held: int = 100000) -> TradeSequencer: ...
    @property
    def next_id(self) -> int | None: ...
    @property
    def held(self) -> int: ...
    def push(self, trade: Trade) -> list[tuple[Trade, bool]]: ...
    def fill(self, trades: list[Trade]) -> list[tuple[Trade, bool]]: ...
    def skip_to(self, trade_id: int) -> list[tuple[Trade, bool]]: ...
    def missing(self) -> tuple[int, int] | None: ...
    def stats(self) -> dict[str, int]: ...

def parse_frame(frame: bytes, recv_time_ns: int | None = None, symbol: str | None = None) -> _Event:
    """Parse one WebSocket text frame (combined ``{"stream","data"}`` or raw payload).

    ``recv_time_ns`` defaults to the current wall-clock time. ``symbol`` is needed only for
    partial-depth payloads on a raw ``/ws/<symbol>@depth<N>`` connection, which carry no
    symbol (a payload that names its own symbol keeps it). Raises a ``ParseError`` subclass
    naming the reason.
    """

def parse_frames(
    frames: Sequence[bytes],
    recv_time_ns: NDArray[np.int64] | Sequence[int] | None = None,
    symbol: str | None = None,
) -> FrameBatch:
    """Parse many frames in one call; bad frames land in ``errors``, never raise."""

def parse_capture(data: bytes) -> FrameBatch:
    """Parse a capture file's text (``<recv ns> <json>`` per line, as in shared/data/binance).

    Frame index = line index (blank lines are skipped but counted). REST depth snapshots on
    their own line take their symbol from the nearest stream frame seen before them.
    """

def parse_rest_depth(body: bytes, symbol: str, recv_time_ns: int | None = None) -> DepthSnapshot:
    """Parse a ``GET /api/v3/depth`` response body."""

def parse_rest_trades(body: bytes, symbol: str, recv_time_ns: int | None = None) -> list[Trade]:
    """Parse a ``GET /api/v3/historicalTrades`` (or ``/trades``) response body.

    REST rows have no event time: ``event_time_ms`` equals the trade time.
    """
