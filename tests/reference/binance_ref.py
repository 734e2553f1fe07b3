"""Reference normalization of Binance spot frames in pure Python (stdlib ``json`` only).

It implements the contract of ``cif._core`` (``python/cif/_core.pyi``) as plainly as possible so
tests can compare the Rust parser with it value by value, and benches can measure the Rust
parser against it. Prices and quantities are ``float(str)`` of Binance's decimal strings; a
trade's side is the aggressor (``m`` / ``isBuyerMaker`` true ⇒ ``"sell"``); columnar output
uses ``-1`` where a source has no exchange event time.

Where the contract is silent, it follows the extension's choices (see the test report):
trade/aggTrade/REST-trade price and quantity and depth level prices must be > 0 (a level
quantity or a bookTicker side may be 0); symbols are ASCII upper-cased; a partial-depth
payload's optional ``E`` becomes its event time.

The batch functions return a :class:`RefBatch` with the same tables, columns and dtypes as
``cif._core.FrameBatch``. Error reason codes index :data:`ERROR_KINDS`, which names the
contract's ``ParseError`` subclasses.

Not part of the package: ``cif`` never imports this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

I64_MAX: Final = 2**63 - 1
_PLAIN_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")

Level: TypeAlias = tuple[float, float]

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RefParseError(ValueError):
    """Base class; ``contract_name`` names the matching ``cif._core`` exception class."""

    contract_name: ClassVar[str] = "ParseError"


class MalformedFrameError(RefParseError):
    contract_name = "MalformedFrame"


class MissingFieldError(RefParseError):
    contract_name = "MissingField"


class WrongTypeError(RefParseError):
    contract_name = "WrongType"


class InvalidValueError(RefParseError):
    contract_name = "InvalidValue"


class UnknownEventError(RefParseError):
    contract_name = "UnknownEvent"


#: Reason codes of the reference batch ``errors`` table: the contract's exception class names.
ERROR_KINDS: Final[tuple[str, ...]] = (
    "MalformedFrame",
    "MissingField",
    "WrongType",
    "InvalidValue",
    "UnknownEvent",
)
_ERROR_CODE: Final = {name: code for code, name in enumerate(ERROR_KINDS)}

# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefTrade:
    kind: ClassVar[str] = "Trade"
    symbol: str
    trade_id: int
    event_time_ms: int
    trade_time_ms: int
    price: float
    qty: float
    side: str
    is_buyer_maker: bool
    recv_time_ns: int


@dataclass(frozen=True, slots=True)
class RefAggTrade:
    kind: ClassVar[str] = "AggTrade"
    symbol: str
    agg_trade_id: int
    first_trade_id: int
    last_trade_id: int
    event_time_ms: int
    trade_time_ms: int
    price: float
    qty: float
    side: str
    is_buyer_maker: bool
    recv_time_ns: int


@dataclass(frozen=True, slots=True)
class RefDepthUpdate:
    kind: ClassVar[str] = "DepthUpdate"
    symbol: str
    event_time_ms: int
    first_update_id: int
    final_update_id: int
    bids: list[Level]
    asks: list[Level]
    recv_time_ns: int


@dataclass(frozen=True, slots=True)
class RefDepthSnapshot:
    kind: ClassVar[str] = "DepthSnapshot"
    symbol: str
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    event_time_ms: int | None
    recv_time_ns: int


@dataclass(frozen=True, slots=True)
class RefBookTicker:
    kind: ClassVar[str] = "BookTicker"
    symbol: str
    update_id: int
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    event_time_ms: int | None
    recv_time_ns: int


@dataclass(frozen=True, slots=True)
class RefServerShutdown:
    kind: ClassVar[str] = "ServerShutdown"
    event_time_ms: int
    recv_time_ns: int


RefEvent: TypeAlias = (
    RefTrade | RefAggTrade | RefDepthUpdate | RefDepthSnapshot | RefBookTicker | RefServerShutdown
)

# --------------------------------------------------------------------------------------------
# JSON and field access
# --------------------------------------------------------------------------------------------


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedFrameError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise MalformedFrameError(f"{name} is not valid JSON")


def load_json(data: bytes) -> Any:
    """Decode strict UTF-8 JSON: no duplicate keys, no NaN/Infinity literals."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedFrameError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as e:
        raise MalformedFrameError(f"invalid JSON: {e}") from None
    except RecursionError:
        raise MalformedFrameError("JSON nested too deeply") from None


def _get(obj: dict[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise MissingFieldError(f"missing field {key!r}") from None


def _type_name(value: Any) -> str:
    return type(value).__name__


def _int(obj: dict[str, Any], key: str) -> int:
    value = _get(obj, key)
    if type(value) is not int:
        raise WrongTypeError(f"{key!r}: expected an integer, got {_type_name(value)}")
    if value < 0 or value > I64_MAX:
        raise InvalidValueError(f"{key!r}: {value} is out of range")
    return value


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = _get(obj, key)
    if type(value) is not bool:
        raise WrongTypeError(f"{key!r}: expected a boolean, got {_type_name(value)}")
    return value


def ascii_upper(symbol: str) -> str:
    """Symbols are normalized to ASCII upper case (``btcusdt`` → ``BTCUSDT``)."""
    return symbol.encode("utf-8", "surrogatepass").upper().decode("utf-8", "surrogatepass")


def _str(obj: dict[str, Any], key: str) -> str:
    value = _get(obj, key)
    if type(value) is not str:
        raise WrongTypeError(f"{key!r}: expected a string, got {_type_name(value)}")
    return value


def decimal(value: Any, what: str, positive: bool = False) -> float:
    """A Binance decimal string as a float, exactly ``float(value)``; rejects anything else.

    ``positive`` also rejects zero: trade prices and quantities and book level prices are
    never zero (a level quantity, or a bookTicker side of an empty book, may be).
    """
    if type(value) is not str:
        raise WrongTypeError(f"{what}: expected a decimal string, got {_type_name(value)}")
    if value.startswith("-"):
        raise InvalidValueError(f"{what}: negative value {value!r}")
    if _PLAIN_DECIMAL.fullmatch(value) is None:
        raise InvalidValueError(f"{what}: not a plain decimal: {value[:40]!r}")
    result = float(value)
    if math.isinf(result):
        raise InvalidValueError(f"{what}: too large: {value[:40]!r}")
    if positive and result == 0.0:
        raise InvalidValueError(f"{what}: must be positive, got {value[:40]!r}")
    return result


def _dec(obj: dict[str, Any], key: str, positive: bool = False) -> float:
    return decimal(_get(obj, key), repr(key), positive)


def _levels(obj: dict[str, Any], key: str) -> list[Level]:
    raw = _get(obj, key)
    if type(raw) is not list:
        raise WrongTypeError(f"{key!r}: expected a list of levels, got {_type_name(raw)}")
    levels: list[Level] = []
    for i, level in enumerate(raw):
        if type(level) is not list:
            raise WrongTypeError(f"{key!r}[{i}]: expected [price, qty], got {_type_name(level)}")
        if len(level) != 2:
            raise MalformedFrameError(f"{key!r}[{i}]: expected 2 items, got {len(level)}")
        price = decimal(level[0], f"{key}[{i}] price", positive=True)
        levels.append((price, decimal(level[1], f"{key}[{i}] qty")))
    return levels


def _side(is_buyer_maker: bool) -> str:
    return "sell" if is_buyer_maker else "buy"


# --------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------


def _trade(d: dict[str, Any], recv_time_ns: int) -> RefTrade:
    m = _bool(d, "m")
    return RefTrade(
        symbol=ascii_upper(_str(d, "s")),
        trade_id=_int(d, "t"),
        event_time_ms=_int(d, "E"),
        trade_time_ms=_int(d, "T"),
        price=_dec(d, "p", positive=True),
        qty=_dec(d, "q", positive=True),
        side=_side(m),
        is_buyer_maker=m,
        recv_time_ns=recv_time_ns,
    )


def _agg_trade(d: dict[str, Any], recv_time_ns: int) -> RefAggTrade:
    m = _bool(d, "m")
    return RefAggTrade(
        symbol=ascii_upper(_str(d, "s")),
        agg_trade_id=_int(d, "a"),
        first_trade_id=_int(d, "f"),
        last_trade_id=_int(d, "l"),
        event_time_ms=_int(d, "E"),
        trade_time_ms=_int(d, "T"),
        price=_dec(d, "p", positive=True),
        qty=_dec(d, "q", positive=True),
        side=_side(m),
        is_buyer_maker=m,
        recv_time_ns=recv_time_ns,
    )


def _depth_update(d: dict[str, Any], recv_time_ns: int) -> RefDepthUpdate:
    return RefDepthUpdate(
        symbol=ascii_upper(_str(d, "s")),
        event_time_ms=_int(d, "E"),
        first_update_id=_int(d, "U"),
        final_update_id=_int(d, "u"),
        bids=_levels(d, "b"),
        asks=_levels(d, "a"),
        recv_time_ns=recv_time_ns,
    )


def _snapshot(d: dict[str, Any], symbol: str, recv_time_ns: int) -> RefDepthSnapshot:
    return RefDepthSnapshot(
        symbol=ascii_upper(symbol),
        last_update_id=_int(d, "lastUpdateId"),
        bids=_levels(d, "bids"),
        asks=_levels(d, "asks"),
        # Spot partial depth and REST carry no event time; futures-style payloads do.
        event_time_ms=_int(d, "E") if "E" in d else None,
        recv_time_ns=recv_time_ns,
    )


def _book_ticker(d: dict[str, Any], recv_time_ns: int) -> RefBookTicker:
    return RefBookTicker(
        symbol=ascii_upper(_str(d, "s")),
        update_id=_int(d, "u"),
        bid_price=_dec(d, "b"),
        bid_qty=_dec(d, "B"),
        ask_price=_dec(d, "a"),
        ask_qty=_dec(d, "A"),
        event_time_ms=_int(d, "E") if "E" in d else None,
        recv_time_ns=recv_time_ns,
    )


def _shutdown(d: dict[str, Any], recv_time_ns: int) -> RefServerShutdown:
    return RefServerShutdown(event_time_ms=_int(d, "E"), recv_time_ns=recv_time_ns)


_BY_EVENT_TYPE: Final[dict[str, Callable[[dict[str, Any], int], RefEvent]]] = {
    "trade": _trade,
    "aggTrade": _agg_trade,
    "depthUpdate": _depth_update,
    "serverShutdown": _shutdown,
}


def _payload(
    d: dict[str, Any], recv_time_ns: int, stream_symbol: str | None, symbol: str | None
) -> RefEvent:
    event: RefEvent
    if "e" in d:
        etype = _str(d, "e")
        build = _BY_EVENT_TYPE.get(etype)
        if build is None:
            raise UnknownEventError(f"unknown event type {etype[:40]!r}")
        event = build(d, recv_time_ns)
    elif "event" in d:
        inner = d["event"]
        if type(inner) is not dict:
            raise WrongTypeError(f"'event': expected an object, got {_type_name(inner)}")
        etype = _str(inner, "e")
        if etype != "serverShutdown":
            raise UnknownEventError(f"unknown event type {etype[:40]!r}")
        return _shutdown(inner, recv_time_ns)
    elif "lastUpdateId" in d:
        if symbol is None:
            raise MissingFieldError("partial depth payload without a symbol: pass symbol=")
        return _snapshot(d, symbol, recv_time_ns)
    elif "u" in d:
        event = _book_ticker(d, recv_time_ns)
    else:
        raise UnknownEventError("payload has no event type")
    if (
        stream_symbol is not None
        and not isinstance(event, RefServerShutdown)
        and event.symbol != stream_symbol
    ):
        raise InvalidValueError(
            f"symbol {event.symbol!r} does not match the stream's {stream_symbol!r}"
        )
    return event


def _normalize(obj: Any, recv_time_ns: int, symbol: str | None) -> tuple[RefEvent, str | None]:
    """Return the event and, for a combined-stream frame, the stream's (upper-case) symbol."""
    if type(obj) is not dict:
        raise MalformedFrameError(f"expected a JSON object, got {_type_name(obj)}")
    if "stream" not in obj:
        return _payload(obj, recv_time_ns, None, symbol), None
    stream = _str(obj, "stream")
    data = _get(obj, "data")
    if type(data) is not dict:
        raise WrongTypeError(f"'data': expected an object, got {_type_name(data)}")
    stream_symbol, sep, _ = stream.partition("@")
    if not sep or not stream_symbol:
        raise MalformedFrameError(f"stream name {stream[:40]!r} is not '<symbol>@<stream>'")
    stream_symbol = ascii_upper(stream_symbol)
    return _payload(data, recv_time_ns, stream_symbol, stream_symbol), stream_symbol


# --------------------------------------------------------------------------------------------
# Single-object API
# --------------------------------------------------------------------------------------------


def parse_frame(frame: bytes, recv_time_ns: int, symbol: str | None = None) -> RefEvent:
    """One WebSocket text frame (combined ``{"stream","data"}`` or a raw ``/ws`` payload)."""
    return _normalize(load_json(frame), recv_time_ns, symbol)[0]


def parse_rest_depth(body: bytes, symbol: str, recv_time_ns: int) -> RefDepthSnapshot:
    obj = load_json(body)
    if type(obj) is not dict:
        raise MalformedFrameError(f"expected a JSON object, got {_type_name(obj)}")
    return _snapshot(obj, symbol, recv_time_ns)


def parse_rest_trades(body: bytes, symbol: str, recv_time_ns: int) -> list[RefTrade]:
    rows = load_json(body)
    if type(rows) is not list:
        raise MalformedFrameError(f"expected a JSON array, got {_type_name(rows)}")
    trades: list[RefTrade] = []
    for row in rows:
        if type(row) is not dict:
            raise MalformedFrameError(f"expected an object per trade, got {_type_name(row)}")
        m = _bool(row, "isBuyerMaker")
        time_ms = _int(row, "time")
        trades.append(
            RefTrade(
                symbol=ascii_upper(symbol),
                trade_id=_int(row, "id"),
                event_time_ms=time_ms,
                trade_time_ms=time_ms,
                price=_dec(row, "price", positive=True),
                qty=_dec(row, "qty", positive=True),
                side=_side(m),
                is_buyer_maker=m,
                recv_time_ns=recv_time_ns,
            )
        )
    return trades


# --------------------------------------------------------------------------------------------
# Columnar API
# --------------------------------------------------------------------------------------------

#: Tables and columns of a batch, with NumPy dtypes (as in ``cif._core.FrameBatch``).
TABLE_COLUMNS: Final[dict[str, dict[str, str]]] = {
    "trades": {
        "frame": "int64",
        "symbol": "int32",
        "trade_id": "int64",
        "event_time_ms": "int64",
        "trade_time_ms": "int64",
        "price": "float64",
        "qty": "float64",
        "side": "int8",
        "is_buyer_maker": "bool",
        "recv_time_ns": "int64",
    },
    "agg_trades": {
        "frame": "int64",
        "symbol": "int32",
        "agg_trade_id": "int64",
        "first_trade_id": "int64",
        "last_trade_id": "int64",
        "event_time_ms": "int64",
        "trade_time_ms": "int64",
        "price": "float64",
        "qty": "float64",
        "side": "int8",
        "is_buyer_maker": "bool",
        "recv_time_ns": "int64",
    },
    "depth_updates": {
        "frame": "int64",
        "symbol": "int32",
        "event_time_ms": "int64",
        "first_update_id": "int64",
        "final_update_id": "int64",
        "recv_time_ns": "int64",
        "level_start": "int64",
        "level_end": "int64",
    },
    "depth_snapshots": {
        "frame": "int64",
        "symbol": "int32",
        "last_update_id": "int64",
        "event_time_ms": "int64",
        "recv_time_ns": "int64",
        "level_start": "int64",
        "level_end": "int64",
    },
    "levels": {"side": "int8", "price": "float64", "qty": "float64"},
    "book_tickers": {
        "frame": "int64",
        "symbol": "int32",
        "update_id": "int64",
        "event_time_ms": "int64",
        "bid_price": "float64",
        "bid_qty": "float64",
        "ask_price": "float64",
        "ask_qty": "float64",
        "recv_time_ns": "int64",
    },
    "shutdowns": {"frame": "int64", "event_time_ms": "int64", "recv_time_ns": "int64"},
    "errors": {"frame": "int64", "reason_code": "int8"},
}


class RefBatch:
    """Columnar result with the surface of ``cif._core.FrameBatch``."""

    def __init__(
        self,
        n_frames: int,
        symbols: list[str],
        tables: dict[str, dict[str, NDArray[Any]]],
        error_messages: list[str],
    ) -> None:
        self.n_frames = n_frames
        self.symbols = symbols
        self._tables = tables
        self.error_messages = error_messages

    def table(self, name: str) -> dict[str, NDArray[Any]]:
        return self._tables[name]

    @property
    def trades(self) -> dict[str, NDArray[Any]]:
        return self._tables["trades"]

    @property
    def agg_trades(self) -> dict[str, NDArray[Any]]:
        return self._tables["agg_trades"]

    @property
    def depth_updates(self) -> dict[str, NDArray[Any]]:
        return self._tables["depth_updates"]

    @property
    def depth_snapshots(self) -> dict[str, NDArray[Any]]:
        return self._tables["depth_snapshots"]

    @property
    def levels(self) -> dict[str, NDArray[Any]]:
        return self._tables["levels"]

    @property
    def book_tickers(self) -> dict[str, NDArray[Any]]:
        return self._tables["book_tickers"]

    @property
    def shutdowns(self) -> dict[str, NDArray[Any]]:
        return self._tables["shutdowns"]

    @property
    def errors(self) -> dict[str, NDArray[Any]]:
        return self._tables["errors"]

    def counts(self) -> dict[str, int]:
        return {name: len(next(iter(cols.values()))) for name, cols in self._tables.items()}

    def __len__(self) -> int:
        return self.n_frames


class _BatchBuilder:
    """Appends normalized events to column lists, then freezes them into NumPy arrays."""

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self._codes: dict[str, int] = {}
        self.cols: dict[str, dict[str, list[Any]]] = {
            table: {col: [] for col in cols} for table, cols in TABLE_COLUMNS.items()
        }
        self.error_messages: list[str] = []

    def _code(self, symbol: str) -> int:
        code = self._codes.get(symbol)
        if code is None:
            code = self._codes[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return code

    def _add_levels(self, bids: list[Level], asks: list[Level]) -> tuple[int, int]:
        lv = self.cols["levels"]
        start = len(lv["side"])
        for side, levels in ((1, bids), (-1, asks)):
            for price, qty in levels:
                lv["side"].append(side)
                lv["price"].append(price)
                lv["qty"].append(qty)
        return start, len(lv["side"])

    def add(self, frame: int, ev: RefEvent) -> None:
        if isinstance(ev, RefTrade):
            t = self.cols["trades"]
            t["frame"].append(frame)
            t["symbol"].append(self._code(ev.symbol))
            t["trade_id"].append(ev.trade_id)
            t["event_time_ms"].append(ev.event_time_ms)
            t["trade_time_ms"].append(ev.trade_time_ms)
            t["price"].append(ev.price)
            t["qty"].append(ev.qty)
            t["side"].append(-1 if ev.is_buyer_maker else 1)
            t["is_buyer_maker"].append(ev.is_buyer_maker)
            t["recv_time_ns"].append(ev.recv_time_ns)
        elif isinstance(ev, RefBookTicker):
            t = self.cols["book_tickers"]
            t["frame"].append(frame)
            t["symbol"].append(self._code(ev.symbol))
            t["update_id"].append(ev.update_id)
            t["event_time_ms"].append(-1 if ev.event_time_ms is None else ev.event_time_ms)
            t["bid_price"].append(ev.bid_price)
            t["bid_qty"].append(ev.bid_qty)
            t["ask_price"].append(ev.ask_price)
            t["ask_qty"].append(ev.ask_qty)
            t["recv_time_ns"].append(ev.recv_time_ns)
        elif isinstance(ev, RefDepthUpdate):
            t = self.cols["depth_updates"]
            start, end = self._add_levels(ev.bids, ev.asks)
            t["frame"].append(frame)
            t["symbol"].append(self._code(ev.symbol))
            t["event_time_ms"].append(ev.event_time_ms)
            t["first_update_id"].append(ev.first_update_id)
            t["final_update_id"].append(ev.final_update_id)
            t["recv_time_ns"].append(ev.recv_time_ns)
            t["level_start"].append(start)
            t["level_end"].append(end)
        elif isinstance(ev, RefDepthSnapshot):
            t = self.cols["depth_snapshots"]
            start, end = self._add_levels(ev.bids, ev.asks)
            t["frame"].append(frame)
            t["symbol"].append(self._code(ev.symbol))
            t["last_update_id"].append(ev.last_update_id)
            t["event_time_ms"].append(-1 if ev.event_time_ms is None else ev.event_time_ms)
            t["recv_time_ns"].append(ev.recv_time_ns)
            t["level_start"].append(start)
            t["level_end"].append(end)
        elif isinstance(ev, RefAggTrade):
            t = self.cols["agg_trades"]
            t["frame"].append(frame)
            t["symbol"].append(self._code(ev.symbol))
            t["agg_trade_id"].append(ev.agg_trade_id)
            t["first_trade_id"].append(ev.first_trade_id)
            t["last_trade_id"].append(ev.last_trade_id)
            t["event_time_ms"].append(ev.event_time_ms)
            t["trade_time_ms"].append(ev.trade_time_ms)
            t["price"].append(ev.price)
            t["qty"].append(ev.qty)
            t["side"].append(-1 if ev.is_buyer_maker else 1)
            t["is_buyer_maker"].append(ev.is_buyer_maker)
            t["recv_time_ns"].append(ev.recv_time_ns)
        else:
            t = self.cols["shutdowns"]
            t["frame"].append(frame)
            t["event_time_ms"].append(ev.event_time_ms)
            t["recv_time_ns"].append(ev.recv_time_ns)

    def add_error(self, frame: int, error: RefParseError) -> None:
        self.cols["errors"]["frame"].append(frame)
        self.cols["errors"]["reason_code"].append(_ERROR_CODE[error.contract_name])
        self.error_messages.append(str(error))

    def finish(self, n_frames: int) -> RefBatch:
        tables = {
            table: {
                col: np.array(values, dtype=TABLE_COLUMNS[table][col])
                for col, values in cols.items()
            }
            for table, cols in self.cols.items()
        }
        return RefBatch(n_frames, self.symbols, tables, self.error_messages)


def parse_frames(
    frames: Sequence[bytes],
    recv_time_ns: Sequence[int] | NDArray[np.int64],
    symbol: str | None = None,
) -> RefBatch:
    """Parse many frames; bad frames land in ``errors`` (reason codes index ERROR_KINDS)."""
    if len(recv_time_ns) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(recv_time_ns)} receive times")
    recv = recv_time_ns.tolist() if isinstance(recv_time_ns, np.ndarray) else recv_time_ns
    builder = _BatchBuilder()
    for i, frame in enumerate(frames):
        try:
            event = _normalize(load_json(frame), recv[i], symbol)[0]
        except RefParseError as e:
            builder.add_error(i, e)
        else:
            builder.add(i, event)
    return builder.finish(len(frames))


def split_capture(data: bytes) -> list[bytes]:
    """The lines of a capture text; a final newline ends the last line, it starts no new one."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def parse_capture(data: bytes) -> RefBatch:
    """Parse capture text (``<recv ns> <json>`` per line); frame index = line index.

    Blank lines are skipped but counted. A partial-depth / REST snapshot line takes its
    symbol from the nearest combined-stream frame before it.
    """
    lines = split_capture(data)
    builder = _BatchBuilder()
    last_stream_symbol: str | None = None
    for i, raw_line in enumerate(lines):
        line = raw_line.rstrip(b"\r")
        if not line.strip():
            continue
        ts, sep, payload = line.partition(b" ")
        if not sep or not ts.isdigit():
            builder.add_error(i, MalformedFrameError("capture line is not '<recv ns> <json>'"))
            continue
        try:
            event, stream_symbol = _normalize(load_json(payload), int(ts), last_stream_symbol)
        except RefParseError as e:
            builder.add_error(i, e)
            continue
        if stream_symbol is not None:
            last_stream_symbol = stream_symbol
        builder.add(i, event)
    return builder.finish(len(lines))
